//! Login flows against an in-process HTTPS server: bearer tokens, session cookies, failures,
//! skipped and `always` steps, captures that miss, and a redaction audit of every output.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use shipwatch::plan::PlanOptions;
use shipwatch::probe::Status;
use shipwatch::runner::Outcome;

const PASSWORD: &str = "s3cret-Pa55word";
const TOKEN: &str = "tok-9f8e7d6c5b4a";
const SESSION: &str = "sess-0a1b2c3d4e";

/// An auth service: login sets a token and a session cookie, `me` accepts either, logout is counted.
/// Failures echo what they were sent, as careless services do.
fn auth_service(logouts: Arc<AtomicUsize>) -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
    move |r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/auth/login") => {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if body["password"] == PASSWORD {
                Resp::json(
                    200,
                    &format!(
                        r#"{{"access_token":"{TOKEN}","username":"{}"}}"#,
                        body["username"].as_str().unwrap_or("")
                    ),
                )
                .header(
                    "set-cookie",
                    &format!("session={SESSION}; Path=/; Secure; HttpOnly"),
                )
            } else {
                Resp::json(
                    401,
                    &format!(
                        r#"{{"error":"bad credentials","you_sent":{}}}"#,
                        String::from_utf8_lossy(&r.body)
                    ),
                )
            }
        }
        ("GET", "/api/me") => {
            let auth = r
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let cookie = r
                .headers
                .get("cookie")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if auth == format!("Bearer {TOKEN}") || cookie.contains(&format!("session={SESSION}")) {
                Resp::json(200, r#"{"username":"admin","roles":["ops"]}"#)
            } else {
                Resp::json(
                    401,
                    &format!(r#"{{"error":"not signed in","authorization":"{auth}"}}"#),
                )
            }
        }
        ("GET", "/api/echo") => {
            let debug = r
                .headers
                .get("x-debug")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Resp::json(
                400,
                &format!(r#"{{"error":"bad request","x_debug":"{debug}"}}"#),
            )
        }
        ("POST", "/auth/logout") => {
            logouts.fetch_add(1, Ordering::SeqCst);
            Resp::new(204, "").header("set-cookie", "session=; Max-Age=0; Path=/")
        }
        _ => Resp::new(404, ""),
    }
}

const BEARER_FLOW: &str = r#"
[vars]
user = "admin"
[secrets]
admin_password = { env = "SHIPWATCH_TEST_PASSWORD" }
[[check]]
name = "login"
kind = "flow"
  [[check.step]]
  name = "login"
  method = "POST"
  url = "{{ base_url }}/auth/login"
  json = { username = "{{ user }}", password = "{{ secrets.admin_password }}" }
  expect = ['status == 200', 'json $.access_token exists']
  capture = { token = 'json $.access_token' }
  [[check.step]]
  name = "me"
  url = "{{ base_url }}/api/me"
  headers = { Authorization = "Bearer {{ token }}" }
  expect = ['status == 200', 'json $.username == "{{ user }}"']
  [[check.step]]
  name = "logout"
  method = "POST"
  url = "{{ base_url }}/auth/logout"
  always = true
  expect = ['status == 204']
"#;

struct Service {
    server: Server,
    pki: Pki,
    dir: tempfile::TempDir,
    logouts: Arc<AtomicUsize>,
}

async fn service() -> Service {
    let pki = Pki::new();
    let logouts = Arc::new(AtomicUsize::new(0));
    let server = https_server(&pki.leaf(&["localhost"], 90), auth_service(logouts.clone())).await;
    Service {
        server,
        pki,
        dir: tempfile::tempdir().unwrap(),
        logouts,
    }
}

async fn run_flow(s: &Service, toml: &str, password: &str) -> Outcome {
    let toml = format!(
        "[env.test]\nbase_url = \"{}\"\n{toml}",
        s.server.url("https", "localhost")
    );
    let getenv =
        move |name: &str| (name == "SHIPWATCH_TEST_PASSWORD").then(|| password.to_string());
    let opts = PlanOptions {
        ca_file: Some(s.pki.write_ca(&s.dir)),
        getenv: Some(&getenv),
        ..PlanOptions::default()
    };
    run_toml_with(&toml, opts).await.remove(0)
}

fn step_statuses(o: &Outcome) -> Vec<String> {
    o.details.json()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s["name"].as_str().unwrap(),
                s["status"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn bearer_token_flow_passes() {
    let s = service().await;
    let o = run_flow(&s, BEARER_FLOW, PASSWORD).await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(step_statuses(&o), ["login:pass", "me:pass", "logout:pass"]);
    let ids: Vec<&str> = o.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "flow.login.1",
            "flow.login.2",
            "flow.me.1",
            "flow.me.2",
            "flow.logout.1"
        ]
    );
    assert_eq!(s.logouts.load(Ordering::SeqCst), 1);
    assert!(o.details.json()["steps"][1]["ttfb_ms"].as_f64().is_some());
}

#[tokio::test]
async fn session_cookie_flow_uses_the_jar() {
    let s = service().await;
    let toml = BEARER_FLOW.replace(
        "  headers = { Authorization = \"Bearer {{ token }}\" }\n",
        "",
    );
    let o = run_flow(&s, &toml, PASSWORD).await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    // After logout clears the cookie, the same session no longer works.
    let toml = format!(
        "{toml}  [[check.step]]\n  name = \"me_again\"\n  url = \"{{{{ base_url }}}}/api/me\"\n  expect = ['status == 401']\n"
    );
    let o = run_flow(&s, &toml, PASSWORD).await;
    assert_eq!(
        step_statuses(&o),
        ["login:pass", "me:pass", "logout:pass", "me_again:pass"]
    );
}

#[tokio::test]
async fn wrong_password_fails_skips_and_still_logs_out() {
    let s = service().await;
    let o = run_flow(&s, BEARER_FLOW, "wrong-password-123").await;
    assert_eq!(o.status, Status::Fail);
    assert_eq!(
        step_statuses(&o),
        ["login:fail", "me:skipped", "logout:pass"]
    );
    assert_finding(&o, "flow.login.1", Status::Fail, "401");
    assert!(
        o.findings.iter().all(|f| !f.id.starts_with("flow.me.")),
        "a skipped step has no findings"
    );
    assert_eq!(s.logouts.load(Ordering::SeqCst), 1, "the always step ran");
}

#[tokio::test]
async fn a_capture_that_misses_fails_its_step() {
    let s = service().await;
    let toml = BEARER_FLOW.replace(
        "capture = { token = 'json $.access_token' }",
        "capture = { token = 'json $.accessToken' }",
    );
    let o = run_flow(&s, &toml, PASSWORD).await;
    assert_finding(
        &o,
        "flow.login.capture",
        Status::Fail,
        "capture \"token\" found nothing",
    );
    assert_eq!(
        step_statuses(&o),
        ["login:fail", "me:skipped", "logout:pass"]
    );
}

#[tokio::test]
async fn captures_with_regex_and_from_cookies() {
    let s = service().await;
    let toml = r#"
[[check]]
name = "caps"
kind = "flow"
  [[check.step]]
  name = "login"
  method = "POST"
  url = "{{ base_url }}/auth/login"
  json = { username = "admin", password = "s3cret-Pa55word" }
  capture = { prefix = 'body regex "\"access_token\":\"(tok)-"', sess = 'cookie session', code = 'status' }
  [[check.step]]
  name = "use"
  url = "{{ base_url }}/api/me?p={{ prefix }}&c={{ code }}"
  headers = { Cookie = "session={{ sess }}" }
  expect = ['status == 200', 'url contains "p=tok&c=200"']
"#;
    let o = run_flow(&s, toml, PASSWORD).await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
}

/// The redaction audit: a failing flow whose server echoes the password and the token. Neither
/// value may appear in any output format, nor in the debug logs.
#[tokio::test]
async fn secrets_and_captures_never_appear_in_any_output() {
    let s = service().await;
    // `me` sends the token with a wrong scheme, so the server echoes it in a failing response.
    let echo_flow = BEARER_FLOW
        .replace("{{ base_url }}/api/me", "{{ base_url }}/api/echo")
        .replace(
            "headers = { Authorization = \"Bearer {{ token }}\" }",
            "headers = { X-Debug = \"{{ token }}\" }",
        )
        .replace(
            "expect = ['status == 200', 'json $.username",
            "expect = ['body contains username', 'json $.username",
        );
    let quoting = BEARER_FLOW.replace(
        "expect = ['status == 200', 'json $.access_token exists']",
        "expect = ['body contains access_token']",
    );
    let cfg = s.dir.path().join("flow.toml");
    let ca = s.pki.write_ca(&s.dir);
    for (password, flow) in [("wrong-but-secret-pw", quoting), (PASSWORD, echo_flow)] {
        std::fs::write(
            &cfg,
            format!(
                "[env.test]\nbase_url = \"{}\"\n{flow}",
                s.server.url("https", "localhost")
            ),
        )
        .unwrap();
        for format in ["text", "json", "junit", "markdown"] {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
                .args(["-vv", "check", "-c"])
                .arg(&cfg)
                .arg("--ca-file")
                .arg(&ca)
                .args(["--format", format])
                .env("SHIPWATCH_TEST_PASSWORD", password)
                .output()
                .await
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{format}");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            for secret in [password, TOKEN, SESSION] {
                assert!(
                    !all.contains(secret),
                    "{format} output leaks {secret}:\n{all}"
                );
            }
            assert!(
                all.contains("‹redacted›"),
                "{format}: the echoed value shows redacted:\n{all}"
            );
        }
    }
}
