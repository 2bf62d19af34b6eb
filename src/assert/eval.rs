//! Evaluating assertions and captures against what a request produced.

use std::cell::OnceCell;
use std::time::Duration;

use serde_json::Value as Json;

use super::{Assertion, Expected, Op, Query};

/// What an assertion can look at: one response, its timings and its connection.
#[derive(Debug, Default)]
pub struct Subject<'a> {
    pub status: Option<u16>,
    pub time: Option<Duration>,
    pub ttfb: Option<Duration>,
    pub headers: Option<&'a http::HeaderMap>,
    pub body: &'a [u8],
    pub redirects: usize,
    pub url: Option<&'a str>,
    pub cert_days: Option<f64>,
    /// Parsed lazily: most assertions do not need the body as JSON.
    pub json: OnceCell<Option<Json>>,
    /// What a non-HTTP kind found, by the name its assertions use (`answers`, `banner`, …).
    pub facts: Vec<(&'static str, Json)>,
}

/// The outcome of one assertion: whether it held and what was actually seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    pub actual: String,
}

enum Actual {
    Json(Json),
    Duration(Duration),
}

const MAX_ACTUAL: usize = 200;

impl Subject<'_> {
    fn json(&self) -> Option<&Json> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).ok())
            .as_ref()
    }

    fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers?
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("<binary>"))
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.headers?
            .get_all(http::header::SET_COOKIE)
            .iter()
            .find_map(|v| {
                let pair = v.to_str().ok()?.split(';').next()?;
                let (k, val) = pair.split_once('=')?;
                (k.trim() == name).then(|| val.trim().to_string())
            })
    }

    fn lookup(&self, q: &Query) -> Option<Actual> {
        let j = |v: Json| Some(Actual::Json(v));
        match q {
            Query::Status => j(self.status?.into()),
            Query::Time => self.time.map(Actual::Duration),
            Query::Ttfb => self.ttfb.map(Actual::Duration),
            Query::Header(name) => j(self.header(name)?.into()),
            Query::Cookie(name) => j(self.cookie(name)?.into()),
            Query::Json(jq) => {
                let nodes = jq.path.query(self.json()?).all();
                match nodes.as_slice() {
                    [] => None,
                    [one] => j((*one).clone()),
                    many => j(Json::Array(many.iter().map(|v| (*v).clone()).collect())),
                }
            }
            Query::Body => j(String::from_utf8_lossy(self.body).into_owned().into()),
            Query::Redirects => j(self.redirects.into()),
            Query::Url => j(self.url?.into()),
            Query::CertDays => j(Json::from(self.cert_days?.floor())),
            Query::Size => j(self.body.len().into()),
            Query::Fact(name) => self
                .facts
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| j(v.clone())),
            Query::Percentile(_) | Query::Max | Query::Mean | Query::Errors => None,
        }
    }

    /// Evaluates a query for a capture; `None` when it found nothing.
    pub fn capture(&self, c: &super::Capture) -> Option<String> {
        self.capture_query(&c.query).and_then(|v| c.narrow(v))
    }

    fn capture_query(&self, q: &Query) -> Option<String> {
        match self.lookup(q)? {
            Actual::Json(Json::String(s)) => Some(s),
            Actual::Json(Json::Null) => None,
            Actual::Json(v) => Some(v.to_string()),
            Actual::Duration(d) => Some(format_duration(d)),
        }
    }

    /// Evaluates one assertion.
    pub fn check(&self, a: &Assertion) -> Verdict {
        let actual = self.lookup(&a.query);
        let shown = actual
            .as_ref()
            .map_or_else(|| "(missing)".to_string(), render_actual);
        let passed = match (&actual, a.op) {
            (found, Op::Exists) => found.is_some(),
            (found, Op::NotExists) => found.is_none(),
            (None, _) => false,
            (Some(v), op) => a.expected.as_ref().is_some_and(|e| compare(v, op, e)),
        };
        Verdict {
            passed,
            actual: shown,
        }
    }
}

/// Compares a number (milliseconds, a fraction or a count) with an expected value.
pub fn compare_number(actual: f64, op: Op, expected: &Expected) -> bool {
    compare(
        &Actual::Json(serde_json::Number::from_f64(actual).map_or(Json::Null, Json::Number)),
        op,
        expected,
    )
}

fn compare(actual: &Actual, op: Op, expected: &Expected) -> bool {
    match op {
        Op::Eq => equal(actual, expected),
        Op::Ne => !equal(actual, expected),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => match (number(actual), expected_number(expected)) {
            (Some(a), Some(e)) => match op {
                Op::Lt => a < e,
                Op::Le => a <= e,
                Op::Gt => a > e,
                _ => a >= e,
            },
            _ => false,
        },
        Op::Contains => contains(actual, expected),
        Op::NotContains => !contains(actual, expected),
        Op::Matches | Op::NotMatches => {
            let hit = matches!(expected, Expected::Regex(re) if re.is_match(&text(actual)));
            hit == (op == Op::Matches)
        }
        Op::In => match expected {
            Expected::Json(Json::Array(items)) => items
                .iter()
                .any(|item| equal(actual, &Expected::Json(item.clone()))),
            _ => false,
        },
        Op::StartsWith => text(actual).starts_with(&expected_text(expected)),
        Op::EndsWith => text(actual).ends_with(&expected_text(expected)),
        Op::Exists | Op::NotExists => unreachable!("handled before compare"),
    }
}

