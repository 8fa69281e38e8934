//! The modem-specific quirks table: what differs between models, in one place.
//!
//! Why a table: `docs/real-modems.md` found that models differ in a handful of ways that
//! matter to the driver (storage index base, which `AT+CNMI` settings really work, which
//! memories `AT+CPMS` accepts, whether `AT+CMGL` can hang, which vendor lines are noise).
//! Scattering `if huawei` through init would make each one hard to find and impossible to
//! override; here each model is one row, chosen from what the modem reports (`AT+CGMI`,
//! `AT+CGMM`), and `modems[].quirks` in the config corrects any field for one modem.
//!
//! The table only orders and narrows: init still tries every `AT+CNMI`/`AT+CPMS` setting by
//! cascade when the listed ones fail (advertised support is not proof, and neither is a
//! table row for a firmware we have not seen), and indexes are still only the ones the modem
//! gives. What the table changes: which settings are tried first (fewer refusals in the log),
//! reading a full store slot by slot on models whose `AT+CMGL` hangs then, and which vendor
//! lines never reach the gateway.

use std::fmt;

use serde::Serialize;

/// The quirks in force for one modem: a table row with the config's corrections applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Quirks {
    /// The row's name (`Huawei E3372`), or `generic` when no row matched.
    pub profile: String,
    /// The first storage index: 0 (Huawei, SIM7600, Quectel) or 1 (SIM800, TS 27.005 by the
    /// book); `None` when unknown. Only used where the driver must guess indexes (reading a
    /// full store slot by slot); otherwise indexes come from the modem.
    pub index_base: Option<u32>,
    /// `AT+CNMI` settings (`mode,mt,bm,ds,bfr`) known to work, best first: tried before the
    /// cascade. Empty: the cascade alone.
    pub cnmi: Vec<String>,
    /// `AT+CPMS` memories the model accepts, preferred first (`SM`, `ME`). Empty: what
    /// `AT+CPMS=?` offers, SIM first.
    pub memories: Vec<String>,
    /// `AT+CMGL` may hang (no answer, port open) when the store is full (the Huawei hang):
    /// a full store is then read slot by slot with `AT+CMGR`.
    pub cmgl_may_hang: bool,
    /// Line prefixes that are vendor noise on this model (`^RSSI`, `+QIND: "csq"`): dropped
    /// before they reach the gateway.
    pub ignore_urcs: Vec<String>,
}

/// Corrections from `modems[].quirks`: each field set replaces the table's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuirksOverride {
    /// See [`Quirks::index_base`].
    pub index_base: Option<u32>,
    /// See [`Quirks::cnmi`].
    pub cnmi: Option<Vec<String>>,
    /// See [`Quirks::memories`].
    pub memories: Option<Vec<String>>,
    /// See [`Quirks::cmgl_may_hang`].
    pub cmgl_may_hang: Option<bool>,
    /// See [`Quirks::ignore_urcs`].
    pub ignore_urcs: Option<Vec<String>>,
}

impl QuirksOverride {
    /// Whether the config changes anything.
    pub fn is_empty(&self) -> bool {
        *self == QuirksOverride::default()
    }
}

/// One row of the table.
struct Row {
    profile: &'static str,
    /// Case-insensitive substring of `AT+CGMI`.
    manufacturer: &'static str,
    /// Case-insensitive substrings of `AT+CGMM`, any of which matches; empty matches any model.
    models: &'static [&'static str],
    index_base: Option<u32>,
    cnmi: &'static [&'static str],
    memories: &'static [&'static str],
    cmgl_may_hang: bool,
    ignore_urcs: &'static [&'static str],
}

/// Huawei's periodic status lines (real-modems.md "Boot noise", "Captured on 22.x sticks").
const HUAWEI_NOISE: &[&str] = &[
    "^RSSI",
    "^HCSQ",
    "^SRVST",
    "^SIMST",
    "^MODE",
    "^NWTIME",
    "^HWNAT",
    "^DSFLOWRPT",
    "^CSNR",
];

