//! `kind = "latency"`: many requests recorded in an HDR histogram (1 µs to 60 s, 3 significant
//! figures). Closed loop sends as fast as `concurrency` allows; open loop schedules requests at a
//! fixed `rate` and times each from its intended start, so a stalled server cannot hide behind
//! coordinated omission. Over HTTP/2, `streams` requests share each connection, as h2load sends
//! them.

use crate::assert::Context;
use crate::check::build::Build;
use crate::check::read::{RequestSpec, read_expect, read_request};
use crate::doc::{Diagnostics, Spanned, Table, Value};
use crate::outcome::{Bucket, Details, LatencyDetails, LatencySummary};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::{Barrier, OnceCell};
use tokio::time::Instant;

use crate::assert::{Assertion, Expected, Query, Severity, compare_number};
use crate::net::{Block, Engine, Kept, NetError, Overrides, Pool, Prepared, Protocol, Request};

use super::{Ctx, Finding, Probed, Status};

mod lane;

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// `requests` in total, `concurrency` in flight; a `duration` ends the run early.
    Closed {
        requests: u64,
        concurrency: u64,
        duration: Option<Duration>,
    },
    /// `rate` per second for `duration`, over `concurrency` connections.
    Open {
        rate: f64,
        duration: Duration,
        concurrency: u64,
    },
}

/// A latency run and what its percentiles must satisfy.
#[derive(Debug, Clone)]
pub struct LatencyProbe {
    pub request: Request,
    pub mode: Mode,
    pub warmup: u64,
    /// Reuse connections; `false` measures a fresh connection (and handshake) per request.
    pub keepalive: bool,
    /// Time where the URL's redirects lead; without it, a redirecting URL fails the check.
    pub follow_redirects: bool,
    pub expect: Vec<Assertion>,
    /// The HTTP the run's connections speak.
    pub protocol: Protocol,
    /// Requests in flight on each HTTP/2 connection (1: one at a time, as over HTTP/1.1).
    pub streams: u64,
    /// Threads the connections are spread over, each running its own event loop (wrk's and
    /// h2load's `-t`).
    pub threads: u64,
}

/// Redirects followed to find the URL a run times, like the `http` kind.
const MAX_REDIRECTS: usize = 10;

/// Where the timed requests go.
enum Target {
    /// The configured URL answers for itself, from this address when it answered at all.
    Direct(Option<std::net::SocketAddr>),
    /// It redirects: the run times the final URL, answered from this address, and says so.
    Redirected(Box<Request>, Finding, std::net::SocketAddr),
    /// It redirects and redirects are not followed: nothing worth timing.
    Refused(Finding),
}

/// One request may take this long before it counts as an error, within the check's deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What every worker shares.
struct Shared {
    engine: Engine,
    overrides: Overrides,
    request: Request,
    /// The request's bytes for HTTP/1.1, the same for every request of the run.
    prepared: Result<Prepared, NetError>,
    /// The request as the streams of an HTTP/2 lane send it, encoded once.
    block: Result<Block, NetError>,
    deadline: Instant,
    warmup: AtomicU64,
    next: AtomicU64,
    total: u64,
    /// Workers in the run.
    workers: u64,
    /// Open loop: the time between two intended sends.
    interval: Option<Duration>,
    /// A timed closed loop stops claiming requests once this much time has passed.
    until: Option<Duration>,
    start: OnceCell<Instant>,
    barrier: Barrier,
    done: AtomicU64,
    empty: Histogram<u64>,
    protocol: Protocol,
    /// Why the first failed request failed, for the report.
    first_error: std::sync::OnceLock<String>,
}

/// What a worker counts, added up at the end.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    errors: u64,
    attempts: u64,
    /// Requests sent again on a new connection because the kept one had been closed.
    reconnects: u64,
}

impl Counts {
    fn add(&mut self, c: Counts) {
        self.errors += c.errors;
        self.attempts += c.attempts;
        self.reconnects += c.reconnects;
    }
}

/// A crew's times and counts, and in the end the run's.
struct Tally {
    hist: Histogram<u64>,
    counts: Counts,
}

impl Tally {
    fn new(s: &Shared) -> Tally {
        Tally {
            hist: s.empty.clone(),
            counts: Counts::default(),
        }
    }

