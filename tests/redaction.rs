//! The redaction audit: a target that echoes every secret back, raw and encoded. No secret and no
//! encoding of one may appear in any output: every report format, `--output`, logs at `-vv` in
//! text and JSON, the `--notify` sign-off, and the agent's `/metrics`, `/api/v1/status`, status
//! page, run API and every sink's payload.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::time::Instant;

/// In the base URL's query, as API keys often are.
const KEY: &str = "qk-4f8e/x+y=z";
/// In a header.
const TOKEN: &str = "tok-Secret-73a1&<\"b\">";
/// In a URL's userinfo.
const PASSWORD: &str = "pw-9b2c_Sx";
/// Issued by the target and captured by a flow.
const CAPTURED: &str = "cap-session-5d6e7f";

fn base64(s: &[u8]) -> String {
    shipwatch::assert::base64(s)
}

fn percent(s: &str, plus: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            b' ' if plus => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Every form of `s` a target might echo and a report might quote.
fn forms(s: &str) -> Vec<String> {
    let json = serde_json::to_string(s).unwrap();
    vec![
        s.to_string(),
        base64(s.as_bytes()),
        base64(s.as_bytes()).replace('+', "-").replace('/', "_"),
        base64(s.as_bytes()).trim_end_matches('=').to_string(),
        percent(s, false),
        percent(s, true),
        json[1..json.len() - 1].to_string(),
        html(s),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for secret in [KEY, TOKEN, PASSWORD, CAPTURED] {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "{what} shows {secret:?} as {form:?}:\n{text}"
            );
        }
    }
    let basic = base64(format!("svc:{PASSWORD}").as_bytes());
    assert!(
        !text.contains(&basic),
        "{what} shows the Basic credentials:\n{text}"
    );
}

