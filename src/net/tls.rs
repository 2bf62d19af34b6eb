//! TLS set-up: trusted roots, and a verifier that records what the server presented instead of hanging up.

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
    /// The chain in the order the server sent it, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
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

/// Records the presented chain and the verification results, and always lets the handshake finish.
///
/// Handshake signatures are still checked for real: only the trust decision is deferred, so the
/// `tls` check can say why a chain is bad and other checks can refuse to send over it.
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<Presented>>,
}

/// What the verifier saw during one handshake.
#[derive(Debug, Clone)]
pub(crate) struct Presented {
    pub chain: Vec<CertificateDer<'static>>,
    pub ocsp: Vec<u8>,
    pub trust: Result<(), CertProblem>,
    pub hostname: Result<(), CertProblem>,
}

impl RecordingVerifier {
    pub fn new(roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Result<Self, NetError> {
        let inner = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| NetError::Setup(format!("cannot build the certificate verifier: {e}")))?;
        Ok(RecordingVerifier {
            roots,
            provider,
            inner,
            seen: Mutex::new(None),
        })
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
        let (trust, hostname) = judge_chain(
            &self.roots,
            &self.provider,
            end_entity,
            intermediates,
            server_name,
            now,
        );
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(Presented {
                chain,
                ocsp: ocsp_response.to_vec(),
                trust,
                hostname,
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
        self.tolerate(self.inner.verify_tls12_signature(message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tolerate(self.inner.verify_tls13_signature(message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
