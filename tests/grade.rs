//! The Observatory grade on fixtures. Each expected score is worked out by hand from the
//! Observatory's score table (listed in `src/security/grade/mod.rs`), shown in the comment beside
//! it. `bench/parity/observatory.sh` checks the same rules against the real scanner.

use bytes::Bytes;
use shipwatch::security::grade::{self, Http, Input, Jar, Page, Session, at_least, letter};
use url::Url;

fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

/// A session that fetched `https://www.example.com/`, after `hops` redirects that set cookies.
fn session(pairs: &[(&str, &str)], html: Option<&str>, hop_cookies: &[&str]) -> Session {
    let url = Url::parse("https://www.example.com/").unwrap();
    let mut jar = Jar::default();
    for c in hop_cookies {
        jar.set(c, &url);
    }
    for (_, v) in pairs.iter().filter(|(k, _)| *k == "set-cookie") {
        jar.set(v, &url);
    }
    let mut h = headers(pairs);
    if html.is_some() {
        h.insert("content-type", "text/html; charset=utf-8".parse().unwrap());
    }
    Session {
        start: url.clone(),
        route: vec![(url.clone(), 200)],
        jar,
        last: Page {
            url,
            status: 200,
            headers: h,
            body: Bytes::from(html.unwrap_or("").to_string()),
        },
        verified: true,
    }
}

/// The plain-HTTP side: a chain of URLs, the first plain HTTP.
fn chain(urls: &[&str]) -> Http {
    let route: Vec<(Url, u16)> = urls.iter().map(|u| (Url::parse(u).unwrap(), 301)).collect();
    let mut s = session(&[], None, &[]);
    s.start = route[0].0.clone();
    s.route = route;
    Http::Answered(Box::new(s))
}

fn to_https() -> Http {
    chain(&["http://www.example.com/", "https://www.example.com/"])
}

fn score_with(
    s: &Session,
    http: &Http,
    cors: Option<(&http::HeaderMap, &str)>,
) -> (i32, &'static str) {
    let g = grade::grade(&Input {
        host: "www.example.com",
        https: Some(s),
        http,
        cors,
    });
    (g.score, g.letter)
}

fn score(pairs: &[(&str, &str)], html: Option<&str>) -> (i32, &'static str) {
    score_with(&session(pairs, html, &[]), &to_https(), None)
}

const HSTS: (&str, &str) = ("strict-transport-security", "max-age=63072000");
const NOSNIFF: (&str, &str) = ("x-content-type-options", "nosniff");
const DENY: (&str, &str) = ("x-frame-options", "DENY");
const CSP: (&str, &str) = (
    "content-security-policy",
    "default-src 'self'; object-src 'none'",
);

