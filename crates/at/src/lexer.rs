//! Bytes to tokens: lines, the `> ` prompt, and overlong-line diagnostics.
//!
//! Why a separate layer: framing is the only part that sees raw bytes, so bounding memory,
//! surviving binary garbage and recognising the unterminated prompt all live here, and the
//! engine works on whole lines.
//!
//! The lexer is fed one byte at a time and answers with at most one token per byte. That
//! makes "need more bytes" the natural outcome (no token yet, as mini-redis's `Incomplete`)
//! and makes the token stream independent of how the input was split into reads: the
//! property the transcript tests check for every split.
//!
//! Spec: V.250 §5.7.1 frames responses as `<CR><LF>text<CR><LF>` (with `ATV1`); we accept
//! any run of CR and LF as one line end, so bare-CR and bare-LF modems work and the empty
//! "lines" between the CR LF pairs vanish. TS 27.005 §3.5.1/§4.3: after `AT+CMGS` the modem
//! sends `<CR><LF><greater_than><space>` with no line end after it.

/// What the lexer recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A complete line, trimmed of surrounding whitespace and control bytes; never empty.
    Line(Vec<u8>),
    /// The `>` prompt at the start of a line (the optional space after it is swallowed).
    /// Only recognised while the engine says a prompt may come.
    Prompt,
    /// A complete line that had begun before the last [`Lexer::mark`]: the engine marks
    /// the moment it writes a command, and a line already under way then cannot be the
    /// command's answer.
    EarlierLine(Vec<u8>),
    /// A line grew past the limit; the bytes so far are dropped and the rest of the line
    /// will be skipped. Carries the line's first bytes, for the diagnostic.
    Overlong(Vec<u8>),
}

/// How many leading bytes of an overlong line are kept for the diagnostic.
const OVERLONG_HEAD: usize = 64;

/// A byte-at-a-time line splitter with a bounded buffer.
#[derive(Debug)]
pub(crate) struct Lexer {
    /// The current, unterminated line. Never longer than `max_line_len`.
    buf: Vec<u8>,
    /// The bound on `buf`, so a modem that never sends a line end cannot exhaust memory.
    max_line_len: usize,
    /// Set after an overlong line was reported: skip bytes until the next line end, which
    /// is where the stream resynchronises.
    skipping: bool,
    /// Set right after a prompt: one following space belongs to the prompt (`> `).
    after_prompt: bool,
    /// The current line had begun when [`Lexer::mark`] was called.
    began_before_mark: bool,
}

impl Lexer {
    pub(crate) fn new(max_line_len: usize) -> Lexer {
        Lexer {
            buf: Vec::new(),
            max_line_len: max_line_len.max(1),
            skipping: false,
            after_prompt: false,
            began_before_mark: false,
        }
    }

    /// Notes that everything received so far predates what comes next (a command was just
    /// written): a line under way now is reported as [`Token::EarlierLine`].
    pub(crate) fn mark(&mut self) {
        self.began_before_mark = self.skipping || !self.buf.iter().all(|&b| is_trimmed(b));
    }

    /// Feeds one byte. `expect_prompt` is the engine's view of whether a `>` at the start of
    /// a line is the data prompt (it is only while a data-phase command waits for it).
    pub(crate) fn push(&mut self, byte: u8, expect_prompt: bool) -> Option<Token> {
        if std::mem::take(&mut self.after_prompt) && byte == b' ' {
            return None;
        }
        match byte {
            b'\r' | b'\n' => {
                let earlier = std::mem::take(&mut self.began_before_mark);
                if std::mem::take(&mut self.skipping) {
                    self.buf.clear();
                    return None;
                }
                let line = trim(&self.buf).to_vec();
                let token = match (line.is_empty(), earlier) {
                    (true, _) => None,
                    (false, false) => Some(Token::Line(line)),
                    (false, true) => Some(Token::EarlierLine(line)),
                };
                self.buf.clear();
                token
            }
            _ if self.skipping => None,
            b'>' if expect_prompt && self.buf.iter().all(|&b| is_trimmed(b)) => {
                // Whatever preceded the prompt on this line was noise (NUL, spaces).
                self.buf.clear();
                self.after_prompt = true;
                Some(Token::Prompt)
            }
            _ if self.buf.len() >= self.max_line_len => {
                let head = self.buf[..OVERLONG_HEAD.min(self.buf.len())].to_vec();
                self.buf.clear();
                self.skipping = true;
                Some(Token::Overlong(head))
            }
            _ => {
                self.buf.push(byte);
                None
            }
        }
    }
}

