//! `kind = "redirect"`: plain HTTP answers 301/308 to HTTPS on the same host, then stays on HTTPS.

use crate::check::build::Build;
use crate::check::read::required;
use crate::doc::{Diagnostics, Spanned, Table};
use url::Url;

use crate::net::{Request, Timings};

use super::{Ctx, Finding, Probed, Status};

/// The plain-HTTP URL to start from and the most hops allowed.
#[derive(Debug, Clone)]
pub struct RedirectProbe {
    pub request: Request,
    pub max_hops: usize,
}

/// A hop as the redirect check sees it: where it was, and what it answered.
pub(crate) struct Step {
    pub url: Url,
    pub status: u16,
    pub location: Option<Url>,
}

/// How the walk along the chain ended.
pub(crate) enum End {
    /// A non-redirect answer at the last step's URL.
    Final,
    Loop(Url),
    TooMany,
    /// A later hop could not be fetched; the message says why.
    Broken(String),
}

impl RedirectProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let (steps, end, timings) = match self.walk(ctx).await {
            Ok(r) => r,
            Err(e) => return Probed::failed(e),
        };
        let mut findings = vec![first_hop(&self.request.url, &steps[0])];
        findings.push(permanent(&steps[0]));
        findings.push(final_https(&steps, &end));
        findings.push(self.hops(&steps, &end));
        let hops = steps
            .iter()
            .map(|s| crate::outcome::Hop {
                url: s.url.to_string(),
                status: s.status,
                location: s.location.as_ref().map(Url::to_string),
                total_ms: None,
            })
            .collect();
        let details = crate::outcome::Details::Redirect(crate::outcome::RedirectDetails { hops });
        Probed {
            findings,
            timings: Some(timings),
            error: None,
            details,
            redact: Vec::new(),
        }
    }

    /// Follows the chain one request at a time, so every hop is seen and a loop is caught.
    pub(crate) async fn walk(
        &self,
        ctx: &Ctx<'_>,
    ) -> Result<(Vec<Step>, End, Timings), crate::net::NetError> {
        let mut req = self.request.clone();
        let mut steps: Vec<Step> = Vec::new();
        let mut first_timings = None;
        // One hop more than allowed, to tell "too many" apart from "just enough".
        while steps.len() <= self.max_hops {
            let resp = match ctx.engine.send(&req, ctx.overrides, ctx.deadline).await {
                Ok(r) => r,
                Err(e) if steps.is_empty() => return Err(e),
                Err(e) => {
                    let t = first_timings.unwrap_or_default();
                    return Ok((steps, End::Broken(format!("{}: {e}", req.url)), t));
                }
            };
            first_timings.get_or_insert(resp.timings);
            let location = resp
                .is_redirect()
                .then(|| resp.location().and_then(|l| req.url.join(l).ok()))
                .flatten();
            steps.push(Step {
                url: req.url.clone(),
                status: resp.status,
                location: location.clone(),
            });
            let Some(next) = location else {
                return Ok((steps, End::Final, first_timings.unwrap_or_default()));
            };
            if steps.iter().any(|s| s.url == next) {
                return Ok((steps, End::Loop(next), first_timings.unwrap_or_default()));
            }
            req.url = next;
        }
        Ok((steps, End::TooMany, first_timings.unwrap_or_default()))
    }

    fn hops(&self, steps: &[Step], end: &End) -> Finding {
        let redirects = steps.iter().filter(|s| s.location.is_some()).count();
        let expected = format!("≤ {} redirects, no loop", self.max_hops);
        match end {
            End::Loop(back) => Finding::new(
                "redirect.hops",
                Status::Fail,
                format!("redirect loop back to {back}"),
            )
            .with_values(expected, format!("loop after {redirects} redirects")),
            End::TooMany => Finding::new(
                "redirect.hops",
                Status::Fail,
                format!("more than {} redirects", self.max_hops),
            )
            .with_values(expected, format!("> {}", self.max_hops)),
            _ => Finding::judge(
                "redirect.hops",
                redirects <= self.max_hops,
                Status::Fail,
                format!("{redirects} redirects"),
            )
            .with_values(expected, redirects.to_string()),
        }
    }
}