#[test]
fn modern_site_gets_every_bonus() {
    // CSP default-src 'none' +10, frame-ancestors +5, cookies Secure+HttpOnly+SameSite +5,
    // referrer +5, CORP +10, SRI on the only script +5; no penalties: 100 + 40 = 140, A+.
    let got = score(
        &[
            (
                "content-security-policy",
                "default-src 'none'; script-src 'self'; frame-ancestors 'none'",
            ),
            ("set-cookie", "sid=1; Secure; HttpOnly; SameSite=Strict"),
            ("referrer-policy", "no-referrer"),
            HSTS,
            NOSNIFF,
            ("cross-origin-resource-policy", "same-origin"),
        ],
        Some(r#"<script src="/app.js" integrity="sha384-abc"></script>"#),
    );
    assert_eq!(got, (140, "A+"));
}

#[test]
fn nothing_set_is_a_d() {
    // CSP −25, HSTS −20, X-Content-Type-Options −5, X-Frame-Options −20: 100 − 70 = 30, D.
    assert_eq!(score(&[], Some("<p>hi</p>")), (30, "D"));
}

#[test]
fn bonus_counts_at_exactly_ninety() {
    // 'unsafe-eval' −10 leaves 90, so referrer +5 and CORP same-site +10 count: 105, A+.
    let got = score(
        &[
            (
                "content-security-policy",
                "default-src 'self'; script-src 'self' 'unsafe-eval'; object-src 'none'",
            ),
            ("referrer-policy", "strict-origin"),
            ("cross-origin-resource-policy", "same-site"),
            HSTS,
            NOSNIFF,
            DENY,
        ],
        None,
    );
    assert_eq!(got, (105, "A+"));
}

#[test]
fn bonus_is_withheld_below_ninety() {
    // 'unsafe-inline' in script-src −20 leaves 80; the +5 and +10 bonuses do not count: 80, B+.
    let got = score(
        &[
            (
                "content-security-policy",
                "default-src 'self'; script-src 'self' 'unsafe-inline'",
            ),
            ("referrer-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            HSTS,
            NOSNIFF,
            DENY,
        ],
        None,
    );
    assert_eq!(got, (80, "B+"));
}

#[test]
fn hsts_cut_off_is_15552000_and_parsing_is_lenient() {
    let with = |v: &'static str| {
        score(
            &[CSP, ("strict-transport-security", v), NOSNIFF, DENY],
            None,
        )
    };
    // At the cut-off: no penalty, CSP +5: 105.
    assert_eq!(with("max-age=15552000"), (105, "A+"));
    // One second short −10: 90, and the CSP +5 still counts: 95, A.
    assert_eq!(with("max-age=15551999"), (95, "A"));
    // parseInt reads "31536000s" and the last max-age wins.
    assert_eq!(with("max-age=31536000s"), (105, "A+"));
    assert_eq!(with("max-age=1; max-age=31536000"), (105, "A+"));
}

#[test]
fn repeated_headers_are_one_joined_value() {
    // Two HSTS headers read "max-age=…, max-age=…": invalid −20, 80, B+ (no bonus).
    let twice = [CSP, HSTS, HSTS, NOSNIFF, DENY];
    assert_eq!(score(&twice, None), (80, "B+"));
    // "SAMEORIGIN, SAMEORIGIN" −20 and "nosniff, nosniff" −5: 75, B.
    let xfo = ("x-frame-options", "SAMEORIGIN");
    assert_eq!(
        score(&[CSP, HSTS, NOSNIFF, NOSNIFF, xfo, xfo], None),
        (75, "B")
    );
    // "same-origin, same-origin" is an invalid CORP −5: 95, CSP +5: 100, A+.
    let corp = ("cross-origin-resource-policy", "same-origin");
    assert_eq!(
        score(&[CSP, HSTS, NOSNIFF, DENY, corp, corp], None),
        (100, "A+")
    );
}

#[test]
fn frame_ancestors_anywhere_counts_for_framing() {
    // No X-Frame-Options, but frame-ancestors * in the header: +5 with CSP +5: 110.
    let fa = (
        "content-security-policy",
        "default-src 'self'; frame-ancestors *",
    );
    assert_eq!(score(&[fa, HSTS, NOSNIFF], None), (110, "A+"));
    // In a <meta> policy, which browsers ignore, the Observatory still counts it: 110.
    let html = r#"<meta http-equiv="Content-Security-Policy" content="default-src 'self'; frame-ancestors 'none'">"#;
    assert_eq!(score(&[HSTS, NOSNIFF], Some(html)), (110, "A+"));
}

#[test]
fn csp_corners() {
    // A repeated directive is invalid −25: 75, B.
    let rep = (
        "content-security-policy",
        "default-src 'self'; default-src 'none'",
    );
    assert_eq!(score(&[rep, HSTS, NOSNIFF, DENY], None), (75, "B"));
    // A repeated report-uri is no penalty, but the CSP bonus is lost: 100, A+.
    let report = (
        "content-security-policy",
        "default-src 'none'; report-uri /a; report-uri /b",
    );
    assert_eq!(score(&[report, HSTS, NOSNIFF, DENY], None), (100, "A+"));
    // A policy shorter than "img-src" is invalid: 75, B.
    assert_eq!(
        score(
            &[("content-security-policy", "a"), HSTS, NOSNIFF, DENY],
            None
        ),
        (75, "B")
    );
    // A meta policy alone is implemented: +5, 105.
    let meta = r#"<meta http-equiv="content-security-policy" content="default-src 'self'; object-src 'none'">"#;
    assert_eq!(score(&[HSTS, NOSNIFF, DENY], Some(meta)), (105, "A+"));
    // <meta name=referrer> counts like the header: +5 more, 110.
    let both = format!(r#"{meta}<meta name="referrer" content="no-referrer">"#);
    assert_eq!(score(&[HSTS, NOSNIFF, DENY], Some(&both)), (110, "A+"));
}

#[test]
fn cookies_by_the_observatory_rules() {
    let base = [CSP, HSTS, NOSNIFF, DENY];
    let with = |cookie: &'static str| {
        let mut p = base.to_vec();
        p.push(("set-cookie", cookie));
        score(&p, None)
    };
    // "sess" in the name, no Secure, under HSTS −10: 90, CSP +5: 95, A.
    assert_eq!(with("mysession=1; HttpOnly"), (95, "A"));
    // "login" without HttpOnly −30: 70, B.
    assert_eq!(with("login=1; Secure"), (70, "B"));
    // An anti-CSRF cookie without SameSite −20: 80, B+.
    assert_eq!(with("csrftoken=1; Secure"), (80, "B+"));
    // A load-balancer affinity cookie is ignored: cookies not found, 105.
    assert_eq!(with("heroku-session-affinity=1"), (105, "A+"));
    // A cookie set on a redirect hop counts: session without Secure under HSTS −10: 95, A.
    let s = session(&base, None, &["sessionid=1; HttpOnly"]);
    assert_eq!(score_with(&s, &to_https(), None), (95, "A"));
}

#[test]
fn cookies_protected_by_hsts_follow_its_cut_off() {
    // HSTS at five months −10 does not protect: a cookie without Secure −20: 70, B.
    let short = ("strict-transport-security", "max-age=13000000");
    assert_eq!(
        score(
            &[CSP, short, NOSNIFF, DENY, ("set-cookie", "theme=dark")],
            None
        ),
        (70, "B")
    );
}

#[test]
fn subresource_integrity() {
    let base = [CSP, HSTS, NOSNIFF, DENY];
    // A sibling subdomain is the same registrable domain: not foreign, 0: 105.
    let sibling = r#"<script src="https://static.example.com/app.js"></script>"#;
    assert_eq!(score(&base, Some(sibling)), (105, "A+"));
    // A foreign script with SRI earns +5 although the site's own script has none: 110.
    let ext = r#"<script src="/own.js"></script><script src="https://cdn.other.net/x.js" integrity="sha384-x"></script>"#;
    assert_eq!(score(&base, Some(ext)), (110, "A+"));
    // A foreign script over http without SRI −50: 50, C.
    let bad = r#"<script src="http://cdn.other.net/lib.js"></script>"#;
    assert_eq!(score(&base, Some(bad)), (50, "C"));
}

#[test]
fn redirection_from_plain_http() {
    let s = session(&[CSP, HSTS, NOSNIFF, DENY], None, &[]);
    let r = |http: Http| score_with(&s, &http, None);
    // To HTTPS on the same host: 105.
    assert_eq!(r(to_https()), (105, "A+"));
    // Nothing listening on plain HTTP: 0, 105.
    assert_eq!(r(Http::Unreachable), (105, "A+"));
    // Off-host first hop −5: 95, +5: 100, A+.
    assert_eq!(
        r(chain(&["http://www.example.com/", "https://example.com/"])),
        (100, "A+")
    );
    // First hop to plain HTTP −10: 90, +5: 95, A.
    let via_http = chain(&[
        "http://www.example.com/",
        "http://example.com/",
        "https://example.com/",
    ]);
    assert_eq!(r(via_http), (95, "A"));
    // No redirect −20: 80, B+. Never reaching HTTPS −20 too.
    assert_eq!(r(chain(&["http://www.example.com/"])), (80, "B+"));
    assert_eq!(
        r(chain(&[
            "http://www.example.com/",
            "http://www.example.com/x"
        ])),
        (80, "B+")
    );
    // An untrusted certificate on the way −20: 80.
    assert_eq!(r(Http::InvalidCert), (80, "B+"));
}

#[test]
fn reflected_origin_with_credentials_costs_fifty() {
    // The documented −50 the Observatory never applies (a deviation shipwatch keeps): CSP +5
    // withheld, 50, C. `*` costs nothing: 105.
    let s = session(&[CSP, HSTS, NOSNIFF, DENY], None, &[]);
    let origin = "https://attacker.example";
    let reflect = headers(&[
        ("access-control-allow-origin", origin),
        ("access-control-allow-credentials", "true"),
    ]);
    assert_eq!(
        score_with(&s, &to_https(), Some((&reflect, origin))),
        (50, "C")
    );
    let star = headers(&[("access-control-allow-origin", "*")]);
    assert_eq!(
        score_with(&s, &to_https(), Some((&star, origin))),
        (105, "A+")
    );
}

#[test]
fn no_https_at_all() {
    // The plain-HTTP page is the page: HSTS not on HTTPS −20, CSP −25, nosniff −5, XFO −20 and
    // no redirect −20: 10, F.
    let mut s = session(&[], Some("<p>x</p>"), &[]);
    s.start = Url::parse("http://www.example.com/").unwrap();
    s.route = vec![(s.start.clone(), 200)];
    let http = Http::Answered(Box::new(s));
    let g = grade::grade(&Input {
        host: "www.example.com",
        https: None,
        http: &http,
        cors: None,
    });
    assert_eq!((g.score, g.letter), (10, "F"));
}

#[test]
fn letters_follow_the_chart() {
    let chart = [
        (145, "A+"),
        (100, "A+"),
        (99, "A"),
        (90, "A"),
        (89, "A-"),
        (85, "A-"),
        (84, "B+"),
        (80, "B+"),
        (79, "B"),
        (70, "B"),
        (69, "B-"),
        (65, "B-"),
        (64, "C+"),
        (60, "C+"),
        (59, "C"),
        (50, "C"),
        (49, "C-"),
        (45, "C-"),
        (44, "D+"),
        (40, "D+"),
        (39, "D"),
        (30, "D"),
        (29, "D-"),
        (25, "D-"),
        (24, "F"),
        (0, "F"),
        (-20, "F"),
    ];
    for (s, l) in chart {
        assert_eq!(letter(s), l, "score {s}");
    }
    assert!(
        at_least("A", "B") && at_least("B", "B") && !at_least("B-", "B") && !at_least("F", "D-")
    );
}
