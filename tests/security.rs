//! The `headers` and `exposure` checks against in-process servers sending each variant.

mod common;

use common::*;
use shipwatch::probe::Status;
use shipwatch::runner::Outcome;

/// Serves `page` for every path over HTTPS and runs a headers check against it.
async fn headers_check(
    extra: &str,
    page: impl Fn(&Req) -> Resp + Send + Sync + 'static,
) -> Outcome {
    let pki = Pki::new();
    let s = https_server(&pki.leaf(&["localhost"], 90), page).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[check]]\nname = \"h\"\nkind = \"headers\"\nurl = \"{}/\"\n{extra}\n",
        s.url("https", "localhost")
    );
    run_toml(&toml, Some(pki.write_ca(&dir))).await.remove(0)
}

/// A hardened page with one header replaced (or removed when `value` is empty).
fn with(name: &'static str, value: &'static str) -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
    move |_| {
        let mut r = Resp::html("<p>shop</p>").hardened();
        r.headers.retain(|(k, _)| k != name);
        if !value.is_empty() {
            r = r.header(name, value);
        }
        r
    }
}

#[tokio::test]
async fn hardened_site_passes_every_rule_with_an_a_plus() {
    let o = headers_check("", |_| {
        Resp::html("<p>shop</p>")
            .hardened()
            .header("set-cookie", "sid=1; Secure; HttpOnly; SameSite=Lax")
            .header("server", "nginx")
    })
    .await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    for id in [
        "headers.hsts",
        "headers.frame",
        "headers.nosniff",
        "headers.csp",
        "headers.referrer",
        "headers.permissions",
        "headers.cookies",
        "headers.leak",
    ] {
        assert_eq!(finding(&o, id).status, Status::Pass, "{id}");
    }
    assert_finding(&o, "headers.grade", Status::Pass, "A+ (135)");
    assert_eq!(o.details.json()["grade"], "A+");
}

#[tokio::test]
async fn bare_site_fails_the_rules_and_the_grade() {
    let o = headers_check("", |_| Resp::html("<p>shop</p>")).await;
    assert_finding(&o, "headers.hsts", Status::Fail, "missing");
    assert_finding(&o, "headers.frame", Status::Fail, "neither");
    assert_finding(&o, "headers.nosniff", Status::Fail, "(missing)");
    assert_finding(&o, "headers.csp", Status::Fail, "missing");
    assert_finding(&o, "headers.referrer", Status::Warn, "not set");
    assert_finding(&o, "headers.permissions", Status::Warn, "not set");
    assert_finding(&o, "headers.cookies", Status::Pass, "no cookies");
    assert_finding(&o, "headers.grade", Status::Fail, "D (30)");
    let o = headers_check("min_grade = \"D\"", |_| Resp::html("<p>shop</p>")).await;
    assert_finding(&o, "headers.grade", Status::Pass, "D (30)");
}

#[tokio::test]
async fn hsts_variants() {
    let twice = |_: &Req| {
        Resp::html("x")
            .hardened()
            .header("strict-transport-security", "max-age=63072000")
    };
    assert_finding(
        &headers_check("", twice).await,
        "headers.hsts",
        Status::Fail,
        "sent 2 times",
    );
    for (value, needle) in [
        ("max-age=0", "switches HSTS off"),
        ("max-age=86400", "shorter than one year"),
        ("max-age=soon", "does not parse"),
    ] {
        let o = headers_check("", with("strict-transport-security", value)).await;
        assert_finding(&o, "headers.hsts", Status::Fail, needle);
    }
    let o = headers_check(
        "",
        with(
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
    )
    .await;
    assert_finding(&o, "headers.hsts", Status::Pass, "max-age=31536000");
}

#[tokio::test]
async fn frame_variants() {
    let csp_only = |v: &'static str| {
        move |_: &Req| {
            let mut r = Resp::html("x").hardened();
            r.headers
                .retain(|(k, _)| k != "x-frame-options" && k != "content-security-policy");
            r.header("content-security-policy", v)
        }
    };
    let o = headers_check(
        "",
        csp_only("default-src 'self'; object-src 'none'; frame-ancestors 'none'"),
    )
    .await;
    assert_finding(&o, "headers.frame", Status::Pass, "frame-ancestors 'none'");
    let o = headers_check(
        "",
        csp_only("default-src 'self'; object-src 'none'; frame-ancestors 'self'"),
    )
    .await;
    assert_finding(&o, "headers.frame", Status::Warn, "'self'");
    let o = headers_check(
        "",
        csp_only("default-src 'self'; object-src 'none'; frame-ancestors *"),
    )
    .await;
    assert_finding(&o, "headers.frame", Status::Fail, "any site");
    let xfo = |v: &'static str| {
        move |_: &Req| {
            let mut r = Resp::html("x").hardened();
            r.headers
                .retain(|(k, _)| k != "x-frame-options" && k != "content-security-policy");
            r.header(
                "content-security-policy",
                "default-src 'self'; object-src 'none'",
            )
            .header("x-frame-options", v)
        }
    };
    assert_finding(
        &headers_check("", xfo("SAMEORIGIN")).await,
        "headers.frame",
        Status::Warn,
        "SAMEORIGIN",
    );
    assert_finding(
        &headers_check("", xfo("ALLOWALL")).await,
        "headers.frame",
        Status::Fail,
        "invalid",
    );
    assert_finding(
        &headers_check("", xfo("deny")).await,
        "headers.frame",
        Status::Pass,
        "DENY",
    );
}

