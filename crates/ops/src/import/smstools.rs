//! smstools3 spool folders: the files in `incoming`, `sent` and `failed` (each a header block
//! of `Name: value` lines, an empty line, and the body).
//!
//! Read: `From:`/`To:`, `Received:`/`Sent:`/`Failed:`/`Queued:` (smstools writes
//! `YY-MM-DD HH:MM:SS`, local time unless `--source-tz`), `Modem:`, `Fail_reason:`,
//! `Alphabet:` (`ISO`/`GSM`: ISO-8859-15 text, or UTF-8 when the file is valid UTF-8, as with
//! smstools' `incoming_utf8`; `UCS2`/`UCS`: UTF-16BE bytes; `binary`: kept as hex) and
//! `UDH-DATA:` (parts of a multipart message written one per file, with `internal_combine =
//! no`, are joined by sender, reference and sequence). Numbers without a `+` are international
//! digits in smstools, so a `+` is put in front.
//!
//! Mapping: `incoming` → inbound `read` (smstools handed them to its eventhandler already),
//! `sent` → outbound `sent`, `failed` → outbound `failed` with `Fail_reason`. `checked` and
//! `outgoing` hold messages not sent yet: they are listed as ignored, never imported, so
//! nothing is sent by surprise; copy them to Conductor with `conductor send --file` if needed.

use std::collections::BTreeMap;
use std::path::Path;

use conductor_store::{Direction, ImportedMessage, ModemId, Status};
use jiff::tz::TimeZone;

use super::{Found, ImportError, Problem, SourceKind, concat_of_udh, message, sql_time};

/// A spool file, parsed.
struct SpoolFile {
    item: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    mtime: Option<jiff::Timestamp>,
}

impl SpoolFile {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the spool folder at `path`.
pub fn read(path: &Path, source: &str, zone: &TimeZone) -> Result<Found, ImportError> {
    let folders = ["incoming", "sent", "failed"];
    if !folders.iter().any(|f| path.join(f).is_dir()) {
        return Err(ImportError::WrongFormat {
            path: path.to_owned(),
            kind: "smstools",
            why: "it has none of the folders incoming, sent, failed (give the spool folder, \
                  such as /var/spool/sms)"
                .into(),
        });
    }
    let mut found = Found::default();
    for ignored in ["checked", "outgoing"] {
        for name in file_names(&path.join(ignored)) {
            found.ignored.push(Problem {
                item: format!("{ignored}/{name}"),
                why: "not sent yet by smstools: not imported (queue it with `conductor send`)"
                    .into(),
            });
        }
    }
    for folder in folders {
        let mut groups: BTreeMap<(String, u16, u8), BTreeMap<u8, SpoolFile>> = BTreeMap::new();
        for name in file_names(&path.join(folder)) {
            let item = format!("{folder}/{name}");
            let file = match parse(&path.join(folder).join(&name), item.clone()) {
                Ok(file) => file,
                Err(why) => {
                    found.problems.push(Problem { item, why });
                    continue;
                }
            };
            let number_header = if folder == "incoming" { "From" } else { "To" };
            let number = file.header(number_header).unwrap_or_default().to_owned();
            match file.header("UDH-DATA").and_then(concat_of_udh) {
                Some((reference, total, seq)) if total > 1 => {
                    groups
                        .entry((number, reference, total))
                        .or_default()
                        .insert(seq, file);
                }
                _ => push(folder, vec![file], 1, source, zone, &mut found),
            }
        }
        for ((_, _, total), parts) in groups {
            push(
                folder,
                parts.into_values().collect(),
                total,
                source,
                zone,
                &mut found,
            );
        }
    }
    Ok(found)
}

/// Regular files of a folder, sorted, without smstools' lock files and hidden files.
fn file_names(folder: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !n.ends_with(".LOCK"))
        .collect();
    names.sort();
    names
}

fn parse(path: &Path, item: String) -> Result<SpoolFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok());
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|at| (at, 2))
        .or_else(|| {
            bytes
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|at| (at, 4))
        })
        .ok_or("no empty line between the headers and the text: not an smstools file")?;
    let (head, body) = (&bytes[..split.0], &bytes[split.0 + split.1..]);
    let mut headers = Vec::new();
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("header line {line:?} has no `Name: value` form"));
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    if headers.is_empty() {
        return Err("no headers".into());
    }
    Ok(SpoolFile {
        item,
        headers,
        body: body.to_vec(),
        mtime,
    })
}

/// ISO-8859-15 to text (differs from Latin-1 in eight places).
fn iso_8859_15(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0xA4 => '€',
            0xA6 => 'Š',
            0xA8 => 'š',
            0xB4 => 'Ž',
            0xB8 => 'ž',
            0xBC => 'Œ',
            0xBD => 'œ',
            0xBE => 'Ÿ',
            b => char::from(b),
        })
        .collect()
}

