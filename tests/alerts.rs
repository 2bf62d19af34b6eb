//! Alerting end to end through the agent, with real receivers: webhook and Slack receivers in
//! process (exact JSON and HMAC), a receiver that is down and comes back, a kill -9 in the middle
//! of delivery, secrets in failing bodies, and batching.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::time::Instant;

/// A receiver that records every POST (headers and body) and answers `ok` while `up` is set.
#[derive(Clone, Default)]
struct Inbox {
    got: Arc<Mutex<Vec<(http::HeaderMap, serde_json::Value)>>>,
    down: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

impl Inbox {
    async fn serve(&self) -> Server {
        let me = self.clone();
        http_server(move |r| {
            if me.down.load(Ordering::SeqCst) {
                me.refused.fetch_add(1, Ordering::SeqCst);
                return Resp::new(503, "down for maintenance");
            }
            let body = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
            me.got.lock().unwrap().push((r.headers.clone(), body));
            Resp::new(200, "ok")
        })
        .await
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Every alert received, flattened across messages, as (event, check).
    fn events(&self) -> Vec<(String, String)> {
        self.bodies()
            .iter()
            .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
            .map(|a| {
                (
                    a["event"].as_str().unwrap_or("").to_string(),
                    a["check"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

async fn wait_until(limit: Duration, what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A target whose health follows `healthy`, echoing the request's X-Api-Key when it fails.
async fn target(healthy: Arc<AtomicBool>) -> Server {
    http_server(move |r| {
        if healthy.load(Ordering::SeqCst) {
            Resp::json(200, r#"{"status":"healthy"}"#)
        } else {
            let key = r
                .headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Resp::json(503, &format!(r#"{{"status":"down","debug":"key={key}"}}"#))
        }
    })
    .await
}

const SECRET: &str = "sk-live-00112233445566";

fn agent_config(dir: &Path, port: u16, target: &str, sinks: &str) -> String {
    format!(
        r#"[agent]
listen = "127.0.0.1:{port}"
interval = "1s"
state_dir = "{state}"
public_url = "https://shipwatch.example/status"
[secrets]
api_key = {{ env = "SW_TEST_KEY" }}
[env.prod]
base_url = "{target}"
[alerts]
batch_window = "200ms"
failures = 2
successes = 2
repeat = "1h"
{sinks}
[[check]]
name = "api"
kind = "http"
url = "{{{{ base_url }}}}/health"
headers = {{ X-Api-Key = "{{{{ secrets.api_key }}}}" }}
expect = ['status == 200', 'body contains healthy']
"#,
        state = dir.join("state").display()
    )
}

/// Writes the agent's config for `site` into `dir` and returns its path.
fn write_config(dir: &Path, port: u16, site: &Server, sinks: &str) -> std::path::PathBuf {
    let cfg = dir.join("shipwatch.toml");
    std::fs::write(
        &cfg,
        agent_config(dir, port, &site.url("http", "127.0.0.1"), sinks),
    )
    .unwrap();
    cfg
}

fn spawn_agent(cfg: &Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
        .args(["agent", "-c"])
        .arg(cfg)
        .env("SW_TEST_KEY", SECRET)
        .env("SW_HMAC", "hmac-test-secret")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_slack_get_firing_and_resolved_with_hmac_and_no_secret() {
    let healthy = Arc::new(AtomicBool::new(false));
    let site = target(healthy.clone()).await;
    let (hook, slack) = (Inbox::default(), Inbox::default());
    let (hook_srv, slack_srv) = (hook.serve().await, slack.serve().await);
    let dir = tempfile::tempdir().unwrap();
    let sinks = format!(
        "[[alerts.sink]]\nkind = \"webhook\"\nurl = \"{}/hook\"\nhmac_secret = {{ env = \"SW_HMAC\" }}\nheaders = {{ X-Team = \"ops\" }}\n[[alerts.sink]]\nkind = \"slack\"\nwebhook_url = \"{}/slack\"\n",
        hook_srv.url("http", "127.0.0.1"),
        slack_srv.url("http", "127.0.0.1")
    );
    let cfg = write_config(dir.path(), free_port(), &site, &sinks);
    let mut agent = spawn_agent(&cfg);
    wait_until(Duration::from_secs(20), "the firing webhook", || {
        hook.events().contains(&("firing".into(), "api".into()))
    })
    .await;
    wait_until(Duration::from_secs(10), "the firing Slack message", || {
        !slack.bodies().is_empty()
    })
    .await;
    healthy.store(true, Ordering::SeqCst);
    wait_until(Duration::from_secs(20), "the resolve webhook", || {
        hook.events().contains(&("resolved".into(), "api".into()))
    })
    .await;
    let _ = agent.kill().await;

    // The webhook: documented schema, custom header, and a signature over the exact body.
    let (headers, first) = hook.got.lock().unwrap()[0].clone();
    let a = &first["alerts"][0];
    assert_eq!(
        (first["version"].as_i64(), first["source"].as_str()),
        (Some(1), Some("shipwatch"))
    );
    assert_eq!(first["status_url"], "https://shipwatch.example/status");
    assert_eq!(
        (
            a["status"].as_str(),
            a["severity"].as_str(),
            a["env"].as_str()
        ),
        (Some("firing"), Some("critical"), Some("prod"))
    );
    assert_eq!(
        a["summary"],
        "[CRITICAL] prod api failing: status == 200 (was 503)"
    );
    assert_eq!(a["failed_runs"], 2);
    assert!(a["fingerprint"].as_str().unwrap().starts_with("prod:api:"));
    assert_eq!(a["problems"][0]["id"], "http.status");
    assert_eq!(headers.get("x-team").unwrap(), "ops");
    let body = serde_json::to_vec(&first).unwrap();
    let sig = headers
        .get("x-shipwatch-signature")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    // Re-encoding keeps the key order (preserve_order), so the signature can be checked here.
    assert_eq!(
        sig,
        format!(
            "sha256={}",
            shipwatch::sink::signature("hmac-test-secret", &body)
        )
    );
    assert_eq!(
        hook.events().iter().filter(|(e, _)| e == "firing").count(),
        1,
        "fired once"
    );

    // Slack: colour by severity, the finding with expected vs actual, and the status page link.
    let s = &slack.bodies()[0];
    assert_eq!(s["attachments"][0]["color"], "#e01e5a");
    let text = s.to_string();
    assert!(
        text.contains("`http.status` status == 200 (was 503)"),
        "{text}"
    );
    assert!(text.contains("<https://shipwatch.example/status|status page>"));
    let resolved = slack.bodies().last().unwrap().clone();
    assert_eq!(resolved["attachments"][0]["color"], "#2eb67d");

    // The target echoed the secret in its failing body; no message carries it.
    for b in hook.bodies().iter().chain(slack.bodies().iter()) {
        assert!(
            !b.to_string().contains(SECRET),
            "a message leaks the secret: {b}"
        );
    }
    assert!(
        hook.bodies()
            .iter()
            .any(|b| b.to_string().contains("‹redacted›"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_is_down_gets_everything_once_and_in_order_when_it_returns() {
    let healthy = Arc::new(AtomicBool::new(false));
    let site = target(healthy.clone()).await;
    let hook = Inbox::default();
    hook.down.store(true, Ordering::SeqCst);
    let srv = hook.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let sinks = format!(
        "[[alerts.sink]]\nkind = \"webhook\"\nurl = \"{}/hook\"\n",
        srv.url("http", "127.0.0.1")
    );
    let cfg = write_config(dir.path(), free_port(), &site, &sinks);
    let mut agent = spawn_agent(&cfg);
    // It fires and resolves while the receiver refuses everything.
    wait_until(Duration::from_secs(20), "a refused delivery", || {
        hook.refused.load(Ordering::SeqCst) >= 1
    })
    .await;
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    hook.down.store(false, Ordering::SeqCst);
    wait_until(Duration::from_secs(30), "both notifications", || {
        hook.events().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = agent.kill().await;
    assert_eq!(
        hook.events(),
        [
            ("firing".to_string(), "api".to_string()),
            ("resolved".to_string(), "api".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_delivery_loses_nothing_and_does_not_fire_again() {
    let healthy = Arc::new(AtomicBool::new(false));
    let site = target(healthy.clone()).await;
    let hook = Inbox::default();
    hook.down.store(true, Ordering::SeqCst);
    let srv = hook.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let sinks = format!(
        "[[alerts.sink]]\nkind = \"webhook\"\nurl = \"{}/hook\"\n",
        srv.url("http", "127.0.0.1")
    );
    let cfg = write_config(dir.path(), free_port(), &site, &sinks);
    let mut agent = spawn_agent(&cfg);
    wait_until(Duration::from_secs(20), "a refused delivery", || {
        hook.refused.load(Ordering::SeqCst) >= 1
    })
    .await;
    // SIGKILL: no chance to flush anything.
    let _ = agent.start_kill();
    let _ = agent.wait().await;
    let outbox = dir.path().join("state/outbox");
    assert_eq!(
        std::fs::read_dir(&outbox).unwrap().count(),
        1,
        "the firing notification waits on disk"
    );
    hook.down.store(false, Ordering::SeqCst);
    let mut agent = spawn_agent(&cfg);
    wait_until(
        Duration::from_secs(20),
        "the firing notification after the restart",
        || !hook.events().is_empty(),
    )
    .await;
    // The check still fails after the restart; it stays firing and does not fire again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = agent.kill().await;
    assert_eq!(hook.events(), [("firing".to_string(), "api".to_string())]);
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_checks_failing_at_once_arrive_as_one_message() {
    use shipwatch::agent::alerting::{Alerting, Settings};
    let hook = Inbox::default();
    let srv = hook.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = shipwatch::sink::Sink {
        name: "hook".into(),
        min_severity: shipwatch::alert::Severity::Warning,
        timeout: Duration::from_secs(5),
        max_batch: 50,
        max_bytes: 256 << 10,
        to: shipwatch::sink::Receiver::Webhook {
            url: format!("{}/hook", srv.url("http", "127.0.0.1")),
            headers: vec![],
            hmac_secret: None,
        },
    };
    let settings = Settings {
        rule: shipwatch::alert::Rule {
            failures: 1,
            ..Default::default()
        },
        sinks: vec![sink.clone()],
        ..Default::default()
    };
    let alerting = Arc::new(Alerting::open(dir.path(), settings).unwrap());
    let metrics = Arc::new(shipwatch::metrics::Metrics::new());
    for i in 0..20 {
        let err = shipwatch::probe::ProbeError {
            kind: "connect",
            message: "refused".into(),
        };
        alerting.observe(
            &shipwatch::runner::Outcome::could_not_run(&format!("svc-{i:02}"), "http", "prod", err),
            &metrics,
        );
    }
    let engine = shipwatch::net::Engine::new(&Default::default()).unwrap();
    let task = tokio::spawn(alerting.clone().deliver(sink, engine, metrics.clone()));
    wait_until(Duration::from_secs(10), "the batch", || {
        !hook.bodies().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    task.abort();
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "one message for the sink");
    assert_eq!(bodies[0]["alerts"].as_array().unwrap().len(), 20);
    assert!(
        metrics
            .encode()
            .contains("shipwatch_notifications_total{sink=\"hook\",outcome=\"sent\"} 20")
    );
}

/// A real Alertmanager receives the alert: active while the check fails, resolved after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_sees_the_alert_active_then_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let am_port = free_port();
    let am_cfg = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_cfg,
        "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let binary = alertmanager_binary();
    let mut am = tokio::process::Command::new(binary)
        .arg(format!("--config.file={}", am_cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let am_url = format!("http://127.0.0.1:{am_port}");
    let alerts = |url: String| async move {
        let engine = shipwatch::net::Engine::new(&Default::default()).ok()?;
        let req =
            shipwatch::net::Request::get(url::Url::parse(&format!("{url}/api/v2/alerts")).ok()?);
        let resp = engine
            .send(
                &req,
                &Default::default(),
                Instant::now() + Duration::from_secs(3),
            )
            .await
            .ok()?;
        serde_json::from_slice::<serde_json::Value>(&resp.body).ok()
    };
    let start = Instant::now();
    while alerts(am_url.clone()).await.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Alertmanager did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let healthy = Arc::new(AtomicBool::new(false));
    let site = target(healthy.clone()).await;
    let sinks = format!("[[alerts.sink]]\nkind = \"alertmanager\"\nurl = \"{am_url}\"\n");
    let cfg = write_config(dir.path(), free_port(), &site, &sinks);
    let mut agent = spawn_agent(&cfg);
    let find = |v: &serde_json::Value| -> Option<serde_json::Value> {
        v.as_array()?
            .iter()
            .find(|a| a["labels"]["check"] == "api")
            .cloned()
    };
    let mut active = None;
    for _ in 0..100 {
        if let Some(a) = alerts(am_url.clone()).await.as_ref().and_then(find) {
            active = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let a = active.expect("the alert reached Alertmanager");
    assert_eq!(a["status"]["state"], "active");
    assert_eq!(a["labels"]["alertname"], "ShipwatchCheckFailing");
    assert_eq!(
        (
            a["labels"]["env"].as_str(),
            a["labels"]["severity"].as_str(),
            a["labels"]["finding"].as_str()
        ),
        (Some("prod"), Some("critical"), Some("http.status"))
    );
    assert_eq!(a["generatorURL"], "https://shipwatch.example/status");
    assert!(!a.to_string().contains(SECRET));
    healthy.store(true, Ordering::SeqCst);
    let mut resolved = false;
    for _ in 0..150 {
        let now = alerts(am_url.clone()).await;
        if now.as_ref().is_some_and(|v| find(v).is_none()) {
            resolved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = agent.kill().await;
    let _ = am.kill().await;
    assert!(resolved, "the alert resolved in Alertmanager");
}

/// Starts the SMTP server from tests/support on `port`; messages land in `out` as JSON lines.
async fn smtp_server(port: u16, out: &Path, auth: Option<(&str, &str)>) -> tokio::process::Child {
    smtp_server_tls(port, out, auth, None).await
}

/// Like [`smtp_server`], with TLS: `(mode, cert, key)` where mode is starttls or smtps.
async fn smtp_server_tls(
    port: u16,
    out: &Path,
    auth: Option<(&str, &str)>,
    tls: Option<(&str, &Path, &Path)>,
) -> tokio::process::Child {
    let mut args: Vec<std::ffi::OsString> = vec![port.to_string().into(), out.into()];
    if let Some((u, p)) = auth {
        args.extend([u.into(), p.into()]);
    }
    if let Some((mode, cert, key)) = tls {
        args.extend([mode.into(), cert.into(), key.into()]);
    }
    support_server("smtp_sink.py", &args, "aiosmtpd").await
}

fn mails(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn email_sink(port: u16) -> String {
    format!(
        "[[alerts.sink]]\nkind = \"email\"\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nusername = \"shipwatch\"\npassword = {{ env = \"SW_HMAC\" }}\nfrom = \"shipwatch@example.com\"\nto = [\"oncall@example.com\", \"lead@example.com\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_arrives_with_subject_parts_and_recipients() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mail.jsonl");
    let port = free_port();
    let _smtp = smtp_server(port, &out, Some(("shipwatch", "hmac-test-secret"))).await;
    let healthy = Arc::new(AtomicBool::new(false));
    let site = target(healthy.clone()).await;
    let cfg = write_config(dir.path(), free_port(), &site, &email_sink(port));
    let mut agent = spawn_agent(&cfg);
    wait_until(Duration::from_secs(20), "the firing email", || {
        !mails(&out).is_empty()
    })
    .await;
    healthy.store(true, Ordering::SeqCst);
    wait_until(Duration::from_secs(20), "the resolve email", || {
        mails(&out).len() >= 2
    })
    .await;
    let _ = agent.kill().await;
    let m = mails(&out);
    assert_eq!(
        m[0]["subject"],
        "[CRITICAL] prod api failing: status == 200 (was 503)"
    );
    assert_eq!(
        m[0]["to"],
        serde_json::json!(["oncall@example.com", "lead@example.com"])
    );
    assert_eq!(
        (m[0]["from"].as_str(), m[0]["authenticated"].as_bool()),
        (Some("shipwatch@example.com"), Some(true))
    );
    let text = m[0]["parts"]["text/plain"].as_str().unwrap();
    let html = m[0]["parts"]["text/html"].as_str().unwrap();
    assert!(
        text.contains("http.status: status == 200 (was 503)")
            && text.contains("Status page: https://shipwatch.example/status"),
        "{text}"
    );
    assert!(
        html.contains("<li>http.status: status == 200 (was 503)</li>"),
        "{html}"
    );
    assert!(
        m[1]["subject"]
            .as_str()
            .unwrap()
            .contains("prod api resolved"),
        "{}",
        m[1]["subject"]
    );
    for mail in &m {
        assert!(
            !mail.to_string().contains(SECRET),
            "an email leaks the secret"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_up_delivers_everything_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mail.jsonl");
    let port = free_port();
    let healthy = Arc::new(AtomicBool::new(false));
    let site = target(healthy.clone()).await;
    let cfg = write_config(dir.path(), free_port(), &site, &email_sink(port));
    let mut agent = spawn_agent(&cfg);
    // Fire and resolve while no SMTP server listens; both wait in the outbox.
    tokio::time::sleep(Duration::from_secs(4)).await;
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(mails(&out).is_empty());
    let _smtp = smtp_server(port, &out, Some(("shipwatch", "hmac-test-secret"))).await;
    let all_text = || {
        mails(&out)
            .iter()
            .map(|m| m["parts"]["text/plain"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    wait_until(Duration::from_secs(40), "both notifications", || {
        all_text().contains("prod api resolved")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = agent.kill().await;
    // Both waited in the outbox, so they may arrive as one batched message; each exactly once, in order.
    let text = all_text();
    let (firing, resolved) = (
        "[CRITICAL] prod api failing",
        "[CRITICAL] prod api resolved",
    );
    assert_eq!(
        (text.matches(firing).count(), text.matches(resolved).count()),
        (1, 1),
        "{text}"
    );
    assert!(text.find(firing) < text.find(resolved), "{text}");
}

fn fixed_notification() -> shipwatch::alert::Notification {
    shipwatch::alert::Notification {
        fingerprint: "production:api-health:1795420800".into(),
        event: shipwatch::alert::Event::Firing,
        check: "api-health".into(),
        kind: "http".into(),
        env: "production".into(),
        severity: shipwatch::alert::Severity::Critical,
        problems: vec![shipwatch::alert::Problem {
            id: "http.status".into(),
            status: "fail".into(),
            message: "status == 200 (was 503)".into(),
            expected: Some("== 200".into()),
            actual: Some("503".into()),
        }],
        first_failure: 1795420680,
        started_at: 1795420800,
        at: 1795420800,
        failed_runs: 3,
        finding: "http.status".into(),
    }
}

/// A test message can never page anyone: every sink marks it as a test, and Alertmanager gets
/// an info-level alert of its own name that has already ended.
#[test]
fn a_test_message_says_so_in_every_sink() {
    let mut n = fixed_notification();
    n.event = shipwatch::alert::Event::Test;
    let n = [n];
    let url = "https://shipwatch.example/status";
    let am: serde_json::Value =
        serde_json::from_slice(&shipwatch::sink::alertmanager_payload(&n, url)).unwrap();
    assert_eq!(am[0]["labels"]["alertname"], "ShipwatchTest");
    assert_eq!(am[0]["labels"]["severity"], "info");
    assert_eq!(am[0]["endsAt"], am[0]["startsAt"]);
    let slack: serde_json::Value =
        serde_json::from_slice(&shipwatch::sink::slack_payload(&n, url)).unwrap();
    assert!(slack["text"].as_str().unwrap().starts_with("[TEST]"));
    let hook: serde_json::Value =
        serde_json::from_slice(&shipwatch::sink::webhook_payload(&n, url)).unwrap();
    assert_eq!(hook["alerts"][0]["event"], "test");
    let (subject, _, _) = shipwatch::sink::email_content(&n, url);
    assert!(subject.starts_with("[TEST]"), "{subject}");
}

/// The exact bytes each sink sends for a fixed notification, against files in tests/golden.
#[test]
fn payloads_match_the_golden_files() {
    let n = [fixed_notification()];
    let url = "https://shipwatch.example/status";
    for (name, bytes) in [
        ("webhook.json", shipwatch::sink::webhook_payload(&n, url)),
        ("slack.json", shipwatch::sink::slack_payload(&n, url)),
        (
            "alertmanager.json",
            shipwatch::sink::alertmanager_payload(&n, url),
        ),
    ] {
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
        )
        .unwrap()
            + "\n";
        golden(name, &pretty);
    }
    let (subject, text, html) = shipwatch::sink::email_content(&n, url);
    assert_eq!(
        subject,
        "[CRITICAL] production api-health failing: status == 200 (was 503)"
    );
    assert!(text.contains("  - http.status: status == 200 (was 503)\n"));
    assert!(html.contains("<a href=\"https://shipwatch.example/status\">"));
}

#[tokio::test]
async fn quiet_windows_and_minimum_severity_hold_notifications_back() {
    use shipwatch::agent::alerting::{Alerting, Settings};
    let sink = |name: &str, min| shipwatch::sink::Sink {
        name: name.into(),
        min_severity: min,
        timeout: Duration::from_secs(1),
        max_batch: 50,
        max_bytes: 256 << 10,
        to: shipwatch::sink::Receiver::Webhook {
            url: "http://127.0.0.1:1/".into(),
            headers: vec![],
            hmac_secret: None,
        },
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let rule = shipwatch::alert::Rule {
        failures: 1,
        ..Default::default()
    };
    let quiet = shipwatch::config::QuietSpec {
        start: now - 60,
        end: now + 3600,
        checks: vec!["quiet-one".into()],
    };
    let sinks = vec![
        sink("all", shipwatch::alert::Severity::Warning),
        sink("critical-only", shipwatch::alert::Severity::Critical),
    ];
    let dir = tempfile::tempdir().unwrap();
    let alerting = Alerting::open(
        dir.path(),
        Settings {
            rule,
            sinks,
            quiet: vec![quiet],
            ..Default::default()
        },
    )
    .unwrap();
    let metrics = shipwatch::metrics::Metrics::new();
    let warn = |name: &str| {
        let err = shipwatch::probe::ProbeError {
            kind: "dns",
            message: "x".into(),
        };
        let mut o = shipwatch::runner::Outcome::could_not_run(name, "http", "prod", err);
        o.error = None;
        o.status = shipwatch::probe::Status::Warn;
        o
    };
    alerting.observe(&warn("quiet-one"), &metrics);
    alerting.observe(&warn("loud-one"), &metrics);
    let outbox = |dir: &Path| std::fs::read_dir(dir.join("outbox")).unwrap().count();
    // The quiet check fired (the check still runs and its state moves) but nothing was queued;
    // the other warning went only to the sink that takes warnings.
    assert_eq!(outbox(dir.path()), 1);
    let exposition = metrics.encode();
    assert!(
        exposition.contains(
            "shipwatch_alert_firing{check=\"quiet-one\",env=\"prod\",severity=\"warning\"} 1.0"
        ),
        "{exposition}"
    );
    assert!(exposition.contains("shipwatch_notification_queue_depth 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_notify_sends_the_sign_off_and_notify_test_reports_each_sink() {
    let hook = Inbox::default();
    let down = Inbox::default();
    down.down.store(true, Ordering::SeqCst);
    let (hook_srv, down_srv) = (hook.serve().await, down.serve().await);
    let site = http_server(|r| {
        if r.path == "/ok" {
            Resp::new(200, "ok")
        } else {
            Resp::new(500, "no")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("shipwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[env.prod]\nbase_url = \"{}\"\n[[alerts.sink]]\nname = \"team-hook\"\nkind = \"webhook\"\nurl = \"{}/hook\"\n[[alerts.sink]]\nname = \"broken-slack\"\nkind = \"slack\"\nwebhook_url = \"{}/slack\"\n[[check]]\nname = \"ok\"\nkind = \"http\"\nurl = \"{{{{ base_url }}}}/ok\"\n[[check]]\nname = \"bad\"\nkind = \"http\"\nurl = \"{{{{ base_url }}}}/bad\"\n",
            site.url("http", "127.0.0.1"),
            hook_srv.url("http", "127.0.0.1"),
            down_srv.url("http", "127.0.0.1")
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_shipwatch");
    let out = tokio::process::Command::new(bin)
        .args(["check", "--notify", "-c"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run's exit code is about the checks"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sign-off sent to team-hook")
            && stderr.contains("sign-off to broken-slack failed"),
        "{stderr}"
    );
    let signoff = &hook.bodies()[0];
    assert_eq!(
        (signoff["type"].as_str(), signoff["status"].as_str()),
        (Some("signoff"), Some("fail"))
    );
    assert_eq!(
        signoff["summary"],
        serde_json::json!({"pass": 1, "warn": 0, "fail": 1, "error": 0})
    );
    assert_eq!(signoff["failing"][0]["check"], "bad");

    let out = tokio::process::Command::new(bin)
        .args(["notify", "--test", "-c"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("team-hook (webhook): ok") && text.contains("broken-slack (slack): failed"),
        "{text}"
    );
    let out = tokio::process::Command::new(bin)
        .args(["notify", "--test", "--sink", "team-hook", "-c"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let test = hook.bodies().last().unwrap()["alerts"][0].clone();
    assert_eq!(test["check"], "shipwatch-test");
    assert_eq!(
        (test["event"].as_str(), test["status"].as_str()),
        (Some("test"), Some("test"))
    );
    assert!(test["summary"].as_str().unwrap().starts_with("[TEST]"));
    let out = tokio::process::Command::new(bin)
        .args(["notify", "--test", "--sink", "nope", "-c"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// STARTTLS and implicit TLS, against a server whose certificate comes from a private CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_starttls_and_smtps_with_a_private_ca() {
    let pki = Pki::new();
    let id = pki.leaf(&["localhost"], 90);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("smtp.crt"), dir.path().join("smtp.key"));
    std::fs::write(&cert, format!("{}{}", id.cert_pem, pki.inter_pem)).unwrap();
    std::fs::write(&key, &id.key_pem).unwrap();
    let ca = pki.write_ca(&dir);
    for (mode, scheme) in [
        ("starttls", "smtp://localhost:{p}?tls=required"),
        ("smtps", "smtps://localhost:{p}"),
    ] {
        let out = dir.path().join(format!("{mode}.jsonl"));
        let port = free_port();
        let _smtp = smtp_server_tls(
            port,
            &out,
            Some(("shipwatch", "pw-over-tls")),
            Some((mode, &cert, &key)),
        )
        .await;
        let cfg = dir.path().join(format!("{mode}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[defaults]\nca_file = \"{}\"\n[[alerts.sink]]\nkind = \"email\"\nsmtp_url = \"{}\"\nusername = \"shipwatch\"\npassword = {{ env = \"SW_SMTP_PW\" }}\nfrom = \"shipwatch@example.com\"\nto = [\"oncall@example.com\"]\n",
                ca.display(),
                scheme.replace("{p}", &port.to_string())
            ),
        )
        .unwrap();
        let out_cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
            .args(["notify", "--test", "-c"])
            .arg(&cfg)
            .env("SW_SMTP_PW", "pw-over-tls")
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out_cmd.stdout);
        assert_eq!(
            out_cmd.status.code(),
            Some(0),
            "{mode}: {text}{}",
            String::from_utf8_lossy(&out_cmd.stderr)
        );
        let m = mails(&out);
        assert_eq!(m.len(), 1, "{mode}");
        assert_eq!(
            (m[0]["tls"].as_bool(), m[0]["authenticated"].as_bool()),
            (Some(true), Some(true)),
            "{mode}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_file_is_set_aside_and_the_agent_starts() {
    let site = target(Arc::new(AtomicBool::new(true))).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("outbox")).unwrap();
    std::fs::write(
        state.join("alerts.json"),
        b"{\"prod/api\": {\"firing\": \"crit",
    )
    .unwrap();
    std::fs::write(state.join("outbox/000000000001.json"), b"\x00\x00garbage").unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port, &site, "");
    let mut agent = spawn_agent(&cfg);
    let engine = shipwatch::net::Engine::new(&Default::default()).unwrap();
    let ready = url::Url::parse(&format!("http://127.0.0.1:{port}/readyz")).unwrap();
    let start = Instant::now();
    loop {
        let r = engine
            .send(
                &shipwatch::net::Request::get(ready.clone()),
                &Default::default(),
                Instant::now() + Duration::from_secs(2),
            )
            .await;
        if r.is_ok_and(|r| r.status == 200) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the agent did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = agent.kill().await;
    let names: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("alerts.corrupt-")),
        "{names:?}"
    );
    let outbox: Vec<String> = std::fs::read_dir(state.join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(outbox.iter().any(|n| n.contains(".corrupt-")), "{outbox:?}");
}
