//! An Observatory-style score and letter grade, following mdn/mdn-http-observatory's scoring.
//!
//! Start at 100 and add each test's modifier. Bonus points (positive modifiers) count only when
//! the score without them is at least 90. The letter comes from the score rounded down to a
//! multiple of 5, with 100 and above an A+.
//!
//! Tests and modifiers implemented:
//!
//! | test | results and modifiers |
//! |---|---|
//! | content-security-policy | default-src 'none' +10; no unsafe +5; unsafe only in style-src 0; http: passive content −10; 'unsafe-eval' −10; unsafe-inline/data:/broad script or object source −20; http: active content −20; invalid −25; missing (or Report-Only only) −25 |
//! | cookies | Secure+HttpOnly sessions+SameSite +5; Secure+HttpOnly sessions 0; none 0; no Secure but HSTS −5; session without Secure but HSTS −10; no Secure −20; invalid SameSite −20; anti-CSRF without SameSite −20; session without HttpOnly −30; session without Secure −40 |
//! | cross-origin-resource-sharing | a foreign origin is reflected with credentials −50; otherwise 0 |
//! | redirection | only when the check has `http_url`: to HTTPS on the same host 0; not reachable over HTTP 0; off-host first hop −5; first hop to HTTP −10; final page not HTTPS −20; no redirect −20 |
//! | referrer-policy | private value +5; missing 0; unsafe −5; invalid −5 |
//! | strict-transport-security | ≥ six months 0; shorter −10; missing −20; invalid −20; site not on HTTPS −20 (the preload bonus needs the preload list and is not scored) |
//! | subresource-integrity | SRI on all scripts +5; no scripts, not HTML, or same-origin scripts without SRI 0; external HTTPS scripts without SRI −5; SRI but insecure external scripts −20; insecure external scripts without SRI −50 |
//! | x-content-type-options | nosniff 0; missing −5; invalid −5 |
//! | x-frame-options | CSP frame-ancestors +5; DENY/SAMEORIGIN/ALLOW-FROM 0; missing −20; invalid −20 |
//! | cross-origin-resource-policy | same-origin or same-site +10; cross-origin or missing 0; invalid −5 |

use url::Url;

use super::{cookies, csp, hsts, values};

/// One test's result, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Modifier {
    pub test: &'static str,
    pub result: &'static str,
    pub modifier: i32,
}

/// How the plain-HTTP side of the site redirects, for the redirection test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirection {
    ToHttps,
    NoHttp,
    OffHost,
    FirstHopHttp,
    NotToHttps,
    Missing,
}

/// What the grade is computed from: the final HTTPS response and a few probes around it.
pub struct Input<'a> {
    pub url: &'a Url,
    pub headers: &'a http::HeaderMap,
    /// The body, when the response is HTML.
    pub html: Option<&'a str>,
    /// A request with a foreign Origin got that origin back together with credentials.
    pub cors_reflects_with_credentials: bool,
    pub redirection: Option<Redirection>,
}

/// A score, its letter, and the per-test modifiers that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grade {
    pub score: i32,
    pub letter: &'static str,
    pub modifiers: Vec<Modifier>,
}

const CHART: &[(i32, &str)] = &[
    (100, "A+"),
    (90, "A"),
    (85, "A-"),
    (80, "B+"),
    (70, "B"),
    (65, "B-"),
    (60, "C+"),
    (50, "C"),
    (45, "C-"),
    (40, "D+"),
    (30, "D"),
    (25, "D-"),
    (0, "F"),
];

/// Every letter from best to worst, for `min_grade` comparisons.
pub const LETTERS: &[&str] = &[
    "A+", "A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F",
];

/// The letter for a score.
pub fn letter(score: i32) -> &'static str {
    let rounded = (score.max(0) - score.max(0) % 5).min(100);
    CHART
        .iter()
        .find(|(min, _)| rounded >= *min)
        .map_or("F", |(_, l)| l)
}

/// True when `got` is at least as good as `min`.
pub fn at_least(got: &str, min: &str) -> bool {
    let rank = |l: &str| {
        LETTERS
            .iter()
            .position(|x| *x == l)
            .unwrap_or(LETTERS.len())
    };
    rank(got) <= rank(min)
}

/// Scores a response.
pub fn grade(input: &Input<'_>) -> Grade {
    let https = input.url.scheme() == "https";
    let hsts = hsts_result(input.headers, https);
    let hsts_protects = hsts.1 == 0;
    let mut modifiers = vec![
        m("content-security-policy", csp_result(input.headers, https)),
        m("cookies", cookie_result(input.headers, hsts_protects)),
        m(
            "cross-origin-resource-sharing",
            if input.cors_reflects_with_credentials {
                ("implemented-with-universal-access", -50)
            } else {
                ("not-universal", 0)
            },
        ),
        m("referrer-policy", referrer_result(input.headers)),
        m("strict-transport-security", hsts),
        m("subresource-integrity", sri_result(input.html, input.url)),
        m("x-content-type-options", xcto_result(input.headers)),
        m("x-frame-options", xfo_result(input.headers)),
        m("cross-origin-resource-policy", corp_result(input.headers)),
    ];
    if let Some(r) = input.redirection {
        modifiers.insert(3, m("redirection", redirection_result(r)));
    }
    let penalties: i32 = modifiers.iter().map(|x| x.modifier.min(0)).sum();
    let bonuses: i32 = modifiers.iter().map(|x| x.modifier.max(0)).sum();
    let uncurved = 100 + penalties;
    let score = if uncurved >= 90 {
        uncurved + bonuses
    } else {
        uncurved
    }
    .max(0);
    Grade {
        score,
        letter: letter(score),
        modifiers,
    }
}

