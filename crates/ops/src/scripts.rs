//! Event scripts: programs run on `received`, `sent`, `delivered`, `failed`, `call`,
//! `modem_down`, `modem_up` (and alert) events, like gammu-smsd's `RunOnReceive` or
//! smstools' `eventhandler`, but safe.
//!
//! Why this shape:
//! - **No shell.** The command is an argv list run directly (`execve`), so nothing in a message
//!   (`$(touch /tmp/pwned); rm -rf ~`) is ever interpreted. The event reaches the program as JSON
//!   on standard input and in a few `CONDUCTOR_*` environment variables; env values cannot hold
//!   NUL, so `CONDUCTOR_TEXT` is left out when the text has one (stdin always has it).
//! - **Never in the way.** The runner follows the `events` table (the same source as the
//!   webhook outbox, so events from the gateway, the API, the CLI and plain SQL writers are all
//!   seen) in its own task. Message handling never waits for it. At most `concurrency` scripts
//!   run at once; further runs wait in a bounded queue (the oldest are kept; a run that does not
//!   fit is logged and recorded as a `script_dropped` event). Each run has a timeout after which
//!   its whole process group is killed.
//! - **Recorded.** Every run appends a `script_ran` event with the script, the event it ran
//!   for, the exit status (or the signal, or "timed out"), the duration and the first
//!   `output_limit` bytes of stdout and stderr, so `conductor show ID` tells the whole story.
//! - **Restart-safe.** The position in the events table is a persistent cursor
//!   (`event_cursors`, migration 0006) moved only past events whose runs have all finished (a
//!   low-water mark). After a restart the runner skips (script, event) pairs that already have
//!   a `script_ran`/`script_dropped` event, so nothing runs twice and nothing is skipped; only a
//!   run that a shutdown or crash interrupted runs again. The first start begins at the newest
//!   event: scripts do not replay the history of an existing database.
//!
//! Not here: reading the config (the binary's `toolbox_config`), webhooks (conductor-http).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use conductor_gateway::Clock;
use conductor_store::{Event, NewEvent, Store, StoreError};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The event names a script can subscribe to.
pub const EVENTS: [&str; 9] = [
    "received",
    "sent",
    "delivered",
    "failed",
    "call",
    "modem_down",
    "modem_up",
    "alert_raised",
    "alert_cleared",
];

/// The cursor's name in `event_cursors`.
const CURSOR: &str = "scripts";
/// Events read per look at the table.
const BATCH: usize = 200;
/// How long output is still read after the script exited (a daemonised grandchild may hold
/// the pipe open forever).
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// The script event name of a store event kind, if scripts can run on it.
pub fn script_event(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "received" | "received_incomplete" | "completed_late" => "received",
        "sent" => "sent",
        "delivered" => "delivered",
        "failed" => "failed",
        "modem_down" => "modem_down",
        "modem_up" => "modem_up",
        "alert_raised" => "alert_raised",
        "alert_cleared" => "alert_cleared",
        // The calls feature records `call`, `call_received`, `call_rejected`, ...
        k if k == "call" || k.starts_with("call_") => "call",
        _ => return None,
    })
}

/// One configured script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Its name in logs and `script_ran` events (default: the program's file name).
    pub name: String,
    /// The events it runs on ([`EVENTS`]); never empty once checked.
    pub on: Vec<String>,
    /// Program and arguments, run without a shell.
    pub command: Vec<String>,
    /// The process group is killed after this long.
    pub timeout: Duration,
}

/// Every script and the limits they share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptSettings {
    /// The scripts.
    pub scripts: Vec<Script>,
    /// Runs at once, over all scripts. Default 4.
    pub concurrency: usize,
    /// Runs waiting for a free slot before new ones are dropped. Default 1000.
    pub queue_limit: usize,
    /// Bytes of stdout and of stderr kept in the event log. Default 4096.
    pub output_limit: usize,
    /// How often the events table is looked at. Default 1 s.
    pub poll: Duration,
}

impl Default for ScriptSettings {
    fn default() -> Self {
        Self {
            scripts: Vec::new(),
            concurrency: 4,
            queue_limit: 1000,
            output_limit: 4096,
            poll: Duration::from_secs(1),
        }
    }
}

