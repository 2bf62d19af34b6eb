//! Slack incoming webhooks: Block Kit with a colour by severity, the failing findings with
//! expected vs actual, and a link to the status page.

use serde_json::json;

use super::{rfc3339, summary};
use crate::alert::{Event, Notification, Severity};

fn colour(n: &Notification) -> &'static str {
    match (n.event, n.severity) {
        (Event::Resolved, _) => "#2eb67d",
        (_, Severity::Critical) => "#e01e5a",
        (_, Severity::Warning) => "#ecb22e",
    }
}

/// The Slack message for a batch: one attachment per alert.
pub fn payload(batch: &[Notification], status_url: &str) -> Vec<u8> {
    let attachments: Vec<serde_json::Value> = batch
        .iter()
        .map(|n| {
            let lines: Vec<String> = n
                .problems
                .iter()
                .take(10)
                .map(|p| match (&p.expected, &p.actual) {
                    (Some(e), Some(a)) => format!("• `{}` expected {e}, got {a}", p.id),
                    _ => format!("• `{}` {}", p.id, p.message),
                })
                .collect();
            let context = format!(
                "first failure {} · {} failed runs · <{status_url}|status page>",
                rfc3339(n.first_failure),
                n.failed_runs
            );
            json!({
                "color": colour(n),
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", summary(n))}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": if lines.is_empty() { "all findings pass".to_string() } else { lines.join("\n") }}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
                ],
            })
        })
        .collect();
    let text = match batch {
        [one] => summary(one),
        many => format!("shipwatch: {} alerts changed", many.len()),
    };
    serde_json::to_vec(&json!({"text": text, "attachments": attachments})).unwrap_or_default()
}
