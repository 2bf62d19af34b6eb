//! An agent that cannot be abused: the run API goes through the concurrency bound, shares runs and
//! is rate-limited; running out of file descriptors does not spin a core; slow request heads are
//! cut off.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

async fn call(
    method: &str,
    url: &str,
    auth: Option<&str>,
) -> Option<(u16, http::HeaderMap, String)> {
    let engine = shipwatch::net::Engine::new(&Default::default()).ok()?;
    let mut req = shipwatch::net::Request::get(url::Url::parse(url).ok()?);
    req.method = method.parse().ok()?;
    if let Some(a) = auth {
        req.headers.push(("Authorization".into(), a.into()));
    }
    let r = engine
        .send(
            &req,
            &Default::default(),
            Instant::now() + Duration::from_secs(30),
        )
        .await
        .ok()?;
    Some((
        r.status,
        r.headers,
        String::from_utf8_lossy(&r.body).into_owned(),
    ))
}

async fn until_up(base: &str) {
    let start = Instant::now();
    while call("GET", &format!("{base}/healthz"), None)
        .await
        .is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the agent never listened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A target that answers 200 ms after each request arrives and remembers the most requests it had
/// at once. A request counts as open for exactly those 200 ms from its arrival: the answer leaves
/// then, and a client bound by a permit can only send its next request after it has read it, so
/// a slow machine never inflates the count.
async fn slow_target() -> (Server, Arc<AtomicUsize>) {
    const ANSWER: Duration = Duration::from_millis(200);
    let most = Arc::new(AtomicUsize::new(0));
    let arrivals = Arc::new(std::sync::Mutex::new(Vec::<std::time::Instant>::new()));
    let m = most.clone();
    let s = http_server(move |_| {
        let now = std::time::Instant::now();
        let mut seen = arrivals.lock().unwrap();
        // Less a margin for the moment between the fixture's clock and this one.
        seen.retain(|t| now.duration_since(*t) < ANSWER - Duration::from_millis(10));
        seen.push(now);
        m.fetch_max(seen.len(), Ordering::SeqCst);
        Resp::new(200, "ok").delay(ANSWER)
    })
    .await;
    (s, most)
}

fn write_config(
    dir: &std::path::Path,
    port: u16,
    target: &str,
    checks: usize,
    extra: &str,
) -> std::path::PathBuf {
    let mut toml = format!(
        "[agent]\nlisten = \"127.0.0.1:{port}\"\ninterval = \"1h\"\nconcurrency = 4\nstate_dir = \"{}\"\napi_token = {{ env = \"SW_API_TOKEN\" }}\n{extra}\n",
        dir.join("state").display()
    );
    for i in 0..checks {
        toml.push_str(&format!(
            "[[check]]\nname = \"c{i}\"\nkind = \"http\"\nurl = \"{target}/c{i}\"\n"
        ));
    }
    let cfg = dir.join("agent.toml");
    std::fs::write(&cfg, toml).unwrap();
    cfg
}

fn spawn(cfg: &std::path::Path, fd_limit: Option<u32>) -> tokio::process::Child {
    let bin = env!("CARGO_BIN_EXE_shipwatch");
    let mut c = match fd_limit {
        Some(n) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" agent -c \"$1\""))
                .arg(bin)
                .arg(cfg);
            c
        }
        None => {
            let mut c = tokio::process::Command::new(bin);
            c.args(["agent", "-c"]).arg(cfg);
            c
        }
    };
    c.env("SW_API_TOKEN", "t0ken")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_parallel_run_calls_stay_within_the_bound_and_share_runs() {
    let (target, most) = slow_target().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port, &target.url("http", "127.0.0.1"), 5, "");
    let _agent = spawn(&cfg, None);
    let base = format!("http://127.0.0.1:{port}");
    until_up(&base).await;
    let before = target.hits.load(Ordering::SeqCst);
    let run = format!("{base}/api/v1/run");
    let calls = (0..100).map(|_| call("POST", &run, Some("Bearer t0ken")));
    let answers = futures_util::future::join_all(calls).await;
    let ok = answers
        .iter()
        .filter(|a| a.as_ref().is_some_and(|(s, _, _)| *s == 200))
        .count();
    let statuses: Vec<_> = answers
        .iter()
        .filter(|a| a.as_ref().is_none_or(|(s, _, _)| *s != 200))
        .map(|a| a.as_ref().map(|(s, _, b)| (*s, b.clone())))
        .collect();
    assert_eq!(
        ok, 100,
        "every caller gets the report; the others: {statuses:?}"
    );
    assert!(
        most.load(Ordering::SeqCst) <= 4,
        "at most concurrency = 4 probes at once, saw {}",
        most.load(Ordering::SeqCst)
    );
    let probes = target.hits.load(Ordering::SeqCst) - before;
    assert!(
        probes <= 15,
        "concurrent calls share runs: {probes} probes for 100 calls of 5 checks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_runs_than_the_rate_answer_429_with_retry_after() {
    let (target, _) = slow_target().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(
        dir.path(),
        port,
        &target.url("http", "127.0.0.1"),
        1,
        "api_runs_per_minute = 2",
    );
    let _agent = spawn(&cfg, None);
    let base = format!("http://127.0.0.1:{port}");
    until_up(&base).await;
    let run = format!("{base}/api/v1/run");
    for _ in 0..2 {
        assert_eq!(
            call("POST", &run, Some("Bearer t0ken")).await.unwrap().0,
            200
        );
    }
    let (status, headers, body) = call("POST", &run, Some("Bearer t0ken")).await.unwrap();
    assert_eq!(status, 429, "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "Retry-After: {retry}");
    assert!(body.contains("more than 2 runs a minute"), "{body}");
}

/// CPU seconds the process has used (user + system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_agent_backs_off_and_recovers() {
    let (target, _) = slow_target().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port, &target.url("http", "127.0.0.1"), 1, "");
    let agent = spawn(&cfg, Some(48));
    let pid = agent.id().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    until_up(&base).await;
    // Hold more connections than the agent has descriptors for.
    let mut held = Vec::new();
    for _ in 0..80 {
        if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            held.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_seconds(pid) - before;
    assert!(
        used < 0.5,
        "the agent used {used:.2} s of CPU in 2 s while out of descriptors"
    );
    drop(held);
    let start = Instant::now();
    loop {
        if call("GET", &format!("{base}/healthz"), None)
            .await
            .is_some_and(|(s, _, _)| s == 200)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "/healthz never answered again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_cut_off_and_others_are_served() {
    let (target, _) = slow_target().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port, &target.url("http", "127.0.0.1"), 1, "");
    let _agent = spawn(&cfg, None);
    let base = format!("http://127.0.0.1:{port}");
    until_up(&base).await;
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_eq!(
        call("GET", &format!("{base}/healthz"), None)
            .await
            .unwrap()
            .0,
        200
    );
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf))
        .await
        .expect("the agent closes a connection whose head never completes");
    let answer = String::from_utf8_lossy(&buf[..n.unwrap_or(0)]).into_owned();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}
