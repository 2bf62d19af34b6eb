//! Latency runs against in-process servers: a fixed delay, a one-off stall that only the open loop
//! sees, an error rate, warm-up and fresh connections.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use shipwatch::probe::Status;
use shipwatch::runner::Outcome;
use tokio::time::Instant;

async fn latency(server: &Server, body: &str) -> Outcome {
    let toml = format!(
        "[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"{}/x\"\n{body}\n",
        server.url("http", "127.0.0.1")
    );
    run_toml(&toml, None).await.remove(0)
}

fn ms(o: &Outcome, key: &str) -> f64 {
    o.details.json()["latency"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("no {key} in {:?}", o.details))
}

#[tokio::test]
async fn fixed_delay_gives_p50_within_two_ms() {
    let s = http_server(|_| Resp::new(200, "ok").delay(Duration::from_millis(20))).await;
    let o = latency(
        &s,
        "requests = 100\nconcurrency = 4\nexpect = ['p50 < 30ms', 'p99 < 1s', 'errors < 1%']",
    )
    .await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    let p50 = ms(&o, "p50_ms");
    assert!(
        (p50 - 20.0).abs() <= 2.0,
        "p50 {p50} ms is not within 2 ms of 20 ms"
    );
    assert_eq!(o.details.json()["latency"]["requests"], 100);
    assert!(
        ms(&o, "throughput_rps") > 100.0,
        "4 connections at 20 ms each should pass 100 req/s"
    );
    let ids: Vec<&str> = o.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["latency.p50", "latency.p99", "latency.errors"]);
    assert!(
        !o.details.json()["latency"]["histogram"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let o = latency(
        &s,
        "requests = 40\nconcurrency = 4\nexpect = ['warn: p50 < 5ms', 'p95 < 10ms']",
    )
    .await;
    assert_finding(&o, "latency.p50", Status::Warn, "ms");
    assert_finding(&o, "latency.p95", Status::Fail, "ms");
}

/// Every request that arrives while the server is stalled waits for the stall to end, like a
/// process paused for garbage collection.
fn stalling_server_handler(stall_at: usize) -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
    let until: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    move |r| {
        let now = Instant::now();
        let mut u = until.lock().unwrap();
        if r.seq == stall_at {
            *u = Some(now + Duration::from_millis(500));
        }
        let wait = u.map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        Resp::new(200, "ok").delay(wait)
    }
}

#[tokio::test]
async fn open_loop_sees_a_stall_that_closed_loop_hides() {
    let s = http_server(stalling_server_handler(50)).await;
    let closed = latency(&s, "requests = 400\nconcurrency = 1").await;
    let s = http_server(stalling_server_handler(50)).await;
    let open = latency(&s, "rate = 200\nduration = \"2s\"\nconcurrency = 1").await;
    let (closed_p99, open_p99) = (ms(&closed, "p99_ms"), ms(&open, "p99_ms"));
    // Closed loop sends nothing while it waits, so one slow sample in 400 barely moves p99.
    assert!(closed_p99 < 100.0, "closed-loop p99 {closed_p99} ms");
    assert!(
        ms(&closed, "max_ms") >= 450.0,
        "the stall itself was recorded once"
    );
    // Open loop keeps its schedule: every request due during the stall is late, and counted so.
    assert!(
        open_p99 >= 400.0,
        "open-loop p99 {open_p99} ms should show the 500 ms stall"
    );
    assert_eq!(open.details.json()["latency"]["requests"], 400);
}

#[tokio::test]
async fn one_failure_in_ten_is_a_ten_percent_error_rate() {
    let s = http_server(|r| {
        if r.seq % 10 == 9 {
            Resp::new(500, "boom")
        } else {
            Resp::new(200, "ok")
        }
    })
    .await;
    let o = latency(&s, "requests = 100\nconcurrency = 2\nexpect = ['errors < 5%', 'warn: errors < 20%', 'errors < 11']").await;
    assert_finding(&o, "latency.errors", Status::Fail, "10.00% (10 of 100)");
    assert_finding(&o, "latency.errors.2", Status::Pass, "10.00%");
    assert_finding(&o, "latency.errors.3", Status::Pass, "10 errors");
    assert!((ms(&o, "error_rate") - 0.10).abs() < 1e-9);
}

#[tokio::test]
async fn warmup_is_sent_but_not_recorded_and_keepalive_off_opens_connections() {
    let s = http_server(|_| Resp::new(200, "ok")).await;
    let o = latency(&s, "requests = 20\nconcurrency = 2\nwarmup = 5").await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    // 20 timed, 5 warm-up, and the untimed one that checks the URL does not redirect.
    assert_eq!(s.hits.load(std::sync::atomic::Ordering::SeqCst), 26);
    assert_eq!(o.details.json()["latency"]["requests"], 20);
    let o = latency(&s, "requests = 20\nconcurrency = 2\nkeepalive = false").await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
}

