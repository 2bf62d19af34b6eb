//! The one HTTP engine: DNS, TCP, TLS and HTTP/1.1 or HTTP/2 done by hand, so each phase is timed.
//!
//! A probe builds a [`Request`], and the [`Engine`] returns a [`Response`] with per-phase
//! [`Timings`] and, for HTTPS, the [`TlsInfo`] of the connection. Every wait is bounded by one
//! deadline per check, bodies are capped, and redirects are followed by hand so each hop is kept.

mod conn;
mod dns;
mod h1;
mod h2wire;
pub mod jar;
pub mod legacy;
mod pool;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hickory_resolver::TokioResolver;
use tokio::time::Instant;
use url::Url;

pub use conn::{Conn, H2};
pub use dns::Overrides;
pub(crate) use h1::{Kept, Prepared};
pub(crate) use h2wire::{Block, Event, First, RECV_WINDOW, REFUSED_STREAM, Wire2, code_name};
pub use pool::Pool;
pub(crate) use pool::idempotent;
pub use tls::{CertProblem, TlsInfo};

/// Why a request could not complete. `kind()` is a fixed word, safe as a metric label.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum NetError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Dns(String),
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Tls(String),
    /// The handshake finished, but the certificate did not verify, so nothing was sent.
    #[error("refusing to send over an untrusted connection: {0}")]
    Untrusted(String),
    #[error("timeout after {} during {phase}", seconds(*.after))]
    Timeout { phase: Phase, after: Duration },
    #[error("{0}")]
    Protocol(String),
    /// A connection closed before any byte of the response: a reused keep-alive connection the
    /// server had already closed, say. [`Pool`] sends an idempotent request again on a new one.
    #[error("{0}")]
    Closed(String),
}

impl NetError {
    /// Every word [`NetError::kind`] can return.
    pub(crate) const KINDS: [&'static str; 6] =
        ["setup", "dns", "connect", "tls", "timeout", "protocol"];

    /// The deadline passed during `phase`, `started` being when the wait began.
    pub(crate) fn timed_out(phase: Phase, started: Instant) -> NetError {
        NetError::Timeout {
            phase,
            after: round_ms(started.elapsed()),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            NetError::Setup(_) => "setup",
            NetError::Dns(_) => "dns",
            NetError::Connect(_) => "connect",
            NetError::Tls(_) | NetError::Untrusted(_) => "tls",
            NetError::Timeout { .. } => "timeout",
            NetError::Protocol(_) | NetError::Closed(_) => "protocol",
        }
    }
}

/// The phases of one request, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Dns,
    Connect,
    Tls,
    Ttfb,
    Transfer,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Dns => "dns",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Ttfb => "waiting for the response headers",
            Phase::Transfer => "reading the body",
        })
    }
}

/// Per-phase durations of one request. A reused connection has zero dns/connect/tls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub dns: Duration,
    pub connect: Duration,
    pub tls: Duration,
    pub ttfb: Duration,
    pub transfer: Duration,
    pub total: Duration,
}

/// Which HTTP a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// HTTP/2 when the server picks it by ALPN over TLS, HTTP/1.1 otherwise (browsers' way).
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only: by ALPN over TLS, by prior knowledge (h2c) over plain TCP.
    Http2,
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: http::Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Allow sending over a connection whose certificate failed verification.
    pub insecure: bool,
    /// Bytes of body to keep; the rest is not read.
    pub max_body: u64,
    /// Read the whole body but keep none of it (latency runs): memory stays flat whatever the
    /// target sends, and the connection stays usable.
    pub discard_body: bool,
    /// Lower-case names of the headers whose value holds a secret or a captured value: like
    /// `Authorization`, they are not sent on when a redirect leaves the origin.
    pub secret_headers: Vec<String>,
}

