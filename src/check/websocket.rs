//! `kind = "websocket"`: the opening handshake (RFC 6455 §4), judged by `websocket.upgrade`, then
//! an optional message sent and the first data message received judged by assertions on
//! `message` and `time`. A close frame before any message is `websocket.close`, with its code
//! and reason. Frames are read within the deadline; a message is kept up to [`MAX_MESSAGE`]
//! bytes and the rest of a longer one is read and dropped, so a flood costs time, not memory.

use tokio::time::Instant;
use url::Url;

use crate::assert::{Assertion, Context, Subject, base64};
use crate::check::build::Build;
use crate::check::read::{read_expect, required};
use crate::check::wire::{Io, Wire, WireError};
use crate::doc::{Diagnostics, Spanned, Table};
use crate::net::{NetError, Timings};
use crate::outcome::{Details, ProbeError, WebSocketDetails};

use super::{Ctx, Finding, Probed, Status, judge_assertions};

/// The most bytes of one message kept and judged.
const MAX_MESSAGE: usize = 64 << 10;

/// The GUID RFC 6455 appends to the key to compute `Sec-WebSocket-Accept`.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// An endpoint, the message to send and what the answer must satisfy.
#[derive(Debug, Clone)]
pub struct WebSocketProbe {
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub send: Option<String>,
    pub expect: Vec<Assertion>,
    pub insecure: bool,
}

/// One frame as received.
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// What waiting for a message ended with.
enum Received {
    Message(String),
    Closed(u16, String),
    Nothing,
}

impl WebSocketProbe {
    pub async fn run(&self, ctx: &Ctx<'_>) -> Probed {
        let started = Instant::now();
        let (mut wire, mut timings) = match self.open(ctx).await {
            Ok(w) => w,
            Err(e) => return Probed::failed(e),
        };
        let key = base64(&crate::crypto::random::<16>());
        let (upgrade, protocol) = match self.handshake(&mut wire, &key).await {
            Ok(u) => u,
            Err(e) => return Probed::failed(e),
        };
        timings.ttfb = started.elapsed();
        let mut details = WebSocketDetails {
            protocol,
            ..WebSocketDetails::default()
        };
        let upgraded = upgrade.status == Status::Pass;
        let mut findings = vec![upgrade];
        let mut error = None;
        if upgraded && (self.send.is_some() || !self.expect.is_empty()) {
            match self.exchange(&mut wire, &mut details).await {
                Ok(received) => {
                    timings.total = started.elapsed();
                    findings.extend(self.judge(received, timings, &mut details));
                }
                Err(e) => error = Some(e),
            }
            let _ = wire.send(&client_frame(0x8, &1000u16.to_be_bytes())).await;
        }
        timings.total = started.elapsed();
        Probed {
            findings,
            timings: Some(timings),
            error,
            details: Details::WebSocket(details),
            redact: Vec::new(),
        }
    }

