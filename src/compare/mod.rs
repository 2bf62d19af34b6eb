//! What changed since a baseline: this run against an earlier JSON report of the same checks.
//! Each check gains `regress.*` findings, so every report format shows the changes and the exit
//! code follows them.

mod stats;

use hdrhistogram::Histogram;

use crate::outcome::{Details, Finding, Outcome, Status};
use crate::report::Report;

pub use stats::{Shift, mann_whitney};

/// How much worse counts as a regression. Set in `[compare]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// p95 growth (a fraction) that fails, when the shift is significant.
    pub latency_fail: f64,
    /// p95 growth that warns, when the shift is significant.
    pub latency_warn: f64,
    /// The p-value under which a latency shift is significant.
    pub alpha: f64,
    /// Relative change of a response's size that warns.
    pub size_change: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            latency_fail: 0.20,
            latency_warn: 0.10,
            alpha: 0.01,
            size_change: 0.50,
        }
    }
}

/// Why a baseline cannot be compared with this run.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read the baseline {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("the baseline {0} is not a shipwatch JSON report")]
    NotAReport(String),
    #[error("the baseline is report version {found}; this shipwatch reads version 1")]
    Version { found: String },
    #[error(
        "the baseline checked {baseline}, this run checks {current}: compare runs of one target"
    )]
    Target { baseline: String, current: String },
    #[error("the baseline has other checks: {0}")]
    Checks(String),
}

/// An earlier run, read from its JSON report.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub target: String,
    pub checks: Vec<Outcome>,
}

impl Baseline {
    pub fn load(path: &std::path::Path) -> Result<Baseline, BaselineError> {
        let name = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| BaselineError::Unreadable {
            path: name.clone(),
            source,
        })?;
        let v: serde_json::Value =
            serde_json::from_slice(&text).map_err(|_| BaselineError::NotAReport(name.clone()))?;
        match &v["version"] {
            serde_json::Value::Number(n) if n.as_u64() == Some(1) => {}
            serde_json::Value::Null => return Err(BaselineError::NotAReport(name)),
            other => {
                return Err(BaselineError::Version {
                    found: other.to_string(),
                });
            }
        }
        let checks = v["checks"]
            .as_array()
            .ok_or_else(|| BaselineError::NotAReport(name.clone()))?
            .iter()
            .filter_map(crate::report::outcome_from_json)
            .collect();
        Ok(Baseline {
            target: v["target"].as_str().unwrap_or("").to_string(),
            checks,
        })
    }

    /// The baseline must be of the same target and the same checks (name and kind).
    pub fn check_matches(&self, report: &Report) -> Result<(), BaselineError> {
        if self.target != report.target {
            return Err(BaselineError::Target {
                baseline: self.target.clone(),
                current: report.target.clone(),
            });
        }
        let key = |o: &Outcome| format!("{} ({})", o.name, o.kind);
        let mut ours: Vec<String> = report.checks.iter().map(key).collect();
        let mut theirs: Vec<String> = self.checks.iter().map(key).collect();
        ours.sort();
        theirs.sort();
        if ours == theirs {
            return Ok(());
        }
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter().filter(|x| !b.contains(x)).cloned().collect()
        };
        let (gone, new) = (only(&theirs, &ours), only(&ours, &theirs));
        Err(BaselineError::Checks(format!(
            "only in the baseline: {}; only in this run: {}",
            list(&gone),
            list(&new)
        )))
    }

    /// Adds the `regress.*` findings of each check of `report` against its baseline run.
    pub fn judge(&self, report: &mut Report, t: &Thresholds) {
        for o in &mut report.checks {
            // The same check in the same environment; across stacks (canary vs stable), the
            // same check.
            let same_env = self
                .checks
                .iter()
                .find(|b| b.name == o.name && b.environment == o.environment);
            let found = same_env.or_else(|| self.checks.iter().find(|b| b.name == o.name));
            if let Some(before) = found {
                let found = regressions(before, o, t);
                o.findings.extend(found);
                o.status = status_of(o);
            }
        }
    }
}

/// True when a `regress.*` finding of the report fails: the deploy (or canary) is worse.
pub fn worse(report: &Report) -> bool {
    report
        .checks
        .iter()
        .flat_map(|c| &c.findings)
        .any(|f| f.id.starts_with("regress.") && f.status >= Status::Fail)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// A check's status after findings were added: errors stay errors.
fn status_of(o: &Outcome) -> Status {
    if o.error.is_some() {
        return Status::Error;
    }
    o.findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Pass)
}

