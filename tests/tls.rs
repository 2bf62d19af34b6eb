//! The `tls` check against real rustls servers with certificates made at test time.

mod common;

use common::*;
use shipwatch::probe::Status;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::PrivateKeyDer;

fn tls_check(port: u16, extra: &str) -> String {
    format!("[[check]]\nname = \"tls\"\nkind = \"tls\"\nhost = \"localhost:{port}\"\n{extra}\n")
}

async fn run_against(identity: &Identity, pki: &Pki, extra: &str) -> shipwatch::runner::Outcome {
    let server = https_server(identity, |_| Resp::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let mut out = run_toml(&tls_check(server.port(), extra), Some(pki.write_ca(&dir))).await;
    out.remove(0)
}

/// A rustls server for a fresh `localhost` leaf that speaks TLS 1.2 only.
async fn tls12_only_server(pki: &Pki) -> Server {
    let config = tls_config(
        &pki.leaf(&["localhost"], 90),
        Some(&[&rustls::version::TLS12]),
    );
    serve(
        std::sync::Arc::new(|_: &Req| Resp::new(200, "")),
        Some(config),
    )
    .await
}

/// `openssl s_server` for a fresh `localhost` leaf and its intermediate, with extra flags.
async fn openssl_leaf_server(
    pki: &Pki,
    dir: &tempfile::TempDir,
    args: &[&str],
) -> (u16, tokio::process::Child) {
    openssl_identity_server(&pki.leaf(&["localhost"], 90), pki, dir, args).await
}

/// `openssl s_server` presenting `id` and the PKI's intermediate.
async fn openssl_identity_server(
    id: &Identity,
    pki: &Pki,
    dir: &tempfile::TempDir,
    args: &[&str],
) -> (u16, tokio::process::Child) {
    let (cert, key, chain) = (
        dir.path().join("leaf.pem"),
        dir.path().join("leaf.key"),
        dir.path().join("chain.pem"),
    );
    std::fs::write(&cert, &id.cert_pem).unwrap();
    std::fs::write(&key, &id.key_pem).unwrap();
    std::fs::write(&chain, &pki.inter_pem).unwrap();
    let chain = chain.to_string_lossy().into_owned();
    let mut all = vec!["-cert_chain", chain.as_str()];
    all.extend(args);
    openssl_server(&cert, &key, &all).await
}

#[tokio::test]
async fn good_chain_with_intermediate_passes_everything() {
    let pki = Pki::new();
    let o = run_against(&pki.leaf(&["localhost"], 90), &pki, "").await;
    assert_eq!(o.status, Status::Pass, "{:?}", o.findings);
    assert_finding(&o, "tls.trust", Status::Pass, "trusted");
    assert_finding(&o, "tls.hostname", Status::Pass, "localhost");
    assert_finding(&o, "tls.expiry", Status::Pass, "89 days");
    assert_finding(&o, "tls.chain_expiry", Status::Pass, "intermediate");
    assert_finding(&o, "tls.version", Status::Pass, "TLSv1.3");
    assert_finding(&o, "tls.key", Status::Pass, "EC P-256");
    assert_eq!(o.details.json()["subject"], "CN=localhost");
    assert_eq!(o.details.json()["issuer"], "CN=shipwatch test intermediate");
    assert_eq!(o.details.json()["sans"], serde_json::json!(["localhost"]));
    assert!(
        o.details.json()["not_after"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
}

#[tokio::test]
async fn expired_leaf_fails_trust_and_expiry() {
    let pki = Pki::new();
    let o = run_against(&pki.leaf(&["localhost"], -2), &pki, "").await;
    assert_eq!(o.status, Status::Fail);
    assert_finding(&o, "tls.trust", Status::Fail, "expired");
    assert_finding(&o, "tls.expiry", Status::Fail, "expired");
}

#[tokio::test]
async fn expiring_in_ten_days_warns_and_in_three_fails() {
    let pki = Pki::new();
    let o = run_against(&pki.leaf(&["localhost"], 10), &pki, "").await;
    assert_eq!(o.status, Status::Warn);
    assert_finding(&o, "tls.expiry", Status::Warn, "9 days");
    let o = run_against(&pki.leaf(&["localhost"], 3), &pki, "").await;
    assert_finding(&o, "tls.expiry", Status::Fail, "2 days");
}

#[tokio::test]
async fn thresholds_are_configurable() {
    let pki = Pki::new();
    let o = run_against(
        &pki.leaf(&["localhost"], 10),
        &pki,
        "warn_days = 5\nfail_days = 2",
    )
    .await;
    assert_finding(&o, "tls.expiry", Status::Pass, "9 days");
}

#[tokio::test]
async fn wrong_host_fails_hostname_only() {
    let pki = Pki::new();
    let o = run_against(&pki.leaf(&["other.example"], 90), &pki, "").await;
    assert_finding(&o, "tls.trust", Status::Pass, "trusted");
    assert_finding(&o, "tls.hostname", Status::Fail, "other.example");
}

#[tokio::test]
async fn self_signed_is_named() {
    let pki = Pki::new();
    let o = run_against(&self_signed(&["localhost"]), &pki, "").await;
    assert_finding(&o, "tls.trust", Status::Fail, "self-signed");
}

#[tokio::test]
async fn missing_intermediate_is_named() {
    let pki = Pki::new();
    let mut id = pki.leaf(&["localhost"], 90);
    id.chain.truncate(1);
    let o = run_against(&id, &pki, "").await;
    assert_finding(&o, "tls.trust", Status::Fail, "missing intermediate");
    assert_finding(&o, "tls.chain_expiry", Status::Pass, "none presented");
}

#[tokio::test]
async fn unknown_root_is_an_unknown_issuer() {
    let pki = Pki::new();
    let other = Pki::unrelated();
    let o = run_against(&pki.leaf(&["localhost"], 90), &other, "").await;
    assert_finding(&o, "tls.trust", Status::Fail, "unknown issuer");
}

#[tokio::test]
async fn expiring_intermediate_fails_chain_expiry() {
    let pki = Pki::with_intermediate_days(5);
    let o = run_against(&pki.leaf(&["localhost"], 90), &pki, "").await;
    assert_finding(
        &o,
        "tls.chain_expiry",
        Status::Fail,
        "shipwatch test intermediate",
    );
    assert_finding(&o, "tls.expiry", Status::Pass, "89 days");
}

#[tokio::test]
async fn version_below_minimum_fails() {
    let pki = Pki::new();
    let server = tls12_only_server(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_toml(
        &tls_check(server.port(), "min_version = \"1.3\""),
        Some(pki.write_ca(&dir)),
    )
    .await;
    assert_finding(&out[0], "tls.version", Status::Fail, "TLSv1.2");
    let out = run_toml(&tls_check(server.port(), ""), Some(pki.write_ca(&dir))).await;
    assert_finding(&out[0], "tls.version", Status::Pass, "TLSv1.2");
}

/// A 1024-bit RSA key needs a server rustls will not run, so OpenSSL serves it.
#[tokio::test]
async fn weak_rsa_key_fails_tls_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("weak.crt"), dir.path().join("weak.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (port, mut server) = openssl_server(&cert, &key, &["-cipher", "DEFAULT@SECLEVEL=0"]).await;
    let out = run_toml(&tls_check(port, ""), Some(cert.clone())).await;
    let _ = server.kill().await;
    assert_finding(
        &out[0],
        "tls.key",
        Status::Fail,
        "RSA 1024-bit key: below the 2048-bit minimum",
    );
    assert_finding(
        &out[0],
        "tls.trust",
        Status::Fail,
        "RSA 1024-bit key: below the 2048-bit minimum",
    );
}

#[tokio::test]
async fn plain_http_port_is_a_tls_error() {
    let server = http_server(|_| Resp::new(200, "plain")).await;
    let out = run_toml(&tls_check(server.port(), ""), None).await;
    assert_eq!(out[0].status, Status::Error);
    let e = out[0].error.as_ref().unwrap();
    assert_eq!(e.kind, "tls");
    assert!(e.message.contains("does not speak TLS"), "{}", e.message);
}

#[tokio::test]
async fn server_accepting_tls_1_0_fails_legacy_and_can_be_made_a_warning() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let args = ["-min_protocol", "TLSv1", "-cipher", "DEFAULT@SECLEVEL=0"];
    let (port, _server) = openssl_leaf_server(&pki, &dir, &args).await;
    let ca = pki.write_ca(&dir);
    let out = run_toml(&tls_check(port, ""), Some(ca.clone())).await;
    assert_finding(&out[0], "tls.legacy", Status::Fail, "TLSv1.0");
    assert_finding(&out[0], "tls.version", Status::Pass, "TLSv1.3");
    let out = run_toml(&tls_check(port, "legacy = \"warn\""), Some(ca)).await;
    assert_finding(&out[0], "tls.legacy", Status::Warn, "TLSv1.0");
}

#[tokio::test]
async fn modern_only_server_refuses_legacy_and_offers_tls13() {
    let pki = Pki::new();
    let o = run_against(&pki.leaf(&["localhost"], 90), &pki, "").await;
    assert_finding(&o, "tls.legacy", Status::Pass, "none accepted");
    assert_finding(&o, "tls.tls13", Status::Pass, "TLSv1.3");
    assert_finding(
        &o,
        "tls.chain_order",
        Status::Pass,
        "2 certificates in order",
    );
    assert_finding(&o, "tls.ocsp_stapling", Status::Pass, "no responder");
}

#[tokio::test]
async fn tls12_only_server_warns_about_tls13() {
    let pki = Pki::new();
    let server = tls12_only_server(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_toml(&tls_check(server.port(), ""), Some(pki.write_ca(&dir))).await;
    assert_finding(&out[0], "tls.tls13", Status::Warn, "TLSv1.2");
}

#[tokio::test]
async fn ocsp_stapling_variants() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(&dir);
    let with_aia = pki.leaf_with(&["localhost"], 90, |p| {
        p.custom_extensions
            .push(ocsp_aia("http://ocsp.example.test"))
    });
    let o = run_against(&with_aia, &pki, "").await;
    assert_finding(
        &o,
        "tls.ocsp_stapling",
        Status::Warn,
        "http://ocsp.example.test",
    );
    // The same certificate with a staple: presence is what the check judges.
    let config = tls_config_with_ocsp(&with_aia, vec![0x30, 0x03, 0x0a, 0x01, 0x00]);
    let server = serve(
        std::sync::Arc::new(|_: &Req| Resp::new(200, "")),
        Some(config),
    )
    .await;
    let out = run_toml(&tls_check(server.port(), ""), Some(ca)).await;
    assert_finding(&out[0], "tls.ocsp_stapling", Status::Pass, "stapled");
    let must = pki.leaf_with(&["localhost"], 90, |p| {
        p.custom_extensions
            .push(ocsp_aia("http://ocsp.example.test"));
        p.custom_extensions.push(must_staple());
    });
    let o = run_against(&must, &pki, "").await;
    assert_finding(&o, "tls.ocsp_stapling", Status::Fail, "must-staple");
}

#[tokio::test]
async fn chain_with_root_or_out_of_order_warns() {
    let pki = Pki::new();
    let mut id = pki.leaf(&["localhost"], 90);
    id.chain.push(pki.root_der.clone());
    let o = run_against(&id, &pki, "").await;
    assert_finding(&o, "tls.chain_order", Status::Warn, "includes the root");
    assert_finding(&o, "tls.trust", Status::Pass, "trusted");
    let mut id = pki.leaf(&["localhost"], 90);
    id.chain = vec![
        id.chain[0].clone(),
        pki.root_der.clone(),
        pki.inter_der.clone(),
    ];
    let o = run_against(&id, &pki, "").await;
    assert_finding(
        &o,
        "tls.chain_order",
        Status::Warn,
        "not followed by its issuer",
    );
}

#[tokio::test]
async fn a_legacy_only_server_still_gets_its_certificate_judged() {
    // Before TLS 1.3 the Certificate message travels in clear: the legacy probe reads it.
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let args = ["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"];
    let (port, _server) = openssl_leaf_server(&pki, &dir, &args).await;
    let out = run_toml(&tls_check(port, ""), Some(pki.write_ca(&dir))).await;
    let o = &out[0];
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(o.status, Status::Fail);
    assert_finding(o, "tls.trust", Status::Pass, "trusted");
    assert_finding(o, "tls.hostname", Status::Pass, "localhost");
    assert_finding(o, "tls.expiry", Status::Pass, "expires in");
    assert_finding(o, "tls.chain_expiry", Status::Pass, "intermediate");
    assert_finding(o, "tls.key", Status::Pass, "EC P-256");
    assert_finding(
        o,
        "tls.version",
        Status::Fail,
        "the server offers only TLSv1.0 and older; shipwatch requires TLS ≥ 1.2",
    );
    assert_finding(o, "tls.legacy", Status::Fail, "TLSv1.0");
}

#[tokio::test]
async fn a_legacy_only_server_with_an_expired_certificate() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let id = pki.leaf(&["localhost"], -3);
    let args = ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"];
    let (port, _server) = openssl_identity_server(&id, &pki, &dir, &args).await;
    let out = run_toml(&tls_check(port, ""), Some(pki.write_ca(&dir))).await;
    assert_finding(&out[0], "tls.trust", Status::Fail, "expired");
    assert_finding(&out[0], "tls.expiry", Status::Fail, "expired 3 days ago");
    assert_finding(&out[0], "tls.legacy", Status::Fail, "TLSv1.1");
}

/// Runs `openssl` with `args`, failing the test with its output when it fails.
fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a leaf for localhost made by openssl: `key` is the leaf's -newkey argument (or an
/// EC curve name), `digest` the issuer's signature hash. Returns (ca, leaf, leaf key) paths.
fn openssl_chain(dir: &tempfile::TempDir, curve: Option<&str>, digest: &str) -> [String; 3] {
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let (ca, ca_key, leaf, key, csr, ext) = (
        p("oca.pem"),
        p("oca.key"),
        p("oleaf.pem"),
        p("oleaf.key"),
        p("o.csr"),
        p("o.ext"),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=openssl test CA",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=keyCertSign",
    ]);
    match curve {
        Some(c) => {
            openssl(&["ecparam", "-name", c, "-genkey", "-noout", "-out", &key]);
            openssl(&[
                "req",
                "-new",
                "-key",
                &key,
                "-subj",
                "/CN=localhost",
                "-out",
                &csr,
            ]);
        }
        None => openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &key,
            "-out",
            &csr,
        ]),
    }
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "30",
        &format!("-{digest}"),
        "-extfile",
        &ext,
        "-out",
        &leaf,
    ]);
    [ca, leaf, key]
}