    fn add(&mut self, t: &Tally) {
        let _ = self.hist.add(&t.hist);
        self.counts.add(t.counts);
    }
}

/// Starts a thread with a single-threaded runtime of its own for one crew of workers, as wrk
/// gives each of its threads its own connections: a connection's task and the worker waiting
/// on it wake each other on one thread, with no hand-over between threads and no stealing.
/// Should no thread start, the crew runs on the caller's runtime instead. The returned future
/// is the crew's merged tally.
fn start_crew(
    shared: &Arc<Shared>,
    crew: Vec<Job>,
) -> impl std::future::Future<Output = Option<Tally>> + use<> {
    let (give, take) = std::sync::mpsc::channel::<Vec<Job>>();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let s = shared.clone();
    let thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|runtime| {
            std::thread::Builder::new()
                .name("shipwatch-latency".into())
                .spawn(move || {
                    if let Ok(crew) = take.recv() {
                        let _ = tx.send(runtime.block_on(crew_tally(s, crew)));
                    }
                })
        });
    let fallback = match thread {
        Ok(_) => give
            .send(crew)
            .err()
            .map(|back| tokio::spawn(crew_tally(shared.clone(), back.0))),
        Err(_) => Some(tokio::spawn(crew_tally(shared.clone(), crew))),
    };
    async move {
        match fallback {
            None => rx.await.ok(),
            Some(task) => task.await.ok(),
        }
    }
}

/// Runs a crew's jobs to the end. They are polled together in one task and record into one
/// histogram: a histogram per worker, hundreds of them, would be out of the cache at every
/// request.
async fn crew_tally(shared: Arc<Shared>, crew: Vec<Job>) -> Tally {
    use futures_util::StreamExt;
    let hist = std::sync::Mutex::new(shared.empty.clone());
    let mut counts = Counts::default();
    {
        let mut jobs: futures_util::stream::FuturesUnordered<_> = crew
            .into_iter()
            .map(|job| {
                let (s, hist) = (&shared, &hist);
                async move {
                    match job {
                        Job::Worker(way) => worker(s, way, hist).await,
                        Job::Lane(streams) => lane::lane(s, streams, hist).await,
                    }
                }
            })
            .collect();
        while let Some(c) = jobs.next().await {
            counts.add(c);
        }
    }
    Tally {
        hist: hist.into_inner().unwrap_or_else(|e| e.into_inner()),
        counts,
    }
}

/// The longest time a histogram records, in µs; longer ones are recorded as this.
const LONGEST_US: u64 = 60_000_000;

/// 1 µs up to 60 s at 3 significant figures. It grows with the longest time recorded: about
/// 30 KiB for a run of milliseconds, 200 KiB at most, whatever the number of requests.
fn histogram() -> Result<Histogram<u64>, super::ProbeError> {
    let mut h = Histogram::new_with_bounds(1, 2_048, 3).map_err(|e| super::ProbeError {
        kind: "setup",
        message: format!("cannot create the latency histogram: {e}"),
    })?;
    h.auto(true);
    Ok(h)
}

/// The statistics of a run, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stats {
    pub count: u64,
    pub errors: u64,
    pub attempts: u64,
    pub reconnects: u64,
    pub elapsed: Duration,
    hist: Histogram<u64>,
    /// Why the first failed request failed.
    first_error: Option<String>,
}

