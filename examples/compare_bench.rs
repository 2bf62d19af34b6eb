//! Times `check --baseline`'s latency comparison: two latency checks of 10,000 samples each,
//! decoded from their reports' HDR encodings and compared with the Mann-Whitney U test.
//! Prints the median of 50 runs. `bench/compare.sh` builds and runs it.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use shipwatch::outcome::{Details, LatencyDetails, LatencySummary, Outcome};

/// A latency check's outcome with `n` samples spread around `center_us`.
fn outcome(center_us: u64, n: u64) -> Outcome {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = h.record(center_us / 2 + x % center_us);
    }
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(&h, &mut bytes)
        .expect("encode");
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    let none = shipwatch::outcome::ProbeError {
        kind: "setup",
        message: String::new(),
    };
    let mut o = Outcome::could_not_run("api-latency", "latency", "prod", none);
    o.error = None;
    o.details = Details::Latency(Box::new(LatencyDetails {
        latency: LatencySummary {
            requests: n,
            errors: 0,
            reconnects: 0,
            error_rate: 0.0,
            throughput_rps: 0.0,
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            p99_9_ms: q(0.999),
            max_ms: h.max() as f64 / 1000.0,
            mean_ms: h.mean() / 1000.0,
            histogram: Vec::new(),
            hdr_histogram: shipwatch::assert::base64(&bytes),
        },
    }));
    o
}

fn main() {
    let (before, now) = (outcome(40_000, 10_000), outcome(48_000, 10_000));
    let t = shipwatch::compare::Thresholds::default();
    let mut times: Vec<f64> = (0..50)
        .map(|_| {
            let start = std::time::Instant::now();
            let found = shipwatch::compare::regressions(&before, &now, &t);
            assert!(!found.is_empty());
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "compare two latency checks of 10,000 samples: median {:.2} ms, max {:.2} ms (target < 20 ms)",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