    /// TCP, and TLS for wss://, refusing an unverified certificate unless the check is insecure.
    async fn open(&self, ctx: &Ctx<'_>) -> Result<(Wire<Box<dyn Io>>, Timings), NetError> {
        let host = self.url.host_str().unwrap_or_default();
        let port = self.url.port_or_known_default().unwrap_or(80);
        let connect = ctx.engine.connect(host, port, ctx.overrides, ctx.deadline);
        let (tcp, mut timings) = connect.await?;
        let io: Box<dyn Io> = if self.url.scheme() == "wss" {
            let alpn: &[&[u8]] = &[b"http/1.1"];
            let (tls, info, took) = ctx.engine.upgrade(tcp, host, alpn, ctx.deadline).await?;
            timings.tls = took;
            if !info.verified() && !self.insecure {
                return Err(NetError::Untrusted(info.problem().unwrap_or_default()));
            }
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        Ok((Wire::new(io, ctx.deadline), timings))
    }

    /// Sends the opening handshake and judges the answer: `websocket.upgrade`, and the
    /// subprotocol the server chose.
    async fn handshake(
        &self,
        wire: &mut Wire<Box<dyn Io>>,
        key: &str,
    ) -> Result<(Finding, Option<String>), ProbeError> {
        let request = self.request(key);
        wire.send(request.as_bytes())
            .await
            .map_err(|e| e.during("sending the handshake"))?;
        let head = wire
            .head()
            .await
            .map_err(|e| e.during("waiting for the handshake answer"))?;
        let accept = base64(&crate::crypto::sha1(format!("{key}{GUID}").as_bytes()));
        let answer = Handshake::parse(&head);
        Ok((
            answer.judge(&accept),
            answer.header("sec-websocket-protocol"),
        ))
    }

    fn request(&self, key: &str) -> String {
        let path = &self.url[url::Position::BeforePath..url::Position::AfterQuery];
        let host = &self.url[url::Position::BeforeHost..url::Position::AfterPort];
        let mut r = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: shipwatch/{}\r\n",
            if path.is_empty() { "/" } else { path },
            env!("CARGO_PKG_VERSION")
        );
        for (k, v) in &self.headers {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
        r.push_str("\r\n");
        r
    }

    /// Sends the message, if any, and waits for the first data message, answering pings.
    async fn exchange(
        &self,
        wire: &mut Wire<Box<dyn Io>>,
        details: &mut WebSocketDetails,
    ) -> Result<Received, ProbeError> {
        if let Some(text) = &self.send {
            wire.send(&client_frame(0x1, text.as_bytes()))
                .await
                .map_err(|e| e.during("sending the message"))?;
        }
        let mut message = Vec::new();
        loop {
            let frame = match read_frame(wire).await {
                Ok(f) => f,
                Err(WireError::Timeout) => return Ok(Received::Nothing),
                Err(WireError::Closed) => return Ok(Received::Closed(1006, String::new())),
                Err(e) => return Err(e.during("reading a frame")),
            };
            details.frames += 1;
            match frame.opcode {
                0x0..=0x2 => {
                    let room = MAX_MESSAGE.saturating_sub(message.len());
                    message.extend(frame.payload.into_iter().take(room));
                    if frame.fin {
                        let text = String::from_utf8_lossy(&message).into_owned();
                        return Ok(Received::Message(text));
                    }
                }
                0x8 => {
                    let code = match frame.payload.get(..2) {
                        Some(&[a, b]) => u16::from_be_bytes([a, b]),
                        _ => 1005,
                    };
                    let reason = String::from_utf8_lossy(frame.payload.get(2..).unwrap_or(&[]));
                    return Ok(Received::Closed(code, reason.into_owned()));
                }
                0x9 => {
                    let _ = wire.send(&client_frame(0xA, &frame.payload)).await;
                }
                _ => {}
            }
        }
    }

    fn judge(
        &self,
        received: Received,
        timings: Timings,
        details: &mut WebSocketDetails,
    ) -> Vec<Finding> {
        let mut subject = Subject {
            time: Some(timings.total),
            ..Subject::default()
        };
        let mut findings = Vec::new();
        match received {
            Received::Message(text) => {
                details.message = Some(text.chars().take(1000).collect());
                subject.facts.push(("message", text.into()));
            }
            Received::Closed(code, reason) => {
                let said = match reason.as_str() {
                    "" => String::new(),
                    r => format!(" \"{r}\""),
                };
                let msg = format!(
                    "the server closed the connection with {code}{said} before sending a message"
                );
                let actual = format!("closed {code}{said}");
                let close = Finding::new("websocket.close", Status::Fail, msg);
                findings.push(close.with_values("a message", actual));
                details.close_code = Some(code);
                details.close_reason = Some(reason).filter(|r| !r.is_empty());
            }
            Received::Nothing => {}
        }
        findings.extend(judge_assertions(
            &subject,
            &self.expect,
            "",
            "websocket.assert",
        ));
        findings
    }
}

/// The server's answer to the opening handshake.
struct Handshake {
    status_line: String,
    status: Option<u16>,
    headers: Vec<(String, String)>,
}

impl Handshake {
    fn parse(head: &str) -> Handshake {
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let status = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|r| r.get(2..5))
            .and_then(|c| c.parse().ok());
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Handshake {
            status_line,
            status,
            headers,
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// `websocket.upgrade`: 101, `Upgrade: websocket`, `Connection: Upgrade` and the right accept.
    fn judge(&self, accept: &str) -> Finding {
        let expected = "101 Switching Protocols with a valid Sec-WebSocket-Accept";
        let has = |name: &str, word: &str| {
            self.header(name)
                .is_some_and(|v| v.split(',').any(|w| w.trim().eq_ignore_ascii_case(word)))
        };
        let problem = match self.status {
            None => Some(format!(
                "the answer is not HTTP: \"{}\"",
                self.status_line.chars().take(80).collect::<String>()
            )),
            Some(101) if !has("upgrade", "websocket") => {
                Some("101 without \"Upgrade: websocket\"".to_string())
            }
            Some(101) if !has("connection", "upgrade") => {
                Some("101 without \"Connection: Upgrade\"".to_string())
            }
            Some(101) => match self.header("sec-websocket-accept") {
                None => Some("101 without a Sec-WebSocket-Accept header".to_string()),
                Some(a) if a != accept => Some(format!(
                    "101 with Sec-WebSocket-Accept \"{a}\" where the key gives \"{accept}\""
                )),
                Some(_) => None,
            },
            Some(code) => Some(format!(
                "status {code} instead of 101: the server or a proxy in front of it did not \
                 upgrade the connection"
            )),
        };
        match problem {
            None => Finding::new("websocket.upgrade", Status::Pass, "upgraded to WebSocket")
                .with_values(expected, "101 with a valid Sec-WebSocket-Accept"),
            Some(p) => Finding::new(
                "websocket.upgrade",
                Status::Fail,
                format!("no upgrade: {p}"),
            )
            .with_values(expected, p),
        }
    }
}

/// One frame; a payload past [`MAX_MESSAGE`] is read and dropped.
async fn read_frame(wire: &mut Wire<Box<dyn Io>>) -> Result<Frame, WireError> {
    wire.begin();
    let head = wire.take(2).await?;
    let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
    let masked = head[1] & 0x80 != 0;
    let len = match head[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([wire.byte().await?, wire.byte().await?])),
        127 => {
            let b = wire.take(8).await?;
            u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        }
        n => u64::from(n),
    };
    let mask = if masked {
        wire.take(4).await?
    } else {
        Vec::new()
    };
    let kept = len.min(MAX_MESSAGE as u64) as usize;
    let mut payload = wire.take(kept).await?;
    wire.skip(len - kept as u64).await?;
    if masked {
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= mask[i % 4]);
    }
    Ok(Frame {
        fin,
        opcode,
        payload,
    })
}

