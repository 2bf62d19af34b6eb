//! The agent's own history: every run and every alert, kept in `state_dir/history.db` across
//! restarts, read by the status page and `/api/v1/history` and `/api/v1/incidents`.
//!
//! The scheduler never waits for the disk: runs go into a bounded queue, and one writer thread
//! writes them in batches, rolls complete hours up and prunes what is past retention or over the
//! size bound. A disk that is full or read-only, or a database that cannot be opened, makes the
//! history unavailable (the page says so, `shipwatch_history_up` is 0); checks and alerts go on.

mod store;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::alert::Notification;
use crate::config::HistorySpec;
use crate::metrics::Metrics;
use crate::outcome::Status;
use crate::runner::Outcome;

/// Runs waiting for the writer, at most; more are dropped and counted. The queue's slots are
/// allocated up front, so each holds a pointer: 10,000 of them are a minute of 10,000 checks at
/// one run a minute (the writer takes them four times a second), in under half a MiB.
const QUEUE: usize = 10_000;
/// Runs written per transaction, at most.
const BATCH: usize = 5_000;
/// How often the writer rolls up and prunes.
const MAINTENANCE: Duration = Duration::from_secs(60);
/// How long the writer lets runs gather after the first one before it writes them in one
/// transaction. Senders do not wake a writer that is not waiting, so a busy agent costs the
/// writer a few wake-ups a second instead of one per run.
const GATHER: Duration = Duration::from_millis(250);

/// One run, as kept: when, what, how it went, and the figure that matters for its kind.
#[derive(Debug, Clone)]
pub struct Record {
    pub at_ms: i64,
    pub check: String,
    pub env: String,
    pub status: Status,
    pub duration_ms: f64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub days_left: Option<i64>,
    pub score: Option<i64>,
    pub grade: Option<String>,
    /// The ids of the findings that failed.
    pub failing: Vec<String>,
}

impl Record {
    pub fn of(o: &Outcome, at_ms: i64) -> Record {
        let latency = o.details.latency();
        let headers = o.details.headers();
        Record {
            at_ms,
            check: o.name.clone(),
            env: o.environment.clone(),
            status: o.status,
            duration_ms: crate::units::ms(o.duration),
            p50: latency.map(|l| l.p50_ms),
            p95: latency.map(|l| l.p95_ms),
            p99: latency.map(|l| l.p99_ms),
            days_left: o.details.tls().map(|t| t.days_left),
            score: headers.map(|h| i64::from(h.score)),
            grade: headers.map(|h| h.grade.clone()),
            failing: o
                .findings
                .iter()
                .filter(|f| f.status == Status::Fail)
                .map(|f| f.id.clone())
                .collect(),
        }
    }
}

/// One alert's life: fired, maybe escalated or reminded, maybe resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub fingerprint: String,
    pub check: String,
    pub env: String,
    pub kind: String,
    pub severity: String,
    /// Unix seconds.
    pub fired_at: i64,
    pub resolved_at: Option<i64>,
    pub last_event: String,
    pub last_event_at: i64,
    pub findings: Vec<String>,
}

impl Incident {
    fn of(n: &Notification) -> Incident {
        let resolved = matches!(n.event, crate::alert::Event::Resolved);
        Incident {
            fingerprint: n.fingerprint.clone(),
            check: n.check.clone(),
            env: n.env.clone(),
            kind: n.kind.clone(),
            severity: n.severity.as_str().to_string(),
            fired_at: n.started_at as i64,
            resolved_at: resolved.then_some(n.at as i64),
            last_event: n.event.as_str().to_string(),
            last_event_at: n.at as i64,
            findings: n.problems.iter().map(|p| p.id.clone()).collect(),
        }
    }
}

/// A stored run, as read back.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub at_ms: i64,
    pub status: Status,
    pub duration_ms: f64,
    pub p95: Option<f64>,
    pub days_left: Option<i64>,
    pub score: Option<i64>,
    pub grade: Option<String>,
    pub failing: Vec<String>,
}

