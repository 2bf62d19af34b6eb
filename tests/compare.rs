//! `check --baseline`: a run compared with the last deploy's JSON report, against real servers
//! whose behaviour changes between the two runs.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;

/// The tests time latency: they run one at a time, so they do not load each other's client.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the site does on this run.
#[derive(Clone, Default)]
struct Knobs {
    delay_us: Arc<AtomicU64>,
    hsts: Arc<AtomicBool>,
    broken: Arc<AtomicBool>,
    weak_csp: Arc<AtomicBool>,
}

async fn site(k: &Knobs) -> Server {
    let k = k.clone();
    http_server(move |r| {
        let mut resp = match r.path.as_str() {
            "/health" if k.broken.load(Ordering::SeqCst) => Resp::new(503, "down"),
            "/health" => Resp::new(200, "ok"),
            _ => Resp::html("<html><body>shop</body></html>"),
        };
        resp = resp.delay(Duration::from_micros(k.delay_us.load(Ordering::SeqCst)));
        if k.hsts.load(Ordering::SeqCst) {
            resp = resp.hardened();
        }
        if k.weak_csp.load(Ordering::SeqCst) {
            resp.headers.retain(|(h, _)| h != "content-security-policy");
            resp = resp.header(
                "content-security-policy",
                "default-src * 'unsafe-inline' 'unsafe-eval'",
            );
        }
        resp
    })
    .await
}

fn config(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("shipwatch.toml");
    std::fs::write(
        &path,
        format!(
            "[env.production]\nbase_url = \"{url}\"\n\
             [[check]]\nname = \"health\"\nkind = \"http\"\nurl = \"{{{{ base_url }}}}/health\"\n\
             [[check]]\nname = \"health-latency\"\nkind = \"latency\"\nurl = \"{{{{ base_url }}}}/health\"\nrequests = 200\nconcurrency = 4\nexpect = ['p95 < 5s']\n\
             [[check]]\nname = \"headers\"\nkind = \"headers\"\nurl = \"{{{{ base_url }}}}/\"\nmin_grade = \"F\"\n"
        ),
    )
    .unwrap();
    path
}

async fn shipwatch(dir: &Path, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap()
}

