//! Servers that close connections: with `Connection: close`, and silently after each response (as
//! proxies closing idle keep-alive connections do). No check may count that as an error.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use shipwatch::probe::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A plain-HTTP server that answers one request per connection and then closes it without
/// saying so. Counts the connections it accepted.
async fn silent_closer(body: &'static str, ctype: &'static str) -> (Server, Arc<AtomicUsize>) {
    let conns = Arc::new(AtomicUsize::new(0));
    let counter = conns.clone();
    let s = raw_server(move |mut tcp| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = tcp.write_all(head.as_bytes()).await;
            let _ = tcp.write_all(body.as_bytes()).await;
            let _ = tcp.shutdown().await;
        }
    })
    .await;
    (s, conns)
}

#[tokio::test]
async fn latency_against_connection_close_has_no_errors() {
    let s = http_server(|_| Resp::new(200, "ok").header("connection", "close")).await;
    let toml = format!(
        "[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"{}/x\"\nrequests = 300\nconcurrency = 8\n",
        s.url("http", "127.0.0.1")
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(o.details.json()["latency"]["errors"], 0);
    assert_eq!(o.details.json()["latency"]["requests"], 300);
}

#[tokio::test]
async fn latency_against_a_silent_closer_reconnects_instead_of_failing() {
    let (s, conns) = silent_closer("ok", "text/plain").await;
    let toml = format!(
        "[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"{}/x\"\nrequests = 200\nconcurrency = 4\n",
        s.url("http", "127.0.0.1")
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(o.details.json()["latency"]["errors"], 0);
    // Each request needed its own connection; the ones found closed are reported.
    assert!(conns.load(Ordering::SeqCst) >= 200);
    assert!(o.details.json()["latency"]["reconnects"].as_u64().is_some());
}

/// Answers the first request of each connection as if it stayed open, then answers the second
/// with a reset (SO_LINGER 0), as a server that timed the connection out while the request was on
/// its way does.
async fn resetter() -> Server {
    raw_server(|mut tcp| async move {
        let mut chunk = [0u8; 4096];
        for answered in 0.. {
            let mut buf = Vec::new();
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            if answered == 1 {
                let _ = tcp.set_zero_linger();
                return;
            }
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
        }
    })
    .await
}

#[tokio::test]
async fn latency_against_a_server_that_resets_reused_connections_reconnects() {
    let s = resetter().await;
    let toml = format!(
        "[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"{}/x\"\nrequests = 100\nconcurrency = 2\n",
        s.url("http", "127.0.0.1")
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(o.details.json()["latency"]["errors"], 0);
    assert!(
        o.details.json()["latency"]["reconnects"]
            .as_u64()
            .unwrap_or(0)
            >= 40
    );
}

#[tokio::test]
async fn the_built_in_health_latency_passes_against_a_closing_server() {
    let s = http_server(|r| {
        let r = if r.path == "/health" {
            Resp::json(200, r#"{"status":"ok","database":"ok"}"#)
        } else {
            Resp::html("<p>home</p>")
        };
        r.header("connection", "close")
    })
    .await;
    let toml = format!(
        "[[check]]\nname = \"health-latency\"\nkind = \"latency\"\nurl = \"{}/health\"\nrequests = 50\nconcurrency = 4\nexpect = ['p95 < 500ms', 'errors < 1%']\n",
        s.url("http", "127.0.0.1")
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
}

#[tokio::test]
async fn page_assets_exposure_and_flows_survive_closed_connections() {
    let page: String = (0..20)
        .map(|i| format!("<img src=\"/i{i}.png\">"))
        .collect();
    let page: &'static str = Box::leak(page.into_boxed_str());
    let (s, _) = silent_closer(page, "text/html").await;
    let base = s.url("http", "127.0.0.1");
    let toml = format!(
        "[[check]]\nname = \"page\"\nkind = \"page\"\nurl = \"{base}/\"\n\n\
         [[check]]\nname = \"exp\"\nkind = \"exposure\"\nurl = \"{base}/\"\n\n\
         [[check]]\nname = \"flow\"\nkind = \"flow\"\n\
         [[check.step]]\nname = \"a\"\nurl = \"{base}/a\"\n\
         [[check.step]]\nname = \"b\"\nurl = \"{base}/b\"\n\
         [[check.step]]\nname = \"c\"\nurl = \"{base}/c\"\n"
    );
    let out = run_toml(&toml, None).await;
    assert_finding(
        &out[0],
        "page.assets",
        Status::Pass,
        "all 20 same-origin assets load",
    );
    assert!(out[1].error.is_none(), "{:?}", out[1].error);
    assert_eq!(out[2].status, Status::Pass, "{:#?}", out[2].findings);
}