/// A script that cannot run as configured; shown with its config path (`scripts[1].on`).
#[derive(Debug, thiserror::Error)]
#[error("scripts[{index}].{field}: {message}")]
pub struct ScriptConfigError {
    /// The script's position.
    pub index: usize,
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl ScriptSettings {
    /// Checks every script: a program, known events, a timeout, unique names.
    pub fn check(&self) -> Result<(), ScriptConfigError> {
        for (index, script) in self.scripts.iter().enumerate() {
            let fail = |field, message: String| ScriptConfigError {
                index,
                field,
                message,
            };
            if script.command.first().is_none_or(|p| p.trim().is_empty()) {
                return Err(fail(
                    "command",
                    "give the program and its arguments as a list, such as \
                     [\"/usr/local/bin/on-sms\", \"--verbose\"] (no shell runs it)"
                        .into(),
                ));
            }
            if script.on.is_empty() {
                return Err(fail(
                    "on",
                    format!("name at least one event: {}", EVENTS.join(", ")),
                ));
            }
            if let Some(bad) = script.on.iter().find(|e| !EVENTS.contains(&e.as_str())) {
                return Err(fail(
                    "on",
                    format!("unknown event {bad:?}; known: {}", EVENTS.join(", ")),
                ));
            }
            if script.timeout.is_zero() {
                return Err(fail(
                    "timeout",
                    "must be more than 0s, such as \"30s\"".into(),
                ));
            }
            if self.scripts[..index].iter().any(|s| s.name == script.name) {
                return Err(fail(
                    "name",
                    format!(
                        "{:?} is used twice: give each script its own `name`",
                        script.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// One run waiting for a slot.
#[derive(Clone, Debug)]
struct Job {
    script: usize,
    event: Event,
    public: &'static str,
}

/// How a run ended.
#[derive(Debug)]
struct Outcome {
    exit_code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    error: Option<String>,
    duration: Duration,
    stdout: Captured,
    stderr: Captured,
}

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

/// The runner; [`ScriptRunner::spawn`] starts its task.
pub struct ScriptRunner {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Arc<ScriptSettings>,
}

impl std::fmt::Debug for ScriptRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptRunner")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ScriptRunner {
    /// A runner over `store` with checked `settings`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, settings: ScriptSettings) -> Self {
        Self {
            store,
            clock,
            settings: Arc::new(settings),
        }
    }

    /// Follows the events table until `shutdown`; runs still going then are killed (and run
    /// again after the next start, since their events are behind the cursor).
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            info!(
                scripts = self.settings.scripts.len(),
                "event scripts started"
            );
            let mut state = loop {
                match Follower::start(&self).await {
                    Ok(state) => break state,
                    Err(error) => {
                        warn!(%error, "event scripts cannot read their cursor; trying again");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(self.settings.poll) => {}
                        }
                    }
                }
            };
            let mut running: JoinSet<i64> = JoinSet::new();
            let mut tick = tokio::time::interval(self.settings.poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => {
                        running.abort_all();
                        while running.join_next().await.is_some() {}
                        return;
                    }
                    Some(done) = running.join_next(), if !running.is_empty() => {
                        if let Ok(event_id) = done {
                            state.finished(event_id);
                        }
                    }
                    _ = tick.tick() => {
                        if let Err(error) = state.read(&self).await {
                            warn!(%error, "event scripts could not read new events; trying again");
                        }
                    }
                }
                while running.len() < self.settings.concurrency {
                    let Some(job) = state.queue.pop_front() else {
                        break;
                    };
                    let store = self.store.clone();
                    let clock = Arc::clone(&self.clock);
                    let settings = Arc::clone(&self.settings);
                    running.spawn(async move {
                        let id = job.event.id;
                        run_and_record(&store, &*clock, &settings, job).await;
                        id
                    });
                }
                if let Err(error) = state.save(&self).await {
                    warn!(%error, "event scripts could not save their cursor; trying again");
                }
            }
        })
    }
}

/// The follower's place in the events table.
struct Follower {
    /// The highest event id read into the queue.
    read_upto: i64,
    /// The cursor as last saved.
    saved: i64,
    /// Runs not finished yet, per event id (queued or running).
    outstanding: BTreeMap<i64, usize>,
    /// (script name, event id) pairs that ran before a restart.
    already: HashSet<(String, i64)>,
    queue: VecDeque<Job>,
}

impl Follower {
    async fn start(runner: &ScriptRunner) -> Result<Self, StoreError> {
        let store = &runner.store;
        let cursor = match store.event_cursor(CURSOR.into()).await? {
            Some(cursor) => cursor,
            None => {
                let last = store.last_event_id().await?;
                store
                    .set_event_cursor(CURSOR.into(), last, runner.clock.now())
                    .await?;
                last
            }
        };
        // Runs recorded after the cursor: their events are behind the low-water mark only
        // because an earlier run of the same event was still going at the stop.
        let mut already = HashSet::new();
        let mut after = cursor;
        loop {
            let events = store.events_since(after, BATCH).await?;
            let Some(last) = events.last() else {
                break;
            };
            after = last.id;
            for event in &events {
                if event.kind == "script_ran" || event.kind == "script_dropped" {
                    let detail = event.detail.as_ref();
                    let script = detail.and_then(|d| d["script"].as_str());
                    let id = detail.and_then(|d| d["event_id"].as_i64());
                    if let (Some(script), Some(id)) = (script, id) {
                        already.insert((script.to_owned(), id));
                    }
                }
            }
        }
        Ok(Self {
            read_upto: cursor,
            saved: cursor,
            outstanding: BTreeMap::new(),
            already,
            queue: VecDeque::new(),
        })
    }

