//! Packing of 7-bit septets into octets (TS 23.038 §6.1.2.1.1), with the fill bits that align
//! septets after a user data header (TS 23.040 §9.2.3.24).

/// Packs septets LSB-first into octets, after `fill_bits` (0..=6) zero bits.
pub fn pack(septets: &[u8], fill_bits: u8) -> Vec<u8> {
    let _ = (septets, fill_bits);
    Vec::new()
}

/// Unpacks `count` septets after skipping `fill_bits` bits. `None` when `octets` hold fewer
/// bits than that needs.
pub fn unpack(octets: &[u8], fill_bits: u8, count: usize) -> Option<Vec<u8>> {
    let _ = (octets, fill_bits, count);
    None
}
