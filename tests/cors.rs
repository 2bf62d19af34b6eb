//! The `cors` check against servers with each CORS policy, correct and broken.

mod common;

use std::sync::Arc;

use common::*;
use shipwatch::probe::{CorsClass, Status};
use shipwatch::runner::Outcome;

const APP: &str = "https://app.example.com";

/// What a server's CORS code answers: the ACAO values (one normally; two when a proxy adds its
/// own), whether credentials are allowed, and whether it sends Vary: Origin.
struct Answer {
    acao: Vec<String>,
    creds: bool,
    vary: bool,
}

fn one(acao: &str, creds: bool, vary: bool) -> Option<Answer> {
    Some(Answer {
        acao: vec![acao.to_string()],
        creds,
        vary,
    })
}

/// A server's CORS code: (method, origin) to its answer, if any.
type Policy = dyn Fn(&str, &str) -> Option<Answer> + Send + Sync;

async fn cors_check(allowed: &[&str], policy: Arc<Policy>) -> Outcome {
    let pki = Pki::new();
    let s = https_server(&pki.leaf(&["api.example.com"], 90), move |r| {
        let origin = r
            .headers
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut resp = Resp::json(if r.method == "OPTIONS" { 204 } else { 200 }, "{}");
        if let Some(a) = policy(&r.method, origin) {
            for v in &a.acao {
                resp = resp.header("access-control-allow-origin", v);
            }
            resp = resp.header("access-control-allow-methods", "GET, POST");
            if a.creds {
                resp = resp.header("access-control-allow-credentials", "true");
            }
            if a.vary {
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
    Arc::new(move |_, o| {
        if list.contains(&o) {
            one(o, creds, true)
        } else {
            None
        }
    })
}

/// Echoes every origin the regex accepts, on every method.
fn regex(re: &str, creds: bool) -> Arc<Policy> {
    let re = regex::Regex::new(re).unwrap();
    Arc::new(move |_, o| {
        if re.is_match(o) {
            one(o, creds, true)
        } else {
            None
        }
    })
}

fn ids_with(o: &Outcome, status: Status) -> Vec<&str> {
    o.findings
        .iter()
        .filter(|f| f.status == status)
        .map(|f| f.id.as_str())
        .collect()
}

#[tokio::test]
async fn a_correct_allowlist_passes_every_class() {
    let o = cors_check(&[APP], exact(&[APP], true)).await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    for class in CorsClass::FORBIDDEN {
        assert_eq!(
            finding(&o, class.id()).status,
            Status::Pass,
            "{}",
            class.id()
        );
    }
    assert_eq!(
        finding(&o, "cors.wildcard_credentials").status,
        Status::Pass
    );
    assert_eq!(finding(&o, "cors.allowed").status, Status::Pass);
}

#[tokio::test]
async fn reflecting_every_origin_is_one_cause() {
    let o = cors_check(
        &[APP],
        Arc::new(|_, o: &str| {
            if o.is_empty() {
                None
            } else {
                one(o, true, true)
            }
        }),
    )
    .await;
    for class in CorsClass::FORBIDDEN {
        assert_eq!(
            finding(&o, class.id()).status,
            Status::Fail,
            "{}",
            class.id()
        );
    }
    assert_finding(&o, "cors.reflect", Status::Fail, "echoes any Origin");
    assert_finding(
        &o,
        "cors.reflect",
        Status::Fail,
        "OPTIONS /auth/login with Origin: https://evil.com, Access-Control-Request-Method: POST → Access-Control-Allow-Origin: https://evil.com, Access-Control-Allow-Credentials: true",
    );
    assert_finding(
        &o,
        "cors.reflect",
        Status::Fail,
        "POST /auth/login with Origin: https://evil.com →",
    );
    assert_finding(&o, "cors.null", Status::Fail, "same cause as cors.reflect");
    assert_finding(
        &o,
        "cors.third_party",
        Status::Fail,
        "same cause as cors.reflect",
    );
}

#[tokio::test]
async fn reflecting_only_on_get_is_caught() {
    // Strict on the preflight and on POST, but the GET handler echoes any origin with credentials.
    let o = cors_check(
        &[APP],
        Arc::new(|method: &str, o: &str| match method {
            "GET" if !o.is_empty() => one(o, true, true),
            _ if o == APP => one(o, true, true),
            _ => None,
        }),
    )
    .await;
    assert_finding(
        &o,
        "cors.reflect",
        Status::Fail,
        "GET /auth/login with Origin: https://evil.com → Access-Control-Allow-Origin: https://evil.com",
    );
    assert_finding(
        &o,
        "cors.reflect",
        Status::Fail,
        "only the simple GET allows",
    );
    assert_eq!(finding(&o, "cors.allowed").status, Status::Pass);
}

#[tokio::test]
async fn an_unanchored_regex_lets_look_alike_hosts_in() {
    // What `origin =~ /app.example.com/` allows: any origin containing the host, dot unescaped.
    let o = cors_check(&[APP], regex(r"app.example.com", false)).await;
    assert_finding(&o, "cors.reflect", Status::Pass, "not allowed");
    assert_finding(
        &o,
        "cors.prefix",
        Status::Fail,
        "https://app.example.com.evil.com",
    );
    assert_finding(
        &o,
        "cors.unescaped_dot",
        Status::Fail,
        "https://appxexample.com",
    );
    assert_finding(
        &o,
        "cors.unescaped_dot",
        Status::Fail,
        "https://app.examplexcom",
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
    // evilexample.com does not contain "app": the suffix class holds. A longer name under the
    // same domain is a subdomain, which only the domain's owner can create: a warning.
    assert_finding(&o, "cors.suffix", Status::Pass, "not allowed");
    assert_finding(
        &o,
        "cors.subdomain",
        Status::Warn,
        "https://shipwatch-probe.app.example.com",
    );
    assert_finding(
        &o,
        "cors.allowed",
        Status::Pass,
        "1 origins allowed exactly",
    );
}

#[tokio::test]
async fn an_unescaped_dot_before_the_top_level_domain() {
    let o = cors_check(&[APP], regex(r"^https://(app|api)\.example.com$", true)).await;
    assert_finding(
        &o,
        "cors.unescaped_dot",
        Status::Fail,
        "https://api.examplexcom",
    );
    assert_eq!(ids_with(&o, Status::Fail), ["cors.unescaped_dot"]);
}

#[tokio::test]
async fn a_suffix_check_lets_other_sites_in() {
    // `origin.endswith("example.com")`: evilexample.com is someone else's site.
    let o = cors_check(&[APP], regex(r"example\.com$", true)).await;
    assert_finding(&o, "cors.suffix", Status::Fail, "https://evilexample.com");
    assert_finding(
        &o,
        "cors.subdomain",
        Status::Fail,
        "Access-Control-Allow-Credentials: true",
    );
}

#[tokio::test]
async fn a_deliberate_subdomain_policy_only_warns() {
    let o = cors_check(&[APP], regex(r"^https://[a-z0-9-]+\.example\.com$", false)).await;
    assert_eq!(
        ids_with(&o, Status::Fail),
        Vec::<&str>::new(),
        "{:#?}",
        o.findings
    );
    assert_eq!(ids_with(&o, Status::Warn), ["cors.subdomain"]);
    assert_finding(
        &o,
        "cors.subdomain",
        Status::Warn,
        "https://shipwatch-probe.example.com",
    );
    let o = cors_check(&[APP], regex(r"^https://[a-z0-9-]+\.example\.com$", true)).await;
    assert_finding(
        &o,
        "cors.subdomain",
        Status::Fail,
        "Access-Control-Allow-Credentials: true",
    );
}

#[tokio::test]
async fn hosting_platforms_are_their_own_class() {
    let o = cors_check(
        &[APP],
        regex(
            r"^https://([a-z0-9-]+\.github\.io|app\.example\.com)$",
            true,
        ),
    )
    .await;
    assert_finding(
        &o,
        "cors.third_party",
        Status::Fail,
        "https://shipwatch-probe.github.io",
    );
    assert_eq!(ids_with(&o, Status::Fail), ["cors.third_party"]);
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
    let star = |creds: bool| -> Arc<Policy> {
        Arc::new(move |_, o: &str| {
            if o.is_empty() {
                None
            } else {
                one("*", creds, false)
            }
        })
    };
    let o = cors_check(&[], star(true)).await;
    assert_finding(
        &o,
        "cors.wildcard_credentials",
        Status::Fail,
        "Access-Control-Allow-Origin: *, Access-Control-Allow-Credentials: true",
    );
    assert_finding(
        &o,
        "cors.reflect",
        Status::Fail,
        "answers every origin with *",
    );
    let o = cors_check(&[], star(false)).await;
    assert_finding(&o, "cors.wildcard_credentials", Status::Pass, "none");
    // A public API: any origin may read without credentials. One warning, said once.
    assert_finding(
        &o,
        "cors.reflect",
        Status::Warn,
        "answers every origin with *",
    );
    assert_eq!(ids_with(&o, Status::Warn), ["cors.reflect"]);
    assert_finding(
        &o,
        "cors.null",
        Status::Pass,
        "judged once, under cors.reflect",
    );
    assert_eq!(o.status, Status::Warn);
}

#[tokio::test]
async fn allowed_origin_refused_or_without_vary() {
    let o = cors_check(&[APP], exact(&[], false)).await;
    assert_finding(
        &o,
        "cors.allowed",
        Status::Fail,
        "no Access-Control-Allow-Origin",
    );
    let o = cors_check(
        &[APP],
        Arc::new(|_, o: &str| if o == APP { one(o, false, false) } else { None }),
    )
    .await;
    assert_finding(&o, "cors.allowed", Status::Warn, "without Vary: Origin");
}

#[tokio::test]
async fn refusals_of_an_allowed_origin_say_why() {
    let answer = |acao: &'static [&'static str]| -> Arc<Policy> {
        Arc::new(move |_, o: &str| {
            (o == APP).then(|| Answer {
                acao: acao.iter().map(|s| s.to_string()).collect(),
                creds: false,
                vary: true,
            })
        })
    };
    let o = cors_check(&[APP], answer(&[APP, APP])).await;
    assert_finding(
        &o,
        "cors.allowed",
        Status::Fail,
        "2 Access-Control-Allow-Origin headers",
    );
    let o = cors_check(
        &[APP],
        answer(&["https://app.example.com https://www.example.com"]),
    )
    .await;
    assert_finding(&o, "cors.allowed", Status::Fail, "a list of origins");
    let o = cors_check(&[APP], answer(&["https://app.example.com/"])).await;
    assert_finding(&o, "cors.allowed", Status::Fail, "trailing slash");
    let o = cors_check(&[APP], answer(&["https://APP.example.com"])).await;
    assert_finding(&o, "cors.allowed", Status::Fail, "letter case");
}

#[tokio::test]
async fn a_preflight_that_disagrees_with_the_request_is_named() {
    // The preflight handler allows the origin; the POST handler forgets the header.
    let o = cors_check(
        &[APP],
        Arc::new(|m: &str, o: &str| {
            if m == "OPTIONS" && o == APP {
                one(o, false, true)
            } else {
                None
            }
        }),
    )
    .await;
    assert_finding(
        &o,
        "cors.allowed",
        Status::Fail,
        "the preflight allows https://app.example.com, but the POST response refuses it",
    );
    let o = cors_check(
        &[APP],
        Arc::new(|m: &str, o: &str| {
            if m != "OPTIONS" && o == APP {
                one(o, false, true)
            } else {
                None
            }
        }),
    )
    .await;
    assert_finding(
        &o,
        "cors.allowed",
        Status::Fail,
        "browsers never send the POST",
    );
}
