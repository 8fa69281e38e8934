//! `conductor prune [--dry-run]`: retention by hand. Old messages named by the config's
//! `retention.rules` are exported to compressed JSON lines and then removed, as the daemon does
//! daily. `--dry-run` prints what would go, by direction and status, and changes nothing.

use anyhow::{Context, Result};
use conductor_ops::retention::{self, Count};

use crate::config::Config;

/// Runs `conductor prune`.
pub async fn prune(config: &Config, dry_run: bool, json: bool) -> Result<()> {
    let plan = config.retention_plan()?;
    let settings = plan.settings;
    if settings.rules.is_empty() {
        if json {
            println!(
                "{}",
                serde_json::json!({"rules": 0, "counts": [], "deleted": 0})
            );
        } else {
            println!(
                "no retention rules configured (retention.rules in the config): nothing is \
                 ever removed"
            );
        }
        return Ok(());
    }
    let store = crate::commands::messages::open_store(config).await?;
    let now = jiff::Timestamp::now();
    if dry_run {
        let plan = retention::plan(&store, &settings.rules, now)
            .await
            .context("cannot list the messages due for retention")?;
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "dry_run": true,
                    "would_delete": plan.candidates.len(),
                    "counts": plan.counts,
                    "export_dir": settings.export_dir,
                })
            );
            return Ok(());
        }
        println!(
            "dry run: {} messages would be exported to {} and removed",
            plan.candidates.len(),
            settings.export_dir.display()
        );
        print_counts(&plan.counts);
        return Ok(());
    }
    let outcome = retention::apply_and_record(&store, &settings, now, "cli")
        .await
        .context("retention failed")?;
    if json {
        println!("{}", serde_json::to_string(&outcome)?);
        return Ok(());
    }
    match &outcome.export {
        Some(export) => println!(
            "exported {} messages to {}; removed {} (with {} parts, {} delivery reports, {} \
             history events)",
            outcome.exported,
            export.display(),
            outcome.deleted,
            outcome.parts,
            outcome.reports,
            outcome.events
        ),
        None => println!("no message is old enough for the rules: nothing removed"),
    }
    print_counts(&outcome.counts);
    if outcome.changed > 0 {
        println!(
            "{} messages changed while this ran and were kept (they are in the export too); \
             the next run looks at them again",
            outcome.changed
        );
    }
    Ok(())
}

fn print_counts(counts: &[Count]) {
    for count in counts {
        println!(
            "  {:<9} {:<10} {:>8}",
            count.direction.as_str(),
            count.status.as_str(),
            count.count
        );
    }
}
