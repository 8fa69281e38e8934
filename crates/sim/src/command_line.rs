//! DCE-side parsing of one AT command line (ITU-T V.250 §5.2–5.4, TS 27.007 §4).
//!
//! Why the simulator has its own parser: it must not share code with the driver's AT engine
//! (`conductor-at`), so that a parsing bug in the driver cannot hide behind the same bug here.
//!
//! What a line looks like once the DCE has cut it at S3 (CR): any characters, then the prefix
//! `AT` (either case), then commands:
//! - basic commands, a letter and an optional number (`E0`, `V1`, `Z`, `I`, `X4`), or `&`
//!   and a letter (`&F`, `&D2`), or S-parameters (`S0?`, `S3=13`), written one after the other
//!   with no separator (`ATE0V1`); `D` takes the rest of the line as its dial string;
//! - extended commands, a prefix character (`+`, or a vendor's `^`, `$`, `%`, `*`, `#`) and a
//!   name, then nothing (action), `?` (read), `=?` (test) or `=` and comma-separated values
//!   (set), each ended by `;` when another command follows (`AT+CMGF=0;+CNMI=1,1,0,2,0`).
//!
//! Values are quoted strings (`"SM"`, with the TS 27.007 §4.1 `\HH` escapes), unquoted tokens
//! (`176`, `SM`) or omitted (`AT+CMGD=1,` / `AT+CNMI=2,,0`). Spaces outside strings are
//! ignored, as V.250 §5.2.1 says. Commands are parsed in order and parsing stops at the first
//! syntax error: the DCE executes the commands before it and then answers `ERROR` (V.250
//! §5.2.4), so the error position is kept rather than failing the whole line up front.

use std::fmt;

/// The longest command line accepted, in characters after `AT` (V.250 asks for at least 40;
/// real modems take a few hundred).
pub const MAX_LINE_LENGTH: usize = 1024;

/// One value of a set command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    /// Nothing between the commas: the command's default applies.
    Omitted,
    /// A `"quoted"` string, escapes decoded.
    Quoted(String),
    /// An unquoted token (numbers, and the bare memory names some hosts send).
    Bare(String),
}

impl Param {
    /// The value as an unsigned number, for unquoted decimal tokens only.
    pub fn number(&self) -> Option<u32> {
        match self {
            Param::Bare(token)
                if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) =>
            {
                token.parse().ok()
            }
            _ => None,
        }
    }

    /// The value as a string, quoted or not.
    pub fn text(&self) -> Option<&str> {
        match self {
            Param::Quoted(s) | Param::Bare(s) => Some(s),
            Param::Omitted => None,
        }
    }

    /// Whether the value was left out.
    pub fn is_omitted(&self) -> bool {
        matches!(self, Param::Omitted)
    }
}

/// What an extended command asks for (V.250 §5.4.2, §5.4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `AT+X`: run it.
    Execute,
    /// `AT+X?`: current values.
    Read,
    /// `AT+X=?`: supported values.
    Test,
    /// `AT+X=a,b`: set (an empty `=` gives one omitted value).
    Set(Vec<Param>),
}

/// One command of a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A basic command: an upper-case letter and its optional number (`E0`, `Z`, `I3`).
    Basic {
        /// The letter, upper case.
        letter: char,
        /// The number after it, if any.
        value: Option<u32>,
    },
    /// An ampersand command (`&F`, `&W0`, `&D2`).
    Ampersand {
        /// The letter after `&`, upper case.
        letter: char,
        /// The number after it, if any.
        value: Option<u32>,
    },
    /// An S-parameter read (`S3?`) or write (`S0=1`).
    Register {
        /// Which S-parameter.
        number: u32,
        /// `None` to read, `Some` to write.
        value: Option<u32>,
    },
    /// `D` and its dial string.
    Dial(String),
    /// An extended command.
    Extended {
        /// The name with its prefix character, upper case (`+CMGF`, `^ICCID`).
        name: String,
        /// What it asks.
        operation: Operation,
    },
}

