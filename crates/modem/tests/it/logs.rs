//! What the driver logs: never the PIN, and one error per outage rather than one per retry.
//!
//! A small capturing subscriber records every event and span field at every level, so the
//! checks see what a `RUST_LOG=trace` run would print.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use conductor_modem::{ModemConfig, SimPin};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::util::*;

/// Every event as `LEVEL message field=value …`, and every span field.
#[derive(Clone, Default)]
struct Capture {
    lines: Arc<Mutex<Vec<(Level, String)>>>,
    next_id: Arc<AtomicU64>,
}

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
}

impl Capture {
    fn push(&self, level: Level, text: String) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push((level, text));
        }
    }

    fn all(&self) -> Vec<(Level, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut text = String::new();
        span.record(&mut Text(&mut text));
        self.push(*span.metadata().level(), format!("span{text}"));
        Id::from_u64(self.next_id.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut text = String::new();
        values.record(&mut Text(&mut text));
        self.push(Level::TRACE, format!("record{text}"));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = String::new();
        event.record(&mut Text(&mut text));
        self.push(*event.metadata().level(), text);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[tokio::test(start_paused = true)]
async fn the_pin_never_appears_in_any_log_line_even_at_trace_level() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let mut unlocked = false;
    let config = ModemConfig {
        pin: Some(SimPin::new("8642")),
        ..config()
    };
    let bench = Bench::start_with(
        config,
        handler(move |line| match line {
            "AT+CPIN=\"8642\"" => {
                unlocked = true;
                ok()
            }
            "AT+CPIN?" if !unlocked => ok_with(&["+CPIN: SIM PIN"]),
            other => healthy(other),
        }),
        0,
    );
    bench.ready().await;
    let lines = capture.all();
    assert!(
        lines.iter().any(|(_, l)| l.contains("AT+CPIN=<redacted>")),
        "the PIN command is logged, masked"
    );
    for (_, line) in &lines {
        assert!(!line.contains("8642"), "leaked: {line}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_outage_is_logged_once_at_error_level_however_many_retries_it_takes() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let bench = Bench::start_with(config(), handler(healthy), 6);
    bench.ready().await;
    let lines = capture.all();
    let errors: Vec<&String> = lines
        .iter()
        .filter(|(level, _)| *level == Level::ERROR)
        .map(|(_, l)| l)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("plugged in"),
        "says what to check: {}",
        errors[0]
    );
    assert!(
        lines
            .iter()
            .any(|(level, l)| *level == Level::INFO && l.contains("back and ready")),
        "the recovery is logged"
    );
}
