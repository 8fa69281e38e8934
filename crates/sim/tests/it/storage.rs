//! Message storage: CPMS, CMGL, CMGR, CMGD, CMGW, index bases.

use conductor_sim::personality::Personality;

use crate::support::{Bench, generic, lines};

/// Three messages from outside, then a quiet PDU-mode setup.
fn with_three_messages(personality: Personality) -> Bench {
    let mut b = Bench::new(personality);
    b.quiet_pdu_setup();
    b.at("AT+CNMI=0,0,0,0,0\r");
    for text in ["one", "two", "three"] {
        b.inject(0, "+33612345678", text);
    }
    b
}

#[test]
fn cpms_reports_memories_used_and_total() {
    let mut b = with_three_messages(generic());
    assert_eq!(
        b.at("AT+CPMS?\r"),
        "\r\n+CPMS: \"SM\",3,30,\"SM\",3,30,\"SM\",3,30\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.at("AT+CPMS=?\r"),
        "\r\n+CPMS: (\"SM\",\"ME\",\"SR\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.at("AT+CPMS=\"ME\",\"ME\",\"ME\"\r"),
        "\r\n+CPMS: 0,100,0,100,0,100\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.at("AT+CPMS=\"SM\"\r"),
        "\r\n+CPMS: 3,30,0,100,0,100\r\n\r\nOK\r\n"
    );
}

#[test]
fn cpms_refuses_a_memory_the_model_does_not_accept() {
    let mut b = with_three_messages(generic());
    assert_eq!(b.at("AT+CPMS=\"XX\"\r"), "\r\n+CMS ERROR: 302\r\n");
    assert_eq!(b.at("AT+CPMS=\"SM\",\"SR\"\r"), "\r\n+CMS ERROR: 302\r\n");
    let mut sim800 = Bench::new(Personality::simcom_sim800());
    sim800.quiet_pdu_setup();
    assert_eq!(sim800.at("AT+CPMS=\"ME\",\"ME\",\"ME\"\r"), "\r\nERROR\r\n");
}

#[test]
fn cmgl_lists_pdus_with_empty_alpha_and_tpdu_length() {
    let mut b = with_three_messages(generic());
    let out = b.at("AT+CMGL=4\r");
    let l = lines(&out);
    assert_eq!(l.len(), 7, "{out:?}");
    assert!(l[0].starts_with("+CMGL: 1,0,,"), "{out:?}");
    assert!(l[2].starts_with("+CMGL: 2,0,,"), "{out:?}");
    assert!(l[4].starts_with("+CMGL: 3,0,,"), "{out:?}");
    assert_eq!(l[6], "OK");
    // The blank line between the last PDU and OK, as every real modem writes it.
    assert!(out.ends_with("\r\n\r\nOK\r\n"));
    // <length> is the TPDU without the SMSC part.
    let length: usize = l[0]
        .rsplit(',')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("length");
    let pdu = conductor_sms::decode_hex(l[1]).expect("hex");
    assert_eq!(pdu.len() - 1 - usize::from(pdu[0]), length);
    let decoded = conductor_sms::decode_pdu_hex(l[1]).expect("decodes");
    assert_eq!(decoded.text().as_deref(), Some("one"));
    assert_eq!(decoded.party().to_string(), "+33612345678");
}

#[test]
fn listing_unread_messages_marks_them_read() {
    let mut b = with_three_messages(generic());
    assert_eq!(lines(&b.at("AT+CMGL=0\r")).len(), 7);
    assert_eq!(b.at("AT+CMGL=0\r"), "\r\nOK\r\n");
    assert_eq!(lines(&b.at("AT+CMGL=1\r")).len(), 7);
    assert_eq!(
        lines(&b.at("AT+CMGL\r")).len(),
        1,
        "no parameter means REC UNREAD"
    );
}

#[test]
fn cmgr_reads_one_message_and_marks_it_read() {
    let mut b = with_three_messages(generic());
    let out = b.at("AT+CMGR=2\r");
    let l = lines(&out);
    assert!(l[0].starts_with("+CMGR: 0,,"), "{out:?}");
    assert_eq!(
        conductor_sms::decode_pdu_hex(l[1])
            .ok()
            .and_then(|p| p.text())
            .as_deref(),
        Some("two")
    );
    assert!(b.at("AT+CMGR=2\r").starts_with("\r\n+CMGR: 1,,"));
    let unread = b.at("AT+CMGL=0\r");
    assert!(unread.contains("+CMGL: 1,0") && unread.contains("+CMGL: 3,0"));
    assert!(!unread.contains("+CMGL: 2,"));
}

#[test]
fn reading_an_empty_slot_is_an_error_by_the_book_and_a_bare_ok_on_huawei() {
    let mut b = with_three_messages(generic());
    assert_eq!(b.at("AT+CMGR=4\r"), "\r\n+CMS ERROR: 321\r\n");
    assert_eq!(b.at("AT+CMGR=31\r"), "\r\n+CMS ERROR: 321\r\n");
    let mut huawei = Bench::new(quiet(Personality::huawei_e173()));
    huawei.quiet_pdu_setup();
    assert_eq!(huawei.at("AT+CMGR=5\r"), "\r\nOK\r\n");
    assert_eq!(huawei.at("AT+CMGR=30\r"), "\r\n+CMS ERROR: 321\r\n");
}

#[test]
fn cmgd_deletes_one_index_and_an_empty_slot_is_not_an_error() {
    let mut b = with_three_messages(generic());
    assert_eq!(b.at("AT+CMGD=2\r"), "\r\nOK\r\n");
    assert_eq!(b.at("AT+CMGD=2\r"), "\r\nOK\r\n");
    assert_eq!(b.at("AT+CMGD=0\r"), "\r\n+CMS ERROR: 321\r\n");
    assert_eq!(b.at("AT+CMGD=?\r"), "\r\n+CMGD: (1,3),(0-4)\r\n\r\nOK\r\n");
}