/// A line the parser could not read past.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Characters after `AT` where parsing stopped.
    pub position: usize,
    /// What was wrong.
    pub reason: &'static str,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.reason, self.position)
    }
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLine {
    /// The commands before any syntax error, in order.
    pub commands: Vec<Command>,
    /// The syntax error that stopped parsing, if any.
    pub error: Option<SyntaxError>,
}

/// Finds the `AT` prefix in a line cut at CR and parses what follows. `None` when the line has
/// no prefix: V.250 §5.2.1 has the DCE ignore such lines (line noise, a stray LF).
pub fn parse(line: &str) -> Option<CommandLine> {
    let start = find_prefix(line)?;
    let body = line.get(start + 2..).unwrap_or_default();
    Some(parse_body(body))
}

/// The byte offset of the first `AT` (any case) in `line`.
fn find_prefix(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    bytes
        .windows(2)
        .position(|w| w[0].eq_ignore_ascii_case(&b'A') && w[1].eq_ignore_ascii_case(&b'T'))
}

/// Characters V.250 allows in an extended command name after its first letter.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '!' | '%' | '-' | '.' | '/' | ':' | '_')
}

/// Prefix characters of extended commands: `+` (standard) and the vendor ones seen on modems.
fn is_extended_prefix(c: char) -> bool {
    matches!(c, '+' | '^' | '$' | '%' | '*' | '#')
}

struct Cursor<'a> {
    chars: Vec<char>,
    pos: usize,
    _line: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(line: &'a str) -> Self {
        Self {
            chars: line.chars().collect(),
            pos: 0,
            _line: line,
        }
    }

    /// The next character that is not a space (spaces outside strings carry no meaning).
    fn peek(&mut self) -> Option<char> {
        while self.chars.get(self.pos) == Some(&' ') {
            self.pos += 1;
        }
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn error(&self, reason: &'static str) -> SyntaxError {
        SyntaxError {
            position: self.pos,
            reason,
        }
    }

    /// Decimal digits, if any; an overflowing number is a syntax error.
    fn number(&mut self) -> Result<Option<u32>, SyntaxError> {
        let mut value: Option<u32> = None;
        while let Some(c) = self.peek() {
            let Some(d) = c.to_digit(10) else { break };
            self.pos += 1;
            let v = value.unwrap_or(0);
            value = Some(
                v.checked_mul(10)
                    .and_then(|v| v.checked_add(d))
                    .ok_or_else(|| self.error("number too large"))?,
            );
        }
        Ok(value)
    }
}

fn parse_body(body: &str) -> CommandLine {
    let mut cursor = Cursor::new(body);
    let mut commands = Vec::new();
    let error = loop {
        let Some(c) = cursor.peek() else { break None };
        let parsed = if is_extended_prefix(c) {
            parse_extended(&mut cursor)
        } else if c == ';' {
            // A separator with nothing before it (`AT;`, `ATE0;;`) is tolerated.
            cursor.pos += 1;
            continue;
        } else {
            parse_basic(&mut cursor)
        };
        match parsed {
            Ok(command) => commands.push(command),
            Err(e) => break Some(e),
        }
    };
    CommandLine { commands, error }
}

fn parse_basic(cursor: &mut Cursor<'_>) -> Result<Command, SyntaxError> {
    let Some(c) = cursor.bump() else {
        return Err(cursor.error("command expected"));
    };
    let letter = c.to_ascii_uppercase();
    match letter {
        '&' => {
            let Some(l) = cursor.bump().filter(char::is_ascii_alphabetic) else {
                return Err(cursor.error("letter expected after &"));
            };
            let value = cursor.number()?;
            Ok(Command::Ampersand {
                letter: l.to_ascii_uppercase(),
                value,
            })
        }
        'S' => {
            let Some(number) = cursor.number()? else {
                return Err(cursor.error("S-parameter number expected"));
            };
            match cursor.peek() {
                Some('?') => {
                    cursor.pos += 1;
                    Ok(Command::Register {
                        number,
                        value: None,
                    })
                }
                Some('=') => {
                    cursor.pos += 1;
                    let value = cursor.number()?.unwrap_or(0);
                    Ok(Command::Register {
                        number,
                        value: Some(value),
                    })
                }
                _ => Err(cursor.error("? or = expected after S-parameter")),
            }
        }
        'D' => {
            let rest: String = cursor.chars[cursor.pos..].iter().collect();
            cursor.pos = cursor.chars.len();
            Ok(Command::Dial(rest.trim().to_owned()))
        }
        l if l.is_ascii_alphabetic() => {
            let value = cursor.number()?;
            Ok(Command::Basic { letter: l, value })
        }
        _ => Err(SyntaxError {
            position: cursor.pos.saturating_sub(1),
            reason: "unexpected character",
        }),
    }
}

