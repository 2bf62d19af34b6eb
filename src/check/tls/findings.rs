//! The `tls.*` findings, each a plain sentence with the expected and actual values.

use crate::check::{Finding, Status, days_until};
use crate::net::{CertProblem, TlsInfo};

use super::cert::{Cert, rfc3339};

/// Expiry thresholds, in days.
pub(super) struct Days {
    pub warn: i64,
    pub fail: i64,
}

pub(super) fn trust(info: &TlsInfo, certs: &[Cert]) -> Finding {
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
        Err(CertProblem::UnknownIssuer) => (
            false,
            format!(
                "unknown issuer \"{}\" (add it with --ca-file if it is your private CA)",
                top.issuer
            ),
        ),
        Err(CertProblem::Expired) => (
            false,
            format!(
                "expired certificate in the chain (the leaf ends {})",
                rfc3339(leaf.not_after)
            ),
        ),
        Err(CertProblem::NotYetValid) => (
            false,
            format!(
                "a certificate in the chain is not valid yet (the leaf starts {})",
                rfc3339(leaf.not_before)
            ),
        ),
        Err(other) => (false, other.to_string()),
    };
    let msg = if ok {
        "the chain leads to a trusted root".to_string()
    } else {
        format!("untrusted: {actual}")
    };
    Finding::judge("tls.trust", ok, Status::Fail, msg)
        .with_values("a chain to a trusted root", actual)
}

pub(super) fn hostname(info: &TlsInfo, name: &str, leaf: &Cert) -> Finding {
    let sans = if leaf.sans.is_empty() {
        "no subject alternative names".to_string()
    } else {
        leaf.sans.join(", ")
    };
    let ok = info.hostname.is_ok();
    let msg = if ok {
        format!("the certificate is valid for {name}")
    } else {
        format!("the certificate is not valid for {name} (it covers {sans})")
    };
    Finding::judge("tls.hostname", ok, Status::Fail, msg).with_values(name.to_string(), sans)
}

/// Days left before `cert` expires, judged by the thresholds; a certificate not valid yet fails.
pub(super) fn expiry(id: &str, what: &str, cert: &Cert, days: &Days) -> Finding {
    let expected = format!(
        "≥ {} days left (warn below {}, fail below {})",
        days.warn, days.warn, days.fail
    );
    let starts_in = days_until(cert.not_before);
    if starts_in > 0.0 {
        return Finding::new(
            id,
            Status::Fail,
            format!(
                "{what} is not valid until {} ({} days from now)",
                rfc3339(cert.not_before),
                starts_in.ceil()
            ),
        )
        .with_values(
            expected,
            format!("not valid for {} more days", starts_in.ceil()),
        );
    }
    let left = days_until(cert.not_after);
    let status = if left < days.fail as f64 {
        Status::Fail
    } else if left < days.warn as f64 {
        Status::Warn
    } else {
        Status::Pass
    };
    let when = rfc3339(cert.not_after);
    let msg = if left <= -1.0 {
        format!("{what} expired {} days ago ({when})", (-left).trunc())
    } else if left < 0.0 {
        format!("{what} expired less than a day ago ({when})")
    } else {
        format!("{what} expires in {} days ({when})", left.floor())
    };
    Finding::new(id, status, msg).with_values(expected, format!("{} days", left.trunc()))
}

pub(super) fn chain_expiry(intermediates: &[Cert], days: &Days) -> Finding {
    match intermediates.iter().min_by_key(|c| c.not_after) {
        Some(c) => expiry(
            "tls.chain_expiry",
            &format!("intermediate \"{}\"", c.subject),
            c,
            days,
        ),
        None => Finding::new(
            "tls.chain_expiry",
            Status::Pass,
            "no intermediate certificates presented",
        )
        .with_values("intermediates valid", "none presented"),
    }
}

/// The negotiated version against the minimum; `legacy_only` when only TLS ≤ 1.1 answered.
pub(super) fn version(info: &TlsInfo, min_version: &str, legacy_only: bool) -> Finding {
    let want = format!("TLSv{min_version}");
    let ok = info.version.as_str() >= want.as_str() && info.version.starts_with("TLSv");
    let msg = if legacy_only {
        format!(
            "the server offers only {} and older; shipwatch requires TLS ≥ {min_version}",
            info.version
        )
    } else {
        format!("negotiated {}", info.version)
    };
    Finding::judge("tls.version", ok, Status::Fail, msg)
        .with_values(format!("≥ {want}"), info.version.clone())
}

pub(super) fn key(leaf: &Cert) -> Finding {
    Finding::judge(
        "tls.key",
        leaf.key_ok,
        Status::Fail,
        format!("leaf key: {}", leaf.key),
    )
    .with_values(
        "RSA ≥ 2048 bits, EC P-256/P-384/P-521 or Ed25519",
        leaf.key.clone(),
    )
}

pub(super) fn tls13(info: &TlsInfo) -> Finding {
    let ok = info.version == "TLSv1.3";
    let msg = if ok {
        "TLS 1.3 is offered".to_string()
    } else {
        format!("TLS 1.3 is not offered (negotiated {})", info.version)
    };
    Finding::judge("tls.tls13", ok, Status::Warn, msg).with_values("TLSv1.3", info.version.clone())
}

pub(super) fn ocsp_stapling(info: &TlsInfo, leaf: &Cert) -> Finding {
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
    Finding::new("tls.ocsp_stapling", status, msg).with_values(expected, actual)
}

/// Each certificate should be followed by its issuer, and the root should not be sent.
pub(super) fn chain_order(certs: &[Cert]) -> Finding {
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
    Finding::new("tls.chain_order", status, msg).with_values(expected, actual.join(" → "))
}
