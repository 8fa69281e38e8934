//! The modem's message memories: the SIM's slots ("SM") and, where the personality has them,
//! the phone's own ("ME") and a status report memory ("SR").
//!
//! Why one type for all of them: `AT+CPMS` names memories, and a name may be a plain storage
//! ("SM"), an alias ("SM_P" on SIM800, "MT" = "ME" on Quectel) or a combined view ("MT" = SM
//! then ME on SIM800, whose indexes continue from one storage into the next). The commands
//! only ever speak in (memory name, index); this module maps that to (storage, slot) with the
//! personality's index base (0 or 1). Contents survive reboots and unplugging, as a SIM's do.
//!
//! Spec: TS 27.005 §3.1 (`<stat>`, `<index>`, `<mem1>`–`<mem3>`), §3.2.2 (`+CPMS`).

use conductor_sms::encode_hex;

use crate::personality::{MemoryDef, Personality};

/// `<stat>` of a stored message (TS 27.005 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// 0, "REC UNREAD": received, not yet read.
    ReceivedUnread,
    /// 1, "REC READ": received and read (listing or reading it marks it so).
    ReceivedRead,
    /// 2, "STO UNSENT": written for sending, not sent.
    StoredUnsent,
    /// 3, "STO SENT": written and sent.
    StoredSent,
}

impl MessageStatus {
    /// The PDU-mode number.
    pub fn code(self) -> u8 {
        match self {
            Self::ReceivedUnread => 0,
            Self::ReceivedRead => 1,
            Self::StoredUnsent => 2,
            Self::StoredSent => 3,
        }
    }

    /// The text-mode string.
    pub fn text(self) -> &'static str {
        match self {
            Self::ReceivedUnread => "REC UNREAD",
            Self::ReceivedRead => "REC READ",
            Self::StoredUnsent => "STO UNSENT",
            Self::StoredSent => "STO SENT",
        }
    }

    /// From the PDU-mode number.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::ReceivedUnread),
            1 => Some(Self::ReceivedRead),
            2 => Some(Self::StoredUnsent),
            3 => Some(Self::StoredSent),
            _ => None,
        }
    }

    /// From the text-mode string (case-insensitive).
    pub fn from_text(text: &str) -> Option<Self> {
        [
            Self::ReceivedUnread,
            Self::ReceivedRead,
            Self::StoredUnsent,
            Self::StoredSent,
        ]
        .into_iter()
        .find(|s| s.text().eq_ignore_ascii_case(text))
    }
}

/// A message in a slot, in PDU-mode form (SMSC address first) as `AT+CMGL` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoredMessage {
    /// Its `<stat>`.
    pub status: MessageStatus,
    /// The PDU-mode octets.
    pub pdu: Vec<u8>,
}

impl StoredMessage {
    /// `<length>` of `+CMGL`/`+CMGR`: the TPDU's octets, the SMSC part not counted.
    pub fn tpdu_length(&self) -> usize {
        let smsc = self.pdu.first().map_or(0, |&n| usize::from(n) + 1);
        self.pdu.len().saturating_sub(smsc)
    }

    /// The PDU in upper-case hex.
    pub fn hex(&self) -> String {
        encode_hex(&self.pdu)
    }
}

/// One physical storage.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Storage {
    name: &'static str,
    slots: Vec<Option<StoredMessage>>,
}

/// Where a stored message went: the physical storage and the index the URC announces there,
/// and the index in the memory it was stored through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The physical storage ("SM", "ME", "SR").
    pub storage: &'static str,
    /// The index in that storage.
    pub storage_index: u32,
    /// The index in the memory named when storing (differs for combined memories).
    pub memory_index: u32,
}

/// An index outside the memory's range (`+CMS ERROR: 321`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidIndex;

/// The memories of one modem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimCard {
    index_base: u32,
    storages: Vec<Storage>,
    memories: &'static [MemoryDef],
}

