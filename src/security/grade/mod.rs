//! The Mozilla HTTP Observatory's score and letter grade (scanner algorithm 4, npm package
//! `@mdn/mdn-http-observatory` 1.4.8), reproduced test by test so that `headers.grade` shows the
//! grade the Observatory shows.
//!
//! The score starts at 100 and adds each test's modifier. Bonus points count only when the score
//! without them is at least 90. The letter comes from the score rounded down to a multiple of 5,
//! with 100 and above an A+.
//!
//! | test | results and modifiers |
//! |---|---|
//! | content-security-policy | default-src 'none' +10; no unsafe +5; unsafe only in style-src 0; report-uri repeated 0; http: passive content −10; 'unsafe-eval' −10; unsafe-inline/data:/broad script or object source −20; http: active content −20; invalid −25; missing, or Report-Only only, −25 ([`csp`]) |
//! | cookies | Secure+HttpOnly sessions+SameSite +5; Secure+HttpOnly sessions 0; none 0; no Secure but HSTS −5; session without Secure but HSTS −10; no Secure −20; invalid SameSite −20; anti-CSRF without SameSite −20; session without HttpOnly −30; session without Secure −40 ([`cookies`]) |
//! | cross-origin-resource-sharing | `*` 0; restricted 0; a foreign origin reflected with credentials −50 |
//! | redirection | to HTTPS on the same host 0; no plain HTTP 0; off-host first hop −5; first hop to HTTP −10; final page not HTTPS −20; no redirect −20; a certificate on the way not trusted −20 |
//! | referrer-policy | private value +5; missing 0; unsafe −5; invalid −5 (header and `<meta name=referrer>`) |
//! | strict-transport-security | ≥ 15552000 s 0; shorter −10; missing −20; invalid (repeated, no max-age) −20; no HTTPS −20; untrusted certificate −20 |
//! | subresource-integrity | see [`sri`]: +5, 0, −5, −20 or −50 |
//! | x-content-type-options | nosniff 0; missing −5; invalid (repeated) −5 |
//! | x-frame-options | any CSP frame-ancestors, header or meta, +5; DENY/SAMEORIGIN/ALLOW-FROM 0; missing −20; invalid (repeated) −20 |
//! | cross-origin-resource-policy | same-origin or same-site +10; cross-origin or missing 0; invalid (repeated) −5 |
//!
//! A repeated header reads as one value joined with ", ", as Node presents it to the Observatory.
//!
//! # Where shipwatch differs on purpose
//!
//! - **CORS with credentials.** The Observatory documents −50 for a site that reflects any origin
//!   with credentials, but its implementation compares the origin it sent with a request header it
//!   cannot read, so it never applies. shipwatch applies the documented −50: such a site lets any
//!   page read its users' data.
//! - **The HSTS preload list.** The Observatory gives +5 to a host on Chromium's preload list and
//!   accepts its redirects as preloaded. The list is not shipped with the scanner (it is downloaded
//!   at install time) nor with shipwatch, so neither result is given.

mod cookies;
mod csp;
mod sri;

use bytes::Bytes;
use url::Url;

pub use cookies::Jar;

/// One test's result, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Modifier {
    pub test: &'static str,
    pub result: &'static str,
    pub modifier: i32,
}

/// A score, its letter, and the per-test modifiers that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grade {
    pub score: i32,
    pub letter: &'static str,
    pub modifiers: Vec<Modifier>,
}

