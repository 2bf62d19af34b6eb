//! The parts of a certificate that reports show and findings judge.

use x509_parser::prelude::{GeneralName, ParsedExtension, X509Certificate};

/// One certificate of the presented chain.
pub(super) struct Cert {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub self_signed: bool,
    pub key: String,
    pub key_ok: bool,
    pub subject_raw: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    pub ocsp_url: Option<String>,
    /// The TLS feature extension asks for status_request: the certificate demands a staple.
    pub must_staple: bool,
}

impl Cert {
    pub fn parse(der: &[u8]) -> Option<Cert> {
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
            not_before: c.validity().not_before.timestamp(),
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

/// RSA needs 2048 bits; EC must be P-256, P-384 or P-521; Ed25519 is fine.
fn key_strength(c: &X509Certificate<'_>) -> (String, bool) {
    let spki = c.public_key();
    let bits = spki.parsed().map(|k| k.key_size()).unwrap_or(0);
    match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" if bits < 2048 => (
            format!("RSA {bits}-bit key: below the 2048-bit minimum"),
            false,
        ),
        "1.2.840.113549.1.1.1" => (format!("RSA {bits}-bit key"), true),
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => ("EC P-256 key".into(), true),
                Some("1.3.132.0.34") => ("EC P-384 key".into(), true),
                Some("1.3.132.0.35") => ("EC P-521 key".into(), true),
                Some(other) => (
                    format!("EC key on the curve {other}, which browsers do not accept"),
                    false,
                ),
                None => (format!("EC {bits}-bit key on an unnamed curve"), false),
            }
        }
        "1.3.101.112" => ("Ed25519 key".to_string(), true),
        other => (
            format!("a key of algorithm {other}, which browsers do not accept"),
            false,
        ),
    }
}

/// A Unix time as RFC 3339, for messages.
pub(super) fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}