fn parse_extended(cursor: &mut Cursor<'_>) -> Result<Command, SyntaxError> {
    let prefix = cursor.bump().unwrap_or('+');
    let mut name = String::new();
    name.push(prefix);
    // Names are read without skipping spaces: "+C MGF" is not "+CMGF".
    while let Some(&c) = cursor.chars.get(cursor.pos) {
        if !is_name_char(c) {
            break;
        }
        name.push(c.to_ascii_uppercase());
        cursor.pos += 1;
    }
    if name.len() < 2 || !name.chars().nth(1).is_some_and(|c| c.is_ascii_alphabetic()) {
        return Err(cursor.error("command name expected"));
    }
    let operation = match cursor.peek() {
        Some('?') => {
            cursor.pos += 1;
            Operation::Read
        }
        Some('=') => {
            cursor.pos += 1;
            if cursor.peek() == Some('?') {
                cursor.pos += 1;
                Operation::Test
            } else {
                Operation::Set(parse_values(cursor)?)
            }
        }
        _ => Operation::Execute,
    };
    match cursor.peek() {
        None => {}
        Some(';') => cursor.pos += 1,
        Some(_) => return Err(cursor.error("; expected after extended command")),
    }
    Ok(Command::Extended { name, operation })
}

fn parse_values(cursor: &mut Cursor<'_>) -> Result<Vec<Param>, SyntaxError> {
    let mut values = Vec::new();
    loop {
        let value = match cursor.peek() {
            None | Some(';') | Some(',') => Param::Omitted,
            Some('"') => {
                cursor.pos += 1;
                Param::Quoted(parse_string(cursor)?)
            }
            Some(_) => {
                let mut token = String::new();
                while let Some(&c) = cursor.chars.get(cursor.pos) {
                    if matches!(c, ',' | ';' | '"') {
                        break;
                    }
                    if c != ' ' {
                        token.push(c);
                    }
                    cursor.pos += 1;
                }
                Param::Bare(token)
            }
        };
        values.push(value);
        match cursor.peek() {
            Some(',') => cursor.pos += 1,
            None | Some(';') => return Ok(values),
            Some(_) => return Err(cursor.error(", expected between values")),
        }
    }
}