impl Stats {
    pub(crate) fn quantile_ms(&self, p: f64) -> f64 {
        self.hist.value_at_quantile(p / 100.0) as f64 / 1000.0
    }
    pub fn max_ms(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }
    pub(crate) fn mean_ms(&self) -> f64 {
        self.hist.mean() / 1000.0
    }
    pub fn error_rate(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            self.errors as f64 / self.attempts as f64
        }
    }
    pub(crate) fn throughput(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.attempts as f64 / s
        } else {
            0.0
        }
    }

    /// Log-scale buckets from 1 ms, doubling: what the text histogram and the JSON report show.
    pub(crate) fn buckets(&self) -> Vec<(f64, u64)> {
        let mut out = Vec::new();
        if self.hist.is_empty() {
            return out;
        }
        for step in self.hist.iter_log(1000, 2.0) {
            out.push((
                step.value_iterated_to() as f64 / 1000.0,
                step.count_since_last_iteration(),
            ));
        }
        while out.last().is_some_and(|(_, c)| *c == 0) {
            out.pop();
        }
        let first = out.iter().position(|(_, c)| *c > 0).unwrap_or(0);
        out.split_off(first)
    }

    /// The value an assertion's query asks for: milliseconds, or an error rate or count.
    /// `None` when there is nothing to judge: a percentile of a run where no request succeeded
    /// is not 0 ms, and must not pass.
    fn value(&self, q: &Query, expected: Option<&Expected>) -> Option<f64> {
        let timed = self.count > 0;
        match q {
            Query::Percentile(p) if timed => Some(self.quantile_ms(*p)),
            Query::Max if timed => Some(self.max_ms()),
            Query::Mean if timed => Some(self.mean_ms()),
            Query::Errors if matches!(expected, Some(Expected::Percent(_))) => {
                Some(self.error_rate())
            }
            Query::Errors => Some(self.errors as f64),
            _ => None,
        }
    }
}

