//! `kind = "tls"`: trust, host name, expiry of the leaf and chain, protocol version, key strength,
//! legacy protocols, TLS 1.3, OCSP stapling and chain order.

mod cert;
mod findings;
mod legacy;

use crate::check::build::{Build, split_host_port};
use crate::check::read::required;
use crate::doc::{Diagnostics, Spanned, Table};

use crate::net::{NetError, TlsInfo};

use super::{Ctx, Probed, Status, days_until};
use cert::Cert;
use findings::Days;

/// One endpoint's TLS set-up and the thresholds it is judged by.
#[derive(Debug, Clone)]
pub struct TlsProbe {
    pub host: String,
    pub port: u16,
    /// SNI and the name to verify; the host unless overridden.
    pub server_name: String,
    pub warn_days: i64,
    pub fail_days: i64,
    pub min_version: String,
    /// How accepting TLS 1.0/1.1 counts; SSLv3 always fails.
    pub legacy_status: Status,
}

impl TlsProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let handshake = ctx.engine.handshake(
            &self.host,
            self.port,
            &self.server_name,
            ctx.overrides,
            ctx.deadline,
        );
        match handshake.await {
            Ok((info, timings)) => {
                let scan = legacy::scan(self, ctx).await;
                let mut p = self.judge(&info, false);
                p.findings.push(scan.finding);
                p.timings = Some(timings);
                p
            }
            // A server that refuses TLS 1.2 and 1.3 may still speak a legacy version: its
            // certificate is sent in clear there, so it is judged all the same.
            Err(e @ NetError::Tls(_)) => {
                let scan = legacy::scan(self, ctx).await;
                let mut p = match scan.best {
                    Some((version, chain)) => {
                        let (trust, hostname) = ctx.engine.judge_chain(&chain, &self.server_name);
                        let info = TlsInfo {
                            version: version.name(),
                            cipher: "unknown".into(),
                            alpn: None,
                            not_after: chain.first().and_then(|c| crate::check::leaf_not_after(c)),
                            chain: chain.into_iter().map(Into::into).collect(),
                            ocsp: Vec::new(),
                            trust,
                            hostname,
                        };
                        self.judge(&info, true)
                    }
                    None => Probed::failed(e),
                };
                p.findings.push(scan.finding);
                p
            }
            Err(e) => Probed::failed(e),
        }
    }

    /// Every finding on a handshake's result; `legacy_only` when it came from a legacy probe, where
    /// no OCSP staple was asked for. A `tcp` check judges its STARTTLS upgrade with it too.
    pub(crate) fn judge(&self, info: &TlsInfo, legacy_only: bool) -> Probed {
        let certs: Vec<Cert> = info.chain.iter().filter_map(|d| Cert::parse(d)).collect();
        let Some(leaf) = certs.first() else {
            return Probed::failed(NetError::Tls(
                "the server's certificate could not be parsed".into(),
            ));
        };
        let days = Days {
            warn: self.warn_days,
            fail: self.fail_days,
        };
        let mut findings = vec![
            findings::trust(info, &certs),
            findings::hostname(info, &self.server_name, leaf),
            findings::expiry("tls.expiry", "the certificate", leaf, &days),
            findings::chain_expiry(&certs[1..], &days),
            findings::version(info, &self.min_version, legacy_only),
            findings::key(leaf),
            findings::tls13(info),
        ];
        if !legacy_only {
            findings.push(findings::ocsp_stapling(info, leaf));
        }
        findings.push(findings::chain_order(&certs));
        Probed {
            findings,
            timings: None,
            error: None,
            details: details(info, &certs),
            redact: Vec::new(),
        }
    }
}

