//! Webhook verify + parse: enishi against `line-bot-sdk-rust` 3.0.0 in one process, on the same
//! payloads as `benches/webhook.rs` (a 1-event text message and 100 mixed events), in
//! interleaved rounds measured on the thread's CPU time.
//!
//! Each side does the whole unit of work: the raw body and the `x-line-signature` header in,
//! typed events out (the SDK: `validate_signature` on the body as `&str`, which it needs, then
//! `serde_json::from_str::<CallbackRequest>`; enishi: `verify` then `parse` on the bytes).
//!
//! The last line: `p1_ratio=.. p100_ratio=.. p1_enishi_per_s=.. p1_sdk_per_s=..
//! p100_enishi_per_s=.. p100_sdk_per_s=..` (payloads per second, medians over the rounds; a ratio
//! is enishi's rate over the SDK's).

use std::hint::black_box;
use std::time::Duration;

use enishi::line::webhook::{ChannelSecret, EventKind, parse, sign, verify};
use line_bot_sdk_rust::line_webhook::models::{CallbackRequest, Event};
use line_bot_sdk_rust::parser::signature::validate_signature;

const DEST: &str = "Ub1a2c3d4e5f60718293a4b5c6d7e8f90";
const SECRET: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

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

fn enishi_side(secret: &ChannelSecret, header: &str, body: &[u8]) -> usize {
    verify(secret, Some(header), body).expect("valid signature");
    let payload = parse(body).expect("valid payload");
    black_box(payload).events.len()
}

fn sdk_side(secret: &str, header: &str, body: &[u8]) -> usize {
    let body = std::str::from_utf8(body).expect("UTF-8 body");
    assert!(validate_signature(secret, header, body), "valid signature");
    let request: CallbackRequest = serde_json::from_str(body).expect("valid payload");
    black_box(request).events.len()
}

/// Runs per second of `f` on this thread's CPU time, for about `budget`.
fn rate(budget: Duration, f: &dyn Fn() -> usize) -> f64 {
    let start = cpu_time::ThreadTime::now();
    let mut runs = 0u64;
    while start.elapsed() < budget {
        for _ in 0..32 {
            black_box(f());
        }
        runs += 32;
    }
    runs as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Webhook verify + parse against line-bot-sdk-rust 3.0.0.
#[derive(Debug, clap::Parser)]
#[command(name = "webhook_compare", version)]
struct Args {
    /// Interleaved rounds (each side runs once per round, the first side alternating).
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// CPU time per side and round, in milliseconds.
    #[arg(long, default_value_t = 200)]
    round_ms: u64,
    /// Only run enishi's side this many times on the 100-event payload, then exit (for
    /// `valgrind --tool=callgrind`, whose instruction counts are repeatable on a busy machine).
    #[arg(long, value_name = "N")]
    profile: Option<u64>,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    let secret = ChannelSecret::new(SECRET);
    let budget = Duration::from_millis(args.round_ms);
    if let Some(n) = args.profile {
        let body = payload(100);
        let header = sign(&secret, &body);
        for _ in 0..n {
            black_box(enishi_side(&secret, &header, black_box(&body)));
        }
        return;
    }
    let mut line = Vec::new();
    let mut ratios = Vec::new();
    for (name, n) in [("p1", 1usize), ("p100", 100)] {
        let body = payload(n);
        let header = sign(&secret, &body);
        // Both sides read every event, and enishi recognises every one of them.
        assert_eq!(enishi_side(&secret, &header, &body), n);
        assert_eq!(sdk_side(SECRET, &header, &body), n);
        let parsed = parse(&body).expect("valid payload");
        assert!(parsed.events.iter().all(|e| !matches!(e.kind, EventKind::Malformed { .. })));
        let request: CallbackRequest = serde_json::from_str(std::str::from_utf8(&body).unwrap())
            .expect("the SDK parses the payload");
        assert!(request.events.iter().all(|e| !matches!(e, Event::UnknownEvent)));

        let ours = || enishi_side(&secret, &header, &body);
        let theirs = || sdk_side(SECRET, &header, &body);
        let (mut e, mut s, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..args.rounds.max(1) {
            let (a, b) = if round % 2 == 0 {
                let a = rate(budget, &ours);
                (a, rate(budget, &theirs))
            } else {
                let b = rate(budget, &theirs);
                (rate(budget, &ours), b)
            };
            e.push(a);
            s.push(b);
            r.push(a / b);
        }
        let (e, s, ratio) = (median(e), median(s), median(r));
        println!(
            "{name}: {} bytes, {n} events: enishi {e:.0}/s, line-bot-sdk-rust {s:.0}/s, ratio {ratio:.2} (median of {} interleaved rounds, thread CPU time)",
            body.len(),
            args.rounds.max(1)
        );
        ratios.push(format!("{name}_ratio={ratio:.2}"));
        line.push(format!("{name}_enishi_per_s={e:.0} {name}_sdk_per_s={s:.0}"));
    }
    println!("{} {}", ratios.join(" "), line.join(" "));
}
