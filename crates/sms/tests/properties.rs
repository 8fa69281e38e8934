//! Property tests for the codec (DESIGN.md testing ladder, step 1).
//!
//! Two families:
//! - never panic: arbitrary octets, arbitrary text as hex, and real PDUs with octets
//!   overwritten, cut short or extended all give a value or a typed error (promise 5). These
//!   run 100 000+ cases together, fast enough for the debug build;
//! - round trips: random text (ASCII, GSM extension characters, accents in and out of the
//!   default alphabet, emoji, CJK) survives split → encode → decode → reassemble unchanged
//!   with every part within 140 octets of user data; random SMS-DELIVER and
//!   SMS-STATUS-REPORT values survive encode → decode; whatever decodes re-encodes to a PDU
//!   that decodes to the same value.

use std::time::Duration;

use conductor_sms::{
    Address, Concat, DataCodingScheme, Deliver, Direction, Encoding, Fragment, MessageClass,
    NumberingPlan, Outcome, Payload, Reassembler, ReferenceWidth, Status, StatusReport,
    SubmitOptions, Timestamp, Tpdu, TypeOfNumber, UserData, UserDataHeader, decode_hex, decode_pdu,
    decode_pdu_hex, decode_pdu_with, encode_pdu, encode_submit, join_parts,
};
use proptest::prelude::*;

/// Real PDUs of every kind (from tests/fixtures/decode.jsonl) to mutate.
const SEEDS: &[&str] = &[
    "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37",
    "07914140279510F6440A8111110301003BF56080207130138A8C0B05040B8423F000032A02010106276170706C69636174696F6E2F766E642E7761702E6D6D732D6D65737361676500AF848D0185B4848C8298524E453955304A6D713551414142666C414141414D7741414236514141414141008D908918802B31353132323937373638332F545950453D504C4D4E008A808E022B918805810306977F83687474703A2F2F36",
    "07919471016700000414D049B7F90D1286DD6B500C0000123040214365400EC2303BEC1E9775A098CC558301",
    "0791947101670000040D91945111325476F80000027051815400491153BA0BA47CA3DDA739A8059BE96630",
    "0791947101670000440D91945111325476F800081230402143654029060804012C020220260061006E0064002000740068006500200065006E00640020D83DDE00D83CDF89",
    "0791947101670000440D91945111325476F800001230402143654029080003110201240101001A966FC661504C07DA9CFD9BF926CDDF8C419BA37733DD24B909",
    "07911326040000F0310D0B911326880736F40000A90FF7FBDD454E87CDE1B0DB357EB701",
    "0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9ED301",
    "079119890400202306400C91197909913764511090718384225110907183252200",
    "00062A0D91945111325476F8322113329595324210100000103260",
    "00062A0D91945111325476F83221133295953242101000001032600703000401020304",
    "0071000C914477000910320010ADA0050003FE0201866F37B93EA6BFE5A079D94D9E83A6CD29888E96BFEB6734E8386DBE98D422A8FD2697DB7350D84D06ADCB65F81C54B697E57950BB3C9F87CF65D03C6C2EBB40C3B79B5C1FD3DF72D0BCEC26CF41D3E6144447CBDFF5331A749C365F4C6A11D47E93CBED3928EC2683D6E5327C0E2ADBCBF23CA85D9ECFC3E732681E36975DA0E1DB4DAE8FE9",
];

fn seeds() -> Vec<Vec<u8>> {
    SEEDS.iter().filter_map(|h| decode_hex(h).ok()).collect()
}

/// Every decoder entry point on the same octets; none may panic.
fn decode_every_way(bytes: &[u8]) {
    let _ = decode_pdu(bytes);
    let _ = decode_pdu_with(bytes, Direction::ScToMs);
    let _ = decode_pdu_with(bytes, Direction::MsToSc);
    let _ = Tpdu::decode(bytes, Direction::Stored);
    if let Ok(pdu) = decode_pdu(bytes) {
        let _ = pdu.text();
        let _ = pdu.concat();
        let _ = pdu.encode();
    }
}

