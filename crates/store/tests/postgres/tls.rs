//! TLS to the server: `sslmode=require` encrypts (any certificate, as libpq), `verify-full`
//! with `sslrootcert` checks the chain and the host name, and a wrong CA is refused.
//! Certificates are made with the `openssl` command; without it the test says NOT RUN.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use conductor_store::{Store, StoreOptions};

use crate::server::PgServer;

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA.
fn make_certs(dir: &Path) -> bool {
    let ext = dir.join("san.ext");
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("write ext");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca = [
        &ec[..],
        &["-x509", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2"],
    ]
    .concat();
    let other = [
        &ec[..],
        &[
            "-x509",
            "-keyout",
            "other.key",
            "-out",
            "other.crt",
            "-days",
            "2",
        ],
    ]
    .concat();
    let csr = [&ec[..], &["-keyout", "server.key", "-out", "server.csr"]].concat();
    openssl(dir, &[&["req", "-subj", "/CN=test-ca"][..], &ca].concat())
        && openssl(
            dir,
            &[&["req", "-subj", "/CN=other-ca"][..], &other].concat(),
        )
        && openssl(
            dir,
            &[&["req", "-subj", "/CN=127.0.0.1"][..], &csr].concat(),
        )
        && openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
        )
}

/// Hands the key to the server's user (the cluster runs as `postgres` when tests run as root).
fn give_to_server(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    for file in ["server.crt", "server.key"] {
        let path = dir.join(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        if let Ok(out) = Command::new("id").args(["-u", "postgres"]).output()
            && out.status.success()
            && running_as_root()
        {
            let uid: u32 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("uid");
            std::os::unix::fs::chown(&path, Some(uid), None).expect("chown");
        }
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_encrypts_and_verify_full_checks_the_server() {
    let Some(pg) = PgServer::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    if !make_certs(dir.path()) {
        eprintln!("NOT RUN: the openssl command is needed to make test certificates");
        return;
    }
    give_to_server(dir.path());
    let url = pg.create_db("tls").await;
    let admin = pg.client("tls").await;
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    // One statement per call: ALTER SYSTEM refuses the implicit transaction of a batch.
    for statement in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display()),
        "ALTER SYSTEM SET ssl = on".to_owned(),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        admin.simple_query(&statement).await.expect("turn TLS on");
    }
    // The reload is asynchronous: wait until new sessions see it.
    for _ in 0..50 {
        let on: String = pg
            .client("tls")
            .await
            .query_one("SHOW ssl", &[])
            .await
            .expect("show ssl")
            .get(0);
        if on == "on" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let base = url.replace("?sslmode=disable", "");
    let encrypted_sessions = || async {
        let n: i64 = pg
            .client("tls")
            .await
            .query_one(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE a.application_name = 'conductor' AND s.ssl",
                &[],
            )
            .await
            .expect("pg_stat_ssl")
            .get(0);
        n
    };

    // require: encrypted, certificate not checked (as libpq).
    let store = Store::open_url(&format!("{base}?sslmode=require"), StoreOptions::default())
        .await
        .expect("open with sslmode=require");
    store.check_writable().await.expect("works over TLS");
    assert!(encrypted_sessions().await >= 1);
    drop(store);

    // verify-full against the right CA.
    let ca = dir.path().join("ca.crt");
    let store = Store::open_url(
        &format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display()),
        StoreOptions::default(),
    )
    .await
    .expect("open with verify-full");
    store.check_writable().await.expect("works over TLS");
    drop(store);

    // verify-full against another CA: refused, and the error says what to check.
    let other = dir.path().join("other.crt");
    let err = Store::open_url(
        &format!("{base}?sslmode=verify-full&sslrootcert={}", other.display()),
        StoreOptions::default(),
    )
    .await
    .expect_err("a certificate from an untrusted CA is refused");
    let text = format!("{err} {:?}", std::error::Error::source(&err));
    assert!(
        text.contains("certificate") || text.contains("Certificate"),
        "{text}"
    );

    // A missing root file is a typed error naming the option.
    let err = Store::open_url(
        &format!("{base}?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem"),
        StoreOptions::default(),
    )
    .await
    .expect_err("no such file");
    assert!(
        matches!(err, conductor_store::StoreError::PostgresTls { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("sslrootcert"), "{err}");
}