#[tokio::test]
async fn csp_variants() {
    let cases = [
        (
            "script-src 'self' 'unsafe-inline'; object-src 'none'",
            Status::Fail,
            "'unsafe-inline'",
        ),
        (
            "script-src 'self' 'nonce-r4nd0m' 'unsafe-inline'; object-src 'none'",
            Status::Pass,
            "without unsafe",
        ),
        (
            "script-src 'self' data:; object-src 'none'",
            Status::Fail,
            "data:",
        ),
        (
            "script-src https:; object-src 'none'",
            Status::Fail,
            "broad source https:",
        ),
        ("script-src 'self'", Status::Fail, "object-src allows *"),
        (
            "default-src 'self'; img-src http://img.example.com",
            Status::Fail,
            "http: source http://img.example.com",
        ),
        (
            "default-src 'self'; script-src 'self' 'unsafe-eval'",
            Status::Warn,
            "'unsafe-eval'",
        ),
        (
            "default-src 'self', script-src 'self' 'unsafe-inline'",
            Status::Pass,
            "without unsafe",
        ),
        ("scr!pt-src 'self'", Status::Fail, "does not parse"),
    ];
    for (policy, status, needle) in cases {
        let o = headers_check("", with("content-security-policy", policy)).await;
        assert_finding(&o, "headers.csp", status, needle);
    }
    let report_only = |_: &Req| {
        let mut r = Resp::html("x").hardened();
        r.headers.retain(|(k, _)| k != "content-security-policy");
        r.header("content-security-policy-report-only", "default-src 'self'")
    };
    assert_finding(
        &headers_check("", report_only).await,
        "headers.csp",
        Status::Fail,
        "Report-Only",
    );
}

#[tokio::test]
async fn referrer_permissions_and_nosniff_variants() {
    let cases = [
        ("unsafe-url", Status::Fail, "unsafe-url"),
        ("no-referrer, unsafe-url", Status::Fail, "unsafe-url"),
        ("unsafe-url, strict-origin", Status::Pass, "strict-origin"),
        ("strict-origin, bogus-value", Status::Pass, "strict-origin"),
        ("bogus", Status::Fail, "no valid value"),
    ];
    for (value, status, needle) in cases {
        assert_finding(
            &headers_check("", with("referrer-policy", value)).await,
            "headers.referrer",
            status,
            needle,
        );
    }
    let o = headers_check("", with("permissions-policy", "camera 'none'")).await;
    assert_finding(&o, "headers.permissions", Status::Fail, "does not parse");
    let o = headers_check("", with("x-content-type-options", "sniff-away")).await;
    assert_finding(&o, "headers.nosniff", Status::Fail, "sniff-away");
}

