//! A lean HTTP/2 client for latency runs. A lane's connection keeps its requests in flight the
//! way h2load drives one: the request's header block is encoded once, frames are written in one
//! batch per turn of the lane, and answers are read straight from the frames.
//!
//! It asks the server not to use HPACK's dynamic table (SETTINGS_HEADER_TABLE_SIZE 0). With an
//! empty table, no header of an answer changes what a later one means, so the only field worth
//! decoding is `:status`, which comes first in an answer's head (RFC 9113 §8.3); the rest of
//! each block is skipped. Every other HTTP/2 exchange of shipwatch goes through hyper.

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::NetError;
use super::conn::{Io, Link};

/// The request of a run as its streams send it: the header block, encoded once, and the body.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    headers: Vec<u8>,
    body: Bytes,
}

impl Block {
    /// The pseudo-headers from the URL (without credentials) and the headers every request of
    /// shipwatch carries, none indexed; credentials and cookies as never to be indexed.
    pub(crate) fn new(req: &super::Request) -> Result<Block, NetError> {
        let (parts, _) = super::conn::h2_request(req)?.into_parts();
        forbid_connection_headers(&parts.headers)?;
        let mut h = Vec::with_capacity(256);
        match parts.method {
            http::Method::GET => h.push(0x82),
            http::Method::POST => h.push(0x83),
            ref m => literal(&mut h, 0x00, 4, 2, m.as_str().as_bytes()),
        }
        h.push(if parts.uri.scheme_str() == Some("http") {
            0x86
        } else {
            0x87
        });
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        match path {
            "/" => h.push(0x84),
            p => literal(&mut h, 0x00, 4, 4, p.as_bytes()),
        }
        if let Some(authority) = parts.uri.authority() {
            literal(&mut h, 0x00, 4, 1, authority.as_str().as_bytes());
        }
        for (name, value) in &parts.headers {
            let sensitive = matches!(
                name.as_str(),
                "authorization" | "proxy-authorization" | "cookie"
            ) || value.is_sensitive();
            h.push(if sensitive { 0x10 } else { 0x00 });
            string(&mut h, name.as_str().as_bytes());
            string(&mut h, value.as_bytes());
        }
        Ok(Block {
            headers: h,
            body: req.body.clone(),
        })
    }
}

/// HTTP/2 forbids the headers that manage an HTTP/1.1 connection (RFC 9113 §8.2.2).
fn forbid_connection_headers(headers: &http::HeaderMap) -> Result<(), NetError> {
    let named = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ]
    .into_iter()
    .find(|n| headers.contains_key(*n))
    .or_else(|| {
        headers
            .get(http::header::TE)
            .filter(|te| *te != "trailers")
            .map(|_| "te")
    });
    match named {
        Some(n) => Err(NetError::Protocol(format!(
            "the request carries a `{n}` header, which HTTP/2 forbids: drop it or set http2 = false"
        ))),
        None => Ok(()),
    }
}

/// HPACK: a field with a name from the static table (`index`) or, for index 0, no name.
fn literal(out: &mut Vec<u8>, flags: u8, prefix: u32, index: u64, value: &[u8]) {
    integer(out, flags, prefix, index);
    string(out, value);
}

/// HPACK: an integer with a `prefix`-bit first byte (RFC 7541 §5.1).
fn integer(out: &mut Vec<u8>, flags: u8, prefix: u32, value: u64) {
    let max = (1u64 << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// HPACK: a string as it is, not Huffman-coded.
fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 0x00, 7, s.len() as u64);
    out.extend_from_slice(s);
}

/// What the lane learns from the frames it reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Event {
    /// A header block for stream `id`: an answer's head or its trailers.
    Headers { id: u32, first: First, end: bool },
    /// `len` bytes of a stream's body (counted for flow control, padding included).
    Data { id: u32, len: u32, end: bool },
    /// The server ended a stream with an error code.
    Reset { id: u32, code: u32 },
    /// The server will process no stream above `last`; the connection is ending.
    GoAway { last: u32, code: u32 },
}

/// The first field of a header block, which in an answer's head is `:status`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum First {
    Status(u16),
    /// Another field, as the first field of trailers is.
    Other,
    /// A literal name coded in a way this client does not decode (Huffman): it may or may not
    /// have been `:status`.
    Unreadable,
}

