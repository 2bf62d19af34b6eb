//! The agent's HTTP server: `/metrics`, `/healthz`, `/readyz`, `/api/v1/status`, `/api/v1/run`
//! and the status page at `/`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use super::scheduler::Key;
use super::{State, page};
use crate::report::{Report, to_json};

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 256;
/// A client has this long to send a request head (and to finish a TLS handshake).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How `/metrics` is protected, when it is.
#[derive(Debug, Clone)]
pub enum MetricsAuth {
    Bearer(String),
    Basic(String, String),
}

type Resp = http::Response<Full<Bytes>>;

fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = http::Response::new(Full::new(body.into()));
    *r.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

fn json_resp(status: u16, v: &serde_json::Value) -> Resp {
    respond(
        status,
        "application/json",
        serde_json::to_vec_pretty(v).unwrap_or_default(),
    )
}

/// Compares secrets without stopping at the first differing byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn bearer(req: &http::Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn authorized(req: &http::Request<Incoming>, auth: Option<&MetricsAuth>) -> bool {
    match auth {
        None => true,
        Some(MetricsAuth::Bearer(t)) => bearer(req).is_some_and(|got| same(got, t)),
        Some(MetricsAuth::Basic(user, pass)) => {
            let want = crate::assert::base64(format!("{user}:{pass}").as_bytes());
            req.headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .is_some_and(|got| same(got, &want))
        }
    }
}

fn query(req: &http::Request<Incoming>, name: &str) -> Option<String> {
    Query::of(req).get(name)
}

async fn route(req: http::Request<Incoming>, state: Arc<State>) -> Result<Resp, Infallible> {
    let loaded = match state.loaded.read() {
        Ok(l) => l.clone(),
        Err(_) => return Ok(respond(500, "text/plain", "state unavailable")),
    };
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    if method == http::Method::POST && path == "/api/v1/gate" {
        return Ok(gate(req, &state, loaded.api_token.as_deref()).await);
    }
    let resp = match (method.as_str(), path.as_str()) {
        ("GET", "/metrics") if !authorized(&req, loaded.metrics_auth.as_ref()) => unauthorized(),
        ("GET", "/metrics") => metrics(&req, &state).await,
        ("GET", "/healthz") => respond(200, "text/plain", "ok\n"),
        ("GET", "/readyz") if state.alerting.storage_problem().is_some() => respond(
            503,
            "text/plain",
            format!(
                "not ready: {}; notifications are held in memory until it can be written\n",
                state.alerting.storage_problem().unwrap_or_default()
            ),
        ),
        ("GET", "/readyz") if state.ready.load(Ordering::SeqCst) => {
            respond(200, "text/plain", "ready\n")
        }
        ("GET", "/readyz") => respond(
            503,
            "text/plain",
            "the first round of checks is still running\n",
        ),
        ("GET", "/api/v1/status") => json_resp(200, &status_json(&state)),
        ("GET", "/api/v1/history" | "/api/v1/incidents")
            if !authorized(&req, loaded.metrics_auth.as_ref()) =>
        {
            unauthorized()
        }
        ("GET", path @ ("/api/v1/history" | "/api/v1/incidents")) => {
            history_answer(&req, &state, path == "/api/v1/history").await
        }
        ("GET", "/") => status_page(&req, &state).await,
        ("POST", "/api/v1/run") => run_now(&req, &state, loaded.api_token.as_deref()).await,
        ("POST", "/api/v1/deploy") => deploy(&req, &state, loaded.api_token.as_deref()),
        ("GET", "/api/v1/compare") => compare_json(&state),
        (
            _,
            "/metrics" | "/healthz" | "/readyz" | "/api/v1/status" | "/" | "/api/v1/run"
            | "/api/v1/deploy" | "/api/v1/compare" | "/api/v1/history" | "/api/v1/incidents"
            | "/api/v1/gate",
        ) => respond(405, "text/plain", "method not allowed\n"),
        _ => respond(404, "text/plain", "not found\n"),
    };
    Ok(resp)
}

