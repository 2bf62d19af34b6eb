//! The Prometheus metrics: every family in DESIGN.md, bounded labels, OpenMetrics text.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::outcome::Outcome;
use crate::outcome::Status;

type Labels = Vec<(String, String)>;
type FGauge = Family<Labels, Gauge<f64, AtomicU64>>;

fn request_histogram() -> Histogram {
    // 10 ms to about 10 s in steps of 2.7: enough for a p95 panel, few lines per check.
    Histogram::new(exponential_buckets(0.01, std::f64::consts::E, 8))
}

/// One latency run, summarised.
#[derive(Debug, Clone, Copy)]
struct LatencySummary {
    quantiles: [f64; 5],
    sum: f64,
    count: f64,
}

/// Label values escaped as the exposition formats require.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Latency quantiles exported from a latency run, with the keys they come from.
/// The quantile labels of `shipwatch_latency_seconds`, in the order the values are kept.
const QUANTILES: [&str; 5] = ["0.5", "0.9", "0.95", "0.99", "0.999"];
const PHASES: &[&str] = &["dns", "connect", "tls", "ttfb", "transfer"];
const STATUSES: &[Status] = &[Status::Pass, Status::Warn, Status::Fail, Status::Error];

/// The registry and its families. Passed in, never global.
/// The `outcome` label values of `shipwatch_notifications_total`.
pub(crate) const NOTIFICATION_OUTCOMES: [&str; 5] =
    ["sent", "failed", "rejected", "expired", "dropped"];

