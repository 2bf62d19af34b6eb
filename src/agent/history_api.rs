//! `GET /api/v1/history` and `GET /api/v1/incidents`: the agent's history as JSON, behind the
//! same optional auth as `/metrics` (the schemas are in `schema/`).

use std::sync::Arc;

use serde_json::{Value, json};

use super::State;
use super::history::{Hour, Incident, RunRow, now_ms};
use super::server::Query;

/// Ranges longer than this are answered with hourly roll-ups instead of every run.
const RAW_RANGE_S: i64 = 48 * 3600;
/// Runs returned at most.
const MAX_RUNS: usize = 10_000;

/// An answer: the HTTP status and its JSON body.
pub(super) type Answer = (u16, Value);

fn problem(status: u16, message: impl Into<String>) -> Answer {
    (status, json!({ "error": message.into() }))
}

fn at(ms: i64) -> String {
    crate::units::rfc3339((ms.max(0) / 1000) as u64)
}

fn run_json(r: &RunRow) -> Value {
    let mut v = json!({
        "at": at(r.at_ms),
        "status": r.status.as_str(),
        "duration_ms": r.duration_ms,
        "failing": r.failing,
    });
    if let Some(p) = r.p95 {
        v["p95_ms"] = p.into();
    }
    if let Some(d) = r.days_left {
        v["days_left"] = d.into();
    }
    if let Some(s) = r.score {
        v["score"] = s.into();
    }
    if let Some(g) = &r.grade {
        v["grade"] = g.as_str().into();
    }
    v
}

fn hour_json(h: &Hour) -> Value {
    let uptime = (h.runs > 0).then(|| (h.runs - h.failures) as f64 * 100.0 / h.runs as f64);
    json!({
        "at": at(h.hour_s * 1000),
        "runs": h.runs,
        "failures": h.failures,
        "uptime": uptime,
        "p50_ms": h.p50,
        "p95_ms": h.p95,
        "p99_ms": h.p99,
    })
}

/// The environment a check runs in when the request names none: its only one.
fn env_of(state: &State, check: &str) -> Result<String, Answer> {
    let latest = state
        .latest
        .read()
        .map_err(|_| problem(500, "state unavailable"))?;
    let envs: Vec<&str> = latest
        .keys()
        .filter(|k| &*k.check == check)
        .map(|k| &*k.env)
        .collect();
    match envs.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Ok(String::new()),
        many => Err(problem(
            400,
            format!(
                "check \"{check}\" runs in {}; add env=NAME",
                many.join(", ")
            ),
        )),
    }
}

/// `?check=NAME&env=ENV&since=24h`: the runs (or hourly roll-ups past 48 hours) and uptime.
pub(super) fn history(state: &Arc<State>, q: &Query) -> Answer {
    let Some(check) = q.get("check") else {
        return problem(400, "add check=NAME (and env=ENV when it runs in several)");
    };
    let env = match q.get("env") {
        Some(e) => e,
        None => match env_of(state, &check) {
            Ok(e) => e,
            Err(a) => return a,
        },
    };
    let since_text = q.get("since").unwrap_or_else(|| "24h".into());
    let since = match crate::units::parse_duration(&since_text) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => return problem(400, format!("since=\"{since_text}\": {e}")),
    };
    if let Some(why) = state.history.problem() {
        return problem(503, format!("history unavailable: {why}"));
    }
    let now = now_ms();
    let hourly = since > RAW_RANGE_S;
    let range = state
        .history
        .range(&check, &env, now - since * 1000, hourly, MAX_RUNS);
    let view = state.history.view(&check, &env, now);
    let ((runs, hours), view) = match (range, view) {
        (Ok(Some(r)), Ok(Some(v))) => (r, v),
        (Ok(None), _) | (_, Ok(None)) => {
            return problem(
                404,
                format!("no history for check \"{check}\" in \"{env}\""),
            );
        }
        (Err(e), _) | (_, Err(e)) => return problem(503, format!("history unavailable: {e}")),
    };
    let uptime: serde_json::Map<String, Value> = view
        .uptime
        .iter()
        .map(|(w, u)| (w.to_string(), u.percent().map_or(Value::Null, Into::into)))
        .collect();
    let mut v = json!({
        "check": check,
        "env": env,
        "since": at(now - since * 1000),
        "resolution": if hourly { "hour" } else { "run" },
        "uptime": uptime,
        "failing_since": view.failing_since.map(at),
    });
    if hourly {
        v["hours"] = hours.iter().map(hour_json).collect();
    } else {
        v["runs"] = runs.iter().map(run_json).collect();
    }
    (200, v)
}

fn incident_json(i: &Incident) -> Value {
    let end = i.resolved_at.unwrap_or(now_ms() / 1000);
    json!({
        "check": i.check,
        "env": i.env,
        "kind": i.kind,
        "severity": i.severity,
        "fired_at": at(i.fired_at * 1000),
        "resolved_at": i.resolved_at.map(|t| at(t * 1000)),
        "duration_s": (end - i.fired_at).max(0),
        "last_event": i.last_event,
        "last_event_at": at(i.last_event_at * 1000),
        "findings": i.findings,
    })
}

/// `?limit=N` (default 100, at most 1,000): each alert's firing and resolution, newest first.
pub(super) fn incidents(state: &Arc<State>, q: &Query) -> Answer {
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return problem(400, "limit must be a number from 1 to 1000"),
    };
    if let Some(why) = state.history.problem() {
        return problem(503, format!("history unavailable: {why}"));
    }
    match state.history.incidents(limit) {
        Ok(list) => (
            200,
            json!({ "incidents": list.iter().map(incident_json).collect::<Vec<_>>() }),
        ),
        Err(e) => problem(503, format!("history unavailable: {e}")),
    }
}