    /// Queues the runs of new events.
    async fn read(&mut self, runner: &ScriptRunner) -> Result<(), StoreError> {
        let settings = &runner.settings;
        loop {
            let events = runner.store.events_since(self.read_upto, BATCH).await?;
            let Some(last) = events.last().map(|e| e.id) else {
                return Ok(());
            };
            for event in events {
                let Some(public) = script_event(&event.kind) else {
                    continue;
                };
                for (index, script) in settings.scripts.iter().enumerate() {
                    if !script.on.iter().any(|e| e == public)
                        || self.already.remove(&(script.name.clone(), event.id))
                    {
                        continue;
                    }
                    if self.queue.len() >= settings.queue_limit {
                        drop_run(runner, script, &event, public).await;
                        continue;
                    }
                    *self.outstanding.entry(event.id).or_default() += 1;
                    self.queue.push_back(Job {
                        script: index,
                        event: event.clone(),
                        public,
                    });
                }
            }
            self.read_upto = last;
        }
    }

    fn finished(&mut self, event_id: i64) {
        if let Some(count) = self.outstanding.get_mut(&event_id) {
            *count -= 1;
            if *count == 0 {
                self.outstanding.remove(&event_id);
            }
        }
    }

    /// Moves the cursor to just before the oldest event with an unfinished run.
    async fn save(&mut self, runner: &ScriptRunner) -> Result<(), StoreError> {
        let mark = match self.outstanding.keys().next() {
            Some(&oldest) => oldest - 1,
            None => self.read_upto,
        };
        if mark > self.saved {
            runner
                .store
                .set_event_cursor(CURSOR.into(), mark, runner.clock.now())
                .await?;
            self.saved = mark;
        }
        Ok(())
    }
}

/// Records a run that did not fit in the queue.
async fn drop_run(runner: &ScriptRunner, script: &Script, event: &Event, public: &str) {
    warn!(
        script = %script.name,
        event_id = event.id,
        event = public,
        limit = runner.settings.queue_limit,
        "event script queue is full: this run is dropped (raise scripts_queue_limit or \
         scripts_concurrency, or make the script faster)"
    );
    let recorded = runner
        .store
        .append_event(NewEvent {
            at: runner.clock.now(),
            kind: "script_dropped".into(),
            message_id: event.message_id,
            modem_id: event.modem_id.clone(),
            detail: Some(json!({
                "script": script.name,
                "event": public,
                "event_id": event.id,
                "why": "queue full",
            })),
        })
        .await;
    if let Err(error) = recorded {
        warn!(%error, "could not record a dropped script run");
    }
}

/// The JSON a script reads on stdin.
async fn payload(store: &Store, job: &Job) -> Value {
    let event = &job.event;
    let mut value = json!({
        "event": job.public,
        "event_id": event.id,
        "kind": event.kind,
        "at": event.at.timestamp().map(|t| t.to_string()),
        "message_id": event.message_id.map(|m| m.0),
        "modem_id": event.modem_id.as_ref().map(|m| m.as_str()),
        "detail": event.detail,
    });
    if let Some(id) = event.message_id
        && let Ok(Some(detail)) = store.message(id).await
    {
        let m = &detail.message;
        value["message"] = json!({
            "id": m.id.0,
            "direction": m.direction.as_str(),
            "status": m.status.as_str(),
            "number": m.phone_number,
            "text": m.content,
            "timestamp": m.timestamp.timestamp().map(|t| t.to_string()),
            "modem_id": m.modem_id.as_ref().or(m.sending_modem.as_ref()).map(|x| x.as_str()),
            "parts": m.parts_total,
            "reason": m.reason,
        });
    }
    value
}

/// The environment variables of a run: the main fields, as plain values (never parsed by a
/// shell by us; a script that passes them to `eval` is on its own).
fn environment(script: &Script, payload: &Value) -> Vec<(String, String)> {
    let mut env = vec![
        ("CONDUCTOR_SCRIPT".to_owned(), script.name.clone()),
        (
            "CONDUCTOR_EVENT".to_owned(),
            payload["event"].as_str().unwrap_or_default().to_owned(),
        ),
        (
            "CONDUCTOR_EVENT_ID".to_owned(),
            payload["event_id"].to_string(),
        ),
        (
            "CONDUCTOR_EVENT_KIND".to_owned(),
            payload["kind"].as_str().unwrap_or_default().to_owned(),
        ),
    ];
    let message = &payload["message"];
    let text_fields = [
        ("CONDUCTOR_MESSAGE_ID", &payload["message_id"]),
        ("CONDUCTOR_MODEM", &payload["modem_id"]),
        ("CONDUCTOR_NUMBER", &message["number"]),
        ("CONDUCTOR_DIRECTION", &message["direction"]),
        ("CONDUCTOR_STATUS", &message["status"]),
        ("CONDUCTOR_TEXT", &message["text"]),
    ];
    for (name, value) in text_fields {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if name == "CONDUCTOR_MODEM" && text.is_empty() {
            continue;
        }
        // An environment string ends at NUL: such a text is only on stdin.
        if !text.contains('\0') {
            env.push((name.to_owned(), text));
        }
    }
    if env.iter().all(|(n, _)| n != "CONDUCTOR_MODEM")
        && let Some(modem) = message["modem_id"].as_str()
    {
        env.push(("CONDUCTOR_MODEM".to_owned(), modem.to_owned()));
    }
    // A call has no message row: the caller's number is in the event's detail (null when
    // withheld). A script on `call` reads it where a script on `received` reads the sender.
    if payload["event"] == "call"
        && env.iter().all(|(n, _)| n != "CONDUCTOR_NUMBER")
        && let Some(number) = payload["detail"]["number"].as_str()
        && !number.contains('\0')
    {
        env.push(("CONDUCTOR_NUMBER".to_owned(), number.to_owned()));
    }
    env
}

async fn run_and_record(store: &Store, clock: &dyn Clock, settings: &ScriptSettings, job: Job) {
    let Some(script) = settings.scripts.get(job.script) else {
        return;
    };
    let input = payload(store, &job).await;
    let outcome = run(script, &input, settings.output_limit).await;
    let text = |c: &Captured| String::from_utf8_lossy(&c.bytes).into_owned();
    let status = if outcome.timed_out {
        format!("timed out after {}", humantime_secs(script.timeout))
    } else if let Some(error) = &outcome.error {
        error.clone()
    } else if let Some(code) = outcome.exit_code {
        format!("exit {code}")
    } else {
        format!("killed by signal {}", outcome.signal.unwrap_or_default())
    };
    let ok = outcome.exit_code == Some(0) && !outcome.timed_out;
    if ok {
        info!(script = %script.name, event_id = job.event.id, event = job.public,
              duration_ms = outcome.duration.as_millis() as u64, "event script ran");
    } else {
        warn!(script = %script.name, event_id = job.event.id, event = job.public, %status,
              stderr = %text(&outcome.stderr), "event script did not succeed");
    }
    let recorded = store
        .append_event(NewEvent {
            at: clock.now(),
            kind: "script_ran".into(),
            message_id: job.event.message_id,
            modem_id: job.event.modem_id.clone(),
            detail: Some(json!({
                "script": script.name,
                "event": job.public,
                "event_id": job.event.id,
                "command": script.command.first(),
                "ok": ok,
                "status": status,
                "exit_code": outcome.exit_code,
                "signal": outcome.signal,
                "timed_out": outcome.timed_out,
                "duration_ms": outcome.duration.as_millis() as u64,
                "stdout": text(&outcome.stdout),
                "stdout_truncated": outcome.stdout.truncated,
                "stderr": text(&outcome.stderr),
                "stderr_truncated": outcome.stderr.truncated,
            })),
        })
        .await;
    if let Err(error) = recorded {
        warn!(%error, script = %script.name, "could not record an event script's run");
    }
}

fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// Kills the run's process group when dropped (timeout, shutdown, or the task aborted).
struct GroupGuard {
    pid: Option<u32>,
}

impl GroupGuard {
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.pid.take()
            && let Ok(pid) = i32::try_from(pid)
        {
            // The child leads its own group (process_group(0)): this reaches what it started.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.pid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn capture(mut pipe: impl AsyncRead + Unpin, limit: usize) -> Captured {
    let mut captured = Captured::default();
    let mut buffer = [0u8; 4096];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return captured,
            Ok(n) => {
                let room = limit.saturating_sub(captured.bytes.len());
                captured.bytes.extend_from_slice(&buffer[..n.min(room)]);
                // Keep draining: a script blocked on a full pipe would look like a hang.
                captured.truncated |= n > room;
            }
        }
    }
}