/// The last response of a session, as the grade reads it.
#[derive(Debug, Clone)]
pub struct Page {
    pub url: Url,
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A request and the redirects it followed, the way a browser session sees them.
#[derive(Debug, Clone)]
pub struct Session {
    /// The URL first asked for.
    pub start: Url,
    /// Every URL of the chain, `start` first, with each response's status.
    pub route: Vec<(Url, u16)>,
    /// Every cookie the chain's responses set.
    pub jar: Jar,
    /// The response the chain ended on.
    pub last: Page,
    /// Every certificate on the way was trusted.
    pub verified: bool,
}

/// How the site's plain-HTTP URL answered.
#[derive(Debug, Clone)]
pub enum Http {
    /// No answer: there is nothing to redirect.
    Unreachable,
    /// A certificate on the redirect chain was not trusted.
    InvalidCert,
    /// The chain, which may end anywhere.
    Answered(Box<Session>),
}

/// What the grade is computed from.
pub struct Input<'a> {
    /// The host the scan is about, for the registrable domain of its scripts.
    pub host: &'a str,
    /// The HTTPS session, or `None` when the site has no HTTPS.
    pub https: Option<&'a Session>,
    pub http: &'a Http,
    /// The answer to a preflight with a foreign `Origin`, and that origin.
    pub cors: Option<(&'a http::HeaderMap, &'a str)>,
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
pub(crate) const LETTERS: &[&str] = &[
    "A+", "A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F",
];

/// The Observatory gives bonus points only to a site that already scores an A.
const EXTRA_CREDIT_FROM: i32 = 90;
/// "15768000 is six months, but a lot of sites use 15552000", says the Observatory.
pub(crate) const HSTS_SIX_MONTHS: f64 = 15_552_000.0;

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

/// Scores a site.
pub fn grade(input: &Input<'_>) -> Grade {
    let auto = input.https.or(match input.http {
        Http::Answered(s) => Some(s),
        _ => None,
    });
    let https_start = auto.is_some_and(|s| s.start.scheme() == "https");
    let page = auto.map(|s| &s.last);
    let h = page.map(|p| Headers(&p.headers));
    let html = page.and_then(html_of);
    let html = html.as_deref();
    let meta = html.map(meta_policies).unwrap_or_default();
    let csp = h.as_ref().map_or(
        csp::Verdict {
            result: "csp-not-implemented",
            frame_ancestors: false,
        },
        |h| {
            let report_only = h
                .first("content-security-policy-report-only")
                .is_some_and(|v| !v.is_empty());
            csp::judge(
                &h.all("content-security-policy"),
                &meta.csp,
                report_only,
                https_start,
            )
        },
    );
    let hsts = hsts_result(input.https);
    let cookie_result = auto.map_or("cookies-not-found", |s| {
        let raw = Headers(&s.last.headers).all("set-cookie");
        cookies::judge(&s.jar, &raw, hsts_passes(hsts))
    });
    let modifiers = [
        ("content-security-policy", csp.result),
        ("cookies", cookie_result),
        ("cross-origin-resource-sharing", cors_result(input.cors)),
        ("redirection", redirection_result(input.http)),
        (
            "referrer-policy",
            referrer_result(h.as_ref(), meta.referrer.as_deref()),
        ),
        ("strict-transport-security", hsts),
        (
            "subresource-integrity",
            if page.is_none() {
                "sri-not-implemented-but-no-scripts-loaded"
            } else {
                sri::judge(html, input.host, https_start)
            },
        ),
        ("x-content-type-options", xcto_result(h.as_ref())),
        (
            "x-frame-options",
            xfo_result(h.as_ref(), csp.frame_ancestors),
        ),
        ("cross-origin-resource-policy", corp_result(h.as_ref())),
    ]
    .map(|(test, result)| Modifier {
        test,
        result,
        modifier: modifier(result),
    })
    .to_vec();
    let penalties: i32 = modifiers.iter().map(|x| x.modifier.min(0)).sum();
    let all: i32 = modifiers.iter().map(|x| x.modifier).sum();
    let uncurved = 100 + penalties;
    let score = if uncurved >= EXTRA_CREDIT_FROM {
        100 + all
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

/// Response headers as Node's HTTP client hands them to the Observatory: a repeated header is
/// one value joined with ", ", Set-Cookie stays a list, and a few headers keep only their first
/// value. Bytes that are not ASCII read as Latin-1.
struct Headers<'a>(&'a http::HeaderMap);

const NODE_FIRST_ONLY: &[&str] = &[
    "content-type",
    "content-length",
    "user-agent",
    "referer",
    "host",
    "authorization",
    "proxy-authorization",
    "if-modified-since",
    "if-unmodified-since",
    "from",
    "location",
    "max-forwards",
    "retry-after",
    "etag",
    "last-modified",
    "server",
    "age",
    "expires",
];

impl Headers<'_> {
    /// The header's values: one joined value, or each Set-Cookie.
    fn all(&self, name: &str) -> Vec<String> {
        let values: Vec<String> = self
            .0
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes().iter().map(|b| char::from(*b)).collect())
            .collect();
        if values.is_empty() || name == "set-cookie" {
            values
        } else if NODE_FIRST_ONLY.contains(&name) {
            values.into_iter().take(1).collect()
        } else {
            vec![values.join(", ")]
        }
    }

