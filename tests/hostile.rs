//! Hostile and broken targets: each ends as a clear finding or error within the check's timeout.

mod common;

use std::time::{Duration, Instant};

use common::*;
use shipwatch::config::Config;
use shipwatch::net::Engine;
use shipwatch::plan::{self, PlanOptions};
use shipwatch::probe::Status;
use shipwatch::runner::{self, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const TIMEOUT_MS: u64 = 800;

fn http_check(url: &str) -> String {
    format!(
        "[defaults]\ntimeout = \"{TIMEOUT_MS}ms\"\n[[check]]\nname = \"target\"\nkind = \"http\"\nurl = \"{url}\"\n"
    )
}

/// Runs the check and asserts it ended within the timeout plus a small margin.
async fn run_bounded(toml: &str) -> Outcome {
    let started = Instant::now();
    let o = run_toml(toml, None).await.remove(0);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(TIMEOUT_MS + 700),
        "took {took:?}"
    );
    o
}

fn assert_error(o: &Outcome, kind: &str, needle: &str) {
    assert_eq!(o.status, Status::Error, "{:?}", o.findings);
    let e = o.error.as_ref().expect("error");
    assert_eq!(e.kind, kind, "{}", e.message);
    assert!(
        e.message.contains(needle),
        "expected {needle:?} in {:?}",
        e.message
    );
}

/// Reads the request head so the client is past "connect" before the server misbehaves.
async fn read_head(tcp: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut buf)).await;
}

