//! The agent: its HTTP endpoints, the run API's token, reloads (file change, SIGHUP, invalid
//! config), series removal, `check --remote`, and graceful shutdown on SIGTERM.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::time::Instant;

/// A plain-HTTP request to the agent; returns status and body.
async fn call(method: &str, url: &str, auth: Option<&str>) -> (u16, String) {
    let engine = shipwatch::net::Engine::new(&Default::default()).unwrap();
    let mut req = shipwatch::net::Request::get(url::Url::parse(url).unwrap());
    req.method = method.parse().unwrap();
    if let Some(a) = auth {
        req.headers.push(("Authorization".into(), a.into()));
    }
    let resp = engine
        .send(
            &req,
            &Default::default(),
            Instant::now() + Duration::from_secs(20),
        )
        .await
        .unwrap();
    (
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
    )
}

/// Both API answers follow the JSON report's schema.
fn assert_valid(v: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/report.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

fn config(port: u16, target: &str, checks: &[&str], extra_agent: &str) -> String {
    let mut s = format!(
        "[agent]\nlisten = \"127.0.0.1:{port}\"\ninterval = \"1s\"\napi_token = {{ env = \"SW_API_TOKEN\" }}\n{extra_agent}\n[env.prod]\nbase_url = \"{target}\"\n"
    );
    for c in checks {
        s.push_str(&format!(
            "[[check]]\nname = \"{c}\"\nkind = \"http\"\nurl = \"{{{{ base_url }}}}/{c}\"\n"
        ));
    }
    s
}

/// Polls `url` until `ok` holds for the body, bounded by `limit`.
async fn wait_for(url: &str, limit: Duration, ok: impl Fn(u16, &str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let (s, b) = call("GET", url, None).await;
        if ok(s, &b) {
            return b;
        }
        assert!(
            start.elapsed() < limit,
            "{url} never satisfied the condition; last: {s} {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Running {
    base: String,
    cfg: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), shipwatch::agent::AgentError>>,
}

async fn start_agent(dir: &Path, toml: &str, port: u16) -> Running {
    let cfg = dir.join("shipwatch.toml");
    // Each test's alert state and history stay in its own directory.
    let toml = if toml.contains("state_dir") {
        toml.to_string()
    } else {
        let state = format!("[agent]\nstate_dir = \"{}\"\n", dir.join("state").display());
        toml.replacen("[agent]\n", &state, 1)
    };
    std::fs::write(&cfg, toml).unwrap();
    let getenv: shipwatch::agent::SharedEnv =
        Arc::new(|n: &str| (n == "SW_API_TOKEN").then(|| "t0ken-for-tests".to_string()));
    let opts = shipwatch::agent::Options {
        config_path: cfg.clone(),
        shard: (0, 1),
        getenv,
        location: None,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(shipwatch::agent::run(opts, listener, async move {
        let _ = rx.await;
    }));
    Running {
        base: format!("http://127.0.0.1:{port}"),
        cfg,
        stop: Some(tx),
        task,
    }
}

impl Running {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let r = tokio::time::timeout(Duration::from_secs(15), self.task).await;
        assert!(matches!(r, Ok(Ok(Ok(())))), "agent stopped cleanly: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_the_run_api_token() {
    let target = http_server(|r| {
        if r.path == "/api" {
            Resp::new(200, "ok")
        } else {
            Resp::new(503, "down")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let agent = start_agent(
        dir.path(),
        &config(port, &target.url("http", "127.0.0.1"), &["api", "web"], ""),
        port,
    )
    .await;
    let base = agent.base.clone();
    assert_eq!(call("GET", &format!("{base}/healthz"), None).await.0, 200);
    wait_for(
        &format!("{base}/readyz"),
        Duration::from_secs(10),
        |s, _| s == 200,
    )
    .await;
    let metrics = call("GET", &format!("{base}/metrics"), None).await.1;
    for family in [
        "shipwatch_check_success{check=\"api\",env=\"prod\",kind=\"http\"} 1",
        "shipwatch_check_success{check=\"web\",env=\"prod\",kind=\"http\"} 0",
        "shipwatch_check_duration_seconds",
        "shipwatch_check_runs_total",
        "shipwatch_finding_status",
        "shipwatch_http_phase_seconds",
        "shipwatch_request_duration_seconds_bucket",
        "shipwatch_alert_firing",
        "shipwatch_notification_queue_depth",
        "shipwatch_build_info",
        "shipwatch_config_last_reload_success 1",
        "shipwatch_config_last_reload_timestamp_seconds",
    ] {
        assert!(metrics.contains(family), "missing {family}");
    }
    let status: serde_json::Value =
        serde_json::from_str(&call("GET", &format!("{base}/api/v1/status"), None).await.1).unwrap();
    assert_eq!(status["checks"].as_array().unwrap().len(), 2);
    assert_eq!(status["checks"][0]["environment"], "prod");
    assert_eq!(status["ready"], true);
    assert_eq!(status["status"], "fail");
    assert_valid(&status);
    let page = call("GET", &format!("{base}/"), None).await.1;
    assert!(
        page.contains("<h2>prod</h2>")
            && page.contains("http.status")
            && page.contains("http-equiv=refresh")
    );
    // The run API: no token, a wrong token, then the right one.
    let run = format!("{base}/api/v1/run?check=web");
    assert_eq!(call("POST", &run, None).await.0, 401);
    assert_eq!(call("POST", &run, Some("Bearer nope")).await.0, 401);
    let (s, body) = call("POST", &run, Some("Bearer t0ken-for-tests")).await;
    assert_eq!(s, 200);
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            report["status"].as_str(),
            report["checks"].as_array().map(Vec::len)
        ),
        (Some("fail"), Some(1))
    );
    assert_valid(&report);
    assert_eq!(
        call(
            "POST",
            &format!("{base}/api/v1/run?check=nope"),
            Some("Bearer t0ken-for-tests")
        )
        .await
        .0,
        404
    );

    // `check --remote` turns the agent's answer into the usual report and exit code.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
        .args([
            "check",
            "--remote",
            &base,
            "--only",
            "api",
            "--token-env",
            "SW_TEST_REMOTE",
        ])
        .env("SW_TEST_REMOTE", "t0ken-for-tests")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("✓ pass   api"), "{text}");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
        .args([
            "check",
            "--remote",
            &base,
            "--format",
            "junit",
            "--token-env",
            "SW_TEST_REMOTE",
        ])
        .env("SW_TEST_REMOTE", "t0ken-for-tests")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("<testsuite name=\"web\""));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
        .args(["check", "--remote", &base])
        .env("SHIPWATCH_API_TOKEN", "wrong")
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a refused token is a usage error"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_removes_series_and_an_invalid_config_keeps_the_old_one() {
    let target = http_server(|_| Resp::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = target.url("http", "127.0.0.1");
    let agent = start_agent(dir.path(), &config(port, &url, &["keep", "drop"], ""), port).await;
    let metrics = format!("{}/metrics", agent.base);
    wait_for(&metrics, Duration::from_secs(10), |_, b| {
        b.contains("check=\"drop\"") && b.contains("check=\"keep\"")
    })
    .await;
    // Editing the file is enough: the agent notices and reloads.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&agent.cfg, config(port, &url, &["keep"], "")).unwrap();
    let after = wait_for(&metrics, Duration::from_secs(10), |_, b| {
        !b.contains("check=\"drop\"")
    })
    .await;
    assert!(after.contains("shipwatch_check_success{check=\"keep\""));
    let runs = |b: &str| -> u64 {
        b.lines()
            .find(|l| l.starts_with("shipwatch_check_runs_total{check=\"keep\""))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let before = runs(&after);
    // A broken config is reported and the running one stays.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&agent.cfg, "[[check]]\nname = \"x\"\nkind = \"htp\"\n").unwrap();
    let broken = wait_for(&metrics, Duration::from_secs(10), |_, b| {
        b.contains("shipwatch_config_last_reload_success 0")
    })
    .await;
    assert!(broken.contains("check=\"keep\""));
    let later = wait_for(&metrics, Duration::from_secs(10), |_, b| {
        runs(b) > before + 1
    })
    .await;
    assert!(runs(&later) > before, "the old configuration keeps running");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_bearer_token() {
    let target = http_server(|_| Resp::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = "metrics_token = { env = \"SW_API_TOKEN\" }";
    let agent = start_agent(
        dir.path(),
        &config(port, &target.url("http", "127.0.0.1"), &["a"], extra),
        port,
    )
    .await;
    let url = format!("{}/metrics", agent.base);
    assert_eq!(call("GET", &url, None).await.0, 401);
    let (s, body) = call("GET", &url, Some("Bearer t0ken-for-tests")).await;
    assert_eq!(s, 200);
    assert!(body.contains("shipwatch_build_info"));
    assert!(!body.contains("t0ken-for-tests"));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_with_basic_auth_on_metrics() {
    let target = http_server(|_| Resp::new(200, "ok")).await;
    let pki = Pki::new();
    let id = pki.leaf(&["localhost"], 90);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("agent.crt"), dir.path().join("agent.key"));
    std::fs::write(&cert, format!("{}{}", id.cert_pem, pki.inter_pem)).unwrap();
    std::fs::write(&key, &id.key_pem).unwrap();
    let port = free_port();
    let extra = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\nmetrics_basic_auth = {{ username = \"prom\", password = {{ env = \"SW_API_TOKEN\" }} }}",
        cert.display(),
        key.display()
    );
    let agent = start_agent(
        dir.path(),
        &config(port, &target.url("http", "127.0.0.1"), &["a"], &extra),
        port,
    )
    .await;
    let engine = shipwatch::net::Engine::new(&shipwatch::net::EngineOptions {
        ca_file: Some(pki.write_ca(&dir)),
        nameservers: vec![],
    })
    .unwrap();
    let get = |auth: Option<&'static str>| {
        let engine = engine.clone();
        async move {
            let mut req = shipwatch::net::Request::get(
                url::Url::parse(&format!("https://localhost:{port}/metrics")).unwrap(),
            );
            if let Some(a) = auth {
                req.headers.push(("Authorization".into(), a.into()));
            }
            engine
                .send(
                    &req,
                    &Default::default(),
                    Instant::now() + Duration::from_secs(5),
                )
                .await
                .unwrap()
                .status
        }
    };
    assert_eq!(get(None).await, 401);
    // prom:t0ken-for-tests
    assert_eq!(get(Some("Basic cHJvbTp0MGtlbi1mb3ItdGVzdHM=")).await, 200);
    assert_eq!(get(Some("Basic cHJvbTp3cm9uZw==")).await, 401);
    agent.stop().await;
}

/// The built binary: SIGHUP reloads, SIGTERM stops it with exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_reload_and_stop_the_binary() {
    let target = http_server(|_| Resp::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("shipwatch.toml");
    let url = target.url("http", "127.0.0.1");
    std::fs::write(&cfg, config(port, &url, &["one"], "")).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
        .args(["agent", "-c"])
        // The default state_dir is relative: it lands in the test's directory.
        .current_dir(dir.path())
        .arg(&cfg)
        .env("SW_API_TOKEN", "x-token")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let start = Instant::now();
    while call_quiet(&metrics).await.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the agent did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for(&metrics, Duration::from_secs(10), |_, b| {
        b.contains("check=\"one\"")
    })
    .await;
    // Same mtime second is possible, so rely on SIGHUP rather than the file watch.
    std::fs::write(&cfg, config(port, &url, &["two"], "")).unwrap();
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for(&metrics, Duration::from_secs(10), |_, b| {
        b.contains("check=\"two\"") && !b.contains("check=\"one\"")
    })
    .await;
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("stops within 15 s")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

async fn call_quiet(url: &str) -> Option<u16> {
    let engine = shipwatch::net::Engine::new(&Default::default()).ok()?;
    let req = shipwatch::net::Request::get(url::Url::parse(url).ok()?);
    engine
        .send(
            &req,
            &Default::default(),
            Instant::now() + Duration::from_secs(2),
        )
        .await
        .ok()
        .map(|r| r.status)
}

/// Two environments of five checks: the status page has one heading each, and `check --remote`
/// names every row, JUnit class and suite by check and environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_environments_read_apart_on_the_page_and_in_remote_reports() {
    let target = http_server(|_| Resp::new(200, "ok")).await;
    let url = target.url("http", "127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let checks = ["api", "web", "cart", "search", "login"];
    let toml = config(port, &url, &checks, "").replace(
        "[env.prod]",
        &format!("[env.staging]\nbase_url = \"{url}/staging\"\n[env.prod]"),
    );
    let agent = start_agent(dir.path(), &toml, port).await;
    let base = agent.base.clone();
    wait_for(
        &format!("{base}/readyz"),
        Duration::from_secs(15),
        |s, _| s == 200,
    )
    .await;
    let page = call("GET", &format!("{base}/"), None).await.1;
    assert_eq!(page.matches("<h2>prod</h2>").count(), 1, "{page}");
    assert_eq!(page.matches("<h2>staging</h2>").count(), 1, "{page}");
    // The two environments, and the incidents (none: every check passes).
    assert_eq!(page.matches("<h2>").count(), 3);
    assert!(
        page.contains("<h2>Incidents</h2><p class=meta>No alert has fired.</p>"),
        "{}",
        &page[page.find("Incidents").unwrap_or(0)..]
    );
    let remote = |format: &'static str| {
        let base = base.clone();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
                .args(["check", "--remote", &base, "--format", format])
                .env("SHIPWATCH_API_TOKEN", "t0ken-for-tests")
                .output()
                .await
                .unwrap();
            assert_eq!(out.status.code(), Some(0));
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let text = remote("text").await;
    assert!(text.contains("prod, staging"), "{text}");
    assert!(
        text.contains(&format!("{url}, {url}/staging (via {base})")),
        "{text}"
    );
    for c in checks {
        assert!(
            text.contains(&format!("{c} (prod)")) && text.contains(&format!("{c} (staging)")),
            "{text}"
        );
    }
    let junit = remote("junit").await;
    let suites: Vec<&str> = junit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("<testsuite name=\""))
        .map(|l| l.split('"').next().unwrap())
        .collect();
    assert_eq!(suites.len(), 10);
    let unique: std::collections::BTreeSet<&&str> = suites.iter().collect();
    assert_eq!(unique.len(), 10, "{suites:?}");
    assert!(
        junit.contains("classname=\"prod.api\"") && junit.contains("classname=\"staging.api\"")
    );
    let json: serde_json::Value = serde_json::from_str(&remote("json").await).unwrap();
    assert_eq!(json["environment"], "prod, staging");
    assert_valid(&json);
    agent.stop().await;
}

/// At the default log level the agent says what it runs, once on start and once per reload, in
/// plain text when stderr is not a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_says_what_it_runs_on_start_and_reload() {
    let target = http_server(|_| Resp::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("shipwatch.toml");
    let url = target.url("http", "127.0.0.1");
    let toml = config(port, &url, &["api", "web"], "");
    std::fs::write(&cfg, &toml).unwrap();
    let log = dir.path().join("agent.log");
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
        .args(["agent", "-c"])
        // The default state_dir is relative: it lands in the test's directory.
        .current_dir(dir.path())
        .arg(&cfg)
        .env("SW_API_TOKEN", "t0ken-for-tests")
        .env_remove("SHIPWATCH_LOG")
        .env_remove("NO_COLOR")
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the agent never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for(
        &format!("{base}/readyz"),
        Duration::from_secs(15),
        |s, _| s == 200,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&cfg, config(port, &url, &["api"], "")).unwrap();
    let start = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("configuration reloaded") || start.elapsed() > Duration::from_secs(10) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    agent.kill().await.unwrap();
    assert!(
        text.contains(&format!(
            "agent listening on http://127.0.0.1:{port}: 2 checks in 1 environment (prod); sinks: none"
        )),
        "{text}"
    );
    assert!(
        text.contains("configuration reloaded: 1 check in 1 environment (prod)"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI colour into a file: {text}"
    );
}

/// Every sink's notification counters are in the first scrape, at zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_counters_exist_at_zero_from_the_first_scrape() {
    let target = http_server(|_| Resp::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let toml = format!(
        "{}[[alerts.sink]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/\"\n",
        config(port, &target.url("http", "127.0.0.1"), &["api"], "").replace(
            "[env.prod]",
            &format!(
                "state_dir = \"{}\"\n[env.prod]",
                dir.path().join("state").display()
            )
        ),
        free_port()
    );
    let agent = start_agent(dir.path(), &toml, port).await;
    let metrics = wait_for(
        &format!("{}/metrics", agent.base),
        Duration::from_secs(10),
        |s, _| s == 200,
    )
    .await;
    for outcome in ["sent", "failed", "rejected", "expired", "dropped"] {
        let series =
            format!("shipwatch_notifications_total{{sink=\"hook\",outcome=\"{outcome}\"}} 0");
        assert!(metrics.contains(&series), "missing {series}:\n{metrics}");
    }
    assert!(
        metrics.contains("shipwatch_outbox_write_errors_total 0"),
        "{metrics}"
    );
    agent.stop().await;
}

/// A pipeline marks a deploy; after it, `GET /api/v1/compare` says what got worse than before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_marker_and_the_comparison_with_before_it() {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let h = healthy.clone();
    let target = http_server(move |_| {
        if h.load(std::sync::atomic::Ordering::SeqCst) {
            Resp::new(200, "ok")
        } else {
            Resp::new(503, "down")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let agent = start_agent(
        dir.path(),
        &config(port, &target.url("http", "127.0.0.1"), &["api"], ""),
        port,
    )
    .await;
    let base = agent.base.clone();
    wait_for(
        &format!("{base}/readyz"),
        Duration::from_secs(10),
        |s, _| s == 200,
    )
    .await;
    let (s, body) = call("GET", &format!("{base}/api/v1/compare"), None).await;
    assert_eq!(s, 404, "{body}");
    assert_eq!(
        call("POST", &format!("{base}/api/v1/deploy"), None).await.0,
        401
    );
    let (s, body) = call(
        "POST",
        &format!("{base}/api/v1/deploy"),
        Some("Bearer t0ken-for-tests"),
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["marked"],
        1
    );
    // The deploy breaks the API; the next run sees it.
    healthy.store(false, std::sync::atomic::Ordering::SeqCst);
    let body = wait_for(
        &format!("{base}/api/v1/compare"),
        Duration::from_secs(10),
        |s, b| s == 200 && b.contains("regress.status"),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["worse"], true);
    assert_eq!(v["checks"][0]["environment"], "prod");
    agent.stop().await;
}

/// A certificate the agent cannot use stops it at start with the reason, instead of running
/// without serving anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_tls_certificate_stops_the_start() {
    let target = http_server(|_| Resp::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cert = dir.path().join("agent.crt");
    std::fs::write(&cert, "not a certificate").unwrap();
    let toml = config(
        port,
        &target.url("http", "127.0.0.1"),
        &["api"],
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"",
            cert.display(),
            dir.path().join("missing.key").display()
        ),
    );
    let cfg = dir.path().join("shipwatch.toml");
    std::fs::write(&cfg, toml).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
            .args(["agent", "-c"])
            // The default state_dir is relative: it lands in the test's directory.
            .current_dir(dir.path())
            .arg(&cfg)
            .env("SW_API_TOKEN", "t0ken-for-tests")
            .output(),
    )
    .await
    .expect("the agent stops by itself")
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot serve HTTPS"), "{err}");
}