impl Request {
    /// Turns this request into the one a client sends after a `status` redirect to `next`: a 303,
    /// or a 301/302 after a POST, becomes a GET without a body, and credentials stay with the
    /// origin they were written for, as browsers and curl do.
    pub fn redirect(&mut self, status: u16, next: Url) {
        if status == 303 || (matches!(status, 301 | 302) && self.method == http::Method::POST) {
            self.method = http::Method::GET;
            self.body = Bytes::new();
        }
        if next.origin() != self.url.origin() {
            let secret = |k: &str| {
                CREDENTIAL_HEADERS.iter().any(|c| k.eq_ignore_ascii_case(c))
                    || self
                        .secret_headers
                        .iter()
                        .any(|s| k.eq_ignore_ascii_case(s))
            };
            self.headers.retain(|(k, _)| !secret(k));
        }
        self.url = next;
    }

    pub fn get(url: Url) -> Request {
        Request {
            method: http::Method::GET,
            url,
            headers: Vec::new(),
            body: Bytes::new(),
            insecure: false,
            max_body: 10 << 20,
            discard_body: false,
            secret_headers: Vec::new(),
        }
    }
}

/// One response, with everything the checks need to judge it.
#[derive(Debug, Clone)]
pub struct Response {
    pub url: Url,
    pub status: u16,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// The body was longer than the cap and was cut.
    pub truncated: bool,
    pub timings: Timings,
    pub tls: Option<Arc<TlsInfo>>,
    pub remote: SocketAddr,
}

impl Response {
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    pub(crate) fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308)
    }
}

/// One hop of a redirect chain.
#[derive(Debug, Clone)]
pub struct Hop {
    pub url: Url,
    pub status: u16,
    pub location: Option<String>,
    pub timings: Timings,
}

/// A request and the redirects followed to its final response.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub hops: Vec<Hop>,
    pub response: Response,
}

/// How the engine is set up: extra trusted roots, and (for tests) the DNS servers to ask.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub ca_file: Option<PathBuf>,
    pub nameservers: Vec<SocketAddr>,
}

/// Shared by every check of a run; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    tls: Arc<tls::TlsSetup>,
    /// A missing or broken resolv.conf only matters for names that need DNS, so it is kept as an error.
    resolver: Result<TokioResolver, NetError>,
    /// The name servers a `dns` check without a `server` asks, in order.
    nameservers: Result<Vec<SocketAddr>, NetError>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("roots", &self.tls.roots())
            .finish()
    }
}

/// Nothing is sent over a connection whose certificate failed, unless the request says so.
fn trusted(tls: Option<&Arc<TlsInfo>>, req: &Request) -> Result<(), NetError> {
    match tls.filter(|t| !t.verified() && !req.insecure) {
        Some(t) => Err(NetError::Untrusted(t.problem().unwrap_or_default())),
        None => Ok(()),
    }
}

/// Headers that are dropped when a redirect leaves the origin they were configured for.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// The most redirects an `http` check follows before it gives up.
pub(crate) const MAX_REDIRECTS: usize = 10;

/// Reads a PEM bundle of extra roots as the engine will, to report a bad one before anything runs.
pub(crate) fn check_ca_file(path: &std::path::Path) -> Result<(), NetError> {
    tls::load_roots(Some(path)).map(|_| ())
}

impl Engine {
    pub fn new(options: &EngineOptions) -> Result<Engine, NetError> {
        let roots = tls::load_roots(options.ca_file.as_deref())?;
        let tls = Arc::new(tls::TlsSetup::new(
            roots,
            Arc::new(crate::crypto::provider()),
        )?);
        let resolver = dns::build_resolver(&options.nameservers);
        let nameservers = dns::nameservers(&options.nameservers);
        Ok(Engine {
            tls,
            resolver,
            nameservers,
        })
    }