/// Bytes that never carry meaning at either end of a line: whitespace, ASCII control
/// characters (a modem's NUL padding, an echoed Ctrl-Z after a PDU), DEL and 0xFF (what a
/// floating UART line reads as).
fn is_trimmed(byte: u8) -> bool {
    byte <= b' ' || byte == 0x7F || byte == 0xFF
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|&b| !is_trimmed(b))
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|&b| !is_trimmed(b))
        .map_or(start, |i| i + 1);
    &line[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(input: &[u8], expect_prompt: bool, max: usize) -> Vec<Token> {
        let mut lexer = Lexer::new(max);
        input
            .iter()
            .filter_map(|&b| lexer.push(b, expect_prompt))
            .collect()
    }

    fn line(s: &str) -> Token {
        Token::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn crlf_bare_cr_and_bare_lf_all_end_lines_and_empty_lines_vanish() {
        assert_eq!(
            lex(b"\r\nOK\r\n\r\nA\rB\nC\r\r\n", false, 100),
            vec![line("OK"), line("A"), line("B"), line("C")]
        );
    }

    #[test]
    fn partial_lines_wait_for_their_line_end() {
        assert_eq!(lex(b"\r\n+CSQ: 1", false, 100), vec![]);
    }

    #[test]
    fn lines_are_trimmed_of_padding_and_control_bytes() {
        assert_eq!(lex(b"\0\0 OK \xff\r", false, 100), vec![line("OK")]);
        assert_eq!(lex(b"0011\x1a\r\n", false, 100), vec![line("0011")]);
    }

    #[test]
    fn the_prompt_is_recognised_only_when_expected_and_swallows_one_space() {
        assert_eq!(
            lex(b"\r\n> 0011\x1a\r\n", true, 100),
            vec![Token::Prompt, line("0011")]
        );
        assert_eq!(lex(b"\r\n>", true, 100), vec![Token::Prompt]);
        assert_eq!(lex(b"\r\n> x\r\n", false, 100), vec![line("> x")]);
        assert_eq!(lex(b"AB>\r", true, 100), vec![line("AB>")]);
    }

    #[test]
    fn an_overlong_line_is_reported_once_and_the_lexer_resyncs_at_the_line_end() {
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\r\nOK\r\n");
        let tokens = lex(&input, false, 10);
        assert_eq!(
            tokens,
            vec![Token::Overlong(b"xxxxxxxxxx".to_vec()), line("OK")]
        );
    }

    #[test]
    fn a_line_under_way_at_the_mark_is_reported_as_earlier() {
        let mut lexer = Lexer::new(100);
        let mut tokens = Vec::new();
        for &b in b"\r\nOK\r\n+CMS ERR" {
            tokens.extend(lexer.push(b, false));
        }
        lexer.mark();
        for &b in b"OR: 500\r\nOK\r\n" {
            tokens.extend(lexer.push(b, false));
        }
        assert_eq!(
            tokens,
            vec![
                line("OK"),
                Token::EarlierLine(b"+CMS ERROR: 500".to_vec()),
                line("OK")
            ]
        );
    }

    #[test]
    fn padding_under_way_at_the_mark_does_not_make_the_next_line_earlier() {
        let mut lexer = Lexer::new(100);
        assert_eq!(lexer.push(0, false), None);
        lexer.mark();
        let tokens: Vec<_> = b"OK\r"
            .iter()
            .filter_map(|&b| lexer.push(b, false))
            .collect();
        assert_eq!(tokens, vec![line("OK")]);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_kept() {
        assert_eq!(lex(b"0123456789\r", false, 10), vec![line("0123456789")]);
    }
}
