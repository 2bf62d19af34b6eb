//! One connection: TCP, optional TLS, then a hyper HTTP/1.1 or HTTP/2 client over it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use url::Url;

use super::tls::TlsInfo;
use super::{
    Engine, NetError, Overrides, Phase, Protocol, Request, Response, Timings, dns, within,
};

const USER_AGENT: &str = concat!("shipwatch/", env!("CARGO_PKG_VERSION"));

/// Stops the task that drives a connection when the connection is dropped, so nothing outlives a check.
pub(super) struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// An open connection. Requests sent on it after the first report zero set-up time.
pub struct Conn {
    sender: Sender,
    /// Stops the connection's task once the last holder is dropped (an [`H2`] takes it over).
    _driver: Arc<AbortOnDrop>,
    tls: Option<Arc<TlsInfo>>,
    setup: Timings,
    remote: SocketAddr,
    authority: String,
    fresh: bool,
}

impl Conn {
    pub fn tls(&self) -> Option<&Arc<TlsInfo>> {
        self.tls.as_ref()
    }

    /// True once a request has been sent on this connection.
    pub(crate) fn is_reused(&self) -> bool {
        !self.fresh
    }

    /// True when the server (or the connection task) has closed the connection.
    pub(crate) fn is_closed(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    /// Sends one request and reads its body up to the cap, all before `deadline`.
    pub async fn send(&mut self, req: &Request, deadline: Instant) -> Result<Response, NetError> {
        let started = Instant::now();
        let request = self.build(req)?;
        let cap = if req.discard_body {
            None
        } else {
            Some(req.max_body)
        };
        // One timer for the whole exchange (a latency run sends tens of thousands of requests a
        // second); the phase it ran out in is known from whether the head had arrived.
        let got_head = AtomicBool::new(false);
        let exchange = async {
            let head = ask(&mut self.sender, request).await?;
            got_head.store(true, Ordering::Relaxed);
            let ttfb = started.elapsed();
            let (parts, body) = head.into_parts();
            let (body, truncated) = read_capped(body, cap).await?;
            Ok::<_, NetError>((parts, body, truncated, ttfb))
        };
        let (parts, body, truncated, ttfb) = match tokio::time::timeout_at(deadline, exchange).await
        {
            Ok(r) => r?,
            Err(_) if got_head.load(Ordering::Relaxed) => {
                return Err(NetError::timed_out(Phase::Transfer, started));
            }
            Err(_) => return Err(NetError::timed_out(Phase::Ttfb, started)),
        };
        let mut timings = if self.fresh {
            self.setup
        } else {
            Timings::default()
        };
        self.fresh = false;
        timings.ttfb = ttfb;
        timings.transfer = started.elapsed() - ttfb;
        timings.total = timings.dns + timings.connect + timings.tls + started.elapsed();
        Ok(Response {
            url: req.url.clone(),
            status: parts.status.as_u16(),
            version: parts.version,
            headers: parts.headers,
            body,
            truncated,
            timings,
            tls: self.tls.clone(),
            remote: self.remote,
        })
    }

    fn build(&self, req: &Request) -> Result<http::Request<Full<Bytes>>, NetError> {
        let host = match self.sender {
            Sender::H2(_) => None,
            Sender::H1(_) => Some(self.authority.as_str()),
        };
        request_for(req, host)
    }
}

/// The request as hyper sends it over HTTP/2: the whole URL (without credentials) as its
/// target, no Host header.
pub(crate) fn h2_request(req: &Request) -> Result<http::Request<Full<Bytes>>, NetError> {
    request_for(req, None)
}

/// The request for hyper: over HTTP/1.1 (`host` given) the path and query with a Host header,
/// over HTTP/2 the URL without its credentials.
fn request_for(req: &Request, host: Option<&str>) -> Result<http::Request<Full<Bytes>>, NetError> {
    let mut b = http::Request::builder().method(req.method.clone());
    b = match host {
        None => {
            let mut target = req.url.clone();
            let _ = target.set_username("");
            let _ = target.set_password(None);
            b.uri(target.as_str())
        }
        Some(host) => {
            let path = &req.url[url::Position::BeforePath..url::Position::AfterQuery];
            b.uri(if path.is_empty() { "/" } else { path })
                .header(http::header::HOST, host)
        }
    };
    for (k, v) in header_lines(req) {
        b = b.header(k, v.as_ref());
    }
    b.body(Full::new(req.body.clone()))
        .map_err(|e| NetError::Protocol(format!("invalid request to {}: {e}", req.url)))
}

/// The headers a request carries besides Host, in order: User-Agent and Accept unless
/// configured, Basic credentials from the URL unless an Authorization header is configured,
/// then the configured headers.
pub(super) fn header_lines(req: &Request) -> Vec<(&str, std::borrow::Cow<'_, str>)> {
    let has = |name: &str| {
        req.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    let mut lines = Vec::with_capacity(req.headers.len() + 3);
    if !has("user-agent") {
        lines.push(("user-agent", USER_AGENT.into()));
    }
    if !has("accept") {
        lines.push(("accept", "*/*".into()));
    }
    // Credentials in the URL are sent as Basic auth, as curl sends them. A redirect to another
    // origin resolves to a URL without them, so they stay with the first origin.
    if !has("authorization") && (!req.url.username().is_empty() || req.url.password().is_some()) {
        let decode = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
        let mut creds = decode(req.url.username());
        creds.push(b':');
        creds.extend(decode(req.url.password().unwrap_or("")));
        let basic = format!("Basic {}", crate::assert::base64(&creds));
        lines.push(("authorization", basic.into()));
    }
    for (k, v) in &req.headers {
        lines.push((k.as_str(), v.as_str().into()));
    }
    lines
}

/// Sends a request and waits for its response head.
async fn ask(
    sender: &mut Sender,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, NetError> {
    let resp = match sender {
        Sender::H1(s) => {
            s.ready()
                .await
                .map_err(|e| NetError::Closed(format!("the connection is not usable: {e}")))?;
            s.send_request(request).await
        }
        Sender::H2(s) => {
            s.ready()
                .await
                .map_err(|e| NetError::Closed(format!("the connection is not usable: {e}")))?;
            s.send_request(request).await
        }
    };
    resp.map_err(|e| {
        if let Some(io) = reset(&e) {
            NetError::Closed(format!(
                "the server reset the connection before answering ({io})"
            ))
        } else if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
            NetError::Closed(format!("the connection closed before a response: {e}"))
        } else {
            protocol("no valid HTTP response", &e)
        }
    })
}
/// Reads the body up to `cap` bytes; with no cap, reads it all and keeps nothing.
async fn read_capped(
    mut body: hyper::body::Incoming,
    cap: Option<u64>,
) -> Result<(Bytes, bool), NetError> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| protocol("body cut short", &e))?;
        let Some(cap) = cap else { continue };
        if let Ok(data) = frame.into_data() {
            let room = cap.saturating_sub(buf.len() as u64) as usize;
            if data.len() > room {
                buf.extend_from_slice(&data[..room]);
                return Ok((buf.freeze(), true));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok((buf.freeze(), false))
}

/// hyper's errors are terse; the source chain holds the useful part ("connection reset by peer").
pub(super) fn protocol(what: &str, e: &hyper::Error) -> NetError {
    let mut msg = format!("{what}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    NetError::Protocol(msg)
}

fn host_and_port(url: &Url) -> Result<(String, u16), NetError> {
    let host = url
        .host_str()
        .ok_or_else(|| NetError::Protocol(format!("URL has no host: {url}")))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| NetError::Protocol(format!("URL has no port: {url}")))?;
    Ok((host.to_string(), port))
}

/// A connection up to where HTTP starts: TCP, and TLS for https.
pub(crate) struct Link {
    pub(crate) io: Io,
    pub(crate) tls: Option<Arc<TlsInfo>>,
    pub(crate) setup: Timings,
    pub(crate) remote: SocketAddr,
    /// `host[:port]` as the Host header carries it.
    pub(crate) authority: String,
    /// The connection speaks HTTP/2: chosen by ALPN, or by prior knowledge (h2c) when asked for.
    pub(crate) h2: bool,
}

/// A plain or TLS byte stream.
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// `host[:port]`, the port only when the URL names one.
pub(super) fn authority(url: &Url) -> Result<String, NetError> {
    let (host, _) = host_and_port(url)?;
    Ok(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// Opens TCP, and TLS for https, offering by ALPN what `protocol` allows.
pub(super) async fn link(
    engine: &Engine,
    url: &Url,
    overrides: &Overrides,
    deadline: Instant,
    protocol: Protocol,
) -> Result<Link, NetError> {
    let (host, port) = host_and_port(url)?;
    let authority = authority(url)?;
    let (tcp, mut setup) = connect_tcp(engine, &host, port, overrides, deadline).await?;
    let remote = tcp
        .peer_addr()
        .map_err(|e| NetError::Connect(format!("connection to {host}:{port} lost: {e}")))?;
    let (io, tls) = match url.scheme() {
        "http" => (Io::Plain(tcp), None),
        "https" => {
            let alpn: &[&[u8]] = match protocol {
                Protocol::Auto => &[b"h2", b"http/1.1"],
                Protocol::Http1 => &[b"http/1.1"],
                Protocol::Http2 => &[b"h2"],
            };
            let started = Instant::now();
            let (stream, info) = within(
                deadline,
                Phase::Tls,
                started,
                tls_connect(engine, tcp, &host, alpn),
            )
            .await?;
            setup.tls = started.elapsed();
            (Io::Tls(Box::new(stream)), Some(Arc::new(info)))
        }
        other => {
            return Err(NetError::Protocol(format!(
                "unsupported URL scheme \"{other}\" in {url}"
            )));
        }
    };
    let h2 = match &tls {
        Some(info) => info.alpn.as_deref() == Some("h2"),
        None => protocol == Protocol::Http2,
    };
    if protocol == Protocol::Http2 && !h2 {
        let chose = tls
            .as_ref()
            .and_then(|t| t.alpn.as_deref())
            .unwrap_or("none");
        return Err(NetError::Protocol(format!(
            "{host}:{port} does not offer HTTP/2 over TLS: asked for ALPN h2, it chose {chose}"
        )));
    }
    Ok(Link {
        io,
        tls,
        setup,
        remote,
        authority,
        h2,
    })
}

pub(super) async fn open(
    engine: &Engine,
    url: &Url,
    overrides: &Overrides,
    deadline: Instant,
    protocol: Protocol,
) -> Result<Conn, NetError> {
    let link = link(engine, url, overrides, deadline, protocol).await?;
    Conn::over(link, deadline).await
}

impl Conn {
    /// Starts hyper's HTTP/1.1 or HTTP/2 client over an open link.
    pub(crate) async fn over(link: Link, deadline: Instant) -> Result<Conn, NetError> {
        let (sender, driver) = if link.h2 {
            start_h2(link.io, deadline).await?
        } else {
            start_h1(link.io, deadline).await?
        };
        Ok(Conn {
            sender,
            _driver: driver,
            tls: link.tls,
            setup: link.setup,
            remote: link.remote,
            authority: link.authority,
            fresh: true,
        })
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Io::Tls(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// An HTTP/2 connection for a caller that needs what [`Conn::send`] hides, such as trailers.
pub struct H2 {
    pub sender: http2::SendRequest<Full<Bytes>>,
    _driver: Arc<AbortOnDrop>,
    pub tls: Option<Arc<TlsInfo>>,
    pub setup: Timings,
}

/// Opens HTTP/2 to `url`: over TLS with ALPN `h2`, or with prior knowledge (h2c) for http://.
pub(super) async fn open_h2(
    engine: &Engine,
    url: &Url,
    overrides: &Overrides,
    deadline: Instant,
) -> Result<H2, NetError> {
    let conn = open(engine, url, overrides, deadline, Protocol::Http2).await?;
    match conn.sender {
        Sender::H2(sender) => Ok(H2 {
            sender,
            _driver: conn._driver,
            tls: conn.tls,
            setup: conn.setup,
        }),
        Sender::H1(_) => Err(NetError::Protocol(format!(
            "{url} answered in HTTP/1.1 to a connection opened for HTTP/2"
        ))),
    }
}

async fn h2_handshake<S>(
    io: S,
    deadline: Instant,
) -> Result<(http2::SendRequest<Full<Bytes>>, AbortOnDrop), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let handshake = async {
        http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|e| protocol("HTTP/2 set-up failed", &e))
    };
    let (sender, conn) = within(deadline, Phase::Ttfb, started, handshake).await?;
    Ok((sender, drive(conn, deadline)))
}

pub(super) async fn handshake_only(
    engine: &Engine,
    host: &str,
    port: u16,
    server_name: &str,
    overrides: &Overrides,
    deadline: Instant,
) -> Result<(Arc<TlsInfo>, Timings), NetError> {
    let (tcp, mut timings) = connect_tcp(engine, host, port, overrides, deadline).await?;
    let started = Instant::now();
    let alpn: &[&[u8]] = &[b"h2", b"http/1.1"];
    let (_stream, info) = within(
        deadline,
        Phase::Tls,
        started,
        tls_connect(engine, tcp, server_name, alpn),
    )
    .await?;
    timings.tls = started.elapsed();
    timings.total = timings.dns + timings.connect + timings.tls;
    Ok((Arc::new(info), timings))
}

pub(super) async fn connect_tcp(
    engine: &Engine,
    host: &str,
    port: u16,
    overrides: &Overrides,
    deadline: Instant,
) -> Result<(TcpStream, Timings), NetError> {
    let mut timings = Timings::default();
    let started = Instant::now();
    let addrs = within(
        deadline,
        Phase::Dns,
        started,
        dns::resolve(
            engine.resolver.as_ref().map_err(Clone::clone),
            host,
            port,
            overrides,
        ),
    )
    .await?;
    timings.dns = started.elapsed();
    let started = Instant::now();
    let mut last = None;
    for addr in addrs {
        let attempt = within(deadline, Phase::Connect, started, async {
            TcpStream::connect(addr)
                .await
                .map_err(|e| NetError::Connect(format!("cannot connect to {addr}: {e}")))
        })
        .await;
        match attempt {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                timings.connect = started.elapsed();
                return Ok((tcp, timings));
            }
            Err(e @ NetError::Timeout { .. }) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| NetError::Dns(format!("no address for {host}"))))
}

pub(super) async fn tls_connect<S>(
    engine: &Engine,
    tcp: S,
    host: &str,
    alpn: &[&[u8]],
) -> Result<(tokio_rustls::client::TlsStream<S>, TlsInfo), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (config, verifier) = engine.tls.config(alpn);
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .map_err(|_| NetError::Tls(format!("\"{host}\" is not a valid TLS server name")))?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            NetError::Tls(format!(
                "TLS handshake with {host} failed: {}",
                handshake_words(&e)
            ))
        })?;
    let presented = verifier.take().ok_or_else(|| {
        NetError::Tls(format!(
            "TLS handshake with {host} presented no certificate"
        ))
    })?;
    let c = stream.get_ref().1;
    let info = TlsInfo {
        version: c
            .protocol_version()
            .map_or("unknown".into(), |v| version_name(v).to_string()),
        cipher: c
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown")
            .to_string(),
        alpn: c
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        chain: presented.chain,
        not_after: presented.not_after,
        ocsp: presented.ocsp,
        trust: presented.trust,
        hostname: presented.hostname,
    };
    Ok((stream, info))
}

/// Why a handshake failed, in words an operator can act on.
fn handshake_words(e: &std::io::Error) -> String {
    use rustls::{AlertDescription as A, Error as E, PeerIncompatible as P, PeerMisbehaved as M};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<E>()) else {
        return e.to_string();
    };
    match tls {
        E::AlertReceived(A::ProtocolVersion) | E::PeerIncompatible(P::ServerDoesNotSupportTls12Or13) => {
            "the server offers neither TLS 1.2 nor TLS 1.3 (it answered protocol_version); shipwatch requires TLS ≥ 1.2".into()
        }
        E::AlertReceived(A::HandshakeFailure) => {
            "the server refused the handshake (handshake_failure): no cipher suite, key exchange or signature algorithm in common".into()
        }
        E::AlertReceived(A::NoApplicationProtocol) => {
            "the server does not offer HTTP/2 or any other protocol asked for by ALPN (it answered no_application_protocol)".into()
        }
        E::AlertReceived(A::UnrecognisedName) => {
            "the server does not know this host name (unrecognized_name): check the SNI name".into()
        }
        E::AlertReceived(other) => format!("the server ended the handshake with the alert {}", alert_name(*other)),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the port does not speak TLS: its answer is not a TLS record (it may speak plain HTTP)".into()
        }
        E::PeerIncompatible(P::NoCipherSuitesInCommon) => "no cipher suite in common with the server".into(),
        E::PeerIncompatible(P::NoKxGroupsInCommon) => "no key exchange group in common with the server".into(),
        E::PeerIncompatible(P::NoSignatureSchemesInCommon) => {
            "no signature algorithm in common with the server's certificate".into()
        }
        E::PeerMisbehaved(M::SelectedUnofferedCipherSuite) => {
            "the server chose a cipher suite shipwatch did not offer".into()
        }
        other => other.to_string(),
    }
}