/// A final client frame: clients mask every payload (RFC 6455 §5.3).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = crate::crypto::random::<4>();
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

// The `[[check]]` keys of this kind, read and validated with positions.

/// The keys a `kind = "websocket"` check takes besides the common ones.
pub(crate) const KEYS: &[&str] = &["url", "headers", "send", "expect"];

/// `kind = "websocket"`: an endpoint, its headers, a message to send and assertions.
#[derive(Debug, Clone)]
pub struct WebSocketSpec {
    pub url: Spanned<String>,
    pub headers: Vec<(String, Spanned<String>)>,
    pub send: Option<Spanned<String>>,
    pub expect: Vec<Spanned<String>>,
}

pub(crate) fn read(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<WebSocketSpec> {
    let url = required(t, "url", diags);
    let headers = t.str_map("headers", diags).unwrap_or_default();
    let send = t.str("send", diags);
    let expect = read_expect(t, Context::WebSocket, diags);
    Some(WebSocketSpec {
        url: url?,
        headers,
        send,
        expect,
    })
}

/// The job of a `kind = "websocket"` check, its strings interpolated.
pub(crate) fn build(spec: &WebSocketSpec, b: &mut Build<'_>) -> Option<WebSocketProbe> {
    let url = b.url_with(&spec.url, &["wss", "ws"])?;
    let headers = spec
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), b.text(v)))
        .collect();
    let send = spec.send.as_ref().map(|s| b.text(s));
    let expect = b.expect(&spec.expect, Context::WebSocket);
    Some(WebSocketProbe {
        url,
        headers,
        send,
        expect,
        insecure: b.insecure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_value_follows_rfc_6455() {
        // The example of RFC 6455 §1.3.
        let accept = base64(&crate::crypto::sha1(
            format!("dGhlIHNhbXBsZSBub25jZQ=={GUID}").as_bytes(),
        ));
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let ok = Handshake::parse(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        );
        assert_eq!(ok.judge(&accept).status, Status::Pass);
        let plain = Handshake::parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(
            plain
                .judge(&accept)
                .message
                .contains("status 200 instead of 101")
        );
        let frame = client_frame(0x1, b"hi");
        assert_eq!((frame[0], frame[1]), (0x81, 0x82));
        assert_eq!(frame[6] ^ frame[2], b'h');
    }
}