impl LatencyProbe {
    /// One untimed request finds where the URL leads. Timing a redirect would measure a 301
    /// from the edge, not the endpoint. A transport error here is left for the run to count.
    async fn target(&self, ctx: &Ctx<'_>) -> Target {
        let probe = Request {
            discard_body: true,
            ..self.request.clone()
        };
        let mut pool = Pool::single_use();
        let deadline = ctx.deadline.min(Instant::now() + REQUEST_TIMEOUT);
        if !self.follow_redirects {
            return match pool.send(ctx.engine, &probe, ctx.overrides, deadline).await {
                Ok(r) if r.is_redirect() => {
                    let location = r.location().unwrap_or("(no Location)").to_string();
                    Target::Refused(
                        Finding::new(
                            "latency.redirect",
                            Status::Fail,
                            format!(
                                "{} redirects ({}) to {location}: the run would time the redirect, not the endpoint; point `url` at {location}, or drop `follow_redirects = false`",
                                self.request.url, r.status
                            ),
                        )
                        .with_values(
                            "a URL that answers without redirecting",
                            format!("{} to {location}", r.status),
                        ),
                    )
                }
                Ok(r) => Target::Direct(Some(r.remote)),
                Err(_) => Target::Direct(None),
            };
        }
        let exchange = match pool
            .fetch(ctx.engine, &probe, ctx.overrides, deadline, MAX_REDIRECTS)
            .await
        {
            Ok(x) => x,
            // A loop, too many redirects or a broken Location: nothing worth timing.
            Err(crate::net::NetError::Protocol(m)) => {
                return Target::Refused(Finding::new(
                    "latency.redirect",
                    Status::Fail,
                    format!("{} cannot be timed: {m}", self.request.url),
                ));
            }
            // Unreachable and the like: the run counts those as errors.
            Err(_) => return Target::Direct(None),
        };
        let Some(first) = exchange.hops.first() else {
            return Target::Direct(Some(exchange.response.remote));
        };
        let mut request = self.request.clone();
        let nexts = exchange
            .hops
            .iter()
            .skip(1)
            .map(|h| h.url.clone())
            .chain(std::iter::once(exchange.response.url.clone()));
        for (hop, next) in exchange.hops.iter().zip(nexts) {
            request.redirect(hop.status, next);
        }
        let finding = Finding::new(
            "latency.redirect",
            Status::Pass,
            format!(
                "{} redirects ({}) to {}; the run timed {}",
                self.request.url, first.status, request.url, request.url
            ),
        )
        .with_values("the final URL", request.url.to_string());
        Target::Redirected(Box::new(request), finding, exchange.response.remote)
    }

    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let (request, note, reached) = match self.target(ctx).await {
            Target::Direct(reached) => (self.request.clone(), None, reached),
            Target::Redirected(r, f, reached) => (*r, Some(f), Some(reached)),
            Target::Refused(f) => {
                return Probed {
                    findings: vec![f],
                    timings: None,
                    error: None,
                    details: Default::default(),
                    redact: Vec::new(),
                };
            }
        };
        // The run's connections go where the first request went: the name is resolved once,
        // as wrk resolves it, and never from the run's own threads.
        let mut overrides = ctx.overrides.clone();
        if let (Some(addr), Some(host), Some(port)) = (
            reached,
            request.url.host_str(),
            request.url.port_or_known_default(),
        ) {
            overrides.connect_to(host, port, addr);
        }
        let mut probed = self.run_against(ctx, request, overrides).await;
        if let Some(f) = note {
            probed.findings.insert(0, f);
        }
        probed
    }

    /// How many requests, over how many connections, paced how, for how long.
    fn pacing(&self) -> (u64, u64, Option<Duration>, Option<Duration>) {
        match self.mode {
            Mode::Closed {
                requests,
                concurrency,
                duration,
            } => (requests, concurrency, None, duration),
            Mode::Open {
                rate,
                duration,
                concurrency,
            } => (
                (rate * duration.as_secs_f64()).round().max(1.0) as u64,
                concurrency,
                Some(Duration::from_secs_f64(1.0 / rate)),
                None,
            ),
        }
    }

    async fn run_against(&self, ctx: &Ctx<'_>, request: Request, overrides: Overrides) -> Probed {
        let (total, concurrency, interval, until) = self.pacing();
        let in_flight = concurrency.saturating_mul(self.streams.max(1));
        let workers = in_flight.clamp(1, total.max(1).saturating_add(self.warmup)) as usize;
        let empty = match histogram() {
            Ok(h) => h,
            Err(e) => return Probed::failed(e),
        };
        let shared = Arc::new(Shared {
            engine: ctx.engine.clone(),
            overrides,
            // Bodies are counted and dropped as they stream: memory must not grow with
            // concurrency times body size.
            prepared: Prepared::new(&request),
            block: Block::new(&request),
            request: Request {
                discard_body: true,
                ..request
            },
            deadline: ctx.deadline,
            warmup: AtomicU64::new(self.warmup),
            next: AtomicU64::new(0),
            total,
            workers: workers as u64,
            interval,
            until,
            start: OnceCell::new(),
            barrier: Barrier::new(jobs(workers, self.streams as usize)),
            done: AtomicU64::new(0),
            empty,
            protocol: self.protocol,
            first_error: std::sync::OnceLock::new(),
        });
        let merged = self.run_workers(ctx, &shared, workers).await;
        let started = shared.start.get().copied().unwrap_or_else(Instant::now);
        // Requests never sent before the deadline count as errors: a run cut short must not look
        // clean. A timed run has no fixed count, so nothing is owed when its time is up.
        let unsent = if until.is_some() {
            0
        } else {
            total.saturating_sub(merged.counts.attempts)
        };
        self.report(&Stats {
            count: merged.hist.len(),
            errors: merged.counts.errors + unsent,
            attempts: merged.counts.attempts + unsent,
            reconnects: merged.counts.reconnects,
            elapsed: started.elapsed(),
            hist: merged.hist,
            first_error: shared.first_error.get().cloned(),
        })
    }

    /// Runs the workers to the end, with a progress bar on a terminal, and merges their tallies.
    async fn run_workers(&self, ctx: &Ctx<'_>, shared: &Arc<Shared>, workers: usize) -> Tally {
        let progress = ctx.progress.then(|| Progress::start(shared));
        let mut merged = Tally::new(shared);
        // All crews start before any is waited on: their workers meet at a barrier.
        let crews: Vec<_> = self
            .crews(workers)
            .into_iter()
            .map(|crew| start_crew(shared, crew))
            .collect();
        for crew in crews {
            if let Some(t) = crew.await {
                merged.add(&t);
            }
        }
        if let Some(p) = progress {
            p.finish();
        }
        merged
    }

    /// The run's jobs, dealt to one crew per thread: a worker per connection over HTTP/1.1, or
    /// with `streams` above 1, a lane per HTTP/2 connection with its streams.
    fn crews(&self, workers: usize) -> Vec<Vec<Job>> {
        let streams = self.streams.max(1) as usize;
        let jobs = jobs(workers, streams);
        let threads = (self.threads as usize).clamp(1, jobs.max(1));
        let mut crews: Vec<Vec<Job>> = (0..threads).map(|_| Vec::new()).collect();
        for i in 0..jobs {
            let job = if streams > 1 {
                Job::Lane(streams.min(workers - i * streams))
            } else if self.keepalive {
                Job::Worker(Way::Kept {
                    conn: None,
                    reconnects: 0,
                })
            } else {
                Job::Worker(Way::Fresh(Pool::single_use().speaking(self.protocol)))
            };
            crews[i % threads].push(job);
        }
        crews
    }

    fn report(&self, stats: &Stats) -> Probed {
        let default = [Assertion::parse(
            "errors < 1%",
            crate::assert::Context::Latency,
        )];
        // A run that only asks about percentiles still fails when its requests fail: without
        // an `errors` assertion of its own, it gets the default one.
        let mut expect: Vec<&Assertion> = self.expect.iter().collect();
        if !expect.iter().any(|a| matches!(a.query, Query::Errors)) {
            expect.extend(default.iter().filter_map(|a| a.as_ref().ok()));
        }
        let mut findings: Vec<Finding> = Vec::new();
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for a in expect {
            let base = format!("latency.{}", query_name(&a.query));
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            // A second assertion on the same query (say a warn: and a hard limit) gets `.2`.
            let id = if *n == 1 { base } else { format!("{base}.{n}") };
            findings.push(judge(a, stats, id));
        }
        let details = Details::Latency(Box::new(LatencyDetails {
            latency: summary(stats),
        }));
        Probed {
            findings,
            timings: None,
            error: None,
            details,
            redact: Vec::new(),
        }
    }
}

