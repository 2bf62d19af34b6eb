//! HTTP/2 latency runs with several streams a connection, against servers built on the h2
//! crate (statuses, bodies, flow control, GOAWAY, resets, a stream limit) and against hostile
//! ones that are not HTTP/2 or send what no server should.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use shipwatch::probe::Status;
use shipwatch::runner::Outcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server does with the n-th stream it is sent, given the request body's length.
#[derive(Clone, Copy)]
enum Act {
    Answer(u16, usize),
    Reset(h2::Reason),
}

/// What an h2 server saw.
#[derive(Default)]
struct Seen {
    streams: AtomicUsize,
    open: AtomicUsize,
    most_open: AtomicUsize,
}

/// An h2c server whose connections end gracefully (GOAWAY) after `per_connection` streams
/// when set, answering each stream as `act` says.
async fn h2_server(
    builder: fn() -> h2::server::Builder,
    per_connection: Option<usize>,
    act: impl Fn(usize, usize) -> Act + Send + Sync + 'static,
) -> (Server, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let act = Arc::new(act);
    let s = seen.clone();
    let server = raw_server(move |tcp| {
        let (seen, act) = (s.clone(), act.clone());
        async move {
            let Ok(mut conn) = builder().handshake::<_, Bytes>(tcp).await else {
                return;
            };
            let mut served = 0;
            while let Some(Ok((req, respond))) = conn.accept().await {
                let n = seen.streams.fetch_add(1, Ordering::SeqCst);
                let open = seen.open.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most_open.fetch_max(open, Ordering::SeqCst);
                tokio::spawn(answer(req, respond, n, act.clone(), seen.clone()));
                served += 1;
                if per_connection == Some(served) {
                    conn.graceful_shutdown();
                }
            }
        }
    })
    .await;
    (server, seen)
}

