//! Personalities: how one modem model deviates from TS 27.005 / TS 27.007 by the book.
//!
//! Why: a driver that only ever meets a textbook modem breaks on the first real one. Every
//! value here comes from `docs/real-modems.md` and the transcripts in
//! `crates/at/tests/transcripts/` (index base, memory names and capacities, empty-alpha
//! quoting, the `AT+CNMI` acceptance table, status report routing including Quectel's
//! mislabelled `+CDSI`, boot banners, vendor noise, error style). Where the notes mark a value
//! as plausible rather than captured, the comment beside it says so.
//!
//! A personality is plain data with public fields, so a test can start from one and change a
//! field (`Personality { noise_interval: None, ..Personality::huawei_e173() }`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::codes::{Final, cms};

/// One `AT+CNMI` setting (TS 27.005 §3.4.1): `<mode>,<mt>,<bm>,<ds>,<bfr>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cnmi {
    /// 0 buffer indications in the TA, 1 discard when the link is busy, 2 buffer when busy,
    /// 3 forward in-band.
    pub mode: u8,
    /// 0 no SMS-DELIVER indication, 1 `+CMTI`, 2 `+CMT` (route to the TE), 3 class 3 only.
    pub mt: u8,
    /// Cell broadcast indications (kept, not simulated).
    pub bm: u8,
    /// 0 no status report indication, 1 `+CDS`, 2 `+CDSI`.
    pub ds: u8,
    /// 0 flush buffered indications when `<mode>` becomes 1–3, 1 clear them.
    pub bfr: u8,
}

impl Cnmi {
    /// A setting from its five values.
    pub const fn new(mode: u8, mt: u8, bm: u8, ds: u8, bfr: u8) -> Self {
        Self {
            mode,
            mt,
            bm,
            ds,
            bfr,
        }
    }
}

/// A setting that the model advertises in `AT+CNMI=?` but refuses all the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CnmiQuirk {
    /// None: every advertised combination works.
    None,
    /// Qualcomm-based devices (Huawei E1xx, SIMCom SIM7600): `<ds>`=1 is advertised but
    /// refused with `+CMS ERROR: 303` (ModemManager's note; E173 transcript).
    RefusesDs1,
    /// Huawei Balong: with `<mode>` 0 or 2, `<mt>` 2/3 and `<ds>`=1 are refused with
    /// `+CMS ERROR: 302` (vendor table).
    BalongBufferedModes,
}

/// Where a status report received with `<ds>`=2 is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportStore {
    /// A memory of its own, named here (usually "SR").
    Memory(&'static str),
    /// The receive memory (`<mem3>` of `AT+CPMS`), as Huawei Balong does.
    ReceiveMemory,
}

/// How a stored status report is announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportUrc {
    /// `+CDSI: <mem>,<index>` (TS 27.005).
    Cdsi,
    /// `+CMTI: <mem>,<index>`, as Huawei 3G sticks announce reports (E169, gammu#23).
    Cmti,
}

/// Status report routing for `<ds>`=2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportRouting {
    /// Where the report goes.
    pub store: ReportStore,
    /// Which URC announces it.
    pub urc: ReportUrc,
    /// The memory name the URC gives, when it differs from where the report is: Quectel's
    /// `+CDSI: "SM",n` for a report stored in "SR" (chan_quectel PR #75).
    pub announce_as: Option<&'static str>,
}

/// How the empty `<alpha>` of a PDU-mode `+CMGL`/`+CMGR` header is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlphaStyle {
    /// `+CMGL: 0,1,,23` (Huawei, Quectel, TS 27.005 by the book).
    Empty,
    /// `+CMGL: 1,1,"",20` (SIMCom).
    QuotedEmpty,
}

/// What `AT+CMGR` answers for an empty slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyRead {
    /// A bare `OK` with no `+CMGR` line (Huawei gammu#89, Quectel, SIMCom).
    BareOk,
    /// `+CMS ERROR: 321` (invalid memory index).
    InvalidIndex,
}

/// Which command reads the ICCID, and how its answer looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IccidStyle {
    /// `AT+CCID` → `+CCID: <iccid>`.
    Ccid,
    /// `AT+CCID` → the bare digits, F-padded to 20 (SIM800).
    CcidBare,
    /// `AT^ICCID?` → `^ICCID: <iccid F-padded to 20>` (Huawei Balong).
    CaretIccid,
    /// `AT+QCCID` → `+QCCID: <iccid F-padded to 20>` (Quectel).
    Qccid,
    /// `AT+CICCID` → `+ICCID: <iccid>` (SIMCom LTE).
    Ciccid,
    /// Only `AT+CRSM=176,12258,0,0,10` (READ BINARY of EF_ICCID, nibble-swapped), as old
    /// Huawei 3G firmware.
    CrsmOnly,
}

