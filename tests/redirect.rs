//! The `redirect` check: every variant of the HTTP → HTTPS hop, against real servers.

mod common;

use common::*;
use shipwatch::probe::Status;
use shipwatch::runner::Outcome;

/// An HTTPS site on localhost, and a plain-HTTP listener whose answers `plain` decides.
async fn run_redirect(
    plain: impl Fn(&Req, u16) -> Resp + Send + Sync + 'static,
    https_handler: impl Fn(&Req) -> Resp + Send + Sync + 'static,
) -> Outcome {
    let pki = Pki::new();
    let site = https_server(&pki.leaf(&["localhost"], 90), https_handler).await;
    let https_port = site.port();
    let http = http_server(move |r| plain(r, https_port)).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[check]]\nname = \"r\"\nkind = \"redirect\"\nurl = \"http://localhost:{}/\"\n",
        http.port()
    );
    run_toml(&toml, Some(pki.write_ca(&dir))).await.remove(0)
}

fn ok_page(_: &Req) -> Resp {
    Resp::html("<p>hi</p>")
}

#[tokio::test]
async fn permanent_redirect_to_https_passes() {
    for status in [301, 308] {
        let o = run_redirect(
            move |_, p| Resp::redirect(status, &format!("https://localhost:{p}/")),
            ok_page,
        )
        .await;
        assert_eq!(o.status, Status::Pass, "{:?}", o.findings);
        assert_finding(&o, "redirect.https", Status::Pass, "https://localhost");
        assert_finding(&o, "redirect.permanent", Status::Pass, &status.to_string());
        assert_finding(&o, "redirect.final_https", Status::Pass, "(200)");
        assert_finding(&o, "redirect.hops", Status::Pass, "1");
    }
}

#[tokio::test]
async fn temporary_redirect_warns() {
    for status in [302, 307] {
        let o = run_redirect(
            move |_, p| Resp::redirect(status, &format!("https://localhost:{p}/")),
            ok_page,
        )
        .await;
        assert_eq!(o.status, Status::Warn);
        assert_finding(&o, "redirect.permanent", Status::Warn, &status.to_string());
    }
}

#[tokio::test]
async fn serving_over_plain_http_fails() {
    let o = run_redirect(|_, _| Resp::html("<p>plain</p>"), ok_page).await;
    assert_finding(&o, "redirect.https", Status::Fail, "200 (no redirect)");
    assert_finding(&o, "redirect.permanent", Status::Fail, "200");
    assert_finding(&o, "redirect.final_https", Status::Fail, "http://localhost");
}

#[tokio::test]
async fn redirect_to_another_host_or_to_http_fails() {
    let o = run_redirect(
        |_, p| Resp::redirect(301, &format!("https://127.0.0.1:{p}/")),
        ok_page,
    )
    .await;
    assert_finding(&o, "redirect.https", Status::Fail, "https://127.0.0.1");
    let o = run_redirect(
        |r, _| {
            if r.path == "/" {
                Resp::redirect(301, "/other")
            } else {
                Resp::html("x")
            }
        },
        ok_page,
    )
    .await;
    assert_finding(&o, "redirect.https", Status::Fail, "not HTTPS");
}

#[tokio::test]
async fn downgrade_after_the_first_hop_fails_final_https() {
    // The HTTPS side now sends users back to plain HTTP on the other listener.
    let o = run_redirect(
        |r, p| match r.path.as_str() {
            "/" => Resp::redirect(301, &format!("https://localhost:{p}/")),
            _ => Resp::html("plain again"),
        },
        |_| Resp::redirect(301, "http://localhost:1/"),
    )
    .await;
    assert_finding(
        &o,
        "redirect.final_https",
        Status::Fail,
        "http://localhost:1/",
    );
}

#[tokio::test]
async fn too_many_hops_fail() {
    let o = run_redirect(
        |_, p| Resp::redirect(301, &format!("https://localhost:{p}/1")),
        |r| {
            let n: u32 = r.path.trim_start_matches('/').parse().unwrap_or(9);
            if n < 4 {
                Resp::redirect(301, &format!("/{}", n + 1))
            } else {
                Resp::html("end")
            }
        },
    )
    .await;
    assert_finding(&o, "redirect.hops", Status::Fail, "> 3");
    assert_finding(&o, "redirect.final_https", Status::Fail, "no final page");
    let o = run_redirect(
        |_, p| Resp::redirect(301, &format!("https://localhost:{p}/1")),
        |r| {
            if r.path == "/1" {
                Resp::redirect(301, "/2")
            } else {
                Resp::html("end")
            }
        },
    )
    .await;
    assert_finding(&o, "redirect.hops", Status::Pass, "2");
}

#[tokio::test]
async fn loop_is_detected() {
    let o = run_redirect(
        |_, p| Resp::redirect(301, &format!("https://localhost:{p}/a")),
        |r| {
            if r.path == "/a" {
                Resp::redirect(301, "/b")
            } else {
                Resp::redirect(301, "/a")
            }
        },
    )
    .await;
    assert_finding(&o, "redirect.hops", Status::Fail, "loop");
    assert!(
        finding(&o, "redirect.hops")
            .message
            .contains("redirect loop back to https://localhost")
    );
}

#[tokio::test]
async fn untrusted_https_target_breaks_the_chain() {
    let site = https_server(&self_signed(&["localhost"]), ok_page).await;
    let p = site.port();
    let http = http_server(move |_| Resp::redirect(301, &format!("https://localhost:{p}/"))).await;
    let toml = format!(
        "[[check]]\nname = \"r\"\nkind = \"redirect\"\nurl = \"http://localhost:{}/\"\n",
        http.port()
    );
    let o = run_toml(&toml, None).await.remove(0);
    assert_finding(&o, "redirect.https", Status::Pass, "https://");
    assert_finding(
        &o,
        "redirect.final_https",
        Status::Fail,
        "untrusted connection",
    );
}