async fn answer(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    n: usize,
    act: Arc<impl Fn(usize, usize) -> Act>,
    seen: Arc<Seen>,
) {
    let mut body = req.into_body();
    let mut len = 0;
    while let Some(Ok(chunk)) = body.data().await {
        len += chunk.len();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    match act(n, len) {
        Act::Reset(reason) => respond.send_reset(reason),
        Act::Answer(status, size) => {
            let head = http::Response::builder().status(status).body(()).unwrap();
            if let Ok(mut stream) = respond.send_response(head, size == 0)
                && size > 0
            {
                let _ = stream.send_data(Bytes::from(vec![b'x'; size]), true);
            }
        }
    }
    seen.open.fetch_sub(1, Ordering::SeqCst);
}

async fn run(server: &Server, body: &str) -> Outcome {
    let toml = format!(
        "[[check]]\nname = \"lat\"\nkind = \"latency\"\nurl = \"{}/x\"\nhttp2 = true\nwarmup = 0\n{body}\n",
        server.url("http", "127.0.0.1")
    );
    run_toml(&toml, None).await.remove(0)
}

/// A run of `requests` on four streams of one connection, with the check's timeout in seconds,
/// and how long it took.
async fn timed_run(server: &Server, requests: usize, timeout: u64) -> (Outcome, Duration) {
    let started = std::time::Instant::now();
    let o = run(
        server,
        &format!("streams = 4\nconcurrency = 1\nrequests = {requests}\ntimeout = \"{timeout}s\""),
    )
    .await;
    (o, started.elapsed())
}

/// Reads and drops what the client sends, until it closes.
async fn drain(tcp: &mut tokio::net::TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
}

fn latency(o: &Outcome, key: &str) -> i64 {
    o.details.json()["latency"][key]
        .as_i64()
        .unwrap_or_else(|| panic!("no {key} in {:?}", o.details))
}

/// Statuses from the static table and Huffman-coded ones are read alike; answers from 400 up
/// are errors; bodies longer than a frame are read through.
#[tokio::test]
async fn every_status_is_read_and_answers_from_400_are_errors() {
    let (server, _) = h2_server(h2::server::Builder::new, None, |n, _| {
        [
            Act::Answer(200, 0),
            Act::Answer(201, 10),
            Act::Answer(302, 5_000),
            Act::Answer(404, 0),
            Act::Answer(503, 40_000),
            Act::Answer(226, 1),
        ][n % 6]
    })
    .await;
    let o = run(&server, "streams = 4\nconcurrency = 2\nrequests = 120").await;
    assert_eq!(latency(&o, "requests"), 120, "{:#?}", o.findings);
    assert_eq!(latency(&o, "errors"), 40, "{:#?}", o.findings);
}

/// A server that ends its connections gracefully every ten streams: the lane opens a new one
/// and sends what the old one did not take, with no error.
#[tokio::test]
async fn a_goaway_moves_the_lane_to_a_new_connection() {
    let (server, seen) = h2_server(h2::server::Builder::new, Some(10), |_, _| {
        Act::Answer(200, 3)
    })
    .await;
    let o = run(&server, "streams = 4\nconcurrency = 1\nrequests = 100").await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(latency(&o, "requests"), 100);
    assert_eq!(latency(&o, "errors"), 0);
    assert!(seen.streams.load(Ordering::SeqCst) >= 100);
    // A connection takes its ten streams and those already in flight: at least 100 / 13
    // connections for the run, and one that checked the URL does not redirect.
    assert!(server.accepted.load(Ordering::SeqCst) >= 8);
}

/// A stream the server resets is an error that names the code; one it refuses is sent again.
#[tokio::test]
async fn reset_streams_are_errors_and_refused_ones_are_sent_again() {
    let (server, _) = h2_server(h2::server::Builder::new, None, |n, _| {
        if n % 5 == 4 {
            Act::Reset(h2::Reason::INTERNAL_ERROR)
        } else {
            Act::Answer(200, 0)
        }
    })
    .await;
    let o = run(&server, "streams = 4\nconcurrency = 1\nrequests = 100").await;
    assert_eq!(latency(&o, "errors"), 20, "{:#?}", o.findings);
    assert_finding(&o, "latency.errors", Status::Fail, "INTERNAL_ERROR");

    let (server, seen) = h2_server(h2::server::Builder::new, None, |n, _| {
        if n == 0 || n == 50 {
            Act::Reset(h2::Reason::REFUSED_STREAM)
        } else {
            Act::Answer(200, 0)
        }
    })
    .await;
    let o = run(&server, "streams = 4\nconcurrency = 1\nrequests = 100").await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(latency(&o, "requests"), 100);
    assert_eq!(seen.streams.load(Ordering::SeqCst), 102);
}

/// Request bodies larger than the server's windows wait for its WINDOW_UPDATEs and arrive
/// whole; the server's limit on open streams holds however many streams the run asks for.
#[tokio::test]
async fn bodies_respect_the_windows_and_streams_the_servers_limit() {
    fn small_windows() -> h2::server::Builder {
        let mut b = h2::server::Builder::new();
        b.initial_window_size(16_384)
            .initial_connection_window_size(32_768)
            .max_concurrent_streams(2);
        b
    }
    let (server, seen) = h2_server(small_windows, None, |_, len| {
        Act::Answer(if len == 100_000 { 200 } else { 400 }, 0)
    })
    .await;
    let body = "b".repeat(100_000);
    let o = run(
        &server,
        &format!(
            "method = \"POST\"\nbody = \"{body}\"\nstreams = 8\nconcurrency = 1\nrequests = 40"
        ),
    )
    .await;
    assert_eq!(o.status, Status::Pass, "{:#?}", o.findings);
    assert_eq!(latency(&o, "requests"), 40);
    assert_eq!(latency(&o, "errors"), 0);
    assert!(seen.most_open.load(Ordering::SeqCst) <= 2);
}

/// A hostile or broken server: each failure is an error that says what was wrong, and the run
/// ends on time without holding more than the frame limit.
#[tokio::test]
async fn broken_http2_servers_are_errors_that_say_why() {
    const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    let cases: Vec<(Vec<u8>, bool, &str)> = vec![
        (
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec(),
            false,
            "does not speak HTTP/2",
        ),
        // A DATA frame of 1 MiB on stream 1.
        (
            [&SETTINGS[..], &[0x10, 0, 0, 0, 0, 0, 0, 0, 1]].concat(),
            false,
            "a frame of 1048576 bytes",
        ),
        // An answer whose status refers to the dynamic table the client asked to stay empty.
        (
            [&SETTINGS[..], &[0, 0, 1, 1, 5, 0, 0, 0, 1, 0xbe]].concat(),
            false,
            "outside the static table",
        ),
        // A header block that never ends, in CONTINUATION frames of 16 KiB.
        (
            [&SETTINGS[..], &[0, 0, 1, 1, 0, 0, 0, 0, 1, 0x88]].concat(),
            true,
            "longer than 256 KiB",
        ),
    ];
    for (bytes, endless, why) in cases {
        let server = raw_server(move |mut tcp| {
            let bytes = bytes.clone();
            async move {
                if tcp.write_all(&bytes).await.is_err() {
                    return;
                }
                let mut frame = vec![0x00, 0x40, 0x00, 9, 0, 0, 0, 0, 1];
                frame.resize(9 + 16_384, 0x88);
                for _ in 0..(if endless { 100 } else { 0 }) {
                    if tcp.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                drain(&mut tcp).await;
            }
        })
        .await;
        let (o, took) = timed_run(&server, 8, 5).await;
        assert_eq!(latency(&o, "errors"), 8, "{why}: {:#?}", o.findings);
        assert_finding(&o, "latency.errors", Status::Fail, why);
        assert!(took < Duration::from_secs(6), "{why}");
    }
}

/// A server that accepts and never speaks: the run ends at the check's timeout with every
/// request an error.
#[tokio::test]
async fn a_silent_server_ends_the_run_at_its_timeout() {
    let server = raw_server(|mut tcp| async move { drain(&mut tcp).await }).await;
    let (o, took) = timed_run(&server, 10, 2).await;
    assert_eq!(latency(&o, "errors"), 10, "{:#?}", o.findings);
    assert!(took < Duration::from_secs(4));
}

/// An answer whose body never ends: the lane keeps reading it and still stops at the check's
/// timeout, with the unfinished requests as errors.
#[tokio::test]
async fn an_endless_answer_ends_at_the_timeout() {
    let server = raw_server(|mut tcp| async move {
        let head = [
            &[0u8, 0, 0, 4, 0, 0, 0, 0, 0][..],
            &[0, 0, 1, 1, 4, 0, 0, 0, 1, 0x88],
        ]
        .concat();
        if tcp.write_all(&head).await.is_err() {
            return;
        }
        let mut frame = vec![0x00, 0x40, 0x00, 0, 0, 0, 0, 0, 1];
        frame.resize(9 + 16_384, b'x');
        for _ in 0..1_000_000 {
            if tcp.write_all(&frame).await.is_err() {
                return;
            }
        }
    })
    .await;
    let started = std::time::Instant::now();
    let o = run(
        &server,
        "streams = 4\nconcurrency = 1\nrequests = 4\ntimeout = \"2s\"",
    )
    .await;
    assert_eq!(latency(&o, "errors"), 4, "{:#?}", o.findings);
    assert!(started.elapsed() < Duration::from_secs(4));
}
