//! Test fixtures: a certificate authority made at test time, and real servers on 127.0.0.1:0.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use shipwatch::config::Config;
use shipwatch::net::Engine;
use shipwatch::plan::{self, PlanOptions};
use shipwatch::probe::{Finding, Status};
use shipwatch::runner::{self, Outcome};
use time::OffsetDateTime;
use tokio::net::TcpListener;

/// A private CA with one intermediate, created fresh for each test.
pub struct Pki {
    pub root_der: CertificateDer<'static>,
    pub root_pem: String,
    root: Issuer<'static, KeyPair>,
    pub inter_der: CertificateDer<'static>,
    pub inter_pem: String,
    inter: Issuer<'static, KeyPair>,
}

/// A certificate chain and its key, ready for a server.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
}

fn ca_params(name: &str, days: i64) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = OffsetDateTime::now_utc() - time::Duration::days(30);
    p.not_after = OffsetDateTime::now_utc() + time::Duration::days(days);
    p
}

impl Pki {
    pub fn new() -> Pki {
        Pki::build("shipwatch test", 3650)
    }

    /// A second, unrelated CA with its own names.
    pub fn unrelated() -> Pki {
        Pki::build("unrelated", 3650)
    }

    /// A PKI whose intermediate expires in `days` days.
    pub fn with_intermediate_days(days: i64) -> Pki {
        Pki::build("shipwatch test", days)
    }

    fn build(name: &str, days: i64) -> Pki {
        let root_key = KeyPair::generate().expect("key");
        let root_params = ca_params(&format!("{name} root"), 3650);
        let root_cert = root_params.self_signed(&root_key).expect("root");
        let root = Issuer::new(root_params, root_key);
        let inter_key = KeyPair::generate().expect("key");
        let inter_params = ca_params(&format!("{name} intermediate"), days);
        let inter_cert = inter_params
            .signed_by(&inter_key, &root)
            .expect("intermediate");
        Pki {
            root_der: root_cert.der().clone(),
            root_pem: root_cert.pem(),
            root,
            inter_der: inter_cert.der().clone(),
            inter_pem: inter_cert.pem(),
            inter: Issuer::new(inter_params, inter_key),
        }
    }

    /// A leaf for `names`, valid for `days` more days (negative: already expired).
    pub fn leaf(&self, names: &[&str], days: i64) -> Identity {
        self.leaf_with(names, days, |_| {})
    }

