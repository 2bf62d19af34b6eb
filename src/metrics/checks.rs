//! The per-check families, kept as plain values per check and written out at scrape time.
//!
//! A check has about twenty series (success, duration, runs by status, findings, phases, a
//! histogram, certificate dates, alert state). Kept as registry families, each series would hold
//! its own label strings, a hash-table slot and a shared counter: about 4 KiB per check. Here a
//! check's names are stored once and its values in one small struct (about 0.4 KiB), and the
//! label sets are built only while a scrape writes them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::outcome::{Outcome, Status};

/// The `phase` label values of `shipwatch_http_phase_seconds`, in the order the values are kept.
const PHASES: [&str; 5] = ["dns", "connect", "tls", "ttfb", "transfer"];
const STATUSES: [Status; 4] = [Status::Pass, Status::Warn, Status::Fail, Status::Error];
const SEVERITIES: [&str; 2] = ["warning", "critical"];
/// Upper bounds of `shipwatch_request_duration_seconds`: 10 ms to about 10 s in steps of e,
/// enough for a p95 panel with few lines per check.
const BUCKETS: [f64; 8] = [
    0.01,
    0.027_182_818,
    0.073_890_561,
    0.200_855_369,
    0.545_981_500,
    1.484_131_591,
    4.034_287_935,
    10.966_331_584,
];

/// Every check's values, by check name then environment.
#[derive(Debug, Default)]
pub(super) struct Checks {
    by_name: RwLock<BTreeMap<Arc<str>, ByEnv>>,
}

/// One check's values, by environment.
type ByEnv = BTreeMap<Arc<str>, Arc<Mutex<Values>>>;

/// A family with one value per check: name, help, and the value if the check has one.
type Simple = (&'static str, &'static str, fn(&Values) -> Option<f64>);

/// What one check in one environment exports.
#[derive(Debug)]
struct Values {
    kind: &'static str,
    success: bool,
    duration: f64,
    /// Runs by status (pass, warn, fail, error); a status never seen has no series.
    runs: [Option<u64>; 4],
    /// Finding id and its last status (0 pass, 1 warn, 2 fail), in the order first seen.
    findings: Vec<(Box<str>, u8)>,
    /// Warning, critical: 1 while firing. Always exported, so rules always have a series.
    firing: [bool; 2],
    phases: Option<[f64; 5]>,
    request: Option<Box<Histogram>>,
    cert_expiry: Option<f64>,
    chain_expiry: Option<f64>,
    tls_version: Option<Box<str>>,
    security_score: Option<f64>,
    dns_lookup: Option<f64>,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket, the last one above every bound (+Inf).
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Values {
    fn ran(&self) -> bool {
        self.runs.iter().any(Option::is_some)
    }

    fn new(kind: &'static str) -> Values {
        Values {
            kind,
            success: false,
            duration: 0.0,
            runs: [None; 4],
            findings: Vec::new(),
            firing: [false; 2],
            phases: None,
            request: None,
            cert_expiry: None,
            chain_expiry: None,
            tls_version: None,
            security_score: None,
            dns_lookup: None,
        }
    }

    fn record(&mut self, o: &Outcome) {
        self.success = matches!(o.status, Status::Pass | Status::Warn);
        self.duration = o.duration.as_secs_f64();
        let slot = STATUSES.iter().position(|s| *s == o.status).unwrap_or(3);
        self.runs[slot] = Some(self.runs[slot].unwrap_or(0) + 1);
        for f in &o.findings {
            let v = match f.status {
                Status::Pass => 0,
                Status::Warn => 1,
                _ => 2,
            };
            match self.findings.iter_mut().find(|(id, _)| **id == *f.id) {
                Some((_, old)) => *old = v,
                None => self.findings.push((f.id.as_str().into(), v)),
            }
        }
        if let Some(t) = o.timings {
            self.phases =
                Some([t.dns, t.connect, t.tls, t.ttfb, t.transfer].map(|d| d.as_secs_f64()));
            let total = t.total.as_secs_f64();
            let h = self.request.get_or_insert_with(Box::default);
            let bucket = BUCKETS
                .iter()
                .position(|b| total <= *b)
                .unwrap_or(BUCKETS.len());
            h.counts[bucket] += 1;
            h.sum += total;
            h.count += 1;
        }
        if let Some(tls) = o.details.tls() {
            self.cert_expiry = Some(tls.not_after as f64);
            self.chain_expiry = tls.chain_not_after.map(|t| t as f64).or(self.chain_expiry);
            if self.tls_version.as_deref() != Some(tls.version.as_str()) {
                self.tls_version = Some(tls.version.as_str().into());
            }
        }
        if let Some(h) = o.details.headers() {
            self.security_score = Some(f64::from(h.score));
        }
        if let Some(d) = o.details.dns() {
            self.dns_lookup = Some(d.lookup_ms / 1000.0);
        }
    }
}

impl Checks {
    /// The values of a check, created on its first run; a check whose kind changed starts afresh.
    fn values(&self, check: &str, env: &str, kind: &'static str) -> Option<Arc<Mutex<Values>>> {
        let held = self
            .by_name
            .read()
            .ok()?
            .get(check)
            .and_then(|envs| envs.get(env))
            .cloned();
        if let Some(v) = held.filter(|v| v.lock().is_ok_and(|v| v.kind == kind)) {
            return Some(v);
        }
        let fresh = Arc::new(Mutex::new(Values::new(kind)));
        let mut all = self.by_name.write().ok()?;
        let envs = match all.get_mut(check) {
            Some(envs) => envs,
            None => all.entry(Arc::from(check)).or_default(),
        };
        envs.insert(Arc::from(env), fresh.clone());
        Some(fresh)
    }

