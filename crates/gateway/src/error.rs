//! [`GatewayError`]: why the gateway could not start or stopped, worded for the operator.
//!
//! Why so few variants: once running, the gateway never stops on a bad PDU, a modem error or
//! a failed database write (promise 5); those are logged, stored on rows or shown in the
//! modem's status row, and retried. What is left is what keeps it from starting at all, and a
//! task that died (a bug).

use conductor_modem::OpenError;
use conductor_store::StoreError;

/// The gateway could not start, or a task of it failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// `modems` is empty.
    #[error("no modems are configured: add at least one entry to `modems` in the config")]
    NoModems,

    /// A modem has an empty id.
    #[error("modems[{index}].id is empty: give every modem a short unique name such as \"sim1\"")]
    EmptyModemId {
        /// Its position in `modems`.
        index: usize,
    },

    /// Two modems share an id (rows could not tell them apart).
    #[error(
        "modem id {id:?} is used by modems[{first}] and modems[{second}]: give every modem its \
         own id"
    )]
    DuplicateModemId {
        /// The id.
        id: String,
        /// The first modem with it.
        first: usize,
        /// The second.
        second: usize,
    },

    /// A modem's device string cannot name a device.
    #[error("modems[{index}] ({id}): {source}")]
    Device {
        /// Its position in `modems`.
        index: usize,
        /// Its id.
        id: String,
        /// Why.
        #[source]
        source: OpenError,
    },

    /// A modem could not be added to the running gateway (a config reload).
    #[error("modem {id:?} cannot be added: {reason}")]
    AddModem {
        /// Its id.
        id: String,
        /// Why, and what to do.
        reason: String,
    },

    /// No modem with this id is served (a removal named the wrong one).
    #[error("no modem {id:?} is served by this gateway: check its id in the config")]
    UnknownModem {
        /// The id asked for.
        id: String,
    },

    /// The gateway has stopped or is stopping, so it takes no more changes.
    #[error("the gateway has stopped and takes no more changes; start the daemon again")]
    Stopped,

    /// The database failed at start-up or shutdown (running, the gateway logs and retries).
    #[error("{doing}: {source}")]
    Store {
        /// What the gateway was doing.
        doing: &'static str,
        /// The store's error, which says what to do (boxed: SQLite's errors are large).
        #[source]
        source: Box<StoreError>,
    },

    /// A task of the gateway panicked.
    #[error(
        "the gateway's {task} task failed: {detail} (this is a bug in conductor; please report it)"
    )]
    TaskFailed {
        /// Which task.
        task: String,
        /// The panic.
        detail: String,
    },
}

impl GatewayError {
    pub(crate) fn store(doing: &'static str) -> impl FnOnce(StoreError) -> GatewayError {
        move |source| GatewayError::Store {
            doing,
            source: Box::new(source),
        }
    }
}
