//! `conductor modem probe|at`: the first things an operator does with a new modem.
//!
//! Both open the port themselves, so they refuse politely when it is busy (a running daemon
//! or ModemManager holds it): the error names what to stop.

use crate::cli::ModemCommand;
use anyhow::{Context, Result, bail};
use conductor_modem::{Console, ProbeOptions, SerialSettings};

/// Runs `conductor modem ...`.
pub fn run(command: ModemCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            ModemCommand::Probe {
                device,
                baud_rate,
                json,
            } => probe(&device, baud_rate, json).await,
            ModemCommand::At {
                device,
                commands,
                baud_rate,
            } => at(&device, &commands, baud_rate).await,
        }
    })
}

fn options(baud_rate: u32) -> ProbeOptions {
    ProbeOptions {
        serial: SerialSettings {
            baud_rate,
            ..SerialSettings::default()
        },
        ..ProbeOptions::default()
    }
}

async fn probe(device: &str, baud_rate: u32, json: bool) -> Result<()> {
    let report = conductor_modem::probe(device, &options(baud_rate))
        .await
        .with_context(|| format!("no usable answer from {device}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("device        {device}");
    println!("manufacturer  {}", text(&report.manufacturer));
    println!("model         {}", text(&report.model));
    println!("revision      {}", text(&report.revision));
    println!("IMEI          {}", text(&report.imei));
    println!("IMSI          {}", text(&report.imsi));
    println!("ICCID         {}", text(&report.iccid));
    println!("SIM           {}", report.sim);
    println!(
        "signal        {}",
        report
            .signal_dbm
            .map_or("unknown".into(), |dbm| format!("{dbm} dBm"))
    );
    println!("registration  {}", report.registration);
    println!("operator      {}", text(&report.operator));
    println!(
        "SMSC          {}",
        report
            .smsc
            .clone()
            .unwrap_or_else(|| "none: sends will fail with CMS 330 until one is set".into())
    );
    for memory in &report.storage {
        println!("storage {:<5} {}", memory.memory, memory.capacity());
    }
    Ok(())
}

async fn at(device: &str, commands: &[String], baud_rate: u32) -> Result<()> {
    let mut console = Console::open(device, &options(baud_rate))
        .await
        .with_context(|| format!("cannot open {device}"))?;
    let mut refused = 0;
    for line in commands {
        println!("> {line}");
        let (response, urcs) = match console.command(line).await {
            Ok(answer) => answer,
            Err(error) => {
                refused += 1;
                println!("! {error}");
                continue;
            }
        };
        for urc in urcs {
            println!("(unsolicited) {urc:?}");
        }
        for info in &response.lines {
            println!("{}", info.text);
            if let Some(pdu) = &info.pdu {
                println!("{pdu}");
            }
        }
        println!("{}", response.result);
        if !response.result.is_ok() {
            refused += 1;
        }
    }
    if refused > 0 {
        bail!(
            "{refused} of {} command(s) did not end in OK",
            commands.len()
        );
    }
    Ok(())
}