    /// A leaf whose parameters `tweak` may change, e.g. to add extensions.
    pub fn leaf_with(
        &self,
        names: &[&str],
        days: i64,
        tweak: impl FnOnce(&mut CertificateParams),
    ) -> Identity {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
        p.distinguished_name.push(DnType::CommonName, names[0]);
        p.not_before = OffsetDateTime::now_utc() - time::Duration::days(60);
        p.not_after = OffsetDateTime::now_utc() + time::Duration::days(days);
        tweak(&mut p);
        let cert = p.signed_by(&key, &self.inter).expect("leaf");
        Identity {
            chain: vec![cert.der().clone(), self.inter_der.clone()],
            key: key.serialize_der(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A leaf for `names` with `days` left, written to `dir` as `STEM.crt` (leaf and intermediate)
    /// and `STEM.key`, as a server outside the test process reads them.
    pub fn write_chain(&self, dir: &std::path::Path, stem: &str, days: i64) -> (PathBuf, PathBuf) {
        let id = self.leaf(&["localhost"], days);
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, format!("{}{}", id.cert_pem, self.inter_pem)).expect("write chain");
        std::fs::write(&key, id.key_pem).expect("write key");
        (cert, key)
    }

    /// Writes the root to a PEM file for `--ca-file`.
    pub fn write_ca(&self, dir: &tempfile::TempDir) -> PathBuf {
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, &self.root_pem).expect("write ca");
        path
    }
}

/// A self-signed leaf, trusted by nobody.
pub fn self_signed(names: &[&str]) -> Identity {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    p.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = p.self_signed(&key).expect("self-signed");
    Identity {
        chain: vec![cert.der().clone()],
        key: key.serialize_der(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// What a test handler sees of a request.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The Host header, or the :authority of an HTTP/2 request.
    pub host: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// How many requests this server had answered before this one.
    pub seq: usize,
}

/// What a test handler answers.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub delay: Duration,
}

impl Resp {
    pub fn new(status: u16, body: impl Into<Bytes>) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn json(status: u16, body: &str) -> Resp {
        Resp::new(status, body.to_string()).header("content-type", "application/json")
    }
    pub fn html(body: &str) -> Resp {
        Resp::new(200, body.to_string()).header("content-type", "text/html; charset=utf-8")
    }
    pub fn redirect(status: u16, to: &str) -> Resp {
        Resp::new(status, "").header("location", to)
    }
    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    /// The headers a well-run production site sends (grade A+).
    pub fn hardened(self) -> Resp {
        self.header("strict-transport-security", "max-age=63072000; includeSubDomains")
            .header("x-frame-options", "DENY")
            .header("x-content-type-options", "nosniff")
            .header(
                "content-security-policy",
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'",
            )
            .header("referrer-policy", "strict-origin-when-cross-origin")
            .header("permissions-policy", "camera=(), geolocation=()")
            .header("cross-origin-resource-policy", "same-origin")
    }
    pub fn delay(mut self, d: Duration) -> Resp {
        self.delay = d;
        self
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

/// A running in-process server; it stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    pub hits: Arc<AtomicUsize>,
    /// Connections accepted.
    pub accepted: Arc<AtomicUsize>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    pub fn url(&self, scheme: &str, host: &str) -> String {
        format!("{scheme}://{host}:{}", self.addr.port())
    }
}

async fn answer(
    handler: Handler,
    hits: Arc<AtomicUsize>,
    req: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let r = Req {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        host: parts
            .uri
            .authority()
            .map(|a| a.to_string())
            .or_else(|| {
                parts
                    .headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_default(),
        headers: parts.headers,
        body,
        seq: hits.fetch_add(1, Ordering::SeqCst),
    };
    let arrived = tokio::time::Instant::now();
    let resp = handler(&r);
    if !resp.delay.is_zero() {
        // The timer wheel has millisecond steps and overshoots; sleep most of the way, then yield
        // until the delay is exact, so latency tests measure the client and not the fixture.
        let until = arrived + resp.delay;
        tokio::time::sleep_until(until - Duration::from_millis(2).min(resp.delay)).await;
        while tokio::time::Instant::now() < until {
            tokio::task::yield_now().await;
        }
    }
    let mut b = http::Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        b = b.header(k, v);
    }
    Ok(b.body(Full::new(resp.body)).expect("response"))
}

/// Serves `handler` over plain HTTP.
pub async fn http_server(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Server {
    serve(Arc::new(handler), None).await
}

/// Serves `handler` over HTTPS with `identity` (HTTP/1.1 and HTTP/2 by ALPN).
pub async fn https_server(
    identity: &Identity,
    handler: impl Fn(&Req) -> Resp + Send + Sync + 'static,
) -> Server {
    serve(Arc::new(handler), Some(tls_config(identity, None))).await
}

/// A rustls server config; `versions` limits the protocol versions offered.
pub fn tls_config(
    identity: &Identity,
    versions: Option<&[&'static rustls::SupportedProtocolVersion]>,
) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(shipwatch::crypto::provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider);
    let builder = match versions {
        Some(v) => builder.with_protocol_versions(v),
        None => builder.with_safe_default_protocol_versions(),
    }
    .expect("versions");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key.clone()));
    let mut config = builder
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), key)
        .expect("server cert");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serves with a given TLS config (or none).
pub async fn serve(handler: Handler, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    serve_on(listener, handler, tls)
}

/// Serves on a listener the test bound itself (say, on the port of a receiver coming back).
pub fn serve_on(
    listener: TcpListener,
    handler: Handler,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Server {
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let accepts = accepted.clone();
    let task = tokio::spawn(async move {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            accepts.fetch_add(1, Ordering::SeqCst);
            // Like production servers: without it, Nagle and delayed ACKs add 40 ms to small responses.
            let _ = tcp.set_nodelay(true);
            let (handler, hits, acceptor) = (handler.clone(), counter.clone(), acceptor.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| answer(handler.clone(), hits.clone(), req));
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(a) => {
                        if let Ok(stream) = a.accept(tcp).await {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                }
            });
        }
    });
    Server {
        addr,
        task,
        hits,
        accepted,
    }
}

/// A raw TCP server: `behave` gets each accepted socket and does whatever a hostile target does.
pub async fn raw_server<F, Fut>(behave: F) -> Server
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let behave = Arc::new(behave);
    let accepted = Arc::new(AtomicUsize::new(0));
    let accepts = accepted.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            accepts.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(behave(tcp));
        }
    });
    Server {
        addr,
        task,
        hits: Arc::new(AtomicUsize::new(0)),
        accepted,
    }
}