/// HTTP/2's error codes by name, for messages.
pub(crate) fn code_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("error code {code}"), |n| (*n).to_string())
}

/// REFUSED_STREAM: the server did not process the stream, which may be sent again.
pub(crate) const REFUSED_STREAM: u32 = 7;

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PUSH_PROMISE: u8 = 5;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// The largest frame a server may send before it has seen our settings, and the largest we
/// accept: we never ask for more.
const MAX_FRAME: usize = 16_384;

/// Bytes of answers a stream and the connection may have outstanding (HTTP/2's windows),
/// topped up once half is used: as h2load's default, large enough never to hold an answer up.
pub(crate) const RECV_WINDOW: u32 = (1 << 30) - 1;

/// A header block and its continuations may be this long at most.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// An HTTP/2 connection speaking for one lane of a latency run.
pub(crate) struct Wire2 {
    io: Io,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Frames to write at the next flush.
    out: Vec<u8>,
    next_id: u32,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS.
    max_streams: u32,
    /// The largest frame the server accepts.
    peer_max_frame: usize,
    /// The server's initial stream window and the connection's window, for request bodies.
    peer_window: i64,
    send_window: i64,
    /// Bodies waiting for window: stream, bytes sent, stream window.
    sending: Vec<(u32, usize, i64)>,
    /// Answer bytes read since the connection's window was last topped up.
    unacked: u32,
    /// A header block that continues in CONTINUATION frames: stream, END_STREAM, bytes.
    partial: Option<(u32, bool, Vec<u8>)>,
    /// The server's SETTINGS arrived (its first frame must be SETTINGS).
    settled: bool,
    /// The server sent GOAWAY: no new streams.
    draining: bool,
}

