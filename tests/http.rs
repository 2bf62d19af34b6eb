//! The `http` and `page` checks, and the assertion language, against in-process servers.

mod common;

use common::*;
use shipwatch::probe::Status;
use shipwatch::runner::Outcome;

fn health(resp: Resp) -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
    move |r| {
        if r.path == "/health" {
            resp.clone()
        } else {
            Resp::new(404, "not found")
        }
    }
}

const HEALTH: &str = r#"
[[check]]
name = "api-health"
kind = "http"
url = "{{ base_url }}/health"
expect = ['status == 200', 'json $.status == "healthy"', 'json $.database == "connected"', 'time < 5s']
"#;

async fn run_health(server: &Server) -> Outcome {
    let toml = format!(
        "[env.test]\nbase_url = \"{}\"\n{HEALTH}",
        server.url("http", "127.0.0.1")
    );
    run_toml(&toml, None).await.remove(0)
}

#[tokio::test]
async fn healthy_service_passes() {
    let s = http_server(health(Resp::json(
        200,
        r#"{"status":"healthy","database":"connected"}"#,
    )))
    .await;
    let o = run_health(&s).await;
    assert_eq!(o.status, Status::Pass, "{:?}", o.findings);
    assert_eq!(o.environment, "test");
    assert_finding(&o, "http.status", Status::Pass, "200");
    assert_finding(&o, "http.assert.2", Status::Pass, "healthy");
    assert_finding(&o, "http.assert.4", Status::Pass, "ms");
    let t = o.timings.unwrap();
    assert!(t.total >= t.ttfb && t.ttfb > std::time::Duration::ZERO);
}

#[tokio::test]
async fn health_answering_503_fails() {
    let s = http_server(health(Resp::json(
        503,
        r#"{"status":"unhealthy","database":"connected"}"#,
    )))
    .await;
    let o = run_health(&s).await;
    assert_eq!(o.status, Status::Fail);
    let f = finding(&o, "http.status");
    assert_eq!(
        (f.status, f.expected.as_deref(), f.actual.as_deref()),
        (Status::Fail, Some("== 200"), Some("503"))
    );
    assert_finding(&o, "http.assert.2", Status::Fail, "\"unhealthy\"");
}

#[tokio::test]
async fn database_disconnected_fails() {
    let s = http_server(health(Resp::json(
        200,
        r#"{"status":"healthy","database":"disconnected"}"#,
    )))
    .await;
    let o = run_health(&s).await;
    assert_eq!(o.status, Status::Fail);
    assert_finding(&o, "http.status", Status::Pass, "200");
    let f = finding(&o, "http.assert.3");
    assert_eq!(
        (f.status, f.actual.as_deref()),
        (Status::Fail, Some("\"disconnected\""))
    );
}

