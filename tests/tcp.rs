//! The `tcp` kind: banners and exchanges, and STARTTLS against real servers (aiosmtpd for SMTP,
//! Dovecot for IMAP and POP3, PostgreSQL), then the hostile cases a server can throw at it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    Pki, assert_every_report_format, assert_finding, details, free_port, raw_server, run_toml,
    support_server, wait_for_port,
};
use shipwatch::probe::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn tcp_check(name: &str, host: &str, extra: &str) -> String {
    format!(
        "[[check]]\nname = \"{name}\"\nkind = \"tcp\"\nhost = \"{host}\"\ntimeout = \"2s\"\n{extra}\n"
    )
}

fn world_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn banners_exchanges_and_unreachable_ports() {
    let greeter = raw_server(|mut tcp| async move {
        let _ = tcp.write_all(b"220 mail.example.com ESMTP ready\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let pinger = raw_server(|mut tcp| async move {
        let mut buf = [0u8; 64];
        if let Ok(n) = tcp.read(&mut buf).await {
            let answer: &[u8] = if &buf[..n] == b"PING\r\n" {
                b"+PONG\r\n"
            } else {
                b"-ERR\r\n"
            };
            let _ = tcp.write_all(answer).await;
        }
    })
    .await;
    let closed = free_port();
    let toml = [
        tcp_check(
            "greet",
            &format!("127.0.0.1:{}", greeter.port()),
            "expect = ['banner matches \"^220 \"', 'time < 1s']",
        ),
        tcp_check(
            "greet-wrong",
            &format!("127.0.0.1:{}", greeter.port()),
            "expect = ['banner contains \"Postfix\"']",
        ),
        tcp_check(
            "ping",
            &format!("127.0.0.1:{}", pinger.port()),
            "send = \"PING\\r\\n\"\nexpect = ['banner == \"+PONG\"']",
        ),
        tcp_check("connect-only", &format!("127.0.0.1:{}", greeter.port()), ""),
        tcp_check("closed", &format!("127.0.0.1:{closed}"), ""),
    ]
    .concat();
    let out = run_toml(&toml, None).await;
    assert_eq!(out[0].status, Status::Pass, "{:?}", out[0].findings);
    assert_finding(
        &out[0],
        "tcp.connect",
        Status::Pass,
        "connected to 127.0.0.1",
    );
    assert_eq!(
        details(&out[0])["banner"],
        "220 mail.example.com ESMTP ready"
    );
    assert_finding(
        &out[1],
        "tcp.assert.1",
        Status::Fail,
        "220 mail.example.com",
    );
    assert_eq!(out[2].status, Status::Pass, "{:?}", out[2].findings);
    // Nothing judges a banner here, so none is awaited: the check does not sit out its timeout.
    assert_eq!(out[3].status, Status::Pass);
    assert!(
        out[3].duration < Duration::from_millis(1500),
        "{:?}",
        out[3].duration
    );
    assert_finding(&out[4], "tcp.connect", Status::Fail, "refused");
    assert_eq!(out[4].status, Status::Fail);
    assert_every_report_format(&out);
}

#[tokio::test]
async fn hostile_servers_cannot_hang_the_check_or_grow_its_memory() {
    // An endless banner with no line end: cut at 4 KiB.
    let endless = raw_server(|mut tcp| async move {
        let chunk = [b'A'; 8192];
        while tcp.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let silent = raw_server(|tcp| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(tcp);
    })
    .await;
    // Endless SMTP continuation lines: the greeting never ends.
    let chatter = raw_server(|mut tcp| async move {
        while tcp.write_all(b"220-still greeting you\r\n").await.is_ok() {}
    })
    .await;
    let http = raw_server(|mut tcp| async move {
        let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    })
    .await;
    let toml = [
        tcp_check(
            "endless",
            &format!("127.0.0.1:{}", endless.port()),
            "expect = ['banner startswith AAAA']",
        ),
        tcp_check(
            "silent",
            &format!("127.0.0.1:{}", silent.port()),
            "expect = ['banner exists']",
        ),
        tcp_check(
            "chatter",
            &format!("127.0.0.1:{}", chatter.port()),
            "starttls = \"smtp\"",
        ),
        tcp_check(
            "http",
            &format!("127.0.0.1:{}", http.port()),
            "starttls = \"smtp\"",
        ),
        tcp_check(
            "silent-smtp",
            &format!("127.0.0.1:{}", silent.port()),
            "starttls = \"smtp\"",
        ),
    ]
    .concat();
    let out = common::run_bounded(&toml).await;
    assert_eq!(out[0].status, Status::Pass, "{:?}", out[0].findings);
    assert_eq!(details(&out[0])["banner_truncated"], true);
    assert_eq!(details(&out[0])["banner"].as_str().unwrap().len(), 4096);
    assert_eq!(out[1].error.as_ref().map(|e| e.kind), Some("timeout"));
    assert_finding(
        &out[2],
        "tcp.starttls",
        Status::Fail,
        "longer than 65536 bytes",
    );
    assert_finding(
        &out[3],
        "tcp.starttls",
        Status::Fail,
        "not an SMTP reply: \"HTTP/1.1 400",
    );
    let e = out[4].error.as_ref().expect("a timeout");
    assert_eq!(e.kind, "timeout");
    assert!(e.message.contains("SMTP greeting"), "{}", e.message);
    assert_every_report_format(&out);
}

#[tokio::test]
async fn smtp_starttls_is_judged_like_a_tls_check() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let ca = pki.write_ca(&dir);
    let (cert, key) = pki.write_chain(dir.path(), "smtp", 20);
    let (tls_port, plain_port) = (free_port(), free_port());
    let sink = dir.path().join("mail.jsonl");
    let args = |port: u16, tls: bool| -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec![port.to_string().into(), sink.clone().into()];
        if tls {
            a.extend([
                "u".into(),
                "p".into(),
                "starttls".into(),
                cert.clone().into(),
                key.clone().into(),
            ]);
        }
        a
    };
    let tls_args = args(tls_port, true);
    let plain_args = args(plain_port, false);
    let _tls = support_server("smtp_sink.py", &tls_args, "aiosmtpd").await;
    let _plain = support_server("smtp_sink.py", &plain_args, "aiosmtpd").await;
    let toml = [
        tcp_check(
            "smtp",
            &format!("localhost:{tls_port}"),
            "starttls = \"smtp\"\nexpect = ['banner matches \"^220 \"']",
        ),
        tcp_check(
            "smtp-no-tls",
            &format!("localhost:{plain_port}"),
            "starttls = \"smtp\"",
        ),
        tcp_check(
            "smtp-untrusted",
            &format!("localhost:{tls_port}"),
            "starttls = \"smtp\"\nserver_name = \"mail.example.com\"",
        ),
    ]
    .concat();
    let out = run_toml(&toml, Some(ca)).await;
    let smtp = &out[0];
    assert_finding(smtp, "tcp.starttls", Status::Pass, "with smtp STARTTLS");
    assert_finding(smtp, "tls.trust", Status::Pass, "trusted root");
    assert_finding(smtp, "tls.hostname", Status::Pass, "localhost");
    // 20 days left is under the default 30-day warning.
    assert_finding(smtp, "tls.expiry", Status::Warn, "expires in");
    assert_finding(smtp, "tcp.assert.1", Status::Pass, "^220");
    assert_eq!(smtp.status, Status::Warn, "{:?}", smtp.findings);
    assert!(
        details(smtp)["tls"]["not_after"].is_string(),
        "{}",
        details(smtp)
    );
    assert_finding(
        &out[1],
        "tcp.starttls",
        Status::Fail,
        "does not offer STARTTLS",
    );
    assert_finding(&out[2], "tls.hostname", Status::Fail, "mail.example.com");
    assert_every_report_format(&out);
}

