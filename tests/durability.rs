//! No alert is lost: a `state_dir` that cannot be written keeps notifications in memory and
//! says so, and 200 alert cycles with `kill -9` at random moments deliver every notification,
//! repeated only under the same fingerprint.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::time::Instant;

/// Every alert received, as (fingerprint, event, check), in arrival order.
type Received = Arc<Mutex<Vec<(String, String, String)>>>;

async fn receiver(up: Arc<AtomicBool>) -> (Server, Received) {
    let got: Received = Arc::default();
    let rec = got.clone();
    let s = http_server(move |r| {
        if !up.load(Ordering::SeqCst) {
            return Resp::new(503, "down");
        }
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        for a in body["alerts"].as_array().cloned().unwrap_or_default() {
            rec.lock().unwrap().push((
                a["fingerprint"].as_str().unwrap_or("").into(),
                a["event"].as_str().unwrap_or("").into(),
                a["check"].as_str().unwrap_or("").into(),
            ));
        }
        Resp::new(200, "ok")
    })
    .await;
    (s, got)
}

async fn wait_until<F, Fut>(limit: Duration, what: &str, mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !ok().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(port: u16, state: &Path, target: &str, hook: &Server, checks: &[String]) -> String {
    let mut s = format!(
        "[agent]\nlisten = \"127.0.0.1:{port}\"\ninterval = \"200ms\"\nstate_dir = \"{}\"\n\
         [alerts]\nbatch_window = \"200ms\"\nfailures = 1\nsuccesses = 1\n\
         [[alerts.sink]]\nkind = \"webhook\"\nurl = \"{}/hook\"\n",
        state.display(),
        hook.url("http", "127.0.0.1")
    );
    for c in checks {
        s.push_str(&format!(
            "[[check]]\nname = \"{c}\"\nkind = \"http\"\nurl = \"{target}/{c}\"\n"
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_state_dir_keeps_notifications_until_it_comes_back() {
    let healthy = Arc::new(AtomicBool::new(true));
    let h = healthy.clone();
    let site = http_server(move |_| {
        if h.load(Ordering::SeqCst) {
            Resp::new(200, "ok")
        } else {
            Resp::new(503, "down")
        }
    })
    .await;
    let up = Arc::new(AtomicBool::new(false));
    let (hook, got) = receiver(up.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let port = free_port();
    let cfg = dir.path().join("a.toml");
    std::fs::write(
        &cfg,
        config(
            port,
            &state,
            &site.url("http", "127.0.0.1"),
            &hook,
            &["api".into()],
        ),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut agent = spawn_quiet_agent(&cfg);
    wait_until(Duration::from_secs(20), "ready", || async {
        get(&format!("{base}/readyz"))
            .await
            .is_some_and(|(s, _)| s == 200)
    })
    .await;
    // The state_dir is taken away: a file where the directory was.
    std::fs::rename(&state, dir.path().join("state.away")).unwrap();
    std::fs::write(&state, "not a directory").unwrap();
    healthy.store(false, Ordering::SeqCst);
    wait_until(
        Duration::from_secs(20),
        "/readyz to report the outbox",
        || async {
            get(&format!("{base}/readyz"))
                .await
                .is_some_and(|(s, b)| s == 503 && b.contains("cannot write the outbox"))
        },
    )
    .await;
    let metrics = get(&format!("{base}/metrics")).await.unwrap().1;
    let errors = metrics
        .lines()
        .find(|l| l.starts_with("shipwatch_outbox_write_errors_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "{metrics}");
    // The directory comes back: the notification is written, and survives a kill -9.
    std::fs::remove_file(&state).unwrap();
    std::fs::rename(dir.path().join("state.away"), &state).unwrap();
    wait_until(Duration::from_secs(20), "ready again", || async {
        get(&format!("{base}/readyz"))
            .await
            .is_some_and(|(s, _)| s == 200)
    })
    .await;
    let _ = agent.start_kill();
    let _ = agent.wait().await;
    assert!(
        got.lock().unwrap().is_empty(),
        "nothing could be delivered yet"
    );
    up.store(true, Ordering::SeqCst);
    let mut agent = spawn_quiet_agent(&cfg);
    wait_until(
        Duration::from_secs(20),
        "the firing notification",
        || async { !got.lock().unwrap().is_empty() },
    )
    .await;
    let _ = agent.kill().await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got[0].1, "firing", "{got:?}");
    assert!(
        got.iter().all(|(f, e, _)| f == &got[0].0 && e == "firing"),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_alert_cycles_with_kill_9_lose_nothing() {
    const CHECKS: usize = 16;
    let checks: Vec<String> = (0..CHECKS).map(|i| format!("c{i:02}")).collect();
    let started = std::time::Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let halt = stop.clone();
    // Each check flips between healthy and failing every 1.1 s, out of step with the others.
    let site = http_server(move |r| {
        let i: u64 = r.path.trim_start_matches("/c").parse().unwrap_or(0);
        let t = started.elapsed().as_millis() as u64 + i * 137;
        let failing = !halt.load(Ordering::SeqCst) && (t / 1100) % 2 == 1;
        if failing {
            Resp::new(503, "down")
        } else {
            Resp::new(200, "ok")
        }
    })
    .await;
    let up = Arc::new(AtomicBool::new(true));
    let (hook, got) = receiver(up.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        config(
            port,
            &dir.path().join("state"),
            &site.url("http", "127.0.0.1"),
            &hook,
            &checks,
        ),
    )
    .unwrap();
    // A fixed seed keeps the kill schedule the same from run to run.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut kills = 0;
    let limit = Instant::now() + Duration::from_secs(150);
    loop {
        let fingerprints: usize = {
            let g = got.lock().unwrap();
            let mut f: Vec<&String> = g
                .iter()
                .filter(|x| x.1 == "resolved")
                .map(|x| &x.0)
                .collect();
            f.sort();
            f.dedup();
            f.len()
        };
        if fingerprints >= 200 || Instant::now() > limit {
            break;
        }
        let mut agent = spawn_quiet_agent(&cfg);
        tokio::time::sleep(Duration::from_millis(150 + next() % 900)).await;
        let _ = agent.start_kill();
        let _ = agent.wait().await;
        kills += 1;
    }
    // Everything heals; one last agent delivers what is left.
    stop.store(true, Ordering::SeqCst);
    let mut agent = spawn_quiet_agent(&cfg);
    let outbox = dir.path().join("state/outbox");
    wait_until(
        Duration::from_secs(30),
        "every alert resolved and delivered",
        || async {
            let g = got.lock().unwrap().clone();
            let mut open: BTreeMap<&str, bool> = BTreeMap::new();
            for (f, e, _) in &g {
                if e == "firing" {
                    open.entry(f).or_insert(true);
                } else if e == "resolved" {
                    open.insert(f, false);
                }
            }
            !open.values().any(|o| *o)
                && std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0) == 0
        },
    )
    .await;
    let _ = agent.kill().await;
    let g = got.lock().unwrap().clone();
    // Per fingerprint: a firing and a resolve, nothing else; per check, episodes never overlap.
    let mut events: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (f, e, _) in &g {
        events.entry(f).or_default().push(e);
    }
    for (f, e) in &events {
        let mut kinds = e.clone();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds, ["firing", "resolved"], "{f}: {e:?}");
    }
    for c in &checks {
        let mut open: Option<&str> = None;
        for (f, e, _) in g.iter().filter(|x| &x.2 == c) {
            match (e.as_str(), open) {
                ("firing", None) => open = Some(f),
                ("firing", Some(o)) => {
                    assert_eq!(o, f, "{c}: a new alert fired while {o} was open")
                }
                ("resolved", Some(o)) if o == f => open = None,
                // A repeat of a delivery that was cut short by a kill.
                ("resolved", _) => {}
                _ => {}
            }
        }
    }
    let cycles = events.len();
    eprintln!("{cycles} alert cycles delivered across {kills} kill -9s");
    assert!(cycles >= 200, "{cycles} cycles in {kills} kills");
    assert!(kills >= 20, "{kills} kills");
}
