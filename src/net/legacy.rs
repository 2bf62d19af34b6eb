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
    pub(crate) const SSL3: Version = Version(0x0300);
    pub(crate) const TLS10: Version = Version(0x0301);
    pub(crate) const TLS11: Version = Version(0x0302);
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

/// Offers exactly `version` to `addr` and reports what came back, all before `deadline`. When the
/// server accepts, the certificate chain it sends next (in clear, before TLS 1.3) is read too.
pub async fn probe(
    addr: SocketAddr,
    server_name: &str,
    version: Version,
    deadline: Instant,
) -> (Answer, Vec<Vec<u8>>) {
    let attempt = async {
        let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        tcp.write_all(&client_hello(version, server_name))
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::with_capacity(4096);
        // The ServerHello's version sits in the first 11 bytes; an alert fits in 7.
        while buf.len() < 11 {
            if read_more(&mut tcp, &mut buf).await == 0 {
                break;
            }
            if buf.len() >= 7 && buf[0] == 21 {
                break;
            }
        }
        let answer = parse_answer(version, &buf);
        let chain = if answer == Answer::Accepted {
            read_chain(&mut tcp, buf).await
        } else {
            Vec::new()
        };
        Ok::<_, String>((answer, chain))
    };
    match tokio::time::timeout_at(deadline, attempt).await {
        Ok(Ok(a)) => a,
        Ok(Err(_)) => (Answer::Closed, Vec::new()),
        Err(_) => (
            Answer::NotTls("no answer before the deadline".into()),
            Vec::new(),
        ),
    }
}

/// The most a server may send before its Certificate message is complete: generous for long
/// chains, and a bound for a hostile one.
const MAX_FLIGHT: usize = 256 << 10;

async fn read_more(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 4096];
    match tcp.read(&mut chunk).await {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            n
        }
        Err(_) => 0,
    }
}

/// Reads records until the Certificate message is whole; an empty chain when it never comes.
async fn read_chain(tcp: &mut TcpStream, mut raw: Vec<u8>) -> Vec<Vec<u8>> {
    loop {
        match certificates(&handshake_bytes(&raw)) {
            Some(chain) => return chain,
            None if raw.len() > MAX_FLIGHT => return Vec::new(),
            None => {
                if read_more(tcp, &mut raw).await == 0 {
                    return Vec::new();
                }
            }
        }
    }
}

/// The handshake bytes of the complete records at the start of `raw`, up to the first record that
/// is not a handshake.
pub(crate) fn handshake_bytes(raw: &[u8]) -> Vec<u8> {
    let mut hs = Vec::new();
    let mut rest = raw;
    while rest.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if rest[0] != 22 || rest.len() < 5 + len {
            break;
        }
        hs.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
    }
    hs
}

/// The certificates of the first Certificate message in `hs`, leaf first. `None` while more bytes
/// are needed; an empty list when the flight ended (ServerHelloDone) or is malformed.
pub fn certificates(hs: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut rest = hs;
    while rest.len() >= 4 {
        let kind = rest[0];
        let len = (usize::from(rest[1]) << 16) | (usize::from(rest[2]) << 8) | usize::from(rest[3]);
        if rest.len() < 4 + len {
            return None;
        }
        let body = &rest[4..4 + len];
        match kind {
            11 => return Some(certificate_list(body)),
            14 => return Some(Vec::new()),
            _ => rest = &rest[4 + len..],
        }
    }
    None
}

fn certificate_list(body: &[u8]) -> Vec<Vec<u8>> {
    let u24 = |b: &[u8]| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]);
    let Some(total) = body.get(..3).map(u24) else {
        return Vec::new();
    };
    let mut list = body.get(3..3 + total).unwrap_or(&[]);
    let mut out = Vec::new();
    while list.len() >= 3 {
        let len = u24(list);
        let Some(der) = list.get(3..3 + len) else {
            break;
        };
        out.push(der.to_vec());
        list = &list[3 + len..];
    }
    out
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

    #[test]
    fn the_certificate_message_is_read_across_records() {
        // ServerHello (empty body), then Certificate with two certificates, split over records.
        let mut hs = vec![2, 0, 0, 0];
        let certs: [&[u8]; 2] = [b"leaf", b"intermediate"];
        let list: Vec<u8> = certs
            .iter()
            .flat_map(|c| [&[0, 0, c.len() as u8][..], c].concat())
            .collect();
        let mut msg = vec![0, 0, list.len() as u8];
        msg.extend(&list);
        hs.extend([11, 0, 0, msg.len() as u8]);
        hs.extend(&msg);
        let (a, b) = hs.split_at(9);
        let mut raw = Vec::new();
        for part in [a, b] {
            raw.extend([22, 3, 1, 0, part.len() as u8]);
            raw.extend(part);
        }
        assert_eq!(certificates(&handshake_bytes(&raw[..raw.len() - 3])), None);
        assert_eq!(
            certificates(&handshake_bytes(&raw)),
            Some(vec![b"leaf".to_vec(), b"intermediate".to_vec()])
        );
        assert_eq!(certificates(&[14, 0, 0, 0]), Some(Vec::new()));
        assert_eq!(certificates(&[11, 0, 0, 2, 0, 9]), Some(Vec::new()));
    }
}
