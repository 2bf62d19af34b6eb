//! Alertmanager's v2 API: `POST /api/v2/alerts`. Alerts are posted again while they fire, so
//! Alertmanager does not time them out, and several agents deduplicate on the labels.

use serde_json::json;

use super::rfc3339;
use crate::alert::{Event, Notification};

/// Findings listed in an alert's description before "…and N more findings".
const FINDINGS: usize = 20;

/// The failing findings, one a line, bounded so a check with thousands of findings cannot make a
/// request a proxy in front of Alertmanager refuses.
fn description(n: &Notification) -> String {
    let lines: Vec<String> = n
        .problems
        .iter()
        .map(|p| super::clip(&super::problem_line(p), 500))
        .collect();
    super::within(&lines, 8000, FINDINGS, "findings")
}

/// The alerts array for a batch.
pub fn payload(batch: &[Notification], status_url: &str) -> Vec<u8> {
    let alerts: Vec<serde_json::Value> = batch
        .iter()
        .map(|n| {
            let test = n.event == Event::Test;
            let mut a = json!({
                "labels": {
                    // A test must never look like, or page as, a real alert.
                    "alertname": if test { "ShipwatchTest" } else { "ShipwatchCheckFailing" },
                    "check": n.check,
                    "env": n.env,
                    "severity": if test { serde_json::json!("info") } else { serde_json::json!(n.severity) },
                    "finding": n.finding,
                },
                "annotations": {
                    "summary": super::summary(n),
                    "description": description(n),
                },
                "startsAt": rfc3339(n.started_at),
                "generatorURL": status_url,
            });
            if n.event == Event::Resolved || test {
                // A test ends as soon as it starts.
                a["endsAt"] = rfc3339(n.at).into();
            }
            a
        })
        .collect();
    serde_json::to_vec(&alerts).unwrap_or_default()
}
