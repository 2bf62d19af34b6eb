//! The assertion language: `[warn:] QUERY OP VALUE`, parsed with positions and evaluated against a response.
//!
//! It is also the capture language: a capture is a query without an operator.

mod eval;
mod redact;
mod template;

use std::fmt;
use std::time::Duration;

use regex::Regex;
use serde_json_path::JsonPath;

pub use eval::{Subject, Verdict, compare_number, render_value};
pub use redact::{MIN_SECRET_LEN, REDACTED, Redactor, base64};
pub use template::{Rendered, Scope, TemplateError, interpolate};

/// How a breached assertion counts: a failure, or only a warning (`warn:` prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fail,
    Warn,
}

/// What part of the response an assertion or capture looks at.
#[derive(Debug, Clone)]
pub enum Query {
    Status,
    Time,
    Ttfb,
    Header(String),
    Json(JsonQuery),
    Body,
    Cookie(String),
    Redirects,
    Url,
    CertDays,
    Size,
    /// A latency percentile such as p95 or p99.9 (latency checks only).
    Percentile(f64),
    Max,
    Mean,
    Errors,
    /// A fact a non-HTTP kind found, such as a DNS answer list or a TCP banner.
    Fact(&'static str),
}

/// A compiled JSONPath together with its source text for messages.
#[derive(Debug, Clone)]
pub struct JsonQuery {
    pub text: String,
    pub path: JsonPath,
}

/// The comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    NotContains,
    Matches,
    NotMatches,
    In,
    StartsWith,
    EndsWith,
    Exists,
    NotExists,
}

const OPS: &[(&str, Op)] = &[
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("<", Op::Lt),
    (">", Op::Gt),
    ("contains", Op::Contains),
    ("!contains", Op::NotContains),
    ("matches", Op::Matches),
    ("!matches", Op::NotMatches),
    ("in", Op::In),
    ("startswith", Op::StartsWith),
    ("endswith", Op::EndsWith),
    ("exists", Op::Exists),
    ("!exists", Op::NotExists),
];

impl Op {
    pub fn as_str(self) -> &'static str {
        OPS.iter()
            .find(|(_, op)| *op == self)
            .map_or("?", |(s, _)| s)
    }
}

/// The right-hand side of an assertion.
#[derive(Debug, Clone)]
pub enum Expected {
    Json(serde_json::Value),
    Duration(Duration),
    /// A percentage, stored as a fraction (1% is 0.01).
    Percent(f64),
    Word(String),
    Regex(Regex),
}

/// One parsed assertion. `text` is kept to show the user exactly what they wrote.
#[derive(Debug, Clone)]
pub struct Assertion {
    pub text: String,
    pub severity: Severity,
    pub query: Query,
    pub op: Op,
    pub expected: Option<Expected>,
}

/// Which queries are allowed where: latency percentiles only make sense on latency checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Response,
    Latency,
    Dns,
    Tcp,
    WebSocket,
}

impl Context {
    /// The facts a non-HTTP kind offers to its assertions, besides `time`.
    fn facts(self) -> Option<&'static [&'static str]> {
        match self {
            Context::Response | Context::Latency => None,
            Context::Dns => Some(&["answers", "ttl", "rcode", "authoritative"]),
            Context::Tcp => Some(&["banner"]),
            Context::WebSocket => Some(&["message"]),
        }
    }
}

/// A parse error at a character offset inside the assertion text.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at column {})", self.message, self.offset + 1)
    }
}

const QUERIES: &[&str] = &[
    "status",
    "time",
    "ttfb",
    "header",
    "json",
    "body",
    "cookie",
    "redirects",
    "url",
    "cert.days",
    "size",
];

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// The next whitespace-delimited word, with its start offset.
    fn word(&mut self) -> (usize, &'a str) {
        self.skip_ws();
        let start = self.pos;
        let rest = &self.text[start..];
        let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        self.pos += len;
        (start, &rest[..len])
    }

    /// A JSONPath runs to the first whitespace outside brackets and quotes.
    fn json_path(&mut self) -> (usize, &'a str) {
        self.skip_ws();
        let start = self.pos;
        let (mut depth, mut quote) = (0i32, None::<char>);
        let mut end = self.text.len();
        for (i, c) in self.text[start..].char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '[' | '(') => depth += 1,
                (None, ']' | ')') => depth -= 1,
                (None, c) if c.is_whitespace() && depth <= 0 => {
                    end = start + i;
                    break;
                }
                _ => {}
            }
        }
        self.pos = end;
        (start, &self.text[start..end])
    }

    fn rest(&mut self) -> (usize, &'a str) {
        self.skip_ws();
        (self.pos, self.text[self.pos..].trim_end())
    }
}