/// A string body after its opening quote, with `\HH` escapes (TS 27.007 §4.1).
fn parse_string(cursor: &mut Cursor<'_>) -> Result<String, SyntaxError> {
    let mut out = String::new();
    loop {
        let Some(&c) = cursor.chars.get(cursor.pos) else {
            return Err(cursor.error("unterminated string"));
        };
        cursor.pos += 1;
        match c {
            '"' => return Ok(out),
            '\\' => {
                let hex: String = cursor
                    .chars
                    .get(cursor.pos..cursor.pos + 2)
                    .map(|s| s.iter().collect())
                    .unwrap_or_default();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if hex.len() == 2 => {
                        cursor.pos += 2;
                        out.push(char::from(b));
                    }
                    _ => out.push('\\'),
                }
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, operation: Operation) -> Command {
        Command::Extended {
            name: name.to_owned(),
            operation,
        }
    }

    fn bare(s: &str) -> Param {
        Param::Bare(s.to_owned())
    }

    #[test]
    fn a_line_without_the_prefix_is_ignored() {
        assert_eq!(parse("hello"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn junk_before_the_prefix_is_skipped() {
        let line = parse("\u{7f}xxAT").expect("prefix");
        assert_eq!(line.commands, vec![]);
        assert_eq!(line.error, None);
    }

    #[test]
    fn chained_extended_commands_split_on_semicolons() {
        let line = parse("AT+CMGF=0;+CNMI=1,1,0,2,0").expect("prefix");
        assert_eq!(
            line.commands,
            vec![
                ext("+CMGF", Operation::Set(vec![bare("0")])),
                ext(
                    "+CNMI",
                    Operation::Set(vec![bare("1"), bare("1"), bare("0"), bare("2"), bare("0")])
                ),
            ]
        );
    }

    #[test]
    fn basic_commands_run_together_and_lower_case_counts() {
        let line = parse("ate0v1&f").expect("prefix");
        assert_eq!(
            line.commands,
            vec![
                Command::Basic {
                    letter: 'E',
                    value: Some(0)
                },
                Command::Basic {
                    letter: 'V',
                    value: Some(1)
                },
                Command::Ampersand {
                    letter: 'F',
                    value: None
                },
            ]
        );
    }

    #[test]
    fn read_test_and_quoted_values_are_told_apart() {
        let line = parse("AT+CPMS?;+CPMS=?;+CPMS=\"SM\",\"ME\",;^ICCID?").expect("prefix");
        assert_eq!(
            line.commands,
            vec![
                ext("+CPMS", Operation::Read),
                ext("+CPMS", Operation::Test),
                ext(
                    "+CPMS",
                    Operation::Set(vec![
                        Param::Quoted("SM".into()),
                        Param::Quoted("ME".into()),
                        Param::Omitted
                    ])
                ),
                ext("^ICCID", Operation::Read),
            ]
        );
    }

    #[test]
    fn a_semicolon_inside_a_string_does_not_split() {
        let line = parse("AT+CSCA=\"+33;6\",145").expect("prefix");
        assert_eq!(
            line.commands,
            vec![ext(
                "+CSCA",
                Operation::Set(vec![Param::Quoted("+33;6".into()), bare("145")])
            )]
        );
    }

    #[test]
    fn escapes_in_strings_are_decoded() {
        let line = parse("AT+CSCA=\"a\\22b\"").expect("prefix");
        assert_eq!(
            line.commands,
            vec![ext(
                "+CSCA",
                Operation::Set(vec![Param::Quoted("a\"b".into())])
            )]
        );
    }

    #[test]
    fn an_unterminated_string_is_a_syntax_error_after_the_good_commands() {
        let line = parse("ATE0+CSCA=\"abc").expect("prefix");
        assert_eq!(line.commands.len(), 1);
        assert!(line.error.is_some());
    }

    #[test]
    fn registers_and_dial_strings_parse() {
        let line = parse("ATS0=1S3?").expect("prefix");
        assert_eq!(
            line.commands,
            vec![
                Command::Register {
                    number: 0,
                    value: Some(1)
                },
                Command::Register {
                    number: 3,
                    value: None
                },
            ]
        );
        let line = parse("ATD+123;").expect("prefix");
        assert_eq!(line.commands, vec![Command::Dial("+123;".into())]);
    }

    #[test]
    fn a_number_parameter_rejects_signs_and_letters() {
        assert_eq!(bare("12").number(), Some(12));
        assert_eq!(bare("-1").number(), None);
        assert_eq!(bare("1a").number(), None);
        assert_eq!(Param::Quoted("1".into()).number(), None);
    }

    #[test]
    fn an_empty_set_is_one_omitted_value() {
        let line = parse("AT+CMGL=").expect("prefix");
        assert_eq!(
            line.commands,
            vec![ext("+CMGL", Operation::Set(vec![Param::Omitted]))]
        );
    }

    #[test]
    fn garbage_after_an_extended_command_is_an_error() {
        let line = parse("AT+CSQ X").expect("prefix");
        assert_eq!(line.commands, vec![]);
        assert!(line.error.is_some());
    }
}
