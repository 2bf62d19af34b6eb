//! The project's own header rules (`headers.hsts`, `headers.frame`, …). Several are stricter than
//! the Observatory on purpose: a deployment checklist asks for a year of HSTS, `DENY`, and one
//! value per header.

use crate::security::grade::MetaPolicies;
use crate::security::{cookies, csp, hsts, permissions, referrer, values};

use super::super::{Finding, Status};

/// HSTS max-age the deployment checklist asks for: one year.
const HSTS_MIN: u64 = 31_536_000;

/// Every project rule, judged on the final response, its page's `<meta>` policies, and every
/// cookie seen on the way (redirects and the login response included).
pub(super) fn judge(
    h: &http::HeaderMap,
    https: bool,
    meta: &MetaPolicies,
    set_cookies: &[String],
    login_failed: Option<Finding>,
) -> Vec<Finding> {
    let meta_csp: Vec<&str> = meta.csp.iter().map(String::as_str).collect();
    vec![
        hsts_finding(h, https),
        frame_finding(h),
        nosniff_finding(h),
        csp_finding(h, &meta_csp, https),
        referrer_finding(h, meta.referrer.as_deref()),
        permissions_finding(h),
        login_failed.unwrap_or_else(|| cookies_finding(set_cookies)),
        leak_finding(h),
    ]
}

fn shown(vals: &[&str]) -> String {
    if vals.is_empty() {
        "(missing)".into()
    } else {
        vals.join(" | ")
    }
}

fn hsts_finding(h: &http::HeaderMap, https: bool) -> Finding {
    let vals = values(h, "strict-transport-security");
    let expected = format!("one header with max-age ≥ {HSTS_MIN}");
    let (status, msg) = match vals.as_slice() {
        _ if !https => (
            Status::Fail,
            "the final response is not HTTPS, so HSTS cannot apply".to_string(),
        ),
        [] => (
            Status::Fail,
            "Strict-Transport-Security is missing".to_string(),
        ),
        [_, _, ..] => (
            Status::Fail,
            format!("Strict-Transport-Security is sent {} times", vals.len()),
        ),
        [one] => match hsts::parse(one) {
            Err(why) => (
                Status::Fail,
                format!("Strict-Transport-Security does not parse: {why}"),
            ),
            Ok(p) if p.max_age == 0 => (Status::Fail, "max-age=0 switches HSTS off".to_string()),
            Ok(p) if p.max_age < HSTS_MIN => (
                Status::Fail,
                format!("max-age={} is shorter than one year", p.max_age),
            ),
            Ok(p) => (
                Status::Pass,
                format!(
                    "max-age={}{}",
                    p.max_age,
                    if p.include_subdomains {
                        "; includeSubDomains"
                    } else {
                        ""
                    }
                ),
            ),
        },
    };
    Finding::new("headers.hsts", status, msg).with_values(expected, shown(&vals))
}

fn frame_finding(h: &http::HeaderMap) -> Finding {
    let xfo = values(h, "x-frame-options");
    let fa = csp::Policy::parse(&values(h, "content-security-policy"))
        .ok()
        .and_then(|p| p.frame_ancestors());
    let xfo_v: Vec<String> = xfo.iter().map(|v| v.trim().to_ascii_uppercase()).collect();
    let actual = format!(
        "X-Frame-Options: {}; frame-ancestors: {}",
        shown(&xfo),
        fa.as_ref().map_or("(missing)".into(), |f| f.join(" "))
    );
    let (status, msg) = match (fa.as_deref(), xfo_v.as_slice()) {
        (Some([none]), _) if none == "'none'" => (
            Status::Pass,
            "CSP frame-ancestors 'none' forbids framing".to_string(),
        ),
        (_, [deny]) if deny == "DENY" => (
            Status::Pass,
            "X-Frame-Options: DENY forbids framing".to_string(),
        ),
        (Some(f), _) if f.iter().any(|s| csp::BROAD.contains(&s.as_str())) => (
            Status::Fail,
            "CSP frame-ancestors allows any site to frame the page".to_string(),
        ),
        (Some([slf]), _) if slf == "'self'" => (
            Status::Warn,
            "frame-ancestors 'self' allows same-origin framing".to_string(),
        ),
        (_, [same]) if same == "SAMEORIGIN" => (
            Status::Warn,
            "X-Frame-Options: SAMEORIGIN allows same-origin framing".to_string(),
        ),
        (Some(_), _) => (
            Status::Warn,
            "frame-ancestors allows the listed sites to frame the page".to_string(),
        ),
        (None, []) => (
            Status::Fail,
            "neither X-Frame-Options nor CSP frame-ancestors is set".to_string(),
        ),
        (None, _) => (
            Status::Fail,
            format!("X-Frame-Options is invalid: {}", shown(&xfo)),
        ),
    };
    Finding::new("headers.frame", status, msg)
        .with_values("X-Frame-Options: DENY or frame-ancestors 'none'", actual)
}

