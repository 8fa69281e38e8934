//! Packing of 7-bit septets into octets (TS 23.038 §6.1.2.1.1), with the fill bits that align
//! septets after a user data header (TS 23.040 §9.2.3.24).
//!
//! Why a module of its own: TP-UD, alphanumeric addresses (TS 23.040 §9.1.2.5) and USSD all
//! pack the same way, and the fill-bit arithmetic is where codecs usually go wrong.
//!
//! The bit order: septet `i` occupies bits `fill_bits + 7 * i ..` of the octet string, where
//! bit `n` is bit `n % 8` (LSB = 0) of octet `n / 8`. So the fill bits are the low bits of the
//! first octet, and the first septet starts right above them. After a 6-octet concatenation
//! header (48 bits) the next septet boundary is bit 49, so `fill_bits` is 1.
//!
//! Not here: the "CR as padding" rule of §6.1.2.3.1 (a sender whose septets end with 7 spare
//! bits in the last octet may add a CR so that a receiver does not read an '@'). That is the
//! TPDU's choice; TP-UDL tells a receiver the true septet count.
//!
//! `fill_bits` above 6 never occurs in TS 23.040 (fill only ever completes a septet), but both
//! functions take any value literally, as that many leading zero bits, so [`pack`] and
//! [`unpack`] stay exact inverses for every input and neither can panic.

/// Packs septets LSB-first into octets, after `fill_bits` (0..=6) zero bits.
pub fn pack(septets: &[u8], fill_bits: u8) -> Vec<u8> {
    let total_bits = usize::from(fill_bits).saturating_add(septets.len().saturating_mul(7));
    let mut octets = Vec::with_capacity(total_bits.div_ceil(8));
    // Bits not yet written, lowest first; never more than 7 + 7 at once, so a u32 holds them.
    let mut pending: u32 = 0;
    let mut pending_bits: u32 = 0;
    // The fill bits are zeros: whole octets of them first, then the rest stays pending.
    octets.resize(usize::from(fill_bits / 8), 0);
    pending_bits += u32::from(fill_bits % 8);
    for &septet in septets {
        pending |= u32::from(septet & 0x7F) << pending_bits;
        pending_bits += 7;
        if pending_bits >= 8 {
            // Masked to 8 bits, so the cast keeps the value.
            octets.push((pending & 0xFF) as u8);
            pending >>= 8;
            pending_bits -= 8;
        }
    }
    if pending_bits > 0 {
        octets.push((pending & 0xFF) as u8);
    }
    octets
}

/// Unpacks `count` septets after skipping `fill_bits` bits. `None` when `octets` hold fewer
/// bits than that needs.
pub fn unpack(octets: &[u8], fill_bits: u8, count: usize) -> Option<Vec<u8>> {
    let needed_bits = count.checked_mul(7)?.checked_add(usize::from(fill_bits))?;
    if needed_bits > octets.len().saturating_mul(8) {
        return None;
    }
    let mut septets = Vec::with_capacity(count);
    let mut to_skip = u32::from(fill_bits);
    // Bits read but not yet used, lowest first; never more than 6 + 8, so a u32 holds them.
    let mut pending: u32 = 0;
    let mut pending_bits: u32 = 0;
    for &octet in octets {
        if septets.len() == count {
            break;
        }
        pending |= u32::from(octet) << pending_bits;
        pending_bits += 8;
        let skipped = to_skip.min(pending_bits);
        pending >>= skipped;
        pending_bits -= skipped;
        to_skip -= skipped;
        while pending_bits >= 7 && septets.len() < count {
            // Masked to 7 bits, so the cast keeps the value.
            septets.push((pending & 0x7F) as u8);
            pending >>= 7;
            pending_bits -= 7;
        }
    }
    // The length check above guarantees `count` septets were read; this guards the invariant
    // without a panic.
    (septets.len() == count).then_some(septets)
}