fn query_name(q: &Query) -> String {
    match q {
        Query::Percentile(p) => format!("p{p}"),
        Query::Max => "max".into(),
        Query::Mean => "mean".into(),
        Query::Errors => "errors".into(),
        _ => "other".into(),
    }
}

fn judge(a: &Assertion, stats: &Stats, id: String) -> Finding {
    let actual = stats.value(&a.query, a.expected.as_ref());
    let passed = match (actual, &a.expected) {
        (Some(v), Some(e)) => compare_number(v, a.op, e),
        _ => false,
    };
    let shown = match (&a.query, actual) {
        (Query::Errors, Some(v)) if matches!(a.expected, Some(Expected::Percent(_))) => {
            format!("{:.2}% ({} of {})", v * 100.0, stats.errors, stats.attempts)
        }
        (Query::Errors, Some(v)) => format!("{v} errors"),
        (_, Some(v)) => format!("{v:.2}ms"),
        (_, None) => format!("no data: none of {} requests succeeded", stats.attempts),
    };
    let status = match (passed, a.severity) {
        (true, _) => Status::Pass,
        (false, Severity::Warn) => Status::Warn,
        (false, Severity::Fail) => Status::Fail,
    };
    let mut msg = if passed {
        format!("{} ({shown})", a.text)
    } else {
        format!("{} (was {shown})", a.text)
    };
    if let (false, Query::Errors, Some(why)) = (passed, &a.query, &stats.first_error) {
        msg.push_str(&format!("; the first error: {why}"));
    }
    Finding::new(id, status, msg).with_values(a.expected_text(), shown)
}

fn summary(s: &Stats) -> LatencySummary {
    let r = |v: f64| (v * 1000.0).round() / 1000.0;
    LatencySummary {
        requests: s.attempts,
        errors: s.errors,
        reconnects: s.reconnects,
        error_rate: r(s.error_rate()),
        throughput_rps: r(s.throughput()),
        p50_ms: r(s.quantile_ms(50.0)),
        p90_ms: r(s.quantile_ms(90.0)),
        p95_ms: r(s.quantile_ms(95.0)),
        p99_ms: r(s.quantile_ms(99.0)),
        p99_9_ms: r(s.quantile_ms(99.9)),
        max_ms: r(s.max_ms()),
        mean_ms: r(s.mean_ms()),
        histogram: s
            .buckets()
            .iter()
            .map(|(le, c)| Bucket {
                le_ms: r(*le),
                count: *c,
            })
            .collect(),
        hdr_histogram: encode(&s.hist),
    }
}

/// The histogram in the HDR standard V2 compressed encoding, base64.
fn encode(h: &Histogram<u64>) -> String {
    use hdrhistogram::serialization::Serializer;
    let mut bytes = Vec::new();
    match hdrhistogram::serialization::V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => crate::assert::base64(&bytes),
        Err(_) => String::new(),
    }
}