/// One hour's roll-up.
#[derive(Debug, Clone)]
pub struct Hour {
    pub hour_s: i64,
    pub runs: i64,
    pub failures: i64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Runs in a window and how many of them were down (failed or errored).
#[derive(Debug, Clone, Copy, Default)]
pub struct Uptime {
    pub runs: i64,
    pub down: i64,
}

impl Uptime {
    /// The share of runs that were up, in percent; `None` without runs.
    pub fn percent(self) -> Option<f64> {
        (self.runs > 0).then(|| (self.runs - self.down) as f64 * 100.0 / self.runs as f64)
    }
}

/// A range of history: runs, or hourly roll-ups.
pub type Range = (Vec<RunRow>, Vec<Hour>);

/// The windows uptime is shown for.
pub const WINDOWS: [(&str, i64); 3] = [("24h", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400)];

/// What the page shows for one check.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The latest runs, newest first (at most 90).
    pub recent: Vec<RunRow>,
    /// Uptime over each of [`WINDOWS`].
    pub uptime: Vec<(&'static str, Uptime)>,
    /// Unix milliseconds of the first failure of the current failing streak.
    pub failing_since: Option<i64>,
}

enum Msg {
    Run(Box<Record>),
    Incident(Box<Incident>),
    Configure(HistorySpec),
    /// Everything queued before it is written, and maintenance has run.
    Flush(std::sync::mpsc::Sender<()>),
}

/// Whether the history works, and why not.
#[derive(Debug, Default)]
struct Health {
    down: AtomicBool,
    why: Mutex<Option<String>>,
}

impl Health {
    fn fail(&self, why: String, metrics: &Metrics) {
        if !self.down.swap(true, Ordering::SeqCst) {
            tracing::error!("history unavailable: {why}");
        }
        if let Ok(mut w) = self.why.lock() {
            *w = Some(why);
        }
        metrics.history_errors.inc();
        metrics.history_up.set(0);
    }

    fn ok(&self, metrics: &Metrics) {
        if self.down.swap(false, Ordering::SeqCst) {
            tracing::info!("history available again");
        }
        metrics.history_up.set(1);
    }
}

/// The handle the agent keeps: a queue to the writer and a connection for reading.
pub struct History {
    tx: Mutex<Option<SyncSender<Msg>>>,
    reader: Mutex<Option<Connection>>,
    dir: PathBuf,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl History {
    /// Opens (or creates) the history in `dir` and starts its writer. It never fails: a database
    /// that cannot be opened leaves the history unavailable, and says why.
    pub fn open(dir: &Path, spec: HistorySpec, metrics: Arc<Metrics>) -> History {
        let health = Arc::new(Health::default());
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let writer = match store::open(dir) {
            Ok((conn, _)) => {
                health.ok(&metrics);
                let (h, m) = (health.clone(), metrics.clone());
                let dir = dir.to_path_buf();
                std::thread::Builder::new()
                    .name("history".into())
                    .spawn(move || write_loop(conn, rx, spec, &dir, &h, &m))
                    .ok()
            }
            Err(e) => {
                health.fail(
                    format!("cannot open {}: {e}", dir.join("history.db").display()),
                    &metrics,
                );
                None
            }
        };
        History {
            tx: Mutex::new(writer.is_some().then_some(tx)),
            reader: Mutex::new(None),
            dir: dir.to_path_buf(),
            health,
            metrics,
            writer: Mutex::new(writer),
        }
    }

    fn send(&self, m: Msg) {
        let Ok(tx) = self.tx.lock() else { return };
        let Some(tx) = tx.as_ref() else { return };
        match tx.try_send(m) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics.history_dropped.inc();
                tracing::warn!("history queue full: a run was not recorded");
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.history_up.set(0);
            }
        }
    }

    /// Queues a finished run.
    pub fn record(&self, o: &Outcome) {
        self.send(Msg::Run(Box::new(Record::of(o, now_ms()))));
    }

    /// Queues a run made elsewhere (the benchmark writes synthetic ones).
    pub fn record_raw(&self, r: Record) {
        self.send(Msg::Run(Box::new(r)));
    }

    /// Queues an alert's state change.
    pub fn incident(&self, n: &Notification) {
        self.send(Msg::Incident(Box::new(Incident::of(n))));
    }

    /// New retention settings from a reload.
    pub fn configure(&self, spec: HistorySpec) {
        self.send(Msg::Configure(spec));
    }

    /// Waits (up to `limit`) until everything queued is written and maintenance has run.
    pub fn flush(&self, limit: Duration) -> bool {
        let writing = self.tx.lock().is_ok_and(|tx| tx.is_some());
        if !writing {
            return false;
        }
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        self.send(Msg::Flush(done_tx));
        done_rx.recv_timeout(limit).is_ok()
    }