impl Wire2 {
    /// Starts HTTP/2 over a link that negotiated it: the preface, our settings and the
    /// connection's window, written at the first flush.
    pub(crate) fn over(link: Link) -> Wire2 {
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        let settings: [(u16, u32); 3] = [(1, 0), (2, 0), (4, RECV_WINDOW)];
        head(&mut out, settings.len() * 6, SETTINGS, 0, 0);
        for (id, value) in settings {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&value.to_be_bytes());
        }
        window_update(&mut out, 0, RECV_WINDOW - 65_535);
        Wire2 {
            io: link.io,
            buf: vec![0; 4 * MAX_FRAME],
            start: 0,
            end: 0,
            out,
            next_id: 1,
            max_streams: u32::MAX,
            peer_max_frame: MAX_FRAME,
            peer_window: 65_535,
            send_window: 65_535,
            sending: Vec::new(),
            unacked: 0,
            partial: None,
            settled: false,
            draining: false,
        }
    }

    /// Streams the server lets us keep open at once.
    pub(crate) fn max_streams(&self) -> usize {
        self.max_streams as usize
    }

    /// True once no new stream may start on this connection.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining || self.next_id > (1 << 31) - 2
    }

    /// True once the server's settings have arrived.
    pub(crate) fn is_settled(&self) -> bool {
        self.settled
    }

    /// True once the server's settings have arrived and new streams may start: its limit on
    /// streams is known before the first requests go out.
    pub(crate) fn takes_streams(&self) -> bool {
        self.settled && !self.is_draining()
    }

    /// Queues a request on a new stream; its id.
    pub(crate) fn start(&mut self, block: &Block) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        let end = if block.body.is_empty() { END_STREAM } else { 0 };
        let mut fragments = block.headers.chunks(self.peer_max_frame.max(1)).peekable();
        let mut ty = HEADERS;
        let mut flags = end;
        while let Some(fragment) = fragments.next() {
            if fragments.peek().is_none() {
                flags |= END_HEADERS;
            }
            head(&mut self.out, fragment.len(), ty, flags, id);
            self.out.extend_from_slice(fragment);
            (ty, flags) = (CONTINUATION, 0);
        }
        if !block.body.is_empty() {
            self.sending.push((id, 0, self.peer_window));
            self.pump(&block.body);
        }
        id
    }

    /// Forgets a stream the server ended: none of its body is sent any more.
    pub(crate) fn forget(&mut self, id: u32) {
        self.sending.retain(|s| s.0 != id);
    }

    /// Ends a stream we no longer wait for.
    pub(crate) fn cancel(&mut self, id: u32) {
        self.forget(id);
        head(&mut self.out, 4, RST_STREAM, 0, id);
        self.out.extend_from_slice(&8u32.to_be_bytes());
    }

    /// Gives a stream back the window its answer used.
    pub(crate) fn release(&mut self, id: u32, n: u32) {
        window_update(&mut self.out, id, n);
    }

    /// Writes the queued frames.
    pub(crate) async fn flush(&mut self) -> Result<(), NetError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written = self.io.write_all(&self.out).await;
        self.out.clear();
        written.map_err(|e| closed(&e))?;
        self.io.flush().await.map_err(|e| closed(&e))
    }

    /// Waits for the server's next bytes; 0 once it has closed the connection.
    pub(crate) async fn fill(&mut self) -> Result<usize, NetError> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.buf.len() - self.end < 9 + MAX_FRAME {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        let n = self
            .io
            .read(&mut self.buf[self.end..])
            .await
            .map_err(|e| closed(&e))?;
        self.end += n;
        Ok(n)
    }

    /// Reads every whole frame received so far, answering the server's SETTINGS and PINGs,
    /// and says what happened to the streams. `block` is the run's request, whose body may be
    /// waiting for window.
    pub(crate) fn frames(
        &mut self,
        block: &Block,
        events: &mut Vec<Event>,
    ) -> Result<(), NetError> {
        while self.end - self.start >= 9 {
            let h = &self.buf[self.start..self.start + 9];
            let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
            let (ty, flags) = (h[3], h[4]);
            let id = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            if !self.settled && ty != SETTINGS {
                return Err(protocol(
                    "its first frame is not SETTINGS: it does not speak HTTP/2".into(),
                ));
            }
            if len > MAX_FRAME {
                return Err(protocol(format!(
                    "a frame of {len} bytes, more than the {MAX_FRAME} allowed"
                )));
            }
            if self.end - self.start < 9 + len {
                break;
            }
            let at = self.start + 9;
            self.start = at + len;
            let payload = std::mem::take(&mut self.buf);
            let read = self.frame(ty, flags, id, &payload[at..at + len], &block.body, events);
            self.buf = payload;
            read?;
        }
        Ok(())
    }

    fn frame(
        &mut self,
        ty: u8,
        flags: u8,
        id: u32,
        payload: &[u8],
        body: &Bytes,
        events: &mut Vec<Event>,
    ) -> Result<(), NetError> {
        if self.partial.is_some() && ty != CONTINUATION {
            return Err(protocol(
                "a header block was interrupted by another frame".into(),
            ));
        }
        match ty {
            DATA => {
                let len = payload.len() as u32;
                self.unacked += len;
                if self.unacked >= RECV_WINDOW / 2 {
                    window_update(&mut self.out, 0, self.unacked);
                    self.unacked = 0;
                }
                events.push(Event::Data {
                    id: stream(id)?,
                    len,
                    end: flags & END_STREAM != 0,
                });
            }
            HEADERS => {
                let fragment = unpad(payload, flags, flags & PRIORITY != 0)?;
                let end = flags & END_STREAM != 0;
                if flags & END_HEADERS != 0 {
                    events.push(Event::Headers {
                        id: stream(id)?,
                        first: first_field(fragment)?,
                        end,
                    });
                } else {
                    self.partial = Some((stream(id)?, end, fragment.to_vec()));
                }
            }
            CONTINUATION => self.continuation(flags, id, payload, events)?,
            RST_STREAM => events.push(Event::Reset {
                id: stream(id)?,
                code: word(payload)?,
            }),
            SETTINGS => self.settings(flags, payload, body)?,
            PUSH_PROMISE => return Err(protocol("a PUSH_PROMISE, though push was off".into())),
            PING if flags & ACK == 0 => {
                head(&mut self.out, payload.len(), PING, ACK, 0);
                self.out.extend_from_slice(payload);
            }
            GOAWAY => {
                self.draining = true;
                events.push(Event::GoAway {
                    last: word(payload)? & 0x7fff_ffff,
                    code: word(payload.get(4..).unwrap_or_default())?,
                });
            }
            WINDOW_UPDATE => {
                let n = i64::from(word(payload)? & 0x7fff_ffff);
                if id == 0 {
                    self.send_window += n;
                } else if let Some(s) = self.sending.iter_mut().find(|s| s.0 == id) {
                    s.2 += n;
                }
                self.pump(body);
            }
            // PRIORITY, a PING's answer, and frame types this client does not know.
            _ => {}
        }
        Ok(())
    }

    fn continuation(
        &mut self,
        flags: u8,
        id: u32,
        payload: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), NetError> {
        let Some((sid, end, mut block)) = self.partial.take() else {
            return Err(protocol(
                "a CONTINUATION frame after no header block".into(),
            ));
        };
        if sid != id {
            return Err(protocol(
                "a header block continued on another stream".into(),
            ));
        }
        block.extend_from_slice(payload);
        if block.len() > MAX_HEADER_BLOCK {
            return Err(protocol(format!(
                "a header block longer than {} KiB",
                MAX_HEADER_BLOCK / 1024
            )));
        }
        if flags & END_HEADERS == 0 {
            self.partial = Some((sid, end, block));
        } else {
            events.push(Event::Headers {
                id,
                first: first_field(&block)?,
                end,
            });
        }
        Ok(())
    }

    fn settings(&mut self, flags: u8, payload: &[u8], body: &Bytes) -> Result<(), NetError> {
        if flags & ACK != 0 {
            return Ok(());
        }
        if !payload.len().is_multiple_of(6) {
            return Err(protocol("a SETTINGS frame of a wrong length".into()));
        }
        for setting in payload.chunks_exact(6) {
            let value = u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
            match u16::from_be_bytes([setting[0], setting[1]]) {
                3 => self.max_streams = value,
                4 => {
                    let delta = i64::from(value) - self.peer_window;
                    self.peer_window = i64::from(value);
                    self.sending.iter_mut().for_each(|s| s.2 += delta);
                }
                5 => self.peer_max_frame = (value as usize).clamp(MAX_FRAME, 1 << 24),
                _ => {}
            }
        }
        self.settled = true;
        head(&mut self.out, 0, SETTINGS, ACK, 0);
        self.pump(body);
        Ok(())
    }

    /// Sends as much of the waiting bodies as the windows allow.
    fn pump(&mut self, body: &Bytes) {
        let mut i = 0;
        while i < self.sending.len() {
            let (id, mut sent, mut window) = self.sending[i];
            while sent < body.len() {
                let n = (body.len() - sent)
                    .min(self.peer_max_frame)
                    .min(window.min(self.send_window).max(0) as usize);
                if n == 0 {
                    break;
                }
                let end = if sent + n == body.len() {
                    END_STREAM
                } else {
                    0
                };
                head(&mut self.out, n, DATA, end, id);
                self.out.extend_from_slice(&body[sent..sent + n]);
                sent += n;
                window -= n as i64;
                self.send_window -= n as i64;
            }
            if sent == body.len() {
                self.sending.swap_remove(i);
            } else {
                self.sending[i] = (id, sent, window);
                i += 1;
            }
        }
    }
}

