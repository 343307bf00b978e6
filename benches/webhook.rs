//! Verify + parse, from raw bytes and the signature header to typed events:
//! a 1-event text-message payload and a 100-event mixed payload (text, follow, unfollow,
//! postback, accountLink).
//!
//! `cargo bench --bench webhook` (short by default). The last line gives single-thread
//! figures measured on thread CPU time: `webhook_payloads_per_s=... webhook_events_per_s=...`.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use enishi::line::webhook::{ChannelSecret, EventKind, parse, sign, verify};

const DEST: &str = "Ub1a2c3d4e5f60718293a4b5c6d7e8f90";

fn common(i: usize, kind: &str) -> String {
    format!(
        r#""type":"{kind}","mode":"active","timestamp":{},"source":{{"type":"user","userId":"U4af4980629a1b2c3d4e5f6071829{:04x}"}},"webhookEventId":"01JAB7Z8Q4M3N5P6R7S8T9{:04}","deliveryContext":{{"isRedelivery":false}}"#,
        1_760_000_000_000u64 + i as u64,
        i,
        i
    )
}

fn text(i: usize) -> String {
    format!(
        r#"{{{},"replyToken":"b60d432864f44d079f6d8efe86cf{i:04}","message":{{"type":"text","id":"5329045213186{i:05}","quoteToken":"q3Plxr4AgKd7Z8Q4M3N5P6R7S8T9V0WbNd{i}","markAsReadToken":"30yhdy232{i}","text":"注文番号 {i} の配送状況を教えてください"}}}}"#,
        common(i, "message")
    )
}

fn event(i: usize) -> String {
    match i % 5 {
        0 => text(i),
        1 => format!(
            r#"{{{},"replyToken":"b60d432864f44d079f6d8efe86cf{i:04}","follow":{{"isUnblocked":false}}}}"#,
            common(i, "follow")
        ),
        2 => format!("{{{}}}", common(i, "unfollow")),
        3 => format!(
            r#"{{{},"replyToken":"b60d432864f44d079f6d8efe86cf{i:04}","postback":{{"data":"action=reorder&order={i}","params":{{"datetime":"2026-10-01T10:30"}}}}}}"#,
            common(i, "postback")
        ),
        _ => format!(
            r#"{{{},"replyToken":"b60d432864f44d079f6d8efe86cf{i:04}","link":{{"result":"ok","nonce":"xFgRhGvCmK2nT7qLpZ0wVb3sYdJ{i:05}"}}}}"#,
            common(i, "accountLink")
        ),
    }
}

fn payload(n: usize) -> Vec<u8> {
    let events: Vec<String> = (0..n).map(|i| if n == 1 { text(i) } else { event(i) }).collect();
    format!(r#"{{"destination":"{DEST}","events":[{}]}}"#, events.join(",")).into_bytes()
}

/// The unit of work: bytes and header in, typed events out.
fn verify_and_parse(secret: &ChannelSecret, header: &str, body: &[u8]) -> usize {
    verify(secret, Some(header), body).expect("valid signature");
    let payload = parse(body).expect("valid payload");
    debug_assert!(payload.events.iter().all(|e| !matches!(e.kind, EventKind::Malformed { .. })));
    black_box(payload).events.len()
}

fn cases() -> Vec<(&'static str, usize, Vec<u8>)> {
    vec![("text_1_event", 1, payload(1)), ("mixed_100_events", 100, payload(100))]
}

fn bench(c: &mut Criterion) {
    let secret = ChannelSecret::new("a1b2c3d4e5f60718293a4b5c6d7e8f90");
    let mut group = c.benchmark_group("webhook_verify_parse");
    for (name, n, body) in cases() {
        let header = sign(&secret, &body);
        assert_eq!(verify_and_parse(&secret, &header, &body), n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(name, |b| {
            b.iter(|| verify_and_parse(&secret, &header, black_box(&body)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}

/// Payloads per second of one thread, on its CPU time (robust on a shared machine).
fn per_second(secret: &ChannelSecret, body: &[u8], budget: Duration) -> f64 {
    let header = sign(secret, body);
    let start = cpu_time::ThreadTime::now();
    let mut runs = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            verify_and_parse(secret, &header, black_box(body));
        }
        runs += 64;
    }
    runs as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let secret = ChannelSecret::new("a1b2c3d4e5f60718293a4b5c6d7e8f90");
    let budget = Duration::from_secs(2);
    let (single, batch) = (payload(1), payload(100));
    let single_rate = per_second(&secret, &single, budget);
    let batch_rate = per_second(&secret, &batch, budget);
    println!(
        "single-event payload: {} bytes, {single_rate:.0} payloads/s; 100-event payload: {} bytes, {:.0} payloads/s = {:.0} events/s (one thread, CPU time)",
        single.len(),
        batch.len(),
        batch_rate,
        batch_rate * 100.0
    );
    if std::env::var_os("ENISHI_BENCH_BREAKDOWN").is_some() {
        for (name, body) in [("single", &single), ("batch", &batch)] {
            let header = sign(&secret, body);
            let rate = |f: &dyn Fn()| {
                let start = cpu_time::ThreadTime::now();
                let mut runs = 0u64;
                while start.elapsed() < budget {
                    for _ in 0..64 {
                        f();
                    }
                    runs += 64;
                }
                runs as f64 / start.elapsed().as_secs_f64()
            };
            let v = rate(&|| verify(&secret, Some(&header), black_box(body)).unwrap());
            let p = rate(&|| {
                black_box(parse(black_box(body)).unwrap());
            });
            let j = rate(&|| {
                black_box(serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap());
            });
            println!("{name}: verify {v:.0}/s, parse {p:.0}/s, serde_json::Value {j:.0}/s");
        }
    }
    println!(
        "webhook_payloads_per_s={single_rate:.0} webhook_events_per_s={:.0}",
        batch_rate * 100.0
    );
}
