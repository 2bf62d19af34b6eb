//! The agent's history: it survives `kill -9` and restarts, a damaged or unusable database never
//! stops the checks, the API answers as its schemas say, and the status page renders in a real
//! browser (headless Chromium) at phone and desktop widths.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// An agent config: `checks` against `base`, every second, alerts after one failure.
fn config(dir: &Path, port: u16, base: &str, extra_agent: &str, ca: Option<&Path>) -> PathBuf {
    let ca = ca.map_or(String::new(), |p| {
        format!("ca_file = \"{}\"\n", p.display())
    });
    let text = format!(
        r#"[agent]
listen = "127.0.0.1:{port}"
interval = "1s"
state_dir = "{state}"
{extra_agent}
[alerts]
failures = 1
[defaults]
timeout = "2s"
{ca}
[env.prod]
base_url = "{base}"
[[check]]
name = "health"
kind = "http"
url = "{{{{ base_url }}}}/health"
[[check]]
name = "orders"
kind = "http"
url = "{{{{ base_url }}}}/orders"
[[check]]
name = "latency"
kind = "latency"
url = "{{{{ base_url }}}}/health"
requests = 5
"#,
        state = dir.join("state").display(),
    );
    let path = dir.join("shipwatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn site_handler(r: &Req) -> Resp {
    match r.path.as_str() {
        "/health" => Resp::json(200, r#"{"status":"healthy"}"#),
        _ => Resp::new(404, "not found"),
    }
}

/// GETs `path` (with an optional bearer token) until `ok` holds on the JSON answer, at most 15 s.
async fn poll_json(
    port: u16,
    path: &str,
    token: Option<&str>,
    ok: impl Fn(u16, &serde_json::Value) -> bool,
) -> (u16, serde_json::Value) {
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..60 {
        if let Some((status, body)) = get_with(port, path, token).await {
            last = (status, serde_json::from_str(&body).unwrap_or_default());
            if ok(last.0, &last.1) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{path}: gave up; last answer {} {}", last.0, last.1);
}

async fn get_with(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    get_bearer(&format!("http://127.0.0.1:{port}{path}"), token).await
}

fn runs(v: &serde_json::Value) -> usize {
    v["runs"].as_array().map_or(0, Vec::len)
}

fn validate(schema_file: &str, v: &serde_json::Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(schema_file);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{schema_file}: {problems:#?}\n{v:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_kill_9_and_restarts() {
    let site = http_server(site_handler).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, &site.url("http", "127.0.0.1"), "", None);
    let mut agent = spawn_quiet_agent(&cfg);
    let (_, before) = poll_json(port, "/api/v1/history?check=orders", None, |s, v| {
        s == 200 && runs(v) >= 3
    })
    .await;
    validate("history.schema.json", &before);
    assert_eq!(before["runs"][0]["status"], "fail");
    assert_eq!(before["runs"][0]["failing"][0], "http.status");
    assert_eq!(before["uptime"]["24h"], 0.0);
    assert!(before["failing_since"].is_string());
    let (_, incidents) = poll_json(port, "/api/v1/incidents", None, |s, v| {
        s == 200 && v["incidents"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    validate("incidents.schema.json", &incidents);
    assert_eq!(incidents["incidents"][0]["check"], "orders");
    assert!(incidents["incidents"][0]["resolved_at"].is_null());
    // SIGKILL: no chance to flush anything.
    agent.start_kill().unwrap();
    let _ = agent.wait().await;
    let mut agent = spawn_quiet_agent(&cfg);
    let (_, after) = poll_json(
        port,
        "/api/v1/history?check=orders&env=prod",
        None,
        |s, _| s == 200,
    )
    .await;
    let first_before = before["runs"].as_array().unwrap().last().unwrap()["at"].clone();
    assert!(
        after["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["at"] == first_before),
        "the runs before the kill are still there"
    );
    let (_, health) = poll_json(port, "/api/v1/history?check=health", None, |s, _| s == 200).await;
    assert_eq!(health["uptime"]["24h"], 100.0);
    // A long range is answered with hourly roll-ups.
    let (_, month) = poll_json(
        port,
        "/api/v1/history?check=health&since=30d",
        None,
        |s, _| s == 200,
    )
    .await;
    assert_eq!(month["resolution"], "hour");
    validate("history.schema.json", &month);
    let (status, _) = poll_json(port, "/api/v1/history?check=nope", None, |s, _| s == 404).await;
    assert_eq!(status, 404);
    let (status, bad) = poll_json(
        port,
        "/api/v1/history?check=health&since=soon",
        None,
        |s, _| s == 400,
    )
    .await;
    assert!(
        bad["error"].as_str().unwrap().contains("since=\"soon\""),
        "{bad}"
    );
    agent.start_kill().unwrap();
    let _ = agent.wait().await;
    let _ = status;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_unusable_database_never_stops_the_checks() {
    let site = http_server(site_handler).await;
    // Damaged: set aside, and a new history starts.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/history.db"), vec![0x42; 16384]).unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, &site.url("http", "127.0.0.1"), "", None);
    let mut agent = spawn_quiet_agent(&cfg);
    poll_json(port, "/api/v1/history?check=health", None, |s, v| {
        s == 200 && runs(v) >= 1
    })
    .await;
    let aside: Vec<String> = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("history.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    agent.start_kill().unwrap();
    let _ = agent.wait().await;

    // Unusable (a directory where SQLite's write-ahead log must go, which no retry fixes): the
    // history is unavailable, and nothing else is.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state/history.db-wal/x")).unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, &site.url("http", "127.0.0.1"), "", None);
    let mut agent = spawn_quiet_agent(&cfg);
    poll_json(port, "/api/v1/status", None, |s, v| {
        s == 200 && v["ready"] == true
    })
    .await;
    let (status, body) =
        poll_json(port, "/api/v1/history?check=health", None, |s, _| s == 503).await;
    assert_eq!(status, 503);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("history unavailable"),
        "{body}"
    );
    let (_, page) = get_with(port, "/", None).await.unwrap();
    assert!(page.contains("History unavailable"), "{page}");
    assert!(page.contains("data-check=\"health\""));
    let (_, metrics) = get_with(port, "/metrics", None).await.unwrap();
    assert!(metrics.contains("shipwatch_history_up 0"), "{metrics}");
    agent.start_kill().unwrap();
    let _ = agent.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_api_wants_the_metrics_credentials() {
    let site = http_server(site_handler).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let auth = "metrics_token = { env = \"SW_HISTORY_TOKEN\" }";
    let cfg = config(dir.path(), port, &site.url("http", "127.0.0.1"), auth, None);
    let bin = option_env!("CARGO_BIN_EXE_shipwatch").unwrap_or("shipwatch");
    let mut agent = tokio::process::Command::new(bin)
        .args(["agent", "-c"])
        .arg(&cfg)
        .env("SW_HISTORY_TOKEN", "history-token-42")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    poll_json(
        port,
        "/api/v1/history?check=health",
        Some("history-token-42"),
        |s, _| s == 200,
    )
    .await;
    for path in ["/api/v1/history?check=health", "/api/v1/incidents"] {
        let (status, _) = get_with(port, path, None).await.unwrap();
        assert_eq!(status, 401, "{path}");
        let (status, _) = get_with(port, path, Some("wrong")).await.unwrap();
        assert_eq!(status, 401, "{path}");
    }
    agent.start_kill().unwrap();
    let _ = agent.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_in_a_real_browser_at_phone_and_desktop_widths() {
    let pki = Pki::new();
    let site = https_server(&pki.leaf(&["localhost"], 20), site_handler).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(&dir);
    let port = free_port();
    let base = site.url("https", "localhost");
    let cfg = config(dir.path(), port, &base, "", Some(&ca));
    let tls = format!(
        "\n[[check]]\nname = \"tls\"\nkind = \"tls\"\nhost = \"localhost:{}\"\n",
        site.port()
    );
    let text = std::fs::read_to_string(&cfg).unwrap() + &tls;
    std::fs::write(&cfg, text).unwrap();
    let mut agent = spawn_quiet_agent(&cfg);
    poll_json(port, "/api/v1/history?check=latency", None, |s, v| {
        s == 200 && runs(v) >= 3
    })
    .await;
    poll_json(port, "/api/v1/incidents", None, |_, v| {
        v["incidents"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .arg(&artifacts)
        .args(["390", "1280"])
        .output()
        .await
        .expect("python3 with websockets and chromium (scripts/test.sh installs them)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pages: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for width in ["390", "1280"] {
        let p = &pages[width];
        assert_eq!(p["width"], width.parse::<u64>().unwrap());
        // Nothing wider than the screen, no script, nothing fetched from elsewhere.
        assert!(
            p["scroll_width"].as_u64() <= p["width"].as_u64(),
            "{width}: {p}"
        );
        assert_eq!(
            (p["scripts"].as_u64(), p["external"].as_u64()),
            (Some(0), Some(0)),
            "{width}"
        );
        assert_eq!(p["filter"], true);
        let cards = p["cards"].as_array().unwrap();
        assert_eq!(cards.len(), 4, "{width}: {p}");
        let card = |name: &str| {
            cards
                .iter()
                .find(|c| c["check"] == name)
                .unwrap_or_else(|| panic!("{name}"))
        };
        let orders = card("orders")["text"].as_str().unwrap();
        assert!(
            orders.contains("✗ FAIL") && orders.contains("failing since"),
            "{orders}"
        );
        assert!(orders.contains("uptime 24h 0.00%"), "{orders}");
        assert!(orders.contains("alert firing"), "{orders}");
        assert!(
            card("health")["text"]
                .as_str()
                .unwrap()
                .contains("24h 100%")
        );
        assert!(card("latency")["text"].as_str().unwrap().contains("p95"));
        assert!(
            card("tls")["text"]
                .as_str()
                .unwrap()
                .contains("days to expiry")
        );
        assert!(p["strip_slots"].as_u64().unwrap() >= 8, "{p}");
        // The colours the stylesheet gives, as the browser computed them.
        let fills = &p["strip_fills"];
        assert_eq!(fills["pass"], "rgb(26, 127, 55)", "{fills}");
        assert_eq!(fills["fail"], "rgb(207, 34, 46)", "{fills}");
        assert_eq!(fills["empty"], "rgb(234, 238, 242)", "{fills}");
        let title = p["strip_titles"][0].as_str().unwrap();
        assert!(
            title.contains(" UTC · ") && title.ends_with(" ms"),
            "{title}"
        );
        assert!(p["incidents"].as_str().unwrap().contains("orders"), "{p}");
        let shot = std::fs::metadata(p["screenshot"].as_str().unwrap()).unwrap();
        assert!(
            shot.len() > 10_000,
            "{width}: screenshot of {} bytes",
            shot.len()
        );
        let tops: Vec<f64> = cards.iter().map(|c| c["top"].as_f64().unwrap()).collect();
        let one_column = tops.windows(2).all(|w| w[1] > w[0]);
        // A phone gets one column of cards; a desktop puts several side by side.
        assert_eq!(one_column, width == "390", "{width}: tops {tops:?}");
    }
    let (status, page) = get_with(port, "/?status=fail", None).await.unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("data-check=\"orders\"") && !page.contains("data-check=\"health\""));
    agent.start_kill().unwrap();
    let _ = agent.wait().await;
}
