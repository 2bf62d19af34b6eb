//! The one-shot sign-off summary (`check --notify`): pass or fail, counts, and what failed.

use serde_json::json;

use super::Receiver;
use super::{Sink, email};
use crate::net::Engine;
use crate::outcome::Status;
use crate::report::Report;

fn headline(r: &Report) -> String {
    let s = r.summary();
    format!(
        "[{}] shipwatch sign-off: {} · {} pass, {} warn, {} fail, {} error",
        r.status().as_str().to_uppercase(),
        r.environment,
        s.pass,
        s.warn,
        s.fail,
        s.error
    )
}

fn failing(r: &Report) -> Vec<serde_json::Value> {
    crate::report::notable(r)
        .into_iter()
        .map(|(c, f)| json!({"check": c.name, "id": f.id, "status": f.status, "expected": f.expected, "actual": f.actual}))
        .chain(r.checks.iter().filter_map(|c| {
            c.error.as_ref().map(|e| json!({"check": c.name, "id": format!("{}.run", c.kind), "status": "error", "expected": null, "actual": e.message}))
        }))
        .collect()
}

/// The sign-off body for an HTTP sink; `None` for Alertmanager, which takes alerts, not reports.
pub fn signoff_payload(sink: &Sink, r: &Report) -> Option<Vec<u8>> {
    let body = match &sink.to {
        Receiver::Webhook { .. } => json!({
            "version": 1,
            "source": "shipwatch",
            "type": "signoff",
            "environment": r.environment,
            "target": r.target,
            "started_at": r.started_rfc3339(),
            "status": r.status(),
            "summary": r.summary(),
            "failing": failing(r),
        }),
        Receiver::Slack { .. } => {
            let lines: Vec<String> = failing(r)
                .iter()
                .take(20)
                .map(|f| {
                    format!(
                        "• `{}` `{}` expected {}, got {}",
                        f["check"].as_str().unwrap_or(""),
                        f["id"].as_str().unwrap_or(""),
                        f["expected"].as_str().unwrap_or("-"),
                        f["actual"].as_str().unwrap_or("-")
                    )
                })
                .collect();
            let colour = match r.status() {
                Status::Pass => "#2eb67d",
                Status::Warn => "#ecb22e",
                _ => "#e01e5a",
            };
            json!({"text": headline(r), "attachments": [{"color": colour, "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": if lines.is_empty() { "every check passed".to_string() } else { lines.join("\n") }}}
            ]}]})
        }
        Receiver::Alertmanager { .. } | Receiver::Email(_) => return None,
    };
    serde_json::to_vec(&body).ok()
}

impl Sink {
    /// Sends the sign-off; Ok(false) when this kind of sink does not take sign-offs.
    pub(crate) async fn sign_off(
        &self,
        engine: &Engine,
        r: &Report,
    ) -> Result<bool, super::SinkError> {
        if let Receiver::Email(mail) = &self.to {
            let (text, html) = mail_body(r);
            return email::send(mail, headline(r), text, html, self.timeout)
                .await
                .map(|_| true);
        }
        let Some(body) = signoff_payload(self, r) else {
            return Ok(false);
        };
        let url = match &self.to {
            Receiver::Webhook { url, .. } | Receiver::Slack { url } => url.clone(),
            Receiver::Alertmanager { .. } | Receiver::Email(_) => return Ok(false),
        };
        self.send(engine, &self.post(url, body)).await.map(|_| true)
    }
}

/// The sign-off as mail: the headline, then each failing finding with expected vs actual.
fn mail_body(r: &Report) -> (String, String) {
    let mut text = format!("{}\n\n", headline(r));
    for f in &failing(r) {
        text.push_str(&format!(
            "- {} {}: expected {}, got {}\n",
            f["check"].as_str().unwrap_or(""),
            f["id"].as_str().unwrap_or(""),
            f["expected"].as_str().unwrap_or("-"),
            f["actual"].as_str().unwrap_or("-")
        ));
    }
    let html = format!(
        "<html><body><pre>{}</pre></body></html>",
        text.replace('&', "&amp;").replace('<', "&lt;")
    );
    (text, html)
}
