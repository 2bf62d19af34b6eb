//! `kind = "tls"`: trust, host name, expiry of the leaf and chain, protocol version, key strength,
//! legacy protocols, TLS 1.3, OCSP stapling and chain order.

mod cert;
mod findings;
mod legacy;

use std::collections::BTreeMap;

use crate::net::{NetError, TlsInfo};

use super::{Ctx, Probed, Status, days_until};
use cert::{Cert, rfc3339};
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
    /// no OCSP staple was asked for.
    fn judge(&self, info: &TlsInfo, legacy_only: bool) -> Probed {
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

fn details(info: &TlsInfo, certs: &[Cert]) -> BTreeMap<String, serde_json::Value> {
    let leaf = &certs[0];
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
    details
}