    fn first(&self, name: &str) -> Option<String> {
        self.all(name).into_iter().next()
    }

    /// The first value cut to `max` characters, trimmed and lower-cased, as most tests read it;
    /// an empty value counts as missing.
    fn normalised(&self, name: &str, max: usize) -> Option<String> {
        self.first(name).filter(|v| !v.is_empty()).map(|v| {
            v.chars()
                .take(max)
                .collect::<String>()
                .trim()
                .to_lowercase()
        })
    }
}

/// The body, when the response says it is HTML in exactly the way the Observatory checks.
fn html_of(page: &Page) -> Option<std::borrow::Cow<'_, str>> {
    let ctype = Headers(&page.headers)
        .first("content-type")
        .unwrap_or_default();
    let mime = ctype.split(';').next().unwrap_or("");
    matches!(mime, "text/html" | "application/xhtml+xml")
        .then(|| String::from_utf8_lossy(&page.body))
}

/// Policies a page sets in `<meta>` tags, which browsers enforce like headers.
#[derive(Debug, Default)]
pub(crate) struct MetaPolicies {
    /// `<meta http-equiv="Content-Security-Policy" content>`, in page order.
    pub csp: Vec<String>,
    /// The last `<meta name="referrer" content>`.
    pub referrer: Option<String>,
}

/// Reads the page's `<meta>` policies the way the Observatory does.
pub(crate) fn meta_policies(html: &str) -> MetaPolicies {
    let mut meta = MetaPolicies::default();
    crate::html::scan(html, |tag| {
        if tag.is("meta") && !tag.in_template {
            if tag.has("http-equiv") && tag.has("content") {
                let equiv = tag.attr("http-equiv").unwrap_or_default();
                let content = tag.attr("content").unwrap_or_default();
                if !content.is_empty()
                    && equiv.trim().eq_ignore_ascii_case("content-security-policy")
                {
                    meta.csp.push(content.into_owned());
                }
            } else if tag
                .attr("name")
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("referrer"))
                && let Some(c) = tag.attr("content").filter(|c| !c.is_empty())
            {
                meta.referrer = Some(c.into_owned());
            }
        }
        std::ops::ControlFlow::Continue(())
    });
    meta
}

fn hsts_result(https: Option<&Session>) -> &'static str {
    let Some(s) = https else {
        return "hsts-not-implemented-no-https";
    };
    if !s.verified {
        return "hsts-invalid-cert";
    }
    let Some(value) = Headers(&s.last.headers).first("strict-transport-security") else {
        return "hsts-not-implemented";
    };
    let value: String = value.chars().take(1024).collect();
    if value.contains(',') {
        return "hsts-header-invalid";
    }
    let mut max_age: Option<f64> = None;
    for p in value.split(';').map(|p| p.trim().to_lowercase()) {
        if let Some(n) = p.strip_prefix("max-age=") {
            max_age = Some(parse_int(&n.chars().take(120).collect::<String>()));
        }
    }
    match max_age {
        None => "hsts-header-invalid",
        // A max-age that is not a number (NaN) is never "less than six months" to the Observatory.
        Some(m) if m < HSTS_SIX_MONTHS => "hsts-implemented-max-age-less-than-six-months",
        Some(_) => "hsts-implemented-max-age-at-least-six-months",
    }
}

fn hsts_passes(result: &str) -> bool {
    result == "hsts-implemented-max-age-at-least-six-months"
}

/// JavaScript's `parseInt(s, 10)`: leading spaces, a sign, then digits; NaN without digits.
fn parse_int(s: &str) -> f64 {
    let t = s.trim_start();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, &t[1..]),
        Some(b'+') => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return f64::NAN;
    }
    sign * digits.parse::<f64>().unwrap_or(f64::INFINITY)
}

