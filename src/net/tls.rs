//! TLS set-up: trusted roots, and a verifier that records what the server presented instead of hanging up.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor, verify_server_name,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::NetError;

/// What was learnt from one TLS handshake, whether or not the certificate was trusted.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// "TLSv1.2" or "TLSv1.3".
    pub version: String,
    pub cipher: String,
    pub alpn: Option<String>,
    /// The chain in the order the server sent it, leaf first. Shared with the engine's memory
    /// of chains already verified, so a probe that meets the same chain copies nothing.
    pub chain: Arc<[CertificateDer<'static>]>,
    /// The leaf's notAfter (Unix seconds), read once per distinct chain.
    pub not_after: Option<i64>,
    pub ocsp: Vec<u8>,
    /// Why the chain does not lead to a trusted root, if it does not.
    pub trust: Result<(), CertProblem>,
    /// Why the leaf does not match the host name, if it does not.
    pub hostname: Result<(), CertProblem>,
}

impl TlsInfo {
    /// True when both the chain and the host name verified: only then may requests be sent.
    pub fn verified(&self) -> bool {
        self.trust.is_ok() && self.hostname.is_ok()
    }

    /// The first verification problem, as a sentence.
    pub fn problem(&self) -> Option<String> {
        self.trust
            .as_ref()
            .err()
            .or(self.hostname.as_ref().err())
            .map(|p| p.to_string())
    }
}

/// A certificate verification failure, classified for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    UnknownIssuer,
    Expired,
    NotYetValid,
    BadSignature,
    NotValidForName,
    Other(String),
}

impl std::fmt::Display for CertProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertProblem::UnknownIssuer => f.write_str(
                "certificate issuer is not trusted (for a private CA, pass it with --ca-file or set [defaults].ca_file)",
            ),
            CertProblem::Expired => f.write_str("certificate has expired"),
            CertProblem::NotYetValid => f.write_str("certificate is not valid yet"),
            CertProblem::BadSignature => f.write_str("certificate signature is invalid"),
            CertProblem::NotValidForName => {
                f.write_str("certificate is not valid for this host name")
            }
            CertProblem::Other(s) => f.write_str(s),
        }
    }
}

fn classify(err: rustls::Error) -> CertProblem {
    match err {
        rustls::Error::InvalidCertificate(c) => classify_certificate(c),
        other => CertProblem::Other(other.to_string()),
    }
}

/// The most intermediates a chain may need, as rustls-webpki and browsers enforce.
const MAX_INTERMEDIATES: usize = 6;

fn classify_certificate(c: CertificateError) -> CertProblem {
    #[allow(deprecated)]
    match c {
        CertificateError::UnknownIssuer => CertProblem::UnknownIssuer,
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => CertProblem::Expired,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            CertProblem::NotYetValid
        }
        CertificateError::BadSignature => CertProblem::BadSignature,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            CertProblem::NotValidForName
        }
        CertificateError::UnsupportedSignatureAlgorithmContext {
            signature_algorithm_id,
            ..
        }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
            signature_algorithm_id,
            ..
        } => CertProblem::Other(signature_algorithm(&signature_algorithm_id)),
        CertificateError::UnsupportedSignatureAlgorithm => CertProblem::Other(
            "a certificate in the chain is signed with an algorithm browsers do not accept".into(),
        ),
        CertificateError::BadEncoding => {
            CertProblem::Other("a certificate in the chain is not valid DER".into())
        }
        CertificateError::Revoked => CertProblem::Other("the certificate is revoked".into()),
        CertificateError::UnhandledCriticalExtension => CertProblem::Other(
            "a certificate has a critical extension that clients do not understand".into(),
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            CertProblem::Other(
                "the certificate's extended key usage does not allow TLS server authentication"
                    .into(),
            )
        }
        CertificateError::Other(e) => {
            let inner: &(dyn std::error::Error + 'static) = &*e.0;
            match inner.downcast_ref::<webpki::Error>() {
                Some(w) => CertProblem::Other(webpki_words(w)),
                None => CertProblem::Other(e.to_string()),
            }
        }
        other => CertProblem::Other(other.to_string()),
    }
}

/// A sentence for a signature algorithm that could not be verified, from its AlgorithmIdentifier.
fn signature_algorithm(alg_id: &[u8]) -> String {
    const KNOWN: &[(&[u8], &str)] = &[
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05],
            "SHA-1",
        ),
        (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01], "SHA-1"),
        (
            &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03],
            "DSA with SHA-1",
        ),
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04],
            "MD5",
        ),
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x02],
            "MD2",
        ),
    ];
    match KNOWN
        .iter()
        .find(|(oid, _)| alg_id.windows(oid.len()).any(|w| w == *oid))
    {
        Some((_, name)) => {
            format!("a certificate in the chain is signed with {name}, which browsers reject")
        }
        None => "a certificate in the chain is signed with an algorithm browsers do not accept, \
                 or with a key too weak for it (RSA below 2048 bits)"
            .into(),
    }
}