    /// Stops the writer after it wrote what is queued (up to `limit`).
    pub fn close(&self, limit: Duration) {
        self.flush(limit);
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(w) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = w.join();
        }
    }

    /// `None` when the history works; otherwise why it does not.
    pub fn problem(&self) -> Option<String> {
        if !self.health.down.load(Ordering::SeqCst) {
            return None;
        }
        self.health
            .why
            .lock()
            .ok()
            .and_then(|w| w.clone())
            .or_else(|| Some("the history database is unavailable".into()))
    }

    /// Runs `f` on the read connection, opening it on first use.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, String> {
        let mut guard = self
            .reader
            .lock()
            .map_err(|_| "the history reader is unusable after a panic".to_string())?;
        if guard.is_none() {
            *guard = Some(store::open_reader(&self.dir).map_err(|e| e.to_string())?);
        }
        let conn = guard.as_ref().ok_or("no history reader")?;
        f(conn).map_err(|e| {
            // A connection that failed is opened afresh next time (the file may have been replaced).
            *guard = None;
            e.to_string()
        })
    }

    /// The page's view of one check.
    pub fn view(&self, check: &str, env: &str, now_ms: i64) -> Result<Option<View>, String> {
        self.read(|c| {
            let Some(series) = store::find_series(c, check, env)? else {
                return Ok(None);
            };
            let recent = store::runs(c, series, 0, 90)?;
            let mut uptime = Vec::new();
            for (name, secs) in WINDOWS {
                uptime.push((name, store::uptime(c, series, now_ms - secs * 1000)?));
            }
            let failing_since = store::failing_since(c, series)?;
            Ok(Some(View {
                recent,
                uptime,
                failing_since,
            }))
        })
    }

    /// Runs since `since_ms` (newest first, at most `limit`), or hourly roll-ups when `hourly`.
    pub fn range(
        &self,
        check: &str,
        env: &str,
        since_ms: i64,
        hourly: bool,
        limit: usize,
    ) -> Result<Option<Range>, String> {
        self.read(|c| {
            let Some(series) = store::find_series(c, check, env)? else {
                return Ok(None);
            };
            if hourly {
                Ok(Some((
                    Vec::new(),
                    store::hours(c, series, since_ms / 1000)?,
                )))
            } else {
                Ok(Some((store::runs(c, series, since_ms, limit)?, Vec::new())))
            }
        })
    }

    /// Incidents, newest first.
    pub fn incidents(&self, limit: usize) -> Result<Vec<Incident>, String> {
        self.read(|c| store::incidents(c, limit))
    }
}

/// The writer: batches from the queue, and maintenance every minute, until the queue closes.
fn write_loop(
    mut conn: Connection,
    rx: Receiver<Msg>,
    mut spec: HistorySpec,
    dir: &Path,
    health: &Health,
    metrics: &Metrics,
) {
    let mut last_maintenance = Instant::now() - MAINTENANCE;
    loop {
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if matches!(first, Some(Msg::Run(_))) {
            std::thread::sleep(GATHER);
        }
        let mut runs = Vec::new();
        let mut flushes = Vec::new();
        let mut next = first;
        while let Some(m) = next {
            match m {
                Msg::Run(r) => runs.push(*r),
                Msg::Incident(i) => write(health, metrics, store::incident(&conn, &i)),
                Msg::Configure(s) => spec = s,
                Msg::Flush(done) => flushes.push(done),
            }
            next = if runs.len() < BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !runs.is_empty() {
            write(health, metrics, store::insert(&mut conn, &runs));
        }
        if !flushes.is_empty() || last_maintenance.elapsed() >= MAINTENANCE {
            last_maintenance = Instant::now();
            maintain(&mut conn, &spec, health, metrics);
            if health.down.load(Ordering::SeqCst) {
                reopen(&mut conn, dir);
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

fn write(health: &Health, metrics: &Metrics, result: Result<(), rusqlite::Error>) {
    match result {
        Ok(()) => health.ok(metrics),
        Err(e) => health.fail(
            format!("cannot write to the history database: {e}"),
            metrics,
        ),
    }
}

/// Roll-ups (at most a day of hours per call), retention and the size bound.
fn maintain(conn: &mut Connection, spec: &HistorySpec, health: &Health, metrics: &Metrics) {
    let now = now_ms();
    let result = store::roll_up(conn, now, 24).and_then(|_| store::prune(conn, now, spec));
    if let Err(e) = result {
        health.fail(format!("history maintenance failed: {e}"), metrics);
    }
    if let Ok(bytes) = store::size(conn) {
        metrics.history_bytes.set(bytes as i64);
    }
}

/// After a failure, tries the file again (it may have been deleted or repaired meanwhile).
fn reopen(conn: &mut Connection, dir: &Path) {
    if let Ok((c, _)) = store::open(dir) {
        *conn = c;
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