#[tokio::test]
async fn cookie_variants_and_the_login_response() {
    let page = |cookie: &'static str| {
        move |_: &Req| Resp::html("x").hardened().header("set-cookie", cookie)
    };
    let cases = [
        ("theme=dark; HttpOnly; SameSite=Lax", "theme lacks Secure"),
        (
            "sessionid=1; Secure; SameSite=Lax",
            "sessionid looks like a session cookie but lacks HttpOnly",
        ),
        (
            "pref=1; HttpOnly; SameSite=None",
            "SameSite=None without Secure",
        ),
        (
            "pref=1; Secure; SameSite=Sometimes",
            "invalid SameSite=\"Sometimes\"",
        ),
    ];
    for (cookie, needle) in cases {
        assert_finding(
            &headers_check("", page(cookie)).await,
            "headers.cookies",
            Status::Fail,
            needle,
        );
    }
    // Several Set-Cookie headers are each judged.
    let two = |_: &Req| {
        Resp::html("x")
            .hardened()
            .header("set-cookie", "a=1; Secure; HttpOnly")
            .header("set-cookie", "auth_token=2; Secure")
    };
    assert_finding(
        &headers_check("", two).await,
        "headers.cookies",
        Status::Fail,
        "auth_token looks like a session cookie",
    );
    // A cookie that only the login response sets is judged too.
    let login = |r: &Req| {
        if r.path == "/login" {
            Resp::json(200, "{}")
                .hardened()
                .header("set-cookie", "session=abc; Path=/")
        } else {
            Resp::html("x").hardened()
        }
    };
    let o = headers_check(
        "[check.login]\nurl = \"https://localhost:1/login\"\n",
        login,
    )
    .await;
    assert_finding(&o, "headers.cookies", Status::Fail, "login request failed");
    let pki = Pki::new();
    let s = https_server(&pki.leaf(&["localhost"], 90), login).await;
    let dir = tempfile::tempdir().unwrap();
    let url = s.url("https", "localhost");
    let toml = format!(
        "[[check]]\nname = \"h\"\nkind = \"headers\"\nurl = \"{url}/\"\n[check.login]\nurl = \"{url}/login\"\nmethod = \"POST\"\nform = {{ user = \"admin\" }}\n"
    );
    let o = run_toml(&toml, Some(pki.write_ca(&dir))).await.remove(0);
    assert_finding(&o, "headers.cookies", Status::Fail, "session lacks Secure");
}

#[tokio::test]
async fn version_leaks_warn() {
    let o = headers_check("", |_| {
        Resp::html("x")
            .hardened()
            .header("server", "Apache/2.4.41 (Ubuntu)")
            .header("x-powered-by", "PHP/8.1.2")
    })
    .await;
    assert_finding(&o, "headers.leak", Status::Warn, "server: Apache/2.4.41");
    assert!(
        finding(&o, "headers.leak")
            .message
            .contains("x-powered-by: PHP/8.1.2")
    );
    assert_eq!(o.status, Status::Warn);
}

#[tokio::test]
async fn a_reflected_origin_with_credentials_lowers_the_grade() {
    let o = headers_check("min_grade = \"A\"", |r: &Req| {
        let origin = r
            .headers
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut resp = Resp::html("x").hardened();
        if !origin.is_empty() {
            resp = resp
                .header("access-control-allow-origin", &origin)
                .header("access-control-allow-credentials", "true");
        }
        resp
    })
    .await;
    // Every bonus is withheld once the score drops below 90: 100 − 50 = 50, C.
    assert_finding(&o, "headers.grade", Status::Fail, "C (50)");
}

