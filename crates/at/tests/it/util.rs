//! The transcript harness: one script, every way of cutting its input into reads.

use std::time::{Duration, Instant};

use conductor_at::{Busy, Command, CommandId, Config, Engine, Event, Response};

/// One step of a conversation.
#[derive(Debug, Clone)]
pub enum Step {
    /// Submit a command.
    Submit(Command),
    /// Bytes from the modem.
    Input(Vec<u8>),
    /// Let time pass, then call `handle_timeout`.
    Advance(Duration),
}

/// Shorthand for a command step from a line.
pub fn submit(line: &str) -> Step {
    Step::Submit(Command::new(line).expect("valid test command"))
}

/// Shorthand for an input step.
pub fn input(bytes: impl AsRef<[u8]>) -> Step {
    Step::Input(bytes.as_ref().to_vec())
}

/// Shorthand for a time step.
pub fn advance(secs: f64) -> Step {
    Step::Advance(Duration::from_secs_f64(secs))
}

/// Everything observable from one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The result of each `Submit`, in order.
    pub submits: Vec<Result<CommandId, Busy>>,
    /// Bytes written to the modem, one entry per `poll_transmit`.
    pub transmits: Vec<Vec<u8>>,
    /// Events in order.
    pub events: Vec<Event>,
}

impl Outcome {
    /// The response of the only `Completed` event for `id`.
    pub fn response(&self, index: usize) -> &Response {
        let id = self.id(index);
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Completed {
                    id: done, response, ..
                } if *done == id => Some(response),
                _ => None,
            })
            .expect("the command completed")
    }

    /// The id given to the `index`-th submit.
    pub fn id(&self, index: usize) -> CommandId {
        self.submits[index].clone().expect("the submit succeeded")
    }
}

/// How a run cuts the inputs into reads.
#[derive(Debug, Clone, Copy)]
enum Feeding {
    Whole,
    Bytewise,
    /// Input step `step` is cut in two at `offset`; the others are whole.
    Split {
        step: usize,
        offset: usize,
    },
}

fn run_with(config: &Config, steps: &[Step], feeding: Feeding, start: Instant) -> Outcome {
    let mut engine = Engine::with_config(config.clone());
    let mut now = start;
    let mut outcome = Outcome {
        submits: Vec::new(),
        transmits: Vec::new(),
        events: Vec::new(),
    };
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Submit(command) => outcome.submits.push(engine.submit(now, command.clone())),
            Step::Input(bytes) => match feeding {
                Feeding::Whole => engine.handle_input(now, bytes),
                Feeding::Bytewise => {
                    for byte in bytes {
                        engine.handle_input(now, std::slice::from_ref(byte));
                    }
                }
                Feeding::Split { step, offset } if step == i => {
                    engine.handle_input(now, &bytes[..offset]);
                    engine.handle_input(now, &bytes[offset..]);
                }
                Feeding::Split { .. } => engine.handle_input(now, bytes),
            },
            Step::Advance(by) => {
                now += *by;
                engine.handle_timeout(now);
            }
        }
        outcome
            .transmits
            .extend(std::iter::from_fn(|| engine.poll_transmit()));
        outcome
            .events
            .extend(std::iter::from_fn(|| engine.poll_event()));
    }
    outcome
}

/// Runs the transcript with the default config under every feeding and returns the outcome,
/// after checking that all feedings agree.
pub fn run(steps: &[Step]) -> Outcome {
    run_config(&Config::default(), steps)
}

/// [`run`] with a given config.
pub fn run_config(config: &Config, steps: &[Step]) -> Outcome {
    let start = Instant::now();
    let whole = run_with(config, steps, Feeding::Whole, start);
    let bytewise = run_with(config, steps, Feeding::Bytewise, start);
    assert_eq!(
        bytewise, whole,
        "feeding one byte at a time changed the outcome"
    );
    for (step, s) in steps.iter().enumerate() {
        let Step::Input(bytes) = s else { continue };
        for offset in 0..=bytes.len() {
            let split = run_with(config, steps, Feeding::Split { step, offset }, start);
            assert_eq!(
                split, whole,
                "splitting input step {step} at offset {offset} changed the outcome"
            );
        }
    }
    whole
}