/// The alert's name as TLS specifications spell it.
fn alert_name(a: rustls::AlertDescription) -> String {
    let debug = format!("{a:?}");
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn version_name(v: rustls::ProtocolVersion) -> &'static str {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1",
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1.0",
        _ => "unknown",
    }
}

async fn start_h1<S>(io: S, deadline: Instant) -> Result<(Sender, Arc<AbortOnDrop>), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| protocol("HTTP/1.1 set-up failed", &e))?;
    Ok((Sender::H1(sender), Arc::new(drive(conn, deadline))))
}

async fn start_h2<S>(io: S, deadline: Instant) -> Result<(Sender, Arc<AbortOnDrop>), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, driver) = h2_handshake(io, deadline).await?;
    Ok((Sender::H2(sender), Arc::new(driver)))
}

/// The connection task also stops at the deadline, in case the connection is leaked.
fn drive<F>(conn: F, deadline: Instant) -> AbortOnDrop
where
    F: std::future::Future + Send + 'static,
{
    AbortOnDrop(tokio::spawn(async move {
        let _ = tokio::time::timeout_at(deadline + std::time::Duration::from_secs(1), conn).await;
    }))
}

/// True when the peer reset or aborted the connection: a server that closed an idle connection
/// as the request was on its way answers the request with a reset rather than an end of stream.
fn reset(e: &hyper::Error) -> Option<&std::io::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            )
            .then_some(io);
        }
        source = err.source();
    }
    None
}
