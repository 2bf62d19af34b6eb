//! `kind = "tcp"`: a TCP connection, what the server says first (after an optional `send`)
//! judged by assertions, and with `starttls` the protocol's upgrade to TLS followed by every
//! `tls.*` finding of the `tls` kind on the upgraded connection.

mod starttls;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::assert::{Assertion, Context, Query, Subject};
use crate::check::build::{Build, split_host_port};
use crate::check::read::{read_expect, required};
use crate::check::tls::{self, TlsProbe, TlsRules};
use crate::doc::{Diagnostics, Spanned, Table};
use crate::net::{NetError, Timings};
use crate::outcome::{Details, ProbeError, TcpDetails};

use super::wire::Wire;
use super::{Ctx, Finding, Probed, Status, judge_assertions};
pub use starttls::Starttls;

/// The most bytes of a banner kept and judged.
const MAX_BANNER: usize = 4096;

/// A TCP endpoint, what to send it and what its answer must satisfy.
#[derive(Debug, Clone)]
pub struct TcpProbe {
    pub host: String,
    pub port: u16,
    pub send: Option<Vec<u8>>,
    pub starttls: Option<Starttls>,
    /// The certificate rules after STARTTLS (its host and port are this check's).
    pub tls: TlsProbe,
    pub expect: Vec<Assertion>,
}

/// What one connection produced so far.
struct Run {
    findings: Vec<Finding>,
    details: TcpDetails,
    timings: Timings,
}

