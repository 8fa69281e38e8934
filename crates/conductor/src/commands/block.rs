//! `conductor block add|remove|list`: the opt-out block list by hand.
//!
//! Why: recipients opt out by answering STOP (the gateway adds them), but complaints also
//! arrive by phone or email, and a mistaken STOP needs undoing. Numbers are normalised with
//! the config's `numbers` rules, the same spelling the gateway compares, so `0151 …` and
//! `+49151…` are one entry. Works on the database like `send`: safe while the daemon runs.

use anyhow::{Context, Result, bail};
use conductor_store::policy::normalize_recipient;
use jiff::Timestamp;
use serde_json::json;

use crate::cli::BlockCommand;
use crate::commands::messages::open_store;
use crate::config::Config;

/// Runs one `block` verb.
pub async fn run(config: &Config, command: BlockCommand) -> Result<()> {
    let rules = config.send_rules();
    let normalise = |numbers: &[String]| -> Result<Vec<String>> {
        numbers
            .iter()
            .map(|n| normalize_recipient(n, &rules.numbers).map_err(anyhow::Error::from))
            .collect()
    };
    match command {
        BlockCommand::Add { numbers, note } => {
            let numbers = normalise(&numbers)?;
            let store = open_store(config).await?;
            for number in numbers {
                let added = store
                    .block_number(
                        number.clone(),
                        "cli".into(),
                        note.clone(),
                        None,
                        Timestamp::now(),
                    )
                    .await
                    .with_context(|| format!("cannot block {number}"))?;
                if added {
                    println!(
                        "blocked {number}: messages to it become `blocked` unless transactional"
                    );
                } else {
                    println!("{number} was already blocked");
                }
            }
        }
        BlockCommand::Remove { numbers } => {
            let numbers = normalise(&numbers)?;
            let store = open_store(config).await?;
            let mut missing = Vec::new();
            for number in numbers {
                let removed = store
                    .unblock_number(number.clone(), "cli".into(), None, Timestamp::now())
                    .await
                    .with_context(|| format!("cannot unblock {number}"))?;
                if removed {
                    println!("unblocked {number}");
                } else {
                    missing.push(number);
                }
            }
            if !missing.is_empty() {
                bail!(
                    "not on the block list: {} (`conductor block list` shows it)",
                    missing.join(", ")
                );
            }
        }
        BlockCommand::List { json } => {
            let store = open_store(config).await?;
            let list = store
                .blocked_numbers()
                .await
                .context("cannot read the block list")?;
            if json {
                println!("{}", json!({ "blocked": list }));
            } else if list.is_empty() {
                println!("the block list is empty");
            } else {
                for entry in list {
                    println!(
                        "{}  {}  {}{}",
                        entry.number,
                        entry.created_at,
                        entry.source,
                        entry.reason.map(|r| format!(" ({r})")).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}
