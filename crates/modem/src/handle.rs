//! [`ModemHandle`]: how everyone but the modem task talks to the modem.
//!
//! Why a handle: a serial port has one owner (STYLE "The per-modem task owns the port"). The
//! handle is `Clone` and cheap; it sends a [`Request`] over a bounded `mpsc` (back-pressure
//! when the task is busy) and waits on a `oneshot` for the answer, as rumqttc's `AsyncClient`
//! does. The typed operations (`list_messages`, `send_pdu`, …) are in [`crate::ops`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use conductor_at::Command;
use tokio::sync::{mpsc, oneshot, watch};

use crate::errors::ModemError;
use crate::link::{ExecError, Reply};
use crate::ops::Exec;
use crate::state::ModemState;

/// One command for the task, with where to send its answer.
#[derive(Debug)]
pub struct Request {
    /// The command.
    pub(crate) command: Command,
    /// Where the answer goes. A dropped receiver means the caller gave up: the task then
    /// skips the command if it has not started it.
    pub(crate) reply: oneshot::Sender<Result<Reply, ExecError>>,
    /// Set by the task when it starts the command, so a caller whose answer never comes (the
    /// task died mid-command) knows a PDU may have been written.
    pub(crate) started: Arc<AtomicBool>,
}

impl Request {
    /// Marks the request as started; the task calls it just before running the command.
    pub(crate) fn start(&self) {
        self.started.store(true, Ordering::SeqCst);
    }
}

/// A cloneable handle to one modem task.
#[derive(Debug, Clone)]
pub struct ModemHandle {
    name: Arc<str>,
    requests: mpsc::Sender<Request>,
    state: watch::Receiver<ModemState>,
    /// Where the task's outbox hands a `+CUSD` URC to a waiting USSD request.
    ussd: Arc<crate::ussd::Tap>,
}

impl ModemHandle {
    pub(crate) fn new(
        name: &str,
        requests: mpsc::Sender<Request>,
        state: watch::Receiver<ModemState>,
        ussd: Arc<crate::ussd::Tap>,
    ) -> ModemHandle {
        ModemHandle {
            name: name.into(),
            requests,
            state,
            ussd,
        }
    }

    /// The USSD tap shared with the task's URC outbox.
    pub(crate) fn ussd_tap(&self) -> &Arc<crate::ussd::Tap> {
        &self.ussd
    }

    /// The modem's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A receiver of the task's published state (see [`ModemState`]).
    pub fn state(&self) -> watch::Receiver<ModemState> {
        self.state.clone()
    }

    /// A copy of the state as it is now.
    pub fn current_state(&self) -> ModemState {
        self.state.borrow().clone()
    }

    /// Whether the task is still running.
    pub fn is_running(&self) -> bool {
        !self.requests.is_closed()
    }

    pub(crate) async fn request(&self, command: Command) -> Result<Reply, ExecError> {
        let (reply, answer) = oneshot::channel();
        let started = Arc::new(AtomicBool::new(false));
        let has_pdu = command.pdu().is_some();
        let request = Request {
            command,
            reply,
            started: Arc::clone(&started),
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| ExecError::before_send(ModemError::Stopped))?;
        // A dropped sender means the task stopped without answering. If it had started the
        // command, a PDU may have been written (promise 3: assume it was).
        answer.await.map_err(|_| ExecError {
            error: ModemError::Stopped,
            pdu_sent: has_pdu && started.load(Ordering::SeqCst),
        })?
    }
}

impl Exec for ModemHandle {
    async fn exec(&mut self, command: Command) -> Result<Reply, ExecError> {
        self.request(command).await
    }
}