#[tokio::test]
async fn a_p521_leaf_completes_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, leaf, key] = openssl_chain(&dir, Some("secp521r1"), "sha256");
    let (port, _server) = openssl_server(leaf.as_ref(), key.as_ref(), &[]).await;
    let out = run_toml(&tls_check(port, ""), Some(ca.into())).await;
    let o = &out[0];
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_finding(o, "tls.trust", Status::Pass, "trusted");
    assert_finding(o, "tls.key", Status::Pass, "EC P-521");
}

#[tokio::test]
async fn a_sha1_signed_certificate_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, leaf, key] = openssl_chain(&dir, None, "sha1");
    let (port, _server) = openssl_server(
        leaf.as_ref(),
        key.as_ref(),
        &["-cipher", "DEFAULT@SECLEVEL=0"],
    )
    .await;
    let out = run_toml(&tls_check(port, ""), Some(ca.into())).await;
    assert_finding(
        &out[0],
        "tls.trust",
        Status::Fail,
        "a certificate in the chain is signed with SHA-1, which browsers reject",
    );
}

#[tokio::test]
async fn a_certificate_not_valid_yet_reads_the_same_everywhere() {
    let pki = Pki::new();
    let id = pki.leaf_with(&["localhost"], 90, |p| {
        p.not_before = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    });
    let o = run_against(&id, &pki, "").await;
    assert_finding(&o, "tls.trust", Status::Fail, "not valid yet");
    assert_finding(&o, "tls.expiry", Status::Fail, "is not valid until");
}

