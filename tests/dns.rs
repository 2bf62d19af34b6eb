//! The `dns` kind against a real dnsmasq on loopback, and against hostile UDP servers.

mod common;

use common::{
    assert_every_report_format, assert_finding, details, dnsmasq, finding, free_port, run_toml,
};
use shipwatch::probe::Status;

fn check(name: &str, query: &str, kind: &str, server: &str, extra: &str) -> String {
    format!(
        "[[check]]\nname = \"{name}\"\nkind = \"dns\"\nquery = \"{query}\"\ntype = \"{kind}\"\nserver = \"{server}\"\ntimeout = \"2s\"\n{extra}\n"
    )
}

#[tokio::test]
async fn answers_ttl_and_rcode_from_a_real_server() {
    let d = dnsmasq().await;
    let server = format!("127.0.0.1:{}", d.port);
    let toml = [
        check(
            "a",
            "api.shipwatch.test",
            "A",
            &server,
            "expect = ['answers contains \"10.0.3.7\"', 'ttl <= 300', 'time < 1s']",
        ),
        check(
            "moved",
            "api.shipwatch.test",
            "A",
            &server,
            "expect = ['answers contains \"10.9.9.9\"']",
        ),
        check(
            "mx",
            "shipwatch.test",
            "MX",
            &server,
            "expect = ['answers contains \"10 mail.shipwatch.test.\"']",
        ),
        check(
            "txt",
            "shipwatch.test",
            "TXT",
            &server,
            "expect = ['answers matches \"spf1\"']",
        ),
        check(
            "cname",
            "www.shipwatch.test",
            "CNAME",
            &server,
            "expect = ['answers contains \"api.shipwatch.test.\"']",
        ),
        check(
            "srv",
            "_imap._tcp.shipwatch.test",
            "SRV",
            &server,
            "expect = ['answers contains \"0 5 143 mail.shipwatch.test.\"']",
        ),
        check("gone", "old.shipwatch.test", "A", &server, ""),
        check(
            "gone-expected",
            "old.shipwatch.test",
            "A",
            &server,
            "expect = ['rcode == \"NXDOMAIN\"']",
        ),
        check("refused", "example.com", "A", &server, ""),
        check(
            "tcp",
            "api.shipwatch.test",
            "A",
            &server,
            "transport = \"tcp\"\nexpect = ['answers contains \"10.0.3.7\"']",
        ),
    ]
    .concat();
    let out = run_toml(&toml, None).await;
    let a = &out[0];
    assert_eq!(a.status, Status::Pass, "{:?} {:?}", a.findings, a.error);
    assert_finding(a, "dns.rcode", Status::Pass, "NOERROR");
    assert_finding(a, "dns.assert.1", Status::Pass, "10.0.3.7");
    assert_eq!(details(a)["answers"], serde_json::json!(["10.0.3.7"]));
    assert_eq!(details(a)["ttl"], 300);
    assert_eq!(details(a)["transport"], "udp");
    assert_finding(&out[1], "dns.assert.1", Status::Fail, "10.0.3.7");
    for o in &out[2..6] {
        assert_eq!(
            o.status,
            Status::Pass,
            "{}: {:?} {:?}",
            o.name,
            o.findings,
            o.details
        );
    }
    assert_finding(&out[6], "dns.rcode", Status::Fail, "NXDOMAIN");
    // An assertion on rcode takes the place of the default NOERROR.
    assert_finding(&out[7], "dns.rcode", Status::Pass, "NXDOMAIN");
    assert_eq!(out[7].status, Status::Pass);
    assert_finding(&out[8], "dns.rcode", Status::Fail, "REFUSED");
    assert_eq!(details(&out[9])["transport"], "tcp");
    assert_eq!(out[9].status, Status::Pass);
    assert_every_report_format(&out);
    let metrics = shipwatch::metrics::Metrics::new();
    metrics.record(a);
    let text = metrics.encode();
    let line = text
        .lines()
        .find(|l| l.starts_with("shipwatch_dns_lookup_seconds{check=\"a\""))
        .unwrap_or_else(|| panic!("no lookup metric in {text}"));
    let seconds: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(seconds > 0.0 && seconds < 1.0, "{line}");
}