#[tokio::test]
async fn an_unreachable_target_is_all_errors_within_the_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = format!(
        "[[check]]\nname = \"lat\"\nkind = \"latency\"\ntimeout = \"2s\"\nurl = \"http://127.0.0.1:{port}/\"\nrequests = 30\n"
    );
    let started = Instant::now();
    let o = run_toml(&toml, None).await.remove(0);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_finding(&o, "latency.errors", Status::Fail, "100.00% (30 of 30)");
}

#[tokio::test]
async fn a_timed_closed_loop_runs_for_its_duration() {
    let s = http_server(|_| Resp::new(200, "ok").delay(Duration::from_millis(5))).await;
    let started = Instant::now();
    let o = latency(&s, "duration = \"400ms\"\nconcurrency = 2").await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1500),
        "took {took:?}"
    );
    let n = o.details.json()["latency"]["requests"].as_u64().unwrap();
    // Two connections at about 5 ms a request for 400 ms: roughly 160 requests.
    assert!((60..=200).contains(&n), "{n} requests");
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
}

/// Runs the built binary under a pseudo-terminal (util-linux `script`), so stderr is a TTY.
async fn run_in_pty(args: &str) -> String {
    let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_shipwatch"));
    let out = tokio::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("script(1) from util-linux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn progress_bar_only_on_a_terminal_and_never_for_json() {
    let s = http_server(|_| Resp::new(200, "ok").delay(Duration::from_millis(5))).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lat.toml");
    let toml = format!(
        "[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"{}/x\"\nrequests = 80\nconcurrency = 1\n",
        s.url("http", "127.0.0.1")
    );
    std::fs::write(&cfg, toml).unwrap();
    let tty = run_in_pty(&format!("check -c {}", cfg.display())).await;
    assert!(
        tty.contains("/80"),
        "a terminal shows the progress bar:\n{tty}"
    );
    let json = run_in_pty(&format!("check -c {} --format json", cfg.display())).await;
    assert!(
        !json.contains("/80 "),
        "no progress bar with --format json:\n{json}"
    );
    let piped = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipwatch"))
        .arg("check")
        .arg("-c")
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("/80"),
        "no progress bar when stderr is not a terminal:\n{stderr}"
    );
}

