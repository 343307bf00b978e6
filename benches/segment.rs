//! Criterion benchmarks of the segment engine on a small generated shop (100,000 customers,
//! 1,000,000 orders). The full-size figures come from `examples/segment_bench.rs`.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use enishi::CustomerId;
use enishi::segment::{Context, CustomerColumns, Engine, OrderColumns, SegmentDefinition};

const Q3: &str = r#"line linked and birthday month = 6 and orders sum >= 50000
    and last_order age > 30d and bought {product = "1"} and never bought {product = "2"}"#;
const NOW: i64 = 1_751_295_600;

fn engine(n: usize, m: usize) -> Engine {
    let mut x: u64 = 42;
    let mut next = move |k: u64| {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((u128::from(z ^ (z >> 31)) * u128::from(k)) >> 64) as u64
    };
    let mut c = CustomerColumns::default();
    for i in 0..n {
        c.ids.push(CustomerId::new(i.to_string()).unwrap());
        c.line_linked.push(next(100) < 70);
        c.birth_date.push(NaiveDate::from_ymd_opt(1990, 1 + next(12) as u32, 1));
    }
    let mut o = OrderColumns {
        product_names: (0..10_000).map(|p| p.to_string()).collect(),
        ..Default::default()
    };
    for _ in 0..m {
        o.customer.push(next(n as u64) as u32);
        o.placed_at.push(NOW - 730 * 86_400 + next(730 * 86_400) as i64);
        o.amount.push(300 + next(19_701) as i64);
        // Roughly Zipf: low product IDs are popular.
        o.product.push((next(10_000) * next(10_000) / 10_000) as u32);
    }
    let mut e = Engine::new(Context::new(DateTime::from_timestamp(NOW, 0).unwrap()));
    e.load_columns(c, o).unwrap();
    e.register("q3", SegmentDefinition::parse(Q3).unwrap()).unwrap();
    e
}

fn bench(c: &mut Criterion) {
    let mut e = engine(100_000, 1_000_000);
    let q3 = SegmentDefinition::parse(Q3).unwrap();
    let now = e.now();
    let mut g = c.benchmark_group("segment");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    g.bench_function("parse_q3", |b| b.iter(|| SegmentDefinition::parse(black_box(Q3)).unwrap()));
    g.bench_function("q3_raw_100k", |b| b.iter(|| e.evaluate_as_of(&q3, now).unwrap().len()));
    g.bench_function("q3_state_100k", |b| b.iter(|| e.evaluate_from_state("q3").unwrap().len()));
    g.bench_function("q3_recombine_100k", |b| b.iter(|| e.recombine("q3").unwrap()));
    g.bench_function("advance_day_100k", |b| {
        b.iter_batched(
            || e.clone(),
            |mut e| {
                e.advance_to(now + TimeDelta::days(1)).unwrap();
                e // dropped outside the timing
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
