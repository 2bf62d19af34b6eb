//! Running many agents: an Alertmanager cluster fed by two agents notifies once and survives
//! losing an instance; `--shard` splits a config and `validate --shard` lists a shard's checks;
//! `--location` labels every series.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// One member of a gossip cluster on loopback, sending to `receiver`.
fn alertmanager(
    dir: &Path,
    name: &str,
    web: u16,
    cluster: u16,
    peer: u16,
    receiver: &str,
) -> tokio::process::Child {
    let cfg = dir.join(format!("{name}.yml"));
    std::fs::write(
        &cfg,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, check, env]\n  group_wait: 1s\n  group_interval: 1m\n  repeat_interval: 4h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: {receiver}\n        send_resolved: false\n"
        ),
    )
    .unwrap();
    tokio::process::Command::new(alertmanager_binary())
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join(name).display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .arg(format!("--cluster.listen-address=127.0.0.1:{cluster}"))
        .arg(format!("--cluster.peer=127.0.0.1:{peer}"))
        .args([
            "--cluster.peer-timeout=5s",
            "--cluster.settle-timeout=2s",
            "--cluster.pushpull-interval=1s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// An agent watching `site` from `location`, alerting to every Alertmanager in `urls`.
fn agent_config(dir: &Path, port: u16, site: &str, location: &str, urls: &[String]) -> PathBuf {
    let list: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    let text = format!(
        r#"[agent]
listen = "127.0.0.1:{port}"
interval = "1s"
state_dir = "{state}"
location = "{location}"
[alerts]
failures = 1
[[alerts.sink]]
kind = "alertmanager"
urls = [{urls}]
[env.prod]
base_url = "{site}"
[[check]]
name = "orders"
kind = "http"
url = "{{{{ base_url }}}}/orders"
[[check]]
name = "payments"
kind = "http"
url = "{{{{ base_url }}}}/payments"
"#,
        state = dir.join(format!("state-{location}")).display(),
        urls = list.join(", "),
    );
    let path = dir.join(format!("{location}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits until `ok` holds, at most `limit`.
async fn until(limit: Duration, what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_cluster_notifies_once_and_survives_losing_an_instance() {
    // The receiver keeps the alert names (check) of every notification it gets.
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = got.clone();
    let receiver = http_server(move |r| {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.body) {
            for a in v["alerts"].as_array().into_iter().flatten() {
                let check = a["labels"]["check"].as_str().unwrap_or("").to_string();
                seen.lock().unwrap().push(check);
            }
        }
        Resp::new(200, "ok")
    })
    .await;
    let payments_down = Arc::new(AtomicBool::new(false));
    let down = payments_down.clone();
    let site = http_server(move |r| match r.path.as_str() {
        "/payments" if !down.load(Ordering::SeqCst) => Resp::new(200, "ok"),
        _ => Resp::new(503, "down"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (w1, w2, c1, c2) = (free_port(), free_port(), free_port(), free_port());
    let hook = format!("{}/hook", receiver.url("http", "127.0.0.1"));
    let mut am1 = alertmanager(dir.path(), "am1", w1, c1, c2, &hook);
    let _am2 = alertmanager(dir.path(), "am2", w2, c2, c1, &hook);
    for port in [w1, w2] {
        wait_for_port(port, "alertmanager").await;
    }
    // Let the two members find each other before alerts arrive.
    let status = |port: u16| async move {
        get(&format!("http://127.0.0.1:{port}/api/v2/status"))
            .await
            .map(|(_, b)| b)
            .unwrap_or_default()
    };
    let start = Instant::now();
    while status(w1).await.matches("\"address\"").count() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the Alertmanagers did not form a cluster"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let urls = [
        format!("http://127.0.0.1:{w1}"),
        format!("http://127.0.0.1:{w2}"),
    ];
    let base = site.url("http", "127.0.0.1");
    let (a1, a2) = (free_port(), free_port());
    let _agent_a = spawn_quiet_agent(&agent_config(dir.path(), a1, &base, "eu-west-1", &urls));
    let _agent_b = spawn_quiet_agent(&agent_config(dir.path(), a2, &base, "us-east-1", &urls));
    let count = |check: &str| got.lock().unwrap().iter().filter(|c| *c == check).count();
    until(Duration::from_secs(30), "the orders notification", || {
        count("orders") >= 1
    })
    .await;
    // Two agents, each sending to two Alertmanagers: four copies in, one notification out.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(count("orders"), 1, "{:?}", got.lock().unwrap());

    // One Alertmanager goes; a new alert still reaches the receiver, once.
    am1.start_kill().unwrap();
    let _ = am1.wait().await;
    payments_down.store(true, Ordering::SeqCst);
    until(Duration::from_secs(30), "the payments notification", || {
        count("payments") >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(count("payments"), 1, "{:?}", got.lock().unwrap());

    // Every series of each agent carries its location.
    let (_, metrics) = get(&format!("http://127.0.0.1:{a1}/metrics"))
        .await
        .unwrap();
    let orders = metrics
        .lines()
        .find(|l| l.starts_with("shipwatch_check_success{") && l.contains("check=\"orders\""))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        orders.contains("location=\"eu-west-1\"") && orders.ends_with(" 0.0"),
        "{orders}"
    );
    assert!(
        metrics
            .lines()
            .filter(|l| l.starts_with("shipwatch_"))
            .all(|l| l.contains("location=\"eu-west-1\""))
    );
}

fn shard_config(dir: &Path) -> PathBuf {
    let mut text = String::from(
        "[env.prod]\nbase_url = \"https://shop.example\"\n[env.staging]\nbase_url = \"https://staging.shop.example\"\n",
    );
    for i in 0..40 {
        text.push_str(&format!("[[check]]\nname = \"check-{i:02}\"\nkind = \"http\"\nurl = \"{{{{ base_url }}}}/{i}\"\n"));
    }
    let path = dir.join("shipwatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn shard_list(cfg: &Path, shard: &str, env: &[(&str, &str)]) -> (i32, Vec<String>, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"));
    cmd.args(["validate", "-c"])
        .arg(cfg)
        .args(["--shard", shard]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn validate_lists_each_shards_checks_and_resizing_moves_a_quarter() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = shard_config(dir.path());
    let mut three = Vec::new();
    for i in 0..3 {
        let (code, lines, err) = shard_list(&cfg, &format!("{i}/3"), &[]).await;
        assert_eq!(code, 0, "{err}");
        assert!(err.contains(&format!("shard {i}/3 runs")), "{err}");
        three.push(lines);
    }
    // Every pair in exactly one shard.
    let mut all: Vec<&String> = three.iter().flatten().collect();
    all.sort();
    all.dedup();
    assert_eq!(
        (all.len(), three.iter().map(Vec::len).sum::<usize>()),
        (80, 80)
    );
    assert!(
        all.iter()
            .all(|l| l.starts_with("prod/check-") || l.starts_with("staging/check-"))
    );
    // Growing to four: what moves goes to the new shard only, and is about a quarter.
    let (_, fourth, _) = shard_list(&cfg, "3/4", &[]).await;
    let mut kept = 0;
    for (i, before) in three.iter().enumerate() {
        let (_, lines, _) = shard_list(&cfg, &format!("{i}/4"), &[]).await;
        assert!(
            lines.iter().all(|l| before.contains(l)),
            "shard {i} took checks from another"
        );
        kept += lines.len();
    }
    assert_eq!(kept + fourth.len(), 80);
    assert!(
        (10..=30).contains(&fourth.len()),
        "{} of 80 moved",
        fourth.len()
    );
    // `auto` reads the StatefulSet ordinal and the count.
    let (code, auto, _) = shard_list(
        &cfg,
        "auto",
        &[("HOSTNAME", "shipwatch-2"), ("SHIPWATCH_SHARDS", "3")],
    )
    .await;
    assert_eq!((code, &auto), (0, &three[2]));
    let (code, _, err) = shard_list(
        &cfg,
        "auto",
        &[("HOSTNAME", "laptop"), ("SHIPWATCH_SHARDS", "3")],
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("HOSTNAME is \"laptop\""), "{err}");
    let (code, _, err) = shard_list(
        &cfg,
        "auto",
        &[("HOSTNAME", "shipwatch-5"), ("SHIPWATCH_SHARDS", "3")],
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("ordinal 5"), "{err}");
}
