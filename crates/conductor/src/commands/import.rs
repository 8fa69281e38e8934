//! `conductor import original|gammu|smstools SOURCE`: the CLI edge of conductor-ops' import.
//! Prints counts by direction and status, what was already imported, and every row or file
//! that could not be read; exits 1 when something could not be read, so a script notices.

use anyhow::{Context, Result, bail};
use conductor_ops::import::{ImportReport, SourceKind};
use jiff::tz::TimeZone;

use crate::cli::ImportArgs;
use crate::config::Config;

/// Runs the import.
pub async fn import(config: &Config, args: ImportArgs) -> Result<()> {
    let kind = match args.kind.as_str() {
        "original" => SourceKind::Original,
        "gammu" => SourceKind::Gammu,
        "smstools" => SourceKind::Smstools,
        other => bail!("unknown source kind {other:?}: use original, gammu or smstools"),
    };
    let zone = match args.source_tz.as_deref() {
        None => kind.default_zone(),
        Some(z) if z.eq_ignore_ascii_case("local") => TimeZone::system(),
        Some(z) if z.eq_ignore_ascii_case("utc") => TimeZone::UTC,
        Some(z) => TimeZone::get(z).with_context(|| {
            format!("--source-tz {z:?} is not a time zone: use UTC, local or a name such as Europe/Berlin")
        })?,
    };
    let store = crate::commands::messages::open_store(config).await?;
    let report = conductor_ops::import::import(
        &store,
        kind,
        &args.source,
        zone,
        args.dry_run,
        jiff::Timestamp::now(),
    )
    .await
    .with_context(|| {
        format!(
            "cannot import {} as {}: check the path and the kind",
            args.source.display(),
            kind.as_str()
        )
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_text(&report);
    }
    if !report.problems.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

fn print_text(report: &ImportReport) {
    let verb = if report.dry_run {
        "would import"
    } else {
        "imported"
    };
    println!(
        "{}: {} message(s) found, {verb} {}, {} already imported earlier",
        report.source, report.found, report.imported, report.already_imported
    );
    for count in &report.counts {
        println!(
            "  {:<8} {:<10} {}",
            count.direction, count.status, count.count
        );
    }
    for ignored in &report.ignored {
        println!("  ignored {}: {}", ignored.item, ignored.why);
    }
    if !report.problems.is_empty() {
        println!("could not read {} item(s):", report.problems.len());
        for problem in &report.problems {
            println!("  {}: {}", problem.item, problem.why);
        }
    }
}
