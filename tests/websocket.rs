//! The `websocket` kind against the websockets library's server (ws and wss), against plain HTTP
//! servers that do not upgrade, and against servers that close, say nothing or flood.

mod common;

use std::ffi::OsString;
use std::time::Duration;

use common::{
    Resp, TlsFiles, assert_every_report_format, assert_finding, details, free_port, http_server,
    raw_server, run_toml, support_server, tls_files,
};
use shipwatch::probe::Status;

const TOKEN: &str = "ws-test-token-1234";

fn ws_check(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[check]]\nname = \"{name}\"\nkind = \"websocket\"\nurl = \"{url}\"\ntimeout = \"2s\"\n{extra}\n"
    )
}

async fn ws_server(args: &[OsString]) -> tokio::process::Child {
    support_server("ws_server.py", args, "the websockets server").await
}

#[tokio::test]
async fn messages_closes_and_floods_from_a_real_server() {
    let port = free_port();
    let _server = ws_server(&[port.to_string().into()]).await;
    let base = format!("ws://127.0.0.1:{port}");
    let ping = "send = '{\"type\":\"ping\"}'\nexpect = ['message contains \"pong\"', 'time < 1s']";
    let toml = [
        ws_check("ping", &format!("{base}/socket"), ping),
        ws_check(
            "wrong",
            &format!("{base}/socket"),
            "send = 'hello'\nexpect = ['message == \"bye\"']",
        ),
        ws_check("upgrade-only", &format!("{base}/socket"), ""),
        ws_check(
            "close",
            &format!("{base}/close"),
            "expect = ['message exists']",
        ),
        ws_check(
            "silent",
            &format!("{base}/silent"),
            "expect = ['message exists']",
        ),
        ws_check(
            "flood",
            &format!("{base}/flood"),
            "expect = ['message == \"tick 0\"']",
        ),
        ws_check(
            "big",
            &format!("{base}/big"),
            "expect = ['message startswith xxx']",
        ),
    ]
    .concat();
    let out = common::run_bounded(&toml).await;
    assert_eq!(
        out[0].status,
        Status::Pass,
        "{:?} {:?}",
        out[0].findings,
        out[0].error
    );
    assert_finding(&out[0], "websocket.upgrade", Status::Pass, "101");
    assert_eq!(details(&out[0])["message"], "{\"type\":\"pong\"}");
    assert_finding(&out[1], "websocket.assert.1", Status::Fail, "\"hello\"");
    assert_eq!(out[2].status, Status::Pass);
    assert!(
        out[2].duration < Duration::from_millis(1500),
        "{:?}",
        out[2].duration
    );
    assert_finding(
        &out[3],
        "websocket.close",
        Status::Fail,
        "1011 \"maintenance\"",
    );
    assert_eq!(details(&out[3])["close_code"], 1011);
    // Nothing within the deadline: the assertion fails, the check does not hang.
    assert_finding(&out[4], "websocket.assert.1", Status::Fail, "(missing)");
    assert_eq!(out[5].status, Status::Pass, "{:?}", out[5].findings);
    // A 2 MiB message is judged on its first 64 KiB; the rest is read and dropped.
    assert_eq!(
        out[6].status,
        Status::Pass,
        "{:?} {:?}",
        out[6].findings,
        out[6].error
    );
    assert_eq!(details(&out[6])["message"].as_str().unwrap().len(), 1000);
    assert_every_report_format(&out);
}

#[tokio::test]
async fn headers_carry_credentials_that_never_show() {
    let port = free_port();
    let _server = ws_server(&[port.to_string().into()]).await;
    let url = format!("ws://127.0.0.1:{port}/auth");
    let with = format!(
        "headers = {{ Authorization = \"Bearer {TOKEN}\" }}\nsend = '{{\"type\":\"ping\"}}'\nexpect = ['message contains pong']"
    );
    let toml = [ws_check("auth", &url, &with), ws_check("no-auth", &url, "")].concat();
    let out = run_toml(&toml, None).await;
    assert_eq!(
        out[0].status,
        Status::Pass,
        "{:?} {:?}",
        out[0].findings,
        out[0].error
    );
    assert_finding(
        &out[1],
        "websocket.upgrade",
        Status::Fail,
        "status 403 instead of 101",
    );
    // Everything a report, a metric or an alert is made from.
    let report = format!("{out:?}");
    assert!(!report.contains(TOKEN));
}

