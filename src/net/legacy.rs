//! Legacy-protocol probe: a hand-built ClientHello for SSLv3, TLS 1.0 or TLS 1.1 over plain TCP,
//! and a parser for the first record the server sends back. rustls cannot speak these versions,
//! and the handshake is never finished: the ServerHello alone answers the question.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A protocol version as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u16);

impl Version {
    pub const SSL3: Version = Version(0x0300);
    pub const TLS10: Version = Version(0x0301);
    pub const TLS11: Version = Version(0x0302);
    pub const TLS12: Version = Version(0x0303);

    pub fn name(self) -> String {
        match self.0 {
            0x0300 => "SSLv3".into(),
            0x0301 => "TLSv1.0".into(),
            0x0302 => "TLSv1.1".into(),
            0x0303 => "TLSv1.2".into(),
            0x0304 => "TLSv1.3".into(),
            v => format!("0x{v:04x}"),
        }
    }
}

/// What the server did with a ClientHello offering one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A ServerHello at exactly the requested version.
    Accepted,
    /// A ServerHello at a lower version than requested.
    Lower(Version),
    /// A ServerHello at a higher version than the client offered: a server bug.
    Higher(Version),
    /// A TLS alert, with its description code.
    Alert(u8),
    /// The connection closed or reset without an answer.
    Closed,
    /// Something that is not TLS.
    NotTls(String),
}

/// Cipher suites that servers of the SSLv3–TLS 1.1 era accept, so a refusal means the protocol.
const SUITES: &[u16] = &[
    0xc014, 0xc013, 0xc00a, 0xc009, // ECDHE with AES-CBC
    0x0039, 0x0033, // DHE with AES-CBC
    0x0035, 0x002f, 0x000a, // RSA with AES-CBC and 3DES
    0x0005, 0x0004, // RC4, still worth finding on an old server
    0x00ff, // renegotiation info SCSV
];

/// Builds a ClientHello record for `version`, with SNI for `server_name` when it is a name.
pub fn client_hello(version: Version, server_name: &str) -> Vec<u8> {
    let mut ext = Vec::new();
    if !server_name.is_empty() && server_name.parse::<std::net::IpAddr>().is_err() {
        let name = server_name.as_bytes();
        let mut sni = Vec::new();
        push_u16(&mut sni, (name.len() + 3) as u16);
        sni.push(0); // host_name
        push_u16(&mut sni, name.len() as u16);
        sni.extend_from_slice(name);
        push_ext(&mut ext, 0x0000, &sni);
    }
    push_ext(
        &mut ext,
        0x000a,
        &[0x00, 0x06, 0x00, 0x17, 0x00, 0x18, 0x00, 0x1d],
    ); // secp256r1, secp384r1, x25519
    push_ext(&mut ext, 0x000b, &[0x01, 0x00]); // uncompressed points
    let mut body = Vec::new();
    push_u16(&mut body, version.0);
    body.extend((0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11))); // client random; need not be secret here
    body.push(0); // no session id
    push_u16(&mut body, (SUITES.len() * 2) as u16);
    SUITES.iter().for_each(|s| push_u16(&mut body, *s));
    body.extend_from_slice(&[1, 0]); // null compression only
    if version != Version::SSL3 {
        push_u16(&mut body, ext.len() as u16);
        body.extend_from_slice(&ext);
    }
    let mut hs = vec![1u8]; // client_hello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    // The record layer says TLS 1.0 (or SSLv3), as clients do for compatibility.
    let record_version = version.min(Version::TLS10);
    let mut rec = vec![22u8];
    push_u16(&mut rec, record_version.0);
    push_u16(&mut rec, hs.len() as u16);
    rec.extend_from_slice(&hs);
    rec
}

fn push_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_be_bytes());
}

fn push_ext(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    push_u16(buf, kind);
    push_u16(buf, data.len() as u16);
    buf.extend_from_slice(data);
}