/// The body as text and our encoding name, by `Alphabet:`.
fn body_text(file: &SpoolFile) -> Result<(String, &'static str), String> {
    let alphabet = file
        .header("Alphabet")
        .unwrap_or("ISO")
        .to_ascii_uppercase();
    let alphabet = alphabet
        .split_whitespace()
        .next()
        .unwrap_or("ISO")
        .to_owned();
    match alphabet.as_str() {
        "UCS2" | "UCS" | "UNICODE" => {
            if !file.body.len().is_multiple_of(2) {
                return Err(format!(
                    "Alphabet: UCS2 but the text has an odd number of bytes ({})",
                    file.body.len()
                ));
            }
            let units: Vec<u16> = file
                .body
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units)
                .map(|t| (t, "ucs2"))
                .map_err(|e| format!("Alphabet: UCS2 but the text is not UTF-16BE: {e}"))
        }
        "BINARY" => Ok((
            file.body.iter().map(|b| format!("{b:02X}")).collect(),
            "8bit",
        )),
        _ => Ok((
            match std::str::from_utf8(&file.body) {
                Ok(text) => text.to_owned(),
                Err(_) => iso_8859_15(&file.body),
            },
            "gsm7",
        )),
    }
}

fn international(number: &str) -> String {
    let number = number.trim();
    if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && !number.starts_with('0')
    {
        format!("+{number}")
    } else {
        number.to_owned()
    }
}

fn push(
    folder: &str,
    parts: Vec<SpoolFile>,
    total: u8,
    source: &str,
    zone: &TimeZone,
    found: &mut Found,
) {
    let items: Vec<String> = parts.iter().map(|f| f.item.clone()).collect();
    match build(folder, &parts, total, zone) {
        Ok(mut m) => {
            m.source = source.to_owned();
            m.items = items;
            found.messages.push(m);
        }
        Err(why) => found.problems.push(Problem {
            item: items.join(","),
            why,
        }),
    }
}

fn build(
    folder: &str,
    parts: &[SpoolFile],
    total: u8,
    zone: &TimeZone,
) -> Result<ImportedMessage, String> {
    let first = parts.first().ok_or("no parts")?;
    let (direction, number_header, time_header, status) = match folder {
        "incoming" => (Direction::Inbound, "From", "Received", Status::Read),
        "sent" => (Direction::Outbound, "To", "Sent", Status::Sent),
        _ => (Direction::Outbound, "To", "Failed", Status::Failed),
    };
    let number = international(first.header(number_header).unwrap_or_default());
    if number.is_empty() {
        return Err(format!("no {number_header}: header"));
    }
    let mut content = String::new();
    let mut encoding = "gsm7";
    for part in parts {
        let (text, e) = body_text(part)?;
        content.push_str(&text);
        encoding = e;
    }
    let file_time = first
        .mtime
        .map(|t| conductor_store::SqlTime::from_timestamp(t).0);
    let when = first
        .header(time_header)
        .and_then(|t| sql_time(t, zone))
        .or_else(|| first.header("Queued").and_then(|t| sql_time(t, zone)))
        .or(file_time)
        .ok_or_else(|| format!("no {time_header}: time and no file time"))?;
    let queued = first.header("Queued").and_then(|t| sql_time(t, zone));
    let mut m = message(
        SourceKind::Smstools,
        "",
        Vec::new(),
        direction,
        number,
        content,
        status,
        if direction == Direction::Outbound {
            queued.clone().unwrap_or_else(|| when.clone())
        } else {
            when.clone()
        },
    );
    if folder == "sent" {
        m.sent_at = Some(when.clone());
    }
    m.updated_at = Some(when);
    if folder == "failed" {
        m.reason = Some(format!(
            "smstools: {}",
            first
                .header("Fail_reason")
                .unwrap_or("failed (no Fail_reason)")
        ));
    }
    m.modem_id = first
        .header("Modem")
        .filter(|s| !s.is_empty())
        .map(ModemId::from);
    m.encoding = Some(encoding.to_owned());
    m.parts_total = i64::from(total);
    m.parts_received = parts.len() as i64;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_8859_15_differs_from_latin1_where_it_should() {
        assert_eq!(iso_8859_15(b"\xA4 \xE9t\xE9"), "€ été");
    }

    #[test]
    fn smstools_numbers_get_their_plus_but_national_ones_do_not() {
        assert_eq!(international("491701234567"), "+491701234567");
        assert_eq!(international("01701234567"), "01701234567");
        assert_eq!(international("+4917"), "+4917");
    }
}