fn unauthorized() -> Resp {
    let mut r = respond(401, "text/plain", "unauthorized\n");
    r.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Basic realm=\"shipwatch\""),
    );
    r
}

/// A request's query string, parsed once.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    fn of(req: &http::Request<Incoming>) -> Query {
        let text = req.uri().query().unwrap_or("");
        Query(
            url::form_urlencoded::parse(text.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Runs `f` with the request's query on a blocking thread, so database reads and page rendering
/// stay off the async workers. `None` if it panicked.
async fn blocking<T: Send + 'static>(
    req: &http::Request<Incoming>,
    state: &Arc<State>,
    f: impl FnOnce(&Arc<State>, &Query) -> T + Send + 'static,
) -> Option<T> {
    let (q, state) = (Query::of(req), state.clone());
    tokio::task::spawn_blocking(move || f(&state, &q))
        .await
        .ok()
}

/// The history API.
async fn history_answer(req: &http::Request<Incoming>, state: &Arc<State>, runs: bool) -> Resp {
    let answer = blocking(req, state, move |state, q| {
        if runs {
            super::history_api::history(state, q)
        } else {
            super::history_api::incidents(state, q)
        }
    });
    match answer.await {
        Some((status, body)) => json_resp(status, &body),
        None => respond(500, "text/plain", "the history query failed\n"),
    }
}

/// The status page, filtered by `env` and `status`. It refreshes itself every 30 s: a browser
/// may reuse it for 25 s, shared caches never keep it.
async fn status_page(req: &http::Request<Incoming>, state: &Arc<State>) -> Resp {
    let html = blocking(req, state, |state, q| {
        let filter = page::Filter {
            env: q.get("env").filter(|e| !e.is_empty()),
            status: q.get("status").filter(|s| !s.is_empty()),
        };
        page::render(state, &filter)
    })
    .await
    .unwrap_or_else(|| "<!doctype html><p>the status page failed to render</p>".into());
    let mut r = respond(200, "text/html; charset=utf-8", html);
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("private, max-age=25"),
    );
    r
}

/// OpenMetrics for scrapers that ask for it (Prometheus does), the 0.0.4 text format otherwise.
/// Written on a blocking thread: with thousands of checks it takes a while, and the checks'
/// timings must not wait for it.
async fn metrics(req: &http::Request<Incoming>, state: &Arc<State>) -> Resp {
    let openmetrics = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let body = blocking(req, state, move |state, _| {
        let body = state.metrics.encode();
        if openmetrics {
            body
        } else {
            crate::metrics::to_prometheus_text(&body)
        }
    })
    .await;
    match (body, openmetrics) {
        (Some(body), true) => respond(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body,
        ),
        (Some(body), false) => respond(200, "text/plain; version=0.0.4; charset=utf-8", body),
        (None, _) => respond(500, "text/plain", "the metrics could not be written\n"),
    }
}

/// The latest outcome of every check, as a JSON report (each check carries its environment).
fn status_json(state: &State) -> serde_json::Value {
    let checks: Vec<_> = state
        .latest
        .read()
        .map(|l| {
            l.values()
                .map(|o| crate::runner::Outcome::clone(o))
                .collect()
        })
        .unwrap_or_default();
    let started_at = time::OffsetDateTime::from(state.started);
    let (environment, target) = header(state, &checks);
    let report = Report {
        environment,
        target,
        started_at,
        duration: std::time::Duration::ZERO,
        checks,
    };
    let mut v = report_json(&report);
    v["ready"] = state.ready.load(Ordering::SeqCst).into();
    v
}

/// A report's environment and target when its checks come from the agent: the environments they
/// ran in, and those environments' targets.
fn header(state: &State, checks: &[crate::outcome::Outcome]) -> (String, String) {
    let envs: std::collections::BTreeSet<&str> =
        checks.iter().map(|c| c.environment.as_str()).collect();
    let targets: Vec<String> = state
        .loaded
        .read()
        .map(|l| {
            let mut t: Vec<String> = envs
                .iter()
                .filter_map(|e| l.envs.get(*e).map(|r| r.plan.target.clone()))
                .filter(|t| !t.is_empty())
                .collect();
            t.dedup();
            t
        })
        .unwrap_or_default();
    let names: Vec<&str> = envs.into_iter().collect();
    (names.join(", "), targets.join(", "))
}