/// A frame's 9-byte head.
fn head(out: &mut Vec<u8>, len: usize, ty: u8, flags: u8, id: u32) {
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags]);
    out.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
}

fn window_update(out: &mut Vec<u8>, id: u32, n: u32) {
    head(out, 4, WINDOW_UPDATE, 0, id);
    out.extend_from_slice(&(n & 0x7fff_ffff).to_be_bytes());
}

/// A stream's frame must name a stream.
fn stream(id: u32) -> Result<u32, NetError> {
    if id == 0 {
        Err(protocol("a stream's frame on stream 0".into()))
    } else {
        Ok(id)
    }
}

/// A 32-bit word at the start of a payload.
fn word(payload: &[u8]) -> Result<u32, NetError> {
    match payload.get(..4) {
        Some(w) => Ok(u32::from_be_bytes([w[0], w[1], w[2], w[3]])),
        None => Err(protocol("a frame too short for its type".into())),
    }
}

/// A HEADERS payload without its padding and priority fields.
fn unpad(payload: &[u8], flags: u8, priority: bool) -> Result<&[u8], NetError> {
    let (mut from, mut to) = (0, payload.len());
    if flags & PADDED != 0 {
        let pad = usize::from(*payload.first().unwrap_or(&0));
        from = 1;
        to = to
            .checked_sub(pad)
            .ok_or_else(|| protocol("padding longer than its frame".into()))?;
    }
    if priority {
        from += 5;
    }
    payload
        .get(from..to)
        .ok_or_else(|| protocol("a HEADERS frame too short for its flags".into()))
}

