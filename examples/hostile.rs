//! A loopback target that misbehaves on purpose, for `bench/hostile.sh`: huge pages of tiny tags,
//! bodies of tens of megabytes or endless, deep JSON, floods of headers and cookies, an origin
//! echo and a redirect loop. Prints `PORT` and serves plain HTTP until killed or until
//! `--for SECONDS` is over.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--for")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on loopback: {e}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("{port}");
    let serve = async {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(connection(tcp));
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(seconds), serve).await;
}

/// Serves requests on one connection until it closes or a handler ends it.
async fn connection(mut tcp: TcpStream) {
    loop {
        let Some((path, origin)) = read_head(&mut tcp).await else {
            return;
        };
        if !answer(&mut tcp, &path, origin.as_deref()).await {
            return;
        }
    }
}

/// The request's path and Origin header, once its head has arrived.
async fn read_head(tcp: &mut TcpStream) -> Option<(String, Option<String>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 64 << 10 {
            return None;
        }
        let n = tcp.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let origin = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("origin: ")
                .or_else(|| l.strip_prefix("Origin: "))
        })
        .map(|o| o.trim().to_string());
    Some((path, origin))
}

async fn send(tcp: &mut TcpStream, head: &str, body: &[u8]) -> bool {
    let head = format!("HTTP/1.1 {head}\r\nContent-Length: {}\r\n\r\n", body.len());
    tcp.write_all(head.as_bytes()).await.is_ok() && tcp.write_all(body).await.is_ok()
}

/// Streams `len` bytes of body; `false` once the client hangs up.
async fn stream(tcp: &mut TcpStream, ctype: &str, len: u64) -> bool {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\n\r\n");
    if tcp.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    let chunk = vec![b'x'; 64 << 10];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        if tcp.write_all(&chunk[..n]).await.is_err() {
            return false;
        }
        left -= n as u64;
    }
    true
}

async fn answer(tcp: &mut TcpStream, path: &str, origin: Option<&str>) -> bool {
    match path {
        // 10 MB of tiny tags: about 1.2 million of them.
        "/tags" => {
            let body = "<b>x</b>".repeat(10_000_000 / 8);
            send(tcp, "200 OK\r\nContent-Type: text/html", body.as_bytes()).await
        }
        // A page naming 900,000 distinct same-origin images.
        "/assets" => {
            let body: String = (0..900_000).map(|i| format!("<img src=/i{i}>")).collect();
            send(tcp, "200 OK\r\nContent-Type: text/html", body.as_bytes()).await
        }
        "/big" => stream(tcp, "application/octet-stream", 50 << 20).await,
        "/endless" => stream(tcp, "application/octet-stream", 5_000_000_000).await,
        "/deep-json" => {
            let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
            send(
                tcp,
                "200 OK\r\nContent-Type: application/json",
                body.as_bytes(),
            )
            .await
        }
        "/cookies" => {
            let cookies: String = (0..90)
                .map(|i| format!("Set-Cookie: c{i}={}; Path=/\r\n", "v".repeat(4000)))
                .collect();
            send(
                tcp,
                &format!(
                    "200 OK\r\nContent-Type: text/html\r\n{}",
                    cookies.trim_end()
                ),
                b"<p>cookies</p>",
            )
            .await
        }
        "/headers" => {
            let headers: String = (0..5000)
                .map(|i| format!("X-Flood-{i}: {}\r\n", "h".repeat(100)))
                .collect();
            send(tcp, &format!("200 OK\r\n{}", headers.trim_end()), b"ok").await
        }
        // Answers and closes, saying so.
        "/close" => {
            let _ = send(tcp, "200 OK\r\nConnection: close", b"ok").await;
            false
        }
        // Answers as if the connection stayed open, then closes it: a proxy's idle timeout.
        "/drop" => {
            let _ = send(tcp, "200 OK", b"ok").await;
            false
        }
        "/loop" => send(tcp, "302 Found\r\nLocation: /loop2", b"").await,
        "/loop2" => send(tcp, "302 Found\r\nLocation: /loop", b"").await,
        _ => {
            let echo = origin
                .map(|o| format!("\r\nAccess-Control-Allow-Origin: {o}\r\nAccess-Control-Allow-Credentials: true"))
                .unwrap_or_default();
            send(
                tcp,
                &format!("200 OK\r\nContent-Type: text/html{echo}"),
                b"<p>ok</p>",
            )
            .await
        }
    }
}
