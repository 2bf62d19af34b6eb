//! The `cors` check against servers with each CORS policy, correct and broken.

mod common;

use std::sync::Arc;

use common::*;
use shipwatch::probe::Status;
use shipwatch::runner::Outcome;

const APP: &str = "https://app.example.com";

/// What a server's CORS code answers for an Origin: the ACAO value, credentials, and Vary: Origin.
type Policy = dyn Fn(&str) -> Option<(String, bool, bool)> + Send + Sync;

async fn cors_check(allowed: &[&str], policy: Arc<Policy>) -> Outcome {
    let pki = Pki::new();
    let s = https_server(&pki.leaf(&["api.example.com"], 90), move |r| {
        let origin = r
            .headers
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut resp = Resp::json(if r.method == "OPTIONS" { 204 } else { 200 }, "{}");
        if let Some((acao, creds, vary)) = policy(origin) {
            resp = resp
                .header("access-control-allow-origin", &acao)
                .header("access-control-allow-methods", "GET, POST");
            if creds {
                resp = resp.header("access-control-allow-credentials", "true");
            }
            if vary {
                resp = resp.header("vary", "Origin");
            }
        }
        resp
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let p = s.port();
    let allowed: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
    let toml = format!(
        "[env.prod]\nbase_url = \"https://api.example.com:{p}\"\nresolve = {{ \"api.example.com:{p}\" = \"127.0.0.1\" }}\n[[check]]\nname = \"cors\"\nkind = \"cors\"\nurl = \"{{{{ base_url }}}}/auth/login\"\nmethod = \"POST\"\nallowed = [{}]\n",
        allowed.join(", ")
    );
    run_toml(&toml, Some(pki.write_ca(&dir))).await.remove(0)
}

fn exact(list: &'static [&'static str], creds: bool) -> Arc<Policy> {
    Arc::new(move |o| list.contains(&o).then(|| (o.to_string(), creds, true)))
}

#[tokio::test]
async fn a_correct_allowlist_passes_every_class() {
    let o = cors_check(&[APP], exact(&[APP], true)).await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    for id in [
        "cors.allowed",
        "cors.reflect",
        "cors.prefix",
        "cors.suffix",
        "cors.unescaped_dot",
        "cors.special_chars",
        "cors.null",
        "cors.http_origin",
        "cors.subdomain",
        "cors.wildcard_credentials",
    ] {
        assert_eq!(finding(&o, id).status, Status::Pass, "{id}");
    }
}

#[tokio::test]
async fn reflecting_every_origin_with_credentials_fails_everywhere() {
    let o = cors_check(
        &[APP],
        Arc::new(|o: &str| (!o.is_empty()).then(|| (o.to_string(), true, true))),
    )
    .await;
    for id in shipwatch::probe::CORS_FORBIDDEN {
        assert_eq!(finding(&o, id).status, Status::Fail, "{id}");
    }
    let reflect = finding(&o, "cors.reflect");
    assert!(
        reflect.message.contains("OPTIONS /auth/login with Origin: https://evil.com, Access-Control-Request-Method: POST → Access-Control-Allow-Origin: https://evil.com, Access-Control-Allow-Credentials: true"),
        "{}",
        reflect.message
    );
    assert!(
        reflect
            .message
            .contains("POST /auth/login with Origin: https://evil.com →")
    );
}

#[tokio::test]
async fn an_unanchored_regex_lets_look_alike_hosts_in() {
    // What `origin =~ /app.example.com/` allows: any origin containing the host, dot unescaped.
    let re = regex::Regex::new(r"app.example.com").unwrap();
    let o = cors_check(
        &[APP],
        Arc::new(move |o: &str| re.is_match(o).then(|| (o.to_string(), false, true))),
    )
    .await;
    assert_finding(&o, "cors.reflect", Status::Pass, "not allowed");
    assert_finding(
        &o,
        "cors.prefix",
        Status::Fail,
        "https://app.example.com.evil.com",
    );
    assert_finding(
        &o,
        "cors.suffix",
        Status::Fail,
        "https://evilapp.example.com",
    );
    assert_finding(
        &o,
        "cors.unescaped_dot",
        Status::Fail,
        "https://appxexample.com",
    );
    assert_finding(
        &o,
        "cors.special_chars",
        Status::Fail,
        "https://app.example.com_.evil.com",
    );
    assert_finding(
        &o,
        "cors.http_origin",
        Status::Fail,
        "http://app.example.com",
    );
    assert_finding(
        &o,
        "cors.allowed",
        Status::Pass,
        "1 origins allowed exactly",
    );
}

#[tokio::test]
async fn null_origin_allowed_fails() {
    let o = cors_check(&[APP], exact(&[APP, "null"], false)).await;
    assert_finding(
        &o,
        "cors.null",
        Status::Fail,
        "Access-Control-Allow-Origin: null",
    );
    assert_finding(&o, "cors.reflect", Status::Pass, "not allowed");
}

#[tokio::test]
async fn wildcard_with_and_without_credentials() {
    let o = cors_check(
        &[],
        Arc::new(|o: &str| (!o.is_empty()).then(|| ("*".to_string(), true, false))),
    )
    .await;
    assert_finding(
        &o,
        "cors.wildcard_credentials",
        Status::Fail,
        "Access-Control-Allow-Origin: *, Access-Control-Allow-Credentials: true",
    );
    assert_finding(&o, "cors.reflect", Status::Fail, "*");
    let o = cors_check(
        &[],
        Arc::new(|o: &str| (!o.is_empty()).then(|| ("*".to_string(), false, false))),
    )
    .await;
    assert_finding(&o, "cors.wildcard_credentials", Status::Pass, "none");
    // A public API: any origin may read without credentials. Worth a warning, not a failure.
    assert_finding(
        &o,
        "cors.reflect",
        Status::Warn,
        "Access-Control-Allow-Origin: *",
    );
    assert_eq!(o.status, Status::Warn);
}

#[tokio::test]
async fn unlisted_subdomain_warns_and_fails_with_credentials() {
    let re = regex::Regex::new(r"^https://[a-z-]+\.example\.com$").unwrap();
    let re2 = re.clone();
    let o = cors_check(
        &[APP],
        Arc::new(move |o: &str| re.is_match(o).then(|| (o.to_string(), false, true))),
    )
    .await;
    assert_finding(
        &o,
        "cors.subdomain",
        Status::Warn,
        "https://shipwatch-probe.example.com",
    );
    let o = cors_check(
        &[APP],
        Arc::new(move |o: &str| re2.is_match(o).then(|| (o.to_string(), true, true))),
    )
    .await;
    assert_finding(
        &o,
        "cors.subdomain",
        Status::Fail,
        "Access-Control-Allow-Credentials: true",
    );
}

#[tokio::test]
async fn allowed_origin_refused_or_without_vary() {
    let o = cors_check(&[APP], exact(&[], false)).await;
    assert_finding(
        &o,
        "cors.allowed",
        Status::Fail,
        "Access-Control-Allow-Origin: (none)",
    );
    let o = cors_check(
        &[APP],
        Arc::new(|o: &str| (o == APP).then(|| (o.to_string(), false, false))),
    )
    .await;
    assert_finding(&o, "cors.allowed", Status::Warn, "without Vary: Origin");
}