/// Fill bits that bring a user data header of `header_octets` octets (UDHL octet included) to
/// the next septet boundary (TS 23.040 §9.2.3.24): 0..=6. A 6-octet concatenation header
/// needs 1, a 7-octet one (16-bit reference) needs 0.
pub fn fill_bits_after(header_octets: usize) -> u8 {
    // `(8 * n) % 7` is `n % 7` because 8 ≡ 1 (mod 7); the result is below 7, so it fits a u8.
    ((7 - header_octets % 7) % 7) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Vectors computed independently in Python (septet `i` ORed into a big integer at bit
    /// `fill + 7 i`, written little-endian) and, for fill 0, also with python-gsmmodem's
    /// `packSeptets`. Text is plain ASCII, which the default alphabet maps to the same values.
    const VECTORS: [(&str, u8, &str); 11] = [
        ("hellohello", 0, "E8329BFD4697D9EC37"),
        ("Hello world!", 0, "C8329BFD06DDDF72363904"),
        ("hellohello", 1, "D06536FB8D2EB3D96F"),
        ("Hello world!", 1, "906536FB0DBABFE56C7208"),
        // The text of a widely published concatenated SMS-SUBMIT (UDH 050003…, so fill 1).
        (
            "Lorem ipsum dolor sit amet",
            1,
            "986F79B90D4AC3E7F53688FC66BFE5A0799A0E0AB7CB74",
        ),
        // 7 septets leave 7 spare bits; 8 septets fill 7 octets exactly.
        ("1234567", 0, "31D98C56B3DD00"),
        ("12345678", 0, "31D98C56B3DD70"),
        ("A", 0, "41"),
        ("A", 6, "4010"),
        (
            "Conductor: 3 new messages",
            3,
            "18BEDDE4FA98FE96EB403390BB7C07B5CBF379F85C9E03",
        ),
        (
            "The quick brown fox jumps over the lazy dog",
            2,
            "50D16550BC9E1EAF4162F9FBEE0699DF7890BADE86CF416F7B590EA2A3CB2076589F0791DF67",
        ),
    ];

    fn hex(octets: &[u8]) -> String {
        octets.iter().map(|o| format!("{o:02X}")).collect()
    }

    #[test]
    fn known_vectors_pack_and_unpack() {
        for (text, fill, packed) in VECTORS {
            let septets = text.as_bytes();
            let octets = pack(septets, fill);
            assert_eq!(hex(&octets), packed, "{text:?} fill {fill}");
            assert_eq!(
                unpack(&octets, fill, septets.len()).as_deref(),
                Some(septets),
                "{text:?} fill {fill}"
            );
        }
    }

    #[test]
    fn the_extension_escape_packs_like_any_septet() {
        // "{€}" is 1B 28 1B 65 1B 29 in septets.
        assert_eq!(
            hex(&pack(&[0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29], 0)),
            "1BD4A6BC4901"
        );
    }

    #[test]
    fn unpack_refuses_octets_that_are_too_short() {
        // 8 septets need 56 bits: 7 octets, not 6.
        assert_eq!(unpack(&[0; 6], 0, 8), None);
        assert_eq!(unpack(&[0; 7], 0, 8), Some(vec![0; 8]));
        // With 1 fill bit they need 57 bits.
        assert_eq!(unpack(&[0; 7], 1, 8), None);
        assert_eq!(unpack(&[], 0, 0), Some(vec![]));
        assert_eq!(unpack(&[], 1, 0), None);
        assert_eq!(unpack(&[0xFF], 0, usize::MAX), None);
    }

    #[test]
    fn unpack_ignores_bits_beyond_the_count() {
        assert_eq!(unpack(&[0xC1, 0xFF, 0xFF], 0, 1), Some(vec![0x41]));
    }

    #[test]
    fn fill_bits_above_six_are_taken_literally() {
        assert_eq!(pack(&[0x41], 7), vec![0x80, 0x20]);
        assert_eq!(unpack(&[0x80, 0x20], 7, 1), Some(vec![0x41]));
        assert_eq!(pack(&[0x41], 16), vec![0x00, 0x00, 0x41]);
        assert_eq!(unpack(&[0x00, 0x00, 0x41], 16, 1), Some(vec![0x41]));
        assert_eq!(unpack(&[0xFF; 4], 255, 1), None);
    }

    #[test]
    fn fill_bits_reach_the_next_septet_boundary() {
        assert_eq!(fill_bits_after(0), 0);
        assert_eq!(fill_bits_after(6), 1);
        assert_eq!(fill_bits_after(7), 0);
        assert_eq!(fill_bits_after(5), 2);
        assert_eq!(fill_bits_after(12), 2);
        for octets in 0..300 {
            assert_eq!((octets * 8 + usize::from(fill_bits_after(octets))) % 7, 0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn pack_then_unpack_round_trips(
            septets in proptest::collection::vec(0u8..128, 0..300),
            fill in 0u8..=6,
        ) {
            let octets = pack(&septets, fill);
            prop_assert_eq!(octets.len(), (usize::from(fill) + 7 * septets.len()).div_ceil(8));
            prop_assert_eq!(unpack(&octets, fill, septets.len()), Some(septets));
        }

        #[test]
        fn pack_ignores_the_high_bit(septets in proptest::collection::vec(any::<u8>(), 0..50)) {
            let masked: Vec<u8> = septets.iter().map(|s| s & 0x7F).collect();
            prop_assert_eq!(pack(&septets, 0), pack(&masked, 0));
        }

        #[test]
        fn unpack_never_panics_and_is_none_exactly_when_bits_run_short(
            octets in proptest::collection::vec(any::<u8>(), 0..200),
            fill in any::<u8>(),
            count in 0usize..300,
        ) {
            let enough = usize::from(fill) + 7 * count <= 8 * octets.len();
            let septets = unpack(&octets, fill, count);
            prop_assert_eq!(septets.is_some(), enough);
            if let Some(septets) = septets {
                prop_assert_eq!(septets.len(), count);
                prop_assert!(septets.iter().all(|&s| s < 128));
            }
        }

        #[test]
        fn unpack_then_pack_restores_the_used_bits(
            octets in proptest::collection::vec(any::<u8>(), 1..100),
            fill in 0u8..=6,
        ) {
            let count = (octets.len() * 8 - usize::from(fill)) / 7;
            let septets = unpack(&octets, fill, count);
            prop_assert!(septets.is_some());
            let repacked = pack(&septets.unwrap_or_default(), fill);
            // Same bits, except the fill bits (zero in `repacked`) and any bits past the last
            // whole septet.
            let used = usize::from(fill) + 7 * count;
            for bit in usize::from(fill)..used {
                let original = octets.get(bit / 8).map(|o| (o >> (bit % 8)) & 1);
                let again = repacked.get(bit / 8).map(|o| (o >> (bit % 8)) & 1);
                prop_assert_eq!(original, again, "bit {}", bit);
            }
        }
    }
}
