//! A lean HTTP/1.1 client for latency runs: one request at a time on a kept connection, the
//! request's bytes prepared once per run, the response head parsed in place and the body
//! counted and dropped as it arrives.
//!
//! hyper's client hands every request to a connection task over a channel and builds a header
//! map for every answer; at tens of thousands of requests a second that costs more than the
//! request itself, and a load generator that spends more per request than the server leaves
//! the server less of the machine. Everything else (checks that read headers, bodies and
//! cookies, HTTP/2) goes through hyper.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::conn::{Io, Link, authority, header_lines};
use super::{Alarm, Conn, NetError, Phase, Request, pool};

/// What a response head may take at most, status line and headers together.
const MAX_HEAD: usize = 64 * 1024;
/// Headers a response may have at most.
const MAX_HEADERS: usize = 100;
/// A chunk-size line (with its extensions) or a trailer line may take at most this.
const MAX_LINE: usize = 4096;
/// The read buffer a connection starts with; it grows, up to [`MAX_HEAD`], for a longer head.
const START_BUFFER: usize = 8 * 1024;

/// A request as bytes on the wire, written the same way for every request of a run.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    bytes: Vec<u8>,
    /// A HEAD request: its answer has no body, whatever its Content-Length says.
    head: bool,
}

impl Prepared {
    /// The request line, Host, the headers every request carries (the same ones, in the same
    /// order, as through hyper), a Content-Length where there is a body, and the body.
    pub(crate) fn new(req: &Request) -> Result<Prepared, NetError> {
        let invalid =
            |why: String| NetError::Protocol(format!("invalid request to {}: {why}", req.url));
        let path = &req.url[url::Position::BeforePath..url::Position::AfterQuery];
        let path = if path.is_empty() { "/" } else { path };
        let mut bytes = Vec::with_capacity(256 + req.body.len());
        for part in [req.method.as_str(), " ", path, " HTTP/1.1\r\nhost: "] {
            bytes.extend_from_slice(part.as_bytes());
        }
        bytes.extend_from_slice(authority(&req.url)?.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let mut framed = false;
        for (name, value) in header_lines(req) {
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| invalid(format!("header name \"{name}\": {e}")))?;
            http::HeaderValue::from_str(&value)
                .map_err(|e| invalid(format!("value of header \"{name}\": {e}")))?;
            framed |= name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding");
            for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                bytes.extend_from_slice(part);
            }
        }
        let may_carry = matches!(
            req.method,
            http::Method::POST | http::Method::PUT | http::Method::PATCH
        );
        if !framed && (may_carry || !req.body.is_empty()) {
            bytes.extend_from_slice(format!("content-length: {}\r\n", req.body.len()).as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&req.body);
        Ok(Prepared {
            bytes,
            head: req.method == http::Method::HEAD,
        })
    }
}

/// What a run needs of an answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Answer {
    pub status: u16,
    /// The connection may carry the next request.
    pub keep: bool,
}

/// How the body of a response ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// At the end of the connection.
    Close,
}

/// The parts of a response head a run acts on.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Head {
    status: u16,
    framing: Framing,
    keep: bool,
}

/// An HTTP/1.1 connection that sends prepared requests.
pub(crate) struct Wire {
    stream: Stream,
    /// A request has been sent on it before.
    reused: bool,
    /// The request timeout, one timer for the connection's life.
    alarm: Alarm,
}

/// The byte stream and what has been read of it.
struct Stream {
    io: Io,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The current response's head has arrived (for the phase a timeout names).
    answered: bool,
}

impl Wire {
    pub(crate) fn new(link: Link) -> Wire {
        Wire {
            stream: Stream {
                io: link.io,
                buf: vec![0; START_BUFFER],
                start: 0,
                end: 0,
                answered: false,
            },
            reused: false,
            alarm: Alarm::default(),
        }
    }

    /// True once a request has been sent on this connection.
    pub(crate) fn is_reused(&self) -> bool {
        self.reused
    }

    /// Sends the request at `sent` and reads the whole response, all before `deadline`. A
    /// connection found closed before any byte of the answer is [`NetError::Closed`], which a
    /// caller may answer by sending again on a new one.
    pub(crate) async fn send(
        &mut self,
        req: &Prepared,
        sent: Instant,
        deadline: Instant,
    ) -> Result<Answer, NetError> {
        self.stream.answered = false;
        self.reused = true;
        let answer = self.alarm.within(deadline, self.stream.exchange(req)).await;
        match answer {
            Some(answer) => answer,
            None if self.stream.answered => Err(NetError::timed_out(Phase::Transfer, sent)),
            None => Err(NetError::timed_out(Phase::Ttfb, sent)),
        }
    }
}

