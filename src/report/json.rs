//! The JSON report: a stable, versioned schema (`schema/report.schema.json`).

use serde_json::{Value, json};

use super::{Report, ms};
use crate::net::Timings;
use crate::runner::Outcome;

/// The schema version; bump it only with a breaking change.
pub const VERSION: u32 = 1;

/// The report as a JSON value following the documented schema.
pub fn to_json(r: &Report) -> Value {
    json!({
        "version": VERSION,
        "environment": r.environment,
        "target": r.target,
        "started_at": r.started_rfc3339(),
        "duration_ms": ms(r.duration),
        "status": r.status(),
        "summary": r.summary(),
        "checks": r.checks.iter().map(check).collect::<Vec<_>>(),
    })
}

/// One check in the report's schema; also what the agent's status API serves.
pub fn check(c: &Outcome) -> Value {
    json!({
        "name": c.name,
        "kind": c.kind,
        "status": c.status,
        "duration_ms": ms(c.duration),
        "error": c.error,
        "timings": c.timings.as_ref().map(timings),
        "findings": c.findings,
        "details": c.details,
        "attempts": c.attempts,
    })
}

fn timings(t: &Timings) -> Value {
    json!({
        "dns_ms": ms(t.dns),
        "connect_ms": ms(t.connect),
        "tls_ms": ms(t.tls),
        "ttfb_ms": ms(t.ttfb),
        "transfer_ms": ms(t.transfer),
        "total_ms": ms(t.total),
    })
}