/// The table, most specific rows first (the first match wins). Sources: docs/real-modems.md.
const TABLE: &[Row] = &[
    // Balong LTE sticks: index 0 (vendor), ds=1 refused with mode 2, CNMI 2,1,0,2,0 is the
    // vendor's own example; `("SM","ME")`; the CMGL hang with a full store (chan_dongle).
    Row {
        profile: "Huawei E3372",
        manufacturer: "huawei",
        models: &["E3372", "E3531", "E8372", "E3276"],
        index_base: Some(0),
        cnmi: &["2,1,0,2,0"],
        memories: &["SM", "ME"],
        cmgl_may_hang: true,
        ignore_urcs: HUAWEI_NOISE,
    },
    // Qualcomm-based 3G sticks (E173, E1550, E1752, …): index 0 (captured), `<ds>`=1
    // advertised but refused (ModemManager), so ds=2 or none.
    Row {
        profile: "Huawei 3G (E173 family)",
        manufacturer: "huawei",
        models: &[],
        index_base: Some(0),
        cnmi: &["2,1,0,2,0", "2,1,0,0,0"],
        memories: &["SM", "ME"],
        cmgl_may_hang: true,
        ignore_urcs: HUAWEI_NOISE,
    },
    // SIM800: index 1, `<ds>` 0/1 only (python-gsmmodem#60), ME listed but refused.
    Row {
        profile: "SIMCom SIM800",
        manufacturer: "simcom",
        models: &["SIM800", "SIM900", "SIM808"],
        index_base: Some(1),
        cnmi: &["2,1,0,1,0"],
        memories: &["SM"],
        cmgl_may_hang: false,
        ignore_urcs: &[],
    },
    // SIM7600 (Qualcomm LTE): index 0 (captured), ds=1 refused like other Qualcomm stacks.
    Row {
        profile: "SIMCom SIM7600",
        manufacturer: "simcom",
        models: &["SIM7600", "SIM7500", "SIM7000", "SIM5320"],
        index_base: Some(0),
        cnmi: &["2,1,0,2,0"],
        memories: &["SM", "ME"],
        cmgl_may_hang: false,
        ignore_urcs: &[],
    },
    // Quectel EC2x/EG2x: index 0, default memory ME (255 slots) so SM is asked for first;
    // `+QIND: "csq"`/`"act"` are noise when enabled.
    Row {
        profile: "Quectel EC25",
        manufacturer: "quectel",
        models: &[],
        index_base: Some(0),
        cnmi: &["2,1,0,2,0"],
        memories: &["SM", "ME"],
        cmgl_may_hang: false,
        ignore_urcs: &["+QIND: \"csq\"", "+QIND: \"act\"", "+QIND: \"ccinfo\""],
    },
];

impl Quirks {
    /// The row for the identity the modem reported, with `config` applied; the `generic`
    /// profile (no quirks) when no row matches or the modem did not say who it is.
    pub fn select(
        manufacturer: Option<&str>,
        model: Option<&str>,
        config: &QuirksOverride,
    ) -> Quirks {
        let manufacturer = manufacturer.unwrap_or_default().to_ascii_lowercase();
        let model = model.unwrap_or_default().to_ascii_uppercase();
        let row = TABLE.iter().find(|row| {
            !manufacturer.is_empty()
                && manufacturer.contains(row.manufacturer)
                && (row.models.is_empty() || row.models.iter().any(|m| model.contains(m)))
        });
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mut quirks = match row {
            Some(row) => Quirks {
                profile: row.profile.to_owned(),
                index_base: row.index_base,
                cnmi: owned(row.cnmi),
                memories: owned(row.memories),
                cmgl_may_hang: row.cmgl_may_hang,
                ignore_urcs: owned(row.ignore_urcs),
            },
            None => Quirks {
                profile: "generic".to_owned(),
                ..Quirks::default()
            },
        };
        if !config.is_empty() {
            quirks.profile.push_str(" + config");
        }
        if let Some(base) = config.index_base {
            quirks.index_base = Some(base);
        }
        if let Some(cnmi) = &config.cnmi {
            quirks.cnmi = cnmi.clone();
        }
        if let Some(memories) = &config.memories {
            quirks.memories = memories.clone();
        }
        if let Some(hang) = config.cmgl_may_hang {
            quirks.cmgl_may_hang = hang;
        }
        if let Some(ignore) = &config.ignore_urcs {
            quirks.ignore_urcs = ignore.clone();
        }
        quirks
    }