impl Stream {
    async fn exchange(&mut self, req: &Prepared) -> Result<Answer, NetError> {
        self.io
            .write_all(&req.bytes)
            .await
            .map_err(|e| unanswered(&e))?;
        self.io.flush().await.map_err(|e| unanswered(&e))?;
        let head = self.head(req.head).await?;
        self.answered = true;
        match head.framing {
            Framing::None => {}
            Framing::Length(n) => self.skip(n).await?,
            Framing::Chunked => self.chunked().await?,
            Framing::Close => while self.fill().await? > 0 {},
        }
        // Bytes nobody asked for yet would be read as the next answer: start afresh instead.
        let keep = head.keep && self.start == self.end;
        Ok(Answer {
            status: head.status,
            keep,
        })
    }

    /// Reads up to the end of a final (not 1xx) response head.
    async fn head(&mut self, no_body: bool) -> Result<Head, NetError> {
        loop {
            // Not initialised: the parser writes the headers it finds (filling a hundred empty
            // ones first would cost more than parsing a short head).
            let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut []);
            let unread = &self.buf[self.start..self.end];
            match httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut parsed,
                unread,
                &mut headers,
            ) {
                Ok(httparse::Status::Complete(n)) => {
                    let head = read_head(&parsed, no_body)?;
                    self.start += n;
                    if head.status == 101 {
                        return Err(NetError::Protocol(
                            "the server switched protocols (101), which a latency run does not follow"
                                .into(),
                        ));
                    }
                    if head.status >= 200 {
                        return Ok(head);
                    }
                }
                Ok(httparse::Status::Partial) => self.more_head().await?,
                Err(e) => {
                    return Err(NetError::Protocol(format!("no valid HTTP response: {e}")));
                }
            }
        }
    }

    /// Reads more of an incomplete head, growing the buffer up to [`MAX_HEAD`].
    async fn more_head(&mut self) -> Result<(), NetError> {
        if self.end - self.start >= MAX_HEAD {
            return Err(NetError::Protocol(format!(
                "no valid HTTP response: the response head is longer than {} KiB",
                MAX_HEAD / 1024
            )));
        }
        if self.start == 0 && self.end == self.buf.len() {
            self.buf.resize((self.buf.len() * 2).min(MAX_HEAD), 0);
        }
        if self.fill().await? == 0 {
            return Err(NetError::Closed(
                "the connection closed before a complete response".into(),
            ));
        }
        Ok(())
    }

    /// Reads what the server sent into the free end of the buffer; 0 at the end of the stream.
    async fn fill(&mut self) -> Result<usize, NetError> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        let n = self.io.read(&mut self.buf[self.end..]).await.map_err(|e| {
            if self.answered {
                NetError::Protocol(format!("the response was cut short: {e}"))
            } else {
                unanswered(&e)
            }
        })?;
        self.end += n;
        Ok(n)
    }

    /// Drops the next `n` bytes of body.
    async fn skip(&mut self, mut n: u64) -> Result<(), NetError> {
        loop {
            let take = ((self.end - self.start) as u64).min(n);
            self.start += take as usize;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            if self.fill().await? == 0 {
                return Err(cut_short());
            }
        }
    }

    /// Drops a chunked body and its trailers.
    async fn chunked(&mut self) -> Result<(), NetError> {
        loop {
            let line = self.line().await?;
            let size = chunk_size(&self.buf[line.clone()])?;
            if size == 0 {
                break;
            }
            self.skip(size).await?;
            if !self.line().await?.is_empty() {
                return Err(NetError::Protocol(
                    "the response was cut short: a chunk is longer than its size says".into(),
                ));
            }
        }
        let mut trailers = 0;
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                return Ok(());
            }
            trailers += line.len();
            if trailers > MAX_HEAD {
                return Err(NetError::Protocol(format!(
                    "the response's trailers are longer than {} KiB",
                    MAX_HEAD / 1024
                )));
            }
        }
    }

    /// The next line, without its line end, as a range of the buffer.
    async fn line(&mut self) -> Result<std::ops::Range<usize>, NetError> {
        loop {
            let unread = &self.buf[self.start..self.end];
            if let Some(i) = unread.iter().position(|&b| b == b'\n') {
                let line = self.start..self.start + i;
                self.start += i + 1;
                let cr = line.end > line.start && self.buf[line.end - 1] == b'\r';
                return Ok(line.start..line.end - usize::from(cr));
            }
            if unread.len() > MAX_LINE {
                return Err(NetError::Protocol(format!(
                    "the response has a chunk-size or trailer line longer than {} KiB",
                    MAX_LINE / 1024
                )));
            }
            if self.fill().await? == 0 {
                return Err(cut_short());
            }
        }
    }
}