/// Serves an exposure-check target whose answers `handler` decides.
async fn exposure_check(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Outcome {
    let s = http_server(handler).await;
    let toml = format!(
        "[[check]]\nname = \"x\"\nkind = \"exposure\"\nurl = \"{}/\"\nendpoints = [\"{}/api/orders\"]\n",
        s.url("http", "127.0.0.1"),
        s.url("http", "127.0.0.1")
    );
    run_toml(&toml, None).await.remove(0)
}

#[tokio::test]
async fn clean_and_spa_sites_expose_nothing() {
    let o = exposure_check(|r| {
        if r.method == "POST" {
            Resp::json(400, r#"{"error":"invalid JSON"}"#)
        } else {
            Resp::new(404, "Not Found")
        }
    })
    .await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    // A single-page app answers every path with its index page; that is not a leak.
    let o = exposure_check(|_| Resp::html("<!doctype html><div id=app></div>")).await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
}

#[tokio::test]
async fn stack_traces_and_sensitive_files_fail() {
    let o = exposure_check(|r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", _) => Resp::new(500, "java.lang.IllegalStateException: bad json\n\tat com.shop.api.Orders.create(Orders.java:88)"),
        (_, "/.git/HEAD") => Resp::new(200, "ref: refs/heads/main\n"),
        (_, "/.env") => Resp::new(200, "DB_HOST=db\nDB_PASSWORD=hunter2\n"),
        (_, "/server-status") => Resp::html("<h1>Apache Server Status for shop</h1><dt>Server uptime: 3 days</dt>"),
        _ => Resp::new(404, "Traceback (most recent call last):\n  File \"/srv/app.py\", line 12, in handler"),
    })
    .await;
    assert_finding(
        &o,
        "exposure.error_page",
        Status::Fail,
        "Python traceback in a 404 response",
    );
    assert_finding(
        &o,
        "exposure.bad_request",
        Status::Fail,
        "Java exception trace in a 500 response",
    );
    assert_finding(&o, "exposure.git", Status::Fail, "/.git/HEAD is served");
    assert_finding(&o, "exposure.env", Status::Fail, "/.env is served");
    assert_finding(
        &o,
        "exposure.server_status",
        Status::Fail,
        "/server-status is served",
    );
    let text = serde_json::to_string(&o.findings).unwrap();
    assert!(
        !text.contains("hunter2"),
        "the contents of a leaked file are not copied into the report"
    );
}

#[tokio::test]
async fn debug_pages_and_sql_errors_fail() {
    for (body, needle) in [
        (
            "<p>You're seeing this error because you have <code>DEBUG = True</code> in your Django settings file.</p>",
            "Django debug page",
        ),
        (
            "SQLSTATE[42S22]: Column not found: 1054 Unknown column",
            "SQL error",
        ),
        (
            "<title>Server Error in '/' Application.</title>",
            "ASP.NET error page",
        ),
    ] {
        let o = exposure_check(move |_| Resp::new(404, body)).await;
        assert_finding(&o, "exposure.error_page", Status::Fail, needle);
    }
}

/// The grade's modifier results, by test name.
fn modifiers(o: &Outcome) -> std::collections::BTreeMap<String, String> {
    o.details.json()["modifiers"]
        .as_array()
        .expect("modifiers")
        .iter()
        .map(|m| {
            (
                m["test"].as_str().unwrap_or("").to_string(),
                m["result"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_grade_reads_the_plain_http_side_and_the_redirect_chain() {
    // Plain HTTP that serves the page instead of redirecting: −20 for the Observatory.
    let plain = http_server(|_| Resp::html("<p>plain</p>")).await;
    let extra = format!("http_url = \"http://localhost:{}/\"", plain.port());
    let o = headers_check(&extra, |r| match r.path.as_str() {
        // A session cookie without Secure, set on a redirect hop, counts too.
        "/" => Resp::redirect(302, "/home").header("set-cookie", "sessionid=1; Path=/; HttpOnly"),
        _ => Resp::html("<p>home</p>").hardened(),
    })
    .await;
    let m = modifiers(&o);
    assert_eq!(m["redirection"], "redirection-missing");
    assert_eq!(
        m["cookies"],
        "cookies-session-without-secure-flag-but-protected-by-hsts"
    );
    assert_finding(
        &o,
        "headers.cookies",
        Status::Fail,
        "sessionid lacks Secure",
    );
    // No http_url: http://localhost/ on port 80, where nothing listens here: no penalty.
    let o = headers_check("", with("x-none", "")).await;
    assert_eq!(
        modifiers(&o)["redirection"],
        "redirection-not-needed-no-http"
    );
}

#[tokio::test]
async fn meta_policies_and_repeated_headers_count() {
    let o = headers_check("", |_| {
        let mut r = Resp::html(
            r#"<meta http-equiv="Content-Security-Policy" content="default-src 'self'; object-src 'none'"><meta name="referrer" content="no-referrer">"#,
        )
        .hardened();
        r.headers
            .retain(|(k, _)| k != "content-security-policy" && k != "referrer-policy");
        r.header("x-content-type-options", "nosniff")
    })
    .await;
    let m = modifiers(&o);
    assert_eq!(
        m["content-security-policy"],
        "csp-implemented-with-no-unsafe"
    );
    assert_eq!(m["referrer-policy"], "referrer-policy-private");
    assert_eq!(
        m["x-content-type-options"],
        "x-content-type-options-header-invalid"
    );
    assert_finding(&o, "headers.csp", Status::Pass, "enforced policy");
    assert_finding(&o, "headers.referrer", Status::Pass, "no-referrer");
    assert_finding(&o, "headers.nosniff", Status::Fail, "nosniff | nosniff");
}