fn cors_result(cors: Option<(&http::HeaderMap, &str)>) -> &'static str {
    let Some((h, origin)) = cors else {
        return "cross-origin-resource-sharing-not-implemented";
    };
    let h = Headers(h);
    let Some(acao) = h
        .first("access-control-allow-origin")
        .filter(|v| !v.is_empty())
    else {
        return "cross-origin-resource-sharing-not-implemented";
    };
    let credentials = h
        .first("access-control-allow-credentials")
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("true"));
    if acao.chars().take(256).collect::<String>().trim() == "*" {
        "cross-origin-resource-sharing-implemented-with-public-access"
    } else if acao == origin && credentials {
        // The documented −50 that the Observatory's own code never reaches: see the module docs.
        "cross-origin-resource-sharing-implemented-with-universal-access"
    } else {
        "cross-origin-resource-sharing-implemented-with-restricted-access"
    }
}

fn redirection_result(http: &Http) -> &'static str {
    let route = match http {
        Http::Unreachable => return "redirection-not-needed-no-http",
        Http::InvalidCert => return "redirection-invalid-cert",
        Http::Answered(s) if !s.verified => return "redirection-invalid-cert",
        Http::Answered(s) => &s.route,
    };
    let (first, second, last) = match route.as_slice() {
        [] | [_] => return "redirection-missing",
        [a, b, ..] => (&a.0, &b.0, &route[route.len() - 1].0),
    };
    if last.scheme() != "https" {
        "redirection-not-to-https"
    } else if second.scheme() == "http" {
        "redirection-not-to-https-on-initial-redirection"
    } else if first.scheme() == "http" && first.host_str() != second.host_str() {
        "redirection-off-host-from-http"
    } else {
        "redirection-to-https"
    }
}

