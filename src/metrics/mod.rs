//! The Prometheus metrics: every family in DESIGN.md, bounded labels, OpenMetrics text.

mod checks;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::outcome::Outcome;

/// Label names are fixed words; values are shared strings.
type Labels = Vec<(&'static str, Arc<str>)>;

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

/// The registry and its families. Passed in, never global.
/// The `outcome` label values of `shipwatch_notifications_total`.
pub(crate) const NOTIFICATION_OUTCOMES: [&str; 5] =
    ["sent", "failed", "rejected", "expired", "dropped"];

pub struct Metrics {
    registry: Registry,
    /// The latest latency run of each check, written as a summary (prometheus-client has no summary type).
    latency: std::sync::Mutex<std::collections::BTreeMap<(String, String), LatencySummary>>,
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
    /// Every check's own series.
    checks: Arc<checks::Checks>,
}

fn l(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, Arc::from(*v))).collect()
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
            latency: Default::default(),
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
            checks: Arc::default(),
        };
        r.register_collector(Box::new(m.checks.clone()));
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
        self.checks.record(o);
        if let Some(lat) = o.details.latency() {
            let quantiles =
                [lat.p50_ms, lat.p90_ms, lat.p95_ms, lat.p99_ms, lat.p99_9_ms].map(|v| v / 1000.0);
            let count = lat.requests as f64;
            let sum = lat.mean_ms / 1000.0 * count;
            if let Ok(mut latest) = self.latency.lock() {
                latest.insert(
                    (o.name.clone(), o.environment.clone()),
                    LatencySummary {
                        quantiles,
                        sum,
                        count,
                    },
                );
            }
        }
    }

    /// Sets the severity at which a check's alert fires, if it does (the other shows 0).
    pub(crate) fn set_firing(&self, o: &Outcome, severity: Option<&str>) {
        self.checks.set_firing(o, severity);
    }

    /// Counts `n` notifications of a sink by outcome.
    pub(crate) fn count_notifications(&self, sink: &str, outcome: &str, n: u64) {
        self.notifications
            .get_or_create(&l(&[("sink", sink), ("outcome", outcome)]))
            .inc_by(n);
    }

    /// Removes every series of a check that is no longer configured.
    pub(crate) fn forget(&self, check: &str, env: &str) {
        self.checks.forget(check, env);
        if let Ok(mut m) = self.latency.lock() {
            m.remove(&(check.to_string(), env.to_string()));
        }
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