/// A progress bar on a terminal, moved along by a ticker task.
struct Progress {
    bar: indicatif::ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(shared: &Arc<Shared>) -> Progress {
        let total = shared.total;
        let bar = progress_bar((total != u64::MAX).then_some(total));
        let (b, shared) = (bar.clone(), shared.clone());
        let ticker = tokio::spawn(async move {
            loop {
                b.set_position(shared.done.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Progress { bar, ticker }
    }

    fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

/// A request rate as people read it: "1442 req/s".
fn rate(per_sec: f64) -> String {
    format!("{per_sec:.0} req/s")
}

fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
    let (bar, template) = match total {
        Some(t) => (
            indicatif::ProgressBar::new(t),
            "latency {bar:30} {pos}/{len} {rate} eta {eta}",
        ),
        None => (
            indicatif::ProgressBar::new_spinner(),
            "latency {spinner} {pos} requests {rate} {elapsed}",
        ),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        // "1442 req/s", not indicatif's "1,442.4885/s".
        bar.set_style(style.with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&rate(s.per_sec()));
            },
        ));
    }
    bar
}

/// Jobs for `workers` requests in flight, `streams` to a connection: workers, or lanes.
fn jobs(workers: usize, streams: usize) -> usize {
    workers.div_ceil(streams.max(1))
}

/// What a crew runs: a worker sending one request at a time, or a lane keeping this many
/// requests in flight on an HTTP/2 connection.
enum Job {
    Worker(Way),
    Lane(usize),
}

/// How a worker sends: on a connection of its own, or on a new connection each time.
enum Way {
    Kept {
        conn: Option<Kept>,
        /// Requests sent again on a new connection because the kept one had been closed.
        reconnects: u64,
    },
    Fresh(Pool),
}

impl Way {
    fn reconnects(&mut self) -> &mut u64 {
        match self {
            Way::Kept { reconnects, .. } => reconnects,
            Way::Fresh(p) => &mut p.reconnects,
        }
    }
}

/// Claims request numbers until there are none left, keeping its connection when it can.
async fn worker(s: &Shared, mut way: Way, hist: &std::sync::Mutex<Histogram<u64>>) -> Counts {
    let mut counts = Counts::default();
    // Warm-up: sent, not recorded.
    while s
        .warmup
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| w.checked_sub(1))
        .is_ok()
    {
        let _ = send(s, &mut way, Instant::now()).await;
    }
    *way.reconnects() = 0;
    s.barrier.wait().await;
    let start = *s.start.get_or_init(|| async { Instant::now() }).await;
    let mut claimed = 0..0;
    let mut unreported = 0;
    loop {
        let now = Instant::now();
        if s.until.is_some_and(|d| now.duration_since(start) >= d) {
            break;
        }
        let Some(i) = claimed.next().or_else(|| {
            claimed = claim(s);
            claimed.next()
        }) else {
            break;
        };
        let (intended, sent) = match s.interval {
            Some(iv) => {
                let t = start + iv.mul_f64(i as f64);
                tokio::time::sleep_until(t).await;
                (t, Instant::now())
            }
            None => (now, now),
        };
        if sent >= s.deadline {
            break;
        }
        counts.attempts += 1;
        match send(s, &mut way, sent).await {
            Ok(status) => record(hist, intended, status, &mut counts),
            Err(()) => counts.errors += 1,
        }
        progressed(s, &mut unreported);
    }
    s.done.fetch_add(unreported, Ordering::Relaxed);
    counts.reconnects = *way.reconnects();
    counts
}

/// Records an answer's time from when its request was meant to go; from 400 up it is an error.
fn record(
    hist: &std::sync::Mutex<Histogram<u64>>,
    intended: Instant,
    status: u16,
    counts: &mut Counts,
) {
    let us = intended.elapsed().as_micros().min(u128::from(LONGEST_US)) as u64;
    if let Ok(mut h) = hist.lock() {
        // `record` grows the histogram to the value (saturating would clamp it).
        if h.record(us.max(1)).is_err() {
            h.saturating_record(us.max(1));
        }
    }
    if status >= 400 {
        counts.errors += 1;
    }
}

