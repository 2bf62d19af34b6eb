//! Check kinds, one module each: a kind's module reads its `[[check]]` keys (`read`, `KEYS`),
//! builds its job (`build`) and runs its probe. This file is the registry: [`Kind`] is the one
//! list of kinds, and [`KindSpec`] and [`Probe`] dispatch to the modules. Adding a kind is one
//! module and one line in each `match` here. A probe never returns `Err`: what it found is a
//! list of [`Finding`]s, and "could not run" is a [`ProbeError`].

pub mod build;
pub mod cors;
pub mod dns;
pub mod exposure;
pub mod flow;
pub mod grpc;
pub mod headers;
pub mod http;
pub mod latency;
pub mod page;
pub mod read;
pub mod redirect;
pub mod tcp;
pub mod tls;
pub mod websocket;
pub(crate) mod wire;

use tokio::time::Instant;

use crate::assert::{Assertion, Severity, Subject};
use crate::doc::{Diagnostics, Table};
use crate::net::{Engine, Overrides};
pub use crate::outcome::{Finding, ProbeError, Probed, Status};

pub use self::http::HttpProbe;
pub use cors::{Class as CorsClass, CorsProbe};
pub use dns::DnsProbe;
pub use exposure::{ExposureProbe, leaks_in};
pub use flow::{BodyTemplate, FlowProbe, FlowStep};
pub use grpc::GrpcProbe;
pub use headers::HeadersProbe;
pub use latency::{LatencyProbe, Mode};
pub use page::PageProbe;
pub use redirect::RedirectProbe;
pub use tcp::TcpProbe;
pub use tls::TlsProbe;
pub use websocket::WebSocketProbe;

/// What a probe needs from its run: the engine, name overrides and the check's deadline.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub engine: &'a Engine,
    pub overrides: &'a Overrides,
    pub deadline: Instant,
    /// Show a progress bar for long runs (a terminal, and not JSON output).
    pub progress: bool,
}

pub use crate::outcome::Kind;

impl Kind {
    /// The keys its checks take besides the common ones.
    pub fn keys(self) -> Vec<&'static str> {
        let own = match self {
            Kind::Http => http::KEYS,
            Kind::Page => page::KEYS,
            Kind::Redirect => redirect::KEYS,
            Kind::Tls => tls::KEYS,
            Kind::Headers => headers::KEYS,
            Kind::Cors => cors::KEYS,
            Kind::Exposure => exposure::KEYS,
            Kind::Flow => flow::KEYS,
            Kind::Latency => latency::KEYS,
            Kind::Dns => dns::KEYS,
            Kind::Tcp => tcp::KEYS,
            Kind::Grpc => grpc::KEYS,
            Kind::WebSocket => websocket::KEYS,
        };
        let request = matches!(self, Kind::Http | Kind::Latency).then_some(read::REQUEST_KEYS);
        request.into_iter().flatten().chain(own).copied().collect()
    }
}

/// The kind-specific part of a check, as written.
#[derive(Debug, Clone)]
pub enum KindSpec {
    Http(http::HttpSpec),
    Page(page::PageSpec),
    Redirect(redirect::RedirectSpec),
    Tls(tls::TlsSpec),
    Headers(headers::HeadersSpec),
    Cors(cors::CorsSpec),
    Exposure(exposure::ExposureSpec),
    Flow(flow::FlowSpec),
    Latency(latency::LatencySpec),
    Dns(dns::DnsSpec),
    Tcp(tcp::TcpSpec),
    Grpc(grpc::GrpcSpec),
    WebSocket(websocket::WebSocketSpec),
}