fn err(offset: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        offset,
        message: message.into(),
    }
}

impl Assertion {
    /// Parses one assertion; offsets in errors are byte offsets into `text`.
    pub fn parse(text: &str, ctx: Context) -> Result<Assertion, ParseError> {
        let mut cur = Cursor { text, pos: 0 };
        cur.skip_ws();
        let severity = if text[cur.pos..].starts_with("warn:") {
            cur.pos += "warn:".len();
            Severity::Warn
        } else {
            Severity::Fail
        };
        let query = parse_query(&mut cur, ctx)?;
        let (op_at, op_word) = cur.word();
        if op_word.is_empty() {
            return Err(err(
                op_at,
                "missing operator, expected one of == != < <= > >= contains matches in startswith endswith exists",
            ));
        }
        let op = OPS.iter().find(|(s, _)| *s == op_word).map(|(_, op)| *op).ok_or_else(|| {
            err(op_at, format!("unknown operator \"{op_word}\", expected one of == != < <= > >= contains !contains matches !matches in startswith endswith exists !exists"))
        })?;
        let (value_at, value_text) = cur.rest();
        let expected = match op {
            Op::Exists | Op::NotExists if !value_text.is_empty() => {
                return Err(err(value_at, format!("\"{}\" takes no value", op.as_str())));
            }
            Op::Exists | Op::NotExists => None,
            _ if value_text.is_empty() => {
                return Err(err(value_at, "missing value after the operator"));
            }
            Op::Matches | Op::NotMatches => Some(parse_regex(value_text, value_at)?),
            _ => Some(parse_value(value_text, value_at, op)?),
        };
        let timed = matches!(
            query,
            Query::Time | Query::Ttfb | Query::Percentile(_) | Query::Max | Query::Mean
        );
        if timed && matches!(expected, Some(Expected::Json(serde_json::Value::Number(_)))) {
            return Err(err(
                value_at,
                format!("\"{value_text}\" needs a unit, such as {value_text}ms"),
            ));
        }
        if op == Op::In && !matches!(expected, Some(Expected::Json(serde_json::Value::Array(_)))) {
            return Err(err(
                value_at,
                "\"in\" needs a JSON array, such as [200, 204]",
            ));
        }
        Ok(Assertion {
            text: text.trim().to_string(),
            severity,
            query,
            op,
            expected,
        })
    }

    /// The "expected" side as users read it, e.g. `== 200`.
    pub(crate) fn expected_text(&self) -> String {
        let full = self.text.trim_start_matches("warn:").trim();
        let q = full.find(self.op.as_str()).unwrap_or(0);
        full[q..].to_string()
    }
}

/// Parses a capture such as `json $.access_token` or `header Location`.
pub(crate) fn parse_capture(text: &str) -> Result<Capture, ParseError> {
    let mut cur = Cursor { text, pos: 0 };
    let query = parse_query(&mut cur, Context::Response)?;
    let (at, rest) = cur.rest();
    let regex = match rest.strip_prefix("regex") {
        Some(pattern) if pattern.starts_with(char::is_whitespace) => {
            let at = at + "regex".len() + (pattern.len() - pattern.trim_start().len());
            match parse_regex(pattern.trim(), at)? {
                Expected::Regex(re) => Some(re),
                _ => None,
            }
        }
        _ if rest.is_empty() => None,
        _ => {
            return Err(err(
                at,
                format!(
                    "unexpected \"{rest}\" after the capture query (a capture may end with `regex \"PATTERN\"`)"
                ),
            ));
        }
    };
    Ok(Capture { query, regex })
}

