//! V.250 basic commands: `E` echo, `V` verbose (V1 only), `Q` quiet, `Z` reset, `I`
//! identification, `&F` factory defaults, the no-op legacy ones (`X`, `M`, `L`, `H`, `&C`,
//! `&D`, `&K`, `&W`), and S-parameters (V.250 §6.2).

use crate::codes::Final;
use crate::virtual_modem::{Settings, Step, VirtualModem};

impl VirtualModem {
    pub(super) fn basic(
        &mut self,
        letter: char,
        value: Option<u32>,
        info: &mut Vec<String>,
    ) -> Step {
        match (letter, value.unwrap_or(0)) {
            ('E', v @ (0 | 1)) => self.settings.echo = v == 1,
            ('Q', v @ (0 | 1)) => self.settings.quiet = v == 1,
            // Numeric result codes (V0) are not simulated: ATV0 is refused.
            ('V', 1) => {}
            ('Z', 0) => self.factory_settings(),
            ('I', _) => info.extend(
                self.personality
                    .ati
                    .iter()
                    .map(|l| l.replace("{imei}", &self.identity.imei)),
            ),
            ('H', _) => self.hang_up("ATH"),
            ('X' | 'M' | 'L', _) => {}
            ('E' | 'Q' | 'V' | 'Z', _) => return Step::Fail(Final::Error),
            _ => return Step::Fail(self.unknown()),
        }
        Step::Done
    }

    pub(super) fn ampersand(&mut self, letter: char, value: Option<u32>) -> Step {
        match (letter, value.unwrap_or(0)) {
            ('F', 0) => self.factory_settings(),
            ('C' | 'D' | 'K' | 'S' | 'W' | 'V', _) => {}
            _ => return Step::Fail(self.unknown()),
        }
        Step::Done
    }

    pub(super) fn register(
        &mut self,
        number: u32,
        value: Option<u32>,
        info: &mut Vec<String>,
    ) -> Step {
        // S3 (CR), S4 (LF) and S5 (backspace) are fixed here: the line discipline relies on
        // their defaults.
        let current = match number {
            0 => 0,
            3 => 13,
            4 => 10,
            5 => 8,
            6 => 2,
            7 => 50,
            8 => 2,
            10 => 14,
            _ => return Step::Fail(Final::Error),
        };
        match value {
            None => info.push(format!("{current:03}")),
            Some(v) if matches!(number, 3..=5) && v != current => return Step::Fail(Final::Error),
            Some(v) if v > 255 => return Step::Fail(Final::Error),
            Some(_) => {}
        }
        Step::Done
    }

    /// `ATZ` / `AT&F`: V.250 and message format settings back to their defaults; the
    /// memories (`AT+CPMS`) and `AT+CSMS` stay as they are until a reboot.
    fn factory_settings(&mut self) {
        self.settings = Settings::defaults_for(&self.personality);
    }
}