pub struct Metrics {
    registry: Registry,
    check_success: FGauge,
    check_duration: FGauge,
    runs: Family<Labels, Counter>,
    finding_status: FGauge,
    http_phase: FGauge,
    request_duration: Family<Labels, Histogram, fn() -> Histogram>,
    /// The latest latency run of each check, written as a summary (prometheus-client has no summary type).
    latency: std::sync::Mutex<std::collections::BTreeMap<(String, String), LatencySummary>>,
    cert_expiry: FGauge,
    chain_expiry: FGauge,
    tls_version: FGauge,
    security_score: FGauge,
    dns_lookup: FGauge,
    alert_firing: FGauge,
    /// Fed by the notification sinks.
    pub notifications: Family<Labels, Counter>,
    pub queue_depth: Gauge<i64>,
    /// Writes to `state_dir` (outbox entries, alert state) that failed.
    pub outbox_write_errors: Counter,
    reload_success: Gauge<i64>,
    reload_timestamp: Gauge<f64, AtomicU64>,
    /// 1 while the history database takes writes.
    pub history_up: Gauge<i64>,
    pub history_errors: Counter,
    /// Runs not recorded because the history writer's queue was full.
    pub history_dropped: Counter,
    pub history_bytes: Gauge<i64>,
    /// The `location` label of every series, if any.
    location: Option<String>,
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::at(None)
    }

    /// Metrics whose every series carries `location="…"` when the agent has one, so several
    /// agents watching the same checks from different places can be told apart and compared.
    pub fn at(location: Option<&str>) -> Metrics {
        let labels = location.map(|l| {
            (
                std::borrow::Cow::Borrowed("location"),
                std::borrow::Cow::Owned(l.to_string()),
            )
        });
        let mut r = Registry::with_prefix_and_labels("shipwatch", labels.into_iter());
        let m = Metrics {
            check_success: FGauge::default(),
            check_duration: FGauge::default(),
            runs: Family::default(),
            finding_status: FGauge::default(),
            http_phase: FGauge::default(),
            request_duration: Family::new_with_constructor(request_histogram),
            latency: Default::default(),
            cert_expiry: FGauge::default(),
            chain_expiry: FGauge::default(),
            tls_version: FGauge::default(),
            security_score: FGauge::default(),
            dns_lookup: FGauge::default(),
            alert_firing: FGauge::default(),
            notifications: Family::default(),
            queue_depth: Gauge::default(),
            outbox_write_errors: Counter::default(),
            reload_success: Gauge::default(),
            reload_timestamp: Gauge::default(),
            history_up: Gauge::default(),
            history_errors: Counter::default(),
            history_dropped: Counter::default(),
            history_bytes: Gauge::default(),
            location: None,
            registry: Registry::default(),
        };
        register_checks(&mut r, &m);
        register_tls_and_security(&mut r, &m);
        register_alerts_and_agent(&mut r, &m);
        register_history(&mut r, &m);
        Metrics {
            registry: r,
            location: location.map(str::to_string),
            ..m
        }
    }

    /// Records a config load.
    pub fn reloaded(&self, ok: bool, unix_seconds: f64) {
        self.reload_success.set(i64::from(ok));
        if ok {
            self.reload_timestamp.set(unix_seconds);
        }
    }

    /// Records one check run.
    pub fn record(&self, o: &Outcome) {
        let (c, e, k) = (o.name.as_str(), o.environment.as_str(), o.kind);
        let cek = l(&[("check", c), ("env", e), ("kind", k)]);
        let ok = matches!(o.status, Status::Pass | Status::Warn);
        self.check_success
            .get_or_create(&cek)
            .set(if ok { 1.0 } else { 0.0 });
        self.check_duration
            .get_or_create(&cek)
            .set(o.duration.as_secs_f64());
        self.runs
            .get_or_create(&l(&[
                ("check", c),
                ("env", e),
                ("kind", k),
                ("status", o.status.as_str()),
            ]))
            .inc();
        for f in &o.findings {
            let v = match f.status {
                Status::Pass => 0.0,
                Status::Warn => 1.0,
                _ => 2.0,
            };
            self.finding_status
                .get_or_create(&l(&[("check", c), ("env", e), ("finding", &f.id)]))
                .set(v);
        }
        // A check that is not firing shows 0, so dashboards and rules always have a series.
        for sev in ["warning", "critical"] {
            let _ =
                self.alert_firing
                    .get_or_create(&l(&[("check", c), ("env", e), ("severity", sev)]));
        }
        if let Some(t) = o.timings {
            let values = [t.dns, t.connect, t.tls, t.ttfb, t.transfer];
            for (phase, d) in PHASES.iter().zip(values) {
                self.http_phase
                    .get_or_create(&l(&[("check", c), ("env", e), ("phase", phase)]))
                    .set(d.as_secs_f64());
            }
            self.request_duration
                .get_or_create(&l(&[("check", c), ("env", e)]))
                .observe(t.total.as_secs_f64());
        }
        self.record_details(o);
    }

    /// The families read from a check's details: latency, certificate, grade and DNS lookup.
    fn record_details(&self, o: &Outcome) {
        let (c, e) = (o.name.as_str(), o.environment.as_str());
        if let Some(lat) = o.details.latency() {
            let quantiles =
                [lat.p50_ms, lat.p90_ms, lat.p95_ms, lat.p99_ms, lat.p99_9_ms].map(|v| v / 1000.0);
            let count = lat.requests as f64;
            let sum = lat.mean_ms / 1000.0 * count;
            if let Ok(mut m) = self.latency.lock() {
                m.insert(
                    (c.to_string(), e.to_string()),
                    LatencySummary {
                        quantiles,
                        sum,
                        count,
                    },
                );
            }
        }
        let ce = l(&[("check", c), ("env", e)]);
        if let Some(tls) = o.details.tls() {
            self.cert_expiry
                .get_or_create(&ce)
                .set(tls.not_after as f64);
            if let Some(ts) = tls.chain_not_after {
                self.chain_expiry.get_or_create(&ce).set(ts as f64);
            }
            self.tls_version
                .get_or_create(&l(&[("check", c), ("env", e), ("version", &tls.version)]))
                .set(1.0);
        }
        if let Some(h) = o.details.headers() {
            self.security_score
                .get_or_create(&ce)
                .set(f64::from(h.score));
        }
        if let Some(d) = o.details.dns() {
            self.dns_lookup.get_or_create(&ce).set(d.lookup_ms / 1000.0);
        }
    }

    /// Sets whether a check's alert fires, by severity.
    pub(crate) fn set_firing(&self, check: &str, env: &str, severity: &str, firing: bool) {
        self.alert_firing
            .get_or_create(&l(&[
                ("check", check),
                ("env", env),
                ("severity", severity),
            ]))
            .set(f64::from(u8::from(firing)));
    }

    /// Removes every series of a check that is no longer configured.
    pub(crate) fn forget(
        &self,
        check: &str,
        env: &str,
        kind: &str,
        findings: &[String],
        tls_version: Option<&str>,
    ) {
        let ce = l(&[("check", check), ("env", env)]);
        let cek = l(&[("check", check), ("env", env), ("kind", kind)]);
        self.check_success.remove(&cek);
        self.check_duration.remove(&cek);
        for s in STATUSES {
            self.runs.remove(&l(&[
                ("check", check),
                ("env", env),
                ("kind", kind),
                ("status", s.as_str()),
            ]));
        }
        for f in findings {
            self.finding_status
                .remove(&l(&[("check", check), ("env", env), ("finding", f)]));
        }
        for p in PHASES {
            self.http_phase
                .remove(&l(&[("check", check), ("env", env), ("phase", p)]));
        }
        if let Ok(mut m) = self.latency.lock() {
            m.remove(&(check.to_string(), env.to_string()));
        }
        for sev in ["warning", "critical"] {
            self.alert_firing
                .remove(&l(&[("check", check), ("env", env), ("severity", sev)]));
        }
        if let Some(v) = tls_version {
            self.tls_version
                .remove(&l(&[("check", check), ("env", env), ("version", v)]));
        }
        self.request_duration.remove(&ce);
        self.cert_expiry.remove(&ce);
        self.chain_expiry.remove(&ce);
        self.security_score.remove(&ce);
        self.dns_lookup.remove(&ce);
    }

    /// The OpenMetrics exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an error here would be a bug in the encoder.
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        let summary = self.latency_text();
        match out.rfind("# EOF") {
            Some(i) => out.insert_str(i, &summary),
            None => out.push_str(&summary),
        }
        out
    }

    /// `shipwatch_latency_seconds{check,env,quantile}` as a summary family, with `_sum` and `_count`.
    fn latency_text(&self) -> String {
        let Ok(m) = self.latency.lock() else {
            return String::new();
        };
        let mut out = String::from(
            "# HELP shipwatch_latency_seconds Quantiles from the latest latency run.\n# TYPE shipwatch_latency_seconds summary\n",
        );
        let location = self
            .location
            .as_ref()
            .map_or(String::new(), |l| format!(",location=\"{}\"", escape(l)));
        for ((check, env), s) in m.iter() {
            let base = format!(
                "check=\"{}\",env=\"{}\"{location}",
                escape(check),
                escape(env)
            );
            for (q, v) in QUANTILES.iter().zip(s.quantiles) {
                out.push_str(&format!(
                    "shipwatch_latency_seconds{{{base},quantile=\"{q}\"}} {v}\n"
                ));
            }
            out.push_str(&format!(
                "shipwatch_latency_seconds_sum{{{base}}} {}\n",
                s.sum
            ));
            out.push_str(&format!(
                "shipwatch_latency_seconds_count{{{base}}} {}\n",
                s.count
            ));
        }
        out
    }
}