/// A URL that redirects (plain HTTP to the real endpoint) is timed where it leads, and says so;
/// with `follow_redirects = false` the check fails and names the Location.
#[tokio::test]
async fn a_redirecting_url_times_the_final_endpoint_or_fails_saying_where_it_leads() {
    let endpoint = http_server(|_| Resp::new(200, "ok").delay(Duration::from_millis(20))).await;
    let to = format!("{}/health", endpoint.url("http", "127.0.0.1"));
    let edge = {
        let to = to.clone();
        http_server(move |_| Resp::new(301, "").header("location", &to)).await
    };
    let url = format!("{}/health", edge.url("http", "127.0.0.1"));
    let toml = format!(
        "[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"{url}\"\nrequests = 20\nconcurrency = 2\n"
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    let p50 = o.details.json()["latency"]["p50_ms"].as_f64().unwrap();
    assert!(
        p50 >= 19.0,
        "the endpoint's 20 ms were timed, not the redirect: p50 {p50}"
    );
    assert_finding(
        &o,
        "latency.redirect",
        Status::Pass,
        &format!("redirects (301) to {to}"),
    );
    assert_eq!(edge.hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    let o = run_toml(&format!("{toml}follow_redirects = false\n"), None)
        .await
        .remove(0);
    assert_eq!(o.status, Status::Fail);
    assert_finding(
        &o,
        "latency.redirect",
        Status::Fail,
        &format!("redirects (301) to {to}"),
    );
    // One untimed request found where the URL leads, then the 20 timed ones.
    assert_eq!(endpoint.hits.load(std::sync::atomic::Ordering::SeqCst), 21);
}

/// A run asked only about p95 still fails when its requests fail, and a percentile of a run
/// where nothing succeeded is no data, not 0 ms.
#[tokio::test]
async fn failing_requests_fail_a_percentile_only_check() {
    let s = http_server(|_| Resp::new(503, "down")).await;
    let toml = |url: &str| {
        format!(
            "[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"{url}\"\nrequests = 20\nexpect = ['p95 < 500ms']\n"
        )
    };
    let o = run_toml(&toml(&format!("{}/x", s.url("http", "127.0.0.1"))), None)
        .await
        .remove(0);
    assert_eq!(o.status, Status::Fail, "{:#?}", o.findings);
    assert_finding(&o, "latency.errors", Status::Fail, "100.00% (20 of 20)");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let o = run_toml(&toml(&format!("http://127.0.0.1:{port}/x")), None)
        .await
        .remove(0);
    assert_eq!(o.status, Status::Fail);
    assert_finding(
        &o,
        "latency.p95",
        Status::Fail,
        "no data: none of 20 requests succeeded",
    );
}

/// `http2 = true` with `streams`: each connection carries that many requests at once, as h2load
/// sends them, over TLS (ALPN h2) and over plain TCP (h2c, prior knowledge).
#[tokio::test]
async fn http2_streams_share_each_connection() {
    let pki = Pki::new();
    let tls = https_server(&pki.leaf(&["localhost"], 30), |_| {
        Resp::new(200, "ok").delay(Duration::from_millis(5))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"{}/x\"\nhttp2 = true\nstreams = 8\nconcurrency = 2\nrequests = 400\n",
        tls.url("https", "localhost")
    );
    let o = run_toml(&toml, Some(pki.write_ca(&dir))).await.remove(0);
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(o.details.json()["latency"]["requests"], 400);
    // Two connections for the run, and one for the request that checks the URL does not redirect.
    assert_eq!(tls.accepted.load(std::sync::atomic::Ordering::SeqCst), 3);

    let plain = http_server(|_| Resp::new(200, "ok")).await;
    let o = latency(
        &plain,
        "http2 = true\nstreams = 4\nconcurrency = 1\nrequests = 100",
    )
    .await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(plain.accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// A server that speaks only HTTP/1.1 fails an HTTP/2 run with the reason, whether HTTP/2 was
/// required or only asked for by ALPN with several streams.
#[tokio::test]
async fn http2_against_an_http1_only_server_says_why_it_failed() {
    let pki = Pki::new();
    let mut config = (*tls_config(&pki.leaf(&["localhost"], 30), None)).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let handler: Handler = Arc::new(|_: &Req| Resp::new(200, "ok"));
    let h1 = serve(handler, Some(Arc::new(config))).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(&dir);
    for (http2, why) in [
        ("true", "does not offer HTTP/2"),
        ("\"auto\"", "streams needs HTTP/2"),
    ] {
        let toml = format!(
            "[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"{}/x\"\nhttp2 = {http2}\nstreams = 4\nrequests = 20\n",
            h1.url("https", "localhost")
        );
        let o = run_toml(&toml, Some(ca.clone())).await.remove(0);
        assert_finding(&o, "latency.errors", Status::Fail, why);
    }
}

/// Reads one request (head and Content-Length body) from a kept connection; `None` at its end.
async fn read_request(
    tcp: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let mut more = [0u8; 4096];
                let n = tcp.read(&mut more).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&more[..n]);
            }
            let body = buf[end + 4..end + 4 + length].to_vec();
            buf.drain(..end + 4 + length);
            return Some((head, body));
        }
        let mut more = [0u8; 4096];
        let n = tcp.read(&mut more).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&more[..n]);
    }
}

/// The answers of the framing test, by their place on a connection: every way HTTP/1.1 ends a
/// body, an interim 103 before a final answer, bodies longer than a read, and a close.
fn framed_answer(i: usize) -> Vec<u8> {
    let big = "x".repeat(100_000);
    match i {
        0 => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        1 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n".to_vec(),
        2 => b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        3 => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{big}", big.len()).into_bytes(),
        4 => format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n{:x}\r\n{big}\r\n0\r\n\r\n", big.len(), big.len()).into_bytes(),
        _ => b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbye.".to_vec(),
    }
}

/// Every framing of an HTTP/1.1 body is read through on a kept connection, and an answer with
/// `Connection: close` ends it: six answers a connection, then a new one, and no errors.
#[tokio::test]
async fn every_http1_framing_is_read_through_on_a_kept_connection() {
    use tokio::io::AsyncWriteExt;
    let s = raw_server(|mut tcp| async move {
        let mut buf = Vec::new();
        for i in 0..6 {
            if read_request(&mut tcp, &mut buf).await.is_none() {
                return;
            }
            if tcp.write_all(&framed_answer(i)).await.is_err() {
                return;
            }
        }
    })
    .await;
    let o = latency(&s, "requests = 240\nconcurrency = 1\nhttp2 = false").await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    let l = &o.details.json()["latency"];
    assert_eq!(
        (l["requests"].as_u64(), l["errors"].as_u64()),
        (Some(240), Some(0)),
        "{l}"
    );
    assert_eq!(l["reconnects"], 0, "{l}");
    // 240 requests, six on each connection, and one for the request that checks for redirects.
    assert_eq!(s.accepted.load(std::sync::atomic::Ordering::SeqCst), 41);
}