#[tokio::test]
async fn a_server_that_lies_about_starttls_is_a_finding() {
    // Offers STARTTLS, agrees, then keeps talking plain text.
    let liar = raw_server(|mut tcp| async move {
        let mut buf = [0u8; 256];
        let _ = tcp.write_all(b"220 liar ESMTP\r\n").await;
        let _ = tcp.read(&mut buf).await;
        let _ = tcp.write_all(b"250-liar\r\n250 STARTTLS\r\n").await;
        let _ = tcp.read(&mut buf).await;
        let _ = tcp.write_all(b"220 go ahead\r\n").await;
        let _ = tcp.read(&mut buf).await;
        let _ = tcp.write_all(b"250 plain text after all\r\n").await;
    })
    .await;
    // Answers STARTTLS and sends a command's answer in the same packet: plain text that would be
    // read as if it came over TLS.
    let injector = raw_server(|mut tcp| async move {
        let mut buf = [0u8; 256];
        let _ = tcp.write_all(b"220 inj ESMTP\r\n").await;
        let _ = tcp.read(&mut buf).await;
        let _ = tcp.write_all(b"250-inj\r\n250 STARTTLS\r\n").await;
        let _ = tcp.read(&mut buf).await;
        let _ = tcp.write_all(b"220 go ahead\r\n250 injected\r\n").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await;
    let refuser = raw_server(|mut tcp| async move {
        let mut buf = [0u8; 256];
        let _ = tcp.write_all(b"220 busy ESMTP\r\n").await;
        let _ = tcp.read(&mut buf).await;
        let _ = tcp.write_all(b"250-busy\r\n250 STARTTLS\r\n").await;
        let _ = tcp.read(&mut buf).await;
        let _ = tcp
            .write_all(b"454 4.7.0 TLS not available due to local problem\r\n")
            .await;
    })
    .await;
    let toml = [
        tcp_check(
            "liar",
            &format!("127.0.0.1:{}", liar.port()),
            "starttls = \"smtp\"",
        ),
        tcp_check(
            "injector",
            &format!("127.0.0.1:{}", injector.port()),
            "starttls = \"smtp\"",
        ),
        tcp_check(
            "refuser",
            &format!("127.0.0.1:{}", refuser.port()),
            "starttls = \"smtp\"",
        ),
    ]
    .concat();
    let out = run_toml(&toml, None).await;
    assert_finding(
        &out[0],
        "tcp.starttls",
        Status::Fail,
        "agreed to STARTTLS, then",
    );
    assert_finding(
        &out[1],
        "tcp.starttls",
        Status::Fail,
        "bytes after agreeing to STARTTLS",
    );
    assert_finding(&out[2], "tcp.starttls", Status::Fail, "454 ");
    for o in &out {
        assert_eq!(
            o.status,
            Status::Fail,
            "{}: {:?} {:?}",
            o.name,
            o.findings,
            o.error
        );
    }
}

/// Dovecot with IMAP and POP3 (STARTTLS and STLS) on two free ports, with `cert` and `key`.
async fn dovecot(dir: &Path, cert: &Path, key: &Path) -> (u16, u16, tokio::process::Child) {
    let (imap, pop3) = (free_port(), free_port());
    let d = dir.display();
    let conf = format!(
        "protocols = imap pop3\nlisten = 127.0.0.1\nbase_dir = {d}/run\nstate_dir = {d}/state\n\
         log_path = {d}/dovecot.log\nssl = yes\nssl_cert = <{}\nssl_key = <{}\n\
         passdb {{\n  driver = static\n  args = password=unused\n}}\n\
         userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/home\n}}\n\
         service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
         service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n",
        cert.display(),
        key.display()
    );
    let path = dir.join("dovecot.conf");
    std::fs::write(&path, conf).unwrap();
    let child = tokio::process::Command::new("/usr/sbin/dovecot")
        .arg("-F")
        .arg("-c")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("dovecot (scripts/test.sh installs dovecot-imapd and dovecot-pop3d)");
    wait_for_port(imap, "dovecot imap").await;
    wait_for_port(pop3, "dovecot pop3").await;
    (imap, pop3, child)
}

#[tokio::test]
async fn imap_and_pop3_upgrade_on_dovecot() {
    let dir = tempfile::tempdir().unwrap();
    world_readable(dir.path());
    let pki = Pki::new();
    let ca = pki.write_ca(&dir);
    let (cert, key) = pki.write_chain(dir.path(), "mail", 365);
    let (imap, pop3, _dovecot) = dovecot(dir.path(), &cert, &key).await;
    let toml = [
        tcp_check(
            "imap",
            &format!("localhost:{imap}"),
            "starttls = \"imap\"\nexpect = ['banner contains Dovecot']",
        ),
        tcp_check("pop3", &format!("localhost:{pop3}"), "starttls = \"pop3\""),
        // The wrong protocol on the port: POP3's greeting is not IMAP's.
        tcp_check(
            "imap-on-pop3",
            &format!("localhost:{pop3}"),
            "starttls = \"imap\"",
        ),
    ]
    .concat();
    let out = run_toml(&toml, Some(ca)).await;
    for o in &out[..2] {
        assert_finding(o, "tcp.starttls", Status::Pass, "STARTTLS");
        assert_finding(o, "tls.trust", Status::Pass, "trusted");
        assert_finding(o, "tls.expiry", Status::Pass, "expires in");
        assert_eq!(o.status, Status::Pass, "{}: {:?}", o.name, o.findings);
    }
    assert_finding(
        &out[2],
        "tcp.starttls",
        Status::Fail,
        "did not greet with \"* OK\"",
    );
}

/// A PostgreSQL server on a free port, `ssl` on or off, in its own data directory.
async fn postgres(dir: &Path, ssl: bool, cert: &Path, key: &Path) -> (u16, tokio::process::Child) {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL (scripts/test.sh installs postgresql)")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .find(|p| p.join("postgres").exists())
        .expect("a postgres binary");
    let data = dir.join(if ssl { "pg-ssl" } else { "pg-plain" });
    let owned = |cmd: String| {
        let status = std::process::Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", &cmd])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("su postgres");
        assert!(status.success(), "as postgres: {cmd}");
    };
    std::fs::create_dir_all(&data).unwrap();
    let (pg_cert, pg_key) = (dir.join("pg.crt"), dir.join("pg.key"));
    std::fs::copy(cert, &pg_cert).unwrap();
    std::fs::copy(key, &pg_key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pg_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", "postgres"])
        .arg(&data)
        .arg(&pg_cert)
        .arg(&pg_key)
        .status()
        .expect("chown");
    assert!(chown.success());
    owned(format!(
        "{}/initdb -D {} -A trust",
        bin.display(),
        data.display()
    ));
    let port = free_port();
    let child = tokio::process::Command::new("su")
        .args(["postgres", "-s", "/bin/sh", "-c"])
        .arg(format!(
            "exec {}/postgres -D {} -p {port} -k {} -c listen_addresses=127.0.0.1 -c ssl={} -c ssl_cert_file={} -c ssl_key_file={}",
            bin.display(),
            data.display(),
            data.display(),
            if ssl { "on" } else { "off" },
            pg_cert.display(),
            pg_key.display()
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("postgres");
    wait_for_port(port, "postgres").await;
    (port, child)
}

#[tokio::test]
async fn postgres_ssl_request_on_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    world_readable(dir.path());
    let pki = Pki::new();
    let ca = pki.write_ca(&dir);
    let (cert, key) = pki.write_chain(dir.path(), "db", 365);
    let (with_ssl, _a) = postgres(dir.path(), true, &cert, &key).await;
    let (without, _b) = postgres(dir.path(), false, &cert, &key).await;
    let toml = [
        tcp_check(
            "pg",
            &format!("localhost:{with_ssl}"),
            "starttls = \"postgres\"\nmin_version = \"1.3\"",
        ),
        tcp_check(
            "pg-plain",
            &format!("localhost:{without}"),
            "starttls = \"postgres\"",
        ),
    ]
    .concat();
    let out = run_toml(&toml, Some(ca)).await;
    assert_finding(&out[0], "tcp.starttls", Status::Pass, "TLSv1.3");
    assert_finding(&out[0], "tls.version", Status::Pass, "TLSv1.3");
    assert_eq!(out[0].status, Status::Pass, "{:?}", out[0].findings);
    assert_finding(
        &out[1],
        "tcp.starttls",
        Status::Fail,
        "answered N to SSLRequest",
    );
}

#[tokio::test]
async fn config_errors_point_at_the_value() {
    let toml = "[[check]]\nname = \"x\"\nkind = \"tcp\"\nhost = \"mail.example.com:587\"\nstarttls = \"ftp\"\n\n[[check]]\nname = \"y\"\nkind = \"tcp\"\nhost = \"db:5432\"\nstarttls = \"postgres\"\nsend = \"hi\"\nexpect = ['banner == 1', 'status == 200']\n";
    let err = shipwatch::config::Config::parse("t.toml", toml)
        .unwrap_err()
        .to_string();
    assert!(err.contains("t.toml:5:12"), "{err}");
    assert!(
        err.contains("starttls \"ftp\" is not one of smtp, imap, pop3, postgres or none"),
        "{err}"
    );
    assert!(
        err.contains("`send` cannot be combined with starttls = \"postgres\""),
        "{err}"
    );
    assert!(err.contains("unknown query \"status\""), "{err}");
    let no_port = "[[check]]\nname = \"x\"\nkind = \"tcp\"\nhost = \"mail.example.com\"\n";
    let config = shipwatch::config::Config::parse("t.toml", no_port).unwrap();
    let err = shipwatch::plan::build(&config, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be HOST:PORT"), "{err}");
}

#[tokio::test]
async fn a_secret_sent_and_echoed_is_hidden_everywhere() {
    const SECRET: &str = "tcp-Secret-9f8e7d";
    let echo = raw_server(|mut tcp| async move {
        let mut buf = [0u8; 256];
        if let Ok(n) = tcp.read(&mut buf).await {
            let _ = tcp.write_all(&buf[..n]).await;
        }
    })
    .await;
    let toml = format!(
        "[secrets]\nauth = {{ env = \"SW_TCP_SECRET\" }}\n{}",
        tcp_check(
            "echo",
            &format!("127.0.0.1:{}", echo.port()),
            "send = \"AUTH {{ secrets.auth }}\\r\\n\"\nexpect = ['banner == \"+OK\"']"
        )
    );
    let getenv = |name: &str| (name == "SW_TCP_SECRET").then(|| SECRET.to_string());
    let opts = shipwatch::plan::PlanOptions {
        getenv: Some(&getenv),
        ..Default::default()
    };
    let out = common::run_toml_with(&toml, opts).await;
    assert_finding(&out[0], "tcp.assert.1", Status::Fail, "AUTH");
    let shown = format!("{out:?}");
    assert!(!shown.contains(SECRET), "{shown}");
}