/// Reads the server's first record: a ServerHello's version, an alert, or something else.
/// `bytes` is whatever arrived; it may be short or hostile.
pub fn parse_answer(requested: Version, bytes: &[u8]) -> Answer {
    if bytes.is_empty() {
        return Answer::Closed;
    }
    if bytes.len() < 5 {
        return Answer::NotTls(format!("a {}-byte reply", bytes.len()));
    }
    let (kind, major) = (bytes[0], bytes[1]);
    if major != 3 {
        return Answer::NotTls(format!("record version {major}.{}", bytes[2]));
    }
    let body = &bytes[5..];
    match kind {
        21 => Answer::Alert(body.get(1).copied().unwrap_or(0)),
        22 => match body {
            [2, _, _, _, hi, lo, ..] => {
                let v = Version(u16::from_be_bytes([*hi, *lo]));
                match v.cmp(&requested) {
                    std::cmp::Ordering::Equal => Answer::Accepted,
                    std::cmp::Ordering::Less => Answer::Lower(v),
                    std::cmp::Ordering::Greater => Answer::Higher(v),
                }
            }
            [t, ..] => Answer::NotTls(format!("handshake message type {t} instead of ServerHello")),
            [] => Answer::Closed,
        },
        k => Answer::NotTls(format!("record type {k}")),
    }
}

/// Offers exactly `version` to `addr` and reports what came back, all before `deadline`.
pub async fn probe(
    addr: SocketAddr,
    server_name: &str,
    version: Version,
    deadline: Instant,
) -> Answer {
    let attempt = async {
        let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        tcp.write_all(&client_hello(version, server_name))
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 16];
        let mut got = 0;
        // The ServerHello's version sits in the first 11 bytes; an alert fits in 7.
        while got < 11 {
            match tcp.read(&mut buf[got..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
            if got >= 7 && buf[0] == 21 {
                break;
            }
        }
        Ok::<_, String>(parse_answer(version, &buf[..got]))
    };
    match tokio::time::timeout_at(deadline, attempt).await {
        Ok(Ok(a)) => a,
        Ok(Err(_)) => Answer::Closed,
        Err(_) => Answer::NotTls("no answer before the deadline".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_is_well_formed() {
        let h = client_hello(Version::TLS11, "example.com");
        assert_eq!(&h[..3], &[22, 3, 1]);
        assert_eq!(u16::from_be_bytes([h[3], h[4]]) as usize, h.len() - 5);
        assert_eq!(h[5], 1);
        assert_eq!(&h[9..11], &[3, 2]);
        assert!(h.windows(11).any(|w| w == b"example.com"));
        let ssl3 = client_hello(Version::SSL3, "example.com");
        assert_eq!(&ssl3[1..3], &[3, 0]);
        assert!(!ssl3.windows(11).any(|w| w == b"example.com"));
    }

    #[test]
    fn answers_are_classified() {
        let hello = |v: u16| {
            let mut b = vec![22, 3, 1, 0, 50, 2, 0, 0, 46];
            b.extend_from_slice(&v.to_be_bytes());
            b
        };
        assert_eq!(
            parse_answer(Version::TLS10, &hello(0x0301)),
            Answer::Accepted
        );
        assert_eq!(
            parse_answer(Version::TLS11, &hello(0x0301)),
            Answer::Lower(Version::TLS10)
        );
        assert_eq!(
            parse_answer(Version::TLS10, &hello(0x0303)),
            Answer::Higher(Version::TLS12)
        );
        assert_eq!(
            parse_answer(Version::TLS10, &[21, 3, 1, 0, 2, 2, 70]),
            Answer::Alert(70)
        );
        assert_eq!(parse_answer(Version::TLS10, &[]), Answer::Closed);
        assert!(matches!(
            parse_answer(Version::TLS10, b"HTTP/1.1 400"),
            Answer::NotTls(_)
        ));
        assert!(matches!(
            parse_answer(Version::TLS10, &[22, 3, 1]),
            Answer::NotTls(_)
        ));
        assert!(matches!(
            parse_answer(Version::TLS10, &[22, 3, 1, 0, 1, 11]),
            Answer::NotTls(_)
        ));
    }
}
