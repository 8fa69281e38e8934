//! Reassembly of concatenated messages (TS 23.040 §9.2.3.24.1 and .8), in memory and pure.
//!
//! Parts are grouped on (sender, reference, reference width, total): two senders that happen
//! to use the same reference never mix, nor do two messages from one sender with the same
//! reference but a different part count. Parts may come in any order; a part whose number is
//! already there is a duplicate (the first copy wins and the caller gets the repeat back to
//! discard). A part whose concatenation numbers make no sense (total 0, seq 0, seq > total) is
//! a message of its own, as §9.2.3.24.1 says to ignore such an element.
//!
//! Time comes from the caller: `now` is a [`Duration`] since any origin the caller keeps
//! fixed (virtual time in tests, a monotonic clock in the daemon); the codec reads no clock.
//! [`Reassembler::expire`] hands back groups still missing parts after the caller's timeout,
//! counted from the group's first part, with the missing numbers.
//!
//! A part that arrives after its group completed or expired starts a new group here: the
//! reassembler keeps no history. The gateway keeps parts in its database (DESIGN.md: "a part
//! that arrives after its group was stored as incomplete completes that same row"), and
//! [`join_parts`] does the same joining from its rows without any state. State grows until
//! [`Reassembler::expire`] is called; the caller decides how often.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::tpdu::Deliver;
use crate::udh::{Concat, ReferenceWidth};

/// A received part to reassemble, with caller metadata `M` (SIM slot, row id, time stamp…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment<M> {
    /// Who sent it, as the gateway writes numbers (e.g. `Address::to_string()`).
    pub sender: String,
    /// The concatenation element, if any.
    pub concat: Option<Concat>,
    /// The part's text.
    pub text: String,
    /// Whatever the caller needs back with the part.
    pub meta: M,
}

impl<M> Fragment<M> {
    /// The fragment for a received SMS-DELIVER: sender with '+' for international numbers,
    /// the text (empty for 8-bit data, which has none), and its concatenation element.
    pub fn from_deliver(deliver: &Deliver, meta: M) -> Self {
        Self {
            sender: deliver.originator.to_string(),
            concat: deliver.user_data.header.as_ref().and_then(|h| h.concat()),
            text: deliver.user_data.text().unwrap_or_default(),
            meta,
        }
    }
}

/// What identifies one concatenated message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    /// The sender.
    pub sender: String,
    /// The concatenation reference.
    pub reference: u16,
    /// 8- or 16-bit reference: the same number in the two widths is two messages.
    pub width: ReferenceWidth,
    /// The part count.
    pub total: u8,
}

/// One stored part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part<M> {
    /// Its number, from 1.
    pub seq: u8,
    /// Its text.
    pub text: String,
    /// The caller's metadata.
    pub meta: M,
}

/// A whole message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<M> {
    /// The sender.
    pub sender: String,
    /// The parts' texts joined in order.
    pub text: String,
    /// The group, or `None` for a message that was never concatenated.
    pub key: Option<GroupKey>,
    /// The parts in order (one, numbered 1, for a single message).
    pub parts: Vec<Part<M>>,
}

/// What happened to an inserted fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<M> {
    /// Not concatenated (or with nonsensical numbers): a message on its own.
    Single(Message<M>),
    /// The last missing part arrived; the group is gone from the reassembler.
    Complete(Message<M>),
    /// Stored; the group still misses the listed parts.
    Pending {
        /// The group.
        key: GroupKey,
        /// Parts still missing, in order.
        missing: Vec<u8>,
    },
    /// A part with this number is already stored; the first copy is kept and this one is
    /// handed back.
    Duplicate {
        /// The group.
        key: GroupKey,
        /// The repeated fragment.
        fragment: Fragment<M>,
    },
}

/// A group given up on by [`Reassembler::expire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incomplete<M> {
    /// The group.
    pub key: GroupKey,
    /// The parts that did arrive, in order.
    pub parts: Vec<Part<M>>,
    /// The numbers that did not.
    pub missing: Vec<u8>,
    /// The parts that arrived, joined in order (what the gateway stores as incomplete text).
    pub text: String,
    /// When the group's first part arrived, on the caller's clock.
    pub first_seen: Duration,
}

#[derive(Clone, Debug)]
struct Group<M> {
    first_seen: Duration,
    parts: BTreeMap<u8, Part<M>>,
}