#[tokio::test]
async fn a_truncated_answer_is_asked_again_over_tcp() {
    let d = dnsmasq().await;
    let server = format!("127.0.0.1:{}", d.port);
    let toml = check(
        "big",
        "big.shipwatch.test",
        "A",
        &server,
        "expect = ['answers contains \"10.1.7.250\"']",
    );
    let out = run_toml(&toml, None).await;
    let o = &out[0];
    assert_eq!(o.status, Status::Pass, "{:?} {:?}", o.findings, o.error);
    let d = details(o);
    assert_eq!(d["transport"], "tcp");
    assert!(d["answers_total"].as_u64().unwrap() >= 1000, "{d}");
    // The report keeps a bounded list; the assertion saw them all.
    assert_eq!(d["answers"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn the_system_resolver_is_asked_when_no_server_is_named() {
    let d = dnsmasq().await;
    let toml = "[[check]]\nname = \"sys\"\nkind = \"dns\"\nquery = \"api.shipwatch.test\"\nexpect = ['answers == [\"10.0.3.7\"]']\n";
    let config = shipwatch::config::Config::parse("t.toml", toml).unwrap();
    let mut plan = shipwatch::plan::build(&config, &Default::default()).unwrap();
    plan.engine.nameservers = vec![([127, 0, 0, 1], d.port).into()];
    let engine = shipwatch::net::Engine::new(&plan.engine).unwrap();
    let out = shipwatch::runner::run_once(&plan, &engine).await;
    assert_eq!(out[0].status, Status::Pass, "{:?}", out[0].findings);
    assert_eq!(details(&out[0])["server"], format!("127.0.0.1:{}", d.port));
}

/// A UDP server that answers every datagram with `reply(query)`, or not at all.
async fn udp_server(reply: fn(&[u8]) -> Option<Vec<u8>>) -> u16 {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if let Some(r) = reply(&buf[..n]) {
                let _ = socket.send_to(&r, from).await;
            }
        }
    });
    port
}

#[tokio::test]
async fn hostile_and_absent_servers_are_errors_within_the_deadline() {
    let garbage =
        udp_server(|q| Some([&q[..2], b"\x81\x80 this is not DNS at all".as_slice()].concat()))
            .await;
    let silent = udp_server(|_| None).await;
    // Answers with another query's id: ignored, as a stub resolver ignores it.
    let wrong_id = udp_server(|q| {
        let mut r = q.to_vec();
        r[0] ^= 0xff;
        r[2] |= 0x80;
        Some(r)
    })
    .await;
    let closed = free_port();
    let toml = [
        check(
            "garbage",
            "api.shipwatch.test",
            "A",
            &format!("127.0.0.1:{garbage}"),
            "",
        ),
        check(
            "silent",
            "api.shipwatch.test",
            "A",
            &format!("127.0.0.1:{silent}"),
            "",
        ),
        check(
            "wrong-id",
            "api.shipwatch.test",
            "A",
            &format!("127.0.0.1:{wrong_id}"),
            "",
        ),
        check(
            "closed",
            "api.shipwatch.test",
            "A",
            &format!("127.0.0.1:{closed}"),
            "transport = \"tcp\"",
        ),
    ]
    .concat();
    let out = common::run_bounded(&toml).await;
    let err = |i: usize| {
        out[i]
            .error
            .clone()
            .unwrap_or_else(|| panic!("{}: no error", out[i].name))
    };
    assert_eq!(err(0).kind, "protocol");
    assert!(
        err(0).message.contains("not a valid DNS message"),
        "{}",
        err(0).message
    );
    assert_eq!(err(1).kind, "timeout");
    assert_eq!(err(2).kind, "timeout");
    assert_eq!(err(3).kind, "connect");
    for o in &out {
        assert_eq!(o.status, Status::Error, "{}", o.name);
    }
    assert_every_report_format(&out);
}

#[tokio::test]
async fn config_errors_point_at_the_value() {
    let toml = "[[check]]\nname = \"x\"\nkind = \"dns\"\nquery = \"a.example\"\ntype = \"AXFR\"\ntransport = \"quic\"\nexpect = ['anwsers contains \"1\"']\n";
    let err = shipwatch::config::Config::parse("t.toml", toml)
        .unwrap_err()
        .to_string();
    assert!(err.contains("t.toml:5:8"), "{err}");
    assert!(err.contains("type \"AXFR\" is not one of A AAAA"), "{err}");
    assert!(
        err.contains("transport \"quic\" must be \"udp\" or \"tcp\""),
        "{err}"
    );
    assert!(err.contains("did you mean \"answers\""), "{err}");
    let _ = finding;
}
