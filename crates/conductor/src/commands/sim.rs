//! `conductor sim`: one virtual modem on TCP and/or a pty, with its control interface.

use crate::cli::SimArgs;
use anyhow::{Context, Result, bail};
use conductor_sim::SimulatorConfig;

/// Runs the simulator until Ctrl-C or SIGTERM.
pub fn run(args: SimArgs) -> Result<()> {
    if args.tcp.is_none() && !args.pty {
        bail!("give --tcp HOST:PORT and/or --pty so there is something to connect to");
    }
    let config = SimulatorConfig {
        tcp: args.tcp,
        pty: args.pty,
        sim_capacity: args.sim_capacity,
        send_latency: args
            .send_latency
            .parse()
            .map_err(|e| anyhow::anyhow!("--send-latency: {e}"))?,
        control: args.control,
        seed: args.seed,
        personality: args
            .personality
            .parse()
            .map_err(|e| anyhow::anyhow!("--personality: {e}"))?,
        own_number: args.number,
        pin: args.pin,
        ..SimulatorConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        conductor_sim::serve(config, crate::shutdown_signal())
            .await
            .context("the virtual modem stopped")
    })
}