impl<M> Group<M> {
    fn missing(&self, total: u8) -> Vec<u8> {
        (1..=total)
            .filter(|s| !self.parts.contains_key(s))
            .collect()
    }
}

/// In-memory reassembly state; see the module doc.
#[derive(Clone, Debug)]
pub struct Reassembler<M> {
    groups: BTreeMap<GroupKey, Group<M>>,
}

impl<M> Default for Reassembler<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> Reassembler<M> {
    /// No groups yet.
    pub fn new() -> Self {
        Self {
            groups: BTreeMap::new(),
        }
    }

    /// Groups waiting for parts.
    pub fn pending_groups(&self) -> usize {
        self.groups.len()
    }

    /// When the oldest waiting group reaches `timeout`, so the caller can schedule
    /// [`Reassembler::expire`].
    pub fn next_deadline(&self, timeout: Duration) -> Option<Duration> {
        self.groups
            .values()
            .map(|g| g.first_seen.saturating_add(timeout))
            .min()
    }

    /// Adds a part received at `now`.
    pub fn insert(&mut self, now: Duration, fragment: Fragment<M>) -> Outcome<M> {
        let Some(concat) = fragment.concat.filter(Concat::is_valid) else {
            return Outcome::Single(Message {
                sender: fragment.sender,
                text: fragment.text.clone(),
                key: None,
                parts: vec![Part {
                    seq: 1,
                    text: fragment.text,
                    meta: fragment.meta,
                }],
            });
        };
        let key = GroupKey {
            sender: fragment.sender.clone(),
            reference: concat.reference,
            width: concat.width,
            total: concat.total,
        };
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            first_seen: now,
            parts: BTreeMap::new(),
        });
        if group.parts.contains_key(&concat.seq) {
            return Outcome::Duplicate { key, fragment };
        }
        group.parts.insert(
            concat.seq,
            Part {
                seq: concat.seq,
                text: fragment.text,
                meta: fragment.meta,
            },
        );
        let missing = group.missing(concat.total);
        if !missing.is_empty() {
            return Outcome::Pending { key, missing };
        }
        let parts: Vec<Part<M>> = self
            .groups
            .remove(&key)
            .map(|g| g.parts.into_values().collect())
            .unwrap_or_default();
        Outcome::Complete(Message {
            sender: key.sender.clone(),
            text: parts.iter().map(|p| p.text.as_str()).collect(),
            key: Some(key),
            parts,
        })
    }

    /// Removes and returns every group whose first part arrived at least `timeout` before
    /// `now`, oldest first.
    pub fn expire(&mut self, now: Duration, timeout: Duration) -> Vec<Incomplete<M>> {
        let due: Vec<GroupKey> = self
            .groups
            .iter()
            .filter(|(_, g)| now.saturating_sub(g.first_seen) >= timeout)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out: Vec<Incomplete<M>> = due
            .into_iter()
            .filter_map(|key| {
                let group = self.groups.remove(&key)?;
                let missing = group.missing(key.total);
                let parts: Vec<Part<M>> = group.parts.into_values().collect();
                Some(Incomplete {
                    text: parts.iter().map(|p| p.text.as_str()).collect(),
                    missing,
                    parts,
                    first_seen: group.first_seen,
                    key,
                })
            })
            .collect();
        out.sort_by_key(|i| i.first_seen);
        out
    }
}

/// Parts joined without state, e.g. from database rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    /// The texts of the parts present, in part order.
    pub text: String,
    /// Numbers in `1..=total` with no part.
    pub missing: Vec<u8>,
    /// Numbers given more than once (the first copy was used), or outside `1..=total`.
    pub ignored: Vec<u8>,
}

