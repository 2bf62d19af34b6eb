//! End to end: a real Prometheus scrapes a running agent that probes an in-process target, then
//! every PromQL expression of the shipped dashboard and rules is evaluated through its HTTP API.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use tokio::net::TcpListener;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every `expr` in the dashboard, with its variables substituted as Grafana would.
fn dashboard_exprs() -> Vec<String> {
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("dashboards/shipwatch-overview.json")).unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let e = t["expr"].as_str().unwrap();
            out.push(
                e.replace("$env", ".*")
                    .replace("$check", ".*")
                    .replace("$__rate_interval", "1m")
                    .replace("$__range", "5m"),
            );
        }
    }
    out
}

/// Every `expr` in the rules file (the file is plain enough to read without a YAML parser).
fn rule_exprs() -> Vec<String> {
    std::fs::read_to_string(repo("dashboards/prometheus-rules.yml"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: ").map(str::to_string))
        // The multi-location rule needs agents in two locations; promtool's unit test
        // (dashboards/prometheus-rules.test.yml) feeds it three.
        .filter(|e| !e.contains("location"))
        .collect()
}

async fn get_json(url: &str) -> Option<serde_json::Value> {
    let engine = shipwatch::net::Engine::new(&Default::default()).ok()?;
    let req = shipwatch::net::Request::get(url::Url::parse(url).ok()?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let resp = engine
        .send(&req, &Default::default(), deadline)
        .await
        .ok()?;
    serde_json::from_slice(&resp.body).ok()
}

async fn query(prom: &str, expr: &str) -> Option<serde_json::Value> {
    let mut url = url::Url::parse(&format!("{prom}/api/v1/query")).ok()?;
    url.query_pairs_mut().append_pair("query", expr);
    get_json(url.as_str()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_evaluates_every_dashboard_and_rule_expression() {
    // The target is a deploy gone wrong in every way the rules watch for: a missing page (a check
    // down), a certificate 10 days from expiry, a slow endpoint, and no Permissions-Policy (a warning).
    let pki = Pki::new();
    let site = https_server(&pki.leaf(&["localhost"], 10), |r| {
        let mut resp = match r.path.as_str() {
            "/health" => Resp::json(200, r#"{"status":"healthy"}"#),
            "/slow" => Resp::new(200, "ok").delay(Duration::from_millis(600)),
            "/" => Resp::html("<p>shop</p>"),
            _ => Resp::new(404, "not found"),
        }
        .hardened();
        resp.headers.retain(|(k, _)| k != "permissions-policy");
        resp
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(&dir);
    // A name server, so the DNS panel has data.
    let dns = common::dnsmasq().await;
    // A webhook receiver, so the notification panel has data: the orders check will alert.
    let hook = http_server(|_| Resp::new(200, "ok")).await;
    let agent_port = free_port();
    let cfg = dir.path().join("shipwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[agent]
listen = "127.0.0.1:{agent_port}"
interval = "1s"
state_dir = "{state}"
[alerts]
batch_window = "200ms"
failures = 1
[[alerts.sink]]
kind = "webhook"
url = "{hook}/hook"
[defaults]
ca_file = "{ca}"
[env.e2e]
base_url = "https://localhost:{p}"
[[check]]
name = "health"
kind = "http"
url = "{{{{ base_url }}}}/health"
[[check]]
name = "tls"
kind = "tls"
host = "localhost:{p}"
[[check]]
name = "headers"
kind = "headers"
url = "{{{{ base_url }}}}/"
[[check]]
name = "orders"
kind = "http"
url = "{{{{ base_url }}}}/orders"
[[check]]
name = "latency"
kind = "latency"
url = "{{{{ base_url }}}}/slow"
requests = 4
[[check]]
name = "dns"
kind = "dns"
query = "api.shipwatch.test"
server = "127.0.0.1:{dns_port}"
"#,
            ca = ca.display(),
            p = site.port(),
            state = dir.path().join("state").display(),
            hook = hook.url("http", "127.0.0.1"),
            dns_port = dns.port,
        ),
    )
    .unwrap();
    let opts = shipwatch::agent::Options {
        config_path: cfg,
        shard: (0, 1),
        getenv: std::sync::Arc::new(|_: &str| None),
        location: None,
    };
    let listener = TcpListener::bind(("127.0.0.1", agent_port)).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(shipwatch::agent::run(opts, listener, async move {
        let _ = stop_rx.await;
    }));

    // A real Prometheus scraping the agent every second, with the shipped rules loaded.
    let prom_port = free_port();
    let prom_cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: shipwatch\n    static_configs:\n      - targets: ['127.0.0.1:{agent_port}']\n",
            repo("dashboards/prometheus-rules.yml").display()
        ),
    )
    .unwrap();
    let mut prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", prom_cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus is installed (scripts/test.sh installs it)");
    let prom = format!("http://127.0.0.1:{prom_port}");

    // Two scrapes of the agent, bounded.
    let mut scrapes = 0.0;
    for _ in 0..60 {
        if let Some(v) = query(&prom, "count_over_time(shipwatch_build_info[5m])").await {
            scrapes = v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            if scrapes >= 2.0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        scrapes >= 2.0,
        "Prometheus scraped the agent {scrapes} times"
    );

    // Every expression returns at least one series; the alert rules' conditions all hold here. Rates need a few samples, so each is retried (bounded).
    let mut empty = Vec::new();
    for expr in dashboard_exprs().into_iter().chain(rule_exprs()) {
        let mut series = 0;
        for _ in 0..40 {
            let v = query(&prom, &expr).await.unwrap_or_default();
            assert_eq!(v["status"], "success", "{expr} failed: {v}");
            series = v["data"]["result"].as_array().map_or(0, Vec::len);
            if series > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if series == 0 {
            empty.push(expr);
        }
    }
    assert!(empty.is_empty(), "expressions without a series: {empty:#?}");
    // The dashboard's variables come from label values.
    let envs = get_json(&format!(
        "{prom}/api/v1/label/env/values?match[]=shipwatch_check_success"
    ))
    .await
    .unwrap();
    assert_eq!(envs["data"], serde_json::json!(["e2e"]));

    // The exposition passes promtool's linter.
    let metrics = reqwest_free_get(&format!("http://127.0.0.1:{agent_port}/metrics")).await;
    let mut lint = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    use tokio::io::AsyncWriteExt;
    lint.stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .await
        .unwrap();
    let out = lint.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(repo("dashboards/prometheus-rules.yml"))
        .output()
        .unwrap();
    assert!(
        rules.status.success(),
        "{}",
        String::from_utf8_lossy(&rules.stdout)
    );

    let _ = prometheus.kill().await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), agent).await;
}

async fn reqwest_free_get(url: &str) -> String {
    let engine = shipwatch::net::Engine::new(&Default::default()).unwrap();
    let req = shipwatch::net::Request::get(url::Url::parse(url).unwrap());
    let resp = engine
        .send(
            &req,
            &Default::default(),
            tokio::time::Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap();
    String::from_utf8_lossy(&resp.body).into_owned()
}
