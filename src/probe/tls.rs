//! `kind = "tls"`: trust, host name, expiry of the leaf and chain, protocol version and key strength.

use std::collections::BTreeMap;

use x509_parser::prelude::{GeneralName, X509Certificate};

use crate::net::{CertProblem, TlsInfo};

use super::{Ctx, Finding, Probed, Status, days_until};

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
}

/// The parts of a certificate that reports show and findings judge.
struct Cert {
    subject: String,
    issuer: String,
    sans: Vec<String>,
    not_after: i64,
    self_signed: bool,
    key: String,
    key_ok: bool,
}

impl Cert {
    fn parse(der: &[u8]) -> Option<Cert> {
        let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
        let sans = c
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|ext| {
                ext.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DNSName(d) => Some(d.to_string()),
                        GeneralName::IPAddress(b) => ip_text(b),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (key, key_ok) = key_strength(&c);
        Some(Cert {
            subject: c.subject().to_string(),
            issuer: c.issuer().to_string(),
            sans,
            not_after: c.validity().not_after.timestamp(),
            self_signed: c.subject().as_raw() == c.issuer().as_raw(),
            key,
            key_ok,
        })
    }
}

fn ip_text(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
        16 => <[u8; 16]>::try_from(b)
            .ok()
            .map(|a| std::net::Ipv6Addr::from(a).to_string()),
        _ => None,
    }
}

/// RSA needs 2048 bits; EC must be P-256 or P-384; Ed25519 is fine.
fn key_strength(c: &X509Certificate<'_>) -> (String, bool) {
    let spki = c.public_key();
    let bits = spki.parsed().map(|k| k.key_size()).unwrap_or(0);
    match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" => (format!("RSA {bits} bits"), bits >= 2048),
        "1.2.840.10045.2.1" => {
            let ok = bits == 256 || bits == 384;
            (format!("EC P-{bits}"), ok)
        }
        "1.3.101.112" => ("Ed25519".to_string(), true),
        other => (format!("key algorithm {other}"), false),
    }
}

fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts.to_string())
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
        let (info, timings) = match handshake.await {
            Ok(r) => r,
            Err(e) => return Probed::failed(e),
        };
        let certs: Vec<Cert> = info.chain.iter().filter_map(|d| Cert::parse(d)).collect();
        let Some(leaf) = certs.first() else {
            return Probed::failed(crate::net::NetError::Tls(
                "the server's certificate could not be parsed".into(),
            ));
        };
        let findings = vec![
            trust(&info, &certs),
            hostname(&info, &self.server_name, leaf),
            self.expiry("tls.expiry", "certificate", leaf.not_after),
            self.chain_expiry(&certs[1..]),
            self.version(&info),
            Finding::judge(
                "tls.key",
                leaf.key_ok,
                Status::Fail,
                format!("leaf key is {}", leaf.key),
            )
            .expect(
                "RSA ≥ 2048 bits, EC P-256/P-384 or Ed25519",
                leaf.key.clone(),
            ),
        ];
        let mut details = BTreeMap::new();
        details.insert("subject".into(), leaf.subject.clone().into());
        details.insert("issuer".into(), leaf.issuer.clone().into());
        details.insert("sans".into(), leaf.sans.clone().into());
        details.insert("not_after".into(), rfc3339(leaf.not_after).into());
        details.insert(
            "days_left".into(),
            (days_until(leaf.not_after).floor() as i64).into(),
        );
        details.insert("version".into(), info.version.clone().into());
        details.insert("cipher".into(), info.cipher.clone().into());
        if let Some(min) = certs[1..].iter().map(|c| c.not_after).min() {
            details.insert("chain_not_after".into(), rfc3339(min).into());
        }
        Probed {
            findings,
            timings: Some(timings),
            error: None,
            details,
        }
    }

    fn expiry(&self, id: &str, what: &str, not_after: i64) -> Finding {
        let days = days_until(not_after);
        let status = if days < self.fail_days as f64 {
            Status::Fail
        } else if days < self.warn_days as f64 {
            Status::Warn
        } else {
            Status::Pass
        };
        let when = rfc3339(not_after);
        let msg = if days < 0.0 {
            format!("{what} expired {} days ago ({when})", (-days).ceil())
        } else {
            format!("{what} expires in {} days ({when})", days.floor())
        };
        Finding::new(id, status, msg).expect(
            format!(
                "≥ {} days (warn < {}, fail < {})",
                self.warn_days, self.warn_days, self.fail_days
            ),
            format!("{} days", days.floor()),
        )
    }

    fn chain_expiry(&self, intermediates: &[Cert]) -> Finding {
        match intermediates.iter().min_by_key(|c| c.not_after) {
            Some(c) => self.expiry(
                "tls.chain_expiry",
                &format!("intermediate \"{}\"", c.subject),
                c.not_after,
            ),
            None => Finding::new(
                "tls.chain_expiry",
                Status::Pass,
                "no intermediate certificates presented",
            )
            .expect("intermediates valid", "none presented"),
        }
    }

    fn version(&self, info: &TlsInfo) -> Finding {
        let want = format!("TLSv{}", self.min_version);
        let ok = info.version.as_str() >= want.as_str() && info.version.starts_with("TLSv");
        Finding::judge(
            "tls.version",
            ok,
            Status::Fail,
            format!("negotiated {}", info.version),
        )
        .expect(format!("≥ {want}"), info.version.clone())
    }
}

fn trust(info: &TlsInfo, certs: &[Cert]) -> Finding {
    let leaf = &certs[0];
    let top = certs.last().unwrap_or(leaf);
    let (ok, actual) = match &info.trust {
        Ok(()) => (true, format!("trusted, issued by {}", leaf.issuer)),
        Err(CertProblem::UnknownIssuer) if certs.len() == 1 && leaf.self_signed => (
            false,
            format!("self-signed certificate \"{}\"", leaf.subject),
        ),
        Err(CertProblem::UnknownIssuer) if !top.self_signed && certs.len() == 1 => (
            false,
            format!(
                "missing intermediate: the server sent only the leaf, issued by \"{}\"",
                leaf.issuer
            ),
        ),
        Err(CertProblem::UnknownIssuer) => (false, format!("unknown issuer \"{}\"", top.issuer)),
        Err(CertProblem::Expired) => (
            false,
            format!(
                "expired certificate in the chain (leaf ends {})",
                rfc3339(leaf.not_after)
            ),
        ),
        Err(other) => (false, other.to_string()),
    };
    let msg = if ok {
        "chain leads to a trusted root".to_string()
    } else {
        format!("untrusted: {actual}")
    };
    Finding::judge("tls.trust", ok, Status::Fail, msg).expect("chain to a trusted root", actual)
}

fn hostname(info: &TlsInfo, name: &str, leaf: &Cert) -> Finding {
    let sans = if leaf.sans.is_empty() {
        "no SANs".to_string()
    } else {
        leaf.sans.join(", ")
    };
    let ok = info.hostname.is_ok();
    let msg = if ok {
        format!("certificate is valid for {name}")
    } else {
        format!("certificate is not valid for {name} (it covers {sans})")
    };
    Finding::judge("tls.hostname", ok, Status::Fail, msg).expect(name.to_string(), sans)
}