/// A report whose checks say which environment they ran in.
fn report_json(report: &Report) -> serde_json::Value {
    let mut v = to_json(report);
    if let Some(checks) = v["checks"].as_array_mut() {
        for (c, o) in checks.iter_mut().zip(&report.checks) {
            c["environment"] = o.environment.clone().into();
        }
    }
    v
}

/// `POST /api/v1/run[?check=NAME][&env=NAME]`: runs the matching checks now and answers with the
/// JSON report. A deploy pipeline calls this right after a rollout.
/// The API's token check: `None` when the caller may go on, else the answer to give.
fn refuse(req: &http::Request<Incoming>, token: Option<&str>) -> Option<Resp> {
    let Some(token) = token else {
        return Some(json_resp(
            403,
            &json!({"error": "the run API is off: set [agent].api_token"}),
        ));
    };
    (!bearer(req).is_some_and(|got| same(got, token)))
        .then(|| json_resp(401, &json!({"error": "a valid bearer token is required"})))
}

/// `POST /api/v1/deploy`: a pipeline says "a deploy starts now"; the current state becomes the
/// baseline of `GET /api/v1/compare`.
fn deploy(req: &http::Request<Incoming>, state: &Arc<State>, token: Option<&str>) -> Resp {
    if let Some(refused) = refuse(req, token) {
        return refused;
    }
    let n = state.mark_deploy();
    json_resp(202, &json!({"marked": n}))
}

/// `GET /api/v1/compare`: the current state against the one before the last deploy marker or
/// reload, with the `regress.*` findings; `worse` says whether any of them fails.
fn compare_json(state: &State) -> Resp {
    let Some(before) = state.before_deploy.read().ok().and_then(|b| b.clone()) else {
        return json_resp(
            404,
            &json!({"error": "nothing to compare with yet: POST /api/v1/deploy before a deploy (a reload counts too)"}),
        );
    };
    let checks: Vec<_> = state
        .latest
        .read()
        .map(|l| {
            l.values()
                .map(|o| crate::runner::Outcome::clone(o))
                .collect()
        })
        .unwrap_or_default();
    let (environment, target) = header(state, &checks);
    let mut report = Report {
        environment,
        target,
        started_at: time::OffsetDateTime::now_utc(),
        duration: std::time::Duration::ZERO,
        checks,
    };
    let thresholds = state
        .loaded
        .read()
        .ok()
        .and_then(|l| l.envs.values().next().map(|e| e.plan.compare))
        .unwrap_or_default();
    let baseline = crate::compare::Baseline {
        target: String::new(),
        checks: before,
    };
    baseline.judge(&mut report, &thresholds);
    let worse = crate::compare::worse(&report);
    let mut v = report_json(&report);
    v["worse"] = worse.into();
    json_resp(200, &v)
}

