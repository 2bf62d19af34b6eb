//! Deliveries that fit what receivers accept: a backlog built up while a receiver was down
//! arrives in bounded messages, halves of a refused message get through, a notification refused
//! for good goes to the dead-letter folder without blocking the rest, Slack's Block Kit limits
//! hold, `Retry-After` is honoured, and `kill -9` while split messages are in flight loses
//! nothing. Every receiver is a real HTTP server on loopback; the agent is the real binary.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::time::Instant;

/// Like many proxies and API gateways: bodies over 20 KB are refused with 413.
const LIMIT: usize = 20 << 10;

/// One alert as a receiver saw it.
#[derive(Debug, Clone)]
struct Got {
    at: Instant,
    fingerprint: String,
    event: String,
    check: String,
}

/// What a webhook receiver saw: accepted alerts in arrival order, and every answer it gave.
#[derive(Clone, Default)]
struct Seen {
    alerts: Arc<Mutex<Vec<Got>>>,
    answers: Arc<Mutex<Vec<(Instant, u16)>>>,
}

impl Seen {
    fn alerts(&self) -> Vec<Got> {
        self.alerts.lock().unwrap().clone()
    }

    fn answered(&self, status: u16) -> usize {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| *s == status)
            .count()
    }

    /// Firing notifications per check, as distinct fingerprints.
    fn firing(&self) -> BTreeMap<String, Vec<String>> {
        let mut per: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for g in self.alerts().iter().filter(|g| g.event == "firing") {
            let fps = per.entry(g.check.clone()).or_default();
            if !fps.contains(&g.fingerprint) {
                fps.push(g.fingerprint.clone());
            }
        }
        per
    }
}

/// A webhook receiver. `answer` may refuse a body before it is recorded.
fn receiver(
    seen: &Seen,
    answer: impl Fn(&[u8]) -> Option<Resp> + Send + Sync + 'static,
) -> Handler {
    let seen = seen.clone();
    Arc::new(move |r: &Req| {
        let now = Instant::now();
        if let Some(refusal) = answer(&r.body) {
            seen.answers.lock().unwrap().push((now, refusal.status));
            return refusal;
        }
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        for a in body["alerts"].as_array().cloned().unwrap_or_default() {
            seen.alerts.lock().unwrap().push(Got {
                at: now,
                fingerprint: a["fingerprint"].as_str().unwrap_or("").into(),
                event: a["event"].as_str().unwrap_or("").into(),
                check: a["check"].as_str().unwrap_or("").into(),
            });
        }
        seen.answers.lock().unwrap().push((now, 200));
        Resp::new(200, "ok")
    })
}

fn too_large(body: &[u8]) -> Option<Resp> {
    (body.len() > LIMIT).then(|| Resp::new(413, "Request Entity Too Large"))
}

/// A target where every check fails until its name is in `healthy`.
async fn target(healthy: Arc<Mutex<Vec<String>>>) -> Server {
    http_server(move |r| {
        let name = r.path.trim_start_matches('/').to_string();
        if healthy.lock().unwrap().contains(&name) {
            Resp::new(200, "ok")
        } else {
            Resp::new(
                503,
                "the upstream database connection pool is exhausted; every request is failing",
            )
        }
    })
    .await
}

fn checks(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("service-{i:02}")).collect()
}

fn config(port: u16, state: &Path, target: &str, sink: &str, checks: &[String]) -> String {
    let mut s = format!(
        "[agent]\nlisten = \"127.0.0.1:{port}\"\ninterval = \"1s\"\nstate_dir = \"{}\"\n\
         [alerts]\nbatch_window = \"200ms\"\nfailures = 1\nsuccesses = 1\n\
         [[alerts.sink]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{sink}/hook\"\n",
        state.display(),
    );
    for c in checks {
        s.push_str(&format!(
            "[[check]]\nname = \"{c}\"\nkind = \"http\"\nurl = \"{target}/{c}\"\n"
        ));
    }
    s
}

