//! The generic webhook: a documented JSON schema, custom headers, and an HMAC signature.

use serde_json::json;

use super::rfc3339;
use crate::alert::{Event, Notification};

/// The webhook body (schema version 1, documented in the README).
pub fn payload(batch: &[Notification], status_url: &str) -> Vec<u8> {
    let alerts: Vec<serde_json::Value> = batch
        .iter()
        .map(|n| {
            json!({
                "fingerprint": n.fingerprint,
                "event": n.event,
                "status": match n.event {
                    Event::Resolved => "resolved",
                    Event::Test => "test",
                    _ => "firing",
                },
                "check": n.check,
                "kind": n.kind,
                "env": n.env,
                "severity": n.severity,
                "summary": super::summary(n),
                "first_failure": rfc3339(n.first_failure),
                "started_at": rfc3339(n.started_at),
                "at": rfc3339(n.at),
                "failed_runs": n.failed_runs,
                "problems": n.problems,
            })
        })
        .collect();
    let body =
        json!({"version": 1, "source": "shipwatch", "status_url": status_url, "alerts": alerts});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Hex HMAC-SHA256 of the body, sent as `X-Shipwatch-Signature: sha256=<hex>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    crate::crypto::hmac_sha256(secret.as_bytes(), body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