async fn run_now(req: &http::Request<Incoming>, state: &Arc<State>, token: Option<&str>) -> Resp {
    if let Some(refused) = refuse(req, token) {
        return refused;
    }
    let (check, env) = (query(req, "check"), query(req, "env"));
    let keys: Vec<Key> = state
        .loaded
        .read()
        .map(|l| {
            l.jobs
                .keys()
                .filter(|k| {
                    check.as_ref().is_none_or(|c| &*k.check == c.as_str())
                        && env.as_ref().is_none_or(|e| &*k.env == e.as_str())
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() {
        return json_resp(404, &json!({"error": "no configured check matches"}));
    }
    match run_keys(state, &keys, env).await {
        Ok(report) => json_resp(200, &report_json(&report)),
        Err(busy) => busy,
    }
}

/// Runs `keys` now, through the agent's concurrency bound and the run API's rate limit.
pub(super) async fn run_keys(
    state: &Arc<State>,
    keys: &[Key],
    env: Option<String>,
) -> Result<Report, Resp> {
    let started_at = time::OffsetDateTime::now_utc();
    let clock = std::time::Instant::now();
    let per_minute = state
        .loaded
        .read()
        .map_or(60, |l| l.agent.api_runs_per_minute);
    let checks = match super::runs::OnDemand::run(state, keys, per_minute).await {
        Ok(c) => c,
        Err(wait) => {
            let secs = wait.as_secs().max(1);
            let mut r = json_resp(
                429,
                &json!({"error": format!("more than {per_minute} runs a minute asked for; try again in {secs} s")}),
            );
            if let Ok(v) = http::HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            return Err(r);
        }
    };
    let (environment, target) = header(state, &checks);
    Ok(Report {
        environment: env.unwrap_or(environment),
        target,
        started_at,
        duration: clock.elapsed(),
        checks,
    })
}

/// `POST /api/v1/gate`: a rollout gate for Flagger's webhooks and Argo Rollouts' `web` metric.
/// The API token comes as a bearer token or, since Flagger's webhooks send no headers, as
/// `metadata.token`.
async fn gate(req: http::Request<Incoming>, state: &Arc<State>, token: Option<&str>) -> Resp {
    let Some(token) = token else {
        return json_resp(
            403,
            &json!({"error": "the run API is off: set [agent].api_token"}),
        );
    };
    let always_200 = query(&req, "verdict").as_deref() == Some("body");
    let bearer_ok = bearer(&req).is_some_and(|got| same(got, token));
    let body = match read_body(req.into_body(), 64 << 10).await {
        Ok(b) => b,
        Err(why) => return json_resp(400, &json!({ "error": why })),
    };
    let keys = match super::gate::keys(state, &body, |got| bearer_ok || same(got, token)) {
        Ok(k) => k,
        Err((status, why)) => return json_resp(status, &json!({ "error": why })),
    };
    let env = keys.first().map(|k| k.env.to_string());
    let report = match run_keys(state, &keys, env).await {
        Ok(r) => r,
        Err(busy) => return busy,
    };
    let passed = matches!(
        report.status(),
        crate::outcome::Status::Pass | crate::outcome::Status::Warn
    );
    // Flagger halts the rollout on any non-2xx answer; Argo's `web` provider reads the body.
    let status = if passed || always_200 { 200 } else { 412 };
    json_resp(status, &report_json(&report))
}

/// A request body, at most `cap` bytes.
async fn read_body(body: Incoming, cap: usize) -> Result<Bytes, String> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, cap);
    match tokio::time::timeout(std::time::Duration::from_secs(10), limited.collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) => Err(format!(
            "the request body could not be read (at most {cap} bytes): {e}"
        )),
        Err(_) => Err("the request body did not arrive within 10 s".into()),
    }
}

/// Serves until the task is aborted; TLS when a certificate and key are configured.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = Duration::from_millis(5);
    loop {
        // At the cap, new connections wait in the listen backlog until one closes.
        let Ok(permit) = connections.clone().acquire_owned().await else {
            return;
        };
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => {
                backoff = Duration::from_millis(5);
                tcp
            }
            Err(e) => {
                // Out of file descriptors (EMFILE, ENFILE) or buffers (ENOBUFS): retrying at once
                // would spin a core. Wait, longer each time, and say so once per episode.
                if backoff == Duration::from_millis(5) {
                    tracing::warn!("cannot accept connections: {e}; backing off");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let (state, acceptor) = (state.clone(), acceptor.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req| route(req, state.clone()));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT);
            match acceptor {
                Some(a) => {
                    if let Ok(Ok(stream)) = tokio::time::timeout(HEAD_TIMEOUT, a.accept(tcp)).await
                    {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                }
            }
        });
    }
}

pub(crate) fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, super::AgentError> {
    use super::AgentError::Tls;
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Tls(format!("{}: {e}", cert.display())))?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Tls(format!("{}: {e}", key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(crate::crypto::provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Tls(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
