//! `conductor ussd MODEM CODE`: a USSD request (`*100#`) and its decoded answer.
//!
//! Why two paths: a serial port has one owner (DESIGN "Decisions": the CLI never opens a
//! port the daemon holds). When the daemon's HTTP API answers at the config's `http.listen`,
//! the request goes through `POST /api/v1/modems/{id}/ussd` and the daemon runs it between
//! its other commands; when nothing listens there, no daemon holds the port and the CLI
//! opens it itself, like `conductor modem probe`. The API needs a full-scope token when
//! tokens are configured: `--token` or `CONDUCTOR_TOKEN` (the config holds only hashes).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use conductor_modem::{ProbeOptions, SerialSettings, UssdOptions, UssdReply};
use conductor_store::ModemState;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::commands::health::STALE_AFTER;
use crate::config::Config;

/// How long connecting to the daemon's API may take before "no daemon" is assumed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the whole API request may take (the daemon waits up to 30 s for the network).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);

/// Runs `code` on `modem` and prints the answer.
pub async fn ussd(
    config: &Config,
    modem: &str,
    code: &str,
    token: Option<String>,
    json_out: bool,
) -> Result<()> {
    let answer = match daemon_address(config) {
        Some(address) => {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => through_daemon(stream, address, modem, code, token).await?,
                // Refused or no answer: no daemon listens there, so none holds the port.
                Ok(Err(_)) | Err(_) => direct(config, modem, code).await?,
            }
        }
        None => direct(config, modem, code).await?,
    };
    if json_out {
        println!("{answer}");
        return Ok(());
    }
    let text = answer["text"].as_str().unwrap_or_default();
    let status = answer["status"].as_u64().unwrap_or(0);
    if text.is_empty() {
        println!(
            "({})",
            answer["status_text"]
                .as_str()
                .unwrap_or("no text in the answer")
        );
    } else {
        println!("{text}");
    }
    if status == 1 {
        eprintln!("(the network offered a menu; the session was closed)");
    }
    Ok(())
}

/// Where the daemon's API would listen, when the config enables it (a wildcard address is
/// reached on loopback).
fn daemon_address(config: &Config) -> Option<SocketAddr> {
    let http = &config.file.http;
    if !http.enabled {
        return None;
    }
    let mut address: SocketAddr = http.listen.parse().ok()?;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Some(address)
}

async fn through_daemon(
    mut stream: TcpStream,
    address: SocketAddr,
    modem: &str,
    code: &str,
    token: Option<String>,
) -> Result<Value> {
    let body = json!({ "code": code }).to_string();
    let path = format!("/api/v1/modems/{}/ussd", percent_encode(modem));
    let token = token.or_else(|| std::env::var("CONDUCTOR_TOKEN").ok());
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{authorization}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("the daemon at {address} did not answer within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("talking to the daemon's API at {address}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("the daemon at {address} sent no HTTP answer"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("the daemon at {address} sent no HTTP status"))?;
    let value: Value = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
    if status == 200 {
        return Ok(value);
    }
    // The API's errors are `{"error": {"code", "message", "field"}}`.
    let message = value["error"]["message"]
        .as_str()
        .unwrap_or(body.trim())
        .to_owned();
    match status {
        401 => bail!(
            "the daemon's API needs a token: pass --token or set CONDUCTOR_TOKEN (a full-scope \
             token from the config's http.tokens): {message}"
        ),
        403 => bail!("the token is read-only; USSD needs a full-scope token: {message}"),
        _ => bail!("the daemon could not run {code} on {modem} (HTTP {status}): {message}"),
    }
}

/// Opens the modem's port directly (no daemon holds it).
async fn direct(config: &Config, modem: &str, code: &str) -> Result<Value> {
    let section = config
        .file
        .modems
        .iter()
        .find(|m| m.id == modem)
        .ok_or_else(|| {
            anyhow!(
                "no modem {modem:?} in the config; known: {}",
                config
                    .file
                    .modems
                    .iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    refuse_if_a_daemon_drives(config, modem).await?;
    if section.device.is_empty() {
        bail!(
            "modem {modem} has no `device` in the config (it is found by IMEI/ICCID, which \
             only the daemon does): start `conductor run` and try again, or set `device`"
        );
    }
    let options = ProbeOptions {
        serial: SerialSettings {
            baud_rate: section.baud_rate,
            ..SerialSettings::default()
        },
        ..ProbeOptions::default()
    };
    let reply: UssdReply =
        conductor_modem::ussd_direct(&section.device, &options, code, UssdOptions::default())
            .await
            .with_context(|| {
                format!(
                    "USSD {code} on {modem} ({}) without a daemon (none answered at the \
                     config's http.listen)",
                    section.device
                )
            })?;
    Ok(answer_json(modem, code, &reply))
}

/// Fails when the daemon's status row says it drives `modem` now (fresh, not `down`): its API
/// did not answer (`http.enabled` false, another `http.listen`), but it holds the port, and a
/// second opener would break its conversation with the modem (DESIGN "Decisions").
async fn refuse_if_a_daemon_drives(config: &Config, modem: &str) -> Result<()> {
    // A database that cannot be read says nothing either way.
    let Ok(store) = crate::commands::messages::open_store(config).await else {
        return Ok(());
    };
    let rows = store.modem_statuses().await.unwrap_or_default();
    if let Some(row) = rows.iter().find(|r| r.modem_id.0 == modem)
        && row.state != ModemState::Down
        && row.age(Timestamp::now()) <= STALE_AFTER
    {
        bail!(
            "a running daemon drives {modem} (its status was written at {} UTC) but its API \
             did not answer at the config's http.listen, so the port is not free: enable \
             `http` in the config the daemon uses (and pass --token), or stop the daemon",
            row.updated_at.as_str()
        );
    }
    Ok(())
}

/// The answer as the API and `--json` show it.
pub fn answer_json(modem: &str, code: &str, reply: &UssdReply) -> Value {
    let mut value = serde_json::to_value(reply).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("modem".into(), json!(modem));
        map.insert("code".into(), json!(code));
    }
    value
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
