//! `kind = "http"`: one request (following redirects unless told not to) judged by assertions.

use crate::assert::Assertion;
use crate::assert::Context;
use crate::check::build::Build;
use crate::check::read::{RequestSpec, read_expect, read_request};
use crate::doc::{Diagnostics, Spanned, Table};
use crate::net::{MAX_REDIRECTS, Request};

use super::{Ctx, Finding, Probed, Status, body_limit, judge_assertions, subject_of};

/// A request and what its response must satisfy.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    pub request: Request,
    pub expect: Vec<Assertion>,
    pub follow_redirects: bool,
}

impl HttpProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let max = if self.follow_redirects {
            MAX_REDIRECTS
        } else {
            0
        };
        let result = if self.follow_redirects {
            ctx.engine
                .fetch(&self.request, ctx.overrides, ctx.deadline, max)
                .await
        } else {
            ctx.engine
                .send(&self.request, ctx.overrides, ctx.deadline)
                .await
                .map(|response| crate::net::Exchange {
                    hops: Vec::new(),
                    response,
                })
        };
        let ex = match result {
            Ok(ex) => ex,
            Err(e) => return Probed::failed(e),
        };
        let resp = &ex.response;
        let subject = subject_of(resp, ex.hops.len());
        let mut findings = judge_assertions(&subject, &self.expect, "http.status", "http.assert");
        if !findings.iter().any(|f| f.id == "http.status") {
            let ok = (200..300).contains(&resp.status);
            findings.insert(
                0,
                Finding::judge(
                    "http.status",
                    ok,
                    Status::Fail,
                    format!("status {}", resp.status),
                )
                .with_values("2xx", resp.status.to_string()),
            );
        }
        findings.extend(body_limit(resp, self.request.max_body));
        let redirects = ex
            .hops
            .iter()
            .map(|h| crate::outcome::Hop {
                url: h.url.to_string(),
                status: h.status,
                location: h.location.clone(),
                total_ms: Some(crate::units::ms(h.timings.total)),
            })
            .collect();
        let details = crate::outcome::Details::Http(crate::outcome::HttpDetails {
            final_url: resp.url.to_string(),
            http_version: version_name(resp.version).to_string(),
            redirects,
            size: resp.body.len() as u64,
        });
        Probed {
            findings,
            timings: Some(resp.timings),
            error: None,
            details,
            redact: Vec::new(),
        }
    }
}

/// The protocol as reports write it: "HTTP/1.1", "HTTP/2".
fn version_name(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "http"` check takes besides the common ones and a request's.
pub(crate) const KEYS: &[&str] = &["expect", "follow_redirects"];

/// `kind = "http"`: one request and its assertions.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub request: RequestSpec,
    pub expect: Vec<Spanned<String>>,
    pub follow_redirects: bool,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<HttpSpec> {
    let request = read_request(t, diags);
    let expect = read_expect(t, Context::Response, diags);
    let follow_redirects = t.bool("follow_redirects", diags).unwrap_or(true);
    Some(HttpSpec {
        request: request?,
        expect,
        follow_redirects,
    })
}

/// The job of a `kind = "http"` check, its strings interpolated.
pub(crate) fn build(h: &HttpSpec, b: &mut Build<'_>) -> Option<HttpProbe> {
    let request = b.request_of(&h.request);
    let expect = b.expect(&h.expect, Context::Response);
    Some(HttpProbe {
        request: request?,
        expect,
        follow_redirects: h.follow_redirects,
    })
}
