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
    let id = pki.leaf(&["localhost"], 90);
    let config = tls_config(&id, Some(&[&rustls::version::TLS12]));
    let server = serve(
        std::sync::Arc::new(|_: &Req| Resp::new(200, "")),
        Some(config),
    )
    .await;
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = tokio::process::Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-accept",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl s_server");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
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