#[tokio::test]
async fn default_status_finding_and_warn_assertions() {
    let s = http_server(|_| {
        Resp::new(200, "pong")
            .header("x-version", "1.2.3")
            .header("set-cookie", "sid=abc; Secure")
    })
    .await;
    let toml = format!(
        "[[check]]\nname = \"ping\"\nkind = \"http\"\nurl = \"{}/ping\"\nexpect = ['body == pong', 'warn: header X-Version startswith 2.', 'cookie sid == abc', 'size <= 4', 'url endswith /ping', 'redirects == 0']\n",
        s.url("http", "127.0.0.1")
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_eq!(o.status, Status::Warn, "{:?}", o.findings);
    assert_finding(&o, "http.status", Status::Pass, "200");
    assert_eq!(finding(&o, "http.status").expected.as_deref(), Some("2xx"));
    assert_finding(&o, "http.assert.2", Status::Warn, "1.2.3");
    for id in [
        "http.assert.1",
        "http.assert.3",
        "http.assert.4",
        "http.assert.5",
        "http.assert.6",
    ] {
        assert_eq!(finding(&o, id).status, Status::Pass, "{id}");
    }
}

#[tokio::test]
async fn post_json_with_interpolated_vars_and_redirects_counted() {
    let s = http_server(|r| match r.path.as_str() {
        "/old" => Resp::redirect(302, "/login"),
        "/login" if r.method == "GET" => Resp::new(405, ""),
        "/login" => Resp::json(
            200,
            &format!(r#"{{"echo":{}}}"#, String::from_utf8_lossy(&r.body)),
        ),
        _ => Resp::new(404, ""),
    })
    .await;
    let toml = format!(
        r#"[vars]
user = "admin"
[[check]]
name = "login"
kind = "http"
method = "POST"
url = "{}/login"
json = {{ username = "{{{{ user }}}}", n = 3 }}
expect = ['status == 200', 'json $.echo.username == "admin"', 'json $.echo.n == 3']
[[check]]
name = "moved"
kind = "http"
url = "{}/old"
expect = ['redirects == 1', 'status == 405']
[[check]]
name = "moved-raw"
kind = "http"
url = "{}/old"
follow_redirects = false
expect = ['status == 302', 'header location == /login']
"#,
        s.url("http", "127.0.0.1"),
        s.url("http", "127.0.0.1"),
        s.url("http", "127.0.0.1")
    );
    let out = run_toml(&toml, None).await;
    for o in &out {
        assert_eq!(o.status, Status::Pass, "{}: {:?}", o.name, o.findings);
    }
}

#[tokio::test]
async fn credentials_are_not_forwarded_to_another_origin() {
    let other =
        http_server(|r| Resp::new(200, format!("auth={:?}", r.headers.get("authorization")))).await;
    let target = format!("http://localhost:{}/landing", other.port());
    let first = http_server(move |_| Resp::redirect(302, &target)).await;
    let toml = format!(
        "[[check]]\nname = \"x\"\nkind = \"http\"\nurl = \"{}/start\"\nheaders = {{ Authorization = \"Bearer abc\", X-Trace = \"1\" }}\nexpect = ['body == \"auth=None\"']\n",
        first.url("http", "127.0.0.1")
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_eq!(o.status, Status::Pass, "{:?}", o.findings);
    assert_eq!(o.details.json()["redirects"][0]["status"], 302);
}

#[tokio::test]
async fn body_over_the_cap_is_a_finding() {
    let big = vec![b'x'; 3 << 20];
    let s = http_server(move |_| Resp::new(200, big.clone())).await;
    let toml = format!(
        "[defaults]\nmax_body = 1048576\n[[check]]\nname = \"big\"\nkind = \"http\"\nurl = \"{}/\"\n",
        s.url("http", "127.0.0.1")
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_finding(&o, "http.body_limit", Status::Fail, "> 1048576 bytes");
}

#[tokio::test]
async fn untrusted_tls_refuses_to_send_unless_insecure() {
    let s = https_server(&self_signed(&["localhost"]), |_| {
        Resp::new(200, "secret stuff")
    })
    .await;
    let url = s.url("https", "localhost");
    let check = |name: &str, extra: &str| {
        format!("[[check]]\nname = \"{name}\"\nkind = \"http\"\n{extra}\nurl = \"{url}/\"\n")
    };
    let mut out = run_toml(&check("a", ""), None).await;
    assert_eq!(out[0].status, Status::Error);
    let e = out[0].error.as_ref().unwrap();
    assert_eq!(e.kind, "tls");
    assert!(
        e.message.contains("self-signed") || e.message.contains("not trusted"),
        "{}",
        e.message
    );
    assert_eq!(
        s.hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing may be sent over an untrusted connection"
    );
    out = run_toml(&check("b", "insecure = true"), None).await;
    assert_eq!(out[0].status, Status::Pass);
    assert_eq!(s.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let pki = Pki::new();
    let s = https_server(&pki.leaf(&["localhost"], 90), |_| Resp::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[check]]\nname = \"h2\"\nkind = \"http\"\nurl = \"{}/\"\nexpect = ['cert.days > 80']\n",
        s.url("https", "localhost")
    );
    let o = run_toml(&toml, Some(pki.write_ca(&dir))).await.remove(0);
    assert_eq!(o.status, Status::Pass, "{:?} {:?}", o.findings, o.error);
    assert_eq!(o.details.json()["http_version"], "HTTP/2.0");
    assert!(o.timings.unwrap().tls > std::time::Duration::ZERO);
}

#[tokio::test]
async fn resolve_override_keeps_the_host_name() {
    let pki = Pki::new();
    let s = https_server(&pki.leaf(&["api.example.com"], 90), |r| {
        Resp::new(200, r.host.clone())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[env.green]\nbase_url = \"https://api.example.com:{p}\"\nresolve = {{ \"api.example.com:{p}\" = \"127.0.0.1\" }}\n[[check]]\nname = \"h\"\nkind = \"http\"\nurl = \"{{{{ base_url }}}}/\"\nexpect = ['body contains api.example.com']\n",
        p = s.port()
    );
    let o = run_toml(&toml, Some(pki.write_ca(&dir))).await.remove(0);
    assert_eq!(o.status, Status::Pass, "{:?} {:?}", o.findings, o.error);
}

const PAGE: &str = r#"<!doctype html><html><head>
<link rel="stylesheet" href="/static/app.css"><script src="/static/app.js"></script>
<script src="https://cdn.elsewhere.example/lib.js"></script></head>
<body><img src="/static/logo.png"></body></html>"#;

async fn run_page(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Outcome {
    let s = http_server(handler).await;
    let toml = format!(
        "[[check]]\nname = \"frontend\"\nkind = \"page\"\nurl = \"{}/\"\n",
        s.url("http", "127.0.0.1")
    );
    run_toml(&toml, None).await.remove(0)
}

#[tokio::test]
async fn page_with_all_assets_passes() {
    let o = run_page(|r| {
        if r.path == "/" {
            Resp::html(PAGE)
        } else {
            Resp::new(200, "asset")
        }
    })
    .await;
    assert_eq!(o.status, Status::Pass, "{:?}", o.findings);
    assert_finding(&o, "page.status", Status::Pass, "200");
    assert_finding(&o, "page.content_type", Status::Pass, "text/html");
    assert_finding(&o, "page.assets", Status::Pass, "3 loaded");
}

#[tokio::test]
async fn broken_assets_are_listed() {
    let o = run_page(|r| match r.path.as_str() {
        "/" => Resp::html(PAGE),
        "/static/app.js" => Resp::new(404, ""),
        "/static/logo.png" => Resp::new(500, ""),
        _ => Resp::new(200, "ok"),
    })
    .await;
    assert_finding(
        &o,
        "page.assets",
        Status::Fail,
        "/static/app.js (404), /static/logo.png (500)",
    );
}

#[tokio::test]
async fn wrong_status_or_content_type_fails() {
    let o = run_page(|_| Resp::new(500, "oops").header("content-type", "text/html")).await;
    assert_finding(&o, "page.status", Status::Fail, "500");
    let o = run_page(|_| Resp::json(200, "{}")).await;
    assert_finding(&o, "page.content_type", Status::Fail, "application/json");
}

/// A certificate from a private CA the run does not know says how to trust it.
#[tokio::test]
async fn an_unknown_issuer_says_to_pass_the_ca_with_ca_file() {
    let pki = Pki::new();
    let s = https_server(&pki.leaf(&["localhost"], 90), |_| Resp::new(200, "ok")).await;
    let toml = format!(
        "[[check]]\nname = \"a\"\nkind = \"http\"\nurl = \"{}/\"\n",
        s.url("https", "localhost")
    );
    let o = run_toml(&toml, None).await.remove(0);
    let e = o.error.as_ref().expect("a TLS error");
    assert_eq!(e.kind, "tls");
    assert!(e.message.contains("--ca-file"), "{}", e.message);
}
