//! What a check produced, at the bottom of the crate so every layer above can read it without
//! reaching into the others: [`Status`], [`Finding`], [`ProbeError`], [`Probed`] (a probe's
//! result) and [`Outcome`] (a check's result, with its attempts).

use std::time::Duration;

use serde::Serialize;

mod details;

pub use details::*;

use crate::assert::Redactor;
use crate::net::{NetError, Timings};

/// Every check kind this build knows, in the order the docs list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Http,
    Page,
    Redirect,
    Tls,
    Headers,
    Cors,
    Exposure,
    Flow,
    Latency,
    Dns,
    Tcp,
    Grpc,
    WebSocket,
}

impl Kind {
    pub(crate) const ALL: [Kind; 13] = [
        Kind::Http,
        Kind::Page,
        Kind::Redirect,
        Kind::Tls,
        Kind::Headers,
        Kind::Cors,
        Kind::Exposure,
        Kind::Flow,
        Kind::Latency,
        Kind::Dns,
        Kind::Tcp,
        Kind::Grpc,
        Kind::WebSocket,
    ];

    /// The name written as `kind = "…"`, shown in reports and used as a metric label.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Page => "page",
            Kind::Redirect => "redirect",
            Kind::Tls => "tls",
            Kind::Headers => "headers",
            Kind::Cors => "cors",
            Kind::Exposure => "exposure",
            Kind::Flow => "flow",
            Kind::Latency => "latency",
            Kind::Dns => "dns",
            Kind::Tcp => "tcp",
            Kind::Grpc => "grpc",
            Kind::WebSocket => "websocket",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The status of a finding or a check. `Error` only applies to checks: it means "could not run".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// One judged fact about the target, with a stable id that dashboards and scripts key on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: String,
    pub status: Status,
    pub message: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

impl Finding {
    pub fn new(id: impl Into<String>, status: Status, message: impl Into<String>) -> Finding {
        Finding {
            id: id.into(),
            status,
            message: message.into(),
            expected: None,
            actual: None,
        }
    }

    /// A finding that passes when `ok`, and otherwise fails with `bad`'s status.
    pub(crate) fn judge(id: &str, ok: bool, bad: Status, message: impl Into<String>) -> Finding {
        Finding::new(id, if ok { Status::Pass } else { bad }, message)
    }

    /// The finding with what was expected and what was found, for reports and alerts.
    pub(crate) fn with_values(
        mut self,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Finding {
        self.expected = Some(expected.into());
        self.actual = Some(actual.into());
        self
    }
}

/// Why a check could not run at all. `kind` is one fixed word, safe as a metric label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeError {
    pub kind: &'static str,
    pub message: String,
}

impl From<NetError> for ProbeError {
    fn from(e: NetError) -> Self {
        ProbeError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// What one run of a probe produced.
#[derive(Debug, Clone, Default)]
pub struct Probed {
    pub findings: Vec<Finding>,
    pub timings: Option<Timings>,
    pub error: Option<ProbeError>,
    /// Facts worth showing that are not judgements, such as a certificate's subject.
    pub details: Details,
    /// Values learnt during the run (a flow's captures) that must be hidden like secrets.
    pub redact: Vec<String>,
}

impl Probed {
    pub(crate) fn failed(e: impl Into<ProbeError>) -> Probed {
        Probed {
            error: Some(e.into()),
            ..Probed::default()
        }
    }
}

/// One earlier try of a check under `--wait`, kept so the report shows every attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub number: u32,
    pub status: Status,
    /// Seconds since the run started.
    pub at_s: f64,
    pub summary: String,
}

/// The result of one check: what the report, metrics and alerts are built from.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub kind: &'static str,
    pub environment: String,
    pub status: Status,
    pub duration: Duration,
    pub error: Option<ProbeError>,
    pub timings: Option<Timings>,
    pub findings: Vec<Finding>,
    pub details: Details,
    /// Every attempt including the last; one entry unless `--wait` retried.
    pub attempts: Vec<Attempt>,
}

impl Outcome {
    /// The check's status follows from its findings: any fail fails it, any warn warns it.
    pub(crate) fn from_probed(
        name: &str,
        kind: &'static str,
        env: &str,
        p: Probed,
        duration: Duration,
    ) -> Outcome {
        let mut p = p;
        // The agent keeps the latest outcome of every check: no spare capacity in it.
        p.findings.shrink_to_fit();
        let status = if p.error.is_some() {
            Status::Error
        } else {
            p.findings
                .iter()
                .map(|f| f.status)
                .max()
                .unwrap_or(Status::Pass)
        };
        Outcome {
            name: name.to_string(),
            kind,
            environment: env.to_string(),
            status,
            duration,
            error: p.error,
            timings: p.timings,
            findings: p.findings,
            details: p.details,
            attempts: Vec::new(),
        }
    }

    /// An outcome for a check that could not run at all.
    pub fn could_not_run(name: &str, kind: &'static str, env: &str, error: ProbeError) -> Outcome {
        Outcome {
            name: name.to_string(),
            kind,
            environment: env.to_string(),
            status: Status::Error,
            duration: Duration::ZERO,
            error: Some(error),
            timings: None,
            findings: Vec::new(),
            details: Details::None,
            attempts: Vec::new(),
        }
    }

    /// One line on why the check did not pass, for attempt histories and summaries.
    pub fn summary(&self) -> String {
        if let Some(e) = &self.error {
            return format!("{}: {}", e.kind, e.message);
        }
        let bad: Vec<&str> = self
            .findings
            .iter()
            .filter(|f| f.status >= Status::Warn)
            .map(|f| f.id.as_str())
            .collect();
        if bad.is_empty() {
            "all findings pass".into()
        } else {
            bad.join(", ")
        }
    }

    /// Replaces every secret or captured value in every text field.
    pub fn redact(&mut self, r: &Redactor) {
        if r.is_empty() {
            return;
        }
        if let Some(e) = &mut self.error {
            r.scrub(&mut e.message);
        }
        for f in &mut self.findings {
            r.scrub(&mut f.message);
            f.expected
                .iter_mut()
                .chain(f.actual.iter_mut())
                .for_each(|s| r.scrub(s));
        }
        self.details.redact(r);
        for a in &mut self.attempts {
            r.scrub(&mut a.summary);
        }
    }
}