async fn wait_until(limit: Duration, what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each check's firing arrived once (or repeated under one fingerprint), and each resolve after
/// its firing.
fn assert_once_and_in_order(seen: &Seen, names: &[String]) {
    let firing = seen.firing();
    for c in names {
        assert_eq!(
            firing.get(c).map(Vec::len),
            Some(1),
            "{c}: one firing fingerprint, got {:?}",
            firing.get(c)
        );
    }
    let alerts = seen.alerts();
    for c in names {
        let events: Vec<&str> = alerts
            .iter()
            .filter(|g| &g.check == c)
            .map(|g| g.event.as_str())
            .collect();
        if let Some(r) = events.iter().position(|e| *e == "resolved") {
            assert!(
                events[..r].contains(&"firing"),
                "{c}: resolved before firing: {events:?}"
            );
        }
    }
}

/// The reproduction: 60 checks fail while the receiver is down for 10 s; it comes back
/// refusing bodies over 20 KB. Everything arrives, each once, in order per check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_for_a_receiver_back_with_a_size_limit_arrives_whole() {
    let names = checks(60);
    let healthy = Arc::new(Mutex::new(Vec::new()));
    let site = target(healthy.clone()).await;
    let hook_port = free_port();
    let hook_url = format!("http://127.0.0.1:{hook_port}");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("a.toml");
    let state = dir.path().join("state");
    std::fs::write(
        &cfg,
        config(
            port,
            &state,
            &site.url("http", "127.0.0.1"),
            &hook_url,
            &names,
        ),
    )
    .unwrap();
    let _agent = spawn_quiet_agent(&cfg);
    // While the receiver is away, ten checks recover: their resolves queue behind their firing.
    tokio::time::sleep(Duration::from_secs(7)).await;
    healthy.lock().unwrap().extend(names[..10].iter().cloned());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = Seen::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", hook_port))
        .await
        .unwrap();
    let back = Instant::now();
    let _hook = serve_on(listener, receiver(&seen, too_large), None);
    wait_until(Duration::from_secs(60), "every notification", || {
        let firing = seen.firing();
        let resolved = seen
            .alerts()
            .iter()
            .filter(|g| g.event == "resolved")
            .count();
        names.iter().all(|c| firing.contains_key(c)) && resolved >= 10
    })
    .await;
    let last = seen.alerts().iter().map(|g| g.at).max().unwrap();
    eprintln!(
        "receiver back → last notification delivered: {:.2} s; {} messages accepted, {} refused with 413",
        last.duration_since(back).as_secs_f64(),
        seen.answered(200),
        seen.answered(413)
    );
    assert!(
        seen.answered(413) >= 1,
        "the backlog was over the limit at least once"
    );
    assert_once_and_in_order(&seen, &names);
    assert!(
        !state.join("dead").exists() || std::fs::read_dir(state.join("dead")).unwrap().count() == 0,
        "nothing was refused for good"
    );
}