/// Runs the checks and keeps the JSON report as the baseline.
async fn baseline(dir: &Path) {
    let out = shipwatch(dir, &["check", "--format", "json", "--output", "base.json"]).await;
    assert!(
        dir.join("base.json").exists(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `regress.*` findings of a run against the baseline, as (check, id, status).
async fn compared(dir: &Path) -> (i32, Vec<(String, String, String)>) {
    let out = shipwatch(
        dir,
        &["check", "--baseline", "base.json", "--format", "json"],
    )
    .await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let mut found = Vec::new();
    for c in report["checks"].as_array().unwrap() {
        for f in c["findings"].as_array().unwrap() {
            let id = f["id"].as_str().unwrap();
            if id.starts_with("regress.") {
                found.push((
                    c["name"].as_str().unwrap().to_string(),
                    id.to_string(),
                    f["status"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    (out.status.code().unwrap_or(-1), found)
}

fn has(found: &[(String, String, String)], check: &str, id: &str, status: &str) -> bool {
    found
        .iter()
        .any(|(c, i, s)| c == check && i == id && s == status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_more_milliseconds_is_a_regression() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let k = Knobs::default();
    k.delay_us.store(5_000, Ordering::SeqCst);
    k.hsts.store(true, Ordering::SeqCst);
    let s = site(&k).await;
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &s.url("http", "127.0.0.1"));
    baseline(dir.path()).await;
    k.delay_us.store(45_000, Ordering::SeqCst);
    let (code, found) = compared(dir.path()).await;
    assert!(
        has(&found, "health-latency", "regress.latency", "fail"),
        "{found:?}"
    );
    assert_eq!(code, 1, "the deploy is worse: {found:?}");
    assert!(
        found
            .iter()
            .all(|(c, _, s)| c == "health-latency" || s == "pass"),
        "only the latency got worse: {found:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_and_half_a_millisecond_are_not() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let k = Knobs::default();
    // 40 ms: the fixture's timer wakes up to a millisecond or two late, which is noise to see
    // through, not a change.
    k.delay_us.store(40_000, Ordering::SeqCst);
    k.hsts.store(true, Ordering::SeqCst);
    let s = site(&k).await;
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &s.url("http", "127.0.0.1"));
    baseline(dir.path()).await;
    // The same server again: run-to-run noise only.
    // (The headers check fails in both runs over plain HTTP; only what changed matters here.)
    let (_, found) = compared(dir.path()).await;
    assert!(
        has(&found, "health-latency", "regress.latency", "pass"),
        "{found:?}"
    );
    assert!(found.iter().all(|(_, _, s)| s == "pass"), "{found:?}");
    k.delay_us.store(40_500, Ordering::SeqCst);
    let (_, found) = compared(dir.path()).await;
    assert!(
        has(&found, "health-latency", "regress.latency", "pass"),
        "{found:?}"
    );
    assert!(found.iter().all(|(_, _, s)| s == "pass"), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_hsts_and_a_failing_check_are_named() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let k = Knobs::default();
    k.hsts.store(true, Ordering::SeqCst);
    let s = site(&k).await;
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &s.url("http", "127.0.0.1"));
    baseline(dir.path()).await;
    k.hsts.store(false, Ordering::SeqCst);
    k.broken.store(true, Ordering::SeqCst);
    let (code, found) = compared(dir.path()).await;
    assert_eq!(code, 1);
    assert!(has(&found, "health", "regress.status", "fail"), "{found:?}");
    assert!(
        has(&found, "health", "regress.finding", "fail"),
        "{found:?}"
    );
    assert!(has(&found, "headers", "regress.grade", "fail"), "{found:?}");
    assert!(
        found
            .iter()
            .any(|(c, i, _)| c == "headers" && i == "regress.headers"),
        "{found:?}"
    );
}

/// A weaker CSP on a page that keeps every other header: the header test that got worse is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weakened_csp_is_named() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let k = Knobs::default();
    k.hsts.store(true, Ordering::SeqCst);
    let s = site(&k).await;
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &s.url("http", "127.0.0.1"));
    baseline(dir.path()).await;
    k.weak_csp.store(true, Ordering::SeqCst);
    let out = shipwatch(dir.path(), &["check", "--baseline", "base.json"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("regress.headers: content-security-policy:"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_of_another_target_or_check_set_is_refused() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let k = Knobs::default();
    let s = site(&k).await;
    let other = site(&k).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &s.url("http", "127.0.0.1"));
    baseline(dir.path()).await;
    config(dir.path(), &other.url("http", "127.0.0.1"));
    let out = shipwatch(dir.path(), &["check", "--baseline", "base.json"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("compare runs of one target"), "{err}");
    config(dir.path(), &s.url("http", "127.0.0.1"));
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("name = \"headers\"", "name = \"security\""),
    )
    .unwrap();
    let out = shipwatch(dir.path(), &["check", "--baseline", "base.json"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "only in the baseline: headers (headers); only in this run: security (headers)"
        ),
        "{err}"
    );
    let out = shipwatch(dir.path(), &["check", "--baseline", "missing.json"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the baseline"));
}

/// Blue/green behind one name: the same URL resolved to the stable and the canary address.
/// Both run at once; the canary's extra 40 ms is what the report and the exit code are about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_against_stable_by_address() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (stable, canary) = (Knobs::default(), Knobs::default());
    stable.delay_us.store(5_000, Ordering::SeqCst);
    canary.delay_us.store(45_000, Ordering::SeqCst);
    let s = site(&stable).await;
    let port = s.port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.2", port))
        .await
        .unwrap();
    let c = canary.clone();
    let _c = serve_on(
        listener,
        Arc::new(move |_: &Req| {
            Resp::new(200, "ok").delay(Duration::from_micros(c.delay_us.load(Ordering::SeqCst)))
        }),
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &format!("http://shop.test:{port}"));
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        &text[..text.find("[[check]]\nname = \"headers\"").unwrap()],
    )
    .unwrap();
    let run = |format: &'static str| {
        let dir = dir.path().to_path_buf();
        async move {
            shipwatch(
                &dir,
                &[
                    "compare",
                    "--stable",
                    "127.0.0.1",
                    "--canary",
                    "127.0.0.2",
                    "--format",
                    format,
                ],
            )
            .await
        }
    };
    let out = run("text").await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("canary 127.0.0.2 vs stable 127.0.0.1"),
        "{text}"
    );
    assert!(
        text.contains("health-latency (127.0.0.1)") && text.contains("health-latency (127.0.0.2)"),
        "{text}"
    );
    assert!(text.contains("regress.latency"), "{text}");
    let md = run("markdown").await;
    assert!(
        String::from_utf8_lossy(&md.stdout)
            .contains("| `health-latency (127.0.0.2)` | `regress.latency` | ❌ fail |")
    );
    // The same stack on both sides is no worse.
    canary.delay_us.store(5_000, Ordering::SeqCst);
    let out = run("text").await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // An address with a port: the canary listens elsewhere, under the same name.
    let slow = http_server(|_| Resp::new(200, "ok").delay(Duration::from_millis(45))).await;
    let elsewhere = format!("127.0.0.1:{}", slow.port());
    let out = shipwatch(
        dir.path(),
        &["compare", "--stable", "127.0.0.1", "--canary", &elsewhere],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("regress.latency"), "{text}");
}

/// The same name and port serving another certificate or another TLS set-up, run to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_changes_a_renewal_a_new_ca_and_tls_1_3_disabled() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (pki, other) = (Pki::new(), Pki::unrelated());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("cas.pem");
    std::fs::write(&ca, format!("{}{}", pki.root_pem, other.root_pem)).unwrap();
    let handler: Handler = Arc::new(|_: &Req| Resp::new(200, "ok"));
    // The same port again once the previous server is gone (its task stops asynchronously).
    let serve = |port: u16,
                 id: &Identity,
                 versions: Option<&[&'static rustls::SupportedProtocolVersion]>| {
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let mut tries = 0;
        let listener = loop {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            match socket.bind(addr).and_then(|()| socket.listen(128)) {
                Ok(l) => break l,
                Err(_) if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot listen on {addr} again: {e}"),
            }
        };
        serve_on(listener, handler.clone(), Some(tls_config(id, versions)))
    };
    let first = serve(0, &pki.leaf(&["localhost"], 90), None);
    let port = first.port();
    std::fs::write(
        dir.path().join("shipwatch.toml"),
        format!(
            "[defaults]\nca_file = \"{}\"\n[env.production]\nbase_url = \"https://localhost:{port}\"\n\
             [[check]]\nname = \"tls\"\nkind = \"tls\"\nhost = \"localhost:{port}\"\nwarn_days = 10\nfail_days = 5\n",
            ca.display()
        ),
    )
    .unwrap();
    baseline(dir.path()).await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let tls_findings = |found: Vec<(String, String, String)>| -> Vec<(String, String)> {
        found.into_iter().map(|(_, id, s)| (id, s)).collect()
    };
    // Renewed by the same CA: for the record only.
    let renewed = serve(port, &pki.leaf(&["localhost"], 60), None);
    let (_, found) = compared(dir.path()).await;
    assert_eq!(
        tls_findings(found),
        [("regress.tls.renewed".to_string(), "pass".to_string())]
    );
    drop(renewed);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Another CA: a warning that names both.
    let moved = serve(port, &other.leaf(&["localhost"], 90), None);
    let (_, found) = compared(dir.path()).await;
    assert!(tls_findings(found).contains(&("regress.tls.issuer".into(), "warn".into())));
    drop(moved);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // TLS 1.3 switched off: the version fell.
    let old = serve(
        port,
        &pki.leaf(&["localhost"], 90),
        Some(&[&rustls::version::TLS12]),
    );
    let (code, found) = compared(dir.path()).await;
    assert!(tls_findings(found).contains(&("regress.tls".into(), "fail".into())));
    assert_eq!(code, 1);
    drop(old);
}

fn normalize(s: &str) -> String {
    let re = |p: &str| regex::Regex::new(p).unwrap();
    let s = re(r"\d{4}-\d\d-\d\dT[0-9:.]+Z").replace_all(s, "<TIME>");
    let s = re(r":\d{2,5}\b").replace_all(&s, ":<PORT>");
    let s = re(r"\d+(\.\d)? ?ms").replace_all(&s, "<MS>");
    let s = re(r" +<MS>").replace_all(&s, " <MS>");
    s.into_owned()
}

/// What a release lead reads after a deploy that broke the health endpoint and dropped the
/// security headers: the text and Markdown reports, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_regression_report_reads_as_the_golden_files() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let k = Knobs::default();
    k.hsts.store(true, Ordering::SeqCst);
    let s = site(&k).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &s.url("http", "127.0.0.1"));
    let text = std::fs::read_to_string(&cfg).unwrap();
    let start = text.find("[[check]]\nname = \"health-latency\"").unwrap();
    let end = text.find("[[check]]\nname = \"headers\"").unwrap();
    std::fs::write(&cfg, format!("{}{}", &text[..start], &text[end..])).unwrap();
    baseline(dir.path()).await;
    k.hsts.store(false, Ordering::SeqCst);
    k.broken.store(true, Ordering::SeqCst);
    for (format, file) in [("text", "regress.txt"), ("markdown", "regress.md")] {
        let out = shipwatch(
            dir.path(),
            &["check", "--baseline", "base.json", "--format", format],
        )
        .await;
        golden(file, &normalize(&String::from_utf8_lossy(&out.stdout)));
    }
}

/// Canary and stable as environments of the file, and a baseline of a newer report version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_against_stable_by_environment_and_newer_baselines_are_refused() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (stable, canary) = (Knobs::default(), Knobs::default());
    canary.broken.store(true, Ordering::SeqCst);
    let (s, c) = (site(&stable).await, site(&canary).await);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shipwatch.toml"),
        format!(
            "[env.stable]\nbase_url = \"{}\"\n[env.canary]\nbase_url = \"{}\"\n\
             [[check]]\nname = \"health\"\nkind = \"http\"\nurl = \"{{{{ base_url }}}}/health\"\n",
            s.url("http", "127.0.0.1"),
            c.url("http", "127.0.0.1")
        ),
    )
    .unwrap();
    let out = shipwatch(
        dir.path(),
        &["compare", "--stable", "stable", "--canary", "canary"],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("regress.status") && text.contains("health (canary)"),
        "{text}"
    );
    std::fs::write(
        dir.path().join("future.json"),
        r#"{"version": 2, "target": "", "checks": []}"#,
    )
    .unwrap();
    let out = shipwatch(
        dir.path(),
        &["check", "--env", "stable", "--baseline", "future.json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("the baseline is report version 2; this shipwatch reads version 1")
    );
}
