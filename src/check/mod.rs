//! Check kinds: one file each, dispatched through [`Probe`]. A probe never returns `Err`:
//! what it found is a list of [`Finding`]s, and "could not run" is a [`ProbeError`].

mod cors;
mod exposure;
mod flow;
mod headers;
mod http;
mod latency;
mod page;
mod redirect;
mod tls;

use tokio::time::Instant;

use crate::assert::{Assertion, Severity, Subject};
use crate::net::{Engine, Overrides};
pub use crate::outcome::{Finding, ProbeError, Probed, Status};

pub use self::http::HttpProbe;
pub use cors::{Class as CorsClass, CorsProbe};
pub use exposure::{ExposureProbe, leaks_in};
pub use flow::{BodyTemplate, FlowProbe, FlowStep};
pub use headers::HeadersProbe;
pub use latency::{LatencyProbe, Mode};
pub use page::PageProbe;
pub use redirect::RedirectProbe;
pub use tls::TlsProbe;

/// What a probe needs from its run: the engine, name overrides and the check's deadline.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub engine: &'a Engine,
    pub overrides: &'a Overrides,
    pub deadline: Instant,
    /// Show a progress bar for long runs (a terminal, and not JSON output).
    pub progress: bool,
}

/// Every check kind this build knows.
#[derive(Debug, Clone)]
pub enum Probe {
    Http(HttpProbe),
    Page(PageProbe),
    Redirect(RedirectProbe),
    Tls(TlsProbe),
    Headers(Box<HeadersProbe>),
    Cors(CorsProbe),
    Exposure(ExposureProbe),
    Flow(FlowProbe),
    Latency(LatencyProbe),
}

impl Probe {
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Page(_) => "page",
            Probe::Redirect(_) => "redirect",
            Probe::Tls(_) => "tls",
            Probe::Headers(_) => "headers",
            Probe::Cors(_) => "cors",
            Probe::Exposure(_) => "exposure",
            Probe::Flow(_) => "flow",
            Probe::Latency(_) => "latency",
        }
    }

    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        match self {
            Probe::Http(p) => p.run(ctx).await,
            Probe::Page(p) => p.run(ctx).await,
            Probe::Redirect(p) => p.run(ctx).await,
            Probe::Tls(p) => p.run(ctx).await,
            Probe::Headers(p) => p.run(ctx).await,
            Probe::Cors(p) => p.run(ctx).await,
            Probe::Exposure(p) => p.run(ctx).await,
            Probe::Flow(p) => p.run(ctx).await,
            Probe::Latency(p) => p.run(ctx).await,
        }
    }
}

/// Judges user assertions against a response. The first `status` assertion becomes `status_id`;
/// the rest are `{prefix}.N`, numbered from 1 in the order written.
pub fn judge_assertions(
    subject: &Subject<'_>,
    expect: &[Assertion],
    status_id: &str,
    prefix: &str,
) -> Vec<Finding> {
    let mut status_taken = false;
    expect
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let id = if !status_taken && matches!(a.query, crate::assert::Query::Status) {
                status_taken = true;
                status_id.to_string()
            } else {
                format!("{prefix}.{}", i + 1)
            };
            let verdict = subject.check(a);
            let status = match (verdict.passed, a.severity) {
                (true, _) => Status::Pass,
                (false, Severity::Warn) => Status::Warn,
                (false, Severity::Fail) => Status::Fail,
            };
            let message = if verdict.passed {
                a.text.clone()
            } else {
                format!("{} (was {})", a.text, verdict.actual)
            };
            Finding::new(id, status, message).expect(a.expected_text(), verdict.actual)
        })
        .collect()
}

/// Days from now until a certificate's notAfter, negative once expired.
pub fn days_until(not_after_unix: i64) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    (not_after_unix as f64 - now) / 86400.0
}

/// Leaf notAfter as a Unix timestamp, from a DER certificate.
pub fn leaf_not_after(der: &[u8]) -> Option<i64> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp())
}

/// `Subject` over a response, with the certificate's remaining days.
pub fn subject_of<'a>(resp: &'a crate::net::Response, redirects: usize) -> Subject<'a> {
    let cert_days = resp
        .tls
        .as_ref()
        .and_then(|t| t.chain.first())
        .and_then(|c| leaf_not_after(c))
        .map(days_until);
    Subject {
        status: Some(resp.status),
        time: Some(resp.timings.total),
        ttfb: Some(resp.timings.ttfb),
        headers: Some(&resp.headers),
        body: &resp.body,
        redirects,
        url: Some(resp.url.as_str()),
        cert_days,
        json: Default::default(),
    }
}

/// A finding for a body cut at the cap, so a huge body is reported instead of swallowing memory.
pub fn body_limit(resp: &crate::net::Response, cap: u64) -> Option<Finding> {
    resp.truncated.then(|| {
        Finding::new(
            "http.body_limit",
            Status::Fail,
            format!("body is larger than the {cap}-byte limit; reading stopped"),
        )
        .expect(format!("≤ {cap} bytes"), format!("> {cap} bytes"))
    })
}