/// Echoes every credential it receives, raw and in each encoding, in a failing response.
async fn echo_target() -> Server {
    http_server(|r| {
        if r.path == "/login" {
            return Resp::json(200, &format!(r#"{{"session":"{CAPTURED}"}}"#));
        }
        let mut seen: Vec<String> = Vec::new();
        for name in ["x-api-key", "authorization", "x-session"] {
            if let Some(v) = r.headers.get(name).and_then(|v| v.to_str().ok()) {
                seen.push(v.to_string());
                if let Some(basic) = v.strip_prefix("Basic ") {
                    seen.push(basic.to_string());
                }
            }
        }
        seen.push(r.query.clone());
        let mut body = String::new();
        for v in &seen {
            for f in forms(v) {
                body.push_str(&f);
                body.push('\n');
            }
        }
        let echo = base64(seen.join(";").as_bytes());
        Resp::new(500, body)
            .header("content-type", "text/plain")
            .header("x-echo", &echo)
    })
    .await
}

fn config(dir: &Path, target: &Server, agent_port: u16, inbox: &Server) -> std::path::PathBuf {
    let p = target.port();
    let toml = format!(
        r#"[agent]
listen = "127.0.0.1:{agent_port}"
interval = "1s"
state_dir = "{state}"
api_token = {{ env = "SW_API_TOKEN" }}
[secrets]
key = {{ env = "SW_KEY" }}
token = {{ env = "SW_TOKEN" }}
pw = {{ env = "SW_PW" }}
[env.prod]
base_url = "http://127.0.0.1:{p}/api?key={{{{ secrets.key }}}}"
[alerts]
batch_window = "200ms"
failures = 1
[[alerts.sink]]
kind = "webhook"
url = "http://127.0.0.1:{inbox}/hook"
[[alerts.sink]]
kind = "slack"
webhook_url = "http://127.0.0.1:{inbox}/slack"
[[check]]
name = "keyed"
kind = "http"
url = "{{{{ base_url }}}}"
headers = {{ X-Api-Key = "{{{{ secrets.token }}}}" }}
expect = ['status == 200', 'body contains "fine"', 'header x-echo == "none"']
[[check]]
name = "basic"
kind = "http"
url = "http://svc:{{{{ secrets.pw }}}}@127.0.0.1:{p}/basic"
expect = ['status == 200', 'body contains "fine"']
[[check]]
name = "session"
kind = "flow"
  [[check.step]]
  name = "login"
  url = "http://127.0.0.1:{p}/login"
  capture = {{ s = 'json $.session' }}
  [[check.step]]
  name = "use"
  url = "http://127.0.0.1:{p}/use"
  headers = {{ X-Session = "{{{{ s }}}}" }}
  expect = ['status == 200', 'body contains "fine"']
"#,
        state = dir.join("state").display(),
        inbox = inbox.port(),
    );
    let cfg = dir.join("shipwatch.toml");
    std::fs::write(&cfg, toml).unwrap();
    cfg
}

fn command(args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"));
    c.args(args)
        .env("SW_KEY", KEY)
        .env("SW_TOKEN", TOKEN)
        .env("SW_PW", PASSWORD)
        .env("SW_API_TOKEN", "api-token-for-tests")
        .env("NO_COLOR", "1");
    c
}

/// The agent's answer, once it listens.
async fn get(url: &str, method: &str) -> String {
    let start = Instant::now();
    loop {
        if let Some(body) = try_get(url, method).await {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{url} never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn try_get(url: &str, method: &str) -> Option<String> {
    let engine = shipwatch::net::Engine::new(&Default::default()).unwrap();
    let mut req = shipwatch::net::Request::get(url::Url::parse(url).unwrap());
    req.method = method.parse().unwrap();
    req.headers
        .push(("Authorization".into(), "Bearer api-token-for-tests".into()));
    let resp = engine
        .send(
            &req,
            &Default::default(),
            Instant::now() + Duration::from_secs(20),
        )
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&resp.body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_encoding_of_one_appears_anywhere() {
    let target = echo_target().await;
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = got.clone();
    let inbox = http_server(move |r| {
        sink.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&r.body).into_owned());
        Resp::new(200, "ok")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config(dir.path(), &target, port, &inbox);
    let cfg_s = cfg.display().to_string();

    // Every report format, the --output file, and logs at -vv in text and JSON.
    for format in ["text", "json", "junit", "markdown"] {
        for log in ["text", "json"] {
            let out_file = dir.path().join(format!("report.{format}"));
            let out = command(&[
                "-vv",
                "--log-format",
                log,
                "check",
                "-c",
                &cfg_s,
                "--format",
                format,
            ])
            .arg("--output")
            .arg(&out_file)
            .output()
            .await
            .unwrap();
            assert_eq!(
                out.status.code(),
                Some(1),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let all = format!(
                "{}{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&out_file).unwrap_or_default()
            );
            assert!(
                all.contains("‹redacted›"),
                "{format}/{log}: the echoes show redacted:\n{all}"
            );
            assert_clean(&format!("check --format {format}, logs {log}"), &all);
        }
    }
    // The sign-off sent with --notify.
    let out = command(&["check", "-c", &cfg_s, "--notify"])
        .output()
        .await
        .unwrap();
    assert_clean("check --notify", &String::from_utf8_lossy(&out.stderr));
    assert!(!got.lock().unwrap().is_empty(), "the sign-off arrived");

    // The agent: its endpoints, its logs and what its sinks receive.
    let mut agent = command(&["-vv", "agent", "-c", &cfg_s])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    let status = loop {
        let s = get(&format!("{base}/api/v1/status"), "GET").await;
        if s.contains("\"session\"") && s.contains("\"basic\"") && got.lock().unwrap().len() >= 3 {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the agent never reported: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_clean("/api/v1/status", &status);
    assert_clean("/metrics", &get(&format!("{base}/metrics"), "GET").await);
    assert_clean("the status page", &get(&format!("{base}/"), "GET").await);
    assert_clean(
        "the run API",
        &get(&format!("{base}/api/v1/run"), "POST").await,
    );
    let _ = agent.start_kill();
    let out = agent.wait_with_output().await.unwrap();
    assert_clean("the agent's logs", &String::from_utf8_lossy(&out.stderr));
    for payload in got.lock().unwrap().iter() {
        assert_clean("a sink's payload", payload);
    }
}

#[tokio::test]
async fn credentials_stay_with_their_origin_on_a_redirect() {
    let seen: Arc<Mutex<Vec<http::HeaderMap>>> = Arc::default();
    let record = seen.clone();
    let other = http_server(move |r| {
        record.lock().unwrap().push(r.headers.clone());
        Resp::new(200, "fine")
    })
    .await;
    let first_seen: Arc<Mutex<Vec<http::HeaderMap>>> = Arc::default();
    let record = first_seen.clone();
    let to = format!("http://127.0.0.1:{}/landing", other.port());
    let first = http_server(move |r| {
        record.lock().unwrap().push(r.headers.clone());
        Resp::redirect(302, &to)
    })
    .await;
    let toml = format!(
        "[secrets]\ntoken = {{ env = \"SW_TOKEN\" }}\npw = {{ env = \"SW_PW\" }}\n[[check]]\nname = \"r\"\nkind = \"http\"\nurl = \"http://svc:{{{{ secrets.pw }}}}@127.0.0.1:{}/start\"\nheaders = {{ X-Api-Key = \"{{{{ secrets.token }}}}\", Cookie = \"sid=1\", Proxy-Authorization = \"Basic eDp5\", X-Team = \"ops\" }}\n",
        first.port()
    );
    let env = |n: &str| match n {
        "SW_TOKEN" => Some(TOKEN.to_string()),
        "SW_PW" => Some(PASSWORD.to_string()),
        _ => None,
    };
    let o = run_toml_with(
        &toml,
        shipwatch::plan::PlanOptions {
            getenv: Some(&env),
            ..Default::default()
        },
    )
    .await
    .remove(0);
    assert_eq!(o.status, shipwatch::probe::Status::Pass, "{:#?}", o);
    let first = first_seen.lock().unwrap()[0].clone();
    let basic = format!("Basic {}", base64(format!("svc:{PASSWORD}").as_bytes()));
    assert_eq!(
        first["authorization"],
        basic.as_str(),
        "userinfo goes as Basic auth"
    );
    assert_eq!(first["x-api-key"], TOKEN);
    let landed = seen.lock().unwrap()[0].clone();
    for gone in [
        "authorization",
        "x-api-key",
        "cookie",
        "proxy-authorization",
    ] {
        assert!(
            !landed.contains_key(gone),
            "{gone} followed the redirect to another origin"
        );
    }
    assert_eq!(landed["x-team"], "ops");
}

#[tokio::test]
async fn a_password_in_a_url_and_a_short_secret_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(
        &cfg,
        "[secrets]\npin = { env = \"SW_PIN\" }\n[[check]]\nname = \"a\"\nkind = \"http\"\nurl = \"https://svc:plain-pw@example.com/{{ secrets.pin }}\"\n",
    )
    .unwrap();
    let out = command(&["validate", "-c", &cfg.display().to_string()])
        .env("SW_PIN", "42")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "w.toml:6:7: warning: the URL holds a password in clear text: move it to [secrets]"
        ),
        "{err}"
    );
    assert!(
        err.contains("w.toml:2:7: warning: secret \"pin\" is 2 characters long, shorter than the 3 needed to hide it safely"),
        "{err}"
    );
}
