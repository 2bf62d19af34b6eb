//! `kind = "headers"`: the security headers of the final HTTPS response, judged by the project's
//! rules and graded Observatory-style.

use std::collections::BTreeMap;

use url::Url;

use crate::net::{MAX_REDIRECTS, Request};
use crate::security::grade::{self, Redirection};
use crate::security::{cookies, csp, hsts, permissions, values};

use super::redirect::{End, RedirectProbe};
use super::{Ctx, Finding, Probed, Status};

/// The page to read, and what else the grade and cookie rules need.
#[derive(Debug, Clone)]
pub struct HeadersProbe {
    pub request: Request,
    /// The lowest acceptable letter.
    pub min_grade: String,
    /// A login request whose cookies are judged too.
    pub login: Option<Request>,
    /// Where plain HTTP listens, for the grade's redirection test.
    pub http_url: Option<Url>,
}

/// An origin no site allows, sent to see whether the response reflects it with credentials.
const FOREIGN_ORIGIN: &str = "https://shipwatch-grade.invalid";
/// HSTS max-age the deployment checklist asks for: one year.
const HSTS_MIN: u64 = 31_536_000;

impl HeadersProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let ex = match ctx
            .engine
            .fetch(&self.request, ctx.overrides, ctx.deadline, MAX_REDIRECTS)
            .await
        {
            Ok(ex) => ex,
            Err(e) => return Probed::failed(e),
        };
        let resp = &ex.response;
        let h = &resp.headers;
        let https = resp.url.scheme() == "https";
        let mut set_cookies: Vec<String> = values(h, "set-cookie")
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut findings = Vec::new();
        if let Some(login) = &self.login {
            match ctx
                .engine
                .fetch(login, ctx.overrides, ctx.deadline, MAX_REDIRECTS)
                .await
            {
                Ok(l) => set_cookies.extend(
                    values(&l.response.headers, "set-cookie")
                        .iter()
                        .map(|s| s.to_string()),
                ),
                Err(e) => findings.push(
                    Finding::new(
                        "headers.cookies",
                        Status::Fail,
                        format!("the login request failed: {e}"),
                    )
                    .expect("login response with cookies", e.kind()),
                ),
            }
        }
        findings.extend([
            hsts_finding(h, https),
            frame_finding(h),
            nosniff_finding(h),
            csp_finding(h, https),
        ]);
        findings.extend([referrer_finding(h), permissions_finding(h)]);
        if !findings.iter().any(|f| f.id == "headers.cookies") {
            findings.push(cookies_finding(&set_cookies));
        }
        findings.push(leak_finding(h));
        let html = is_html(h).then(|| String::from_utf8_lossy(&resp.body).into_owned());
        let mut grade_headers = h.clone();
        grade_headers.remove("set-cookie");
        for c in &set_cookies {
            if let Ok(v) = http::HeaderValue::from_str(c) {
                grade_headers.append("set-cookie", v);
            }
        }
        let input = grade::Input {
            url: &resp.url,
            headers: &grade_headers,
            html: html.as_deref(),
            cors_reflects_with_credentials: self.cors_reflects(ctx, &resp.url).await,
            redirection: self.redirection(ctx).await,
        };
        let g = grade::grade(&input);
        let ok = grade::at_least(g.letter, &self.min_grade);
        findings.push(
            Finding::judge(
                "headers.grade",
                ok,
                Status::Fail,
                format!("Observatory-style grade {} (score {})", g.letter, g.score),
            )
            .expect(
                format!("≥ {}", self.min_grade),
                format!("{} ({})", g.letter, g.score),
            ),
        );
        let mut details = BTreeMap::new();
        details.insert("score".into(), g.score.into());
        details.insert("grade".into(), g.letter.into());
        details.insert(
            "modifiers".into(),
            serde_json::to_value(&g.modifiers).unwrap_or_default(),
        );
        details.insert("final_url".into(), resp.url.as_str().into());
        Probed {
            findings,
            timings: Some(resp.timings),
            error: None,
            details,
            redact: Vec::new(),
        }
    }

    /// Sends a foreign Origin; a reflected origin together with credentials costs 50 points.
    async fn cors_reflects(&self, ctx: &Ctx<'_>, url: &Url) -> bool {
        let mut req = Request::get(url.clone());
        req.insecure = self.request.insecure;
        req.max_body = 64 << 10;
        req.headers.push(("Origin".into(), FOREIGN_ORIGIN.into()));
        let Ok(r) = ctx.engine.send(&req, ctx.overrides, ctx.deadline).await else {
            return false;
        };
        let acao = r
            .headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let creds = r
            .headers
            .get("access-control-allow-credentials")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        acao.trim() == FOREIGN_ORIGIN && creds.trim().eq_ignore_ascii_case("true")
    }

    async fn redirection(&self, ctx: &Ctx<'_>) -> Option<Redirection> {
        let url = self.http_url.clone()?;
        let walker = RedirectProbe {
            request: Request {
                insecure: self.request.insecure,
                ..Request::get(url.clone())
            },
            max_hops: 5,
        };
        let Ok((steps, end, _)) = walker.walk(ctx).await else {
            return Some(Redirection::NoHttp);
        };
        let first = steps.first()?;
        let Some(loc) = &first.location else {
            return Some(Redirection::Missing);
        };
        let final_https =
            matches!(end, End::Final) && steps.last().is_some_and(|s| s.url.scheme() == "https");
        Some(
            match (
                loc.scheme() == "https",
                loc.host_str() == url.host_str(),
                final_https,
            ) {
                (_, _, false) => Redirection::NotToHttps,
                (false, _, true) => Redirection::FirstHopHttp,
                (true, false, true) => Redirection::OffHost,
                (true, true, true) => Redirection::ToHttps,
            },
        )
    }
}

