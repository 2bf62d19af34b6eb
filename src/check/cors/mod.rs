//! `kind = "cors"`: sends every origin class a sloppy CORS check lets in ([`origins`]) with each
//! request a browser can send (a preflight, a simple GET, and the configured method), and reports
//! the exact headers that showed a problem ([`judge`]).

mod judge;
mod origins;

use crate::check::build::Build;
use crate::check::read::{read_method, required};
use crate::doc::{Diagnostics, Spanned, Table};
use std::sync::Mutex;

use crate::net::{NetError, Pool, Request, Response};

use super::{Ctx, Probed};

pub use origins::Class;

/// The endpoint, the origins it should allow, and the method a browser would use.
#[derive(Debug, Clone)]
pub struct CorsProbe {
    pub request: Request,
    /// Origins that must get exactly themselves back, e.g. `https://app.example.com`.
    pub allowed: Vec<String>,
    pub method: http::Method,
}

/// Which request of a probe a response answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Preflight,
    /// A simple GET, which browsers send without asking first.
    Get,
    /// The configured method, when it is not GET.
    Method,
}

/// What one request with one Origin got back.
#[derive(Debug, Clone)]
struct Seen {
    sent: Sent,
    /// The request, as evidence.
    request: String,
    /// Every `Access-Control-Allow-Origin` value, trimmed; browsers need exactly one.
    acao: Vec<String>,
    credentials: bool,
    vary_origin: bool,
}

impl Seen {
    /// The single ACAO value; `None` when missing or repeated (browsers reject both).
    fn acao(&self) -> Option<&str> {
        match self.acao.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        }
    }

    /// True when a browser lets `origin` read this response.
    fn allows(&self, origin: &str) -> bool {
        matches!(self.acao(), Some(a) if a == origin || a == "*")
    }

    fn evidence(&self) -> String {
        let acao = match self.acao.as_slice() {
            [] => "(none)".to_string(),
            [one] => one.clone(),
            many => format!("{} (sent {} times)", many.join(" | "), many.len()),
        };
        format!(
            "{} → Access-Control-Allow-Origin: {acao}{}",
            self.request,
            if self.credentials {
                ", Access-Control-Allow-Credentials: true"
            } else {
                ""
            }
        )
    }
}

/// What every request for one origin got back.
type Results = Vec<(origins::Probe, Vec<Seen>)>;

const PARALLEL: usize = 8;

impl CorsProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let probes = origins::derive(&self.request.url, &self.allowed);
        // A few workers, each on its own keep-alive connection, share the origins.
        let queue = Mutex::new(probes.iter().enumerate());
        let workers = (0..PARALLEL.min(probes.len())).map(|_| async {
            let mut pool = Pool::new();
            let mut done = Vec::new();
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some((i, p)) = next else { break };
                let r = self.probe(ctx, &mut pool, &p.origin).await;
                let failed = r.is_err();
                done.push((i, p.clone(), r));
                if failed {
                    break;
                }
            }
            done
        });
        let mut all: Vec<_> = futures_util::future::join_all(workers)
            .await
            .into_iter()
            .flatten()
            .collect();
        all.sort_by_key(|(i, _, _)| *i);
        let mut results: Results = Vec::new();
        for (_, p, r) in all {
            match r {
                Ok(s) => results.push((p, s)),
                Err(e) => return Probed::failed(e),
            }
        }
        let details = crate::outcome::Details::Cors(crate::outcome::CorsDetails {
            origins_probed: probes.len(),
        });
        Probed {
            findings: judge::findings(&self.allowed, &self.method, &results),
            timings: None,
            error: None,
            details,
            redact: Vec::new(),
        }
    }

    /// A preflight, a simple GET and the configured method, each carrying `origin`.
    async fn probe(
        &self,
        ctx: &Ctx<'_>,
        pool: &mut Pool,
        origin: &str,
    ) -> Result<Vec<Seen>, NetError> {
        let mut out = Vec::new();
        for (sent, req, request) in self.requests(origin) {
            let resp = pool
                .send(ctx.engine, &req, ctx.overrides, ctx.deadline)
                .await?;
            out.push(seen(&resp, sent, request));
        }
        Ok(out)
    }

    /// What is sent for one origin: a preflight, a simple GET, and the configured method.
    fn requests(&self, origin: &str) -> Vec<(Sent, Request, String)> {
        let path = self.request.url.path();
        let mut preflight = self.base(http::Method::OPTIONS, origin);
        preflight.headers.push((
            "Access-Control-Request-Method".into(),
            self.method.to_string(),
        ));
        let mut sends = vec![(
            Sent::Preflight,
            preflight,
            format!(
                "OPTIONS {path} with Origin: {origin}, Access-Control-Request-Method: {}",
                self.method
            ),
        )];
        sends.push((
            Sent::Get,
            self.base(http::Method::GET, origin),
            format!("GET {path} with Origin: {origin}"),
        ));
        if self.method != http::Method::GET {
            sends.push((
                Sent::Method,
                self.base(self.method.clone(), origin),
                format!("{} {path} with Origin: {origin}", self.method),
            ));
        }
        sends
    }

    fn base(&self, method: http::Method, origin: &str) -> Request {
        let mut r = self.request.clone();
        if method == http::Method::GET || method == http::Method::OPTIONS {
            r.body = bytes::Bytes::new();
        }
        r.method = method;
        r.max_body = 64 << 10;
        r.headers.push(("Origin".into(), origin.into()));
        r
    }
}

fn seen(r: &Response, sent: Sent, request: String) -> Seen {
    let all = |n: &str| -> Vec<String> {
        r.headers
            .get_all(n)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .collect()
    };
    Seen {
        sent,
        request,
        acao: all("access-control-allow-origin"),
        credentials: all("access-control-allow-credentials")
            .first()
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        vary_origin: all("vary").iter().any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("origin") || t.trim() == "*")
        }),
    }
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "cors"` check takes besides the common ones.
pub(crate) const KEYS: &[&str] = &["url", "allowed", "method"];

/// `kind = "cors"`: allowed origins and the misconfiguration classes.
#[derive(Debug, Clone)]
pub struct CorsSpec {
    pub url: Spanned<String>,
    /// Each entry may hold several origins separated by spaces (the checklist fills one from flags).
    pub allowed: Vec<Spanned<String>>,
    pub method: String,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<CorsSpec> {
    let url = required(t, "url", diags);
    let allowed = t.str_list("allowed", diags).unwrap_or_default();
    let method = read_method(t, diags);
    Some(CorsSpec {
        url: url?,
        allowed,
        method,
    })
}

/// The job of a `kind = "cors"` check, its strings interpolated.
pub(crate) fn build(spec: &CorsSpec, b: &mut Build<'_>) -> Option<CorsProbe> {
    let url = b.url(&spec.url)?;
    let allowed = origins(&spec.allowed, b);
    let method = spec.method.parse().unwrap_or(http::Method::GET);
    Some(CorsProbe {
        request: b.request(url),
        allowed,
        method,
    })
}

/// Allowed CORS origins: each entry may hold several, separated by spaces; each must be a bare origin.
fn origins(entries: &[Spanned<String>], b: &mut Build<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for e in entries {
        let text = b.text(e);
        for o in text.split_whitespace() {
            match url::Url::parse(o) {
                Ok(u) if u.origin().ascii_serialization() == o.trim_end_matches('/') => {
                    out.push(u.origin().ascii_serialization())
                }
                _ => b.error(
                    e.span.clone(),
                    format!("\"{o}\" is not an origin such as https://app.example.com"),
                ),
            }
        }
    }
    out
}
