//! `kind = "headers"`: the security headers of the page, judged by the project's rules
//! ([`rules`]) and graded exactly as the Mozilla HTTP Observatory grades them
//! ([`crate::security::grade`]).
//!
//! For the grade, the check gathers what the Observatory gathers: the HTTPS page with every
//! response of its redirect chain (for cookies), the plain-HTTP URL's redirect chain, and the
//! answer to a CORS preflight with a foreign origin.

mod rules;

use crate::check::build::Build;
use crate::check::read::{REQUEST_KEYS, RequestSpec, read_request, required};
use crate::doc::{Diagnostics, Spanned, Table};
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use crate::net::{MAX_REDIRECTS, NetError, Request};
use crate::security::grade::{self, Http, Jar, Page, Session};

use super::{Ctx, Finding, Probed, Status};

/// The page to read, and what else the grade and cookie rules need.
#[derive(Debug, Clone)]
pub struct HeadersProbe {
    pub request: Request,
    /// The lowest acceptable letter.
    pub min_grade: String,
    /// A login request whose cookies are judged too.
    pub login: Option<Request>,
    /// Where plain HTTP listens, for the grade's redirection test; `http://HOST/PATH` by default.
    pub http_url: Option<Url>,
}

/// An origin no site allows, sent to see whether the site reflects any origin with credentials.
const FOREIGN_ORIGIN: &str = "https://shipwatch-grade.invalid";
/// What a browser asks for when it opens a page.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
/// A plain-HTTP listener that does not answer within this long counts as absent, as a firewalled
/// port 80 does for the Observatory; the check's own deadline still bounds it.
const HTTP_PATIENCE: Duration = Duration::from_secs(5);

impl HeadersProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let mut request = self.request.clone();
        if !request
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
        {
            request
                .headers
                .push(("Accept".into(), BROWSER_ACCEPT.into()));
        }
        let main = match session(ctx, &request, ctx.deadline).await {
            Ok(s) => s,
            Err(e) => return Probed::failed(e),
        };
        let https = main.session.start.scheme() == "https";
        let (http, cors, login) = tokio::join!(
            self.http_side(ctx, &main.session),
            preflight(ctx, &request, &main.session.last.url),
            self.login_cookies(ctx),
        );
        let (login_cookies, login_failed) = login;
        let page = &main.session.last;
        let html = is_html(&page.headers).then(|| String::from_utf8_lossy(&page.body));
        let meta = html
            .as_deref()
            .map(grade::meta_policies)
            .unwrap_or_default();
        let mut cookies = main.set_cookies.clone();
        cookies.extend(login_cookies);
        let mut findings = rules::judge(
            &page.headers,
            page.url.scheme() == "https",
            &meta,
            &cookies,
            login_failed,
        );
        let g = grade::grade(&grade::Input {
            host: request.url.host_str().unwrap_or(""),
            https: https.then_some(&main.session),
            http: &http,
            cors: cors.as_ref().map(|h| (h, FOREIGN_ORIGIN)),
        });
        findings.push(self.grade_finding(&g));
        Probed {
            findings,
            timings: Some(main.timings),
            error: None,
            details: details(&g, &page.url),
            redact: Vec::new(),
        }
    }

    fn grade_finding(&self, g: &grade::Grade) -> Finding {
        let ok = grade::at_least(g.letter, &self.min_grade);
        let costs: Vec<String> = g
            .modifiers
            .iter()
            .filter(|m| m.modifier < 0)
            .map(|m| format!("{} {}", m.result, m.modifier))
            .collect();
        let why = if costs.is_empty() || ok {
            String::new()
        } else {
            format!("; points lost to {}", costs.join(", "))
        };
        Finding::judge(
            "headers.grade",
            ok,
            Status::Fail,
            format!("Observatory grade {} (score {}){why}", g.letter, g.score),
        )
        .with_values(
            format!("{} or better", self.min_grade),
            format!("{} ({})", g.letter, g.score),
        )
    }

    /// How the plain-HTTP URL answers: where its redirects lead, or that nothing answers. A
    /// plain-HTTP page is its own HTTP session, as it is for the Observatory.
    async fn http_side(&self, ctx: &Ctx<'_>, main: &Session) -> Http {
        if main.start.scheme() != "https" {
            return Http::Answered(Box::new(main.clone()));
        }
        let url = match &self.http_url {
            Some(u) => u.clone(),
            None => {
                let mut u = main.start.clone();
                let _ = u.set_scheme("http");
                let _ = u.set_port(None);
                u
            }
        };
        let mut req = Request::get(url);
        req.insecure = self.request.insecure;
        req.max_body = 64 << 10;
        req.headers.push(("Accept".into(), BROWSER_ACCEPT.into()));
        let deadline = ctx.deadline.min(Instant::now() + HTTP_PATIENCE);
        match session(ctx, &req, deadline).await {
            Ok(walked) => Http::Answered(Box::new(walked.session)),
            Err(NetError::Untrusted(_)) => Http::InvalidCert,
            Err(_) => Http::Unreachable,
        }
    }

    /// The Set-Cookie values of the configured login request, or a finding saying it failed.
    async fn login_cookies(&self, ctx: &Ctx<'_>) -> (Vec<String>, Option<Finding>) {
        let Some(login) = &self.login else {
            return (Vec::new(), None);
        };
        match session(ctx, login, ctx.deadline).await {
            Ok(walked) => (walked.set_cookies, None),
            Err(e) => (
                Vec::new(),
                Some(
                    Finding::new(
                        "headers.cookies",
                        Status::Fail,
                        format!(
                            "the login request failed, so its cookies could not be judged: {e}"
                        ),
                    )
                    .with_values("a login response", e.kind()),
                ),
            ),
        }
    }
}