fn first_hop(start: &Url, first: &Step) -> Finding {
    let expected = format!("301/308 to https://{}", start.host_str().unwrap_or(""));
    match &first.location {
        None => Finding::new(
            "redirect.https",
            Status::Fail,
            format!(
                "{start} answered {} without redirecting to HTTPS",
                first.status
            ),
        )
        .with_values(expected, format!("{} (no redirect)", first.status)),
        Some(loc) => {
            let ok = loc.scheme() == "https" && loc.host_str() == start.host_str();
            let msg = if ok {
                format!("{start} redirects to {loc}")
            } else if loc.scheme() != "https" {
                format!("{start} redirects to {loc}, which is not HTTPS")
            } else {
                format!("{start} redirects to another host: {loc}")
            };
            Finding::judge("redirect.https", ok, Status::Fail, msg)
                .with_values(expected, format!("{} to {loc}", first.status))
        }
    }
}

fn permanent(first: &Step) -> Finding {
    let (status, msg) = match first.status {
        301 | 308 => (
            Status::Pass,
            format!("redirect is permanent ({})", first.status),
        ),
        302 | 303 | 307 => (
            Status::Warn,
            format!(
                "redirect is temporary ({}); browsers will not remember it",
                first.status
            ),
        ),
        s => (Status::Fail, format!("no redirect (status {s})")),
    };
    Finding::new("redirect.permanent", status, msg)
        .with_values("301 or 308", first.status.to_string())
}

fn final_https(steps: &[Step], end: &End) -> Finding {
    let expected = "every hop after the first on https, ending in a non-redirect answer";
    let downgrade = steps.iter().skip(1).find(|s| s.url.scheme() != "https");
    let last = steps.last().map(|s| &s.url);
    let (status, msg, actual) = match (end, downgrade) {
        (_, Some(s)) => (
            Status::Fail,
            format!("hop {} is plain HTTP", s.url),
            s.url.to_string(),
        ),
        (End::Broken(why), None) => (
            Status::Fail,
            format!("the chain breaks: {why}"),
            why.clone(),
        ),
        (End::Loop(_) | End::TooMany, None) => (
            Status::Fail,
            "the chain never reaches a final page".to_string(),
            "no final page".to_string(),
        ),
        (End::Final, None) => match last {
            Some(u) if u.scheme() == "https" => {
                let s = steps.last().map_or(0, |s| s.status);
                (
                    Status::Pass,
                    format!("ends at {u} ({s})"),
                    format!("{u} ({s})"),
                )
            }
            Some(u) => (
                Status::Fail,
                format!("ends on plain HTTP at {u}"),
                u.to_string(),
            ),
            None => (Status::Fail, "no response".to_string(), "none".to_string()),
        },
    };
    Finding::new("redirect.final_https", status, msg).with_values(expected, actual)
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "redirect"` check takes besides the common ones.
pub(crate) const KEYS: &[&str] = &["url", "max_hops"];

/// `kind = "redirect"`: plain HTTP must send users to HTTPS.
#[derive(Debug, Clone)]
pub struct RedirectSpec {
    pub url: Spanned<String>,
    pub max_hops: usize,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<RedirectSpec> {
    let url = required(t, "url", diags);
    let max_hops = t.int("max_hops", 1..21, diags).unwrap_or(3) as usize;
    Some(RedirectSpec {
        url: url?,
        max_hops,
    })
}

/// The job of a `kind = "redirect"` check, its strings interpolated.
pub(crate) fn build(r: &RedirectSpec, b: &mut Build<'_>) -> Option<RedirectProbe> {
    let url = b.url(&r.url)?;
    if url.scheme() != "http" {
        b.error(
            r.url.span.clone(),
            format!("a redirect check starts from an http:// URL, not \"{url}\""),
        );
        return None;
    }
    Some(RedirectProbe {
        request: b.request(url),
        max_hops: r.max_hops,
    })
}
