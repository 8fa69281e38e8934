//! `conductor config init|check|schema`.

use crate::cli::ConfigCommand;
use crate::config::{self, Config, ConfigFile, ModemSection, Overrides, Source};
use anyhow::{Context, Result, bail};

/// Runs `conductor config ...`.
pub fn run(command: ConfigCommand, overrides: &Overrides) -> Result<()> {
    match command {
        ConfigCommand::Schema => {
            println!("{}", serde_json::to_string_pretty(&config::schema())?);
            Ok(())
        }
        ConfigCommand::Check => {
            let config = Config::load(overrides)?;
            match &config.source {
                Source::File(path) => println!("config: {} (valid)", path.display()),
                Source::Defaults => println!("config: none found; using defaults"),
            }
            println!("database: {}", config.database);
            if config.file.modems.is_empty() {
                println!("modems: none configured (add them to \"modems\" or use --modem)");
            }
            for modem in &config.file.modems {
                println!("modem {}: {}", modem.id, modem.device);
            }
            Ok(())
        }
        ConfigCommand::Init { path, force } => {
            let path = path
                .or_else(|| overrides.config.clone())
                .or_else(config::default_config_path)
                .context("no config location is known here; give one with --path FILE")?;
            if path.exists() && !force {
                bail!(
                    "{} already exists; use --force to overwrite it",
                    path.display()
                );
            }
            let starter = ConfigFile {
                database: config::DatabaseSection {
                    path: Some("conductor.db".into()),
                    ..config::DatabaseSection::default()
                },
                modems: vec![ModemSection::new("sim1", "/dev/ttyUSB2")],
                ..ConfigFile::default()
            };
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let text = serde_json::to_string_pretty(&starter)?;
            std::fs::write(&path, text + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "wrote {}; set \"modems\"[0].device to your modem's port (`conductor modem probe DEVICE` tells which port answers), then `conductor config check`",
                path.display()
            );
            Ok(())
        }
    }
}