impl KindSpec {
    /// Reads a check of `kind` from its table; every problem goes to `diags`.
    pub fn read(kind: Kind, t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<KindSpec> {
        match kind {
            Kind::Http => http::read(t, diags).map(KindSpec::Http),
            Kind::Page => page::read(t, diags).map(KindSpec::Page),
            Kind::Redirect => redirect::read(t, diags).map(KindSpec::Redirect),
            Kind::Tls => tls::read(t, diags).map(KindSpec::Tls),
            Kind::Headers => headers::read(t, diags).map(KindSpec::Headers),
            Kind::Cors => cors::read(t, diags).map(KindSpec::Cors),
            Kind::Exposure => exposure::read(t, diags).map(KindSpec::Exposure),
            Kind::Flow => flow::read(t, diags).map(KindSpec::Flow),
            Kind::Latency => latency::read(t, diags).map(KindSpec::Latency),
            Kind::Dns => dns::read(t, diags).map(KindSpec::Dns),
            Kind::Tcp => tcp::read(t, diags).map(KindSpec::Tcp),
            Kind::Grpc => grpc::read(t, diags).map(KindSpec::Grpc),
            Kind::WebSocket => websocket::read(t, diags).map(KindSpec::WebSocket),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            KindSpec::Http(_) => Kind::Http,
            KindSpec::Page(_) => Kind::Page,
            KindSpec::Redirect(_) => Kind::Redirect,
            KindSpec::Tls(_) => Kind::Tls,
            KindSpec::Headers(_) => Kind::Headers,
            KindSpec::Cors(_) => Kind::Cors,
            KindSpec::Exposure(_) => Kind::Exposure,
            KindSpec::Flow(_) => Kind::Flow,
            KindSpec::Latency(_) => Kind::Latency,
            KindSpec::Dns(_) => Kind::Dns,
            KindSpec::Tcp(_) => Kind::Tcp,
            KindSpec::Grpc(_) => Kind::Grpc,
            KindSpec::WebSocket(_) => Kind::WebSocket,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The check's job, its strings interpolated.
    pub fn build(&self, b: &mut build::Build<'_>) -> Option<Probe> {
        Some(match self {
            KindSpec::Http(s) => Probe::Http(http::build(s, b)?),
            KindSpec::Page(s) => Probe::Page(page::build(s, b)?),
            KindSpec::Redirect(s) => Probe::Redirect(redirect::build(s, b)?),
            KindSpec::Tls(s) => Probe::Tls(tls::build(s, b)?),
            KindSpec::Headers(s) => Probe::Headers(Box::new(headers::build(s, b)?)),
            KindSpec::Cors(s) => Probe::Cors(cors::build(s, b)?),
            KindSpec::Exposure(s) => Probe::Exposure(exposure::build(s, b)?),
            KindSpec::Flow(s) => Probe::Flow(flow::build(s, b)?),
            KindSpec::Latency(s) => Probe::Latency(latency::build(s, b)?),
            KindSpec::Dns(s) => Probe::Dns(dns::build(s, b)?),
            KindSpec::Tcp(s) => Probe::Tcp(Box::new(tcp::build(s, b)?)),
            KindSpec::Grpc(s) => Probe::Grpc(grpc::build(s, b)?),
            KindSpec::WebSocket(s) => Probe::WebSocket(websocket::build(s, b)?),
        })
    }

    /// The timeout a check gets when it sets none: `base`, or what a longer run needs.
    pub(crate) fn default_timeout(&self, base: std::time::Duration) -> std::time::Duration {
        match self {
            KindSpec::Latency(l) => latency::default_timeout(l, base),
            KindSpec::Flow(f) => flow::default_timeout(f, base),
            _ => base,
        }
    }
}

/// A check's job, ready to run.
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
    Dns(DnsProbe),
    Tcp(Box<TcpProbe>),
    Grpc(GrpcProbe),
    WebSocket(WebSocketProbe),
}

impl Probe {
    pub fn kind(&self) -> Kind {
        match self {
            Probe::Http(_) => Kind::Http,
            Probe::Page(_) => Kind::Page,
            Probe::Redirect(_) => Kind::Redirect,
            Probe::Tls(_) => Kind::Tls,
            Probe::Headers(_) => Kind::Headers,
            Probe::Cors(_) => Kind::Cors,
            Probe::Exposure(_) => Kind::Exposure,
            Probe::Flow(_) => Kind::Flow,
            Probe::Latency(_) => Kind::Latency,
            Probe::Dns(_) => Kind::Dns,
            Probe::Tcp(_) => Kind::Tcp,
            Probe::Grpc(_) => Kind::Grpc,
            Probe::WebSocket(_) => Kind::WebSocket,
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
            Probe::Dns(p) => p.run(ctx).await,
            Probe::Tcp(p) => p.run(ctx).await,
            Probe::Grpc(p) => p.run(ctx).await,
            Probe::WebSocket(p) => p.run(ctx).await,
        }
    }
}

/// Judges user assertions against a response. The first `status` assertion becomes `status_id`;
/// the rest are `{prefix}.N`, numbered from 1 in the order written.
pub(crate) fn judge_assertions(
    subject: &Subject<'_>,
    expect: &[Assertion],
    status_id: &str,
    prefix: &str,
) -> Vec<Finding> {
    let is_status = |q: &crate::assert::Query| matches!(q, crate::assert::Query::Status);
    judge_assertions_led(subject, expect, is_status, status_id, prefix)
}

/// Like [`judge_assertions`], with the first assertion whose query is `leads` becoming `lead_id`
/// (a `dns` check's `rcode` assertion becomes `dns.rcode`).
pub(crate) fn judge_assertions_led(
    subject: &Subject<'_>,
    expect: &[Assertion],
    leads: impl Fn(&crate::assert::Query) -> bool,
    lead_id: &str,
    prefix: &str,
) -> Vec<Finding> {
    let mut lead_taken = false;
    expect
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let id = if !lead_taken && leads(&a.query) {
                lead_taken = true;
                lead_id.to_string()
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
            Finding::new(id, status, message).with_values(a.expected_text(), verdict.actual)
        })
        .collect()
}

/// Days from now until a certificate's notAfter, negative once expired.
pub(crate) fn days_until(not_after_unix: i64) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    (not_after_unix as f64 - now) / 86400.0
}

/// Leaf notAfter as a Unix timestamp, from a DER certificate.
pub(crate) fn leaf_not_after(der: &[u8]) -> Option<i64> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp())
}

/// `Subject` over a response, with the certificate's remaining days.
pub(crate) fn subject_of<'a>(resp: &'a crate::net::Response, redirects: usize) -> Subject<'a> {
    let cert_days = resp.tls.as_ref().and_then(|t| t.not_after).map(days_until);
    Subject {
        status: Some(resp.status),
        time: Some(resp.timings.total),
        ttfb: Some(resp.timings.ttfb),
        headers: Some(&resp.headers),
        body: &resp.body,
        redirects,
        url: Some(resp.url.as_str()),
        cert_days,
        ..Subject::default()
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
        .with_values(format!("≤ {cap} bytes"), format!("> {cap} bytes"))
    })
}
