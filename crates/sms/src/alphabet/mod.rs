//! Character sets of TS 23.038: the GSM 7-bit default alphabet with its extension table and
//! the national language shift tables, septet packing, and UCS-2 (UTF-16BE).
//!
//! Why a module of its own: every other part of the codec (user data, alphanumeric addresses,
//! splitting) counts and converts characters through these functions, so the tables live in
//! one place and are tested against the spec's tables once.

pub mod gsm7;
pub mod packing;
pub mod ucs2;