fn nosniff_finding(h: &http::HeaderMap) -> Finding {
    let vals = values(h, "x-content-type-options");
    let ok = matches!(vals.as_slice(), [v] if v.trim().eq_ignore_ascii_case("nosniff"));
    let msg = if ok {
        "X-Content-Type-Options: nosniff".to_string()
    } else {
        format!("X-Content-Type-Options is {}", shown(&vals))
    };
    Finding::judge("headers.nosniff", ok, Status::Fail, msg).with_values("nosniff", shown(&vals))
}

fn csp_finding(h: &http::HeaderMap, meta: &[&str], https: bool) -> Finding {
    let mut enforced = values(h, "content-security-policy");
    enforced.extend(meta);
    let expected = "an enforced policy without unsafe script sources";
    if enforced.is_empty() {
        let report_only = !values(h, "content-security-policy-report-only").is_empty();
        let msg = if report_only {
            "only Content-Security-Policy-Report-Only is set; nothing is enforced"
        } else {
            "Content-Security-Policy is missing"
        };
        return Finding::new("headers.csp", Status::Fail, msg).with_values(
            expected,
            if report_only {
                "report-only"
            } else {
                "(missing)"
            },
        );
    }
    let actual = shown(&enforced);
    let p = match csp::Policy::parse(&enforced) {
        Ok(p) => p,
        Err(why) => {
            return Finding::new(
                "headers.csp",
                Status::Fail,
                format!("the policy does not parse: {why}"),
            )
            .with_values(expected, actual);
        }
    };
    let script = p.script_src();
    let object = p.object_src();
    let broad = |s: &&String| csp::BROAD.contains(&s.as_str());
    let mut problems: Vec<String> = Vec::new();
    if script.iter().any(|s| s == "'unsafe-inline'") {
        problems.push("script-src allows 'unsafe-inline' without a nonce or hash".into());
    }
    if script.iter().any(|s| s == "data:") {
        problems.push("script-src allows data:".into());
    }
    if let Some(b) = script.iter().find(broad) {
        problems.push(format!("script-src allows the broad source {b}"));
    }
    if let Some(b) = object.iter().find(|s| broad(s) || *s == "data:") {
        problems.push(format!("object-src allows {b}"));
    }
    let sources = p.active_sources().into_iter().chain(p.passive_sources());
    if let Some(s) = sources.filter(|_| https).find(|s| s.starts_with("http:")) {
        problems.push(format!("an https site allows the http: source {s}"));
    }
    let (status, msg) = if !problems.is_empty() {
        (Status::Fail, problems.join("; "))
    } else if script
        .iter()
        .chain(p.style_src().iter())
        .any(|s| s == "'unsafe-eval'")
    {
        (Status::Warn, "the policy allows 'unsafe-eval'".to_string())
    } else {
        (
            Status::Pass,
            "an enforced policy without unsafe script sources".to_string(),
        )
    };
    Finding::new("headers.csp", status, msg).with_values(expected, actual)
}