/// A session and what the project rules need from it besides.
struct Walked {
    session: Session,
    /// Every raw Set-Cookie value of the chain.
    set_cookies: Vec<String>,
    /// The last response's timings.
    timings: crate::net::Timings,
}

/// Follows up to ten redirects the way the Observatory's browser session does, keeping every
/// URL, every cookie and the last response.
async fn session(ctx: &Ctx<'_>, first: &Request, deadline: Instant) -> Result<Walked, NetError> {
    let mut req = first.clone();
    let mut route = Vec::new();
    let mut jar = Jar::default();
    let mut raw_cookies = Vec::new();
    let mut verified = true;
    loop {
        let resp = ctx.engine.send(&req, ctx.overrides, deadline).await?;
        verified &= resp.tls.as_ref().is_none_or(|t| t.verified());
        route.push((req.url.clone(), resp.status));
        for c in resp.headers.get_all(http::header::SET_COOKIE) {
            let c = String::from_utf8_lossy(c.as_bytes()).into_owned();
            jar.set(&c, &req.url);
            raw_cookies.push(c);
        }
        let next = resp
            .location()
            .filter(|_| resp.is_redirect() && route.len() <= MAX_REDIRECTS)
            .and_then(|l| req.url.join(l).ok());
        match next {
            Some(next) => req.redirect(resp.status, next),
            None => {
                let session = Session {
                    start: first.url.clone(),
                    route,
                    jar,
                    last: Page {
                        url: req.url,
                        status: resp.status,
                        headers: resp.headers,
                        body: resp.body,
                    },
                    verified,
                };
                return Ok(Walked {
                    session,
                    set_cookies: raw_cookies,
                    timings: resp.timings,
                });
            }
        }
    }
}

/// A CORS preflight with a foreign origin to the final page, as the Observatory sends it.
async fn preflight(ctx: &Ctx<'_>, page: &Request, url: &Url) -> Option<http::HeaderMap> {
    let mut req = Request::get(url.clone());
    req.method = http::Method::OPTIONS;
    req.insecure = page.insecure;
    req.max_body = 64 << 10;
    req.headers.push(("Origin".into(), FOREIGN_ORIGIN.into()));
    req.headers
        .push(("Access-Control-Request-Method".into(), "GET".into()));
    let ex = ctx
        .engine
        .fetch(&req, ctx.overrides, ctx.deadline, MAX_REDIRECTS)
        .await
        .ok()?;
    Some(ex.response.headers)
}

fn is_html(h: &http::HeaderMap) -> bool {
    h.get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"))
}

fn details(g: &grade::Grade, final_url: &Url) -> crate::outcome::Details {
    let modifiers = g
        .modifiers
        .iter()
        .map(|m| crate::outcome::Modifier {
            test: m.test.to_string(),
            result: m.result.to_string(),
            modifier: m.modifier,
        })
        .collect();
    crate::outcome::Details::Headers(crate::outcome::HeadersDetails {
        final_url: final_url.to_string(),
        grade: g.letter.to_string(),
        modifiers,
        score: g.score,
    })
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "headers"` check takes besides the common ones.
pub(crate) const KEYS: &[&str] = &["url", "min_grade", "http_url", "login"];

/// `kind = "headers"`: security headers and an Observatory-style grade.
#[derive(Debug, Clone)]
pub struct HeadersSpec {
    pub url: Spanned<String>,
    pub min_grade: String,
    pub http_url: Option<Spanned<String>>,
    pub login: Option<RequestSpec>,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<HeadersSpec> {
    let url = required(t, "url", diags);
    let min_grade = match t.str("min_grade", diags) {
        Some(g) if crate::security::grade::LETTERS.contains(&g.value.as_str()) => g.value,
        Some(g) => {
            let msg = format!(
                "min_grade \"{}\" is not a grade, use one of {}",
                g.value,
                crate::security::grade::LETTERS.join(" ")
            );
            diags.error(g.span, msg);
            "B".into()
        }
        None => "B".into(),
    };
    let http_url = t.str("http_url", diags);
    let login = t.get("login").and_then(|node| {
        let mut lt = Table::of(node, format!("{}.login", t.path()), diags);
        let r = read_request(&mut lt, diags);
        lt.finish(REQUEST_KEYS, diags);
        r
    });
    Some(HeadersSpec {
        url: url?,
        min_grade,
        http_url,
        login,
    })
}

/// The job of a `kind = "headers"` check, its strings interpolated.
pub(crate) fn build(spec: &HeadersSpec, b: &mut Build<'_>) -> Option<HeadersProbe> {
    let url = b.url(&spec.url);
    let http_url = spec.http_url.as_ref().map(|u| b.url(u));
    let login = spec.login.as_ref().map(|l| b.request_of(l));
    Some(HeadersProbe {
        request: b.request(url?),
        min_grade: spec.min_grade.clone(),
        login: login.map(|l| l.ok_or(())).transpose().ok()?,
        http_url: http_url.map(|u| u.ok_or(())).transpose().ok()?,
    })
}