#[test]
fn cmgd_delflags_follow_ts_27005() {
    // Slots: 1 read, 2 unread, 3 read, 4 STO UNSENT, 5 STO SENT.
    let setup = || {
        let mut b = with_three_messages(generic());
        b.at("AT+CMGR=1\r");
        b.at("AT+CMGR=3\r");
        let (len, hex) = crate::support::submit_to("+46708251358", "hi", false);
        assert!(b.at(&format!("AT+CMGW={len}\r")).ends_with("> "));
        assert_eq!(b.at(&format!("{hex}\x1a")), "\r\n+CMGW: 4\r\n\r\nOK\r\n");
        b.at(&format!("AT+CMGW={len},3\r"));
        assert_eq!(b.at(&format!("{hex}\x1a")), "\r\n+CMGW: 5\r\n\r\nOK\r\n");
        b
    };
    let remaining = |b: &mut Bench| {
        let out = b.at("AT+CMGD=?\r");
        out.trim().lines().next().unwrap_or("").to_owned()
    };
    let cases = [
        (1, "+CMGD: (2,4,5),(0-4)"),
        (2, "+CMGD: (2,4),(0-4)"),
        (3, "+CMGD: (2),(0-4)"),
        (4, "+CMGD: (),(0-4)"),
    ];
    for (flag, expected) in cases {
        let mut b = setup();
        assert_eq!(b.at(&format!("AT+CMGD=1,{flag}\r")), "\r\nOK\r\n");
        assert_eq!(remaining(&mut b), expected, "delflag {flag}");
    }
    let mut b = setup();
    assert_eq!(b.at("AT+CMGD=1,5\r"), "\r\n+CMS ERROR: 304\r\n");
}

#[test]
fn the_index_base_is_zero_on_huawei_quectel_and_sim7600_and_one_on_sim800() {
    for (personality, first) in [
        (Personality::generic(), 1),
        (quiet(Personality::huawei_e173()), 0),
        (quiet(Personality::huawei_e3372()), 0),
        (Personality::simcom_sim800(), 1),
        (Personality::simcom_sim7600(), 0),
        (quiet(Personality::quectel_ec25()), 0),
    ] {
        let name = personality.name;
        let mut b = Bench::new(personality);
        b.quiet_pdu_setup();
        b.at("AT+CPMS=\"SM\",\"SM\",\"SM\";+CNMI=2,1,0,0,0\r");
        b.inject(0, "+33612345678", "x");
        assert_eq!(
            b.output(),
            format!("\r\n+CMTI: \"SM\",{first}\r\n"),
            "{name}"
        );
        let listing = b.at("AT+CMGL=4\r");
        assert!(
            listing.starts_with(&format!("\r\n+CMGL: {first},0,")),
            "{name}: {listing:?}"
        );
    }
}

#[test]
fn simcom_quotes_the_empty_alpha_and_huawei_leaves_it_bare() {
    let mut sim800 = Bench::new(Personality::simcom_sim800());
    sim800.quiet_pdu_setup();
    sim800.at("AT+CPMS=\"SM\",\"SM\",\"SM\"\r");
    sim800.inject(0, "+33612345678", "x");
    assert_eq!(sim800.output(), "\r\n+CMTI: \"SM\",1\r\n");
    assert!(
        sim800
            .at("AT+CMGL=4\r")
            .starts_with("\r\n+CMGL: 1,0,\"\",20\r\n")
    );
    let mut huawei = Bench::new(quiet(Personality::huawei_e173()));
    huawei.quiet_pdu_setup();
    huawei.inject(0, "+33612345678", "x");
    assert!(
        huawei
            .at("AT+CMGL=4\r")
            .starts_with("\r\n+CMGL: 0,0,,20\r\n")
    );
}

#[test]
fn text_mode_lists_sender_time_stamp_and_text() {
    let mut b = Bench::new(generic());
    b.quiet_pdu_setup();
    b.inject(0, "+33612345678", "Hello there");
    b.at("AT+CMGF=1\r");
    assert_eq!(
        b.at("AT+CMGL=\"ALL\"\r"),
        "\r\n+CMGL: 1,\"REC UNREAD\",\"+33612345678\",,\"21/03/04,12:34:56+00\"\r\nHello there\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.at("AT+CMGR=1\r"),
        "\r\n+CMGR: \"REC READ\",\"+33612345678\",,\"21/03/04,12:34:56+00\"\r\nHello there\r\n\r\nOK\r\n"
    );
    assert_eq!(b.at("AT+CMGL=4\r"), "\r\n+CMS ERROR: 305\r\n");
}

#[test]
fn a_combined_memory_announces_the_storage_the_message_went_to() {
    let mut options = crate::support::options(Personality::simcom_sim800(), crate::support::OWN);
    options.sim_capacity = 1;
    let mut b = Bench::with(vec![options]);
    b.quiet_pdu_setup();
    // SIM800's default memories are "ME","SM","MT": MT is SM then ME.
    assert_eq!(
        b.at("AT+CPMS?\r"),
        "\r\n+CPMS: \"ME\",0,50,\"SM\",0,1,\"MT\",0,51\r\n\r\nOK\r\n"
    );
    b.inject(0, "+33612345678", "first");
    b.inject(0, "+33612345678", "second");
    assert_eq!(b.output(), "\r\n+CMTI: \"SM\",1\r\n\r\n+CMTI: \"ME\",1\r\n");
}

/// A personality without noise, for exact bytes.
pub fn quiet(mut p: Personality) -> Personality {
    p.noise_interval = None;
    p.noise_in_response = 0.0;
    p
}
