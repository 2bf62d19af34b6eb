//! Slack incoming webhooks: Block Kit with a colour by severity, the failing findings with
//! expected vs actual, and a link to the status page, always within Slack's documented limits
//! (3,000 characters a section, 50 blocks and 20 attachments a message), which Slack enforces by
//! answering 400 to the whole message.

use serde_json::json;

use super::{clip, headline, rfc3339, summary, within};
use crate::alert::{Event, Notification, Severity};

/// Block Kit's limit on a section's or a context element's text.
pub(crate) const SECTION_CHARS: usize = 3000;
/// Alerts shown in full, one attachment of two blocks each: 16 × 2 blocks plus the summary stay
/// under 50 blocks, and 16 attachments under Slack's recommended 20.
pub(crate) const DETAILED: usize = 16;
/// Findings listed per alert before "…and N more findings".
const FINDINGS: usize = 10;

fn colour(n: &Notification) -> &'static str {
    match (n.event, n.severity) {
        (Event::Resolved, _) => "#2eb67d",
        (Event::Test, _) => "#8d8d8d",
        (_, Severity::Critical) => "#e01e5a",
        (_, Severity::Warning) => "#ecb22e",
    }
}

/// Slack's mrkdwn reserves these three characters.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One alert as an attachment: its summary and findings in one section, then the context.
fn attachment(n: &Notification, status_url: &str) -> serde_json::Value {
    let title = format!("*{}*", esc(&clip(&summary(n), 600)));
    let lines: Vec<String> = n
        .problems
        .iter()
        .map(|p| {
            format!(
                "• `{}` {}",
                esc(&clip(&p.id, 80)),
                esc(&clip(&p.message, 360))
            )
        })
        .collect();
    let findings = if lines.is_empty() {
        "all findings pass".to_string()
    } else {
        within(
            &lines,
            SECTION_CHARS - title.chars().count() - 1,
            FINDINGS,
            "findings",
        )
    };
    let context = format!(
        "first failure {} · {} · <{}|status page>",
        rfc3339(n.first_failure),
        crate::units::count(u64::from(n.failed_runs), "failed run"),
        clip(status_url, 1000)
    );
    json!({
        "color": colour(n),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{title}\n{findings}")}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    })
}

/// The Slack message for a batch: a summary line, the first alerts in full (one attachment
/// each), and the rest as one line each.
pub fn payload(batch: &[Notification], status_url: &str) -> Vec<u8> {
    let attachments: Vec<serde_json::Value> = batch
        .iter()
        .take(DETAILED)
        .map(|n| attachment(n, status_url))
        .collect();
    let mut body = match batch {
        [one] => json!({"text": clip(&summary(one), SECTION_CHARS)}),
        many => {
            let head = headline(many);
            let mut blocks = vec![
                json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", esc(&head))}}),
            ];
            if many.len() > DETAILED {
                let rest: Vec<String> = many[DETAILED..]
                    .iter()
                    .map(|n| format!("• {}", esc(&clip(&summary(n), 300))))
                    .collect();
                let text = format!(
                    "The first {DETAILED} are below; the others:\n{}",
                    within(&rest, SECTION_CHARS - 60, rest.len(), "alerts")
                );
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
            }
            json!({"text": head, "blocks": blocks})
        }
    };
    body["attachments"] = attachments.into();
    serde_json::to_vec(&body).unwrap_or_default()
}