/// One memory name the modem accepts in `AT+CPMS`, and the storages behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryDef {
    /// The name (`"SM"`, `"ME"`, `"MT"`, `"SR"`, `"SM_P"`…).
    pub name: &'static str,
    /// The physical storages (`"SM"`, `"ME"`, `"SR"`) it covers, in index order: one for a
    /// plain memory or an alias, several for a combined one (`"MT"` = SM then ME on SIM800).
    pub storages: &'static [&'static str],
}

/// How registration lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationStyle {
    /// Location area / tracking area code, hex.
    pub lac: &'static str,
    /// Cell id, hex.
    pub ci: &'static str,
    /// Quote LAC and CI (`"8BE3"`), or not (Huawei: `8BE3`).
    pub quoted: bool,
    /// The access technology appended to `+CREG`/`+CEREG` with `n`=2, if the model does.
    pub act: Option<u8>,
    /// Whether `AT+CEREG` exists (LTE models).
    pub has_cereg: bool,
}

/// Everything that makes one modem model itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Personality {
    /// The name used in configs and on the command line.
    pub name: &'static str,
    /// The first storage index: 0 (Huawei, SIM7600, Quectel) or 1 (SIM800, by the book).
    pub index_base: u32,
    /// `AT+CGMI`.
    pub manufacturer: &'static str,
    /// `AT+CGMM`.
    pub model: &'static str,
    /// `AT+CGMR`, exactly as printed (some models add a prefix).
    pub revision: &'static str,
    /// `ATI` lines; `{imei}` is replaced by the modem's IMEI.
    pub ati: &'static [&'static str],
    /// The ICCID command and its answer.
    pub iccid: IccidStyle,
    /// First digits of generated IMEIs (the rest identifies the modem, plus a Luhn digit).
    pub imei_prefix: &'static str,
    /// First digits of generated IMSIs (MCC+MNC).
    pub imsi_prefix: &'static str,
    /// First digits of generated ICCIDs.
    pub iccid_prefix: &'static str,
    /// Memory names, with the storages behind them.
    pub memories: &'static [MemoryDef],
    /// The three lists `AT+CPMS=?` prints.
    pub cpms_lists: [&'static [&'static str]; 3],
    /// The names really accepted in each position (SIM800 lists "ME" but refuses it).
    pub cpms_accepted: [&'static [&'static str]; 3],
    /// The memories after power-on.
    pub cpms_default: [&'static str; 3],
    /// Slots of the phone memory "ME".
    pub me_capacity: usize,
    /// Slots of the status report memory "SR".
    pub sr_capacity: usize,
    /// The `AT+CNMI=?` line, after `+CNMI: `.
    pub cnmi_test: &'static str,
    /// Accepted values of the five `AT+CNMI` parameters.
    pub cnmi_ranges: [&'static [u8]; 5],
    /// Advertised but refused combinations.
    pub cnmi_quirk: CnmiQuirk,
    /// `AT+CNMI` after power-on.
    pub cnmi_default: Cnmi,
    /// Status reports with `<ds>`=2.
    pub report_routing: ReportRouting,
    /// Empty alpha in PDU-mode headers.
    pub alpha: AlphaStyle,
    /// `AT+CMGR` on an empty slot.
    pub empty_read: EmptyRead,
    /// `AT+CMEE` after power-on.
    pub cmee_default: u8,
    /// `AT+CSMS` service after power-on.
    pub csms_default: u8,
    /// The answer to a command the model does not know.
    pub unknown_command: Final,
    /// The answer to an `AT+CNMI`/`AT+CPMS` setting the model refuses; `None` for the TS
    /// 27.005 `+CMS ERROR` (SIM800 answers a bare `ERROR` even with `AT+CMEE=1`).
    pub setting_rejected: Option<Final>,
    /// Boot banner: lines and when they come, in milliseconds after power-on.
    pub boot: &'static [(u64, &'static str)],
    /// When the SMS stack is ready after power-on; before, SMS commands get `not_ready`.
    pub sms_ready_after: Duration,
    /// The answer to SMS commands before the SMS stack is ready.
    pub not_ready: Final,
    /// When the modem is registered after power-on.
    pub registered_after: Duration,
    /// Vendor noise lines, emitted in turn.
    pub noise: &'static [&'static str],
    /// How often idle noise comes; `None` for a quiet model.
    pub noise_interval: Option<Duration>,
    /// Chance that a noise line slips in between two lines of a response (or before an
    /// echo), as Huawei's `^RSSI` and Quectel's `+QIND` do.
    pub noise_in_response: f64,
    /// A URC sent when the receive memory fills up (Huawei `^SMMEMFULL`).
    pub memory_full_urc: Option<&'static str>,
    /// `AT+CSQ` values `<rssi>,<ber>`.
    pub signal: (u8, u8),
    /// Registration line style.
    pub registration: RegistrationStyle,
    /// `AT+COPS?` operator name and access technology (`None`: the field is left out).
    pub operator: (&'static str, Option<u8>),
    /// `AT+COPS?` `<format>` after power-on: 0 long name, 2 numeric (MCC+MNC).
    pub operator_format: u8,
    /// The SMSC on the SIM (`AT+CSCA?`).
    pub smsc: &'static str,
    /// Vendor commands accepted with a bare `OK` (`^CURC`, `+QINDCFG`…).
    pub vendor_noops: &'static [&'static str],
}

const fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

const SM_ME_SR: &[MemoryDef] = &[
    MemoryDef {
        name: "SM",
        storages: &["SM"],
    },
    MemoryDef {
        name: "ME",
        storages: &["ME"],
    },
    MemoryDef {
        name: "SR",
        storages: &["SR"],
    },
];

const HUAWEI_3G_MEMORIES: &[MemoryDef] = &[
    MemoryDef {
        name: "ME",
        storages: &["ME"],
    },
    // Not documented; modelled as SIM800's combined memory (SIM first, then the phone).
    MemoryDef {
        name: "MT",
        storages: &["SM", "ME"],
    },
    MemoryDef {
        name: "SM",
        storages: &["SM"],
    },
    MemoryDef {
        name: "SR",
        storages: &["SR"],
    },
];

const SIM800_MEMORIES: &[MemoryDef] = &[
    MemoryDef {
        name: "SM",
        storages: &["SM"],
    },
    MemoryDef {
        name: "ME",
        storages: &["ME"],
    },
    MemoryDef {
        name: "SM_P",
        storages: &["SM"],
    },
    MemoryDef {
        name: "ME_P",
        storages: &["ME"],
    },
    // "MT" = SM plus ME: `"MT",9,100` with 50 + 50 (captured).
    MemoryDef {
        name: "MT",
        storages: &["SM", "ME"],
    },
];

const QUECTEL_MEMORIES: &[MemoryDef] = &[
    MemoryDef {
        name: "SM",
        storages: &["SM"],
    },
    MemoryDef {
        name: "ME",
        storages: &["ME"],
    },
    // "MT" is the same as "ME" on Quectel (EC2x manual).
    MemoryDef {
        name: "MT",
        storages: &["ME"],
    },
    MemoryDef {
        name: "SR",
        storages: &["SR"],
    },
];