/// How a response head frames its body, and whether its connection stays open (RFC 9112 §6).
fn read_head(parsed: &httparse::Response<'_, '_>, no_body: bool) -> Result<Head, NetError> {
    let status = parsed.code.unwrap_or(0);
    let mut length: Option<u64> = None;
    let (mut chunked, mut coded, mut close, mut keep_alive) = (false, false, false, false);
    for h in parsed.headers.iter() {
        let value = || std::str::from_utf8(h.value).unwrap_or("");
        let tokens = || value().split(',').map(str::trim);
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = decimal(h.value).ok_or_else(|| {
                NetError::Protocol(format!(
                    "no valid HTTP response: Content-Length \"{}\" is not a number",
                    value().trim()
                ))
            })?;
            if length.is_some_and(|l| l != n) {
                return Err(NetError::Protocol(
                    "no valid HTTP response: two different Content-Length headers".into(),
                ));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            coded = true;
            chunked = tokens()
                .rfind(|t| !t.is_empty())
                .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            close |= tokens().any(|t| t.eq_ignore_ascii_case("close"));
            keep_alive |= tokens().any(|t| t.eq_ignore_ascii_case("keep-alive"));
        }
    }
    let framing = if no_body || status < 200 || status == 204 || status == 304 {
        Framing::None
    } else if coded {
        // Transfer-Encoding overrides Content-Length; a coding other than chunked last runs
        // to the end of the connection.
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else {
        length.map_or(Framing::Close, Framing::Length)
    };
    let persistent = if parsed.version == Some(1) {
        !close
    } else {
        keep_alive && !close
    };
    Ok(Head {
        status,
        framing,
        keep: persistent && framing != Framing::Close,
    })
}

/// A Content-Length value: decimal digits, maybe between spaces.
fn decimal(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// A chunk-size line: hexadecimal digits, then maybe `;` and extensions.
fn chunk_size(line: &[u8]) -> Result<u64, NetError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = std::str::from_utf8(digits)
        .unwrap_or("")
        .trim_matches([' ', '\t']);
    let bad = || {
        NetError::Protocol(format!(
            "no valid chunked body: \"{}\" is not a chunk size",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        ))
    };
    if digits.is_empty() || digits.len() > 15 {
        return Err(bad());
    }
    u64::from_str_radix(digits, 16).map_err(|_| bad())
}

/// A write or read failed before the answer's head arrived: a reset or a closed pipe means the
/// server had closed the kept connection, which is worth one more try on a new one.
fn unanswered(e: &std::io::Error) -> NetError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            NetError::Closed(format!(
                "the server reset the connection before answering ({e})"
            ))
        }
        _ => NetError::Protocol(format!("the connection failed: {e}")),
    }
}

fn cut_short() -> NetError {
    NetError::Protocol("the response was cut short: the connection closed in its body".into())
}

/// A connection kept for a run of one request: the lean client over HTTP/1.1, hyper over HTTP/2.
pub(crate) enum Kept {
    Wire(Wire),
    Hyper(Conn),
}

impl Kept {
    /// True once a request has been sent on this connection.
    pub(crate) fn is_reused(&self) -> bool {
        match self {
            Kept::Wire(w) => w.is_reused(),
            Kept::Hyper(c) => c.is_reused(),
        }
    }

    /// Sends the run's request, `prepared` being its bytes for HTTP/1.1.
    pub(crate) async fn send(
        &mut self,
        req: &Request,
        prepared: &Prepared,
        sent: Instant,
        deadline: Instant,
    ) -> Result<Answer, NetError> {
        match self {
            Kept::Wire(w) => w.send(prepared, sent, deadline).await,
            Kept::Hyper(c) => {
                let r = c.send(req, deadline).await?;
                Ok(Answer {
                    status: r.status,
                    keep: pool::keeps_alive(&r) && !c.is_closed(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(text: &str, no_body: bool) -> Result<Head, NetError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let status = parsed.parse(text.as_bytes());
        assert!(
            matches!(status, Ok(httparse::Status::Complete(_))),
            "{text}"
        );
        read_head(&parsed, no_body)
    }

    #[test]
    fn a_head_says_how_its_body_ends_and_whether_the_connection_stays() {
        let framing = |text: &str| head_of(text, false).map(|h| (h.framing, h.keep)).ok();
        let cases = [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
                Framing::Length(12),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Length: 12\r\n\r\n",
                Framing::Length(12),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                Framing::Close,
                false,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", Framing::Close, false),
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
                Framing::None,
                true,
            ),
            ("HTTP/1.1 304 Not Modified\r\n\r\n", Framing::None, true),
            (
                "HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n",
                Framing::Length(0),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                Framing::Length(0),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                Framing::Length(0),
                true,
            ),
        ];
        for (text, want, keep) in cases {
            assert_eq!(framing(text), Some((want, keep)), "{text}");
        }
        let head = head_of("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", true);
        assert_eq!(head.map(|h| h.framing).ok(), Some(Framing::None));
    }

    #[test]
    fn a_bad_or_doubled_length_is_refused() {
        for text in [
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            assert!(head_of(text, false).is_err(), "{text}");
        }
    }

    #[test]
    fn chunk_sizes_are_hexadecimal_with_optional_extensions() {
        assert_eq!(chunk_size(b"1a").ok(), Some(26));
        assert_eq!(chunk_size(b"FF ; name=value").ok(), Some(255));
        assert_eq!(chunk_size(b"0").ok(), Some(0));
        for bad in [&b""[..], b"zz", b"-1", b"1234567890abcdef0"] {
            assert!(chunk_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(decimal(b" 42 "), Some(42));
        assert_eq!(decimal(b"4 2"), None);
    }
}