/// Loads `toml`, plans it with `ca` trusted, runs it once and returns the outcomes by check order.
pub async fn run_toml(toml: &str, ca: Option<PathBuf>) -> Vec<Outcome> {
    run_toml_with(
        toml,
        PlanOptions {
            ca_file: ca,
            ..PlanOptions::default()
        },
    )
    .await
}

pub async fn run_toml_with(toml: &str, opts: PlanOptions<'_>) -> Vec<Outcome> {
    let config = Config::parse("test.toml", toml).unwrap_or_else(|e| panic!("config: {e}"));
    let plan = plan::build(&config, &opts).unwrap_or_else(|e| panic!("plan: {e}"));
    let engine = Engine::new(&plan.engine).expect("engine");
    runner::run_once(&plan, &engine).await
}

/// The finding with `id`, or a panic listing what there was.
pub fn finding<'a>(o: &'a Outcome, id: &str) -> &'a Finding {
    o.findings.iter().find(|f| f.id == id).unwrap_or_else(|| {
        let ids: Vec<&str> = o.findings.iter().map(|f| f.id.as_str()).collect();
        panic!(
            "no finding {id} in {} (have {ids:?}; error {:?})",
            o.name, o.error
        )
    })
}

/// Asserts a finding's status and that its message or actual contains `needle`.
pub fn assert_finding(o: &Outcome, id: &str, status: Status, needle: &str) {
    let f = finding(o, id);
    let text = format!("{} | {}", f.message, f.actual.as_deref().unwrap_or(""));
    assert_eq!(f.status, status, "{id}: {text}");
    assert!(
        text.contains(needle),
        "{id}: expected {needle:?} in {text:?}"
    );
}

/// Authority Information Access naming an OCSP responder at `url` (RFC 5280 §4.2.2.1), DER-encoded by hand.
pub fn ocsp_aia(url: &str) -> rcgen::CustomExtension {
    let ocsp_oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let mut desc = ocsp_oid.to_vec();
    desc.push(0x86); // [6] uniformResourceIdentifier
    desc.push(url.len() as u8);
    desc.extend_from_slice(url.as_bytes());
    let mut access = vec![0x30, desc.len() as u8];
    access.extend(desc);
    let mut seq = vec![0x30, access.len() as u8];
    seq.extend(access);
    rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], seq)
}

/// The TLS feature extension asking for status_request: "must-staple" (RFC 7633).
pub fn must_staple() -> rcgen::CustomExtension {
    rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 24],
        vec![0x30, 0x03, 0x02, 0x01, 0x05],
    )
}

