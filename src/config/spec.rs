//! The `[[check]]` tables: one reader per check kind, each rejecting keys it does not know.

use std::ops::Range;
use std::time::Duration;

use super::kinds::{
    read_cors, read_expect, read_exposure, read_flow, read_headers, read_http, read_latency,
    read_page, read_redirect, read_tls,
};
use crate::assert::Context;
use crate::doc::{Diagnostics, Node, Spanned, Table};

/// One `[[check]]` as written, before interpolation.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub name: Spanned<String>,
    pub timeout: Option<Duration>,
    /// Lets requests go over a connection whose certificate failed verification.
    pub insecure: bool,
    /// Time between two runs in the agent; `[agent].interval` when unset.
    pub interval: Option<Duration>,
    /// This check's alert rule, when it differs from `[alerts]` (keys given here override it).
    pub alert: Option<Node>,
    pub span: Range<usize>,
    pub kind: KindSpec,
}

/// The kind-specific part of a check.
#[derive(Debug, Clone)]
pub enum KindSpec {
    Http(HttpSpec),
    Page(PageSpec),
    Redirect(RedirectSpec),
    Tls(TlsSpec),
    Headers(HeadersSpec),
    Cors(CorsSpec),
    Exposure(ExposureSpec),
    Flow(FlowSpec),
    Latency(LatencySpec),
}

impl KindSpec {
    pub fn name(&self) -> &'static str {
        match self {
            KindSpec::Http(_) => "http",
            KindSpec::Page(_) => "page",
            KindSpec::Redirect(_) => "redirect",
            KindSpec::Tls(_) => "tls",
            KindSpec::Headers(_) => "headers",
            KindSpec::Cors(_) => "cors",
            KindSpec::Exposure(_) => "exposure",
            KindSpec::Flow(_) => "flow",
            KindSpec::Latency(_) => "latency",
        }
    }
}

/// The body of a request: raw text, a JSON document, or form fields.
#[derive(Debug, Clone)]
pub enum BodySpec {
    Raw(Spanned<String>),
    Json(Node),
    Form(Vec<(String, Spanned<String>)>),
}

/// A request as written: the part shared by `http` checks and a `headers` check's login.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub url: Spanned<String>,
    pub method: String,
    pub headers: Vec<(String, Spanned<String>)>,
    pub body: Option<BodySpec>,
}

/// `kind = "http"`: one request and its assertions.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub request: RequestSpec,
    pub expect: Vec<Spanned<String>>,
    pub follow_redirects: bool,
}

/// `kind = "headers"`: security headers and an Observatory-style grade.
#[derive(Debug, Clone)]
pub struct HeadersSpec {
    pub url: Spanned<String>,
    pub min_grade: String,
    pub http_url: Option<Spanned<String>>,
    pub login: Option<RequestSpec>,
}

/// `kind = "cors"`: allowed origins and the misconfiguration classes.
#[derive(Debug, Clone)]
pub struct CorsSpec {
    pub url: Spanned<String>,
    /// Each entry may hold several origins separated by spaces (the checklist fills one from flags).
    pub allowed: Vec<Spanned<String>>,
    pub method: String,
}

/// `kind = "flow"`: steps that run in order, sharing captures and a cookie jar.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    pub steps: Vec<StepSpec>,
}

/// One `[[check.step]]`.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub name: Spanned<String>,
    pub request: RequestSpec,
    pub expect: Vec<Spanned<String>>,
    /// Variable name → capture query, e.g. `token = 'json $.access_token'`.
    pub capture: Vec<(String, Spanned<String>)>,
    pub timeout: Option<Duration>,
    pub follow_redirects: bool,
    /// Runs even after an earlier step failed, e.g. a logout or clean-up.
    pub always: bool,
}

/// `kind = "latency"`: many requests, percentiles from an HDR histogram.
#[derive(Debug, Clone)]
pub struct LatencySpec {
    pub request: RequestSpec,
    /// Closed loop: this many requests, `concurrency` at a time (all of `duration`, when set).
    pub requests: Option<u64>,
    pub concurrency: u64,
    /// Open loop: requests per second for `duration`, timed from each request's intended start.
    pub rate: Option<f64>,
    pub duration: Option<Duration>,
    /// Requests sent first and not recorded.
    pub warmup: u64,
    pub keepalive: bool,
    /// Time where the URL's redirects lead (true), or fail when it redirects (false).
    pub follow_redirects: bool,
    pub expect: Vec<Spanned<String>>,
}

/// `kind = "exposure"`: error pages and well-known files.
#[derive(Debug, Clone)]
pub struct ExposureSpec {
    pub url: Spanned<String>,
    pub endpoints: Vec<Spanned<String>>,
}

/// `kind = "page"`: a front-end page and its same-origin assets.
#[derive(Debug, Clone)]
pub struct PageSpec {
    pub url: Spanned<String>,
    pub expect: Vec<Spanned<String>>,
    pub assets: bool,
}

/// `kind = "redirect"`: plain HTTP must send users to HTTPS.
#[derive(Debug, Clone)]
pub struct RedirectSpec {
    pub url: Spanned<String>,
    pub max_hops: usize,
}

