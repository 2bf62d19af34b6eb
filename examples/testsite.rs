//! A loopback deployment for benchmarks and demos: HTTPS (health, page, assets, and `/delay/MS`
//! answering after exactly MS milliseconds) with a private CA,
//! and plain HTTP that redirects to it. Prints `HTTPS_PORT HTTP_PORT CA_FILE` and serves until killed
//! or until `--for SECONDS` is over.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--for")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let dir = std::env::temp_dir().join(format!("shipwatch-testsite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pki = Pki::new();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.root_pem).expect("write ca");
    let page = r#"<!doctype html><html><head><link rel="stylesheet" href="/app.css"><script src="/app.js"></script></head><body><img src="/logo.png"></body></html>"#;
    let https = https_server(&pki.leaf(&["localhost"], 90), move |r| {
        match r.path.as_str() {
            "/health" => Resp::json(200, r#"{"status":"healthy","database":"connected"}"#),
            "/" => Resp::html(page),
            "/app.css" | "/app.js" | "/logo.png" => Resp::new(200, "asset"),
            p if p.starts_with("/delay/") => {
                let ms = p["/delay/".len()..].parse().unwrap_or(0);
                Resp::new(200, "ok").delay(std::time::Duration::from_millis(ms))
            }
            _ => Resp::new(404, "not found"),
        }
        .hardened()
    })
    .await;
    let port = https.port();
    let http =
        http_server(move |r| Resp::redirect(301, &format!("https://localhost:{port}{}", r.path)))
            .await;
    println!("{} {} {}", https.port(), http.port(), ca.display());
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