/// A server config that staples `ocsp` to every handshake.
pub fn tls_config_with_ocsp(identity: &Identity, ocsp: Vec<u8>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(shipwatch::crypto::provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key.clone()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert_with_ocsp(identity.chain.clone(), key, ocsp)
        .expect("server cert");
    Arc::new(config)
}

/// Starts `openssl s_server` on a free loopback port with `args`, waits until it listens, and
/// returns the port and the child (killed on drop).
pub async fn openssl_server(
    cert: &std::path::Path,
    key: &std::path::Path,
    args: &[&str],
) -> (u16, tokio::process::Child) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl s_server");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (port, child)
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The built agent on `cfg`, quiet, killed when dropped.
pub fn spawn_quiet_agent(cfg: &std::path::Path) -> tokio::process::Child {
    // The examples share this file, and only test targets know where the binary is.
    let bin = option_env!("CARGO_BIN_EXE_shipwatch").unwrap_or("shipwatch");
    tokio::process::Command::new(bin)
        .args(["agent", "-c"])
        .arg(cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the agent")
}

/// A GET within 5 s: status and body, or `None` when nothing answered.
pub async fn get(url: &str) -> Option<(u16, String)> {
    get_bearer(url, None).await
}

/// A GET within 5 s with `Authorization: Bearer TOKEN` when a token is given.
pub async fn get_bearer(url: &str, token: Option<&str>) -> Option<(u16, String)> {
    let engine = shipwatch::net::Engine::new(&Default::default()).ok()?;
    let mut req = shipwatch::net::Request::get(url::Url::parse(url).ok()?);
    if let Some(t) = token {
        req.headers
            .push(("Authorization".into(), format!("Bearer {t}")));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let r = engine
        .send(&req, &Default::default(), deadline)
        .await
        .ok()?;
    Some((r.status, String::from_utf8_lossy(&r.body).into_owned()))
}

/// Starts `tests/support/SCRIPT` with `args` and waits until it prints "ready" (at most 30 s);
/// the server is killed when the child is dropped.
pub async fn support_server(
    script: &str,
    args: &[impl AsRef<std::ffi::OsStr>],
    what: &str,
) -> tokio::process::Child {
    use tokio::io::AsyncBufReadExt;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let mut child = tokio::process::Command::new("python3")
        .arg(path)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("python3 for {what}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    assert!(
        matches!(ready, Ok(Ok(Some(ref l))) if l == "ready"),
        "{what} did not start (scripts/test.sh installs it): {ready:?}"
    );
    child
}

/// Waits until something accepts TCP connections on `port` (at most 20 s).
pub async fn wait_for_port(port: u16, what: &str) {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on port {port}");
}

/// The outcome's `details` as JSON, as the report writes them.
pub fn details(o: &Outcome) -> serde_json::Value {
    o.details.json()
}

/// Renders `outcomes` in every report format: the JSON report must follow the schema, and the
/// text, Markdown and JUnit reports must name every check and every failed finding.
pub fn assert_every_report_format(outcomes: &[Outcome]) {
    use shipwatch::report::{Format, Report};
    let report = Report {
        environment: "test".into(),
        target: String::new(),
        started_at: OffsetDateTime::now_utc(),
        duration: Duration::from_millis(1),
        checks: outcomes.to_vec(),
    };
    let json = shipwatch::report::to_json(&report);
    let schema_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/report.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema")).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}\n{json:#}");
    for format in [Format::Text, Format::Markdown, Format::Junit] {
        let mut out = Vec::new();
        report.write(format, false, &mut out).expect("render");
        let text = String::from_utf8(out).expect("UTF-8");
        for o in outcomes {
            assert!(text.contains(&o.name), "{format:?} lacks {}", o.name);
            for f in o.findings.iter().filter(|f| f.status == Status::Fail) {
                assert!(
                    text.contains(&f.id),
                    "{format:?} lacks {} of {}",
                    f.id,
                    o.name
                );
            }
        }
    }
}

/// dnsmasq serving a small zone on `port` (UDP and TCP), answering nothing it does not own:
/// names under shipwatch.test it does not know are NXDOMAIN, others are REFUSED.
pub struct Dnsmasq {
    pub port: u16,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

pub async fn dnsmasq() -> Dnsmasq {
    let dir = tempfile::tempdir().unwrap();
    // 2,000 addresses for one name: far more than a UDP answer holds, so it comes over TCP.
    let hosts: String = (0..2000)
        .map(|i| format!("10.1.{}.{} big.shipwatch.test\n", i / 250, i % 250 + 1))
        .collect();
    let hosts_file = dir.path().join("big.hosts");
    std::fs::write(&hosts_file, hosts).unwrap();
    let port = free_port();
    let child = tokio::process::Command::new("dnsmasq")
        .args([
            "-k",
            "-C",
            "/dev/null",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
        ])
        .args([
            "--no-resolv",
            "--no-hosts",
            "--user=root",
            "--pid-file=",
            "--local-ttl=300",
        ])
        .arg(format!("--port={port}"))
        .arg("--local=/shipwatch.test/")
        .arg("--host-record=api.shipwatch.test,10.0.3.7")
        .arg("--txt-record=shipwatch.test,v=spf1 -all")
        .arg("--mx-host=shipwatch.test,mail.shipwatch.test,10")
        .arg("--cname=www.shipwatch.test,api.shipwatch.test")
        .arg("--srv-host=_imap._tcp.shipwatch.test,mail.shipwatch.test,143,0,5")
        .arg(format!("--addn-hosts={}", hosts_file.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("dnsmasq (scripts/test.sh installs dnsmasq-base)");
    wait_for_port(port, "dnsmasq").await;
    wait_for_udp_dns(port).await;
    Dnsmasq {
        port,
        _child: child,
        _dir: dir,
    }
}

/// Runs `toml` once and asserts it finished within 8 s: hostile servers must not hold a check
/// past its own timeout.
pub async fn run_bounded(toml: &str) -> Vec<Outcome> {
    let started = std::time::Instant::now();
    let out = run_toml(toml, None).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "the run took {took:?}");
    out
}

/// A private CA and a localhost leaf with `days` left, as files for a server in another process.
pub struct TlsFiles {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn tls_files(days: i64) -> TlsFiles {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new();
    let ca = pki.write_ca(&dir);
    let (cert, key) = pki.write_chain(dir.path(), "server", days);
    TlsFiles { dir, ca, cert, key }
}

/// A check of a server with a private CA's certificate passes when the CA is given, and without
/// it errors with the TLS reason (nothing is sent over the untrusted connection).
pub async fn assert_trusted_only_with(toml: &str, ca: PathBuf) {
    let trusted = run_toml(toml, Some(ca)).await;
    let o = &trusted[0];
    assert_eq!(o.status, Status::Pass, "{:?} {:?}", o.findings, o.error);
    let untrusted = run_toml(toml, None).await;
    let e = untrusted[0]
        .error
        .as_ref()
        .expect("an untrusted certificate");
    assert_eq!(e.kind, "tls");
    assert!(e.message.contains("not trusted"), "{}", e.message);
}

/// A YAML file (every document of it) as JSON, read with PyYAML.
pub fn yaml_to_json(path: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .args(["-c", "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))"])
        .arg(path)
        .output()
        .expect("python3 with PyYAML (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{} does not parse: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The Alertmanager binary: Debian names it prometheus-alertmanager.
pub fn alertmanager_binary() -> &'static str {
    ["prometheus-alertmanager", "alertmanager"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok()
        })
        .expect("Alertmanager is installed (scripts/test.sh installs prometheus-alertmanager)")
}

/// Compares `actual` with `tests/golden/NAME`; `SHIPWATCH_BLESS=1` writes it instead.
pub fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("SHIPWATCH_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden file {name}; run with SHIPWATCH_BLESS=1"));
    assert_eq!(actual, want, "golden {name} differs");
}

/// Waits until a DNS server answers over UDP on `port` (at most 10 s): its TCP listener can be
/// up a moment before its UDP socket.
pub async fn wait_for_udp_dns(port: u16) {
    // A query for the root's NS records; any answer, even REFUSED, means the socket is up.
    const QUERY: [u8; 17] = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut buf = [0u8; 512];
    for _ in 0..100 {
        let _ = socket.send_to(&QUERY, ("127.0.0.1", port)).await;
        let reply = tokio::time::timeout(Duration::from_millis(100), socket.recv(&mut buf)).await;
        if matches!(reply, Ok(Ok(n)) if n >= 12) {
            return;
        }
    }
    panic!("nothing answers DNS over UDP on port {port}");
}