fn referrer_result(h: Option<&Headers<'_>>, meta: Option<&str>) -> &'static str {
    let mut values = h.map(|h| h.all("referrer-policy")).unwrap_or_default();
    values.extend(meta.map(str::to_string));
    if values.is_empty() {
        return "referrer-policy-not-implemented";
    }
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    match crate::security::referrer::policy(&refs) {
        Some(p) if crate::security::referrer::PRIVATE.contains(&p.as_str()) => {
            "referrer-policy-private"
        }
        Some(_) => "referrer-policy-unsafe",
        None => "referrer-policy-header-invalid",
    }
}

fn xcto_result(h: Option<&Headers<'_>>) -> &'static str {
    match h.and_then(|h| h.normalised("x-content-type-options", 256)) {
        None => "x-content-type-options-not-implemented",
        Some(v) if v == "nosniff" => "x-content-type-options-nosniff",
        Some(_) => "x-content-type-options-header-invalid",
    }
}

fn xfo_result(h: Option<&Headers<'_>>, frame_ancestors: bool) -> &'static str {
    if frame_ancestors {
        return "x-frame-options-implemented-via-csp";
    }
    match h.and_then(|h| h.normalised("x-frame-options", 1024)) {
        None => "x-frame-options-not-implemented",
        Some(v) if v == "deny" || v == "sameorigin" => "x-frame-options-sameorigin-or-deny",
        Some(v) if v.starts_with("allow-from") => "x-frame-options-allow-from-origin",
        Some(_) => "x-frame-options-header-invalid",
    }
}

fn corp_result(h: Option<&Headers<'_>>) -> &'static str {
    match h
        .and_then(|h| h.normalised("cross-origin-resource-policy", 256))
        .as_deref()
    {
        None | Some("") => "corp-not-implemented",
        Some("same-origin") => "corp-implemented-with-same-origin",
        Some("same-site") => "corp-implemented-with-same-site",
        Some("cross-origin") => "corp-implemented-with-cross-origin",
        Some(_) => "corp-header-invalid",
    }
}

/// The Observatory's score table.
fn modifier(result: &str) -> i32 {
    match result {
        "csp-implemented-with-no-unsafe-default-src-none" => 10,
        "csp-implemented-with-no-unsafe" => 5,
        "csp-implemented-with-insecure-scheme-in-passive-content-only"
        | "csp-implemented-with-unsafe-eval" => -10,
        "csp-implemented-with-unsafe-inline" | "csp-implemented-with-insecure-scheme" => -20,
        "csp-header-invalid"
        | "csp-not-implemented"
        | "csp-not-implemented-but-reporting-enabled" => -25,
        "cookies-secure-with-httponly-sessions-and-samesite" => 5,
        "cookies-without-secure-flag-but-protected-by-hsts" => -5,
        "cookies-session-without-secure-flag-but-protected-by-hsts" => -10,
        "cookies-without-secure-flag"
        | "cookies-samesite-flag-invalid"
        | "cookies-anticsrf-without-samesite-flag" => -20,
        "cookies-session-without-httponly-flag" => -30,
        "cookies-session-without-secure-flag" => -40,
        "cross-origin-resource-sharing-implemented-with-universal-access" => -50,
        "redirection-off-host-from-http" => -5,
        "redirection-not-to-https-on-initial-redirection" => -10,
        "redirection-not-to-https" | "redirection-missing" | "redirection-invalid-cert" => -20,
        "referrer-policy-private" => 5,
        "referrer-policy-unsafe" | "referrer-policy-header-invalid" => -5,
        "hsts-implemented-max-age-less-than-six-months" => -10,
        "hsts-not-implemented"
        | "hsts-header-invalid"
        | "hsts-not-implemented-no-https"
        | "hsts-invalid-cert" => -20,
        "sri-implemented-and-all-scripts-loaded-securely"
        | "sri-implemented-and-external-scripts-loaded-securely" => 5,
        "sri-not-implemented-but-external-scripts-loaded-securely" => -5,
        "sri-implemented-but-external-scripts-not-loaded-securely" => -20,
        "sri-not-implemented-and-external-scripts-not-loaded-securely" => -50,
        "x-content-type-options-not-implemented" | "x-content-type-options-header-invalid" => -5,
        "x-frame-options-implemented-via-csp" => 5,
        "x-frame-options-not-implemented" | "x-frame-options-header-invalid" => -20,
        "corp-implemented-with-same-origin" | "corp-implemented-with-same-site" => 10,
        "corp-header-invalid" => -5,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut m = http::HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    fn https(pairs: &[(&str, &str)]) -> Session {
        let url = Url::parse("https://www.example.com/").unwrap();
        Session {
            start: url.clone(),
            route: vec![(url.clone(), 200)],
            jar: Jar::default(),
            last: Page {
                url,
                status: 200,
                headers: h(pairs),
                body: Bytes::new(),
            },
            verified: true,
        }
    }

    #[test]
    fn repeated_headers_read_as_one_joined_value() {
        let s = https(&[
            ("strict-transport-security", "max-age=31536000"),
            ("strict-transport-security", "max-age=31536000"),
            ("x-frame-options", "SAMEORIGIN"),
            ("x-frame-options", "SAMEORIGIN"),
        ]);
        assert_eq!(hsts_result(Some(&s)), "hsts-header-invalid");
        let h = Headers(&s.last.headers);
        assert_eq!(
            xfo_result(Some(&h), false),
            "x-frame-options-header-invalid"
        );
    }

    #[test]
    fn hsts_parses_like_parse_int() {
        let r = |v: &str| hsts_result(Some(&https(&[("strict-transport-security", v)])));
        assert_eq!(
            r("max-age=15552000"),
            "hsts-implemented-max-age-at-least-six-months"
        );
        assert_eq!(
            r("max-age=15551999"),
            "hsts-implemented-max-age-less-than-six-months"
        );
        assert_eq!(
            r("max-age=31536000s"),
            "hsts-implemented-max-age-at-least-six-months"
        );
        assert_eq!(
            r("max-age=10; max-age=31536000"),
            "hsts-implemented-max-age-at-least-six-months"
        );
        assert_eq!(
            r("max-age=\"31536000\""),
            "hsts-implemented-max-age-at-least-six-months"
        );
        assert_eq!(r("max-age = 31536000"), "hsts-header-invalid");
        assert_eq!(r("includeSubDomains"), "hsts-header-invalid");
    }

    #[test]
    fn letters_and_bonus_threshold() {
        assert_eq!(letter(140), "A+");
        assert_eq!(letter(94), "A");
        assert_eq!(letter(79), "B");
        assert_eq!(letter(-20), "F");
        assert!(at_least("A", "B") && !at_least("C+", "B"));
    }
}