fn is_html(h: &http::HeaderMap) -> bool {
    h.get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"))
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
    Finding::new("headers.hsts", status, msg).expect(expected, shown(&vals))
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
        .expect("X-Frame-Options: DENY or frame-ancestors 'none'", actual)
}

fn nosniff_finding(h: &http::HeaderMap) -> Finding {
    let vals = values(h, "x-content-type-options");
    let ok = matches!(vals.as_slice(), [v] if v.trim().eq_ignore_ascii_case("nosniff"));
    let msg = if ok {
        "X-Content-Type-Options: nosniff".to_string()
    } else {
        format!("X-Content-Type-Options is {}", shown(&vals))
    };
    Finding::judge("headers.nosniff", ok, Status::Fail, msg).expect("nosniff", shown(&vals))
}

fn csp_finding(h: &http::HeaderMap, https: bool) -> Finding {
    let enforced = values(h, "content-security-policy");
    let expected = "an enforced policy without unsafe script sources";
    if enforced.is_empty() {
        let report_only = !values(h, "content-security-policy-report-only").is_empty();
        let msg = if report_only {
            "only Content-Security-Policy-Report-Only is set; nothing is enforced"
        } else {
            "Content-Security-Policy is missing"
        };
        return Finding::new("headers.csp", Status::Fail, msg).expect(
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
            .expect(expected, actual);
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
    Finding::new("headers.csp", status, msg).expect(expected, actual)
}

fn referrer_finding(h: &http::HeaderMap) -> Finding {
    let expected = grade::PRIVATE_REFERRERS.join(" or ");
    let (status, msg, actual) = match grade::referrer_policy(h) {
        Ok(None) => (
            Status::Warn,
            "Referrer-Policy is not set; browsers default to strict-origin-when-cross-origin"
                .to_string(),
            "(missing)".to_string(),
        ),
        Ok(Some(p)) if grade::PRIVATE_REFERRERS.contains(&p.as_str()) => {
            (Status::Pass, format!("Referrer-Policy: {p}"), p)
        }
        Ok(Some(p)) => (
            Status::Fail,
            format!("Referrer-Policy: {p} leaks URLs to other sites"),
            p,
        ),
        Err(raw) => (
            Status::Fail,
            format!("Referrer-Policy has no valid value: {raw}"),
            raw,
        ),
    };
    Finding::new("headers.referrer", status, msg).expect(expected, actual)
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
    Finding::new("headers.permissions", status, msg).expect("a policy that parses", shown(&vals))
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
    Finding::judge("headers.cookies", problems.is_empty(), Status::Fail, msg).expect(
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
    Finding::judge("headers.leak", leaks.is_empty(), Status::Warn, msg).expect(
        "no version in Server, no X-Powered-By",
        if leaks.is_empty() {
            "none".into()
        } else {
            leaks.join("; ")
        },
    )
}