fn referrer_finding(h: &http::HeaderMap, meta: Option<&str>) -> Finding {
    let expected = referrer::PRIVATE.join(" or ");
    let mut raw = values(h, "referrer-policy");
    raw.extend(meta);
    let (status, msg, actual) = match referrer::policy(&raw) {
        _ if raw.is_empty() => (
            Status::Warn,
            "Referrer-Policy is not set; browsers default to strict-origin-when-cross-origin"
                .to_string(),
            "(missing)".to_string(),
        ),
        Some(p) if referrer::PRIVATE.contains(&p.as_str()) => {
            (Status::Pass, format!("Referrer-Policy: {p}"), p)
        }
        Some(p) => (
            Status::Fail,
            format!("Referrer-Policy: {p} leaks URLs to other sites"),
            p,
        ),
        None => (
            Status::Fail,
            format!("Referrer-Policy has no valid value: {}", raw.join(", ")),
            raw.join(", "),
        ),
    };
    Finding::new("headers.referrer", status, msg).with_values(expected, actual)
}

fn permissions_finding(h: &http::HeaderMap) -> Finding {
    let vals = values(h, "permissions-policy");
    let (status, msg) = match vals.as_slice() {
        [] => (Status::Warn, "Permissions-Policy is not set".to_string()),
        _ => match vals
            .iter()
            .map(|v| permissions::parse(v))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(f) => (
                Status::Pass,
                format!(
                    "Permissions-Policy restricts {} features",
                    f.iter().map(Vec::len).sum::<usize>()
                ),
            ),
            Err(why) => (
                Status::Fail,
                format!("Permissions-Policy does not parse: {why}"),
            ),
        },
    };
    Finding::new("headers.permissions", status, msg)
        .with_values("a policy that parses", shown(&vals))
}

fn cookies_finding(set_cookies: &[String]) -> Finding {
    let all: Vec<cookies::Cookie> = set_cookies
        .iter()
        .filter_map(|c| cookies::parse(c))
        .collect();
    let mut problems = Vec::new();
    for c in &all {
        if !c.secure {
            problems.push(format!("{} lacks Secure", c.name));
        }
        if c.is_session_like() && !c.http_only {
            problems.push(format!(
                "{} looks like a session cookie but lacks HttpOnly",
                c.name
            ));
        }
        if let Some(p) = c.same_site_problem() {
            problems.push(format!("{}: {p}", c.name));
        }
    }
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    let actual = if problems.is_empty() {
        format!("{} cookies: {}", all.len(), names.join(", "))
    } else {
        problems.join("; ")
    };
    let msg = match (all.is_empty(), problems.is_empty()) {
        (true, _) => "no cookies are set".to_string(),
        (false, true) => format!(
            "{} cookies are Secure, sessions HttpOnly, SameSite valid",
            all.len()
        ),
        (false, false) => problems.join("; "),
    };
    Finding::judge("headers.cookies", problems.is_empty(), Status::Fail, msg).with_values(
        "Secure on every cookie, HttpOnly on sessions, valid SameSite",
        actual,
    )
}

const LEAKY: &[&str] = &[
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-generator",
    "x-backend-server",
    "x-runtime-version",
];

fn leak_finding(h: &http::HeaderMap) -> Finding {
    let mut leaks: Vec<String> = LEAKY
        .iter()
        .filter_map(|name| {
            h.get(*name)
                .map(|v| format!("{name}: {}", v.to_str().unwrap_or("?")))
        })
        .collect();
    let server = h.get("server").and_then(|v| v.to_str().ok());
    if let Some(server) = server.filter(|s| s.chars().any(|c| c.is_ascii_digit())) {
        leaks.insert(0, format!("server: {server}"));
    }
    let msg = if leaks.is_empty() {
        "no software versions exposed".to_string()
    } else {
        format!("exposes {}", leaks.join(", "))
    };
    Finding::judge("headers.leak", leaks.is_empty(), Status::Warn, msg).with_values(
        "no version in Server, no X-Powered-By",
        if leaks.is_empty() {
            "none".into()
        } else {
            leaks.join("; ")
        },
    )
}
