//! The inbound fingerprint: what makes a re-read of the same SIM copy a no-op (promise 2).
//!
//! DESIGN.md "Receiving" fixes the inputs: (SIM ICCID, storage, slot, sender, SMSC time stamp,
//! PDU hash). The slot is in it on purpose: two equal texts from one sender in the same second,
//! in two slots, are two messages and stay two rows; the PDU hash is in it because slot numbers
//! are reused once a copy is deleted. The gateway also compares fingerprints before deleting a
//! slot (the slot must still hold the copy whose row is committed).
//!
//! The value is the SHA-256 of the length-prefixed fields, in lower-case hex, so it is stable
//! across versions and platforms and can be compared in plain SQL.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// A stored copy's identity, unique in `messages`, `message_parts` and `delivery_reports`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

/// Where and what a SIM copy is: the fingerprint's inputs.
#[derive(Clone, Copy, Debug)]
pub struct SimCopyIdentity<'a> {
    /// The SIM's ICCID (AT+CCID), or the modem id when the modem does not report one.
    pub iccid: &'a str,
    /// The message memory (`SM`, `ME`, `MT`, `SR`).
    pub storage: &'a str,
    /// The slot index in that memory.
    pub slot: u32,
    /// The originating address as decoded (empty when the PDU could not be decoded).
    pub sender: &'a str,
    /// The SMSC time stamp as decoded, RFC 3339 (empty when unknown).
    pub smsc_timestamp: &'a str,
    /// The whole PDU as read, binary (not hex, so that case differences do not matter).
    pub pdu: &'a [u8],
}

impl Fingerprint {
    /// Computes the fingerprint of a SIM copy.
    pub fn of(copy: SimCopyIdentity<'_>) -> Self {
        let mut hasher = Sha256::new();
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        let slot = copy.slot.to_string();
        for field in [
            copy.iccid.as_bytes(),
            copy.storage.as_bytes(),
            slot.as_bytes(),
            copy.sender.as_bytes(),
            copy.smsc_timestamp.as_bytes(),
            copy.pdu,
        ] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field);
        }
        let digest = hasher.finalize();
        let mut hex = String::with_capacity(64);
        for byte in digest.iter() {
            hex.push_str(&format!("{byte:02x}"));
        }
        Self(hex)
    }

    /// The fingerprint as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Fingerprint {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(slot: u32, pdu: &[u8]) -> SimCopyIdentity<'_> {
        SimCopyIdentity {
            iccid: "8949000000000000001",
            storage: "SM",
            slot,
            sender: "+4917612345678",
            smsc_timestamp: "2024-03-01T12:00:00+01:00",
            pdu,
        }
    }

    #[test]
    fn the_same_copy_gives_the_same_fingerprint_and_another_slot_another() {
        let a = Fingerprint::of(copy(1, b"\x01\x02"));
        assert_eq!(a, Fingerprint::of(copy(1, b"\x01\x02")));
        assert_ne!(a, Fingerprint::of(copy(2, b"\x01\x02")));
        assert_ne!(a, Fingerprint::of(copy(1, b"\x01\x03")));
        assert_eq!(a.as_str().len(), 64);
    }
}