/// A server that drops kept connections without saying so (after three answers each) costs a
/// reconnect, not an error, as an idle timeout on a real server would.
#[tokio::test]
async fn a_silently_closed_kept_connection_is_a_reconnect_not_an_error() {
    use tokio::io::AsyncWriteExt;
    let s = raw_server(|mut tcp| async move {
        let mut buf = Vec::new();
        for _ in 0..3 {
            if read_request(&mut tcp, &mut buf).await.is_none() {
                return;
            }
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if tcp.write_all(answer).await.is_err() {
                return;
            }
        }
    })
    .await;
    let o = latency(&s, "requests = 90\nconcurrency = 1\nhttp2 = false").await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    let l = &o.details.json()["latency"];
    assert_eq!(
        (l["requests"].as_u64(), l["errors"].as_u64()),
        (Some(90), Some(0)),
        "{l}"
    );
    // Every third request found its connection closed, the first run request excepted.
    assert_eq!(l["reconnects"], 29, "{l}");
}

/// What the run sends over HTTP/1.1 is the configured request: method, path and query, Host,
/// the default User-Agent and Accept, configured headers, Basic credentials from the URL, and
/// the body with its length. The server answers 400 to anything else.
#[tokio::test]
async fn the_run_sends_the_configured_request() {
    use tokio::io::AsyncWriteExt;
    let s = raw_server(|mut tcp| async move {
        let port = tcp.local_addr().map(|a| a.port()).unwrap_or(0);
        let mut buf = Vec::new();
        while let Some((head, body)) = read_request(&mut tcp, &mut buf).await {
            let lower = head.to_ascii_lowercase() + "\r\n";
            let wanted = [
                "post /x?q=1 http/1.1\r\n".to_string(),
                format!("host: 127.0.0.1:{port}\r\n"),
                "user-agent: shipwatch/".into(),
                "accept: */*\r\n".into(),
                "x-probe: yes\r\n".into(),
                // "user:pa ss" in Basic.
                "authorization: basic dxnlcjpwysbzcw==\r\n".into(),
                "content-length: 5\r\n".into(),
            ];
            let good = wanted.iter().all(|w| lower.contains(w.as_str())) && body == b"hello";
            if !good {
                eprintln!("unexpected request: {head:?} {body:?}");
            }
            let answer: &[u8] = if good {
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
            } else {
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
            };
            if tcp.write_all(answer).await.is_err() {
                return;
            }
        }
    })
    .await;
    let url = s
        .url("http", "127.0.0.1")
        .replace("http://", "http://user:pa%20ss@");
    let toml = format!(
        "[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"{url}/x?q=1\"\nmethod = \"POST\"\nbody = \"hello\"\nheaders = {{ X-Probe = \"yes\" }}\nrequests = 50\nconcurrency = 2\nhttp2 = false\n"
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(o.details.json()["latency"]["errors"], 0);
}

/// A broken answer is an error that says what was wrong, and a head that never ends stops at
/// 64 KiB instead of growing with what the server sends.
#[tokio::test]
async fn broken_http1_answers_are_errors_that_say_why() {
    use tokio::io::AsyncWriteExt;
    let bad_length = raw_server(|mut tcp| async move {
        let mut buf = Vec::new();
        while read_request(&mut tcp, &mut buf).await.is_some() {
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n";
            if tcp.write_all(answer).await.is_err() {
                return;
            }
        }
    })
    .await;
    let o = latency(
        &bad_length,
        "requests = 10\nconcurrency = 1\nhttp2 = false\nfollow_redirects = false",
    )
    .await;
    assert_finding(
        &o,
        "latency.errors",
        Status::Fail,
        "Content-Length \"12abc\" is not a number",
    );

    let endless = raw_server(|mut tcp| async move {
        let mut buf = Vec::new();
        if read_request(&mut tcp, &mut buf).await.is_none() {
            return;
        }
        let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\n").await;
        let line = format!("X-Filler: {}\r\n", "y".repeat(1000));
        for _ in 0..200 {
            if tcp.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let o = latency(
        &endless,
        "requests = 3\nconcurrency = 1\nhttp2 = false\nfollow_redirects = false",
    )
    .await;
    assert_finding(&o, "latency.errors", Status::Fail, "longer than 64 KiB");
}

/// `threads = 2` spreads the connections over two threads; the run still sends exactly its
/// requests, on exactly `concurrency` connections.
#[tokio::test]
async fn threads_share_out_the_connections() {
    let s = http_server(|_| Resp::new(200, "ok")).await;
    let o = latency(
        &s,
        "requests = 400\nconcurrency = 8\nthreads = 2\nhttp2 = false",
    )
    .await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(o.details.json()["latency"]["requests"], 400);
    assert_eq!(s.hits.load(std::sync::atomic::Ordering::SeqCst), 401);
    assert_eq!(s.accepted.load(std::sync::atomic::Ordering::SeqCst), 9);
}