#[tokio::test]
async fn silent_server_times_out_waiting_for_headers() {
    let s = raw_server(|mut tcp| async move {
        read_head(&mut tcp).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let o = run_bounded(&http_check(&format!("http://127.0.0.1:{}/", s.port()))).await;
    assert_error(&o, "timeout", "waiting for the response headers");
}

#[tokio::test]
async fn trickled_headers_time_out() {
    let s = raw_server(|mut tcp| async move {
        read_head(&mut tcp).await;
        let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\n").await;
        for _ in 0..200 {
            if tcp.write_all(b"X").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let o = run_bounded(&http_check(&format!("http://127.0.0.1:{}/", s.port()))).await;
    assert_error(&o, "timeout", "waiting for the response headers");
}

#[tokio::test]
async fn trickled_body_times_out_while_reading() {
    let s = raw_server(|mut tcp| async move {
        read_head(&mut tcp).await;
        let _ = tcp
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            .await;
        for _ in 0..200 {
            if tcp.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let o = run_bounded(&http_check(&format!("http://127.0.0.1:{}/", s.port()))).await;
    assert_error(&o, "timeout", "reading the body");
}

#[tokio::test]
async fn multi_gigabyte_body_is_capped() {
    let s = raw_server(|mut tcp| async move {
        read_head(&mut tcp).await;
        let _ = tcp
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5000000000\r\n\r\n")
            .await;
        let chunk = vec![0u8; 64 * 1024];
        // 5 GB at most; in practice the client hangs up after its cap.
        for _ in 0..(5_000_000_000u64 / chunk.len() as u64) {
            if tcp.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    let toml = http_check(&format!("http://127.0.0.1:{}/", s.port()))
        .replace("[defaults]\n", "[defaults]\nmax_body = 2097152\n");
    let o = run_bounded(&toml).await;
    assert_eq!(o.status, Status::Fail);
    assert_finding(&o, "http.body_limit", Status::Fail, "> 2097152 bytes");
}

#[tokio::test]
async fn connection_reset_is_a_protocol_error() {
    let s = raw_server(|mut tcp| async move {
        read_head(&mut tcp).await;
        let _ = tcp.set_zero_linger();
        drop(tcp);
    })
    .await;
    let o = run_bounded(&http_check(&format!("http://127.0.0.1:{}/", s.port()))).await;
    assert_error(
        &o,
        "protocol",
        "the server reset the connection before answering",
    );
}

#[tokio::test]
async fn garbage_instead_of_http_is_a_protocol_error() {
    let s = raw_server(|mut tcp| async move {
        read_head(&mut tcp).await;
        let _ = tcp
            .write_all(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02garbage\r\n\r\n")
            .await;
    })
    .await;
    let o = run_bounded(&http_check(&format!("http://127.0.0.1:{}/", s.port()))).await;
    assert_error(&o, "protocol", "no valid HTTP response");
}

#[tokio::test]
async fn tls_to_a_plain_http_port_is_a_tls_error() {
    let s = http_server(|_| Resp::new(200, "plain")).await;
    let o = run_bounded(&http_check(&format!("https://127.0.0.1:{}/", s.port()))).await;
    assert_error(&o, "tls", "does not speak TLS");
}

#[tokio::test]
async fn closed_port_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = run_bounded(&http_check(&format!("http://127.0.0.1:{port}/"))).await;
    assert_error(&o, "connect", "refused");
}

#[tokio::test]
async fn redirect_loop_is_reported() {
    let s = http_server(|r| {
        if r.path == "/a" {
            Resp::redirect(302, "/b")
        } else {
            Resp::redirect(302, "/a")
        }
    })
    .await;
    let o = run_bounded(&http_check(&format!("http://127.0.0.1:{}/a", s.port()))).await;
    assert_error(&o, "protocol", "redirect loop");
}

/// A loopback DNS server that answers every query with NXDOMAIN.
async fn nxdomain_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        for _ in 0..100 {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            if n < 12 {
                continue;
            }
            // The question ends after the name's zero label and four bytes of type and class.
            let mut end = 12;
            while end < n && buf[end] != 0 {
                end += buf[end] as usize + 1;
            }
            let end = (end + 5).min(n);
            let mut resp = buf[..end].to_vec();
            resp[2] |= 0x80; // response
            resp[3] = 0x80 | 0x03; // recursion available, NXDOMAIN
            resp[6..12].fill(0); // no answers, authorities or additionals
            let _ = sock.send_to(&resp, from).await;
        }
    });
    (addr, task)
}

#[tokio::test]
async fn nxdomain_is_a_dns_error() {
    let (dns, task) = nxdomain_server().await;
    let config =
        Config::parse("t.toml", &http_check("http://no-such-host.shipwatch.test/")).unwrap();
    let mut plan = plan::build(&config, &PlanOptions::default()).unwrap();
    plan.engine.nameservers = vec![dns];
    let engine = Engine::new(&plan.engine).unwrap();
    let started = Instant::now();
    let o = runner::run_once(&plan, &engine).await.remove(0);
    assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS + 700));
    task.abort();
    assert_error(&o, "dns", "NXDOMAIN");
    assert!(
        o.error
            .unwrap()
            .message
            .contains("no-such-host.shipwatch.test")
    );
}

#[tokio::test]
async fn a_page_naming_a_flood_of_assets_checks_the_first_two_hundred() {
    let page: String = (0..5000).map(|i| format!("<img src=/i{i}>")).collect();
    let s = http_server(move |r| {
        if r.path == "/" {
            Resp::html(&page)
        } else {
            Resp::new(200, "")
        }
    })
    .await;
    let toml = format!(
        "[defaults]\ntimeout = \"10s\"\n[[check]]\nname = \"p\"\nkind = \"page\"\nurl = \"http://127.0.0.1:{}/\"\n",
        s.port()
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_finding(
        &o,
        "page.assets",
        Status::Pass,
        "all 200 same-origin assets load; 4800 more same-origin assets were not checked",
    );
}

#[tokio::test]
async fn latency_with_large_bodies_reads_them_all() {
    // 4 MB per response, above no cap: latency runs count bodies without keeping them.
    let body = bytes::Bytes::from(vec![b'x'; 4 << 20]);
    let s = http_server(move |_| Resp::new(200, body.clone())).await;
    let toml = format!(
        "[defaults]\ntimeout = \"20s\"\nmax_body = 1024\n[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"http://127.0.0.1:{}/\"\nrequests = 32\nconcurrency = 8\n",
        s.port()
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(o.details.json()["latency"]["errors"], 0);
}