fn m(test: &'static str, (result, modifier): (&'static str, i32)) -> Modifier {
    Modifier {
        test,
        result,
        modifier,
    }
}

fn csp_result(h: &http::HeaderMap, https: bool) -> (&'static str, i32) {
    let enforced = values(h, "content-security-policy");
    if enforced.is_empty() {
        return ("not-implemented", -25);
    }
    let Ok(p) = csp::Policy::parse(&enforced) else {
        return ("header-invalid", -25);
    };
    let script = p.script_src();
    let nonce = script
        .iter()
        .any(|s| s.starts_with("'nonce-") || s.starts_with("'sha"));
    if script.iter().any(|s| s == "'strict-dynamic'") && !nonce {
        return ("header-invalid", -25);
    }
    let broad = |s: &String| csp::BROAD.contains(&s.as_str());
    let unsafe_inline = |s: &String| s == "'unsafe-inline'" || s == "data:";
    let insecure = |s: &String| s.starts_with("http:") || s.starts_with("ftp:");
    if script.iter().any(|s| broad(s) || unsafe_inline(s)) || p.object_src().iter().any(broad) {
        ("implemented-with-unsafe-inline", -20)
    } else if https && p.active_sources().iter().any(insecure) {
        ("implemented-with-insecure-scheme", -20)
    } else if script
        .iter()
        .chain(p.style_src().iter())
        .any(|s| s == "'unsafe-eval'")
    {
        ("implemented-with-unsafe-eval", -10)
    } else if https && p.passive_sources().iter().any(insecure) {
        (
            "implemented-with-insecure-scheme-in-passive-content-only",
            -10,
        )
    } else if p.style_src().iter().any(|s| broad(s) || unsafe_inline(s)) {
        ("implemented-with-unsafe-inline-in-style-src-only", 0)
    } else if p.get("default-src") == Some(vec!["'none'".to_string()]) {
        ("implemented-with-no-unsafe-default-src-none", 10)
    } else {
        ("implemented-with-no-unsafe", 5)
    }
}

fn cookie_result(h: &http::HeaderMap, hsts: bool) -> (&'static str, i32) {
    let all: Vec<cookies::Cookie> = values(h, "set-cookie")
        .into_iter()
        .filter_map(cookies::parse)
        .collect();
    if all.is_empty() {
        return ("not-found", 0);
    }
    let mut worst = ("secure-with-httponly-sessions", 0);
    let mut worse = |r: (&'static str, i32)| {
        if r.1 < worst.1 {
            worst = r;
        }
    };
    for c in &all {
        match (c.secure, c.is_session_like(), hsts) {
            (false, true, true) => {
                worse(("session-without-secure-flag-but-protected-by-hsts", -10))
            }
            (false, true, false) => worse(("session-without-secure-flag", -40)),
            (false, false, true) => worse(("without-secure-flag-but-protected-by-hsts", -5)),
            (false, false, false) => worse(("without-secure-flag", -20)),
            _ => {}
        }
        if c.is_session_like() && !c.http_only {
            worse(("session-without-httponly-flag", -30));
        }
        if c.same_site_problem().is_some() {
            worse(("samesite-flag-invalid", -20));
        }
        if c.is_anti_csrf() && c.same_site.is_none() {
            worse(("anti-csrf-without-samesite-flag", -20));
        }
    }
    if worst.1 == 0 && all.iter().all(|c| c.same_site.is_some()) {
        return ("secure-with-httponly-sessions-and-samesite", 5);
    }
    worst
}

fn redirection_result(r: Redirection) -> (&'static str, i32) {
    match r {
        Redirection::ToHttps => ("to-https", 0),
        Redirection::NoHttp => ("not-needed-no-http", 0),
        Redirection::OffHost => ("off-host-from-http", -5),
        Redirection::FirstHopHttp => ("not-to-https-on-initial-redirection", -10),
        Redirection::NotToHttps => ("not-to-https", -20),
        Redirection::Missing => ("missing", -20),
    }
}