/// Every regression of one check.
pub fn regressions(before: &Outcome, now: &Outcome, t: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    if before.status <= Status::Warn && now.status >= Status::Fail {
        out.push(
            Finding::new(
                "regress.status",
                Status::Fail,
                format!(
                    "{} passed in the baseline and {} now",
                    now.name,
                    if now.status == Status::Error {
                        "could not run"
                    } else {
                        "fails"
                    }
                ),
            )
            .with_values(before.status.as_str(), now.status.as_str()),
        );
    }
    out.extend(new_findings(before, now));
    out.extend(latency(&before.details, &now.details, t));
    out.extend(grade(&before.details, &now.details));
    out.extend(tls(&before.details, &now.details));
    out.extend(size(&before.details, &now.details, t));
    out
}

/// Findings that passed (or did not exist) in the baseline and warn or fail now.
fn new_findings(before: &Outcome, now: &Outcome) -> Vec<Finding> {
    now.findings
        .iter()
        .filter(|f| f.status >= Status::Warn && !f.id.starts_with("regress."))
        .filter(|f| {
            before
                .findings
                .iter()
                .find(|b| b.id == f.id)
                .is_none_or(|b| b.status == Status::Pass)
        })
        .map(|f| {
            Finding::new(
                "regress.finding",
                f.status,
                format!(
                    "{} {} now; it passed in the baseline",
                    f.id,
                    f.status.as_str()
                ),
            )
            .with_values(format!("{} passes", f.id), f.message.clone())
        })
        .collect()
}

/// The p95 shift of a latency check, judged by its size and by the Mann-Whitney U test.
fn latency(before: &Details, now: &Details, t: &Thresholds) -> Option<Finding> {
    let (b, n) = (before.latency()?, now.latency()?);
    let (hb, hn) = (decode(&b.hdr_histogram)?, decode(&n.hdr_histogram)?);
    let shift = mann_whitney(&stats::sample(&hb), &stats::sample(&hn))?;
    let growth = if b.p95_ms > 0.0 {
        n.p95_ms / b.p95_ms - 1.0
    } else {
        0.0
    };
    let significant = shift.p < t.alpha;
    let status = match (significant, growth) {
        (true, g) if g > t.latency_fail => Status::Fail,
        (true, g) if g > t.latency_warn => Status::Warn,
        _ => Status::Pass,
    };
    let message = format!(
        "p50 {:.1} → {:.1} ms, p95 {:.1} → {:.1} ms ({:+.0}%), p99 {:.1} → {:.1} ms; Mann-Whitney p {}, effect {:+.2}{}",
        b.p50_ms,
        n.p50_ms,
        b.p95_ms,
        n.p95_ms,
        growth * 100.0,
        b.p99_ms,
        n.p99_ms,
        p_value(shift.p),
        shift.effect,
        if significant {
            ""
        } else {
            " (not significant)"
        }
    );
    Some(
        Finding::new("regress.latency", status, message).with_values(
            format!("p95 ≤ +{:.0}% or not significant", t.latency_warn * 100.0),
            format!("{:+.0}%, p {}", growth * 100.0, p_value(shift.p)),
        ),
    )
}

/// "= 0.0123", or "< 0.0001" when it is that small.
fn p_value(p: f64) -> String {
    if p < 0.0001 {
        "< 0.0001".into()
    } else {
        format!("= {p:.4}")
    }
}

/// A baseline's or this run's latency histogram, from its V2 encoding.
fn decode(text: &str) -> Option<Histogram<u64>> {
    use hdrhistogram::serialization::Deserializer;
    let bytes = base64_decode(text)?;
    Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .ok()
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let clean: Vec<u8> = text.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    Some(out)
}

/// The grade's letters, best first.
const LETTERS: [&str; 13] = [
    "A+", "A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F",
];

/// A lower grade fails; a lower score within the same grade warns. Each header test that scored
/// worse is named.
fn grade(before: &Details, now: &Details) -> Vec<Finding> {
    let (Some(b), Some(n)) = (before.headers(), now.headers()) else {
        return Vec::new();
    };
    let rank = |g: &str| {
        LETTERS
            .iter()
            .position(|l| *l == g)
            .unwrap_or(LETTERS.len())
    };
    let mut out = Vec::new();
    if rank(&n.grade) > rank(&b.grade) || n.score < b.score {
        let status = if rank(&n.grade) > rank(&b.grade) {
            Status::Fail
        } else {
            Status::Warn
        };
        out.push(
            Finding::new(
                "regress.grade",
                status,
                format!(
                    "grade {} (score {}) in the baseline, {} (score {}) now",
                    b.grade, b.score, n.grade, n.score
                ),
            )
            .with_values(
                format!("≥ {} ({})", b.grade, b.score),
                format!("{} ({})", n.grade, n.score),
            ),
        );
    }
    for m in &n.modifiers {
        if let Some(old) = b
            .modifiers
            .iter()
            .find(|o| o.test == m.test && m.modifier < o.modifier)
        {
            out.push(
                Finding::new(
                    "regress.headers",
                    Status::Fail,
                    format!(
                        "{}: {} in the baseline, {} now",
                        m.test, old.result, m.result
                    ),
                )
                .with_values(old.result.clone(), m.result.clone()),
            );
        }
    }
    out
}