#[tokio::test]
async fn wss_is_verified_like_every_connection() {
    let TlsFiles {
        ca,
        cert,
        key,
        dir: _dir,
    } = tls_files(90);
    let port = free_port();
    let _server = ws_server(&[port.to_string().into(), cert.into(), key.into()]).await;
    let toml = ws_check(
        "wss",
        &format!("wss://localhost:{port}/socket"),
        "send = 'hi'\nexpect = ['message == hi']",
    );
    common::assert_trusted_only_with(&toml, ca).await;
}

#[tokio::test]
async fn servers_that_do_not_upgrade_or_lie_about_it() {
    // What an ingress that drops the Upgrade header does: an ordinary page.
    let page = http_server(|_| Resp::html("<h1>app</h1>")).await;
    // A 101 with an accept value computed from another key.
    let liar = raw_server(|mut tcp| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = [0u8; 2048];
        let _ = tcp.read(&mut buf).await;
        let _ = tcp
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await;
    // An endless response head.
    let endless = raw_server(|mut tcp| async move {
        use tokio::io::AsyncWriteExt;
        let _ = tcp.write_all(b"HTTP/1.1 101 Switching Protocols\r\n").await;
        while tcp
            .write_all(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
            .await
            .is_ok()
        {}
    })
    .await;
    // Not HTTP at all.
    let ssh = raw_server(|mut tcp| async move {
        use tokio::io::AsyncWriteExt;
        let _ = tcp.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await;
    let toml = [
        ws_check("ssh", &format!("ws://127.0.0.1:{}/socket", ssh.port()), ""),
        ws_check(
            "page",
            &format!("ws://127.0.0.1:{}/socket", page.port()),
            "expect = ['message exists']",
        ),
        ws_check(
            "liar",
            &format!("ws://127.0.0.1:{}/socket", liar.port()),
            "",
        ),
        ws_check(
            "endless",
            &format!("ws://127.0.0.1:{}/socket", endless.port()),
            "",
        ),
        ws_check(
            "closed",
            &format!("ws://127.0.0.1:{}/socket", free_port()),
            "",
        ),
    ]
    .concat();
    let out = run_toml(&toml, None).await;
    let not_http = "the answer is not HTTP: \"SSH-2.0";
    assert_finding(&out[0], "websocket.upgrade", Status::Fail, not_http);
    assert_finding(
        &out[1],
        "websocket.upgrade",
        Status::Fail,
        "status 200 instead of 101",
    );
    // No message is awaited after a failed upgrade.
    assert_eq!(out[1].findings.len(), 1, "{:?}", out[1].findings);
    assert_finding(
        &out[2],
        "websocket.upgrade",
        Status::Fail,
        "where the key gives",
    );
    let e = out[3].error.as_ref().expect("an error");
    assert!(e.message.contains("longer than"), "{}", e.message);
    assert_eq!(out[4].error.as_ref().map(|e| e.kind), Some("connect"));
    assert_every_report_format(&out);
}

#[tokio::test]
async fn a_secret_the_server_echoes_is_hidden_everywhere() {
    let port = free_port();
    let _server = ws_server(&[port.to_string().into()]).await;
    let toml = format!(
        "[secrets]\nws = {{ env = \"SW_WS_SECRET\" }}\n{}",
        ws_check(
            "echo",
            &format!("ws://127.0.0.1:{port}/socket"),
            "send = 'hello {{ secrets.ws }}'\nexpect = ['message == \"bye\"']"
        )
    );
    let getenv = |name: &str| (name == "SW_WS_SECRET").then(|| format!("Bearer {TOKEN}"));
    let opts = shipwatch::plan::PlanOptions {
        getenv: Some(&getenv),
        ..Default::default()
    };
    let out = common::run_toml_with(&toml, opts).await;
    // The server echoed the secret back, so the failed assertion would show it.
    assert_finding(&out[0], "websocket.assert.1", Status::Fail, "hello");
    let shown = format!("{out:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(
        !shown.contains(&shipwatch::assert::base64(TOKEN.as_bytes())),
        "{shown}"
    );
}