/// Slack's documented limits, enforced the way Slack does: 400 for the whole message.
fn block_kit_violation(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let too_long =
        |t: &serde_json::Value, max: usize| t.as_str().is_some_and(|s| s.chars().count() > max);
    if too_long(&v["text"], 40_000) {
        return Some("text over 40000 characters".into());
    }
    let attachments = v["attachments"].as_array().cloned().unwrap_or_default();
    if attachments.len() > 20 {
        return Some(format!("{} attachments", attachments.len()));
    }
    let mut blocks = v["blocks"].as_array().cloned().unwrap_or_default();
    for a in &attachments {
        blocks.extend(a["blocks"].as_array().cloned().unwrap_or_default());
    }
    if blocks.len() > 50 {
        return Some(format!("{} blocks", blocks.len()));
    }
    for b in &blocks {
        if too_long(&b["text"]["text"], 3000) {
            return Some("a section text over 3000 characters".into());
        }
        let elements = b["elements"].as_array().cloned().unwrap_or_default();
        if elements.len() > 10 || elements.iter().any(|e| too_long(&e["text"], 3000)) {
            return Some("a context over its limits".into());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_alerts_with_long_findings_reach_slack_in_valid_messages() {
    use shipwatch::agent::alerting::{Alerting, Settings};
    let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let (b, r) = (bodies.clone(), refused.clone());
    let slack = http_server(move |req| match block_kit_violation(&req.body) {
        Some(why) => {
            r.fetch_add(1, Ordering::SeqCst);
            Resp::new(400, format!("invalid_blocks: {why}"))
        }
        None => {
            b.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&req.body).into_owned());
            Resp::new(200, "ok")
        }
    })
    .await;
    let config = shipwatch::config::Config::parse(
        "slack.toml",
        &format!(
            "[[alerts.sink]]\nkind = \"slack\"\nwebhook_url = \"{}/services/T0/B0/x\"\n\
             [[check]]\nname = \"x\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n",
            slack.url("http", "127.0.0.1")
        ),
    )
    .unwrap();
    let sinks = shipwatch::sink::from_config(&config, &|_, _| Ok(String::new())).unwrap();
    let sink = sinks[0].clone();
    assert_eq!(sink.max_batch, 20, "Slack's default batch");
    let dir = tempfile::tempdir().unwrap();
    let alerting = Arc::new(
        Alerting::open(
            dir.path(),
            Settings {
                rule: shipwatch::alert::Rule {
                    failures: 1,
                    ..Default::default()
                },
                sinks: vec![sink.clone()],
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let metrics = Arc::new(shipwatch::metrics::Metrics::new());
    for i in 0..40 {
        let mut o = shipwatch::runner::Outcome::could_not_run(
            &format!("checkout-{i:02}"),
            "http",
            "production",
            shipwatch::probe::ProbeError {
                kind: "assert",
                message: "assertions failed".into(),
            },
        );
        o.error = None;
        o.status = shipwatch::probe::Status::Fail;
        o.findings = (0..30)
            .map(|j| shipwatch::probe::Finding {
                id: format!("http.{j}"),
                status: shipwatch::probe::Status::Fail,
                message: format!(
                    "body contains \"{}\" (was \"<html>{}</html>\")",
                    "expected-token ".repeat(12),
                    "an error page & more ".repeat(20)
                ),
                expected: Some(format!("contains \"{}\"", "expected-token ".repeat(12))),
                actual: Some(format!(
                    "<html>{}</html>",
                    "an error page & more ".repeat(20)
                )),
            })
            .collect();
        alerting.observe(&o, &metrics);
    }
    let engine = shipwatch::net::Engine::new(&Default::default()).unwrap();
    let task = tokio::spawn(alerting.clone().deliver(sink, engine, metrics.clone()));
    wait_until(Duration::from_secs(20), "two messages", || {
        bodies.lock().unwrap().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    task.abort();
    assert_eq!(refused.load(Ordering::SeqCst), 0, "every message was valid");
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "40 alerts in messages of 20");
    let all = got.join("\n");
    for i in 0..40 {
        assert!(
            all.contains(&format!("checkout-{i:02}")),
            "checkout-{i:02} is in a message"
        );
    }
    assert!(all.contains("20 alerts fired in production: 20 critical"));
    assert!(all.contains("more findings"));
    assert!(all.contains("&amp; more"), "mrkdwn is escaped");
    assert!(
        metrics
            .encode()
            .contains("shipwatch_notifications_total{sink=\"slack\",outcome=\"sent\"} 40")
    );
}

/// One notification the receiver refuses for ever: it goes to the dead-letter folder and the
/// status page, the others and later ones arrive, and `notify --retry-dead` re-sends it once the
/// receiver takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_notification_is_dead_lettered_and_re_sent_later() {
    let names: Vec<String> = ["billing", "poison", "search", "cart"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let healthy = Arc::new(Mutex::new(vec!["late".to_string()]));
    let site = target(healthy.clone()).await;
    let seen = Seen::default();
    let cured = Arc::new(AtomicBool::new(false));
    let c = cured.clone();
    let hook = serve_on(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        receiver(&seen, move |body| {
            let poisoned = String::from_utf8_lossy(body).contains("\"check\":\"poison\"");
            (poisoned && !c.load(Ordering::SeqCst)).then(|| {
                Resp::new(
                    400,
                    "{\"error\":\"field 'summary' is not allowed to mention poison\"}",
                )
            })
        }),
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("a.toml");
    let state = dir.path().join("state");
    let mut all = names.clone();
    all.push("late".into());
    std::fs::write(
        &cfg,
        config(
            port,
            &state,
            &site.url("http", "127.0.0.1"),
            &hook.url("http", "127.0.0.1"),
            &all,
        ),
    )
    .unwrap();
    let _agent = spawn_quiet_agent(&cfg);
    wait_until(Duration::from_secs(30), "the healthy ones", || {
        let f = seen.firing();
        ["billing", "search", "cart"]
            .iter()
            .all(|c| f.contains_key(*c))
    })
    .await;
    let dead = state.join("dead");
    wait_until(Duration::from_secs(20), "a dead letter", || {
        std::fs::read_dir(&dead).is_ok_and(|d| d.count() == 1)
    })
    .await;
    let letter = std::fs::read_dir(&dead)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&letter).unwrap();
    assert!(text.contains("\"check\": \"poison\""), "{text}");
    assert!(text.contains("hook answered 400"), "{text}");
    assert!(text.contains("not allowed to mention poison"), "{text}");
    // A later failure still arrives: the refused one blocks nothing.
    healthy.lock().unwrap().clear();
    wait_until(Duration::from_secs(20), "the later one", || {
        seen.firing().contains_key("late")
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let (_, page) = get(&format!("{base}/")).await.unwrap();
    assert!(page.contains("Undelivered notifications"), "{page}");
    assert!(page.contains("poison") && page.contains("notify --retry-dead"));
    let (_, metrics) = get(&format!("{base}/metrics")).await.unwrap();
    assert!(
        metrics.contains("shipwatch_notifications_total{sink=\"hook\",outcome=\"rejected\"} 1"),
        "{metrics}"
    );
    assert!(!seen.firing().contains_key("poison"));
    // Still refused: the letter stays, exit 1.
    let retry = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
            .args(["notify", "--retry-dead", "-c"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let out = retry();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("refused again"));
    assert!(letter.exists());
    cured.store(true, Ordering::SeqCst);
    let out = retry();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("1 dead letters sent, 0 kept"), "{stdout}");
    assert!(!letter.exists());
    assert_eq!(seen.firing().get("poison").map(Vec::len), Some(1));
}

/// 429 with `Retry-After: 2` is waited out, and `kill -9` while the halves of a refused message
/// are in flight loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_and_kill_9_mid_split_loses_nothing() {
    let names = checks(60);
    let site = target(Arc::default()).await;
    let seen = Seen::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    let inner = receiver(&seen, too_large);
    let slow = seen.clone();
    let hook = serve_on(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        Arc::new(move |r: &Req| {
            if n.fetch_add(1, Ordering::SeqCst) == 0 {
                slow.answers.lock().unwrap().push((Instant::now(), 429));
                return Resp::new(429, "slow down").header("retry-after", "2");
            }
            // Each accepted message takes a while, so the agent is killed with halves in flight.
            inner(r).delay(Duration::from_millis(400))
        }),
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("a.toml");
    let state = dir.path().join("state");
    std::fs::write(
        &cfg,
        config(
            port,
            &state,
            &site.url("http", "127.0.0.1"),
            &hook.url("http", "127.0.0.1"),
            &names,
        ),
    )
    .unwrap();
    let mut agent = spawn_quiet_agent(&cfg);
    wait_until(Duration::from_secs(30), "a first accepted message", || {
        seen.answered(200) >= 1
    })
    .await;
    agent.kill().await.unwrap();
    let delivered_before = seen.firing().len();
    let _agent = spawn_quiet_agent(&cfg);
    wait_until(Duration::from_secs(60), "every notification", || {
        seen.firing().len() == names.len()
    })
    .await;
    let answers = seen.answers.lock().unwrap().clone();
    let (told, _) = answers[0];
    assert_eq!(answers[0].1, 429);
    let after = answers[1].0.duration_since(told);
    assert!(
        after >= Duration::from_millis(1950) && after < Duration::from_secs(4),
        "the next try came {after:?} after Retry-After: 2"
    );
    assert!(seen.answered(413) >= 1, "the backlog was split");
    assert!(
        delivered_before < names.len(),
        "the agent was killed with notifications still to deliver ({delivered_before} of 60 arrived)"
    );
    assert_once_and_in_order(&seen, &names);
}

/// Over the outbox's bound, the oldest notifications are dropped: counted, listed, never silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_drops_the_oldest_and_says_so() {
    use shipwatch::agent::alerting::{Alerting, Settings};
    let config = shipwatch::config::Config::parse(
        "a.toml",
        &format!(
            "[[alerts.sink]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/\"\n\
             [[check]]\nname = \"x\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n",
            free_port()
        ),
    )
    .unwrap();
    let sink = shipwatch::sink::from_config(&config, &|_, _| Ok(String::new())).unwrap()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let alerting = Arc::new(
        Alerting::open(
            dir.path(),
            Settings {
                rule: shipwatch::alert::Rule {
                    failures: 1,
                    ..Default::default()
                },
                sinks: vec![sink.clone()],
                backlog: shipwatch::config::Backlog {
                    max: 2,
                    max_age: Duration::from_secs(86_400),
                },
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let metrics = Arc::new(shipwatch::metrics::Metrics::new());
    for i in 0..5 {
        alerting.observe(
            &shipwatch::runner::Outcome::could_not_run(
                &format!("svc-{i}"),
                "http",
                "prod",
                shipwatch::probe::ProbeError {
                    kind: "connect",
                    message: "refused".into(),
                },
            ),
            &metrics,
        );
    }
    let engine = shipwatch::net::Engine::new(&Default::default()).unwrap();
    let task = tokio::spawn(alerting.clone().deliver(sink, engine, metrics.clone()));
    wait_until(Duration::from_secs(10), "the drops", || {
        alerting.dropped().overflowed == 3
    })
    .await;
    task.abort();
    let dropped = alerting.dropped();
    assert_eq!(dropped.latest.len(), 3);
    assert!(dropped.latest[0].contains("svc-0") && dropped.latest[0].contains("outbox_max"));
    assert!(
        metrics
            .encode()
            .contains("shipwatch_notifications_total{sink=\"hook\",outcome=\"dropped\"} 3")
    );
}

/// Checks run jittered, so a bad deploy fails them seconds apart; the default 5 s batch window
/// still makes one message of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_checks_failing_seconds_apart_make_one_message() {
    let names = checks(20);
    let site = target(Arc::default()).await;
    let seen = Seen::default();
    let hook = serve_on(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        receiver(&seen, |_| None),
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("a.toml");
    let text = config(
        port,
        &dir.path().join("state"),
        &site.url("http", "127.0.0.1"),
        &hook.url("http", "127.0.0.1"),
        &names,
    )
    .replace("batch_window = \"200ms\"\n", "");
    std::fs::write(&cfg, text).unwrap();
    let _agent = spawn_quiet_agent(&cfg);
    wait_until(Duration::from_secs(30), "the alerts", || {
        seen.firing().len() == 20
    })
    .await;
    // A little longer, in case a second message was on its way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(seen.answered(200), 1, "one message for 20 alerts");
}