/// `kind = "tls"`: the certificate and protocol of one endpoint.
#[derive(Debug, Clone)]
pub struct TlsSpec {
    pub host: Spanned<String>,
    pub server_name: Option<Spanned<String>>,
    pub warn_days: i64,
    pub fail_days: i64,
    /// "1.2" or "1.3".
    pub min_version: String,
    /// Whether accepting TLS 1.0/1.1 fails or warns.
    pub legacy_warn: bool,
}

const KINDS: &[&str] = &[
    "http", "page", "redirect", "tls", "headers", "cors", "exposure", "flow", "latency",
];
const COMMON: &[&str] = &["name", "kind", "timeout", "insecure", "interval", "alert"];

pub(super) fn read_check(node: &Node, index: usize, diags: &mut Diagnostics) -> Option<CheckSpec> {
    let mut t = Table::of(node, format!("check[{index}]"), diags);
    let name = t.str("name", diags);
    if name.is_none() {
        diags.error(t.span(), format!("{}: missing `name`", t.path()));
    }
    if let Some(n) = &name {
        let path = t.path().to_string();
        t = Table::of(node, format!("check \"{}\"", n.value), diags);
        t.get("name");
        let _ = path;
    }
    let timeout = t.duration("timeout", diags);
    let insecure = t.bool("insecure", diags).unwrap_or(false);
    let interval = t.duration("interval", diags);
    let alert = t.get("alert").cloned();
    if let Some(node) = &alert {
        let mut at = Table::of(node, format!("{}.alert", t.path()), diags);
        super::read_rule(&mut at, &mut crate::alert::Rule::default(), diags);
        at.finish(
            &["failures", "successes", "repeat", "send_resolved", "window"],
            diags,
        );
    }
    let kind = match t.str("kind", diags) {
        None => {
            diags.error(
                t.span(),
                format!("{}: missing `kind` (one of {})", t.path(), KINDS.join(", ")),
            );
            None
        }
        Some(k) => match k.value.as_str() {
            "http" => Some(read_http(&mut t, diags).map(KindSpec::Http)),
            "page" => Some(read_page(&mut t, diags).map(KindSpec::Page)),
            "redirect" => Some(read_redirect(&mut t, diags).map(KindSpec::Redirect)),
            "tls" => Some(read_tls(&mut t, diags).map(KindSpec::Tls)),
            "headers" => Some(read_headers(&mut t, diags).map(KindSpec::Headers)),
            "cors" => Some(read_cors(&mut t, diags).map(KindSpec::Cors)),
            "exposure" => Some(read_exposure(&mut t, diags).map(KindSpec::Exposure)),
            "flow" => Some(read_flow(&mut t, diags).map(KindSpec::Flow)),
            "latency" => Some(read_latency(&mut t, diags).map(KindSpec::Latency)),
            other => {
                let hint = super::suggest(other, KINDS.iter().copied())
                    .map(|s| format!(", did you mean \"{s}\"?"))
                    .unwrap_or_else(|| format!(" (known kinds: {})", KINDS.join(", ")));
                diags.error(k.span, format!("unknown check kind \"{other}\"{hint}"));
                None
            }
        },
    };
    match &kind {
        Some(kind) => {
            let known: Vec<&str> = COMMON
                .iter()
                .chain(kind_keys(kind.as_ref()))
                .copied()
                .collect();
            t.finish(&known, diags);
        }
        // Without a valid kind, still report typos and bad assertions: any kind's key is accepted.
        None => {
            read_expect(&mut t, Context::Response, diags);
            let mut known: Vec<&str> = COMMON.to_vec();
            for k in KINDS {
                known.extend(kind_keys_by_name(k));
            }
            t.finish(&known, diags);
        }
    }
    Some(CheckSpec {
        name: name?,
        timeout,
        insecure,
        interval,
        alert,
        span: node.span.clone(),
        kind: kind.flatten()?,
    })
}

fn kind_keys(kind: Option<&KindSpec>) -> &'static [&'static str] {
    kind.map_or(&[], |k| kind_keys_by_name(k.name()))
}

fn kind_keys_by_name(kind: &str) -> &'static [&'static str] {
    match kind {
        "http" => &[
            "url",
            "method",
            "headers",
            "body",
            "json",
            "form",
            "expect",
            "follow_redirects",
        ],
        "page" => &["url", "expect", "assets"],
        "redirect" => &["url", "max_hops"],
        "tls" => &[
            "host",
            "server_name",
            "warn_days",
            "fail_days",
            "min_version",
            "legacy",
        ],
        "headers" => &["url", "min_grade", "http_url", "login"],
        "cors" => &["url", "allowed", "method"],
        "exposure" => &["url", "endpoints"],
        "flow" => &["step"],
        "latency" => &[
            "url",
            "method",
            "headers",
            "body",
            "json",
            "form",
            "requests",
            "concurrency",
            "rate",
            "duration",
            "warmup",
            "keepalive",
            "follow_redirects",
            "expect",
        ],
        _ => &[],
    }
}