impl SimCard {
    /// The memories `personality` has: "SM" with `sim_capacity` slots, "ME" and "SR" with the
    /// given capacities, for each storage some memory name refers to.
    pub fn new(
        personality: &Personality,
        sim_capacity: usize,
        me_capacity: usize,
        sr_capacity: usize,
    ) -> Self {
        let mut storages: Vec<Storage> = Vec::new();
        for def in personality.memories {
            for &name in def.storages {
                if storages.iter().any(|s| s.name == name) {
                    continue;
                }
                let capacity = match name {
                    "SM" => sim_capacity,
                    "ME" => me_capacity,
                    _ => sr_capacity,
                };
                storages.push(Storage {
                    name,
                    slots: vec![None; capacity],
                });
            }
        }
        Self {
            index_base: personality.index_base,
            storages,
            memories: personality.memories,
        }
    }

    /// The first index (0 or 1).
    pub fn index_base(&self) -> u32 {
        self.index_base
    }

    fn def(&self, memory: &str) -> Option<&'static MemoryDef> {
        self.memories
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(memory))
    }

    /// The canonical spelling of a memory name, if the modem has it.
    pub fn memory_name(&self, memory: &str) -> Option<&'static str> {
        self.def(memory).map(|d| d.name)
    }

    fn parts(&self, memory: &str) -> Vec<usize> {
        self.def(memory)
            .map(|d| {
                d.storages
                    .iter()
                    .filter_map(|n| self.storages.iter().position(|s| s.name == *n))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Total slots behind `memory` (0 for an unknown name).
    pub fn capacity(&self, memory: &str) -> usize {
        self.parts(memory)
            .iter()
            .map(|&i| self.storages[i].slots.len())
            .sum()
    }

    /// Used slots behind `memory`.
    pub fn used(&self, memory: &str) -> usize {
        self.parts(memory)
            .iter()
            .map(|&i| {
                self.storages[i]
                    .slots
                    .iter()
                    .filter(|s| s.is_some())
                    .count()
            })
            .sum()
    }

    /// Whether `memory` has no free slot.
    pub fn is_full(&self, memory: &str) -> bool {
        self.used(memory) >= self.capacity(memory)
    }

    /// (storage, slot) of `index` in `memory`.
    fn locate(&self, memory: &str, index: u32) -> Result<(usize, usize), InvalidIndex> {
        let mut offset = index.checked_sub(self.index_base).ok_or(InvalidIndex)? as usize;
        for storage in self.parts(memory) {
            let len = self.storages[storage].slots.len();
            if offset < len {
                return Ok((storage, offset));
            }
            offset -= len;
        }
        Err(InvalidIndex)
    }

    /// The message at `index` of `memory`: `Ok(None)` for an empty slot.
    pub fn get(&self, memory: &str, index: u32) -> Result<Option<&StoredMessage>, InvalidIndex> {
        let (storage, slot) = self.locate(memory, index)?;
        Ok(self.storages[storage].slots[slot].as_ref())
    }

    /// Marks a received message read; nothing for other states or an empty slot.
    pub fn mark_read(&mut self, memory: &str, index: u32) {
        if let Some(message) = self.slot_mut(memory, index)
            && message.status == MessageStatus::ReceivedUnread
        {
            message.status = MessageStatus::ReceivedRead;
        }
    }

    /// Sets the status of the message at `index`, if there is one.
    pub fn set_status(&mut self, memory: &str, index: u32, status: MessageStatus) {
        if let Some(message) = self.slot_mut(memory, index) {
            message.status = status;
        }
    }

    fn slot_mut(&mut self, memory: &str, index: u32) -> Option<&mut StoredMessage> {
        let (storage, slot) = self.locate(memory, index).ok()?;
        self.storages[storage].slots[slot].as_mut()
    }

    /// Stores into the first free slot of `memory`; `None` when it is full.
    pub fn store(&mut self, memory: &str, message: StoredMessage) -> Option<Placement> {
        let mut offset = 0u32;
        for storage in self.parts(memory) {
            let target = &mut self.storages[storage];
            if let Some(slot) = target.slots.iter().position(Option::is_none) {
                target.slots[slot] = Some(message);
                let slot = slot as u32;
                return Some(Placement {
                    storage: target.name,
                    storage_index: self.index_base + slot,
                    memory_index: self.index_base + offset + slot,
                });
            }
            offset += target.slots.len() as u32;
        }
        None
    }

    /// Empties the slot at `index`; `Ok(true)` when something was there.
    pub fn delete(&mut self, memory: &str, index: u32) -> Result<bool, InvalidIndex> {
        let (storage, slot) = self.locate(memory, index)?;
        Ok(self.storages[storage].slots[slot].take().is_some())
    }

    /// Empties every slot of `memory` whose message `doomed` picks; returns how many.
    pub fn delete_where(&mut self, memory: &str, doomed: impl Fn(&StoredMessage) -> bool) -> usize {
        let mut count = 0;
        for storage in self.parts(memory) {
            for slot in &mut self.storages[storage].slots {
                if slot.as_ref().is_some_and(&doomed) {
                    *slot = None;
                    count += 1;
                }
            }
        }
        count
    }

    /// The occupied slots of `memory`, by index.
    pub fn list(&self, memory: &str) -> Vec<(u32, &StoredMessage)> {
        let mut out = Vec::new();
        let mut offset = self.index_base;
        for storage in self.parts(memory) {
            let slots = &self.storages[storage].slots;
            for (slot, message) in slots.iter().enumerate() {
                if let Some(message) = message {
                    out.push((offset + slot as u32, message));
                }
            }
            offset += slots.len() as u32;
        }
        out
    }

    /// The physical storages, by name, with their capacity.
    pub fn storages(&self) -> impl Iterator<Item = (&'static str, usize)> + '_ {
        self.storages.iter().map(|s| (s.name, s.slots.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(octet: u8) -> StoredMessage {
        StoredMessage {
            status: MessageStatus::ReceivedUnread,
            pdu: vec![0, octet],
        }
    }

    #[test]
    fn indexes_start_at_the_personality_base() {
        let mut huawei = SimCard::new(&Personality::huawei_e173(), 2, 23, 20);
        let mut sim800 = SimCard::new(&Personality::simcom_sim800(), 2, 50, 0);
        assert_eq!(
            huawei.store("SM", message(1)).map(|p| p.memory_index),
            Some(0)
        );
        assert_eq!(
            sim800.store("SM", message(1)).map(|p| p.memory_index),
            Some(1)
        );
        assert_eq!(sim800.get("SM", 0), Err(InvalidIndex));
        assert_eq!(sim800.get("SM", 3), Err(InvalidIndex));
        assert_eq!(sim800.get("SM", 2), Ok(None));
    }

    #[test]
    fn a_combined_memory_continues_into_the_next_storage() {
        let mut card = SimCard::new(&Personality::simcom_sim800(), 1, 2, 0);
        assert_eq!(card.capacity("MT"), 3);
        let first = card.store("MT", message(1));
        let second = card.store("MT", message(2));
        assert_eq!(first.map(|p| (p.storage, p.storage_index)), Some(("SM", 1)));
        assert_eq!(
            second.map(|p| (p.storage, p.storage_index, p.memory_index)),
            Some(("ME", 1, 2))
        );
        assert_eq!(card.used("ME"), 1);
        assert_eq!(card.get("MT", 2).ok().flatten().map(|m| m.pdu[1]), Some(2));
    }

    #[test]
    fn a_full_memory_refuses_to_store() {
        let mut card = SimCard::new(&Personality::generic(), 1, 1, 1);
        assert!(card.store("SM", message(1)).is_some());
        assert!(card.is_full("SM"));
        assert_eq!(card.store("SM", message(2)), None);
        assert_eq!(card.delete("SM", 1), Ok(true));
        assert!(card.store("SM", message(2)).is_some());
    }

    #[test]
    fn the_tpdu_length_leaves_out_the_smsc() {
        let m = StoredMessage {
            status: MessageStatus::ReceivedRead,
            pdu: vec![2, 0x91, 0x21, 0x04, 0x05],
        };
        assert_eq!(m.tpdu_length(), 2);
    }
}