#[tokio::test]
async fn a_chain_longer_than_clients_follow_is_named() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca = |name: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    };
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca("deep root");
    let root_pem = root_params.self_signed(&root_key).unwrap().pem();
    let mut issuer = Issuer::new(root_params, root_key);
    let mut chain = Vec::new();
    for i in 0..7 {
        let key = KeyPair::generate().unwrap();
        let params = ca(&format!("deep intermediate {i}"));
        chain.insert(0, params.signed_by(&key, &issuer).unwrap().der().clone());
        issuer = Issuer::new(params, key);
    }
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    chain.insert(0, leaf.der().clone());
    let id = Identity {
        chain,
        key: key.serialize_der(),
        cert_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("deep.pem");
    std::fs::write(&ca_file, root_pem).unwrap();
    let s = https_server(&id, |_| Resp::new(200, "")).await;
    let out = run_toml(&tls_check(s.port(), ""), Some(ca_file)).await;
    assert_finding(
        &out[0],
        "tls.trust",
        Status::Fail,
        "more than 6 intermediate certificates",
    );
}

/// The engine remembers the verdict on a chain it has verified, but a server that presents that
/// same chain without its private key must still fail: the handshake's own signature is checked
/// on every connection. A different chain is verified afresh.
#[tokio::test]
async fn a_remembered_chain_still_needs_the_servers_key() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let engine = shipwatch::net::Engine::new(&shipwatch::net::EngineOptions {
        ca_file: Some(pki.write_ca(&dir)),
        nameservers: vec![],
    })
    .unwrap();
    let good = pki.leaf(&["localhost"], 30);
    let real = https_server(&good, |_| Resp::new(200, "ok")).await;
    // The same certificates, signing with a key of the imposter's own.
    let imposter_key = rcgen::KeyPair::generate().unwrap().serialize_der();
    let provider = Arc::new(shipwatch::crypto::provider());
    let signing = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(imposter_key.into()))
        .unwrap();
    let stolen = rustls::sign::CertifiedKey::new(good.chain.clone(), signing);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(stolen)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let imposter = serve(
        Arc::new(|_: &Req| Resp::new(200, "ok")),
        Some(Arc::new(config)),
    )
    .await;
    let other = https_server(&pki.leaf(&["elsewhere.test"], 30), |_| Resp::new(200, "ok")).await;

    let handshake = |port: u16| {
        let engine = engine.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let overrides = Default::default();
            let (info, _) = engine
                .handshake("localhost", port, "localhost", &overrides, deadline)
                .await
                .expect("handshake");
            info
        }
    };
    for _ in 0..3 {
        assert!(handshake(real.port()).await.verified());
    }
    let replayed = handshake(imposter.port()).await;
    assert_eq!(replayed.chain.as_ref(), good.chain.as_slice());
    assert!(!replayed.verified());
    assert!(
        replayed
            .problem()
            .unwrap_or_default()
            .contains("handshake signature"),
        "{:?}",
        replayed.problem()
    );
    // The real server is still trusted afterwards, and a chain for another name is judged anew.
    assert!(handshake(real.port()).await.verified());
    let elsewhere = handshake(other.port()).await;
    assert!(elsewhere.trust.is_ok());
    assert_eq!(
        elsewhere.hostname,
        Err(shipwatch::net::CertProblem::NotValidForName)
    );
}