fn protocol(what: String) -> NetError {
    NetError::Protocol(format!("invalid HTTP/2 from the server: {what}"))
}

fn closed(e: &std::io::Error) -> NetError {
    NetError::Closed(format!("the connection closed: {e}"))
}

/// The first field of a header block, after any table size updates.
fn first_field(block: &[u8]) -> Result<First, NetError> {
    let mut at = 0;
    while let Some(&b) = block.get(at) {
        if b & 0xe0 != 0x20 {
            break;
        }
        let (size, n) = read_integer(&block[at..], 5)?;
        if size != 0 {
            return Err(protocol(format!(
                "a header table of {size} bytes, after being asked for none"
            )));
        }
        at += n;
    }
    let Some(&b) = block.get(at) else {
        return Ok(First::Other);
    };
    let prefix = match b {
        _ if b & 0x80 != 0 => {
            let (index, _) = read_integer(&block[at..], 7)?;
            return match index {
                8..=14 => Ok(First::Status(
                    [200, 204, 206, 304, 400, 404, 500][index as usize - 8],
                )),
                1..=61 => Ok(First::Other),
                _ => Err(protocol(format!(
                    "a header field at index {index}, outside the static table"
                ))),
            };
        }
        _ if b & 0xc0 == 0x40 => 6,
        _ if b & 0xe0 == 0 => 4,
        _ => return Err(protocol("an unknown header field representation".into())),
    };
    let (index, n) = read_integer(&block[at..], prefix)?;
    at += n;
    match index {
        0 => match read_string(block, &mut at)? {
            (true, _) => return Ok(First::Unreadable),
            (false, name) if name != b":status" => return Ok(First::Other),
            (false, _) => {}
        },
        8..=14 => {}
        1..=61 => return Ok(First::Other),
        _ => {
            return Err(protocol(format!(
                "a header name at index {index}, outside the static table"
            )));
        }
    }
    let status = match read_string(block, &mut at)? {
        (true, coded) => huffman_digits(coded),
        (false, text) => std::str::from_utf8(text)
            .ok()
            .filter(|t| t.len() == 3 && t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse().ok()),
    };
    match status {
        Some(s) if s >= 100 => Ok(First::Status(s)),
        _ => Err(protocol("a :status that is not three digits".into())),
    }
}

/// An HPACK integer with a `prefix`-bit first byte, and the bytes it took.
fn read_integer(buf: &[u8], prefix: u32) -> Result<(u64, usize), NetError> {
    let max = (1u64 << prefix) - 1;
    let first = u64::from(buf.first().copied().unwrap_or(0)) & max;
    if first < max {
        return Ok((first, 1));
    }
    let mut value = max;
    for (i, &b) in buf.iter().enumerate().skip(1).take(4) {
        value += u64::from(b & 0x7f) << (7 * (i - 1));
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(protocol("a header integer cut short or too large".into()))
}

/// An HPACK string: whether it is Huffman-coded, and its bytes.
fn read_string<'a>(block: &'a [u8], at: &mut usize) -> Result<(bool, &'a [u8]), NetError> {
    let huffman = block.get(*at).is_some_and(|b| b & 0x80 != 0);
    let (len, n) = read_integer(block.get(*at..).unwrap_or_default(), 7)?;
    let from = *at + n;
    let to = from.saturating_add(len as usize);
    let bytes = block
        .get(from..to)
        .ok_or_else(|| protocol("a header string longer than its block".into()))?;
    *at = to;
    Ok((huffman, bytes))
}

