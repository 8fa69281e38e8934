//! GSM 7-bit default alphabet, extension table and national language shift tables
//! (TS 23.038 §6.2.1, §6.2.1.1, Annex A).

/// A national language identifier as carried in the UDH shift-table information elements
/// (TS 23.038 §6.2.1.2.4; TS 23.040 §9.2.3.24.15 and .16). 0 is the default alphabet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NationalLanguage(pub u8);

impl NationalLanguage {
    /// The default alphabet / default extension table.
    pub const DEFAULT: Self = Self(0);
    /// Turkish (TS 23.038 A.2.1 / A.3.1).
    pub const TURKISH: Self = Self(1);
    /// Spanish (single shift only, A.2.2; no locking shift table exists).
    pub const SPANISH: Self = Self(2);
    /// Portuguese (A.2.3 / A.3.3).
    pub const PORTUGUESE: Self = Self(3);
}

/// The tables in force for one message: the locking shift replaces the base table, the
/// single shift replaces the extension table reached through escape (0x1B).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ShiftTables {
    /// Base table (UDH IE 0x25 "National Language Locking Shift").
    pub locking: NationalLanguage,
    /// Extension table (UDH IE 0x24 "National Language Single Shift").
    pub single: NationalLanguage,
}

/// A character the default alphabet and its extension table cannot carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unencodable {
    /// The character.
    pub character: char,
    /// Its index in the text, counted in `char`s.
    pub index: usize,
}

/// Decodes unpacked septets (values 0..=127; higher bits are ignored) into text.
pub fn decode(septets: &[u8], tables: ShiftTables) -> String {
    let _ = (septets, tables);
    String::new()
}

/// Septets `c` needs in the default alphabet: `Some(1)`, `Some(2)` (escape + extension), or
/// `None` when it is not representable.
pub fn septets_for(c: char) -> Option<usize> {
    let _ = c;
    None
}

/// Encodes text into septets with the default alphabet and its extension table.
pub fn encode(text: &str) -> Result<Vec<u8>, Unencodable> {
    let _ = text;
    Ok(Vec::new())
}