    pub fn record(&self, o: &Outcome) {
        if let Some(v) = self.values(&o.name, &o.environment, o.kind)
            && let Ok(mut v) = v.lock()
        {
            v.record(o);
        }
    }

    /// Sets the severity at which the alert of the check that produced `o` fires, if it does.
    pub fn set_firing(&self, o: &Outcome, severity: Option<&str>) {
        if let Some(v) = self.values(&o.name, &o.environment, o.kind)
            && let Ok(mut v) = v.lock()
        {
            v.firing = SEVERITIES.map(|s| Some(s) == severity);
        }
    }

    /// Takes a check that is no longer configured out of the exposition.
    pub fn forget(&self, check: &str, env: &str) {
        if let Ok(mut all) = self.by_name.write()
            && let Some(envs) = all.get_mut(check)
        {
            envs.remove(env);
            if envs.is_empty() {
                all.remove(check);
            }
        }
    }

    /// Calls `f` with each check's name, environment and values, in name order.
    fn each(&self, mut f: impl FnMut(&str, &str, &Values) -> std::fmt::Result) -> std::fmt::Result {
        let Ok(all) = self.by_name.read() else {
            return Ok(());
        };
        for (check, envs) in all.iter() {
            for (env, values) in envs {
                if let Ok(v) = values.lock() {
                    f(check, env, &v)?;
                }
            }
        }
        Ok(())
    }

    /// Writes one family: its descriptor, then `series` for every check, unless no check has one.
    fn family(
        &self,
        encoder: &mut DescriptorEncoder,
        (name, help, metric_type): (&str, &str, MetricType),
        has: impl Fn(&Values) -> bool,
        mut series: impl FnMut(
            &mut MetricEncoder,
            [(&'static str, &str); 2],
            &Values,
        ) -> std::fmt::Result,
    ) -> std::fmt::Result {
        let mut any = false;
        self.each(|_, _, v| {
            any |= has(v);
            Ok(())
        })?;
        if !any {
            return Ok(());
        }
        let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
        self.each(|check, env, v| {
            if has(v) {
                series(&mut metric, [("check", check), ("env", env)], v)?;
            }
            Ok(())
        })
    }
}

/// One series of a family, with the check's labels and one more pair, if any.
fn gauge(metric: &mut MetricEncoder, labels: impl EncodeLabelSet, value: f64) -> std::fmt::Result {
    metric.encode_family(&labels)?.encode_gauge(&value)
}

/// The check's labels and `more`, as one label set.
fn with<'a, const M: usize>(
    ce: [(&'static str, &'a str); 2],
    more: [(&'static str, &'a str); M],
) -> Vec<(&'static str, &'a str)> {
    ce.into_iter().chain(more).collect()
}

/// The check families: results, timings, details, then findings and alerts.
impl Collector for Checks {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let c = self;
        let e = &mut encoder;
        fn kind<'a>(ce: [(&'static str, &'a str); 2], v: &Values) -> Vec<(&'static str, &'a str)> {
            with(ce, [("kind", v.kind)])
        }
        c.family(
            e,
            (
                "check_success",
                "1 when the last run passed or warned, 0 when it failed or errored",
                MetricType::Gauge,
            ),
            Values::ran,
            |m, ce, v| gauge(m, kind(ce, v), f64::from(u8::from(v.success))),
        )?;
        c.family(
            e,
            (
                "check_duration_seconds",
                "Duration of the last run",
                MetricType::Gauge,
            ),
            Values::ran,
            |m, ce, v| gauge(m, kind(ce, v), v.duration),
        )?;
        c.family(
            e,
            (
                "check_runs",
                "Runs of each check by status",
                MetricType::Counter,
            ),
            Values::ran,
            |m, ce, v| {
                for (status, n) in STATUSES.iter().zip(v.runs) {
                    if let Some(n) = n {
                        let labels = with(ce, [("kind", v.kind), ("status", status.as_str())]);
                        m.encode_family(&labels)?
                            .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                    }
                }
                Ok(())
            },
        )?;
        encode_timings(c, e)?;
        encode_details(c, e)?;
        encode_states(c, e)
    }
}

