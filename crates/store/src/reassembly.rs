//! Reassembly of long inbound messages, shared by both backends.
//!
//! Why here: how parts are grouped, what a part does to its waiting group, and how the parts
//! are joined into one text (with gaps marked and a reason naming the missing parts) must be
//! the same whichever database holds them. Each backend reads the parts and writes the results
//! with its own SQL (PostgreSQL also locks the group across nodes).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::error::StoreError;
use crate::model::{Concat, InboundPart, PartOutcome, StoredPart};
use crate::types::{MessageId, normalize_number};

/// Marks where missing parts were in the text of an incomplete message.
const GAP: &str = "[…]";

/// The parts of one long message share this key while they are reassembled (the same text on
/// both backends, so a database moved between them keeps its waiting groups).
pub(crate) fn group_key(part: &InboundPart) -> String {
    let (sms, concat) = (&part.sms, part.concat);
    format!(
        "{}|{}|{}|{}|{}",
        sms.modem_id,
        normalize_number(&sms.sender),
        concat.ref_bits,
        concat.reference,
        concat.total
    )
}

/// Refuses a part number outside `1..=total`.
pub(crate) fn check_part_number(concat: Concat) -> Result<(), StoreError> {
    if concat.total == 0 || concat.seq == 0 || concat.seq > concat.total {
        return Err(StoreError::InvalidInput {
            field: "concat",
            reason: format!(
                "part {} of {} is not a valid part number",
                concat.seq, concat.total
            ),
        });
    }
    Ok(())
}

/// What a new part does, given its group's waiting parts.
pub(crate) enum Arrival {
    /// The same part number is waiting with another text: the reference wrapped and a new
    /// message reuses it while the old one still waits. The old one is stored as incomplete
    /// first, then this part starts a new group.
    FlushWaiting,
    /// It joins the waiting group: a part the group lacks, or a second copy of a waiting part
    /// (the network repeated it), which joins so its SIM copy is deleted with the message; the
    /// first copy's text is used.
    Join,
    /// No group waits: a part whose group was already stored as incomplete completes that
    /// row, if it is recent enough to belong to it (an old row with the same key is another
    /// message whose reference wrapped); else it starts a new group.
    Late,
}

/// See [`Arrival`]: `waiting` parts wait in the group, `same_seq` is the text of the waiting
/// part with this part's number.
pub(crate) fn arrival(waiting: i64, same_seq: Option<&str>, text: &str) -> Arrival {
    match same_seq {
        Some(other) if other != text => Arrival::FlushWaiting,
        Some(_) => Arrival::Join,
        None if waiting > 0 => Arrival::Join,
        None => Arrival::Late,
    }
}

/// The earliest creation time of an incomplete row a late part received at `received_at` may
/// complete; None when the window reaches back past the earliest representable time.
pub(crate) fn late_cutoff(received_at: Timestamp, window: Duration) -> Option<Timestamp> {
    SignedDuration::try_from(window)
        .ok()
        .and_then(|w| received_at.checked_sub(w).ok())
}

/// The outcome of a part that went to an already stored incomplete message, and its event.
pub(crate) fn late_outcome(
    id: i64,
    have: u8,
    complete: bool,
    concat: Concat,
) -> (StoredPart, &'static str) {
    let id = MessageId(id);
    let (outcome, event) = if complete {
        (PartOutcome::CompletedLate { id }, "completed_late")
    } else {
        (
            PartOutcome::AddedLate {
                id,
                have,
                total: concat.total,
            },
            "part_added_late",
        )
    };
    (
        StoredPart {
            outcome,
            flushed: None,
        },
        event,
    )
}

/// The event of a group stored as a message.
pub(crate) fn assembled_event(complete: bool) -> &'static str {
    if complete {
        "received"
    } else {
        "received_incomplete"
    }
}

/// A long message's text and counts, joined from its parts.
pub(crate) struct Joined {
    /// The parts' texts in order, each gap marked once.
    pub content: String,
    /// The highest part count any part announced.
    pub total: u8,
    /// Distinct part numbers present.
    pub have: u8,
    /// Whether every part is present.
    pub complete: bool,
    /// Names the missing parts, when some are.
    pub reason: Option<String>,
    /// The SIM slot of the first part stored on the SIM.
    pub modem_index: Option<i64>,
}

/// Joins `parts` (seq, total, text, SIM slot), ordered by seq then arrival; the first copy of
/// a part number wins, later copies are network duplicates.
pub(crate) fn join(parts: &[(u8, u8, String, Option<i64>)]) -> Joined {
    let total = parts.iter().map(|p| p.1).max().unwrap_or(1);
    let mut content = String::new();
    let mut missing = Vec::new();
    let mut have: u8 = 0;
    for seq in 1..=total {
        match parts.iter().find(|p| p.0 == seq) {
            Some(part) => {
                have += 1;
                content.push_str(&part.2);
            }
            None => {
                missing.push(seq.to_string());
                if !content.ends_with(GAP) {
                    content.push_str(GAP);
                }
            }
        }
    }
    let complete = missing.is_empty();
    let reason = (!complete).then(|| {
        format!(
            "incomplete: part(s) {} of {total} did not arrive before the multipart timeout",
            missing.join(", ")
        )
    });
    Joined {
        content,
        total,
        have,
        complete,
        reason,
        modem_index: parts.iter().find_map(|p| p.3),
    }
}
