//! A checked reader over the octets of one PDU.
//!
//! Why: promise 5 ("bad input gets a clear answer, never a crash") means no slice indexing on
//! input anywhere in the codec. Every read goes through here, fails with a typed
//! [`DecodeError`] naming the field and the octet offset, and offsets are always counted from
//! the start of the whole PDU (the reader is never re-based on a sub-slice).

use crate::error::{DecodeError, Field};

/// A position in a PDU's octets with checked reads.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the first octet.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The offset of the next octet, from the start of the PDU.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// Octets not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// Whether every octet has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Reads one octet.
    pub(crate) fn u8(&mut self, field: Field) -> Result<u8, DecodeError> {
        match self.bytes.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.truncated(field, 1)),
        }
    }

    /// Reads `n` octets.
    pub(crate) fn take(&mut self, n: usize, field: Field) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.truncated(field, n))?;
        match self.bytes.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(self.truncated(field, n)),
        }
    }

    /// Reads exactly `N` octets into an array.
    pub(crate) fn array<const N: usize>(&mut self, field: Field) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// The error for a field of `needed` octets that does not fit.
    pub(crate) fn truncated(&self, field: Field, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            field,
            needed,
            remaining: self.remaining(),
            offset: self.pos,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_fail_with_the_offset_and_leave_the_position() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8(Field::FirstOctet), Ok(1));
        assert_eq!(
            r.take(5, Field::UserData),
            Err(DecodeError::Truncated {
                field: Field::UserData,
                needed: 5,
                remaining: 2,
                offset: 1
            })
        );
        assert_eq!(r.offset(), 1);
        assert_eq!(r.array::<2>(Field::UserData), Ok([2, 3]));
        assert!(r.is_empty());
        assert!(r.u8(Field::Status).is_err());
    }

    #[test]
    fn a_huge_length_does_not_overflow() {
        let mut r = Reader::new(&[1]);
        assert!(r.take(usize::MAX, Field::UserData).is_err());
    }
}
