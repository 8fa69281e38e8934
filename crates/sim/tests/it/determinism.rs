//! Same seed, same inputs at the same instants: same bytes.

use std::time::Duration;

use conductor_sim::personality::Personality;
use conductor_sim::virtual_modem::{ModemOptions, SendLatency};
use conductor_sim::{Fault, ModemId};

use crate::support::{Bench, HI_SUBMIT};

fn session(seed: u64) -> Vec<u8> {
    let mut p = Personality::huawei_e173();
    p.noise_in_response = 0.3;
    let mut b = Bench::with(vec![ModemOptions {
        personality: p,
        seed,
        send_latency: SendLatency::default(),
        ..ModemOptions::default()
    }]);
    b.net
        .apply_fault(b.now, ModemId(0), &Fault::GarbageRate { rate: 0.2 })
        .expect("fault");
    let mut all = Vec::new();
    let script = [
        "AT\r",
        "AT+CMGF=0;+CNMI=2,1,0,0,0\r",
        "AT+CSQ;+CPMS?\r",
        "AT+CMGS=15\r",
    ];
    for line in script {
        all.extend(b.at(line).into_bytes());
        all.extend(b.advance(Duration::from_millis(700)).into_bytes());
    }
    all.extend(b.at(&format!("{HI_SUBMIT}\x1a")).into_bytes());
    all.extend(b.advance(Duration::from_secs(20)).into_bytes());
    b.inject(0, "+33612345678", "determinism");
    all.extend(b.at("AT+CMGL=4\r").into_bytes());
    all
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let first = session(42);
    assert_eq!(first, session(42));
    assert!(first.len() > 100);
}

#[test]
fn another_seed_gives_other_bytes() {
    assert_ne!(session(42), session(43));
}
