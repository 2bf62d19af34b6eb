//! The Observatory-style grade on header fixtures. Each expected score is worked out by hand from
//! the published modifiers (listed in `src/security/grade.rs`), shown in the comment beside it.

use shipwatch::security::grade::{self, Input, Redirection, at_least, letter};
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

fn score(
    pairs: &[(&str, &str)],
    html: Option<&str>,
    cors: bool,
    redirection: Option<Redirection>,
) -> (i32, &'static str) {
    let url = Url::parse("https://www.example.com/").unwrap();
    let h = headers(pairs);
    let g = grade::grade(&Input {
        url: &url,
        headers: &h,
        html,
        cors_reflects_with_credentials: cors,
        redirection,
    });
    (g.score, g.letter)
}

const HSTS: (&str, &str) = ("strict-transport-security", "max-age=63072000");
const NOSNIFF: (&str, &str) = ("x-content-type-options", "nosniff");
const DENY: (&str, &str) = ("x-frame-options", "DENY");

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
        false,
        Some(Redirection::ToHttps),
    );
    assert_eq!(got, (140, "A+"));
}

#[test]
fn nothing_set_is_a_d() {
    // CSP −25, HSTS −20, X-Content-Type-Options −5, X-Frame-Options −20: 100 − 70 = 30, D.
    assert_eq!(score(&[], Some("<p>hi</p>"), false, None), (30, "D"));
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
        false,
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
        false,
        None,
    );
    assert_eq!(got, (80, "B+"));
}

#[test]
fn short_hsts_and_missing_nosniff() {
    // HSTS under six months −10, X-Content-Type-Options missing −5: 85, so the CSP's +5 is
    // withheld; SAMEORIGIN is 0: 85, A-.
    let got = score(
        &[
            (
                "content-security-policy",
                "default-src 'self'; object-src 'none'",
            ),
            ("strict-transport-security", "max-age=86400"),
            ("x-frame-options", "SAMEORIGIN"),
        ],
        None,
        false,
        None,
    );
    assert_eq!(got, (85, "A-"));
}

#[test]
fn insecure_session_cookie_floors_at_zero() {
    // Session cookie without Secure (no HSTS) −40, CSP −25, HSTS −20, nosniff −5, XFO −20: −10 → 0, F.
    assert_eq!(
        score(
            &[("set-cookie", "sessionid=abc; HttpOnly")],
            None,
            false,
            None
        ),
        (0, "F")
    );
}

#[test]
fn reflected_origin_with_credentials_costs_fifty() {
    // CSP +5 withheld, CORS universal access −50: 50, C.
    let csp = (
        "content-security-policy",
        "default-src 'self'; object-src 'none'",
    );
    assert_eq!(
        score(&[csp, HSTS, NOSNIFF, DENY], None, true, None),
        (50, "C")
    );
}

#[test]
fn insecure_external_script_without_sri() {
    // SRI not implemented and an external script over http: −50, plus the CSP +5 withheld: 50, C.
    let csp = (
        "content-security-policy",
        "default-src 'self'; object-src 'none'",
    );
    let html = r#"<script src="http://cdn.other.example/lib.js"></script>"#;
    assert_eq!(
        score(&[csp, HSTS, NOSNIFF, DENY], Some(html), false, None),
        (50, "C")
    );
}

#[test]
fn redirection_and_cookie_modifiers() {
    let base = [
        (
            "content-security-policy",
            "default-src 'self'; object-src 'none'",
        ),
        HSTS,
        NOSNIFF,
        DENY,
    ];
    // Off-host first hop −5: 95, bonus +5 counts: 100, A+.
    assert_eq!(
        score(&base, None, false, Some(Redirection::OffHost)),
        (100, "A+")
    );
    // No redirect to HTTPS −20: 80, B+.
    assert_eq!(
        score(&base, None, false, Some(Redirection::Missing)),
        (80, "B+")
    );
    // A cookie without Secure but with HSTS −5, and one with an invalid SameSite −20: worst counts, 80.
    let mut with_cookies = base.to_vec();
    with_cookies.push(("set-cookie", "theme=dark"));
    with_cookies.push(("set-cookie", "pref=1; Secure; SameSite=Sometimes"));
    assert_eq!(score(&with_cookies, None, false, None), (80, "B+"));
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