fn equal(actual: &Actual, expected: &Expected) -> bool {
    match (actual, expected) {
        (Actual::Json(a), Expected::Json(e)) => match (a.as_f64(), e.as_f64()) {
            (Some(x), Some(y)) => x == y,
            // A header "42" equals the number 42, and "true" the boolean true.
            _ if a.is_string() && !e.is_string() => {
                Some(text(actual)) == serde_json::to_string(e).ok()
            }
            _ => a == e,
        },
        (_, Expected::Word(w)) => text(actual) == *w,
        _ => match (number(actual), expected_number(expected)) {
            (Some(a), Some(e)) => a == e,
            _ => false,
        },
    }
}

fn contains(actual: &Actual, expected: &Expected) -> bool {
    match (actual, expected) {
        (Actual::Json(Json::Array(items)), Expected::Json(e)) => items.contains(e),
        (Actual::Json(Json::Array(items)), Expected::Word(w)) => {
            items.iter().any(|i| i.as_str() == Some(w))
        }
        _ => text(actual).contains(&expected_text(expected)),
    }
}

/// Durations compare in milliseconds, since that is how users write them.
fn number(actual: &Actual) -> Option<f64> {
    match actual {
        Actual::Duration(d) => Some(d.as_secs_f64() * 1000.0),
        Actual::Json(Json::String(s)) => s.trim().parse().ok(),
        Actual::Json(v) => v.as_f64(),
    }
}

fn expected_number(e: &Expected) -> Option<f64> {
    match e {
        Expected::Json(v) => v.as_f64(),
        Expected::Duration(d) => Some(d.as_secs_f64() * 1000.0),
        Expected::Percent(p) => Some(*p),
        Expected::Word(w) => w.parse().ok(),
        Expected::Regex(_) => None,
    }
}

fn text(actual: &Actual) -> String {
    match actual {
        Actual::Json(Json::String(s)) => s.clone(),
        Actual::Json(v) => v.to_string(),
        Actual::Duration(d) => format_duration(*d),
    }
}

fn expected_text(e: &Expected) -> String {
    match e {
        Expected::Json(Json::String(s)) => s.clone(),
        Expected::Json(v) => v.to_string(),
        Expected::Duration(d) => format_duration(*d),
        Expected::Percent(p) => format!("{}%", p * 100.0),
        Expected::Word(w) => w.clone(),
        Expected::Regex(r) => r.as_str().to_string(),
    }
}

fn render_actual(a: &Actual) -> String {
    match a {
        Actual::Json(v) => render_value(v),
        Actual::Duration(d) => format_duration(*d),
    }
}

/// A JSON value as shown in reports, cut to a readable length.
pub fn render_value(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() <= MAX_ACTUAL {
        return s;
    }
    let cut: String = s.chars().take(MAX_ACTUAL).collect();
    format!("{cut}… ({} bytes)", s.len())
}

/// Milliseconds with one decimal, as used throughout the reports.
pub(crate) fn format_duration(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::super::Context;
    use super::*;

    fn run(subject: &Subject<'_>, text: &str) -> Verdict {
        subject.check(&Assertion::parse(text, Context::Response).unwrap())
    }

    #[test]
    fn evaluates_against_a_response() {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.append("set-cookie", "sid=abc; HttpOnly".parse().unwrap());
        let body = br#"{"status":"healthy","n":3,"tags":["a","b"]}"#;
        let s = Subject {
            status: Some(200),
            time: Some(Duration::from_millis(120)),
            headers: Some(&headers),
            body,
            ..Subject::default()
        };
        assert!(run(&s, "status == 200").passed);
        assert!(!run(&s, "status == 503").passed);
        assert_eq!(run(&s, "status == 503").actual, "200");
        assert!(run(&s, "status in [200, 204]").passed);
        assert!(run(&s, "time < 500ms").passed);
        assert!(!run(&s, "time < 100ms").passed);
        assert!(run(&s, r#"json $.status == "healthy""#).passed);
        assert!(run(&s, "json $.status == healthy").passed);
        assert!(run(&s, "json $.n >= 3").passed);
        assert!(run(&s, "json $.tags contains a").passed);
        assert!(run(&s, "json $.missing !exists").passed);
        assert_eq!(run(&s, "json $.missing == 1").actual, "(missing)");
        assert!(run(&s, "header Content-Type startswith application/").passed);
        assert!(run(&s, "cookie sid == abc").passed);
        assert!(run(&s, r#"body matches "\"n\":\\d""#).passed);
        assert!(run(&s, "body !contains error").passed);
        assert!(run(&s, "size > 10").passed);
        assert!(!run(&s, "cert.days > 1").passed);
        assert_eq!(
            s.capture(&super::super::parse_capture("json $.status").unwrap()),
            Some("healthy".into())
        );
        assert_eq!(
            s.capture(&super::super::parse_capture(r#"body regex "\"n\":(\d+)""#).unwrap()),
            Some("3".into())
        );
        assert!(super::super::parse_capture("body soup").is_err());
        assert_eq!(
            s.capture(&super::super::parse_capture("body regex nomatch").unwrap()),
            None::<String>
        );
    }
}
