//! What the driver does about a modem that stops answering while its port stays open.
//!
//! Why: the port stays open, so nothing fails at the OS level; commands simply time out.
//! The Huawei `AT+CMGL` hang with a full store is the classic case (docs/real-modems.md,
//! chan_dongle's BUGS: a hung device "still sending ^BOOT: and ^RSSI: URCs"). Reopening the
//! port alone rarely helps such a modem, and resetting it at once is heavy-handed when all it
//! needed was an ESC to leave a stuck `> ` prompt. So, after `max_consecutive_timeouts`
//! timeouts in a row (the link marks itself [`hung`](crate::link::Link::hung)), the task
//! climbs one step at a time and stops at the first that works:
//!
//! ```text
//!   hung ──► 1. probe: ESC, then `AT` (twice) ── answered ──► serve on
//!                │ no answer
//!                ▼
//!            2. reset: `AT+CFUN=1,1`, then `AT` until it answers ── answered ──► re-run init
//!                │ not allowed (`allow_reset` false), or no answer
//!                ▼
//!            3. reopen: close the port, reconnect with backoff (the usual outage path)
//! ```
//!
//! Each step is logged once (warn), counted in [`Recoveries`], and shows in the published
//! state (`condition` `not_responding` while it runs), which the gateway turns into a modem
//! event and the status row's reason. Keeps promise 3: nothing here resends anything; a send
//! that timed out was already reported ambiguous by the link.
//!
//! Spec: TS 27.005 §3.5.1 (ESC cancels the data phase); TS 27.007 §8.2 (`+CFUN=<fun>,<rst>`:
//! `<rst>`=1 resets the MT before setting `<fun>`).

use std::time::Duration;

use conductor_at::Command;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::ModemConfig;
use crate::link::Direct;
use crate::state::{Condition, Recoveries, RecoveryStep};

/// ESC: ends a data phase the modem may be stuck in.
const ESC: u8 = 0x1B;

/// How long each probing `AT` waits.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long `AT+CFUN=1,1` may take to answer (some modems answer only after restarting).
const RESET_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a reset modem gets to answer `AT` again before the port is reopened.
const RESET_RECOVERY: Duration = Duration::from_secs(60);

/// Pause between `AT`s while a reset modem restarts.
const RESET_POLL: Duration = Duration::from_secs(3);

/// Where the escalation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The modem answered the probe: keep serving on this link.
    Answered,
    /// The modem answered after a reset: its settings are gone, run init again.
    WasReset,
    /// Nothing helped (or a reset was not allowed): close the port and reconnect.
    Reopen,
}

/// Runs the escalation on a hung link (see the module doc).
pub(crate) async fn escalate(d: &mut Direct<'_, '_>, config: &ModemConfig) -> Outcome {
    d.link.escalating = true;
    let outcome = steps(d, config).await;
    d.link.escalating = false;
    outcome
}

async fn steps(d: &mut Direct<'_, '_>, config: &ModemConfig) -> Outcome {
    let count = d.link.consecutive_timeouts();
    d.hooks.update(|s| {
        s.condition = Some(Condition::NotResponding);
        true
    });
    warn!(
        timeouts = count,
        "the modem stopped answering ({count} commands in a row timed out) while its port \
         stays open: sending ESC and probing with AT"
    );
    record(d, RecoveryStep::Probe, None);
    if d.link.write_raw(&[ESC]).await.is_ok() && probe(d, 2).await {
        info!("the modem answers again after ESC; carrying on");
        return finish(d, RecoveryStep::Probe, Outcome::Answered);
    }
    if d.link.dead.is_some() {
        return finish(d, RecoveryStep::Reopen, Outcome::Reopen);
    }
    if config.allow_reset {
        warn!("no answer to AT after ESC: resetting the modem with AT+CFUN=1,1");
        record(d, RecoveryStep::Reset, None);
        if let Ok(command) = Command::new("AT+CFUN=1,1") {
            let command = command.with_timeout(RESET_TIMEOUT);
            // The answer (OK, or nothing from a modem that restarts first) does not matter:
            // whether `AT` works afterwards does.
            let _ = d.link.exec(&mut d.hooks, command).await;
        }
        let until = Instant::now() + RESET_RECOVERY;
        while Instant::now() < until && d.link.dead.is_none() {
            if probe(d, 1).await {
                info!("the modem answers again after the reset; re-running init");
                return finish(d, RecoveryStep::Reset, Outcome::WasReset);
            }
            d.link
                .idle_until(&mut d.hooks, Instant::now() + RESET_POLL)
                .await;
        }
        warn!(
            "the modem did not answer within {RESET_RECOVERY:?} of the reset: closing and \
             reopening the port"
        );
    } else {
        warn!(
            "no answer to AT after ESC: closing and reopening the port (a reset with \
             AT+CFUN=1,1 is not allowed for this modem; set modems[].allow_reset to true to \
             allow it)"
        );
    }
    finish(d, RecoveryStep::Reopen, Outcome::Reopen)
}

/// Sends `AT` up to `attempts` times; true on any final result (even `ERROR` proves life).
async fn probe(d: &mut Direct<'_, '_>, attempts: u32) -> bool {
    for _ in 0..attempts {
        let Ok(command) = Command::new("AT") else {
            return false;
        };
        match d
            .link
            .exec(&mut d.hooks, command.with_timeout(PROBE_TIMEOUT))
            .await
        {
            Ok(_) => {
                d.link.reset_timeouts();
                return true;
            }
            Err(_) if d.link.dead.is_some() => return false,
            Err(_) => {}
        }
    }
    false
}

/// Counts a step as taken (`recovered` unknown yet) or records how it ended.
fn record(d: &mut Direct<'_, '_>, step: RecoveryStep, recovered: Option<bool>) {
    d.hooks.update(|s| {
        let r: &mut Recoveries = &mut s.recoveries;
        if recovered.is_none() {
            match step {
                RecoveryStep::Probe => r.probes += 1,
                RecoveryStep::Reset => r.resets += 1,
                RecoveryStep::Reopen => r.reopens += 1,
            }
        }
        r.last = Some((step, recovered.unwrap_or(false)));
        true
    });
}

fn finish(d: &mut Direct<'_, '_>, step: RecoveryStep, outcome: Outcome) -> Outcome {
    if step == RecoveryStep::Reopen {
        record(d, step, None);
    }
    let recovered = outcome != Outcome::Reopen;
    record(d, step, Some(recovered));
    if recovered {
        d.hooks.update(|s| {
            let changed = s.condition == Some(Condition::NotResponding);
            if changed {
                s.condition = None;
            }
            changed
        });
    }
    outcome
}