    /// Whether `line` (a whole URC line) is noise on this model.
    pub fn is_noise(&self, line: &str) -> bool {
        self.ignore_urcs
            .iter()
            .any(|prefix| !prefix.is_empty() && line.starts_with(prefix.as_str()))
    }
}

/// The one-line summary the start-up log prints: `index base 0, CNMI 2,1,0,2,0, …`.
impl fmt::Display for Quirks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(base) = self.index_base {
            parts.push(format!("index base {base}"));
        }
        if !self.cnmi.is_empty() {
            parts.push(format!("CNMI {}", self.cnmi.join(" or ")));
        }
        if !self.memories.is_empty() {
            parts.push(format!("memories {}", self.memories.join("/")));
        }
        if self.cmgl_may_hang {
            parts.push("AT+CMGL may hang with a full store (read slot by slot then)".to_owned());
        }
        if !self.ignore_urcs.is_empty() {
            parts.push(format!("ignoring {}", self.ignore_urcs.join(" ")));
        }
        if parts.is_empty() {
            parts.push("none (TS 27.005 by the book, settings found by cascade)".to_owned());
        }
        write!(f, "{}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_follows_manufacturer_and_model_and_unknown_modems_are_generic() {
        let e3372 = Quirks::select(Some("huawei"), Some("E3372"), &QuirksOverride::default());
        assert_eq!(e3372.profile, "Huawei E3372");
        assert_eq!(e3372.index_base, Some(0));
        assert!(e3372.cmgl_may_hang);
        let e173 = Quirks::select(Some("huawei"), Some("E173"), &QuirksOverride::default());
        assert_eq!(e173.profile, "Huawei 3G (E173 family)");
        let sim800 = Quirks::select(
            Some("SIMCOM_Ltd"),
            Some("SIMCOM_SIM800L"),
            &QuirksOverride::default(),
        );
        assert_eq!(sim800.index_base, Some(1));
        assert_eq!(sim800.cnmi, vec!["2,1,0,1,0".to_owned()]);
        let other = Quirks::select(Some("Telit"), Some("LE910"), &QuirksOverride::default());
        assert_eq!(other.profile, "generic");
        assert_eq!(
            other,
            Quirks::select(None, None, &QuirksOverride::default())
        );
    }

    #[test]
    fn the_config_overrides_single_fields_and_says_so() {
        let config = QuirksOverride {
            index_base: Some(1),
            cmgl_may_hang: Some(false),
            ..QuirksOverride::default()
        };
        let quirks = Quirks::select(Some("huawei"), Some("E3372h-153"), &config);
        assert_eq!(quirks.profile, "Huawei E3372 + config");
        assert_eq!(quirks.index_base, Some(1));
        assert!(!quirks.cmgl_may_hang);
        assert_eq!(quirks.memories, vec!["SM".to_owned(), "ME".to_owned()]);
    }

    #[test]
    fn noise_is_matched_by_prefix_and_the_summary_names_every_quirk() {
        let quirks = Quirks::select(Some("Quectel"), Some("EC25"), &QuirksOverride::default());
        assert!(quirks.is_noise("+QIND: \"csq\",27,99"));
        assert!(!quirks.is_noise("+QIND: SMS DONE"));
        let summary = quirks.to_string();
        assert!(summary.contains("index base 0"), "{summary}");
        assert!(summary.contains("CNMI 2,1,0,2,0"), "{summary}");
    }
}
