//! Codec throughput: PDUs decoded and encoded per second, printed as figures.
//!
//! Run with `cargo bench -p conductor-sms`. Inputs are the independent decode fixtures (a mix
//! of GSM 7-bit, UCS-2, 8-bit, concatenated, national-language and status-report PDUs) and
//! texts of one and several parts. Each figure is the best of several rounds, since the
//! machines are shared and noisy.

use conductor_sms::{SubmitOptions, decode_pdu_hex, encode_submit};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Times `f` over `iterations` calls, `rounds` times, and returns the best ns per call.
fn best_ns_per_call(rounds: usize, iterations: usize, mut f: impl FnMut()) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        best = best.min(start.elapsed());
    }
    best.as_nanos() as f64 / iterations as f64
}

fn report(name: &str, ns: f64, unit: &str) {
    println!(
        "{name:<44} {:>10.2} µs/{unit}  {:>12.0} {unit}s/s",
        ns / 1000.0,
        1e9 / ns
    );
}

fn main() {
    let fixtures = include_str!("../tests/fixtures/decode.jsonl");
    let pdus: Vec<String> = fixtures
        .lines()
        .filter_map(|line| {
            let start = line.find("\"hex\": \"").map(|i| i + 8)?;
            let end = line[start..].find('"')? + start;
            Some(line[start..end].to_owned())
        })
        .collect();
    assert!(!pdus.is_empty(), "fixtures hold PDUs");
    for pdu in &pdus {
        assert!(decode_pdu_hex(pdu).is_ok(), "fixture {pdu} decodes");
    }

    println!(
        "conductor-sms codec benchmark ({} fixture PDUs)",
        pdus.len()
    );
    let ns = best_ns_per_call(5, 2000, || {
        for pdu in &pdus {
            black_box(decode_pdu_hex(black_box(pdu)).ok());
        }
    }) / pdus.len() as f64;
    report("decode (fixture mix, text included)", ns, "PDU");

    let hello = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37";
    let ns = best_ns_per_call(5, 100_000, || {
        black_box(decode_pdu_hex(black_box(hello)).ok());
    });
    report("decode (short GSM 7-bit DELIVER)", ns, "PDU");

    let options = SubmitOptions::default();
    let cases = [
        (
            "encode (21 chars GSM 7-bit)",
            "Meeting at 10, room 4".to_owned(),
        ),
        (
            "encode (16 chars UCS-2 with emoji)",
            "Grüße aus Köln 😀👍".to_owned(),
        ),
        (
            "encode (800 septets GSM 7-bit with €)",
            "x€".repeat(200) + &"y".repeat(200),
        ),
        (
            "encode (300 chars UCS-2, 100 emoji)",
            "Ж😀".repeat(100) + &"я".repeat(100),
        ),
    ];
    for (name, text) in &cases {
        let parts = encode_submit("+46708251358", text, &options)
            .map(|m| m.parts.len())
            .unwrap_or(0);
        assert!(parts > 0, "{name} encodes");
        let ns = best_ns_per_call(5, 20_000, || {
            black_box(encode_submit("+46708251358", black_box(text), &options).ok());
        });
        report(name, ns, "message");
        report(
            &format!("  = per PDU ({parts} parts)"),
            ns / parts as f64,
            "PDU",
        );
    }
}
