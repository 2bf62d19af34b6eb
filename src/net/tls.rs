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
            CertProblem::UnknownIssuer => f.write_str("certificate issuer is not trusted"),
            CertProblem::Expired => f.write_str("certificate has expired"),
            CertProblem::NotYetValid => f.write_str("certificate is not valid yet"),
            CertProblem::BadSignature => f.write_str("certificate signature is invalid"),
            CertProblem::NotValidForName => {
                f.write_str("certificate is not valid for this host name")
            }
            CertProblem::Other(s) => write!(f, "certificate rejected: {s}"),
        }
    }
}

fn classify(err: rustls::Error) -> CertProblem {
    match err {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => CertProblem::UnknownIssuer,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                CertProblem::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CertProblem::NotYetValid
            }
            CertificateError::BadSignature => CertProblem::BadSignature,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                CertProblem::NotValidForName
            }
            other => CertProblem::Other(format!("{other:?}")),
        },
        other => CertProblem::Other(other.to_string()),
    }
}

/// The roots every connection trusts: Mozilla's bundle plus an optional PEM file.
pub fn load_roots(ca_file: Option<&Path>) -> Result<RootCertStore, NetError> {
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
pub struct RecordingVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<Presented>>,
}

/// What the verifier saw during one handshake.
#[derive(Debug, Clone)]
pub struct Presented {
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
                seen.trust = Err(CertProblem::Other(format!(
                    "handshake signature not verifiable: {e}"
                )));
                Ok(HandshakeSignatureValid::assertion())
            }
        }
    }

    /// What the last handshake presented, if it got that far.
    pub fn take(&self) -> Option<Presented> {
        self.seen.lock().ok()?.take()
    }
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
        let (trust, hostname) = match ParsedCertificate::try_from(end_entity) {
            Ok(parsed) => {
                let algs = self.provider.signature_verification_algorithms.all;
                let trust = verify_server_cert_signed_by_trust_anchor(
                    &parsed,
                    &self.roots,
                    intermediates,
                    now,
                    algs,
                );
                (
                    trust.map_err(classify),
                    verify_server_name(&parsed, server_name).map_err(classify),
                )
            }
            Err(e) => (Err(classify(e.clone())), Err(classify(e))),
        };
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