/// Counts a finished request towards the progress shown, [`PROGRESS_EVERY`] at a time.
fn progressed(s: &Shared, unreported: &mut u64) {
    *unreported += 1;
    if *unreported == PROGRESS_EVERY {
        s.done.fetch_add(*unreported, Ordering::Relaxed);
        *unreported = 0;
    }
}

/// Request numbers a worker of a closed loop claims at once, fewer near the end so that the
/// workers finish together. One at a time, every request of every thread would write the
/// same shared counter.
const CLAIM: u64 = 32;

/// Requests a worker sends between two updates of the shared progress count.
const PROGRESS_EVERY: u64 = 64;

/// The next request numbers for a worker: one at a time in an open loop, where a number is a
/// time slot, a few at a time in a closed loop.
fn claim(s: &Shared) -> std::ops::Range<u64> {
    let chunk = if s.interval.is_some() {
        1
    } else {
        let left = s.total.saturating_sub(s.next.load(Ordering::Relaxed));
        (left / s.workers.saturating_mul(4).max(1)).clamp(1, CLAIM)
    };
    let first = s.next.fetch_add(chunk, Ordering::SeqCst);
    first.min(s.total)..first.saturating_add(chunk).min(s.total)
}

/// One request sent at `sent` on the worker's kept connection, on a new connection, or as a
/// stream of its lane's connection.
async fn send(s: &Shared, way: &mut Way, sent: Instant) -> Result<u16, ()> {
    let deadline = (sent + REQUEST_TIMEOUT).min(s.deadline);
    let result = match way {
        Way::Kept { conn, reconnects } => send_kept(s, conn, reconnects, sent, deadline).await,
        Way::Fresh(pool) => pool
            .send(&s.engine, &s.request, &s.overrides, deadline)
            .await
            .map(|r| r.status),
    };
    result.map_err(|e| {
        s.first_error.get_or_init(|| e.to_string());
    })
}