/// The OpenMetrics exposition rewritten as the Prometheus 0.0.4 text format, for scrapers and
/// tools that do not ask for OpenMetrics: counters are named with `_total` and `# EOF` goes.
pub(crate) fn to_prometheus_text(openmetrics: &str) -> String {
    // Only a few lines change, so find them and copy the rest in large slices.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut from = 0;
    while let Some(at) = openmetrics[from..].find(" counter\n").map(|i| from + i) {
        let line_start = openmetrics[..at].rfind('\n').map_or(0, |i| i + 1);
        if let Some(name) = openmetrics[line_start..at].strip_prefix("# TYPE ") {
            let help = format!("# HELP {name} ");
            if let Some(h) = openmetrics[..line_start].rfind(&help) {
                edits.push((h, h + help.len(), format!("# HELP {name}_total ")));
            }
            edits.push((line_start, at, format!("# TYPE {name}_total")));
        }
        from = at + 1;
    }
    if let Some(eof) = openmetrics
        .rfind("# EOF\n")
        .or_else(|| openmetrics.rfind("# EOF"))
    {
        let end = (eof + "# EOF\n".len()).min(openmetrics.len());
        edits.push((eof, end, String::new()));
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(openmetrics.len() + 64);
    let mut pos = 0;
    for (start, end, text) in edits {
        out.push_str(&openmetrics[pos..start]);
        out.push_str(&text);
        pos = end;
    }
    out.push_str(&openmetrics[pos..]);
    out
}

/// The families about checks: results, findings and timings.
fn register_checks(r: &mut Registry, m: &Metrics) {
    r.register(
        "check_success",
        "1 when the last run passed or warned, 0 when it failed or errored",
        m.check_success.clone(),
    );
    r.register(
        "check_duration_seconds",
        "Duration of the last run",
        m.check_duration.clone(),
    );
    r.register("check_runs", "Runs of each check by status", m.runs.clone());
    r.register(
        "finding_status",
        "Last status of each finding: 0 pass, 1 warn, 2 fail",
        m.finding_status.clone(),
    );
    r.register(
        "http_phase_seconds",
        "Phases of the last request: dns, connect, tls, ttfb, transfer",
        m.http_phase.clone(),
    );
    r.register(
        "request_duration_seconds",
        "Duration of each check's main request",
        m.request_duration.clone(),
    );
}

/// The families about certificates and headers.
fn register_tls_and_security(r: &mut Registry, m: &Metrics) {
    r.register(
        "tls_cert_expiry_timestamp_seconds",
        "Leaf certificate notAfter",
        m.cert_expiry.clone(),
    );
    r.register(
        "tls_chain_expiry_timestamp_seconds",
        "Earliest notAfter among the presented intermediates",
        m.chain_expiry.clone(),
    );
    r.register(
        "tls_version_info",
        "Negotiated TLS version",
        m.tls_version.clone(),
    );
    r.register(
        "security_score",
        "Observatory-style security header score",
        m.security_score.clone(),
    );
    r.register(
        "dns_lookup_seconds",
        "Duration of the last DNS query of a dns check",
        m.dns_lookup.clone(),
    );
}

/// The families about the agent's history database.
fn register_history(r: &mut Registry, m: &Metrics) {
    r.register(
        "history_up",
        "1 while the history database takes writes, 0 when it is unavailable (full or read-only disk)",
        m.history_up.clone(),
    );
    r.register(
        "history_write_errors",
        "Writes to the history database that failed",
        m.history_errors.clone(),
    );
    r.register(
        "history_dropped",
        "Runs not recorded in the history because its write queue was full",
        m.history_dropped.clone(),
    );
    r.register(
        "history_bytes",
        "Size of the history database",
        m.history_bytes.clone(),
    );
}

/// The families about alerts, notifications and the agent itself.
fn register_alerts_and_agent(r: &mut Registry, m: &Metrics) {
    r.register(
        "alert_firing",
        "1 while the check's alert fires",
        m.alert_firing.clone(),
    );
    r.register(
        "notifications",
        "Notifications by sink and outcome",
        m.notifications.clone(),
    );
    r.register(
        "notification_queue_depth",
        "Notifications waiting in the outbox",
        m.queue_depth.clone(),
    );
    r.register(
        "outbox_write_errors",
        "Writes of notifications or alert state to state_dir that failed (they are kept in memory and written again)",
        m.outbox_write_errors.clone(),
    );
    let build: Family<Labels, Gauge> = Family::default();
    build
        .get_or_create(&l(&[("version", env!("CARGO_PKG_VERSION"))]))
        .set(1);
    r.register("build_info", "The running shipwatch version", build);
    r.register(
        "config_last_reload_success",
        "1 when the last configuration load succeeded",
        m.reload_success.clone(),
    );
    r.register(
        "config_last_reload_timestamp_seconds",
        "When the configuration was last loaded",
        m.reload_timestamp.clone(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_with_total_and_drops_eof() {
        let om = "# HELP a_runs Runs.\n# TYPE a_runs counter\na_runs_total{x=\"1\"} 2\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_runs_total Runs.\n# TYPE a_runs_total counter\na_runs_total{x=\"1\"} 2\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n"
        );
        let m = Metrics::new();
        let err = crate::outcome::ProbeError {
            kind: "dns",
            message: "x".into(),
        };
        m.record(&Outcome::could_not_run("api", "http", "prod", err));
        let text = to_prometheus_text(&m.encode());
        assert!(text.contains("shipwatch_check_runs_total{check=\"api\",env=\"prod\",kind=\"http\",status=\"error\"} 1"));
        assert!(
            text.contains("# TYPE shipwatch_check_runs_total counter") && !text.contains("# EOF")
        );
    }
}
