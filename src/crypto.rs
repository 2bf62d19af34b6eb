//! The one crypto library every TLS connection and signature uses: aws-lc-rs by default, or ring
//! (the `ring` feature without the default ones). See `Cargo.toml` for why.

#[cfg(not(any(feature = "aws-lc", feature = "ring")))]
compile_error!("enable the `aws-lc` feature (the default) or the `ring` feature");

/// The rustls provider for every connection shipwatch makes or serves.
pub fn provider() -> rustls::crypto::CryptoProvider {
    #[cfg(feature = "aws-lc")]
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(all(feature = "ring", not(feature = "aws-lc")))]
    let mut provider = rustls::crypto::ring::default_provider();
    // Offered in the order Firefox offers them: AES-128-GCM, ChaCha20, then AES-256-GCM. A server
    // that lets the client choose then picks what most visitors get, and its SHA-256 key schedule
    // costs a probe less than AES-256's SHA-384.
    provider
        .cipher_suites
        .sort_by_key(|s| s.suite().as_str().is_some_and(|n| n.contains("AES_256")));
    provider
}

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    #[cfg(feature = "aws-lc")]
    use aws_lc_rs::hmac;
    #[cfg(all(feature = "ring", not(feature = "aws-lc")))]
    use ring::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// SHA-1 of `data`: only for protocols that fix it, such as the WebSocket handshake.
pub(crate) fn sha1(data: &[u8]) -> Vec<u8> {
    #[cfg(feature = "aws-lc")]
    use aws_lc_rs::digest;
    #[cfg(all(feature = "ring", not(feature = "aws-lc")))]
    use ring::digest;
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

/// `N` bytes from the operating system's random source.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    #[cfg(feature = "aws-lc")]
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    #[cfg(all(feature = "ring", not(feature = "aws-lc")))]
    use ring::rand::{SecureRandom, SystemRandom};
    let mut out = [0u8; N];
    // The system source does not fail on the platforms shipwatch runs on; if it did, the bytes
    // would stay zero, which for a WebSocket key or mask is still a valid value.
    let _ = SystemRandom::new().fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = super::hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sha1_matches_rfc_3174() {
        let hex: String = super::sha1(b"abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_ne!(super::random::<16>(), [0u8; 16]);
    }
}