/// A capture: a query, optionally narrowed by a regex whose first group (or whole match) is kept.
#[derive(Debug, Clone)]
pub struct Capture {
    pub query: Query,
    pub regex: Option<Regex>,
}

impl Capture {
    /// Applies the regex, if any, to a captured value.
    pub(crate) fn narrow(&self, value: String) -> Option<String> {
        match &self.regex {
            None => Some(value),
            Some(re) => {
                let caps = re.captures(&value)?;
                caps.get(1)
                    .or_else(|| caps.get(0))
                    .map(|m| m.as_str().to_string())
            }
        }
    }
}

fn parse_query(cur: &mut Cursor<'_>, ctx: Context) -> Result<Query, ParseError> {
    if let Some(facts) = ctx.facts() {
        return parse_fact(cur, facts);
    }
    let (at, word) = cur.word();
    let q = match word {
        "status" => Query::Status,
        "time" => Query::Time,
        "ttfb" => Query::Ttfb,
        "body" => Query::Body,
        "redirects" => Query::Redirects,
        "url" => Query::Url,
        "cert.days" => Query::CertDays,
        "size" => Query::Size,
        "header" | "cookie" => {
            let (name_at, name) = cur.word();
            if name.is_empty() {
                return Err(err(name_at, format!("\"{word}\" needs a name, e.g. `{word} Content-Type`")));
            }
            if word == "header" { Query::Header(name.to_string()) } else { Query::Cookie(name.to_string()) }
        }
        "json" => {
            let (path_at, path) = cur.json_path();
            let compiled = JsonPath::parse(path)
                .map_err(|e| err(path_at, format!("invalid JSONPath \"{path}\": {e}")))?;
            Query::Json(JsonQuery { text: path.to_string(), path: compiled })
        }
        w if ctx == Context::Latency => parse_latency_query(w).ok_or_else(|| {
            err(at, format!("unknown latency query \"{w}\", expected p50, p90, p95, p99, p99.9, max, mean or errors"))
        })?,
        "" => return Err(err(at, "empty assertion")),
        w => {
            let hint = crate::units::suggest(w, QUERIES.iter().copied())
                .map(|s| format!(", did you mean \"{s}\"?"))
                .unwrap_or_else(|| format!(", expected one of {}", QUERIES.join(" ")));
            return Err(err(at, format!("unknown query \"{w}\"{hint}")));
        }
    };
    Ok(q)
}

/// A query of a kind that offers `facts` and `time`.
fn parse_fact(cur: &mut Cursor<'_>, facts: &'static [&'static str]) -> Result<Query, ParseError> {
    let (at, word) = cur.word();
    if word == "time" {
        return Ok(Query::Time);
    }
    if let Some(fact) = facts.iter().find(|f| **f == word) {
        return Ok(Query::Fact(fact));
    }
    if word.is_empty() {
        return Err(err(at, "empty assertion"));
    }
    let known = || facts.iter().copied().chain(["time"]);
    let hint = crate::units::suggest(word, known())
        .map(|s| format!(", did you mean \"{s}\"?"))
        .unwrap_or_else(|| {
            format!(
                ", expected one of {}",
                known().collect::<Vec<_>>().join(" ")
            )
        });
    Err(err(at, format!("unknown query \"{word}\"{hint}")))
}

fn parse_latency_query(w: &str) -> Option<Query> {
    match w {
        "max" => Some(Query::Max),
        "mean" => Some(Query::Mean),
        "errors" => Some(Query::Errors),
        _ => {
            let p: f64 = w.strip_prefix('p')?.parse().ok()?;
            (p > 0.0 && p <= 100.0).then_some(Query::Percentile(p))
        }
    }
}

/// A regex is written bare or in double quotes. A quoted one is read as a JSON string when it is
/// one; otherwise only `\"` is unescaped, so regex escapes such as `\d` need no doubling.
fn parse_regex(text: &str, at: usize) -> Result<Expected, ParseError> {
    let pattern = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::String(s)) => s,
        _ => match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(inner) => inner.replace("\\\"", "\""),
            None => text.to_string(),
        },
    };
    Regex::new(&pattern).map(Expected::Regex).map_err(|e| {
        err(
            at,
            format!(
                "invalid regex \"{pattern}\": {}",
                e.to_string().lines().last().unwrap_or("")
            ),
        )
    })
}

