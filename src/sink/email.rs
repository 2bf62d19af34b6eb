//! Email over SMTP (lettre, async, rustls): `smtp://` with STARTTLS (`?tls=required` or
//! `?tls=opportunistic`) or `smtps://`, optional authentication, a text and an HTML part.

use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{clip, headline, problem_line, rfc3339, summary, within};
use crate::alert::Notification;

/// Where and as whom mail is sent.
#[derive(Debug, Clone)]
pub struct Mail {
    pub smtp_url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// Extra trusted roots (PEM) for a mail server with an internal certificate.
    pub ca_file: Option<std::path::PathBuf>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Findings listed per alert before "…and N more findings".
const FINDINGS: usize = 50;
/// Subjects stay well inside the 998-character line limit, and readable in a mail list.
const SUBJECT_CHARS: usize = 200;

/// Subject, text and HTML for a batch.
pub fn content(batch: &[Notification], status_url: &str) -> (String, String, String) {
    let subject = match batch {
        [one] => summary(one),
        many => {
            let worst = if many.iter().any(|n| {
                n.event != crate::alert::Event::Resolved
                    && n.severity == crate::alert::Severity::Critical
            }) {
                "CRITICAL"
            } else {
                "WARNING"
            };
            format!("[{worst}] shipwatch: {}", headline(many))
        }
    };
    let subject = clip(&subject.replace(['\r', '\n'], " "), SUBJECT_CHARS);
    let mut text = String::new();
    let mut html = String::from("<html><body style=\"font-family:sans-serif\">");
    for n in batch {
        text.push_str(&format!("{}\n", summary(n)));
        text.push_str(&format!(
            "  first failure {} · {}\n",
            rfc3339(n.first_failure),
            crate::units::count(u64::from(n.failed_runs), "failed run")
        ));
        html.push_str(&format!(
            "<h3>{}</h3><p>first failure {} · {}</p><ul>",
            esc(&summary(n)),
            rfc3339(n.first_failure),
            crate::units::count(u64::from(n.failed_runs), "failed run")
        ));
        let lines: Vec<String> = n
            .problems
            .iter()
            .map(|p| clip(&problem_line(p), 1000))
            .collect();
        for line in within(&lines, usize::MAX, FINDINGS, "findings").lines() {
            text.push_str(&format!("  - {line}\n"));
            html.push_str(&format!("<li>{}</li>", esc(line)));
        }
        html.push_str("</ul>");
        text.push('\n');
    }
    text.push_str(&format!("Status page: {status_url}\n"));
    html.push_str(&format!(
        "<p><a href=\"{}\">Status page</a></p></body></html>",
        esc(status_url)
    ));
    (subject, text, html)
}

/// A mail setting the relay can never accept: the message is refused before it is sent.
fn refused(why: String) -> super::SinkError {
    super::SinkError::Rejected { why, split: false }
}

fn mailbox(s: &str) -> Result<Mailbox, super::SinkError> {
    s.parse()
        .map_err(|e| refused(format!("invalid address \"{s}\": {e}")))
}

/// `smtp://host[:port][?tls=required|opportunistic]` (STARTTLS) or `smtps://host[:port]`, trusting
/// Mozilla's roots plus `ca_file`.
fn transport(
    mail: &Mail,
) -> Result<lettre::transport::smtp::AsyncSmtpTransportBuilder, super::SinkError> {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let url =
        url::Url::parse(&mail.smtp_url).map_err(|e| refused(format!("invalid smtp_url: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| refused("smtp_url has no host".into()))?
        .to_string();
    let tls_mode = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let params = || -> Result<TlsParameters, super::SinkError> {
        let mut b = TlsParameters::builder(host.clone());
        if let Some(path) = &mail.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| refused(format!("cannot read {}: {e}", path.display())))?;
            b = b.add_root_certificate(
                Certificate::from_pem(&pem)
                    .map_err(|e| refused(format!("{}: {e}", path.display())))?,
            );
        }
        b.build_rustls()
            .map_err(|e| refused(format!("TLS set-up failed: {e}")))
    };
    let (tls, default_port) = match (url.scheme(), tls_mode.as_deref()) {
        ("smtps", _) => (Tls::Wrapper(params()?), 465),
        ("smtp", Some("required")) => (Tls::Required(params()?), 587),
        ("smtp", Some("opportunistic")) => (Tls::Opportunistic(params()?), 587),
        ("smtp", None) => (Tls::None, 25),
        (s, t) => {
            return Err(refused(format!(
                "unsupported smtp_url: scheme \"{s}\", tls={}",
                t.unwrap_or("(none)")
            )));
        }
    };
    Ok(
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(url.port().unwrap_or(default_port))
            .tls(tls),
    )
}

/// Sends one message for the batch.
pub async fn send(
    mail: &Mail,
    subject: String,
    text: String,
    html: String,
    timeout: std::time::Duration,
) -> Result<(), super::SinkError> {
    let mut builder = Message::builder()
        .from(mailbox(&mail.from)?)
        .subject(subject);
    for to in &mail.to {
        builder = builder.to(mailbox(to)?);
    }
    let message = builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    lettre::message::SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    lettre::message::SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|e| refused(format!("cannot build the message: {e}")))?;
    let mut transport = transport(mail)?.timeout(Some(timeout));
    if let (Some(u), Some(p)) = (&mail.username, &mail.password) {
        transport = transport.credentials(Credentials::new(u.clone(), p.clone()));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| {
            let why = format!("SMTP: {e}");
            if e.is_permanent() {
                // 552 (too large) and 554 (refused for its content) may pass smaller; other
                // permanent errors (no such mailbox, authentication) concern the sink itself.
                let code = e.status().map(|c| c.to_string()).unwrap_or_default();
                super::SinkError::Rejected {
                    why,
                    split: code == "552" || code == "554",
                }
            } else {
                super::SinkError::Transient {
                    why,
                    retry_after: None,
                }
            }
        })
}