impl Personality {
    /// Every personality name, for help texts and errors.
    pub const NAMES: &'static [&'static str] = &[
        "generic",
        "huawei_e173",
        "huawei_e3372",
        "simcom_sim800",
        "simcom_sim7600",
        "quectel_ec25",
    ];

    /// A personality by name (see [`Personality::NAMES`]).
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "generic" => Some(Self::generic()),
            "huawei_e173" => Some(Self::huawei_e173()),
            "huawei_e3372" => Some(Self::huawei_e3372()),
            "simcom_sim800" => Some(Self::simcom_sim800()),
            "simcom_sim7600" => Some(Self::simcom_sim7600()),
            "quectel_ec25" => Some(Self::quectel_ec25()),
            _ => None,
        }
    }

    /// TS 27.005 / TS 27.007 by the book: index base 1, "SM" by default, "SR" for status
    /// reports with `+CDSI`, `+CMS ERROR: 321` for an empty slot, no banner, no noise.
    pub fn generic() -> Self {
        Self {
            name: "generic",
            index_base: 1,
            manufacturer: "Conductor",
            model: "Virtual Modem",
            revision: "1.0.0",
            ati: &[
                "Manufacturer: Conductor",
                "Model: Virtual Modem",
                "Revision: 1.0.0",
                "IMEI: {imei}",
                "+GCAP: +CGSM",
            ],
            iccid: IccidStyle::Ccid,
            imei_prefix: "35000000",
            imsi_prefix: "00101",
            iccid_prefix: "8900100",
            memories: SM_ME_SR,
            cpms_lists: [&["SM", "ME", "SR"], &["SM", "ME"], &["SM", "ME"]],
            cpms_accepted: [&["SM", "ME", "SR"], &["SM", "ME"], &["SM", "ME"]],
            cpms_default: ["SM", "SM", "SM"],
            me_capacity: 100,
            sr_capacity: 20,
            cnmi_test: "(0-3),(0-3),(0,2),(0-2),(0,1)",
            cnmi_ranges: [&[0, 1, 2, 3], &[0, 1, 2, 3], &[0, 2], &[0, 1, 2], &[0, 1]],
            cnmi_quirk: CnmiQuirk::None,
            cnmi_default: Cnmi::new(0, 0, 0, 0, 0),
            report_routing: ReportRouting {
                store: ReportStore::Memory("SR"),
                urc: ReportUrc::Cdsi,
                announce_as: None,
            },
            alpha: AlphaStyle::Empty,
            empty_read: EmptyRead::InvalidIndex,
            cmee_default: 0,
            csms_default: 0,
            unknown_command: Final::Error,
            setting_rejected: None,
            boot: &[],
            sms_ready_after: Duration::ZERO,
            not_ready: Final::Cms(cms::SIM_BUSY),
            registered_after: Duration::ZERO,
            noise: &[],
            noise_interval: None,
            noise_in_response: 0.0,
            memory_full_urc: None,
            signal: (20, 99),
            registration: RegistrationStyle {
                lac: "1A2B",
                ci: "00C0FFEE",
                quoted: true,
                act: Some(7),
                has_cereg: true,
            },
            operator: ("Conductor Net", Some(7)),
            operator_format: 0,
            smsc: "+10000000000",
            vendor_noops: &[],
        }
    }

    /// Huawei E173 (Qualcomm 3G stick): index 0, `("ME","MT","SM","SR")`, ME 23, reports as
    /// `+CMTI: "SR",n`, `COMMAND NOT SUPPORT`, `^BOOT`/`^RSSI`/`^MODE` noise also inside
    /// responses and before echoes, ICCID only through `+CRSM`.
    pub fn huawei_e173() -> Self {
        Self {
            name: "huawei_e173",
            index_base: 0,
            manufacturer: "huawei",
            model: "E173",
            revision: "11.126.85.00.00",
            ati: &[
                "Manufacturer: huawei",
                "Model: E173",
                "Revision: 21.017.09.00.314",
                "IMEI: {imei}",
                "+GCAP: +CGSM,+DS,+ES",
            ],
            iccid: IccidStyle::CrsmOnly,
            imei_prefix: "35123456",
            imsi_prefix: "26201",
            iccid_prefix: "8949022",
            memories: HUAWEI_3G_MEMORIES,
            cpms_lists: [
                &["ME", "MT", "SM", "SR"],
                &["ME", "MT", "SM", "SR"],
                &["ME", "MT", "SM", "SR"],
            ],
            cpms_accepted: [
                &["ME", "MT", "SM", "SR"],
                &["ME", "MT", "SM", "SR"],
                &["ME", "MT", "SM", "SR"],
            ],
            cpms_default: ["SM", "SM", "SM"],
            me_capacity: 23,
            // Plausible: SR capacity not captured.
            sr_capacity: 20,
            // Plausible: the E173's own line was not captured (Qualcomm style).
            cnmi_test: "(0,1,2),(0,1,2,3),(0,2),(0,1,2),(0,1)",
            cnmi_ranges: [&[0, 1, 2], &[0, 1, 2, 3], &[0, 2], &[0, 1, 2], &[0, 1]],
            cnmi_quirk: CnmiQuirk::RefusesDs1,
            cnmi_default: Cnmi::new(0, 0, 0, 0, 0),
            report_routing: ReportRouting {
                store: ReportStore::Memory("SR"),
                urc: ReportUrc::Cmti,
                announce_as: None,
            },
            alpha: AlphaStyle::Empty,
            empty_read: EmptyRead::BareOk,
            cmee_default: 0,
            csms_default: 0,
            unknown_command: Final::Vendor("COMMAND NOT SUPPORT"),
            setting_rejected: None,
            boot: &[
                (300, "^BOOT:35323129,0,0,0,26"),
                (800, "^SIMST:1"),
                (1200, "^SRVST:0"),
                (1500, "^MODE:3,3"),
                (2000, "^RSSI:14"),
            ],
            sms_ready_after: ms(1500),
            not_ready: Final::Cms(cms::SIM_BUSY),
            registered_after: ms(2000),
            noise: &[
                "^RSSI:14",
                "^BOOT:35323129,0,0,0,26",
                "^RSSI:10",
                "^MODE:3,3",
                "^SRVST:0",
            ],
            noise_interval: Some(Duration::from_secs(5)),
            noise_in_response: 0.04,
            memory_full_urc: Some("^SMMEMFULL: \"SM\""),
            signal: (14, 99),
            registration: RegistrationStyle {
                lac: "8BE3",
                ci: "2BAF",
                quoted: false,
                act: None,
                has_cereg: false,
            },
            operator: ("Orange F", Some(2)),
            operator_format: 0,
            smsc: "+33660003155",
            vendor_noops: &["^CURC", "^PORTSEL", "^BOOT", "^CMSR"],
        }
    }

    /// Huawei E3372h in stick mode (Balong): index 0 in every memory, `("SM","ME")`, ME up to
    /// 500, CSMS service 1, reports stored in the receive memory with `+CDSI`, the buffered
    /// `<mode>` rule of `AT+CNMI`, `^HCSQ`/`^NWTIME`/`^HWNAT` noise, `AT^ICCID?`.
    pub fn huawei_e3372() -> Self {
        Self {
            name: "huawei_e3372",
            index_base: 0,
            manufacturer: "huawei",
            model: "E3372",
            revision: "22.318.23.00.158",
            ati: &[
                "Manufacturer: huawei",
                "Model: E3372",
                "Revision: 22.318.23.00.158",
                "IMEI: {imei}",
                "+GCAP: +CGSM,+DS,+ES",
            ],
            iccid: IccidStyle::CaretIccid,
            imei_prefix: "86712345",
            imsi_prefix: "20801",
            iccid_prefix: "8933150",
            memories: &[
                MemoryDef {
                    name: "SM",
                    storages: &["SM"],
                },
                MemoryDef {
                    name: "ME",
                    storages: &["ME"],
                },
            ],
            cpms_lists: [&["SM", "ME"], &["SM", "ME"], &["SM", "ME"]],
            cpms_accepted: [&["SM", "ME"], &["SM", "ME"], &["SM", "ME"]],
            cpms_default: ["SM", "SM", "SM"],
            // Plausible: NV-customised, 500 at most.
            me_capacity: 500,
            sr_capacity: 0,
            cnmi_test: "(0-2),(0-3),(0,2),(0-2),(0,1)",
            cnmi_ranges: [&[0, 1, 2], &[0, 1, 2, 3], &[0, 2], &[0, 1, 2], &[0, 1]],
            cnmi_quirk: CnmiQuirk::BalongBufferedModes,
            cnmi_default: Cnmi::new(0, 0, 0, 0, 0),
            report_routing: ReportRouting {
                store: ReportStore::ReceiveMemory,
                urc: ReportUrc::Cdsi,
                announce_as: None,
            },
            alpha: AlphaStyle::Empty,
            empty_read: EmptyRead::BareOk,
            cmee_default: 0,
            csms_default: 1,
            unknown_command: Final::Error,
            setting_rejected: None,
            boot: &[
                (500, "^SIMST:1"),
                (1000, "^SRVST:2"),
                (1500, "^HCSQ:\"LTE\",59,50,161,24"),
                (2000, "^NWTIME: 18/03/09,12:36:21+4,00"),
            ],
            sms_ready_after: ms(1500),
            not_ready: Final::Cms(cms::SIM_BUSY),
            registered_after: ms(1500),
            noise: &[
                "^HCSQ:\"LTE\",58,49,160,23",
                "^RSSI:21",
                "^NWTIME: 18/03/09,12:36:21+4,00",
                "^HWNAT:06",
            ],
            noise_interval: Some(Duration::from_secs(7)),
            noise_in_response: 0.04,
            memory_full_urc: Some("^SMMEMFULL: \"SM\""),
            signal: (21, 99),
            registration: RegistrationStyle {
                lac: "4CA",
                ci: "81DE445",
                quoted: true,
                act: Some(7),
                has_cereg: true,
            },
            operator: ("Orange F", Some(7)),
            // Numeric, as the E3372 answers (`+COPS: 0,2,"20801",7`).
            operator_format: 2,
            smsc: "+33695000695",
            vendor_noops: &["^CURC", "^PORTSEL", "^CMSR"],
        }
    }

    /// SIMCom SIM800L: index 1, `("SM","ME","SM_P","ME_P","MT")` with "ME" refused as a
    /// receive memory, `"ME","SM","MT"` by default, quoted empty alpha, `<ds>`=2 refused with a
    /// bare `ERROR` (reports only as `+CDS`), bare-digit `AT+CCID`, and the boot window before
    /// `SMS Ready` in which SMS commands answer `ERROR`.
    pub fn simcom_sim800() -> Self {
        Self {
            name: "simcom_sim800",
            index_base: 1,
            manufacturer: "SIMCOM_Ltd",
            model: "SIMCOM_SIM800L",
            revision: "Revision:1418B05SIM800L24",
            ati: &["SIM800 R14.18"],
            iccid: IccidStyle::CcidBare,
            imei_prefix: "86123456",
            imsi_prefix: "23410",
            iccid_prefix: "8944110",
            memories: SIM800_MEMORIES,
            cpms_lists: [
                &["SM", "ME", "SM_P", "ME_P", "MT"],
                &["SM", "ME", "SM_P", "ME_P", "MT"],
                &["SM", "ME", "SM_P", "ME_P", "MT"],
            ],
            // `AT+CPMS="ME","ME","ME"` → ERROR (captured): modelled as ME refused for mem2/mem3.
            cpms_accepted: [
                &["SM", "ME", "SM_P", "ME_P", "MT"],
                &["SM", "SM_P", "MT"],
                &["SM", "SM_P", "MT"],
            ],
            cpms_default: ["ME", "SM", "MT"],
            me_capacity: 50,
            sr_capacity: 0,
            cnmi_test: "(0-3),(0-3),(0,2),(0,1),(0,1)",
            cnmi_ranges: [&[0, 1, 2, 3], &[0, 1, 2, 3], &[0, 2], &[0, 1], &[0, 1]],
            cnmi_quirk: CnmiQuirk::None,
            cnmi_default: Cnmi::new(2, 1, 0, 0, 0),
            report_routing: ReportRouting {
                store: ReportStore::ReceiveMemory,
                urc: ReportUrc::Cdsi,
                announce_as: None,
            },
            alpha: AlphaStyle::QuotedEmpty,
            empty_read: EmptyRead::BareOk,
            cmee_default: 0,
            csms_default: 0,
            unknown_command: Final::Error,
            setting_rejected: Some(Final::Error),
            // "RDY" only comes at a fixed baud rate; the factory autobaud setting omits it.
            boot: &[
                (500, "+CFUN: 1"),
                (800, "+CPIN: READY"),
                (3000, "Call Ready"),
                (3500, "SMS Ready"),
            ],
            sms_ready_after: ms(3500),
            not_ready: Final::Error,
            registered_after: ms(3000),
            noise: &[],
            noise_interval: None,
            noise_in_response: 0.0,
            memory_full_urc: None,
            signal: (18, 0),
            registration: RegistrationStyle {
                lac: "1A2B",
                ci: "3C4D",
                quoted: true,
                act: None,
                has_cereg: false,
            },
            operator: ("O2 - UK", None),
            operator_format: 0,
            smsc: "+447785016005",
            vendor_noops: &["+CSCLK", "+CIURC"],
        }
    }

    /// SIMCom SIM7600G-H: index 0, three different `CPMS=?` lists, ME 23, `AT+CMEE=2` by
    /// default, `<ds>`=1 refused, reports in "SR" with `+CDSI`, `AT+CICCID`.
    pub fn simcom_sim7600() -> Self {
        Self {
            name: "simcom_sim7600",
            index_base: 0,
            manufacturer: "SIMCOM INCORPORATED",
            model: "SIMCOM_SIM7600G-H",
            revision: "+CGMR: LE20B04SIM7600G22",
            ati: &[
                "Manufacturer: SIMCOM INCORPORATED",
                "Model: SIMCOM_SIM7600G-H",
                "Revision: LE20B04SIM7600G22",
                "IMEI: {imei}",
                "+GCAP: +CGSM",
            ],
            iccid: IccidStyle::Ciccid,
            imei_prefix: "86263601",
            imsi_prefix: "23415",
            iccid_prefix: "8944100",
            memories: HUAWEI_3G_MEMORIES,
            cpms_lists: [
                &["ME", "MT", "SM", "SR"],
                &["ME", "MT", "SM"],
                &["ME", "SM"],
            ],
            cpms_accepted: [
                &["ME", "MT", "SM", "SR"],
                &["ME", "MT", "SM"],
                &["ME", "SM"],
            ],
            cpms_default: ["SM", "SM", "SM"],
            me_capacity: 23,
            sr_capacity: 23,
            // From the SIM5320E sibling (not captured on a SIM7600).
            cnmi_test: "(0,1,2),(0,1,2,3),(0,2),(0,1,2),(0,1)",
            cnmi_ranges: [&[0, 1, 2], &[0, 1, 2, 3], &[0, 2], &[0, 1, 2], &[0, 1]],
            cnmi_quirk: CnmiQuirk::RefusesDs1,
            cnmi_default: Cnmi::new(2, 1, 0, 0, 0),
            report_routing: ReportRouting {
                store: ReportStore::Memory("SR"),
                urc: ReportUrc::Cdsi,
                announce_as: None,
            },
            alpha: AlphaStyle::QuotedEmpty,
            empty_read: EmptyRead::BareOk,
            cmee_default: 2,
            csms_default: 0,
            unknown_command: Final::Error,
            setting_rejected: None,
            boot: &[
                (1000, "RDY"),
                (1500, "+CPIN: READY"),
                (4000, "SMS DONE"),
                (4500, "PB DONE"),
            ],
            sms_ready_after: ms(4000),
            not_ready: Final::Cms(cms::SIM_BUSY),
            registered_after: ms(3000),
            noise: &[],
            noise_interval: None,
            noise_in_response: 0.0,
            memory_full_urc: None,
            signal: (14, 99),
            registration: RegistrationStyle {
                lac: "2AF5",
                ci: "0B88E350",
                quoted: true,
                act: Some(7),
                has_cereg: true,
            },
            operator: ("vodafone UK", Some(7)),
            operator_format: 0,
            smsc: "+447785016005",
            vendor_noops: &["+CSCLK"],
        }
    }

    /// Quectel EC25: index 0, "ME" with 255 slots by default, "MT" = "ME", reports stored in
    /// "SR" but announced `+CDSI: "SM",n` (the real firmware bug), `+QIND` noise, `AT+QCCID`
    /// with F padding.
    pub fn quectel_ec25() -> Self {
        Self {
            name: "quectel_ec25",
            index_base: 0,
            manufacturer: "Quectel",
            model: "EC25",
            revision: "EC25EFAR06A10M4G",
            ati: &["Quectel", "EC25", "Revision: EC25EFAR06A10M4G"],
            iccid: IccidStyle::Qccid,
            imei_prefix: "86612345",
            imsi_prefix: "26201",
            iccid_prefix: "8949226",
            memories: QUECTEL_MEMORIES,
            // Built from the manual's parameter list (plausible, not captured).
            cpms_lists: [
                &["SM", "ME", "MT", "SR"],
                &["SM", "ME", "MT", "SR"],
                &["SM", "ME", "MT", "SR"],
            ],
            cpms_accepted: [
                &["SM", "ME", "MT", "SR"],
                &["SM", "ME", "MT", "SR"],
                &["SM", "ME", "MT", "SR"],
            ],
            cpms_default: ["ME", "ME", "ME"],
            me_capacity: 255,
            sr_capacity: 255,
            cnmi_test: "(0-2),(0-3),(0,2),(0-2),(0,1)",
            cnmi_ranges: [&[0, 1, 2], &[0, 1, 2, 3], &[0, 2], &[0, 1, 2], &[0, 1]],
            cnmi_quirk: CnmiQuirk::None,
            cnmi_default: Cnmi::new(2, 1, 0, 0, 0),
            report_routing: ReportRouting {
                store: ReportStore::Memory("SR"),
                urc: ReportUrc::Cdsi,
                announce_as: Some("SM"),
            },
            alpha: AlphaStyle::Empty,
            empty_read: EmptyRead::BareOk,
            // The EC2x manual gives 1 as the default (not captured).
            cmee_default: 1,
            csms_default: 0,
            unknown_command: Final::Error,
            setting_rejected: None,
            boot: &[
                (1000, "RDY"),
                (1200, "+CFUN: 1"),
                (1300, "+CPIN: READY"),
                (1400, "+QUSIM: 1"),
                (3000, "+QIND: SMS DONE"),
                (3200, "+QIND: PB DONE"),
            ],
            sms_ready_after: ms(3000),
            not_ready: Final::Cms(cms::SIM_BUSY),
            registered_after: ms(2500),
            noise: &[
                "+QIND: \"csq\",27,99",
                "+QIND: \"act\",\"LTE\"",
                "+QIND: \"csq\",25,99",
            ],
            noise_interval: Some(Duration::from_secs(10)),
            noise_in_response: 0.03,
            memory_full_urc: None,
            signal: (17, 99),
            registration: RegistrationStyle {
                lac: "5E25",
                ci: "0605F3A1",
                quoted: true,
                act: Some(7),
                has_cereg: true,
            },
            operator: ("SGP-M1", Some(7)),
            operator_format: 0,
            smsc: "+6587614701",
            vendor_noops: &["+QINDCFG", "+QURCCFG", "+QCFG"],
        }
    }

    /// The memory definition named `name` (case-insensitive, as modems accept).
    pub fn memory(&self, name: &str) -> Option<&'static MemoryDef> {
        self.memories
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
    }

    /// Whether `AT+CNMI` with `setting` is refused, and with what.
    pub fn cnmi_refusal(&self, setting: &Cnmi) -> Option<Final> {
        let values = [
            setting.mode,
            setting.mt,
            setting.bm,
            setting.ds,
            setting.bfr,
        ];
        let in_range = values
            .iter()
            .zip(self.cnmi_ranges.iter())
            .all(|(v, range)| range.contains(v));
        let rejected = |code| Some(self.setting_rejected.unwrap_or(Final::Cms(code)));
        if !in_range {
            return rejected(cms::NOT_SUPPORTED);
        }
        match self.cnmi_quirk {
            CnmiQuirk::None => None,
            CnmiQuirk::RefusesDs1 if setting.ds == 1 => rejected(cms::NOT_SUPPORTED),
            CnmiQuirk::BalongBufferedModes
                if matches!(setting.mode, 0 | 2) && (setting.mt >= 2 || setting.ds == 1) =>
            {
                rejected(cms::NOT_ALLOWED)
            }
            _ => None,
        }
    }
}