impl TcpProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let started = Instant::now();
        let connect = ctx
            .engine
            .connect(&self.host, self.port, ctx.overrides, ctx.deadline);
        let (tcp, timings) = match connect.await {
            Ok(c) => c,
            Err(e @ (NetError::Connect(_) | NetError::Timeout { .. })) => {
                return self.unreachable(&e);
            }
            Err(e) => return Probed::failed(e),
        };
        let remote = tcp.peer_addr().map_or_else(
            |_| format!("{}:{}", self.host, self.port),
            |a| a.to_string(),
        );
        let connected = Finding::new(
            "tcp.connect",
            Status::Pass,
            format!(
                "connected to {remote} in {}ms",
                crate::units::ms(timings.connect)
            ),
        )
        .with_values("a TCP connection", format!("connected to {remote}"));
        let mut run = Run {
            findings: vec![connected],
            details: TcpDetails {
                remote,
                ..TcpDetails::default()
            },
            timings,
        };
        let mut wire = Wire::new(tcp, ctx.deadline);
        let error = match self.starttls {
            Some(proto) => self.upgrade(proto, wire, ctx, &mut run).await.err(),
            None => self.exchange(&mut wire, &mut run).await.err(),
        };
        run.timings.total = started.elapsed();
        self.judge(run, error)
    }

    /// A connection refused or unanswered: the one thing a `tcp` check is for, so a finding.
    fn unreachable(&self, e: &NetError) -> Probed {
        let finding = Finding::new(
            "tcp.connect",
            Status::Fail,
            format!("cannot connect to {}:{}: {e}", self.host, self.port),
        )
        .with_values("a TCP connection", e.to_string());
        Probed {
            findings: vec![finding],
            ..Probed::default()
        }
    }

    /// Sends `send`, then reads the banner when something will judge it.
    async fn exchange(&self, wire: &mut Wire<TcpStream>, run: &mut Run) -> Result<(), ProbeError> {
        if let Some(bytes) = &self.send {
            wire.send(bytes).await.map_err(|e| e.during("sending"))?;
        }
        let wanted = self.send.is_some()
            || self
                .expect
                .iter()
                .any(|a| matches!(a.query, Query::Fact("banner")));
        if wanted {
            let (banner, cut) = wire
                .banner(MAX_BANNER)
                .await
                .map_err(|e| e.during("waiting for the banner"))?;
            run.details.banner = Some(banner);
            run.details.banner_truncated = cut;
        }
        Ok(())
    }

    /// STARTTLS, then the TLS handshake judged like a `tls` check's.
    async fn upgrade(
        &self,
        proto: Starttls,
        mut wire: Wire<TcpStream>,
        ctx: &Ctx<'_>,
        run: &mut Run,
    ) -> Result<(), ProbeError> {
        run.details.starttls = Some(proto.name().to_string());
        let expected = format!("{} STARTTLS, then a TLS handshake", proto.name());
        let refused = |message: String| {
            Finding::new("tcp.starttls", Status::Fail, message.clone())
                .with_values(expected.clone(), message)
        };
        match starttls::negotiate(proto, &mut wire).await {
            Ok(greeting) => run.details.banner = greeting,
            Err(r) if r.timeout => {
                return Err(ProbeError {
                    kind: "timeout",
                    message: r.message,
                });
            }
            Err(r) => {
                run.findings.push(refused(r.message));
                return Ok(());
            }
        }
        let name = &self.tls.server_name;
        let (_stream, info, took) = match ctx.engine.upgrade(wire.io, name, &[], ctx.deadline).await
        {
            Ok(done) => done,
            Err(NetError::Tls(why)) => {
                let msg = format!("the server agreed to STARTTLS, then {why}");
                run.findings.push(refused(msg));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        run.timings.tls = took;
        run.findings.push(
            Finding::new(
                "tcp.starttls",
                Status::Pass,
                format!(
                    "upgraded to {} with {} STARTTLS",
                    info.version,
                    proto.name()
                ),
            )
            .with_values(expected, info.version.clone()),
        );
        let judged = self.tls.judge(&info, false);
        run.findings.extend(judged.findings);
        run.details.tls = judged.details.tls().cloned();
        judged.error.map_or(Ok(()), Err)
    }

    fn judge(&self, mut run: Run, error: Option<ProbeError>) -> Probed {
        let mut subject = Subject {
            time: Some(run.timings.total),
            ..Subject::default()
        };
        if let Some(banner) = &run.details.banner {
            subject.facts.push(("banner", banner.clone().into()));
        }
        if error.is_none() {
            let asserted = judge_assertions(&subject, &self.expect, "", "tcp.assert");
            run.findings.extend(asserted);
        }
        Probed {
            findings: run.findings,
            timings: Some(run.timings),
            error,
            details: Details::Tcp(Box::new(run.details)),
            redact: Vec::new(),
        }
    }
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "tcp"` check takes besides the common ones; the last four are the `tls`
/// kind's rules for the certificate after STARTTLS ([`tls::read_rules`]).
pub(crate) const KEYS: &[&str] = &[
    "host",
    "starttls",
    "send",
    "expect",
    "server_name",
    "warn_days",
    "fail_days",
    "min_version",
];

/// `kind = "tcp"`: an endpoint, an optional exchange and STARTTLS.
#[derive(Debug, Clone)]
pub struct TcpSpec {
    pub host: Spanned<String>,
    pub starttls: Option<Starttls>,
    pub send: Option<Spanned<String>>,
    pub expect: Vec<Spanned<String>>,
    pub rules: TlsRules,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<TcpSpec> {
    let host = required(t, "host", diags);
    let starttls = match t.str("starttls", diags) {
        None => None,
        Some(v) if v.value == "none" => None,
        Some(v) => Starttls::from_name(&v.value).or_else(|| {
            let names = Starttls::NAMES.join(", ");
            let msg = format!("starttls \"{}\" is not one of {names} or none", v.value);
            diags.error(v.span, msg);
            None
        }),
    };
    let send = t.str("send", diags);
    if let (Some(s), Some(p)) = (&send, starttls) {
        let msg = format!(
            "`send` cannot be combined with starttls = \"{}\": the upgrade speaks the protocol itself",
            p.name()
        );
        diags.error(s.span.clone(), msg);
    }
    let expect = read_expect(t, Context::Tcp, diags);
    let rules = tls::read_rules(t, diags);
    Some(TcpSpec {
        host: host?,
        starttls,
        send,
        expect,
        rules,
    })
}

/// The job of a `kind = "tcp"` check, its strings interpolated.
pub(crate) fn build(spec: &TcpSpec, b: &mut Build<'_>) -> Option<TcpProbe> {
    let host = b.text(&spec.host);
    // Unlike a `tls` check's, the port is required: no port is the obvious one for TCP.
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    let Some((name, port)) = split_host_port(&host).filter(|_| has_port) else {
        b.error(
            spec.host.span.clone(),
            format!("host \"{host}\" must be HOST:PORT"),
        );
        return None;
    };
    let send = spec.send.as_ref().map(|s| b.text(s).into_bytes());
    let expect = b.expect(&spec.expect, Context::Tcp);
    let tls = tls::build_probe(&spec.rules, name.clone(), port, Status::Fail, b);
    Some(TcpProbe {
        host: name,
        port,
        send,
        starttls: spec.starttls,
        tls,
        expect,
    })
}
