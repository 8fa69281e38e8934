//! Character sets of TS 23.038: the GSM 7-bit default alphabet with its extension table and
//! the national language shift tables, septet packing, and UCS-2 (UTF-16BE).
//!
//! Why a module of its own: every other part of the codec (user data, alphanumeric addresses,
//! splitting) counts and converts characters through these functions, so the tables live in
//! one place and are tested against the spec's tables once.
//!
//! - [`gsm7`]: characters ⇄ unpacked septets (TS 23.038 §6.2.1, §6.2.1.1, Annex A); the
//!   tables themselves are data in `gsm7/tables.rs`.
//! - [`packing`]: septets ⇄ octets, with UDH fill bits (TS 23.038 §6.1.2.1.1, TS 23.040
//!   §9.2.3.24).
//! - [`ucs2`]: characters ⇄ UTF-16BE octets (TS 23.038 §6.2.3).
//!
//! Everything here is total on input (promise 5): decoding takes any bytes and yields text,
//! with U+FFFD or the spec's fallback character where the bytes make no sense; only encoding
//! can refuse, and only a character the chosen alphabet lacks.

pub mod gsm7;
pub mod packing;
pub mod ucs2;
