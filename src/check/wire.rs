//! Reading a server's answers with bounds, for the kinds that speak their own protocol (`tcp`,
//! `websocket`): every read stops at the deadline, a line stops at [`MAX_LINE`] bytes and a
//! whole answer at [`MAX_ANSWER`], whatever the server sends.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// The longest line kept; a longer one is cut and reported.
pub(crate) const MAX_LINE: usize = 4096;
/// The most bytes one answer (a greeting, a capability list) may take.
pub(crate) const MAX_ANSWER: usize = 64 << 10;

/// Why reading or writing stopped.
#[derive(Debug)]
pub(crate) enum WireError {
    /// Nothing more arrived before the deadline.
    Timeout,
    /// The server closed the connection.
    Closed,
    /// The answer grew past its bound.
    TooLong(usize),
    Io(std::io::Error),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Timeout => f.write_str("no answer before the deadline"),
            WireError::Closed => f.write_str("the server closed the connection"),
            WireError::TooLong(n) => write!(f, "the answer is longer than {n} bytes"),
            WireError::Io(e) => write!(f, "the connection failed: {e}"),
        }
    }
}

/// A stream shipwatch reads and writes: TCP, or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl WireError {
    /// The check's error when `doing` failed: a timeout, or a protocol failure.
    pub(crate) fn during(self, doing: &str) -> crate::outcome::ProbeError {
        crate::outcome::ProbeError {
            kind: match self {
                WireError::Timeout => "timeout",
                _ => "protocol",
            },
            message: format!("{doing}: {self}"),
        }
    }
}

/// A connection read a line at a time, keeping what arrived after the last line.
pub(crate) struct Wire<S> {
    pub io: S,
    buf: Vec<u8>,
    deadline: Instant,
    /// Bytes read by the current answer, against [`MAX_ANSWER`].
    answer: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub fn new(io: S, deadline: Instant) -> Wire<S> {
        Wire {
            io,
            buf: Vec::new(),
            deadline,
            answer: 0,
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let write = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout_at(self.deadline, write).await {
            Ok(r) => r.map_err(WireError::Io),
            Err(_) => Err(WireError::Timeout),
        }
    }

    /// Starts a new answer: its bytes count afresh against [`MAX_ANSWER`].
    pub fn begin(&mut self) {
        self.answer = 0;
    }

    /// More bytes from the server, up to the current answer's bound.
    async fn fill(&mut self) -> Result<(), WireError> {
        if self.answer >= MAX_ANSWER {
            return Err(WireError::TooLong(MAX_ANSWER));
        }
        let mut chunk = [0u8; 2048];
        let read = tokio::time::timeout_at(self.deadline, self.io.read(&mut chunk)).await;
        match read {
            Err(_) => Err(WireError::Timeout),
            Ok(Err(e)) => Err(WireError::Io(e)),
            Ok(Ok(0)) => Err(WireError::Closed),
            Ok(Ok(n)) => {
                self.answer += n;
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    /// One line without its line ending, cut at [`MAX_LINE`] bytes.
    pub async fn line(&mut self) -> Result<String, WireError> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return Ok(text(&line[..line.len().min(MAX_LINE)]));
            }
            if self.buf.len() > MAX_LINE {
                return Err(WireError::TooLong(MAX_LINE));
            }
            self.fill().await?;
        }
    }

    /// What the server sends first: up to the end of a line, at most `cap` bytes, or whatever came
    /// before it closed. `Ok((text, true))` when the banner was cut at the cap.
    pub async fn banner(&mut self, cap: usize) -> Result<(String, bool), WireError> {
        self.begin();
        loop {
            if self.buf.ends_with(b"\n") || self.buf.len() >= cap {
                break;
            }
            match self.fill().await {
                Ok(()) => {}
                Err(WireError::Closed) if !self.buf.is_empty() => break,
                Err(WireError::TooLong(_)) => break,
                Err(e) => return Err(e),
            }
        }
        let kept = &self.buf[..self.buf.len().min(cap)];
        let cut = kept.len() == cap && !kept.ends_with(b"\n");
        Ok((text(kept), cut))
    }

    /// Exactly one byte.
    pub async fn byte(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1).await?[0])
    }

    /// Exactly `n` bytes; the caller bounds `n`.
    pub async fn take(&mut self, n: usize) -> Result<Vec<u8>, WireError> {
        while self.buf.len() < n {
            self.answer = 0;
            self.fill().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads and drops `n` bytes, however many: memory stays at one chunk.
    pub async fn skip(&mut self, mut n: u64) -> Result<(), WireError> {
        loop {
            let here = (self.buf.len() as u64).min(n);
            self.buf.drain(..here as usize);
            n -= here;
            if n == 0 {
                return Ok(());
            }
            self.answer = 0;
            self.fill().await?;
        }
    }

    /// An HTTP head: everything up to the first empty line, at most [`MAX_LINE`] × 4 bytes.
    pub async fn head(&mut self) -> Result<String, WireError> {
        self.begin();
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return Ok(String::from_utf8_lossy(&head).into_owned());
            }
            if self.buf.len() > 4 * MAX_LINE {
                return Err(WireError::TooLong(4 * MAX_LINE));
            }
            self.fill().await?;
        }
    }

    /// Bytes the server sent beyond what was read: before a TLS handshake there must be none.
    pub fn leftover(&self) -> usize {
        self.buf.len()
    }
}

/// Bytes as text for reports, without the line ending.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\r', '\n'])
        .to_string()
}