/// Plain sentences for the path-building errors rustls reports only as "other".
fn webpki_words(e: &webpki::Error) -> String {
    match e {
        webpki::Error::MaximumPathDepthExceeded => format!(
            "the chain needs more than {MAX_INTERMEDIATES} intermediate certificates to reach a trusted root, more than clients follow"
        ),
        webpki::Error::MaximumSignatureChecksExceeded
        | webpki::Error::MaximumPathBuildCallsExceeded => {
            "the chain is too tangled to verify: clients give up building a path through it".into()
        }
        webpki::Error::CaUsedAsEndEntity => {
            "the server presents a CA certificate as its own certificate".into()
        }
        webpki::Error::EndEntityUsedAsCa => {
            "a certificate that is not a CA issued another certificate in the chain".into()
        }
        webpki::Error::PathLenConstraintViolated => {
            "the chain is longer than an issuer's path length constraint allows".into()
        }
        webpki::Error::NameConstraintViolation => {
            "the certificate's names are outside an issuer's name constraints".into()
        }
        webpki::Error::UnsupportedCertVersion => {
            "a certificate in the chain is not an X.509 version 3 certificate".into()
        }
        webpki::Error::UnsupportedCriticalExtension => {
            "a certificate has a critical extension that clients do not understand".into()
        }
        webpki::Error::CertDistrusted => "a certificate in the chain is distrusted".into(),
        other => format!("the chain does not verify ({other})"),
    }
}

/// The roots every connection trusts: Mozilla's bundle plus an optional PEM file.
pub(crate) fn load_roots(ca_file: Option<&Path>) -> Result<RootCertStore, NetError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            NetError::Setup(format!("cannot read CA file \"{}\": {e}", path.display()))
        })?;
        let certs = rustls_pki_types::pem::PemObject::pem_slice_iter(&pem)
            .collect::<Result<Vec<CertificateDer<'static>>, _>>()
            .map_err(|e| {
                NetError::Setup(format!(
                    "invalid PEM in CA file \"{}\": {e}",
                    path.display()
                ))
            })?;
        if certs.is_empty() {
            return Err(NetError::Setup(format!(
                "CA file \"{}\" holds no certificate",
                path.display()
            )));
        }
        for c in certs {
            roots.add(c).map_err(|e| {
                NetError::Setup(format!(
                    "CA file \"{}\": unusable certificate: {e}",
                    path.display()
                ))
            })?;
        }
    }
    Ok(roots)
}

/// The TLS client set-up every connection of an engine starts from: one configuration to copy
/// (building one per connection would cost more than the handshake's key exchange), and what
/// the engine's verifiers share, including the verdicts on chains already seen.
pub(crate) struct TlsSetup {
    template: rustls::ClientConfig,
    shared: Arc<Shared>,
}

impl TlsSetup {
    pub fn new(roots: RootCertStore, provider: Arc<CryptoProvider>) -> Result<TlsSetup, NetError> {
        let roots = Arc::new(roots);
        let setup_error =
            |e: &dyn std::fmt::Display| NetError::Setup(format!("TLS set-up failed: {e}"));
        let inner = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| setup_error(&e))?;
        let shared = Arc::new(Shared {
            roots,
            provider: provider.clone(),
            inner,
            known: Mutex::new(HashMap::new()),
        });
        let mut template = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| setup_error(&e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RecordingVerifier::new(shared.clone())))
            .with_no_client_auth();
        // Every probe does a full handshake and sees the certificate: a resumed session would
        // skip both, and a probe is there to see what a new visitor sees.
        template.resumption = rustls::client::Resumption::disabled();
        Ok(TlsSetup { template, shared })
    }

    /// A configuration for one connection, with its own verifier to record what it sees.
    pub fn config(&self, alpn: &[&[u8]]) -> (rustls::ClientConfig, Arc<RecordingVerifier>) {
        let verifier = Arc::new(RecordingVerifier::new(self.shared.clone()));
        let mut config = self.template.clone();
        config
            .dangerous()
            .set_certificate_verifier(verifier.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        (config, verifier)
    }

    pub fn roots(&self) -> usize {
        self.shared.roots.len()
    }

    /// Judges a chain read without a handshake (from a legacy-protocol server).
    pub fn judge_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> (Result<(), CertProblem>, Result<(), CertProblem>) {
        judge_chain(
            &self.shared.roots,
            &self.shared.provider,
            end_entity,
            intermediates,
            server_name,
            now,
        )
    }
}

