//! The commands that talk to other processes: the agent, `check --remote`, `notify --test`,
//! the sign-off of `check --notify`, and the container health check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::{CheckArgs, EXIT_FAIL, EXIT_PASS, Io, emit, usage};
use crate::config::Config;
use crate::net::Engine;
use crate::report::Report;

/// The sinks of a config file, secrets read; every failure is a usage error.
fn sinks_of(path: &Path, io: &mut Io<'_>) -> Result<(Vec<crate::sink::Sink>, String), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let getenv = io.getenv.clone();
    // Every sink secret that cannot be read, at once and with its position.
    let missing = config.check_secret_refs("alerts.", &*getenv);
    if !missing.is_empty() {
        return Err(config.error(missing).to_string());
    }
    let read = |s: &crate::config::SecretSource, what: &str| {
        s.read(&*getenv).map_err(|e| format!("{what}: {e}"))
    };
    let sinks = crate::sink::from_config(&config, &read)?;
    let status = config
        .agent
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}/", config.agent.listen));
    Ok((sinks, status))
}

pub(super) async fn notify_test(
    path: &Path,
    test: bool,
    only: Option<&str>,
    io: &mut Io<'_>,
) -> i32 {
    if !test {
        return usage(io, "notify needs --test or --retry-dead");
    }
    let (sinks, status_url) = match sinks_of(path, io) {
        Ok(s) => s,
        Err(e) => return usage(io, e),
    };
    let chosen: Vec<_> = sinks
        .iter()
        .filter(|s| only.is_none_or(|o| o == s.name))
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = sinks.iter().map(|s| s.name.as_str()).collect();
        return usage(
            io,
            format!(
                "no sink to test (configured: {})",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ),
        );
    }
    let Ok(engine) = Engine::new(&crate::net::EngineOptions::default()) else {
        return EXIT_FAIL;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let test_note = crate::alert::Notification {
        fingerprint: format!("shipwatch-test:{now}"),
        event: crate::alert::Event::Test,
        check: "shipwatch-test".into(),
        kind: "http".into(),
        env: "test".into(),
        severity: crate::alert::Severity::Warning,
        problems: vec![crate::alert::Problem {
            id: "test.message".into(),
            status: "warn".into(),
            message: "a test message from shipwatch notify --test".into(),
            expected: Some("delivered".into()),
            actual: Some("delivered".into()),
        }],
        first_failure: now,
        started_at: now,
        at: now,
        failed_runs: 0,
        finding: "test.message".into(),
    };
    let mut failed = 0;
    for sink in chosen {
        match sink
            .notify(&engine, std::slice::from_ref(&test_note), &status_url)
            .await
        {
            Ok(()) => {
                let _ = writeln!(io.out, "{} ({:?}): ok", sink.name, sink.kind);
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(io.out, "{} ({:?}): failed: {e}", sink.name, sink.kind);
            }
        }
    }
    if failed == 0 { EXIT_PASS } else { EXIT_FAIL }
}

/// `notify --retry-dead`: each dead letter goes again, on its own, to the sink that refused it.
/// Accepted ones leave the folder; refused ones stay with the new answer. Exit 0 when the folder
/// is empty afterwards (for the chosen sink), 1 otherwise.
pub(super) async fn retry_dead_letters(path: &Path, only: Option<&str>, io: &mut Io<'_>) -> i32 {
    use crate::alert::outbox::DeadLetters;
    let (sinks, status_url) = match sinks_of(path, io) {
        Ok(s) => s,
        Err(e) => return usage(io, e),
    };
    let state_dir = match Config::load(path) {
        Ok(c) => c.agent.state_dir,
        Err(e) => return usage(io, e),
    };
    let dead = DeadLetters::new(state_dir.join("dead"));
    let letters = dead.list();
    let Ok(engine) = Engine::new(&crate::net::EngineOptions::default()) else {
        return EXIT_FAIL;
    };
    let (mut sent, mut kept) = (0, 0);
    for (file, letter) in letters {
        let mut letter = match letter {
            Ok(l) => l,
            Err(e) => {
                kept += 1;
                let _ = writeln!(io.out, "{}: unreadable ({e}); kept", file.display());
                continue;
            }
        };
        if only.is_some_and(|o| o != letter.sink) {
            continue;
        }
        let n = &letter.notification;
        let what = format!(
            "{} {} {} ({}) for {}",
            n.env,
            n.check,
            n.event.as_str(),
            n.fingerprint,
            letter.sink
        );
        let Some(sink) = sinks.iter().find(|s| s.name == letter.sink) else {
            kept += 1;
            let _ = writeln!(
                io.out,
                "{what}: kept; no sink named \"{}\" is configured",
                letter.sink
            );
            continue;
        };
        match sink
            .notify(&engine, std::slice::from_ref(n), &status_url)
            .await
        {
            Ok(()) => match std::fs::remove_file(&file) {
                Ok(()) => {
                    sent += 1;
                    let _ = writeln!(io.out, "{what}: sent");
                }
                Err(e) => {
                    kept += 1;
                    let _ = writeln!(
                        io.out,
                        "{what}: sent, but {} could not be removed ({e}); it would be sent again",
                        file.display()
                    );
                }
            },
            Err(e) => {
                kept += 1;
                let _ = writeln!(io.out, "{what}: refused again: {e}; kept");
                letter.answer = e.to_string();
                if let Ok(bytes) = serde_json::to_vec_pretty(&letter) {
                    let _ = crate::alert::outbox::write_atomic(&file, &bytes);
                }
            }
        }
    }
    let _ = writeln!(
        io.out,
        "{sent} dead letters sent, {kept} kept in {}",
        dead.dir().display()
    );
    if kept == 0 { EXIT_PASS } else { EXIT_FAIL }
}