/// The findings' last statuses and whether each alert fires.
fn encode_states(c: &Checks, e: &mut DescriptorEncoder) -> std::fmt::Result {
    c.family(
        e,
        (
            "finding_status",
            "Last status of each finding: 0 pass, 1 warn, 2 fail",
            MetricType::Gauge,
        ),
        |v| !v.findings.is_empty(),
        |m, ce, v| {
            for (id, s) in &v.findings {
                gauge(m, with(ce, [("finding", id)]), f64::from(*s))?;
            }
            Ok(())
        },
    )?;
    c.family(
        e,
        (
            "alert_firing",
            "1 while the check's alert fires",
            MetricType::Gauge,
        ),
        |_| true,
        |m, ce, v| {
            for (sev, firing) in SEVERITIES.iter().zip(v.firing) {
                gauge(
                    m,
                    with(ce, [("severity", sev)]),
                    f64::from(u8::from(firing)),
                )?;
            }
            Ok(())
        },
    )
}

fn encode_timings(c: &Checks, e: &mut DescriptorEncoder) -> std::fmt::Result {
    c.family(
        e,
        (
            "http_phase_seconds",
            "Phases of the last request: dns, connect, tls, ttfb, transfer",
            MetricType::Gauge,
        ),
        |v| v.phases.is_some(),
        |m, ce, v| {
            for (phase, d) in PHASES.iter().zip(v.phases.unwrap_or_default()) {
                gauge(m, with(ce, [("phase", phase)]), d)?;
            }
            Ok(())
        },
    )?;
    c.family(
        e,
        (
            "request_duration_seconds",
            "Duration of each check's main request",
            MetricType::Histogram,
        ),
        |v| v.request.is_some(),
        |m, ce, v| {
            let Some(h) = &v.request else {
                return Ok(());
            };
            let buckets: Vec<(f64, u64)> = BUCKETS
                .iter()
                .copied()
                .chain([f64::MAX])
                .zip(h.counts)
                .collect();
            m.encode_family(&ce)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)
        },
    )
}

/// The families read from a check's details: certificate, grade and DNS lookup.
fn encode_details(c: &Checks, e: &mut DescriptorEncoder) -> std::fmt::Result {
    let simple: [Simple; 4] = [
        (
            "tls_cert_expiry_timestamp_seconds",
            "Leaf certificate notAfter",
            |v| v.cert_expiry,
        ),
        (
            "tls_chain_expiry_timestamp_seconds",
            "Earliest notAfter among the presented intermediates",
            |v| v.chain_expiry,
        ),
        (
            "security_score",
            "Observatory-style security header score",
            |v| v.security_score,
        ),
        (
            "dns_lookup_seconds",
            "Duration of the last DNS query of a dns check",
            |v| v.dns_lookup,
        ),
    ];
    for (name, help, value) in simple {
        c.family(
            e,
            (name, help, MetricType::Gauge),
            |v| value(v).is_some(),
            |m, ce, v| gauge(m, ce, value(v).unwrap_or_default()),
        )?;
    }
    c.family(
        e,
        (
            "tls_version_info",
            "Negotiated TLS version",
            MetricType::Gauge,
        ),
        |v| v.tls_version.is_some(),
        |m, ce, v| {
            let version = v.tls_version.as_deref().unwrap_or_default();
            gauge(m, with(ce, [("version", version)]), 1.0)
        },
    )
}
