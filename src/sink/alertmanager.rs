//! Alertmanager's v2 API: `POST /api/v2/alerts`. Alerts are posted again while they fire, so
//! Alertmanager does not time them out, and several agents deduplicate on the labels.

use serde_json::json;

use super::rfc3339;
use crate::alert::{Event, Notification};

/// The alerts array for a batch.
pub fn payload(batch: &[Notification], status_url: &str) -> Vec<u8> {
    let alerts: Vec<serde_json::Value> = batch
        .iter()
        .map(|n| {
            let mut a = json!({
                "labels": {
                    "alertname": "ShipwatchCheckFailing",
                    "check": n.check,
                    "env": n.env,
                    "severity": n.severity,
                    "finding": n.finding,
                },
                "annotations": {
                    "summary": super::summary(n),
                    "description": n.problems.iter().map(|p| match (&p.expected, &p.actual) {
                        (Some(e), Some(a)) => format!("{}: expected {e}, got {a}", p.id),
                        _ => format!("{}: {}", p.id, p.message),
                    }).collect::<Vec<_>>().join("\n"),
                },
                "startsAt": rfc3339(n.started_at),
                "generatorURL": status_url,
            });
            if n.event == Event::Resolved {
                a["endsAt"] = rfc3339(n.at).into();
            }
            a
        })
        .collect();
    serde_json::to_vec(&alerts).unwrap_or_default()
}
