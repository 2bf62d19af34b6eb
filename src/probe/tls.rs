//! `kind = "tls"`: trust, host name, expiry of the leaf and chain, protocol version and key strength.

use std::collections::BTreeMap;

use x509_parser::prelude::{GeneralName, ParsedExtension, X509Certificate};

use crate::net::legacy::{self, Answer, Version};
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
    /// How accepting TLS 1.0/1.1 counts; SSLv3 always fails.
    pub legacy_status: Status,
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
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    ocsp_url: Option<String>,
    /// The TLS feature extension asks for status_request: the certificate demands a staple.
    must_staple: bool,
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
        let ocsp_url = c
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityInfoAccess(aia) => aia.iter().find_map(|d| {
                    let is_ocsp = d.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1";
                    match &d.access_location {
                        GeneralName::URI(u) if is_ocsp => Some(u.to_string()),
                        _ => None,
                    }
                }),
                _ => None,
            });
        let must_staple = c.extensions().iter().any(|e| {
            e.oid.to_id_string() == "1.3.6.1.5.5.7.1.24"
                && e.value.windows(3).any(|w| w == [2, 1, 5])
        });
        Some(Cert {
            subject: c.subject().to_string(),
            issuer: c.issuer().to_string(),
            sans,
            not_after: c.validity().not_after.timestamp(),
            self_signed: c.subject().as_raw() == c.issuer().as_raw(),
            key,
            key_ok,
            subject_raw: c.subject().as_raw().to_vec(),
            issuer_raw: c.issuer().as_raw().to_vec(),
            ocsp_url,
            must_staple,
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
            // A server that refuses TLS 1.2 and 1.3 may still speak a legacy version: say so.
            Err(e @ crate::net::NetError::Tls(_)) => {
                let mut p = Probed::failed(e);
                p.findings.push(self.legacy(ctx).await);
                return p;
            }
            Err(e) => return Probed::failed(e),
        };
        let certs: Vec<Cert> = info.chain.iter().filter_map(|d| Cert::parse(d)).collect();
        let Some(leaf) = certs.first() else {
            return Probed::failed(crate::net::NetError::Tls(
                "the server's certificate could not be parsed".into(),
            ));
        };
        let mut findings = vec![
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
            tls13(&info),
            ocsp_stapling(&info, leaf),
            chain_order(&certs),
        ];
        findings.push(self.legacy(ctx).await);
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
            redact: Vec::new(),
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

impl TlsProbe {
    /// Offers SSLv3, TLS 1.0 and TLS 1.1 one at a time with a raw ClientHello.
    async fn legacy(&self, ctx: &Ctx<'_>) -> Finding {
        let expected = "SSLv3, TLS 1.0 and TLS 1.1 refused";
        let addr = match ctx
            .engine
            .resolve(&self.host, self.port, ctx.overrides, ctx.deadline)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                return Finding::new(
                    "tls.legacy",
                    Status::Fail,
                    format!("cannot reach the server: {e}"),
                )
                .expect(expected, e.kind());
            }
        };
        let mut accepted = Vec::new();
        let mut notes = Vec::new();
        let mut status = Status::Pass;
        for v in [Version::SSL3, Version::TLS10, Version::TLS11] {
            match legacy::probe(addr, &self.server_name, v, ctx.deadline).await {
                Answer::Accepted => {
                    accepted.push(v.name());
                    status = status.max(if v == Version::SSL3 {
                        Status::Fail
                    } else {
                        self.legacy_status
                    });
                }
                Answer::Higher(got) => {
                    notes.push(format!(
                        "asked for {}, the server answered {} (a server bug)",
                        v.name(),
                        got.name()
                    ));
                    status = status.max(Status::Warn);
                }
                Answer::Lower(_) | Answer::Alert(_) | Answer::Closed | Answer::NotTls(_) => {}
            }
        }
        let actual = if accepted.is_empty() {
            "none accepted".to_string()
        } else {
            format!("accepts {}", accepted.join(", "))
        };
        let mut msg = if accepted.is_empty() {
            "legacy protocols are refused".to_string()
        } else {
            format!("the server still {actual}")
        };
        if !notes.is_empty() {
            msg = format!("{msg}; {}", notes.join("; "));
        }
        Finding::new("tls.legacy", status, msg).expect(expected, actual)
    }
}

fn tls13(info: &TlsInfo) -> Finding {
    let ok = info.version == "TLSv1.3";
    let msg = if ok {
        "TLS 1.3 is offered".to_string()
    } else {
        format!("TLS 1.3 is not offered (negotiated {})", info.version)
    };
    Finding::judge("tls.tls13", ok, Status::Warn, msg).expect("TLSv1.3", info.version.clone())
}

fn ocsp_stapling(info: &TlsInfo, leaf: &Cert) -> Finding {
    let stapled = !info.ocsp.is_empty();
    let expected = "a stapled OCSP response when the certificate names a responder";
    let (status, msg, actual) = match (stapled, leaf.must_staple, &leaf.ocsp_url) {
        (true, _, _) => (
            Status::Pass,
            format!("an OCSP response is stapled ({} bytes)", info.ocsp.len()),
            "stapled".to_string(),
        ),
        (false, true, _) => (
            Status::Fail,
            "the certificate is must-staple but no OCSP response is stapled".to_string(),
            "no staple".to_string(),
        ),
        (false, false, Some(url)) => (
            Status::Warn,
            format!("no OCSP staple, although the certificate names the responder {url}"),
            "no staple".to_string(),
        ),
        (false, false, None) => (
            Status::Pass,
            "the certificate names no OCSP responder".to_string(),
            "no responder".to_string(),
        ),
    };
    Finding::new("tls.ocsp_stapling", status, msg).expect(expected, actual)
}

/// Each certificate should be followed by its issuer, and the root should not be sent.
fn chain_order(certs: &[Cert]) -> Finding {
    let expected = "leaf first, each certificate followed by its issuer, no root";
    let misordered = certs
        .windows(2)
        .position(|w| w[0].issuer_raw != w[1].subject_raw);
    let root_sent = certs.len() > 1 && certs.last().is_some_and(|c| c.self_signed);
    let (status, msg) = match (misordered, root_sent) {
        (Some(i), _) => (
            Status::Warn,
            format!(
                "certificate {} is not followed by its issuer \"{}\"",
                i + 1,
                certs[i].issuer
            ),
        ),
        (None, true) => (
            Status::Warn,
            "the chain includes the root certificate, which clients already have".to_string(),
        ),
        (None, false) => (
            Status::Pass,
            format!("{} certificates in order", certs.len()),
        ),
    };
    let actual: Vec<&str> = certs.iter().map(|c| c.subject.as_str()).collect();
    Finding::new("tls.chain_order", status, msg).expect(expected, actual.join(" → "))
}