impl Default for Personality {
    fn default() -> Self {
        Self::generic()
    }
}

/// A personality name that is not one of [`Personality::NAMES`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown personality {name:?}; known: {}", Personality::NAMES.join(", "))]
pub struct UnknownPersonality {
    /// The name given.
    pub name: String,
}

impl FromStr for Personality {
    type Err = UnknownPersonality;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::by_name(s).ok_or_else(|| UnknownPersonality { name: s.to_owned() })
    }
}

impl fmt::Display for Personality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_resolves_to_its_personality() {
        for name in Personality::NAMES {
            assert_eq!(Personality::by_name(name).map(|p| p.name), Some(*name));
        }
        assert!("nokia_3310".parse::<Personality>().is_err());
    }

    #[test]
    fn sim800_refuses_ds2_with_a_bare_error() {
        let p = Personality::simcom_sim800();
        assert_eq!(
            p.cnmi_refusal(&Cnmi::new(2, 1, 0, 2, 0)),
            Some(Final::Error)
        );
        assert_eq!(p.cnmi_refusal(&Cnmi::new(2, 1, 0, 1, 0)), None);
    }

    #[test]
    fn balong_refuses_direct_routing_in_buffered_modes() {
        let p = Personality::huawei_e3372();
        assert_eq!(
            p.cnmi_refusal(&Cnmi::new(2, 1, 0, 1, 0)),
            Some(Final::Cms(302))
        );
        assert_eq!(p.cnmi_refusal(&Cnmi::new(2, 1, 0, 2, 0)), None);
        assert_eq!(p.cnmi_refusal(&Cnmi::new(1, 2, 0, 1, 0)), None);
        assert_eq!(
            p.cnmi_refusal(&Cnmi::new(3, 1, 0, 2, 0)),
            Some(Final::Cms(303))
        );
    }

    #[test]
    fn qualcomm_models_refuse_ds1_they_advertise() {
        let p = Personality::huawei_e173();
        assert_eq!(
            p.cnmi_refusal(&Cnmi::new(2, 1, 0, 1, 0)),
            Some(Final::Cms(303))
        );
        assert_eq!(p.cnmi_refusal(&Cnmi::new(2, 1, 0, 2, 0)), None);
    }
}