    /// Sends one request on a new connection, refusing to send over an unverified one.
    pub async fn send(
        &self,
        req: &Request,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<Response, NetError> {
        let mut conn = self.open_for(req, overrides, deadline).await?;
        conn.send(req, deadline).await
    }

    /// Sends a request and follows up to `max_redirects` redirects, recording each hop. Each hop
    /// opens its own connection, so every response's timings include DNS, connect and TLS.
    pub(crate) async fn fetch(
        &self,
        req: &Request,
        overrides: &Overrides,
        deadline: Instant,
        max_redirects: usize,
    ) -> Result<Exchange, NetError> {
        Pool::single_use()
            .fetch(self, req, overrides, deadline, max_redirects)
            .await
    }

    /// Opens a connection for `req`, refusing one whose certificate failed verification unless
    /// the request is marked insecure. Latency runs reuse it for many requests.
    pub(crate) async fn open_for(
        &self,
        req: &Request,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<Conn, NetError> {
        self.open_speaking(req, Protocol::Auto, overrides, deadline)
            .await
    }

    /// [`Engine::open_for`] with the protocol chosen: an HTTP/2-only connection to a server that
    /// does not offer HTTP/2 is an error that says so.
    pub(crate) async fn open_speaking(
        &self,
        req: &Request,
        protocol: Protocol,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<Conn, NetError> {
        // On the heap: opening (DNS, TCP, TLS) is a future of many kilobytes, and a caller that
        // usually sends on a kept connection would otherwise carry and copy all of it.
        let conn = Box::pin(conn::open(self, &req.url, overrides, deadline, protocol)).await?;
        trusted(conn.tls(), req)?;
        Ok(conn)
    }

    /// A connection kept for a run of the same request (a latency run): HTTP/1.1 through the
    /// lean client of [`h1`], HTTP/2 through hyper.
    pub(crate) async fn open_kept(
        &self,
        req: &Request,
        protocol: Protocol,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<Kept, NetError> {
        let link = self.open_link(req, protocol, overrides, deadline).await?;
        Ok(if link.h2 {
            Kept::Hyper(Conn::over(link, deadline).await?)
        } else {
            Kept::Wire(h1::Wire::new(link))
        })
    }

    /// An HTTP/2 connection for a lane of a latency run; `None` when the server chose HTTP/1.1
    /// by ALPN.
    pub(crate) async fn open_lane(
        &self,
        req: &Request,
        protocol: Protocol,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<Option<Wire2>, NetError> {
        let link = self.open_link(req, protocol, overrides, deadline).await?;
        Ok(link.h2.then(|| Wire2::over(link)))
    }

    /// TCP, and TLS for https, to where `req` goes; nothing over an untrusted certificate
    /// unless the request allows it.
    async fn open_link(
        &self,
        req: &Request,
        protocol: Protocol,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<conn::Link, NetError> {
        let link = Box::pin(conn::link(self, &req.url, overrides, deadline, protocol)).await?;
        trusted(link.tls.as_ref(), req)?;
        Ok(link)
    }

    /// Opens a connection (DNS, TCP, and TLS for https) ready to send requests.
    pub async fn open(
        &self,
        url: &Url,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<Conn, NetError> {
        conn::open(self, url, overrides, deadline, Protocol::Auto).await
    }

    /// The first address for `host:port` (overrides, then DNS), for probes that speak raw TCP.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<SocketAddr, NetError> {
        let started = Instant::now();
        let lookup = dns::resolve(
            self.resolver.as_ref().map_err(Clone::clone),
            host,
            port,
            overrides,
        );
        let addrs = within(deadline, Phase::Dns, started, lookup).await?;
        addrs
            .first()
            .copied()
            .ok_or_else(|| NetError::Dns(format!("no address for {host}")))
    }

    /// Judges a chain read without a finished handshake (from a legacy-protocol server): whether it
    /// leads to a trusted root, and whether its leaf is valid for `server_name`.
    pub(crate) fn judge_chain(
        &self,
        chain: &[Vec<u8>],
        server_name: &str,
    ) -> (Result<(), CertProblem>, Result<(), CertProblem>) {
        let certs: Vec<rustls::pki_types::CertificateDer<'_>> =
            chain.iter().map(|c| c.as_slice().into()).collect();
        let name = rustls::pki_types::ServerName::try_from(
            server_name.trim_matches(['[', ']']).to_string(),
        );
        let (Some(leaf), Ok(name)) = (certs.first(), name) else {
            let bad = || {
                Err(CertProblem::Other(format!(
                    "\"{server_name}\" is not a valid TLS server name"
                )))
            };
            return (bad(), bad());
        };
        self.tls
            .judge_chain(leaf, &certs[1..], &name, rustls::pki_types::UnixTime::now())
    }

    /// The name servers the system resolver asks (or the ones the engine was given), in order.
    pub fn nameservers(&self) -> Result<Vec<SocketAddr>, NetError> {
        self.nameservers.clone()
    }

    /// DNS and a TCP connection to `host:port`, for probes that speak their own protocol.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<(tokio::net::TcpStream, Timings), NetError> {
        conn::connect_tcp(self, host, port, overrides, deadline).await
    }

    /// TLS over an open stream (after STARTTLS, say), verified by the same rules as every
    /// connection: the result records why the chain is or is not trusted, and how long it took.
    pub async fn upgrade<S>(
        &self,
        io: S,
        server_name: &str,
        alpn: &[&[u8]],
        deadline: Instant,
    ) -> Result<(tokio_rustls::client::TlsStream<S>, TlsInfo, Duration), NetError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let started = Instant::now();
        let handshake = conn::tls_connect(self, io, server_name, alpn);
        let (stream, info) = within(deadline, Phase::Tls, started, handshake).await?;
        Ok((stream, info, started.elapsed()))
    }

    /// An HTTP/2 connection to `url` (h2 over TLS, or h2c for http://), for gRPC.
    pub async fn open_h2(
        &self,
        url: &Url,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<H2, NetError> {
        conn::open_h2(self, url, overrides, deadline).await
    }

    /// A TLS handshake only, for the `tls` check: the result says why the chain is or is not trusted.
    pub async fn handshake(
        &self,
        host: &str,
        port: u16,
        server_name: &str,
        overrides: &Overrides,
        deadline: Instant,
    ) -> Result<(Arc<TlsInfo>, Timings), NetError> {
        conn::handshake_only(self, host, port, server_name, overrides, deadline).await
    }
}

/// A timer kept for the life of a connection that sends one request after another: it is left
/// running from one request to the next and moved on only when it goes off early, about once
/// per request timeout rather than tens of thousands of times a second. A clone starts
/// without a timer of its own.
#[derive(Default)]
pub(crate) struct Alarm(Option<std::pin::Pin<Box<tokio::time::Sleep>>>);

impl Clone for Alarm {
    fn clone(&self) -> Alarm {
        Alarm(None)
    }
}

impl Alarm {
    /// `fut`'s output, or `None` once `deadline` has passed.
    pub(crate) async fn within<F: std::future::Future>(
        &mut self,
        deadline: Instant,
        fut: F,
    ) -> Option<F::Output> {
        let alarm = self
            .0
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if alarm.deadline() > deadline {
            alarm.as_mut().reset(deadline);
        }
        let mut fut = std::pin::pin!(fut);
        loop {
            tokio::select! {
                biased;
                out = &mut fut => return Some(out),
                () = alarm.as_mut() => {
                    if alarm.deadline() >= deadline {
                        return None;
                    }
                    // Set by an earlier request: this one has until its own deadline.
                    alarm.as_mut().reset(deadline);
                }
            }
        }
    }
}

/// Runs `fut` until `deadline`, turning a timeout into a [`NetError::Timeout`] for `phase`.
async fn within<T>(
    deadline: Instant,
    phase: Phase,
    started: Instant,
    fut: impl std::future::Future<Output = Result<T, NetError>>,
) -> Result<T, NetError> {
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err(NetError::timed_out(phase, started)),
    }
}

/// "2.5s", "0.3s", "12s": a duration for messages.
fn seconds(d: Duration) -> String {
    let text = format!("{:.3}", d.as_secs_f64());
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