/// `check --notify`: the sign-off goes to every sink that takes one; a sink failure is reported
/// but does not change the run's exit code.
pub(super) async fn sign_off(report: &Report, args: &CheckArgs, io: &mut Io<'_>) {
    let Some(path) = args.config.clone() else {
        let _ = writeln!(
            io.err,
            "warning: --notify needs -c FILE with [[alerts.sink]]; nothing sent"
        );
        return;
    };
    let sinks = match sinks_of(&path, io) {
        Ok((s, _)) => s,
        Err(e) => {
            let _ = writeln!(io.err, "warning: --notify: {e}");
            return;
        }
    };
    let Ok(engine) = Engine::new(&crate::net::EngineOptions {
        ca_file: args.ca_file.clone(),
        nameservers: Vec::new(),
    }) else {
        return;
    };
    for sink in &sinks {
        match sink.sign_off(&engine, report).await {
            Ok(true) => {
                let _ = writeln!(io.err, "sign-off sent to {}", sink.name);
            }
            Ok(false) => {
                let _ = writeln!(io.err, "{} takes alerts, not sign-offs: skipped", sink.name);
            }
            Err(e) => {
                let _ = writeln!(io.err, "warning: sign-off to {} failed: {e}", sink.name);
            }
        }
    }
}

pub(super) async fn healthcheck(url: &str, io: &mut Io<'_>) -> i32 {
    let Ok(parsed) = Url::parse(url) else {
        return usage(io, format!("invalid URL \"{url}\""));
    };
    let Ok(engine) = Engine::new(&crate::net::EngineOptions::default()) else {
        return EXIT_FAIL;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    match engine
        .send(
            &crate::net::Request::get(parsed),
            &crate::net::Overrides::default(),
            deadline,
        )
        .await
    {
        Ok(r) if r.status == 200 => EXIT_PASS,
        Ok(r) => {
            let _ = writeln!(io.err, "unhealthy: {url} answered {}", r.status);
            EXIT_FAIL
        }
        Err(e) => {
            let _ = writeln!(io.err, "unhealthy: {e}");
            EXIT_FAIL
        }
    }
}

/// Parses `--shard I/N`.
fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("invalid --shard \"{s}\", expected I/N such as 0/3");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

pub(super) async fn agent(config: PathBuf, shard: Option<&str>, io: &mut Io<'_>) -> i32 {
    let shard = match shard.map(parse_shard).transpose() {
        Ok(s) => s.unwrap_or((0, 1)),
        Err(e) => return usage(io, e),
    };
    let opts = crate::agent::Options {
        config_path: config,
        shard,
        getenv: io.getenv.clone(),
    };
    let listen = match crate::agent::load(&opts) {
        Ok(l) => l.agent.listen,
        Err(e) => return usage(io, e),
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => return usage(io, format!("cannot listen on {listen}: {e}")),
    };
    tracing::info!(%listen, "shipwatch agent listening");
    match crate::agent::run(opts, listener, terminated()).await {
        Ok(()) => EXIT_PASS,
        Err(e) => usage(io, e),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn terminated() {
    #[cfg(unix)]
    {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        match term {
            Ok(mut t) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = t.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// `check --remote URL`: asks a running agent to run now, and reports its answer as usual.
pub(super) async fn remote(base: &str, args: &CheckArgs, io: &mut Io<'_>) -> i32 {
    let Some(token) = (io.getenv)(&args.token_env) else {
        return usage(
            io,
            format!(
                "--remote needs the agent's API token in the environment variable {}",
                args.token_env
            ),
        );
    };
    let mut url = match Url::parse(base).and_then(|u| u.join("/api/v1/run")) {
        Ok(u) => u,
        Err(e) => return usage(io, format!("invalid --remote URL \"{base}\": {e}")),
    };
    if let Some(check) = args.only.first() {
        url.query_pairs_mut().append_pair("check", check);
    }
    if let Some(env) = &args.env {
        url.query_pairs_mut().append_pair("env", env);
    }
    let engine = match Engine::new(&crate::net::EngineOptions {
        ca_file: args.ca_file.clone(),
        nameservers: Vec::new(),
    }) {
        Ok(e) => e,
        Err(e) => return usage(io, e),
    };
    let mut req = crate::net::Request::get(url.clone());
    req.method = http::Method::POST;
    req.headers
        .push(("Authorization".into(), format!("Bearer {token}")));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let resp = match engine
        .send(&req, &crate::net::Overrides::default(), deadline)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(io.err, "error: cannot reach the agent at {url}: {e}");
            return EXIT_FAIL;
        }
    };
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
    match resp.status {
        200 => {}
        401 | 403 | 404 => {
            return usage(
                io,
                format!(
                    "the agent refused: {} {}",
                    resp.status,
                    body["error"].as_str().unwrap_or("")
                ),
            );
        }
        s => {
            let _ = writeln!(
                io.err,
                "error: the agent answered {s}: {}",
                body["error"].as_str().unwrap_or("")
            );
            return EXIT_FAIL;
        }
    }
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
    let report = Report {
        environment: body["environment"].as_str().unwrap_or("").to_string(),
        target: match body["target"].as_str().filter(|t| !t.is_empty()) {
            Some(t) => format!("{t} (via {base})"),
            None => base.to_string(),
        },
        started_at,
        duration: Duration::from_secs_f64(body["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0),
        checks,
    };
    emit(&report, args, io)
}
