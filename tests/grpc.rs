//! The `grpc` kind against grpcio's standard health service (h2c and TLS), and against servers
//! that are not gRPC or never finish an answer.

mod common;

use std::convert::Infallible;
use std::ffi::OsString;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::{
    Resp, TlsFiles, assert_every_report_format, assert_finding, details, free_port, http_server,
    run_toml, support_server, tls_files,
};
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use shipwatch::probe::Status;

fn grpc_check(name: &str, url: &str, service: &str) -> String {
    format!(
        "[[check]]\nname = \"{name}\"\nkind = \"grpc\"\nurl = \"{url}\"\nservice = \"{service}\"\ntimeout = \"2s\"\n"
    )
}

async fn grpc_server(args: &[OsString]) -> tokio::process::Child {
    support_server("grpc_server.py", args, "the grpcio health server").await
}

#[tokio::test]
async fn health_statuses_from_grpcio() {
    let port = free_port();
    let _server = grpc_server(&[port.to_string().into()]).await;
    let url = format!("http://127.0.0.1:{port}");
    let toml = [
        grpc_check("whole", &url, ""),
        grpc_check("payments", &url, "payments.v1.Payments"),
        grpc_check("ledger", &url, "ledger.v1.Ledger"),
        grpc_check("unknown", &url, "nobody.v1.Nobody"),
    ]
    .concat();
    let out = run_toml(&toml, None).await;
    for o in &out[..2] {
        assert_eq!(
            o.status,
            Status::Pass,
            "{}: {:?} {:?}",
            o.name,
            o.findings,
            o.error
        );
        assert_finding(o, "grpc.status", Status::Pass, "SERVING");
        assert_finding(o, "grpc.code", Status::Pass, "OK");
    }
    assert_finding(&out[2], "grpc.status", Status::Fail, "is NOT_SERVING");
    assert_eq!(details(&out[2])["status"], "NOT_SERVING");
    assert_finding(&out[3], "grpc.code", Status::Fail, "NOT_FOUND");
    assert_finding(&out[3], "grpc.status", Status::Fail, "nobody.v1.Nobody");
    assert_every_report_format(&out);
}

#[tokio::test]
async fn tls_is_verified_like_every_connection() {
    let TlsFiles {
        ca,
        cert,
        key,
        dir: _dir,
    } = tls_files(90);
    let port = free_port();
    let _server = grpc_server(&[port.to_string().into(), cert.into(), key.into()]).await;
    let toml = grpc_check(
        "tls",
        &format!("https://localhost:{port}"),
        "payments.v1.Payments",
    );
    common::assert_trusted_only_with(&toml, ca).await;
}

/// Frames from a channel, as a response body: the test decides when (or whether) trailers come.
struct Frames(tokio::sync::mpsc::Receiver<Frame<Bytes>>);

impl futures_util::Stream for Frames {
    type Item = Result<Frame<Bytes>, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

type Reply = http::Response<StreamBody<Frames>>;

/// An HTTP/2 server with prior knowledge (h2c) whose every answer is `respond()`.
async fn h2c_server<F, Fut>(respond: F) -> u16
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let respond = respond.clone();
            let service = hyper::service::service_fn(move |_req| {
                let respond = respond.clone();
                async move { Ok::<_, Infallible>(respond().await) }
            });
            let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            tokio::spawn(async move {
                let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    port
}

fn grpc_response(frames: tokio::sync::mpsc::Receiver<Frame<Bytes>>) -> Reply {
    http::Response::builder()
        .header("content-type", "application/grpc")
        .body(StreamBody::new(Frames(frames)))
        .unwrap()
}

#[tokio::test]
async fn servers_that_are_not_grpc_or_never_finish() {
    // Sends a SERVING message and then neither trailers nor the end of the stream.
    let hang = h2c_server(|| async {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let _ = tx
                .send(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 2, 8, 1])))
                .await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(tx);
        });
        grpc_response(rx)
    })
    .await;
    // Ends the stream without a grpc-status trailer.
    let no_trailer = h2c_server(|| async {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let _ = tx
            .send(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 2, 8, 1])))
            .await;
        grpc_response(rx)
    })
    .await;
    // A web page over h2c.
    let web = h2c_server(|| async {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let _ = tx
            .send(Frame::data(Bytes::from_static(b"<h1>hi</h1>")))
            .await;
        let mut r = grpc_response(rx);
        r.headers_mut()
            .insert("content-type", "text/html".parse().unwrap());
        r
    })
    .await;
    // A web server that also speaks h2c, as hyper's does.
    let page = http_server(|_| Resp::html("<h1>old</h1>")).await;
    // An HTTP/1.1-only server: it answers the HTTP/2 preface with a 400 and closes.
    let h1 = common::raw_server(|mut tcp| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = [0u8; 64];
        let _ = tcp.read(&mut buf).await;
        let _ = tcp
            .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .await;
    })
    .await;
    let toml = [
        grpc_check("hang", &format!("http://127.0.0.1:{hang}"), ""),
        grpc_check("no-trailer", &format!("http://127.0.0.1:{no_trailer}"), ""),
        grpc_check("web", &format!("http://127.0.0.1:{web}"), ""),
        grpc_check("h1", &format!("http://127.0.0.1:{}", h1.port()), ""),
        grpc_check("closed", &format!("http://127.0.0.1:{}", free_port()), ""),
        grpc_check("page", &format!("http://127.0.0.1:{}", page.port()), ""),
    ]
    .concat();
    let out = common::run_bounded(&toml).await;
    let hang = out[0].error.as_ref().expect("a timeout");
    assert_eq!(hang.kind, "timeout");
    assert!(
        hang.message.contains("no gRPC trailers"),
        "{}",
        hang.message
    );
    assert_finding(
        &out[1],
        "grpc.code",
        Status::Fail,
        "without a grpc-status trailer",
    );
    assert_finding(
        &out[2],
        "grpc.code",
        Status::Fail,
        "content-type \"text/html\"",
    );
    assert_eq!(
        out[3].error.as_ref().map(|e| e.kind),
        Some("protocol"),
        "{:?}",
        out[3].error
    );
    assert_eq!(out[4].error.as_ref().map(|e| e.kind), Some("connect"));
    assert_finding(
        &out[5],
        "grpc.code",
        Status::Fail,
        "HTTP 200 with content-type \"text/html",
    );
    assert_every_report_format(&out);
}
