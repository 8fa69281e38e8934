//! `conductor`: the binary. Parses the command line, runs the verb, and turns errors into a
//! one-line message on stderr and a documented exit code.
//!
//! Exit codes: 0 success; 1 the command failed (bad input, unhealthy, unreachable modem);
//! 2 the command line itself was wrong (clap's usage errors).

mod cli;
mod commands;
mod config;
mod pdu_json;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let overrides = config::Overrides {
        config: cli.config.clone(),
        db: cli.db.clone(),
        modems: Vec::new(),
    };
    let result = match cli.command {
        cli::Command::Pdu(command) => commands::pdu::run(command),
        cli::Command::Config(command) => commands::config::run(command, &overrides),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