/// Orderings need a number, a duration or a percentage; other operators fall back to a bare word,
/// so `header X-Version startswith 2.` means the text "2.".
fn parse_value(text: &str, at: usize, op: Op) -> Result<Expected, ParseError> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        return Ok(Expected::Json(v));
    }
    let ordering = matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge);
    if let Some(p) = text.strip_suffix('%').filter(|_| ordering) {
        return p
            .trim()
            .parse::<f64>()
            .map(|v| Expected::Percent(v / 100.0))
            .map_err(|_| err(at, format!("invalid percentage \"{text}\"")));
    }
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        match crate::units::parse_duration(text) {
            Ok(d) => return Ok(Expected::Duration(d)),
            Err(why) if ordering => return Err(err(at, why.to_string())),
            Err(_) => {}
        }
    }
    if text.starts_with(['"', '[', '{']) {
        return Err(err(at, format!("invalid JSON value {text}")));
    }
    Ok(Expected::Word(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Assertion, ParseError> {
        Assertion::parse(s, Context::Response)
    }

    #[test]
    fn parses_the_documented_forms() {
        let a = p("status == 200").unwrap();
        assert!(matches!(a.query, Query::Status));
        assert!(matches!(a.expected, Some(Expected::Json(ref v)) if v == 200));
        let a = p("warn: time < 500ms").unwrap();
        assert_eq!(a.severity, Severity::Warn);
        assert!(
            matches!(a.expected, Some(Expected::Duration(d)) if d == Duration::from_millis(500))
        );
        let a = p(r#"json $.items[?@.name == "a b"].id exists"#).unwrap();
        assert_eq!(a.op, Op::Exists);
        let a = p("header content-type contains json").unwrap();
        assert!(matches!(a.expected, Some(Expected::Word(ref w)) if w == "json"));
        assert!(p("status in [200, 204]").is_ok());
        assert_eq!(a.expected_text(), "contains json");
        let l = Assertion::parse("errors < 1%", Context::Latency).unwrap();
        assert!(matches!(l.expected, Some(Expected::Percent(f)) if (f - 0.01).abs() < 1e-9));
        assert!(
            matches!(Assertion::parse("p99.9 < 1s", Context::Latency).unwrap().query, Query::Percentile(p) if p == 99.9)
        );
    }

    #[test]
    fn errors_point_at_the_column() {
        assert_eq!(p("stauts == 200").unwrap_err().offset, 0);
        assert!(
            p("stauts == 200")
                .unwrap_err()
                .message
                .contains("did you mean \"status\"")
        );
        let e = p("status === 200").unwrap_err();
        assert_eq!(
            (e.offset, e.message.starts_with("unknown operator \"===\"")),
            (7, true)
        );
        assert_eq!(p("status ==").unwrap_err().offset, 9);
        assert_eq!(p("body matches ([a-z]").unwrap_err().offset, 13);
        assert_eq!(p("json $..[ == 1").unwrap_err().offset, 5);
        assert!(
            p("status in 200")
                .unwrap_err()
                .message
                .contains("JSON array")
        );
        assert!(p("p95 < 1s").is_err());
        assert!(
            matches!(p("header v startswith 2.").unwrap().expected, Some(Expected::Word(ref w)) if w == "2.")
        );
        assert!(p("time < 5").unwrap_err().message.contains("needs a unit"));
    }

    #[test]
    fn each_kind_has_its_own_facts() {
        let dns = Assertion::parse("answers contains \"10.0.3.7\"", Context::Dns).unwrap();
        assert!(matches!(dns.query, Query::Fact("answers")));
        assert!(Assertion::parse("ttl <= 300", Context::Dns).is_ok());
        assert!(Assertion::parse("time < 1s", Context::Tcp).is_ok());
        let typo = Assertion::parse("baner matches ^220", Context::Tcp).unwrap_err();
        assert!(
            typo.message.contains("did you mean \"banner\""),
            "{}",
            typo.message
        );
        assert!(Assertion::parse("status == 200", Context::WebSocket).is_err());
        assert!(Assertion::parse("banner exists", Context::Response).is_err());
    }
}