/// A lower TLS version fails; another issuer warns; a renewal from the same issuer is noted.
fn tls(before: &Details, now: &Details) -> Vec<Finding> {
    let (Some(b), Some(n)) = (before.tls(), now.tls()) else {
        return Vec::new();
    };
    let mut out = strength(b, n);
    if n.issuer != b.issuer {
        out.push(
            Finding::new(
                "regress.tls.issuer",
                Status::Warn,
                format!(
                    "the certificate's issuer changed: {} → {}",
                    b.issuer, n.issuer
                ),
            )
            .with_values(b.issuer.clone(), n.issuer.clone()),
        );
    } else if n.not_after != b.not_after {
        out.push(Finding::new(
            "regress.tls.renewed",
            Status::Pass,
            format!(
                "renewed by the same issuer: valid until {}, was {}",
                crate::units::rfc3339(n.not_after.max(0) as u64),
                crate::units::rfc3339(b.not_after.max(0) as u64)
            ),
        ));
    }
    out
}

/// A lower TLS version or a weaker key.
fn strength(b: &crate::outcome::TlsDetails, n: &crate::outcome::TlsDetails) -> Vec<Finding> {
    let mut out = Vec::new();
    if n.version < b.version {
        out.push(
            Finding::new(
                "regress.tls",
                Status::Fail,
                format!("{} in the baseline, {} now", b.version, n.version),
            )
            .with_values(format!("≥ {}", b.version), n.version.clone()),
        );
    }
    if let (Some(before), Some(now)) = (key_strength(&b.key), key_strength(&n.key))
        && now < before
    {
        out.push(
            Finding::new(
                "regress.tls",
                Status::Fail,
                format!(
                    "the key got weaker: {} in the baseline, {} now",
                    b.key, n.key
                ),
            )
            .with_values(format!("as strong as {}", b.key), n.key.clone()),
        );
    }
    out
}

/// Size changes smaller than this many bytes are not reported, whatever their share.
const MIN_SIZE_CHANGE: u64 = 1024;

/// A key's strength in bits of security (NIST SP 800-57), from its description.
fn key_strength(key: &str) -> Option<u32> {
    if let Some(rest) = key.strip_prefix("RSA ") {
        let bits: u32 = rest.split('-').next()?.parse().ok()?;
        return Some(match bits {
            0..=1023 => 40,
            1024..=2047 => 80,
            2048..=3071 => 112,
            3072..=7679 => 128,
            7680..=15359 => 192,
            _ => 256,
        });
    }
    [
        ("P-256", 128),
        ("P-384", 192),
        ("P-521", 256),
        ("Ed25519", 128),
    ]
    .iter()
    .find(|(name, _)| key.contains(name))
    .map(|(_, bits)| *bits)
}

/// A response whose size changed by more than `size_change` (and 1 KiB) warns.
fn size(before: &Details, now: &Details, t: &Thresholds) -> Option<Finding> {
    let (Details::Http(b), Details::Http(n)) = (before, now) else {
        return None;
    };
    let base = b.size.max(1) as f64;
    let change = (n.size as f64 - b.size as f64) / base;
    // A few bytes more in a tiny body ("ok" → "down") is not worth a word.
    let noticeable = n.size.abs_diff(b.size) >= MIN_SIZE_CHANGE;
    (noticeable && change.abs() > t.size_change).then(|| {
        Finding::new(
            "regress.size",
            Status::Warn,
            format!(
                "the response is {} bytes, {} in the baseline ({:+.0}%)",
                n.size,
                b.size,
                change * 100.0
            ),
        )
        .with_values(
            format!("within ±{:.0}% of {} bytes", t.size_change * 100.0, b.size),
            format!("{} bytes", n.size),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_ranked_by_their_security() {
        let k = |s| key_strength(s).unwrap();
        assert!(k("RSA 1024-bit key: below the 2048-bit minimum") < k("RSA 2048-bit key"));
        assert!(k("RSA 2048-bit key") < k("EC P-256 key"));
        assert!(k("EC P-256 key") < k("EC P-384 key"));
        assert_eq!(key_strength("something else"), None);
    }

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"\x00\xff\x10\x80hdr"] {
            assert_eq!(base64_decode(&crate::assert::base64(data)).unwrap(), data);
        }
    }
}
