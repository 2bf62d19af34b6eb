//! `tls.legacy`: SSLv3, TLS 1.0 and TLS 1.1 offered one at a time with a raw ClientHello. When the
//! server accepts one, the certificate chain it sends in clear is kept, so a server that speaks only
//! legacy TLS still gets its certificate judged.

use crate::check::{Ctx, Finding, Status};
use crate::net::legacy::{self, Answer, Version};

/// What the legacy probes found.
pub(super) struct Scan {
    pub finding: Finding,
    /// The newest legacy version accepted, and the chain the server sent with it.
    pub best: Option<(Version, Vec<Vec<u8>>)>,
}

pub(super) async fn scan(probe: &super::TlsProbe, ctx: &Ctx<'_>) -> Scan {
    let expected = "SSLv3, TLS 1.0 and TLS 1.1 refused";
    let addr = match ctx
        .engine
        .resolve(&probe.host, probe.port, ctx.overrides, ctx.deadline)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            return Scan {
                finding: Finding::new(
                    "tls.legacy",
                    Status::Fail,
                    format!("cannot reach the server: {e}"),
                )
                .with_values(expected, e.kind()),
                best: None,
            };
        }
    };
    let mut accepted = Vec::new();
    let mut notes = Vec::new();
    let mut status = Status::Pass;
    let mut best = None;
    for v in [Version::SSL3, Version::TLS10, Version::TLS11] {
        let (answer, chain) = legacy::probe(addr, &probe.server_name, v, ctx.deadline).await;
        match answer {
            Answer::Accepted => {
                accepted.push(v.name());
                status = status.max(if v == Version::SSL3 {
                    Status::Fail
                } else {
                    probe.legacy_status
                });
                if !chain.is_empty() {
                    best = Some((v, chain));
                }
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
    Scan {
        finding: Finding::new("tls.legacy", status, msg).with_values(expected, actual),
        best,
    }
}