/// One request on the worker's kept connection, opened when it has none. A kept connection
/// found closed before its answer began is replaced and an idempotent request sent again, as
/// [`Pool`] does: a reconnect, not an error.
async fn send_kept(
    s: &Shared,
    slot: &mut Option<Kept>,
    reconnects: &mut u64,
    sent: Instant,
    deadline: Instant,
) -> Result<u16, NetError> {
    let prepared = s.prepared.as_ref().map_err(Clone::clone)?;
    let open = || {
        s.engine
            .open_kept(&s.request, s.protocol, &s.overrides, deadline)
    };
    let mut conn = match slot.take() {
        Some(c) => c,
        None => open().await?,
    };
    let reused = conn.is_reused();
    let answer = match conn.send(&s.request, prepared, sent, deadline).await {
        Err(NetError::Closed(_)) if reused && crate::net::idempotent(&s.request.method) => {
            *reconnects += 1;
            conn = open().await?;
            conn.send(&s.request, prepared, sent, deadline).await
        }
        other => other,
    }?;
    if answer.keep {
        *slot = Some(conn);
    }
    Ok(answer.status)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_progress_rate_reads_plainly() {
        assert_eq!(super::rate(1442.4885), "1442 req/s");
    }
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "latency"` check takes besides the common ones and a request's.
pub const KEYS: &[&str] = &[
    "requests",
    "concurrency",
    "rate",
    "duration",
    "warmup",
    "keepalive",
    "follow_redirects",
    "expect",
    "http2",
    "streams",
    "threads",
];

/// `kind = "latency"`: many requests, percentiles from an HDR histogram.
#[derive(Debug, Clone)]
pub struct LatencySpec {
    pub request: RequestSpec,
    /// Closed loop: this many requests, `concurrency` at a time (all of `duration`, when set).
    pub requests: Option<u64>,
    pub concurrency: u64,
    /// Open loop: requests per second for `duration`, timed from each request's intended start.
    pub rate: Option<f64>,
    pub duration: Option<Duration>,
    /// Requests sent first and not recorded.
    pub warmup: u64,
    pub keepalive: bool,
    /// Time where the URL's redirects lead (true), or fail when it redirects (false).
    pub follow_redirects: bool,
    pub expect: Vec<Spanned<String>>,
    /// `http2 = true` (HTTP/2 only: ALPN h2, h2c for http://), `false`, or `"auto"` (ALPN).
    pub http2: Protocol,
    /// Requests in flight on each HTTP/2 connection.
    pub streams: u64,
    /// Threads the connections are spread over, each with its own event loop.
    pub threads: u64,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<LatencySpec> {
    let request = read_request(t, diags);
    let requests = t.int("requests", 1..100_000_001, diags).map(|n| n as u64);
    let concurrency = t.int("concurrency", 1..10_001, diags).unwrap_or(4) as u64;
    let path = t.path().to_string();
    let rate = t.get("rate").and_then(|n| match n.value {
        Value::Int(i) if i > 0 => Some(i as f64),
        Value::Float(f) if f > 0.0 && f.is_finite() => Some(f),
        _ => {
            diags.error(
                n.span.clone(),
                format!("{path}: rate must be a positive number of requests per second"),
            );
            None
        }
    });
    let duration = t.duration("duration", diags);
    if rate.is_some() && duration.is_none() {
        diags.error(
            t.span(),
            format!("{path}: open-loop mode (`rate`) needs a `duration`"),
        );
    }
    let warmup = t.int("warmup", 0..1_000_001, diags).unwrap_or(0) as u64;
    let keepalive = t.bool("keepalive", diags).unwrap_or(true);
    let follow_redirects = t.bool("follow_redirects", diags).unwrap_or(true);
    let expect = read_expect(t, Context::Latency, diags);
    let (http2, streams) = read_http2(t, diags);
    let threads = t.int("threads", 1..257, diags).unwrap_or(1) as u64;
    Some(LatencySpec {
        request: request?,
        requests,
        concurrency,
        rate,
        duration,
        warmup,
        keepalive,
        follow_redirects,
        expect,
        http2,
        streams,
        threads,
    })
}

/// `http2` and `streams`: several streams need connections that can carry them.
fn read_http2(t: &mut Table<'_>, diags: &mut Diagnostics) -> (Protocol, u64) {
    let path = t.path().to_string();
    let http2 = match t.get("http2") {
        None => Protocol::Auto,
        Some(n) => match &n.value {
            Value::Bool(true) => Protocol::Http2,
            Value::Bool(false) => Protocol::Http1,
            Value::Str(s) if s == "auto" => Protocol::Auto,
            _ => {
                diags.wrong_type(&t.key_path("http2"), n, "true, false or \"auto\"");
                Protocol::Auto
            }
        },
    };
    let streams = t.int("streams", 1..1001, diags).unwrap_or(1) as u64;
    if streams > 1 && http2 == Protocol::Http1 {
        let span = t
            .get("streams")
            .map_or_else(|| t.span(), |n| n.span.clone());
        diags.error(
            span,
            format!(
                "{path}: streams = {streams} needs HTTP/2, but http2 = false; \
                 HTTP/1.1 carries one request at a time on a connection"
            ),
        );
    }
    (http2, streams)
}

/// The job of a `kind = "latency"` check, its strings interpolated.
pub(crate) fn build(l: &LatencySpec, b: &mut Build<'_>) -> Option<LatencyProbe> {
    let request = b.request_of(&l.request);
    let expect = b.expect(&l.expect, Context::Latency);
    let mode = match (l.rate, l.duration) {
        (Some(rate), Some(duration)) => Mode::Open {
            rate,
            duration,
            concurrency: l.concurrency,
        },
        (None, duration) => Mode::Closed {
            // A timed run goes until its duration is over unless a count is also given.
            requests: l
                .requests
                .unwrap_or(if duration.is_some() { u64::MAX } else { 100 }),
            concurrency: l.concurrency,
            duration,
        },
        (Some(_), None) => return None,
    };
    Some(LatencyProbe {
        request: request?,
        mode,
        warmup: l.warmup,
        keepalive: l.keepalive,
        follow_redirects: l.follow_redirects,
        expect,
        protocol: l.http2,
        streams: l.streams,
        threads: l.threads,
    })
}

/// A latency run lasts longer than one request: an open loop gets its duration on top of the
/// default timeout, a closed loop at least a minute.
pub(crate) fn default_timeout(l: &LatencySpec, base: Duration) -> Duration {
    match l.duration {
        Some(d) => d + base,
        None => base.max(Duration::from_secs(60)),
    }
}