/// What every verifier of an engine shares.
#[derive(Debug)]
struct Shared {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    inner: Arc<WebPkiServerVerifier>,
    /// Verdicts on chains already verified, by a hash of the server name and the chain's bytes.
    known: Mutex<HashMap<u64, Arc<Known>>>,
}

/// The most chains an engine remembers; past it the memory starts again, empty.
const MAX_KNOWN_CHAINS: usize = 4096;

/// One chain's verdict, and the span of time over which it holds.
///
/// Why reusing it is safe: path building and the chain's signature checks are a pure function of
/// the presented certificates (compared byte for byte, not by hash), the server name, the trust
/// anchors and signature algorithms (fixed for the engine that owns this memory), and the time.
/// The time only enters through each certificate's validity period, so a verdict reached at one
/// instant holds at every instant inside all of them (`from..=until`), and is reached afresh
/// outside. What proves the server holds the leaf's private key is the handshake's own signature
/// (CertificateVerify, or the TLS 1.2 key exchange signature), which covers this connection's
/// transcript: it is verified on every handshake and never remembered. A server that replays a
/// known chain without its key still fails, and a changed chain is a different key.
#[derive(Debug)]
struct Known {
    name: String,
    chain: Arc<[CertificateDer<'static>]>,
    trust: Result<(), CertProblem>,
    hostname: Result<(), CertProblem>,
    from: i64,
    until: i64,
    not_after: Option<i64>,
}

impl Shared {
    /// The verdict on a presented chain: remembered when this exact chain was verified for this
    /// name while every certificate in it was valid, else verified now.
    fn verdict(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Arc<Known> {
        let name = server_name.to_str();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        end_entity.as_ref().hash(&mut h);
        intermediates.iter().for_each(|c| c.as_ref().hash(&mut h));
        let key = h.finish();
        let at = now.as_secs() as i64;
        let remembered = self.known.lock().ok().and_then(|k| k.get(&key).cloned());
        if let Some(k) = remembered.filter(|k| {
            k.name == name
                && (k.from..=k.until).contains(&at)
                && k.chain.first().is_some_and(|c| c == end_entity)
                && k.chain[1..] == *intermediates
        }) {
            return k;
        }
        let (trust, hostname) = judge_chain(
            &self.roots,
            &self.provider,
            end_entity,
            intermediates,
            server_name,
            now,
        );
        let chain: Arc<[CertificateDer<'static>]> = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        let window = validity(&chain);
        let known = Arc::new(Known {
            name: name.into_owned(),
            chain,
            trust,
            hostname,
            from: window.map_or(i64::MAX, |w| w.0),
            until: window.map_or(i64::MIN, |w| w.1),
            not_after: window.map(|w| w.2),
        });
        if (known.from..=known.until).contains(&at)
            && let Ok(mut k) = self.known.lock()
        {
            if k.len() >= MAX_KNOWN_CHAINS {
                k.clear();
            }
            k.insert(key, known.clone());
        }
        known
    }
}

/// The latest notBefore, the earliest notAfter and the leaf's notAfter of a chain, or None when a
/// certificate cannot be read (its verdict is then never remembered).
fn validity(chain: &[CertificateDer<'_>]) -> Option<(i64, i64, i64)> {
    let mut window = (i64::MIN, i64::MAX, 0);
    for (i, der) in chain.iter().enumerate() {
        let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
        let v = c.validity();
        window.0 = window.0.max(v.not_before.timestamp());
        window.1 = window.1.min(v.not_after.timestamp());
        if i == 0 {
            window.2 = v.not_after.timestamp();
        }
    }
    Some(window)
}

/// Records the presented chain and the verification results, and always lets the handshake finish.
///
/// Handshake signatures are still checked for real: only the trust decision is deferred, so the
/// `tls` check can say why a chain is bad and other checks can refuse to send over it.
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    shared: Arc<Shared>,
    seen: Mutex<Option<Presented>>,
}

/// What the verifier saw during one handshake.
#[derive(Debug, Clone)]
pub(crate) struct Presented {
    pub chain: Arc<[CertificateDer<'static>]>,
    pub not_after: Option<i64>,
    pub ocsp: Vec<u8>,
    pub trust: Result<(), CertProblem>,
    pub hostname: Result<(), CertProblem>,
}

impl RecordingVerifier {
    fn new(shared: Arc<Shared>) -> Self {
        RecordingVerifier {
            shared,
            seen: Mutex::new(None),
        }
    }

    /// A handshake signature that cannot be checked (a 1024-bit RSA key, say) marks the connection
    /// untrusted instead of aborting it, so the `tls` check can still report the key.
    fn tolerate(
        &self,
        result: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                let mut slot = self.seen.lock().map_err(|_| e.clone())?;
                let seen = slot.as_mut().ok_or_else(|| e.clone())?;
                let why = seen
                    .chain
                    .first()
                    .and_then(|leaf| weak_key(leaf))
                    .unwrap_or_else(|| {
                        "the server's handshake signature does not verify with its certificate's key"
                            .to_string()
                    });
                seen.trust = Err(CertProblem::Other(why));
                Ok(HandshakeSignatureValid::assertion())
            }
        }
    }

    /// What the last handshake presented, if it got that far.
    pub fn take(&self) -> Option<Presented> {
        self.seen.lock().ok()?.take()
    }
}

/// Whether a chain leads to a trusted root, and whether its leaf is valid for `server_name`.
pub(crate) fn judge_chain(
    roots: &RootCertStore,
    provider: &CryptoProvider,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> (Result<(), CertProblem>, Result<(), CertProblem>) {
    match ParsedCertificate::try_from(end_entity) {
        Ok(parsed) => {
            let algs = provider.signature_verification_algorithms.all;
            let trust =
                verify_server_cert_signed_by_trust_anchor(&parsed, roots, intermediates, now, algs);
            (
                trust.map_err(classify),
                verify_server_name(&parsed, server_name).map_err(classify),
            )
        }
        Err(e) => (Err(classify(e.clone())), Err(classify(e))),
    }
}

/// "RSA 1024-bit key: below the 2048-bit minimum", when that is why a signature fails.
fn weak_key(der: &[u8]) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    let spki = c.public_key();
    let bits = spki.parsed().ok()?.key_size();
    let rsa = spki.algorithm.algorithm.to_id_string() == "1.2.840.113549.1.1.1";
    (rsa && bits < 2048).then(|| format!("RSA {bits}-bit key: below the 2048-bit minimum"))
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let known = self
            .shared
            .verdict(end_entity, intermediates, server_name, now);
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(Presented {
                chain: known.chain.clone(),
                not_after: known.not_after,
                ocsp: ocsp_response.to_vec(),
                trust: known.trust.clone(),
                hostname: known.hostname.clone(),
            });
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tolerate(self.shared.inner.verify_tls12_signature(message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tolerate(self.shared.inner.verify_tls13_signature(message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.shared.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA named `ca_name` and a leaf for `localhost` valid for `days` more days.
    fn chain(ca_name: &str, days: i64) -> (CertificateDer<'static>, CertificateDer<'static>) {
        let now = time::OffsetDateTime::now_utc();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.not_before = now - time::Duration::days(1);
        leaf.not_after = now + time::Duration::days(days);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
        (ca_cert.der().clone(), leaf.der().clone())
    }

    fn shared(root: CertificateDer<'static>) -> Arc<Shared> {
        let mut roots = RootCertStore::empty();
        roots.add(root).unwrap();
        let setup = TlsSetup::new(roots, Arc::new(crate::crypto::provider())).unwrap();
        setup.shared
    }

    #[test]
    fn a_chain_is_verified_once_while_its_certificates_are_valid() {
        let (root, leaf) = chain("cache test CA", 30);
        let shared = shared(root);
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();
        let first = shared.verdict(&leaf, &[], &name, now);
        assert!(first.trust.is_ok() && first.hostname.is_ok());
        assert!(Arc::ptr_eq(&first, &shared.verdict(&leaf, &[], &name, now)));
        // Past the leaf's notAfter the chain is judged again, and that verdict is not kept.
        let later =
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.as_secs() + 31 * 86400));
        let expired = shared.verdict(&leaf, &[], &name, later);
        assert_eq!(expired.trust, Err(CertProblem::Expired));
        assert!(Arc::ptr_eq(&first, &shared.verdict(&leaf, &[], &name, now)));
        // Another name is another verdict.
        let other = ServerName::try_from("elsewhere.test").unwrap();
        let elsewhere = shared.verdict(&leaf, &[], &other, now);
        assert!(!Arc::ptr_eq(&first, &elsewhere));
        assert_eq!(elsewhere.hostname, Err(CertProblem::NotValidForName));
        assert_eq!(first.not_after, Some(now.as_secs() as i64 + 30 * 86400));
    }

    #[test]
    fn a_chain_from_an_unknown_issuer_is_not_trusted_twice_over() {
        let (_, leaf) = chain("cache test CA", 30);
        let (other_root, _) = chain("another CA", 30);
        let shared = shared(other_root);
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();
        for _ in 0..2 {
            let v = shared.verdict(&leaf, &[], &name, now);
            assert_eq!(v.trust, Err(CertProblem::UnknownIssuer));
        }
    }
}