impl Joined {
    /// Whether every part was there.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Joins the parts `(seq, text)` of a `total`-part message, in any order.
pub fn join_parts<'a>(total: u8, parts: impl IntoIterator<Item = (u8, &'a str)>) -> Joined {
    let mut by_seq: BTreeMap<u8, &str> = BTreeMap::new();
    let mut ignored = Vec::new();
    for (seq, text) in parts {
        if seq == 0 || seq > total || by_seq.contains_key(&seq) {
            ignored.push(seq);
        } else {
            by_seq.insert(seq, text);
        }
    }
    Joined {
        text: by_seq.values().copied().collect(),
        missing: (1..=total).filter(|s| !by_seq.contains_key(s)).collect(),
        ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(sender: &str, reference: u16, total: u8, seq: u8, text: &str) -> Fragment<u32> {
        Fragment {
            sender: sender.to_owned(),
            concat: Some(Concat {
                reference,
                width: ReferenceWidth::Bits8,
                total,
                seq,
            }),
            text: text.to_owned(),
            meta: u32::from(seq),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn parts_out_of_order_complete_in_order() {
        let mut r = Reassembler::new();
        assert!(matches!(
            r.insert(secs(0), part("+1", 7, 3, 3, "c")),
            Outcome::Pending { ref missing, .. } if missing == &[1, 2]
        ));
        assert!(matches!(
            r.insert(secs(1), part("+1", 7, 3, 1, "a")),
            Outcome::Pending { .. }
        ));
        let Outcome::Complete(m) = r.insert(secs(2), part("+1", 7, 3, 2, "b")) else {
            panic!("not complete");
        };
        assert_eq!(m.text, "abc");
        assert_eq!(
            m.parts.iter().map(|p| p.meta).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(r.pending_groups(), 0);
    }

    #[test]
    fn senders_with_the_same_reference_never_mix() {
        let mut r = Reassembler::new();
        r.insert(secs(0), part("+1", 7, 2, 1, "a1"));
        r.insert(secs(0), part("+2", 7, 2, 1, "b1"));
        let Outcome::Complete(m) = r.insert(secs(0), part("+2", 7, 2, 2, "b2")) else {
            panic!("not complete");
        };
        assert_eq!(m.text, "b1b2");
        assert_eq!(r.pending_groups(), 1);
    }

    #[test]
    fn a_repeated_part_is_a_duplicate_and_the_first_copy_wins() {
        let mut r = Reassembler::new();
        r.insert(secs(0), part("+1", 7, 2, 1, "first"));
        let out = r.insert(secs(0), part("+1", 7, 2, 1, "second"));
        assert!(
            matches!(out, Outcome::Duplicate { ref fragment, .. } if fragment.text == "second")
        );
        let Outcome::Complete(m) = r.insert(secs(0), part("+1", 7, 2, 2, "!")) else {
            panic!("not complete");
        };
        assert_eq!(m.text, "first!");
    }

    #[test]
    fn invalid_concatenation_is_a_single_message() {
        let mut r = Reassembler::new();
        for (total, seq) in [(0, 0), (2, 0), (2, 3)] {
            let Outcome::Single(m) = r.insert(secs(0), part("+1", 7, total, seq, "x")) else {
                panic!("not single for {total}/{seq}");
            };
            assert_eq!(m.text, "x");
            assert_eq!(m.parts.first().map(|p| p.text.as_str()), Some("x"));
        }
        assert_eq!(r.pending_groups(), 0);
    }

    #[test]
    fn unconcatenated_messages_are_single() {
        let mut r: Reassembler<()> = Reassembler::new();
        let f = Fragment {
            sender: "+1".into(),
            concat: None,
            text: "hi".into(),
            meta: (),
        };
        assert!(
            matches!(r.insert(secs(0), f), Outcome::Single(Message { ref text, .. }) if text == "hi")
        );
    }

    #[test]
    fn expire_returns_groups_missing_parts_after_the_timeout() {
        let mut r = Reassembler::new();
        r.insert(secs(10), part("+1", 1, 3, 2, "b"));
        r.insert(secs(50), part("+2", 1, 2, 1, "x"));
        assert!(r.expire(secs(69), secs(60)).is_empty());
        assert_eq!(r.next_deadline(secs(60)), Some(secs(70)));
        let gone = r.expire(secs(70), secs(60));
        assert_eq!(gone.len(), 1);
        let first = gone.first().expect("one group");
        assert_eq!(first.missing, vec![1, 3]);
        assert_eq!(first.text, "b");
        assert_eq!(first.key.sender, "+1");
        assert_eq!(r.pending_groups(), 1);
        // A late part starts a new group.
        assert!(matches!(
            r.insert(secs(80), part("+1", 1, 3, 1, "a")),
            Outcome::Pending { .. }
        ));
    }

    #[test]
    fn join_parts_orders_and_reports_gaps() {
        let j = join_parts(3, [(3, "c"), (1, "a"), (1, "A"), (4, "?")]);
        assert_eq!(j.text, "ac");
        assert_eq!(j.missing, vec![2]);
        assert_eq!(j.ignored, vec![1, 4]);
        assert!(!j.is_complete());
        assert!(join_parts(2, [(2, "b"), (1, "a")]).is_complete());
    }
}
