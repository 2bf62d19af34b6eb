//! STARTTLS negotiated the way each protocol's clients do it: SMTP's EHLO and STARTTLS, IMAP's
//! CAPABILITY and STARTTLS, POP3's CAPA and STLS, and PostgreSQL's SSLRequest. A server that does
//! not offer the upgrade, refuses it, or answers in another protocol is a [`Refused`], which the
//! check reports as a `tcp.starttls` finding.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::check::wire::{Wire, WireError};

/// The protocols whose upgrade to TLS shipwatch negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starttls {
    Smtp,
    Imap,
    Pop3,
    Postgres,
}

impl Starttls {
    pub(crate) const NAMES: [&'static str; 4] = ["smtp", "imap", "pop3", "postgres"];

    pub(crate) fn from_name(name: &str) -> Option<Starttls> {
        match name {
            "smtp" => Some(Starttls::Smtp),
            "imap" => Some(Starttls::Imap),
            "pop3" => Some(Starttls::Pop3),
            "postgres" => Some(Starttls::Postgres),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        Starttls::NAMES[self as usize]
    }

    /// The protocol as reports name it.
    fn title(self) -> &'static str {
        match self {
            Starttls::Smtp => "SMTP",
            Starttls::Imap => "IMAP",
            Starttls::Pop3 => "POP3",
            Starttls::Postgres => "PostgreSQL",
        }
    }
}

/// Why the upgrade did not happen. `timeout` when the server went quiet, which is an error of
/// the check rather than a verdict on the server.
#[derive(Debug)]
pub(super) struct Refused {
    pub message: String,
    pub timeout: bool,
}

fn refused(message: impl Into<String>) -> Refused {
    Refused {
        message: message.into(),
        timeout: false,
    }
}

/// Turns a read failure into a sentence about which answer was awaited.
fn waiting(proto: Starttls, what: &str) -> impl FnOnce(WireError) -> Refused {
    move |e| Refused {
        timeout: matches!(e, WireError::Timeout),
        message: format!("waiting for the {} {what}: {e}", proto.title()),
    }
}

/// Negotiates the upgrade; the connection is then ready for a TLS handshake. Returns the
/// server's greeting, where the protocol has one.
pub(super) async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    proto: Starttls,
    wire: &mut Wire<S>,
) -> Result<Option<String>, Refused> {
    let greeting = match proto {
        Starttls::Smtp => smtp(wire).await?,
        Starttls::Imap => imap(wire).await?,
        Starttls::Pop3 => pop3(wire).await?,
        Starttls::Postgres => {
            postgres(wire).await?;
            None
        }
    };
    match wire.leftover() {
        0 => Ok(greeting),
        n => Err(refused(format!(
            "the server sent {n} bytes after agreeing to {}, before the TLS handshake \
             (plain-text data injected into the encrypted session)",
            command(proto)
        ))),
    }
}

fn command(proto: Starttls) -> &'static str {
    match proto {
        Starttls::Pop3 => "STLS",
        Starttls::Postgres => "SSLRequest",
        _ => "STARTTLS",
    }
}

/// A quoted excerpt of what the server said, for messages.
fn quote(line: &str) -> String {
    let cut: String = line.chars().take(120).collect();
    if cut.len() < line.len() {
        format!("\"{cut}…\"")
    } else {
        format!("\"{cut}\"")
    }
}

/// One SMTP reply: its code and the text of its lines.
async fn smtp_reply<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    what: &str,
) -> Result<(u16, Vec<String>), Refused> {
    wire.begin();
    let mut lines = Vec::new();
    loop {
        let line = wire.line().await.map_err(waiting(Starttls::Smtp, what))?;
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code.filter(|_| line.is_char_boundary(3)) else {
            return Err(refused(format!(
                "the {what} is not an SMTP reply: {}",
                quote(&line)
            )));
        };
        let more = line.as_bytes().get(3) == Some(&b'-');
        lines.push(line.get(4..).unwrap_or("").to_string());
        if !more {
            return Ok((code, lines));
        }
    }
}

async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
) -> Result<Option<String>, Refused> {
    let (code, greeting) = smtp_reply(wire, "greeting").await?;
    let text = greeting.join(" ");
    if code != 220 {
        return Err(refused(format!(
            "the server greeted with {code} {} instead of 220",
            quote(&text)
        )));
    }
    send(wire, Starttls::Smtp, b"EHLO shipwatch.invalid\r\n").await?;
    let (code, extensions) = smtp_reply(wire, "answer to EHLO").await?;
    if code != 250 {
        return Err(refused(format!(
            "EHLO was answered with {code} {}",
            quote(&extensions.join(" "))
        )));
    }
    let offers = extensions.iter().skip(1).any(|e| {
        e.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("STARTTLS"))
    });
    if !offers {
        let listed: Vec<&str> = extensions.iter().skip(1).map(String::as_str).collect();
        return Err(refused(format!(
            "the server does not offer STARTTLS (its EHLO answer lists: {})",
            if listed.is_empty() {
                "nothing".to_string()
            } else {
                listed.join(", ")
            }
        )));
    }
    send(wire, Starttls::Smtp, b"STARTTLS\r\n").await?;
    let (code, answer) = smtp_reply(wire, "answer to STARTTLS").await?;
    if code != 220 {
        return Err(refused(format!(
            "the server offers STARTTLS but refused it: {code} {}",
            quote(&answer.join(" "))
        )));
    }
    Ok(Some(format!("220 {text}")))
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    proto: Starttls,
    bytes: &[u8],
) -> Result<(), Refused> {
    wire.send(bytes).await.map_err(waiting(proto, "connection"))
}

