//! Small helpers every layer shares, so no module reaches up or sideways for them: durations,
//! "did you mean" suggestions, milliseconds, counts in words, and RFC 3339 times.

use std::time::Duration;

/// Why a duration could not be read; each says what was written and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration, expected something like \"10s\"")]
    Empty,
    #[error("invalid duration \"{0}\", expected something like \"500ms\" or \"10s\"")]
    Invalid(String),
    #[error("duration \"{0}\" needs a unit: ms, s, m, h or d")]
    NoUnit(String),
    #[error("unknown duration unit \"{unit}\" in \"{text}\", use ms, s, m, h or d")]
    UnknownUnit { unit: String, text: String },
    #[error("duration \"{0}\" is too large")]
    TooLarge(String),
}

/// Parses `500ms`, `10s`, `5m`, `4h`, `30d`, and sums like `1m30s`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let unit_len = rest[num_len..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len() - num_len);
        let (num, unit) = (&rest[..num_len], &rest[num_len..num_len + unit_len]);
        let n: f64 = num
            .parse()
            .map_err(|_| DurationError::Invalid(text.to_string()))?;
        total += n * unit_seconds(unit, text)?;
        rest = &rest[num_len + unit_len..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(DurationError::TooLarge(text.to_string()));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Seconds in one `unit`.
fn unit_seconds(unit: &str, text: &str) -> Result<f64, DurationError> {
    Ok(match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        "" => return Err(DurationError::NoUnit(text.to_string())),
        other => {
            return Err(DurationError::UnknownUnit {
                unit: other.to_string(),
                text: text.to_string(),
            });
        }
    })
}

/// The closest candidate to `word`, when it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Milliseconds with one decimal, the unit every report uses.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// "1 check", "2 checks": a count and its noun, singular or plural.
pub fn count(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// A duration in its two largest units, as people say it: "2d 3h", "3h 5m", "5m 12s", "12s".
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    let units = [(86400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let Some(i) = units.iter().position(|(n, _)| s >= *n) else {
        return "0s".into();
    };
    let (big, big_name) = units[i];
    let mut out = format!("{}{big_name}", s / big);
    if let Some((small, small_name)) = units.get(i + 1) {
        let rest = s % big / small;
        if rest > 0 {
            out.push_str(&format!(" {rest}{small_name}"));
        }
    }
    out
}

/// RFC 3339 for Unix seconds, as every payload writes times.
pub fn rfc3339(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod span_tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(Duration::from_secs(7 * 86400)), "7d");
        assert_eq!(span(Duration::from_secs(86400 + 3 * 3600 + 5)), "1d 3h");
        assert_eq!(span(Duration::from_secs(312)), "5m 12s");
        assert_eq!(span(Duration::from_secs(12)), "12s");
        assert_eq!(span(Duration::ZERO), "0s");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert!(
            parse_duration("10")
                .unwrap_err()
                .to_string()
                .contains("needs a unit")
        );
        assert!(
            parse_duration("10y")
                .unwrap_err()
                .to_string()
                .contains("unknown duration unit \"y\"")
        );
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("timout", ["timeout", "url"]), Some("timeout"));
        assert_eq!(suggest("zzz", ["timeout", "url"]), None);
    }

    #[test]
    fn counts_read_as_english() {
        assert_eq!(count(1, "check"), "1 check");
        assert_eq!(count(0, "check"), "0 checks");
        assert_eq!(count(3, "failed run"), "3 failed runs");
    }

    #[test]
    fn times_and_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(ms(Duration::from_micros(1234)), 1.2);
    }
}