/// Runs `script` with `input` on stdin; never panics, whatever the program does.
async fn run(script: &Script, input: &Value, limit: usize) -> Outcome {
    let started = tokio::time::Instant::now();
    let failed = |error: String| Outcome {
        exit_code: None,
        signal: None,
        timed_out: false,
        error: Some(error),
        duration: started.elapsed(),
        stdout: Captured::default(),
        stderr: Captured::default(),
    };
    let Some((program, args)) = script.command.split_first() else {
        return failed("no program configured".into());
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(environment(script, input))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return failed(format!(
                "cannot start {program:?}: {e} (check the path and that it is executable)"
            ));
        }
    };
    let mut guard = GroupGuard { pid: child.id() };
    if let Some(mut stdin) = child.stdin.take() {
        let mut body = input.to_string().into_bytes();
        body.push(b'\n');
        // A script that does not read stdin closes it: a broken pipe is not its failure.
        tokio::spawn(async move {
            let _ = stdin.write_all(&body).await;
        });
    }
    let stdout = child.stdout.take().map(|p| tokio::spawn(capture(p, limit)));
    let stderr = child.stderr.take().map(|p| tokio::spawn(capture(p, limit)));
    let (status, timed_out) = match tokio::time::timeout(script.timeout, child.wait()).await {
        Ok(status) => (status.ok(), false),
        Err(_) => {
            guard.kill();
            (child.wait().await.ok(), true)
        }
    };
    // Whatever the script left running in its group goes with it.
    guard.kill();
    let duration = started.elapsed();
    let collect = |handle: Option<JoinHandle<Captured>>| async move {
        match handle {
            Some(handle) => tokio::time::timeout(OUTPUT_GRACE, handle)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => Captured::default(),
        }
    };
    let (stdout, stderr) = (collect(stdout).await, collect(stderr).await);
    #[cfg(unix)]
    let signal = {
        use std::os::unix::process::ExitStatusExt;
        status.and_then(|s| s.signal())
    };
    #[cfg(not(unix))]
    let signal = None;
    Outcome {
        exit_code: status.and_then(|s| s.code()),
        signal,
        timed_out,
        error: None,
        duration,
        stdout,
        stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(command: &[&str], timeout: Duration) -> Script {
        Script {
            name: "t".into(),
            on: vec!["received".into()],
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            timeout,
        }
    }

    #[test]
    fn store_kinds_map_to_script_events_and_others_are_ignored() {
        assert_eq!(script_event("received_incomplete"), Some("received"));
        assert_eq!(script_event("call_rejected"), Some("call"));
        assert_eq!(script_event("script_ran"), None);
        assert_eq!(script_event("status_report"), None);
    }

    #[test]
    fn a_script_without_a_program_or_with_an_unknown_event_is_refused_by_path() {
        let mut settings = ScriptSettings {
            scripts: vec![script(&[], Duration::from_secs(1))],
            ..ScriptSettings::default()
        };
        assert!(
            settings
                .check()
                .expect_err("no program")
                .to_string()
                .contains("scripts[0].command")
        );
        settings.scripts[0].command = vec!["/bin/true".into()];
        settings.scripts[0].on = vec!["recieved".into()];
        assert!(
            settings
                .check()
                .expect_err("typo")
                .to_string()
                .contains("scripts[0].on")
        );
    }

    #[test]
    fn text_with_a_nul_is_left_out_of_the_environment_but_other_fields_stay() {
        let input = json!({"event": "received", "event_id": 7, "kind": "received",
            "message_id": 3, "modem_id": "m1",
            "message": {"number": "+1555", "text": "a\u{0}b", "direction": "inbound"}});
        let env = environment(&script(&["x"], Duration::from_secs(1)), &input);
        let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("CONDUCTOR_TEXT"), None);
        assert_eq!(get("CONDUCTOR_NUMBER"), Some("+1555"));
        assert_eq!(get("CONDUCTOR_MESSAGE_ID"), Some("3"));
        assert_eq!(get("CONDUCTOR_MODEM"), Some("m1"));
    }

    #[test]
    fn a_call_gives_the_callers_number_and_a_withheld_one_gives_none() {
        let s = script(&["x"], Duration::from_secs(1));
        let call = |number: Value| {
            json!({"event": "call", "event_id": 9, "kind": "call", "message_id": null,
                   "modem_id": "m1", "detail": {"number": number, "rejected": true}})
        };
        let number = |env: Vec<(String, String)>| {
            env.into_iter()
                .find(|(k, _)| k == "CONDUCTOR_NUMBER")
                .map(|(_, v)| v)
        };
        assert_eq!(
            number(environment(&s, &call(json!("+33612345678")))).as_deref(),
            Some("+33612345678")
        );
        assert_eq!(number(environment(&s, &call(Value::Null))), None);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_hanging_script_and_its_children_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let marker = dir.path().join("child-survived");
        let body = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let s = script(&["/bin/sh", "-c", &body], Duration::from_millis(300));
        let outcome = run(&s, &json!({}), 100).await;
        assert!(outcome.timed_out, "{outcome:?}");
        assert!(outcome.duration < Duration::from_secs(5), "{outcome:?}");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "the grandchild outlived the timeout");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn exit_status_and_the_first_bytes_of_output_are_captured() {
        let s = script(
            &[
                "/bin/sh",
                "-c",
                "cat; head -c 10000 /dev/zero | tr '\\0' x; echo oops >&2; exit 3",
            ],
            Duration::from_secs(10),
        );
        let outcome = run(&s, &json!({"k": 1}), 64).await;
        assert_eq!(outcome.exit_code, Some(3));
        assert!(outcome.stdout.truncated);
        assert_eq!(outcome.stdout.bytes.len(), 64);
        assert!(String::from_utf8_lossy(&outcome.stdout.bytes).starts_with("{\"k\":1}"));
        assert_eq!(String::from_utf8_lossy(&outcome.stderr.bytes), "oops\n");
    }
}
