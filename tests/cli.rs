//! The built binary: exit codes, every report format, golden text output, --wait, init and validate.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;

const HEALTHY: &str = r#"{"status":"healthy","database":"connected"}"#;
const PAGE: &str = r#"<html><head><link rel="stylesheet" href="/app.css"></head><body><script src="/app.js"></script></body></html>"#;

/// A deployed site: HTTPS with health, page and assets, plus a plain-HTTP listener that redirects.
struct Site {
    https: Server,
    http: Server,
    dir: tempfile::TempDir,
    ca: PathBuf,
}

impl Site {
    async fn start(health: impl Fn(usize) -> Resp + Send + Sync + 'static) -> Site {
        let pki = Pki::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let https = https_server(&pki.leaf(&["localhost"], 90), move |r| {
            match r.path.as_str() {
                "/health" => health(calls.fetch_add(1, Ordering::SeqCst)),
                "/" => Resp::html(PAGE),
                "/app.css" | "/app.js" => Resp::new(200, "/* asset */"),
                _ => Resp::new(404, "not found"),
            }
            .hardened()
        })
        .await;
        let port = https.port();
        let http = http_server(move |r| {
            Resp::redirect(301, &format!("https://localhost:{port}{}", r.path))
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let ca = pki.write_ca(&dir);
        Site {
            https,
            http,
            dir,
            ca,
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}", self.https.port())
    }

    /// The arguments that point the built-in checklist at this site.
    fn checklist_args(&self) -> Vec<String> {
        vec![
            "check".into(),
            self.url(),
            "--http-url".into(),
            format!("http://localhost:{}/", self.http.port()),
            "--ca-file".into(),
            self.ca.display().to_string(),
        ]
    }
}

async fn shipwatch(args: &[String], cwd: &Path) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("SHIPWATCH_LOG")
        .output()
        .await
        .expect("run shipwatch")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Replaces what changes from run to run (ports, times, dates) so output can be compared to a golden file.
fn normalize(s: &str) -> String {
    let re = |p: &str| regex::Regex::new(p).unwrap();
    let s = re(r"\d{4}-\d\d-\d\dT[0-9:.]+Z").replace_all(s, "<TIME>");
    let s = re(r":\d{2,5}\b").replace_all(&s, ":<PORT>");
    let s = re(r"\d+\.\dms").replace_all(&s, "<MS>");
    let s = re(r" +<MS>").replace_all(&s, " <MS>");
    // A latency run's percentiles and histogram change from run to run; its check line stays.
    let s = re(r"(?m)^      (p50 |\d+ requests, |≤).*\n").replace_all(&s, "");
    s.into_owned()
}

#[tokio::test]
async fn checklist_passes_with_exit_0_and_golden_text() {
    let site = Site::start(|_| Resp::json(200, HEALTHY)).await;
    let out = shipwatch(&site.checklist_args(), site.dir.path()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    golden("checklist_pass.txt", &normalize(&text(&out)));
}

#[tokio::test]
async fn failing_health_exits_1_with_golden_text() {
    let site =
        Site::start(|_| Resp::json(503, r#"{"status":"degraded","database":"disconnected"}"#))
            .await;
    let out = shipwatch(&site.checklist_args(), site.dir.path()).await;
    assert_eq!(out.status.code(), Some(1));
    golden("checklist_fail.txt", &normalize(&text(&out)));
}

#[tokio::test]
async fn usage_and_config_errors_exit_2_and_probe_nothing() {
    let site = Site::start(|_| Resp::json(200, HEALTHY)).await;
    let bad = site.dir.path().join("bad.toml");
    std::fs::write(&bad, format!("[[check]]\nname = \"h\"\nkind = \"http\"\nurl = \"{}/health\"\nexpect = ['status = 200']\n", site.url())).unwrap();
    let cases: Vec<Vec<String>> = vec![
        vec!["check".into(), "-c".into(), bad.display().to_string()],
        vec!["check".into(), site.url(), "--wait".into(), "soon".into()],
        vec![
            "check".into(),
            site.url(),
            "--resolve".into(),
            "nonsense".into(),
        ],
        vec!["check".into(), site.url(), "--only".into(), "helth".into()],
        vec!["check".into(), site.url(), "--format".into(), "yaml".into()],
        vec!["check".into(), "ftp://example.com".into()],
        vec![
            "check".into(),
            site.url(),
            "--ca-file".into(),
            "/nonexistent.pem".into(),
        ],
        vec!["check".into()],
        vec!["validate".into(), "-c".into(), bad.display().to_string()],
        vec!["frobnicate".into()],
    ];
    for args in cases {
        let out = shipwatch(&args, site.dir.path()).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.trim().is_empty(), "{args:?} printed no error");
    }
    assert_eq!(
        site.https.hits.load(Ordering::SeqCst),
        0,
        "a usage error must not probe anything"
    );
    let out = shipwatch(
        &["check".into(), "-c".into(), bad.display().to_string()],
        site.dir.path(),
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:5:19: invalid assertion: unknown operator \"=\""),
        "{err}"
    );
    let out = shipwatch(
        &["check".into(), site.url(), "--only".into(), "helth".into()],
        site.dir.path(),
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean \"health\"?"));
}

#[tokio::test]
async fn json_report_follows_the_schema() {
    let site = Site::start(|_| Resp::json(503, "{}")).await;
    let mut args = site.checklist_args();
    args.extend(["--format".into(), "json".into()]);
    let out = shipwatch(&args, site.dir.path()).await;
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let schema_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/report.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(report["version"], 1);
    assert_eq!(report["status"], "fail");
    assert_eq!(
        report["summary"],
        serde_json::json!({"pass": 6, "warn": 0, "fail": 2, "error": 0})
    );
    let health = &report["checks"][0];
    assert_eq!(
        (
            health["name"].as_str(),
            health["findings"][0]["id"].as_str()
        ),
        (Some("health"), Some("http.status"))
    );
    assert_eq!(health["findings"][0]["actual"], "503");
    assert!(health["timings"]["tls_ms"].as_f64().unwrap() > 0.0);
    // A report that breaks the schema is caught, so the check above can fail.
    let mut broken = report.clone();
    broken["checks"][0]["status"] = "sideways".into();
    assert!(!validator.is_valid(&broken));
}

#[tokio::test]
async fn junit_markdown_and_output_file() {
    let site = Site::start(|_| Resp::json(503, "{}")).await;
    let report_path = site.dir.path().join("report.xml");
    let mut args = site.checklist_args();
    args.extend([
        "--format".into(),
        "junit".into(),
        "--output".into(),
        report_path.display().to_string(),
    ]);
    let out = shipwatch(&args, site.dir.path()).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("Sign-off: FAIL · 8 checks: 6 pass, 0 warn, 2 fail, 0 error"),
        "stdout keeps the text summary"
    );
    let xml = std::fs::read_to_string(&report_path).unwrap();
    assert!(xml.starts_with("<?xml"));
    assert_eq!(xml.matches("<testsuite ").count(), 8);
    assert!(
        xml.contains(r#"<testsuite name="health" tests="3" failures="3" errors="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<failure type="fail" message="status == 200 (was 503)">"#),
        "{xml}"
    );

    let mut args = site.checklist_args();
    args.extend(["--format".into(), "markdown".into()]);
    let md = text(&shipwatch(&args, site.dir.path()).await);
    assert!(md.starts_with("### ❌ shipwatch: FAIL · default"), "{md}");
    assert!(
        md.contains("| `health` | `http.status` | ❌ fail | == 200 | 503 |"),
        "{md}"
    );

    // Could-not-run is an <error>, not a <failure>.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = shipwatch(
        &[
            "check".into(),
            format!("http://127.0.0.1:{port}"),
            "--format".into(),
            "junit".into(),
        ],
        site.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(r#"<error type="connect""#),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn strict_turns_warnings_into_failure() {
    let site = Site::start(|_| Resp::json(200, HEALTHY)).await;
    let cfg = site.dir.path().join("warn.toml");
    std::fs::write(&cfg, format!("[[check]]\nname = \"h\"\nkind = \"http\"\nurl = \"{}/health\"\nexpect = ['warn: time < 1us']\n", site.url())).unwrap();
    let base = vec![
        "check".to_string(),
        "-c".into(),
        cfg.display().to_string(),
        "--ca-file".into(),
        site.ca.display().to_string(),
    ];
    assert_eq!(
        shipwatch(&base, site.dir.path()).await.status.code(),
        Some(0)
    );
    let mut strict = base.clone();
    strict.push("--strict".into());
    assert_eq!(
        shipwatch(&strict, site.dir.path()).await.status.code(),
        Some(1)
    );
}

#[tokio::test]
async fn wait_retries_until_the_rollout_is_healthy_and_reports_attempts() {
    // The first two health calls see the old, broken rollout.
    let site = Site::start(|n| {
        if n < 2 {
            Resp::json(503, "{}")
        } else {
            Resp::json(200, HEALTHY)
        }
    })
    .await;
    let mut args = site.checklist_args();
    args.extend([
        "--only".into(),
        "health".into(),
        "--wait".into(),
        "20s".into(),
        "--wait-every".into(),
        "100ms".into(),
        "--format".into(),
        "json".into(),
    ]);
    let out = shipwatch(&args, site.dir.path()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let attempts = report["checks"][0]["attempts"].as_array().unwrap();
    let statuses: Vec<&str> = attempts
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["fail", "fail", "pass"]);
    assert!(
        attempts[0]["summary"]
            .as_str()
            .unwrap()
            .contains("http.status")
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("attempt ").count(), 3, "{stderr}");

    // A rollout that never recovers fails once the wait is over, with every attempt reported.
    let site = Site::start(|_| Resp::json(503, "{}")).await;
    let mut args = site.checklist_args();
    args.extend([
        "--only".into(),
        "health".into(),
        "--wait".into(),
        "1s".into(),
        "--wait-every".into(),
        "300ms".into(),
    ]);
    let out = shipwatch(&args, site.dir.path()).await;
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("attempt 1 at") && t.contains("attempt 3 at"),
        "{t}"
    );
    // JUnit and Markdown show every attempt too; --output gets the format, stdout the text.
    let xml = site.dir.path().join("report.xml");
    let mut junit = args.clone();
    junit.extend([
        "--format".into(),
        "junit".into(),
        "--output".into(),
        xml.display().to_string(),
    ]);
    let out = shipwatch(&junit, site.dir.path()).await;
    let written = std::fs::read_to_string(&xml).unwrap();
    assert!(
        written.contains("<system-out>attempt 1 at") && written.contains("attempt 3 at"),
        "{written}"
    );
    assert!(
        text(&out).contains("Sign-off: FAIL"),
        "stdout keeps the text report"
    );
    let mut md = args.clone();
    md.extend(["--format".into(), "markdown".into()]);
    let out = shipwatch(&md, site.dir.path()).await;
    let t = text(&out);
    assert!(
        t.contains("| Check | Attempt | At | Status | Summary |"),
        "{t}"
    );
    assert!(t.contains("| `health` | 3 |"), "{t}");
}

#[tokio::test]
async fn init_writes_a_config_that_validates_and_runs() {
    let site = Site::start(|_| Resp::json(200, HEALTHY)).await;
    let dir = site.dir.path();
    let out = shipwatch(&["init".into(), site.url()], dir).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(dir.join("shipwatch.toml")).unwrap();
    assert!(written.contains(&format!("base_url = \"{}\"", site.url())));
    assert_eq!(
        shipwatch(&["init".into(), site.url()], dir)
            .await
            .status
            .code(),
        Some(2),
        "init must not overwrite"
    );
    let out = shipwatch(&["validate".into()], dir).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text(&out).contains("ok (8 checks, 1 environment)"));
    // The commented examples of the other kinds are valid once uncommented.
    let (head, examples) = written
        .split_once("# More of what a deploy breaks")
        .unwrap();
    let uncommented: String = examples
        .lines()
        .skip(1)
        .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
        .collect();
    let full = dir.join("full.toml");
    std::fs::write(&full, format!("{head}{uncommented}")).unwrap();
    let out = shipwatch(
        &["validate".into(), "-c".into(), full.display().to_string()],
        dir,
    )
    .await;
    assert!(
        text(&out).contains("ok (12 checks, 1 environment)"),
        "{}",
        text(&out)
    );
    // Point the generated config's plain-HTTP listener at the test one and run it.
    let config = written.replace(
        "http://localhost/",
        &format!("http://localhost:{}/", site.http.port()),
    );
    std::fs::write(dir.join("shipwatch.toml"), config).unwrap();
    let out = shipwatch(
        &[
            "check".into(),
            "--env".into(),
            "production".into(),
            "--ca-file".into(),
            site.ca.display().to_string(),
        ],
        dir,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test]
async fn resolve_flag_probes_a_new_stack_under_the_production_name() {
    let pki = Pki::new();
    let green = https_server(&pki.leaf(&["www.example.test"], 90), |r| {
        match r.path.as_str() {
            "/health" => Resp::json(200, HEALTHY),
            _ => Resp::html("<p>green</p>"),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(&dir);
    let p = green.port();
    let args: Vec<String> = vec![
        "check".into(),
        format!("https://www.example.test:{p}"),
        "--resolve".into(),
        format!("www.example.test:{p}:127.0.0.1"),
        "--only".into(),
        "health".into(),
        "--only".into(),
        "tls".into(),
        "--only".into(),
        "frontend".into(),
        "--ca-file".into(),
        ca.display().to_string(),
    ];
    let out = shipwatch(&args, dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        green.hits.load(Ordering::SeqCst),
        2,
        "health and the page went to the overridden address"
    );
}

#[tokio::test]
async fn secrets_never_appear_in_any_output() {
    const SECRET: &str = "s3cr3t-hunter2-value";
    let server = http_server(|r| {
        let auth = r
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Resp::json(
            401,
            &format!(r#"{{"error":"bad credentials","echo":"{auth}"}}"#),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("s.toml");
    std::fs::write(
        &cfg,
        format!(
            "[secrets]\ntoken = {{ env = \"SHIPWATCH_TEST_TOKEN\" }}\n[[check]]\nname = \"me\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{}/me\"\nheaders = {{ Authorization = \"Bearer {{{{ secrets.token }}}}\" }}\nexpect = ['status == 200', 'body contains ok', 'json $.echo == \"nope\"']\n",
            server.port()
        ),
    )
    .unwrap();
    for format in ["text", "json", "junit", "markdown"] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
            .args(["-vv", "check", "-c"])
            .arg(&cfg)
            .args(["--format", format])
            .env("SHIPWATCH_TEST_TOKEN", SECRET)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !all.contains(SECRET),
            "{format} output leaks the secret:\n{all}"
        );
        assert!(
            all.contains("‹redacted›"),
            "{format}: the echoed secret is shown redacted:\n{all}"
        );
    }
    let out = shipwatch(
        &["validate".into(), "-c".into(), cfg.display().to_string()],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("environment variable SHIPWATCH_TEST_TOKEN is not set")
    );
}

/// `init` refuses what is not a web URL, and a plain-HTTP site gets no redirect or TLS check.
#[tokio::test]
async fn init_refuses_other_schemes_and_leaves_https_checks_out_for_http() {
    let dir = tempfile::tempdir().unwrap();
    let out = shipwatch(&["init".into(), "ftp://x".into()], dir.path()).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an http:// or https:// URL"));
    assert!(!dir.path().join("shipwatch.toml").exists());
    let out = shipwatch(&["init".into(), "http://localhost:8080".into()], dir.path()).await;
    assert_eq!(out.status.code(), Some(0));
    let written = std::fs::read_to_string(dir.path().join("shipwatch.toml")).unwrap();
    assert!(!written.contains("name = \"https-redirect\"") && !written.contains("name = \"tls\""));
    assert!(
        !written.contains("--allow-origin get"),
        "comments fit a config file"
    );
    let out = shipwatch(&["validate".into()], dir.path()).await;
    assert!(
        text(&out).contains("ok (6 checks, 1 environment)"),
        "{}",
        text(&out)
    );
}

/// The checklist's tuning flags are refused with a config file instead of silently ignored.
#[tokio::test]
async fn checklist_flags_with_a_config_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shipwatch.toml"),
        "[[check]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\n",
    )
    .unwrap();
    let out = shipwatch(
        &[
            "check".into(),
            "-c".into(),
            "shipwatch.toml".into(),
            "--health-path".into(),
            "/status".into(),
            "--allow-origin".into(),
            "https://app.example.com".into(),
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--health-path, --allow-origin tune the built-in checklist"),
        "{err}"
    );
}

/// The README's sample report is a real run: the built-in checklist against the test site,
/// pointed at a health path that does not exist. `SHIPWATCH_BLESS=1` writes a fresh run into it.
#[tokio::test]
async fn the_readme_sample_report_is_what_the_program_prints() {
    let site = Site::start(|_| Resp::json(200, HEALTHY)).await;
    let mut args = site.checklist_args();
    args.extend(["--health-path".to_string(), "/status".to_string()]);
    let out = shipwatch(&args, site.dir.path()).await;
    assert_eq!(out.status.code(), Some(1));
    let printed = text(&out);
    let readme_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let start = readme
        .find("```\n$ shipwatch check https://localhost")
        .expect("the README has a sample report")
        + 4;
    let end = start + readme[start..].find("\n```\n").unwrap() + 1;
    let block = &readme[start..end];
    let (command, shown) = block.split_once('\n').unwrap();
    if std::env::var_os("SHIPWATCH_BLESS").is_some() {
        let command = format!(
            "$ shipwatch check {} --http-url {} --ca-file ca.pem --health-path /status",
            site.url(),
            args[3]
        );
        let fresh = format!("{}{command}\n{printed}{}", &readme[..start], &readme[end..]);
        std::fs::write(&readme_path, fresh).unwrap();
        return;
    }
    assert!(command.contains("--health-path /status"), "{command}");
    assert_eq!(
        normalize(shown),
        normalize(&printed),
        "the README's sample report differs from a real run; run with SHIPWATCH_BLESS=1"
    );
}
