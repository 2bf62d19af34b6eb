//! The history database's figures, printed against their targets (`bench/history.sh`):
//! write throughput, disk growth per day for 1,000 checks at one run a minute, and the time of a
//! check's view (its 30-day uptime, with the 24-hour and 7-day ones, the strip and the failing
//! streak) over 30 days of history.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shipwatch::agent::history::{History, Record};
use shipwatch::config::HistorySpec;
use shipwatch::metrics::Metrics;
use shipwatch::outcome::Status;

const MINUTE: i64 = 60_000;
const DAY: i64 = 1440 * MINUTE;

fn record(check: usize, at_ms: i64, minute: i64) -> Record {
    // One run in fifty fails, as a flaky check would.
    let status = if (minute + check as i64) % 50 == 0 {
        Status::Fail
    } else {
        Status::Pass
    };
    Record {
        at_ms,
        check: format!("check-{check:05}"),
        env: "production".into(),
        status,
        duration_ms: 20.0 + ((minute * 7 + check as i64) % 180) as f64,
        p50: None,
        p95: None,
        p99: None,
        days_left: None,
        score: None,
        grade: None,
        failing: if status == Status::Fail {
            vec!["http.status".into()]
        } else {
            Vec::new()
        },
    }
}

fn open(dir: &std::path::Path) -> (History, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let spec = HistorySpec {
        max_bytes: 64 << 30,
        ..HistorySpec::default()
    };
    (History::open(dir, spec, metrics.clone()), metrics)
}

/// Writes `records` in chunks the queue holds, waiting for each; returns the wall time.
fn write_all(history: &History, records: impl Iterator<Item = Record>) -> (usize, Duration) {
    let started = Instant::now();
    let mut n = 0;
    for r in records {
        history.record_raw(r);
        n += 1;
        if n % 10_000 == 0 {
            history.flush(Duration::from_secs(300));
        }
    }
    history.flush(Duration::from_secs(300));
    (n, started.elapsed())
}

fn main() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let day_start = (now - DAY) / DAY * DAY - DAY;

    // 1,000 checks at one run a minute for one day: throughput and growth.
    let dir = tempfile::tempdir().expect("tempdir");
    let (history, metrics) = open(dir.path());
    let day = (0..1440i64)
        .flat_map(|m| (0..1000).map(move |c| record(c, day_start + m * MINUTE + c as i64, m)));
    let (n, took) = write_all(&history, day);
    let per_s = n as f64 / took.as_secs_f64();
    // Maintenance (roll-ups of the day's 24 hours) runs on the last flush.
    history.flush(Duration::from_secs(300));
    let bytes = metrics.history_bytes.get() as f64;
    println!("history: SQLite (bundled rusqlite), WAL, one writer thread, batches of up to 5,000");
    println!(
        "  write throughput: {n} results in {:.2} s = {:.0} results/s (target ≥ 20,000); {} dropped",
        took.as_secs_f64(),
        per_s,
        metrics.history_dropped.get()
    );
    println!(
        "  disk per day, 1,000 checks at 1/min: {:.1} MiB of runs and hourly roll-ups ({:.1} bytes per run); \
         kept 7 days raw by default: {:.0} MiB",
        bytes / 1048576.0,
        bytes / n as f64,
        bytes * 7.0 / 1048576.0
    );
    history.close(Duration::from_secs(60));

    // One check with 30 days of history at one run a minute: the page's and the API's query.
    let dir = tempfile::tempdir().expect("tempdir");
    let (history, _) = open(dir.path());
    let start = now - 30 * DAY;
    let month = (0..30 * 1440i64).map(|m| record(7, start + m * MINUTE, m));
    write_all(&history, month);
    // Roll-ups go a day of hours per maintenance; 31 passes cover the month, and retention then
    // deletes the raw runs older than 7 days.
    for _ in 0..31 {
        history.flush(Duration::from_secs(60));
    }
    let mut times: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            let view = history.view("check-00007", "production", now);
            let took = t.elapsed();
            assert!(matches!(view, Ok(Some(ref v)) if v.uptime.len() == 3));
            took
        })
        .collect();
    times.sort();
    let view = history
        .view("check-00007", "production", now)
        .ok()
        .flatten();
    let uptime: Vec<String> = view
        .map(|v| {
            v.uptime
                .iter()
                .map(|(w, u)| format!("{w} {:.2}%", u.percent().unwrap_or(0.0)))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "  30-day view of one check (uptime over 24h, 7d and 30d, the 90-result strip, failing streak): \
         median {:.2} ms, p99 {:.2} ms over 200 queries (target < 10 ms); {}",
        times[100].as_secs_f64() * 1000.0,
        times[198].as_secs_f64() * 1000.0,
        uptime.join(", ")
    );
    history.close(Duration::from_secs(60));
}