fn details(info: &TlsInfo, certs: &[Cert]) -> crate::outcome::Details {
    let leaf = &certs[0];
    crate::outcome::Details::Tls(Box::new(crate::outcome::TlsDetails {
        chain_not_after: certs[1..].iter().map(|c| c.not_after).min(),
        cipher: info.cipher.clone(),
        days_left: days_until(leaf.not_after).floor() as i64,
        issuer: leaf.issuer.clone(),
        key: leaf.key.clone(),
        not_after: leaf.not_after,
        sans: leaf.sans.clone(),
        subject: leaf.subject.clone(),
        version: info.version.clone(),
    }))
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "tls"` check takes besides the common ones.
pub(crate) const KEYS: &[&str] = &[
    "host",
    "server_name",
    "warn_days",
    "fail_days",
    "min_version",
    "legacy",
];

/// `kind = "tls"`: the certificate and protocol of one endpoint.
#[derive(Debug, Clone)]
pub struct TlsSpec {
    pub host: Spanned<String>,
    pub rules: TlsRules,
    /// Whether accepting TLS 1.0/1.1 fails or warns.
    pub legacy_warn: bool,
}

/// The thresholds a certificate and protocol are judged by, as written.
#[derive(Debug, Clone)]
pub struct TlsRules {
    /// SNI and the name to verify, when it is not the host's.
    pub server_name: Option<Spanned<String>>,
    pub warn_days: i64,
    pub fail_days: i64,
    /// "1.2" or "1.3".
    pub min_version: String,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<TlsSpec> {
    let host = required(t, "host", diags);
    let rules = read_rules(t, diags);
    let legacy_warn = match t.str("legacy", diags) {
        Some(v) if v.value == "warn" => true,
        Some(v) if v.value == "fail" => false,
        Some(v) => {
            diags.error(
                v.span,
                format!("legacy \"{}\" must be \"fail\" or \"warn\"", v.value),
            );
            false
        }
        None => false,
    };
    Some(TlsSpec {
        host: host?,
        rules,
        legacy_warn,
    })
}

/// How a certificate and protocol are judged: `server_name`, `warn_days`, `fail_days`, `min_version`.
pub(crate) fn read_rules(t: &mut Table<'_>, diags: &mut Diagnostics) -> TlsRules {
    let server_name = t.str("server_name", diags);
    let warn_days = t.int("warn_days", 0..3651, diags).unwrap_or(30);
    let fail_days = t.int("fail_days", 0..3651, diags).unwrap_or(7);
    if fail_days > warn_days {
        diags.error(
            t.span(),
            format!(
                "{}: fail_days ({fail_days}) is larger than warn_days ({warn_days})",
                t.path()
            ),
        );
    }
    let min_version = match t.str("min_version", diags) {
        Some(v) if v.value == "1.2" || v.value == "1.3" => v.value,
        Some(v) => {
            diags.error(
                v.span,
                format!(
                    "min_version \"{}\" is not supported, use \"1.2\" or \"1.3\"",
                    v.value
                ),
            );
            "1.2".into()
        }
        None => "1.2".into(),
    };
    TlsRules {
        server_name,
        warn_days,
        fail_days,
        min_version,
    }
}

/// A probe that judges a handshake made on `host:port` (the host name is the default SNI).
pub(crate) fn build_probe(
    rules: &TlsRules,
    name: String,
    port: u16,
    legacy_status: Status,
    b: &mut Build<'_>,
) -> TlsProbe {
    let server_name = rules
        .server_name
        .as_ref()
        .map_or_else(|| name.clone(), |s| b.text(s));
    TlsProbe {
        host: name,
        port,
        server_name,
        warn_days: rules.warn_days,
        fail_days: rules.fail_days,
        min_version: rules.min_version.clone(),
        legacy_status,
    }
}

/// The job of a `kind = "tls"` check, its strings interpolated.
pub(crate) fn build(t: &TlsSpec, b: &mut Build<'_>) -> Option<TlsProbe> {
    let host = b.text(&t.host);
    let Some((name, port)) = split_host_port(&host) else {
        b.error(
            t.host.span.clone(),
            format!("host \"{host}\" must be HOST or HOST:PORT"),
        );
        return None;
    };
    let legacy = if t.legacy_warn {
        Status::Warn
    } else {
        Status::Fail
    };
    Some(build_probe(&t.rules, name, port, legacy, b))
}