/// Whatever decodes, and re-encodes, decodes again to the same value.
fn reencoding_is_stable(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(pdu) = decode_pdu(bytes) else {
        return Ok(());
    };
    // Values the encoder refuses (user data over 140 octets, over-long addresses) are skipped.
    let Ok(encoded) = pdu.encode() else {
        return Ok(());
    };
    let again = decode_pdu(&encoded.bytes);
    prop_assert_eq!(
        again.as_ref(),
        Ok(&pdu),
        "re-encoded as {}",
        encoded.to_hex()
    );
    Ok(())
}

/// Octets overwritten, then the PDU cut or extended.
fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    let count = seeds.len();
    (
        0..count,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        prop_oneof![
            2 => Just(None),
            1 => any::<prop::sample::Index>().prop_map(Some),
        ],
        prop::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(move |(which, edits, cut, tail)| {
            let mut bytes = seeds.get(which).cloned().unwrap_or_default();
            if !bytes.is_empty() {
                for (at, value) in edits {
                    let i = at.index(bytes.len());
                    if let Some(b) = bytes.get_mut(i) {
                        *b = value;
                    }
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes.extend(tail);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoding_arbitrary_octets_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..180)) {
        decode_every_way(&bytes);
    }

    #[test]
    fn decoding_mutated_real_pdus_never_panics(bytes in mutated_seed()) {
        decode_every_way(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoding_arbitrary_text_as_hex_never_panics(
        text in prop_oneof![
            "[0-9A-Fa-f \\r\\n]{0,120}",
            "[0-9A-F]{0,60}[^0-9A-F]?[0-9A-F]{0,60}",
            any::<String>(),
        ]
    ) {
        let _ = decode_pdu_hex(&text);
    }

    #[test]
    fn whatever_decodes_reencodes_to_the_same_value(
        bytes in prop_oneof![mutated_seed(), prop::collection::vec(any::<u8>(), 0..60)]
    ) {
        reencoding_is_stable(&bytes)?;
    }
}

/// Characters from every class the splitter treats differently.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::char::range('a', 'z'),
        2 => prop::sample::select(vec![' ', '.', ',', '0', '9', 'A', 'Z', '\n', '@', '$']),
        2 => prop::sample::select(vec!['€', '[', ']', '{', '}', '\\', '^', '~', '|']),
        1 => prop::sample::select(vec!['é', 'è', 'ü', 'Ä', 'ñ', 'ç', 'ł', 'ő', 'ș', 'â']),
        1 => prop::sample::select(vec!['😀', '👍', '🎉', '🇩', '\u{1D11E}']),
        1 => prop::sample::select(vec!['世', '界', 'こ', '안', 'Ж', 'Ω']),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Mostly GSM 7-bit texts, which stay in the alphabet.
        2 => prop::collection::vec(
            prop_oneof![8 => prop::char::range('a', 'z'), 1 => Just('€'), 1 => Just(' ')],
            0..480,
        ),
        3 => prop::collection::vec(text_char(), 0..400),
    ]
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_text_round_trips_through_split_encode_decode_and_reassembly(
        text in text(),
        reference in any::<u16>(),
        wide in any::<bool>(),
        order in any::<u64>(),
    ) {
        let options = SubmitOptions {
            concat_reference: reference,
            reference_width: if wide { ReferenceWidth::Bits16 } else { ReferenceWidth::Bits8 },
            ..SubmitOptions::default()
        };
        let message = encode_submit("+4915112345678", &text, &options);
        prop_assert!(message.is_ok(), "{:?}", message);
        let Ok(message) = message else { return Ok(()) };

        let mut fragments = Vec::new();
        for part in &message.parts {
            let decoded = decode_pdu(&part.pdu.bytes);
            prop_assert!(decoded.is_ok(), "{:?}", decoded);
            let Ok(decoded) = decoded else { return Ok(()) };
            let Tpdu::Submit(submit) = &decoded.tpdu else {
                return Err(TestCaseError::fail("not a submit"));
            };
            prop_assert!(submit.user_data.octet_len() <= 140);
            prop_assert_eq!(part.pdu.tpdu_length, part.pdu.bytes.len() - 1);
            prop_assert_eq!(decoded.text(), Some(part.text.clone()));
            prop_assert_eq!(decoded.concat(), part.concat);
            fragments.push(Fragment {
                sender: submit.destination.to_string(),
                concat: decoded.concat(),
                text: decoded.text().unwrap_or_default(),
                meta: (),
            });
        }
        // Deliver the parts in a scrambled order.
        let n = fragments.len();
        let mut shuffled = Vec::with_capacity(n);
        let mut seed = order;
        while !fragments.is_empty() {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let i = usize::try_from(seed >> 33).unwrap_or(0) % fragments.len();
            shuffled.push(fragments.swap_remove(i));
        }
        let joined = join_parts(
            u8::try_from(n).unwrap_or(u8::MAX),
            shuffled.iter().enumerate().map(|(i, f)| {
                (f.concat.map_or(u8::try_from(i + 1).unwrap_or(0), |c| c.seq), f.text.as_str())
            }),
        );
        prop_assert_eq!(&joined.text, &text);

        let mut reassembler = Reassembler::new();
        let mut whole = None;
        for (i, f) in shuffled.into_iter().enumerate() {
            match reassembler.insert(Duration::from_secs(i as u64), f) {
                Outcome::Single(m) | Outcome::Complete(m) => whole = Some(m.text),
                Outcome::Pending { .. } => {}
                Outcome::Duplicate { .. } => return Err(TestCaseError::fail("duplicate")),
            }
        }
        prop_assert_eq!(whole.as_deref(), Some(text.as_str()));
        prop_assert_eq!(reassembler.pending_groups(), 0);
    }
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    // 1970..2068, any real-world zone (and then some).
    (0i64..3_100_000_000, -56i8..=56).prop_filter_map("representable", |(secs, q)| {
        Timestamp::from_unix_seconds(secs, q).ok()
    })
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        "[0-9]{1,20}".prop_map(Address::international),
        "[0-9*#abc]{0,20}".prop_map(|d| Address {
            type_of_number: TypeOfNumber::National,
            numbering_plan: NumberingPlan::NATIONAL,
            value: d,
        }),
        "[A-Za-z0-9 ]{1,11}".prop_map(Address::alphanumeric),
    ]
}

fn user_data() -> impl Strategy<Value = (DataCodingScheme, UserData)> {
    let header = prop::option::of((any::<u16>(), any::<bool>(), 1u8..=5, 1u8..=5).prop_map(
        |(reference, wide, total, seq)| {
            UserDataHeader::with_concat(Concat {
                reference: if wide { reference } else { reference & 0xFF },
                width: if wide {
                    ReferenceWidth::Bits16
                } else {
                    ReferenceWidth::Bits8
                },
                total,
                seq,
            })
        },
    ));
    let class = prop::option::of(prop::sample::select(vec![
        MessageClass::Class0,
        MessageClass::Class1,
        MessageClass::Class2,
        MessageClass::Class3,
    ]));
    (
        prop_oneof![
            "[a-zA-Z0-9 @£$€\\[\\]{}]{0,120}".prop_map(|t| (Encoding::Gsm7, t, Vec::new())),
            "[a-z世界😀]{0,60}".prop_map(|t| (Encoding::Ucs2, t, Vec::new())),
            prop::collection::vec(any::<u8>(), 0..120).prop_map(|b| (
                Encoding::EightBit,
                String::new(),
                b
            )),
        ],
        header,
        class,
    )
        .prop_filter_map("fits", |((encoding, text, bytes), header, class)| {
            let ud = match encoding {
                Encoding::Gsm7 => UserData::gsm7(&text).ok()?,
                Encoding::Ucs2 => UserData::ucs2(&text),
                Encoding::EightBit => UserData::octets(bytes),
            };
            let ud = match header {
                Some(h) => ud.with_header(h),
                None => ud,
            };
            (ud.octet_len() <= 140).then(|| (DataCodingScheme::new(encoding, class), ud))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_delivers_round_trip_through_encode_and_decode(
        smsc in prop::option::of("[0-9]{1,16}".prop_map(Address::international)),
        originator in address(),
        flags in any::<[bool; 4]>(),
        protocol_id in any::<u8>(),
        (dcs, user_data) in user_data(),
        timestamp in timestamp(),
    ) {
        let [more_messages_waiting, loop_prevention, status_report_indication, reply_path] = flags;
        let deliver = Deliver {
            more_messages_waiting,
            loop_prevention,
            status_report_indication,
            reply_path,
            originator,
            protocol_id,
            dcs,
            timestamp,
            user_data,
        };
        let tpdu = Tpdu::Deliver(deliver);
        let encoded = encode_pdu(smsc.as_ref(), &tpdu);
        prop_assert!(encoded.is_ok(), "{:?}", encoded);
        let Ok(encoded) = encoded else { return Ok(()) };
        let decoded = decode_pdu(&encoded.bytes);
        prop_assert_eq!(decoded.as_ref().map(|p| &p.tpdu), Ok(&tpdu));
        prop_assert_eq!(decoded.map(|p| p.smsc), Ok(smsc));
        prop_assert!(encoded.tpdu_length <= 164);
    }

    #[test]
    fn random_status_reports_round_trip_through_encode_and_decode(
        reference in any::<u8>(),
        recipient in address(),
        scts in timestamp(),
        discharge in timestamp(),
        status in any::<u8>(),
        protocol_id in prop::option::of(any::<u8>()),
        optional in prop::option::of(user_data()),
        dcs_given in any::<bool>(),
        flags in any::<[bool; 3]>(),
    ) {
        let mut report = StatusReport::new(reference, recipient, scts, discharge, Status(status));
        let [more, lp, srq] = flags;
        report.more_messages_waiting = more;
        report.loop_prevention = lp;
        report.result_of_command = srq;
        report.protocol_id = protocol_id;
        match optional {
            Some((dcs, ud)) => {
                // Without TP-DCS the receiver assumes GSM 7-bit, so only 7-bit data may omit it.
                let omit = !dcs_given && matches!(ud.payload, Payload::Septets(_)) && dcs.octet() == 0;
                report.dcs = if omit { None } else { Some(dcs) };
                report.user_data = Some(ud);
            }
            None => report.dcs = dcs_given.then_some(DataCodingScheme::GSM7),
        }
        let tpdu = Tpdu::StatusReport(report);
        let encoded = encode_pdu(None, &tpdu);
        prop_assert!(encoded.is_ok(), "{:?}", encoded);
        let Ok(encoded) = encoded else { return Ok(()) };
        prop_assert_eq!(decode_pdu(&encoded.bytes).map(|p| p.tpdu), Ok(tpdu));
    }

    #[test]
    fn the_reassembler_never_panics_and_never_loses_a_group(
        parts in prop::collection::vec(
            (0u8..3, 0u16..3, any::<bool>(), 0u8..4, 0u8..5, 0u64..100),
            0..40,
        ),
        timeout in 1u64..60,
    ) {
        let mut r = Reassembler::new();
        let mut seen = 0usize;
        let mut out = 0usize;
        for (sender, reference, wide, total, seq, at) in parts {
            seen += 1;
            let fragment = Fragment {
                sender: format!("+{sender}"),
                concat: Some(Concat {
                    reference,
                    width: if wide { ReferenceWidth::Bits16 } else { ReferenceWidth::Bits8 },
                    total,
                    seq,
                }),
                text: format!("{seq}"),
                meta: (),
            };
            match r.insert(Duration::from_secs(at), fragment) {
                Outcome::Single(m) | Outcome::Complete(m) => out += m.parts.len(),
                Outcome::Duplicate { .. } => out += 1,
                Outcome::Pending { .. } => {}
            }
            for group in r.expire(Duration::from_secs(at), Duration::from_secs(timeout)) {
                prop_assert!(!group.missing.is_empty());
                out += group.parts.len();
            }
        }
        for group in r.expire(Duration::MAX, Duration::ZERO) {
            out += group.parts.len();
        }
        prop_assert_eq!(out, seen, "every part comes out exactly once");
        prop_assert_eq!(r.pending_groups(), 0);
    }
}
