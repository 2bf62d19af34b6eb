//! The `tls` check against real rustls servers with certificates made at test time.

mod common;

use common::*;
use shipwatch::probe::Status;

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
    let id = pki.leaf(&["localhost"], 90);
    let (cert, key) = (dir.path().join("leaf.pem"), dir.path().join("leaf.key"));
    std::fs::write(&cert, format!("{}{}", id.cert_pem, pki.inter_pem)).unwrap();
    std::fs::write(&key, &id.key_pem).unwrap();
    openssl_server(&cert, &key, args).await
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
    assert_eq!(o.details["subject"], "CN=localhost");
    assert_eq!(o.details["issuer"], "CN=shipwatch test intermediate");
    assert_eq!(o.details["sans"], serde_json::json!(["localhost"]));
    assert!(o.details["not_after"].as_str().unwrap().ends_with('Z'));
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
    assert_finding(&out[0], "tls.key", Status::Fail, "RSA 1024 bits");
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
async fn a_legacy_only_server_is_an_error_that_still_names_the_protocol() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let args = ["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"];
    let (port, _server) = openssl_leaf_server(&pki, &dir, &args).await;
    let out = run_toml(&tls_check(port, ""), Some(pki.write_ca(&dir))).await;
    assert_eq!(out[0].status, Status::Error);
    assert_eq!(out[0].error.as_ref().unwrap().kind, "tls");
    assert_finding(&out[0], "tls.legacy", Status::Fail, "TLSv1.0");
}
