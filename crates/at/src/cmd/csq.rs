//! `AT+CSQ`: signal quality (TS 27.007 §8.5).
//!
//! Feeds the health model (DESIGN "Health"): a modem with no signal cannot send.

use super::find;
use crate::{Command, InfoLine, ParseError, params};

/// `AT+CSQ`.
pub fn query() -> Command {
    Command::trusted("AT+CSQ".to_owned())
}

/// The `+CSQ: <rssi>,<ber>` answer, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalQuality {
    /// `<rssi>` as reported: 0…31, 99 (unknown), or 100…191, 199 (TD-SCDMA range).
    pub rssi: u8,
    /// `<ber>` as reported: 0…7 (RXQUAL class), 99 (unknown).
    pub ber: u8,
}

impl SignalQuality {
    /// The received signal strength in dBm (TS 27.007 §8.5): 0 is -113 dBm *or less*, 1 is
    /// -111, 2…30 are -109…-53 in steps of 2, 31 is -51 dBm *or more*; 100 is -116 or less,
    /// 101…191 are -115…-25. `None` when unknown (99, 199).
    pub fn dbm(self) -> Option<i16> {
        let rssi = i16::from(self.rssi);
        match self.rssi {
            0..=31 => Some(-113 + 2 * rssi),
            100..=191 => Some(-216 + rssi),
            _ => None,
        }
    }

    /// The bit error rate class 0…7, `None` when unknown (99).
    pub fn ber_class(self) -> Option<u8> {
        (self.ber <= 7).then_some(self.ber)
    }
}

/// Parses `+CSQ: <rssi>,<ber>`. Values outside the specification's ranges are errors.
pub fn parse(lines: &[InfoLine]) -> Result<SignalQuality, ParseError> {
    let (line, rest) = find(lines, "+CSQ")?;
    let items = params::split(rest);
    let text = &line.text;
    let rssi: u8 = params::number(items.first(), text, "<rssi>")?;
    let ber: u8 = params::optional_number(items.get(1), text, "<ber>")?.unwrap_or(99);
    let invalid = |field, value: u8| ParseError::InvalidField {
        line: text.clone(),
        field,
        value: value.to_string(),
    };
    if !matches!(rssi, 0..=31 | 99 | 100..=191 | 199) {
        return Err(invalid("<rssi>", rssi));
    }
    if !matches!(ber, 0..=7 | 99) {
        return Err(invalid("<ber>", ber));
    }
    Ok(SignalQuality { rssi, ber })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbm(rssi: u8) -> Option<i16> {
        SignalQuality { rssi, ber: 99 }.dbm()
    }

    #[test]
    fn rssi_maps_to_dbm_per_ts_27_007() {
        assert_eq!(dbm(0), Some(-113));
        assert_eq!(dbm(1), Some(-111));
        assert_eq!(dbm(2), Some(-109));
        assert_eq!(dbm(30), Some(-53));
        assert_eq!(dbm(31), Some(-51));
        assert_eq!(dbm(99), None);
        assert_eq!(dbm(100), Some(-116));
        assert_eq!(dbm(191), Some(-25));
        assert_eq!(dbm(199), None);
    }

    #[test]
    fn the_answer_parses_and_unknown_ber_is_none() {
        let quality = parse(&[InfoLine::new("+CSQ: 17,99")]);
        assert_eq!(quality, Ok(SignalQuality { rssi: 17, ber: 99 }));
        assert_eq!(quality.map(|q| q.ber_class()), Ok(None));
        assert_eq!(
            parse(&[InfoLine::new("+CSQ: 31,0")]).map(|q| q.ber_class()),
            Ok(Some(0))
        );
        assert_eq!(query().line(), "AT+CSQ");
    }

    #[test]
    fn out_of_range_values_are_errors() {
        assert!(matches!(
            parse(&[InfoLine::new("+CSQ: 50,99")]),
            Err(ParseError::InvalidField {
                field: "<rssi>",
                ..
            })
        ));
        assert!(matches!(
            parse(&[InfoLine::new("+CSQ: 10,9")]),
            Err(ParseError::InvalidField { field: "<ber>", .. })
        ));
        assert!(matches!(
            parse(&[InfoLine::new("+CSQ: 300,9")]),
            Err(ParseError::InvalidField {
                field: "<rssi>",
                ..
            })
        ));
        assert_eq!(
            parse(&[]),
            Err(ParseError::MissingLine { expected: "+CSQ" })
        );
    }
}