/// The referrer policy in force: the last value a browser recognises.
pub fn referrer_policy(h: &http::HeaderMap) -> Result<Option<String>, String> {
    const KNOWN: &[&str] = &[
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "origin",
        "origin-when-cross-origin",
        "unsafe-url",
        "no-referrer-when-downgrade",
    ];
    let raw = values(h, "referrer-policy");
    if raw.is_empty() {
        return Ok(None);
    }
    let tokens: Vec<String> = raw
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    tokens
        .iter()
        .rev()
        .find(|t| KNOWN.contains(&t.as_str()))
        .cloned()
        .map(Some)
        .ok_or_else(|| raw.join(", "))
}

/// Referrer values that keep paths and queries from leaking to other sites.
pub const PRIVATE_REFERRERS: &[&str] = &[
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
];

fn referrer_result(h: &http::HeaderMap) -> (&'static str, i32) {
    match referrer_policy(h) {
        Ok(None) => ("not-implemented", 0),
        Ok(Some(p)) if PRIVATE_REFERRERS.contains(&p.as_str()) => ("private", 5),
        Ok(Some(_)) => ("unsafe", -5),
        Err(_) => ("header-invalid", -5),
    }
}

fn hsts_result(h: &http::HeaderMap, https: bool) -> (&'static str, i32) {
    if !https {
        return ("not-implemented-no-https", -20);
    }
    match values(h, "strict-transport-security").first() {
        None => ("not-implemented", -20),
        Some(v) => match hsts::parse(v) {
            Err(_) => ("header-invalid", -20),
            Ok(p) if p.max_age < 15_768_000 => ("implemented-max-age-less-than-six-months", -10),
            Ok(_) => ("implemented-max-age-at-least-six-months", 0),
        },
    }
}

fn sri_result(html: Option<&str>, page: &Url) -> (&'static str, i32) {
    let Some(html) = html else {
        return ("not-implemented-response-not-html", 0);
    };
    let scripts: Vec<(Option<Url>, bool)> = crate::html::tags(html)
        .into_iter()
        .filter(|t| t.name == "script")
        .filter_map(|t| {
            let src = t.attr("src")?.trim().to_string();
            let integrity = t.attr("integrity").is_some_and(|i| !i.trim().is_empty());
            Some((
                page.join(&src).ok().filter(|_| !src.starts_with("//")),
                integrity,
            ))
        })
        .collect();
    if scripts.is_empty() {
        return ("not-implemented-but-no-scripts-loaded", 0);
    }
    let similar = |u: &Url| {
        u.host_str()
            .zip(page.host_str())
            .is_some_and(|(a, b)| a == b || a.ends_with(&format!(".{b}")))
    };
    let external: Vec<&(Option<Url>, bool)> = scripts
        .iter()
        .filter(|(u, _)| !u.as_ref().is_some_and(similar))
        .collect();
    let all_sri = scripts.iter().all(|(_, i)| *i);
    let external_secure = external
        .iter()
        .all(|(u, _)| u.as_ref().is_some_and(|u| u.scheme() == "https"));
    match (external.is_empty(), all_sri, external_secure) {
        (true, true, _) => ("implemented-and-all-scripts-loaded-securely", 5),
        (true, false, _) => (
            "not-implemented-but-all-scripts-loaded-from-secure-origin",
            0,
        ),
        (false, true, true) => ("implemented-and-external-scripts-loaded-securely", 5),
        (false, true, false) => ("implemented-but-external-scripts-not-loaded-securely", -20),
        (false, false, true) => ("not-implemented-but-external-scripts-loaded-securely", -5),
        (false, false, false) => (
            "not-implemented-and-external-scripts-not-loaded-securely",
            -50,
        ),
    }
}

fn xcto_result(h: &http::HeaderMap) -> (&'static str, i32) {
    match values(h, "x-content-type-options").first() {
        None => ("not-implemented", -5),
        Some(v) if v.trim().eq_ignore_ascii_case("nosniff") => ("nosniff", 0),
        Some(_) => ("header-invalid", -5),
    }
}

fn xfo_result(h: &http::HeaderMap) -> (&'static str, i32) {
    let csp_fa = csp::Policy::parse(&values(h, "content-security-policy"))
        .ok()
        .and_then(|p| p.frame_ancestors());
    if csp_fa.is_some_and(|fa| !fa.iter().any(|s| csp::BROAD.contains(&s.as_str()))) {
        return ("implemented-via-csp", 5);
    }
    match values(h, "x-frame-options")
        .first()
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => ("not-implemented", -20),
        Some(v) if v == "deny" || v == "sameorigin" => ("sameorigin-or-deny", 0),
        Some(v) if v.starts_with("allow-from ") => ("allow-from-origin", 0),
        Some(_) => ("header-invalid", -20),
    }
}

fn corp_result(h: &http::HeaderMap) -> (&'static str, i32) {
    match values(h, "cross-origin-resource-policy")
        .first()
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => ("not-implemented", 0),
        Some(v) if v == "same-origin" => ("implemented-with-same-origin", 10),
        Some(v) if v == "same-site" => ("implemented-with-same-site", 10),
        Some(v) if v == "cross-origin" => ("implemented-with-cross-origin", 0),
        Some(_) => ("header-invalid", -5),
    }
}