/// Lines up to the one tagged `tag`; returns the untagged ones and the tagged one's rest.
async fn imap_answer<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    tag: &str,
    what: &str,
) -> Result<(Vec<String>, String), Refused> {
    wire.begin();
    let mut untagged = Vec::new();
    loop {
        let line = wire.line().await.map_err(waiting(Starttls::Imap, what))?;
        if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
            return Ok((untagged, rest.to_string()));
        }
        if !line.starts_with('*') && !line.starts_with('+') {
            return Err(refused(format!(
                "the {what} is not an IMAP answer: {}",
                quote(&line)
            )));
        }
        untagged.push(line);
    }
}

fn has_word(lines: &[String], word: &str) -> bool {
    lines.iter().any(|l| {
        l.split(|c: char| c.is_whitespace() || c == '[' || c == ']')
            .any(|w| w.eq_ignore_ascii_case(word))
    })
}

/// One line that starts a new answer: a greeting, or the answer to a one-line command.
async fn answer_line<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    proto: Starttls,
    what: &str,
) -> Result<String, Refused> {
    wire.begin();
    wire.line().await.map_err(waiting(proto, what))
}

/// The greeting, which must start with `ok` ("* OK" for IMAP, "+OK" for POP3).
async fn greeting<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    proto: Starttls,
    ok: &str,
) -> Result<String, Refused> {
    let greeting = answer_line(wire, proto, "greeting").await?;
    if !greeting.starts_with(ok) {
        return Err(refused(format!(
            "the server did not greet with \"{ok}\": {}",
            quote(&greeting)
        )));
    }
    Ok(greeting)
}

async fn imap<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
) -> Result<Option<String>, Refused> {
    let greeting = greeting(wire, Starttls::Imap, "* OK").await?;
    send(wire, Starttls::Imap, b"a1 CAPABILITY\r\n").await?;
    let (caps, _) = imap_answer(wire, "a1", "answer to CAPABILITY").await?;
    if !has_word(&caps, "STARTTLS") && !has_word(std::slice::from_ref(&greeting), "STARTTLS") {
        return Err(refused(format!(
            "the server does not offer STARTTLS (its capabilities: {})",
            quote(&caps.join(" "))
        )));
    }
    send(wire, Starttls::Imap, b"a2 STARTTLS\r\n").await?;
    let (_, answer) = imap_answer(wire, "a2", "answer to STARTTLS").await?;
    if !answer.starts_with("OK") {
        return Err(refused(format!(
            "the server offers STARTTLS but refused it: {}",
            quote(&answer)
        )));
    }
    Ok(Some(greeting))
}

async fn pop3<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
) -> Result<Option<String>, Refused> {
    let greeting = greeting(wire, Starttls::Pop3, "+OK").await?;
    send(wire, Starttls::Pop3, b"CAPA\r\n").await?;
    let first = answer_line(wire, Starttls::Pop3, "answer to CAPA").await?;
    if first.starts_with("+OK") {
        let mut caps = Vec::new();
        loop {
            let line = wire
                .line()
                .await
                .map_err(waiting(Starttls::Pop3, "capability list"))?;
            if line == "." {
                break;
            }
            caps.push(line);
        }
        if !has_word(&caps, "STLS") {
            return Err(refused(format!(
                "the server does not offer STLS (its capabilities: {})",
                quote(&caps.join(", "))
            )));
        }
    }
    send(wire, Starttls::Pop3, b"STLS\r\n").await?;
    let answer = answer_line(wire, Starttls::Pop3, "answer to STLS").await?;
    if !answer.starts_with("+OK") {
        return Err(refused(format!(
            "the server refused STLS: {}",
            quote(&answer)
        )));
    }
    Ok(Some(greeting))
}

/// The SSLRequest message: length 8, then the request code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

async fn postgres<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<S>) -> Result<(), Refused> {
    send(wire, Starttls::Postgres, &SSL_REQUEST).await?;
    wire.begin();
    let answer = wire
        .byte()
        .await
        .map_err(waiting(Starttls::Postgres, "answer to SSLRequest"))?;
    match answer {
        b'S' => Ok(()),
        b'N' => Err(refused(
            "the PostgreSQL server does not accept TLS (it answered N to SSLRequest)",
        )),
        other => Err(refused(format!(
            "the answer to SSLRequest is not PostgreSQL's: it began with byte 0x{other:02x}"
        ))),
    }
}
