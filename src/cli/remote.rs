//! `check --remote URL`: asking a running agent to run its checks now, and reporting its answer
//! like a local run.

use std::time::Duration;

use url::Url;

use super::{CheckArgs, EXIT_FAIL, Io, emit, usage};
use crate::net::Engine;
use crate::report::Report;

/// Why a remote run gave no report: a mistake of the caller (exit 2) or a failure on the way (1).
enum Refused {
    Usage(String),
    Failed(String),
}

/// `check --remote URL`: asks a running agent to run now, and reports its answer as usual.
pub(super) async fn remote(base: &str, args: &CheckArgs, io: &mut Io<'_>) -> i32 {
    match ask(base, args, io).await {
        Ok(body) => emit(&report_of(base, &body), args, io),
        Err(Refused::Usage(e)) => usage(io, e),
        Err(Refused::Failed(e)) => {
            let _ = writeln!(io.err, "error: {e}");
            EXIT_FAIL
        }
    }
}

/// `URL/api/v1/run`, with `--only` and `--env` as the query.
fn run_url(base: &str, args: &CheckArgs) -> Result<Url, Refused> {
    let mut url = Url::parse(base)
        .and_then(|u| u.join("/api/v1/run"))
        .map_err(|e| Refused::Usage(format!("invalid --remote URL \"{base}\": {e}")))?;
    if let Some(check) = args.only.first() {
        url.query_pairs_mut().append_pair("check", check);
    }
    if let Some(env) = &args.env {
        url.query_pairs_mut().append_pair("env", env);
    }
    Ok(url)
}

/// POSTs the run and returns the agent's JSON report.
async fn ask(base: &str, args: &CheckArgs, io: &Io<'_>) -> Result<serde_json::Value, Refused> {
    let token = (io.getenv)(&args.token_env).ok_or_else(|| {
        Refused::Usage(format!(
            "--remote needs the agent's API token in the environment variable {}",
            args.token_env
        ))
    })?;
    let url = run_url(base, args)?;
    let engine = Engine::new(&crate::net::EngineOptions {
        ca_file: args.ca_file.clone(),
        nameservers: Vec::new(),
    })
    .map_err(|e| Refused::Usage(e.to_string()))?;
    let mut req = crate::net::Request::get(url.clone());
    req.method = http::Method::POST;
    req.headers
        .push(("Authorization".into(), format!("Bearer {token}")));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let resp = engine
        .send(&req, &crate::net::Overrides::default(), deadline)
        .await
        .map_err(|e| Refused::Failed(format!("cannot reach the agent at {url}: {e}")))?;
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
    let why = body["error"].as_str().unwrap_or("");
    match resp.status {
        200 => Ok(body),
        401 | 403 | 404 => Err(Refused::Usage(format!(
            "the agent refused: {} {why}",
            resp.status
        ))),
        s => Err(Refused::Failed(format!("the agent answered {s}: {why}"))),
    }
}

/// The agent's answer as a report, its target saying which agent ran it.
fn report_of(base: &str, body: &serde_json::Value) -> Report {
    let checks = body["checks"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(crate::report::outcome_from_json)
                .collect()
        })
        .unwrap_or_default();
    let started_at = body["started_at"]
        .as_str()
        .and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        })
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    Report {
        environment: body["environment"].as_str().unwrap_or("").to_string(),
        target: match body["target"].as_str().filter(|t| !t.is_empty()) {
            Some(t) => format!("{t} (via {base})"),
            None => base.to_string(),
        },
        started_at,
        duration: Duration::from_secs_f64(body["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0),
        checks,
    }
}