/// Three Huffman-coded digits (RFC 7541 Appendix B: `0`–`2` are the 5-bit codes 00000–00010,
/// `3`–`9` the 6-bit codes 011001–011111), followed by at most 7 bits of padding, all ones.
fn huffman_digits(coded: &[u8]) -> Option<u16> {
    if coded.len() > 4 {
        return None;
    }
    let bits = coded.len() as u32 * 8;
    let all = coded.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let peek = |used: u32, n: u32| (all >> (bits - used - n)) & ((1 << n) - 1);
    let (mut used, mut value, mut digits) = (0, 0u16, 0);
    while bits - used >= 5 {
        let five = peek(used, 5);
        let digit = match five {
            0..=2 => {
                used += 5;
                five
            }
            12..=15 if bits - used >= 6 && peek(used, 6) >= 25 => {
                let six = peek(used, 6);
                used += 6;
                six - 22
            }
            _ => break,
        };
        value = value * 10 + digit as u16;
        digits += 1;
    }
    let rest = bits - used;
    let padding_ok = rest < 8 && peek(used, rest) == (1 << rest) - 1;
    (digits == 3 && padding_ok).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huffman_coded_statuses_are_read() {
        let code = |digits: &str| {
            let mut bits = String::new();
            for d in digits.chars() {
                bits.push_str(match d {
                    '0' => "00000",
                    '1' => "00001",
                    '2' => "00010",
                    '3' => "011001",
                    '4' => "011010",
                    '5' => "011011",
                    '6' => "011100",
                    '7' => "011101",
                    '8' => "011110",
                    _ => "011111",
                });
            }
            while !bits.len().is_multiple_of(8) {
                bits.push('1');
            }
            bits.as_bytes()
                .chunks(8)
                .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap_or("0"), 2).unwrap_or(0))
                .collect::<Vec<u8>>()
        };
        for s in ["301", "302", "403", "503", "999", "100", "418", "226"] {
            assert_eq!(huffman_digits(&code(s)), s.parse().ok(), "{s}");
        }
        // Too few digits, a letter ('a' is 00011), padding of zeros.
        assert_eq!(huffman_digits(&code("30")), None);
        assert_eq!(huffman_digits(&[0b0001_1000, 0b0100_0011]), None);
        assert_eq!(
            huffman_digits(&[0b0000_1011, 0b0010_0001, 0b0000_0000]),
            None
        );
    }

    #[test]
    fn the_status_is_read_from_the_first_field_only() {
        assert_eq!(first_field(&[0x88]).ok(), Some(First::Status(200)));
        assert_eq!(first_field(&[0x20, 0x8d]).ok(), Some(First::Status(404)));
        // Literal, name index 8, value "302" as it is; without and with indexing.
        assert_eq!(
            first_field(&[0x08, 3, b'3', b'0', b'2']).ok(),
            Some(First::Status(302))
        );
        assert_eq!(
            first_field(&[0x48, 3, b'5', b'0', b'3']).ok(),
            Some(First::Status(503))
        );
        // A new name ":status", and trailers that start with another field.
        let mut b = vec![0x00, 7];
        b.extend_from_slice(b":status");
        b.extend_from_slice(&[3, b'2', b'0', b'1']);
        assert_eq!(first_field(&b).ok(), Some(First::Status(201)));
        assert_eq!(first_field(&[0x0f, 0x1c, 1, b'7']).ok(), Some(First::Other));
        assert_eq!(
            first_field(&[0x00, 0x81, 0xff]).ok(),
            Some(First::Unreadable)
        );
        // The dynamic table was asked to stay empty.
        assert!(first_field(&[0xbe]).is_err());
        assert!(first_field(&[0x3f, 0xe1, 0x1f]).is_err());
        assert!(first_field(&[0x08, 3, b'x', b'0', b'2']).is_err());
        assert!(first_field(&[0x08, 9, b'2']).is_err());
    }

    #[test]
    fn integers_round_trip_through_their_prefixes() {
        for prefix in [4, 5, 6, 7] {
            for value in [0u64, 1, 14, 15, 30, 31, 62, 63, 126, 127, 128, 1337, 65_535] {
                let mut out = Vec::new();
                integer(&mut out, 0, prefix, value);
                assert_eq!(read_integer(&out, prefix).ok(), Some((value, out.len())));
            }
        }
        assert!(read_integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff], 5).is_err());
    }

    #[test]
    fn connection_headers_are_refused() {
        let mut headers = http::HeaderMap::new();
        assert!(forbid_connection_headers(&headers).is_ok());
        headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        assert!(forbid_connection_headers(&headers).is_ok());
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        let e = forbid_connection_headers(&headers)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("`connection`")));
    }
}
