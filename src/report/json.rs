//! The JSON report: a stable, versioned schema (`schema/report.schema.json`).

use serde_json::{Value, json};

use super::{Report, ms};
use crate::net::Timings;
use crate::outcome::Outcome;

/// The schema version; bump it only with a breaking change.
pub(crate) const VERSION: u32 = 1;

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
    let mut v = json!({
        "name": c.name,
        "kind": c.kind,
        "status": c.status,
        "duration_ms": ms(c.duration),
        "error": c.error,
        "timings": c.timings.as_ref().map(timings),
        "findings": c.findings,
        "details": c.details,
        "attempts": c.attempts,
    });
    if !c.environment.is_empty() {
        v["environment"] = c.environment.clone().into();
    }
    v
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

fn status_of(v: &Value) -> Option<crate::outcome::Status> {
    use crate::outcome::Status;
    Some(match v.as_str()? {
        "pass" => Status::Pass,
        "warn" => Status::Warn,
        "fail" => Status::Fail,
        "error" => Status::Error,
        _ => return None,
    })
}

fn duration_ms(v: &Value) -> std::time::Duration {
    std::time::Duration::from_secs_f64(v.as_f64().unwrap_or(0.0).max(0.0) / 1000.0)
}

/// Reads one check of a JSON report back, as `check --remote` does with an agent's answer.
pub fn outcome_from_json(v: &Value) -> Option<Outcome> {
    use crate::outcome::{Finding, ProbeError};
    let known = crate::outcome::Kind::from_name(v["kind"].as_str()?)?;
    let kind = known.name();
    let error = v["error"].as_object().map(|e| ProbeError {
        kind: crate::net::NetError::KINDS
            .into_iter()
            .find(|k| Some(*k) == e.get("kind").and_then(Value::as_str))
            .unwrap_or("protocol"),
        message: e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    });
    let findings = v["findings"]
        .as_array()?
        .iter()
        .filter_map(|f| {
            Some(Finding {
                id: f["id"].as_str()?.to_string(),
                status: status_of(&f["status"])?,
                message: f["message"].as_str().unwrap_or("").to_string(),
                expected: f["expected"].as_str().map(str::to_string),
                actual: f["actual"].as_str().map(str::to_string),
            })
        })
        .collect();
    let t = &v["timings"];
    let timings = t.is_object().then(|| Timings {
        dns: duration_ms(&t["dns_ms"]),
        connect: duration_ms(&t["connect_ms"]),
        tls: duration_ms(&t["tls_ms"]),
        ttfb: duration_ms(&t["ttfb_ms"]),
        transfer: duration_ms(&t["transfer_ms"]),
        total: duration_ms(&t["total_ms"]),
    });
    let details = crate::outcome::Details::from_json(known, &v["details"]);
    Some(Outcome {
        name: v["name"].as_str()?.to_string(),
        kind,
        environment: v["environment"].as_str().unwrap_or("").to_string(),
        status: status_of(&v["status"])?,
        duration: duration_ms(&v["duration_ms"]),
        error,
        timings,
        findings,
        details,
        attempts: v["attempts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|a| {
                        Some(crate::outcome::Attempt {
                            number: u32::try_from(a["number"].as_u64()?).ok()?,
                            status: status_of(&a["status"])?,
                            at_s: a["at_s"].as_f64().unwrap_or(0.0),
                            summary: a["summary"].as_str().unwrap_or("").to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}
