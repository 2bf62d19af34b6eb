//! Building a check's job: interpolating its strings (with positioned errors) and turning the
//! request parts every kind shares into a [`Request`]. Each kind's own `build` uses [`Build`].

use bytes::Bytes;
use url::Url;

use super::flow::BodyTemplate;
use super::read::{BodySpec, RequestSpec};
use crate::assert::{Assertion, Context, Scope, interpolate};
use crate::doc::{Diagnostic, Node, Spanned, Value};
use crate::net::Request;

/// What building a plan found: errors stop it, warnings are shown, and values learnt on the way
/// (passwords in URLs) are hidden like secrets.
#[derive(Debug, Default)]
pub struct Diags {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    pub learnt: Vec<String>,
}

impl Diags {
    pub fn push(&mut self, d: Diagnostic) {
        self.errors.push(d);
    }

    /// The errors found so far, to tell whether a part added any.
    pub(crate) fn errors_so_far(&self) -> usize {
        self.errors.len()
    }
}

/// What a kind's `build` works with: the variables in scope, where problems go, and the check's
/// common request settings.
pub struct Build<'a> {
    pub scope: &'a Scope,
    pub diags: &'a mut Diags,
    /// Requests may go over a connection whose certificate failed verification.
    pub insecure: bool,
    pub max_body: u64,
}

impl Build<'_> {
    /// A GET of `url` with the check's common settings.
    pub fn request(&self, url: Url) -> Request {
        Request {
            insecure: self.insecure,
            max_body: self.max_body,
            ..Request::get(url)
        }
    }

    /// A URL, interpolated and parsed.
    pub fn url(&mut self, s: &Spanned<String>) -> Option<Url> {
        render_url(self.scope, s, self.diags)
    }

    /// A URL with one of `schemes` (`ws`, `wss`), interpolated and parsed.
    pub fn url_with(&mut self, s: &Spanned<String>, schemes: &[&str]) -> Option<Url> {
        render_url_of(self.scope, s, schemes, self.diags)
    }

    /// Text, interpolated; the raw text stands in after an error.
    pub fn text(&mut self, s: &Spanned<String>) -> String {
        render(self.scope, s, self.diags).text
    }

    /// A whole request: URL, method, headers and body.
    pub(crate) fn request_of(&mut self, spec: &RequestSpec) -> Option<Request> {
        let (insecure, max_body) = (self.insecure, self.max_body);
        let base = move |url: Url| Request {
            insecure,
            max_body,
            ..Request::get(url)
        };
        render_request(self.scope, spec, &base, self.diags)
    }

    /// Assertions, interpolated and parsed.
    pub fn expect(&mut self, list: &[Spanned<String>], ctx: Context) -> Vec<Assertion> {
        render_expect(self.scope, list, ctx, self.diags)
    }

    /// A problem at `span`.
    pub fn error(&mut self, span: std::ops::Range<usize>, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, message.into()));
    }
}

/// Renders a template, recording a positioned diagnostic on failure.
pub(crate) fn try_render(
    scope: &Scope,
    s: &Spanned<String>,
    diags: &mut Diags,
) -> Option<crate::assert::Rendered> {
    interpolate(&s.value, scope)
        .map_err(|e| {
            let at = s.span.start + 1 + e.offset;
            diags.push(Diagnostic::new(at..at + e.len, e.message));
        })
        .ok()
}

/// Like [`try_render`], for values whose later use cannot fail: the raw text stands in.
pub(crate) fn render(
    scope: &Scope,
    s: &Spanned<String>,
    diags: &mut Diags,
) -> crate::assert::Rendered {
    try_render(scope, s, diags).unwrap_or_else(|| crate::assert::Rendered {
        text: s.value.clone(),
        uses_secret: false,
    })
}

/// Renders and parses a URL, with the check's context in the message.
pub(crate) fn render_url(scope: &Scope, s: &Spanned<String>, diags: &mut Diags) -> Option<Url> {
    render_url_of(scope, s, HTTP_SCHEMES, diags)
}

/// The schemes an HTTP check's URL may use.
const HTTP_SCHEMES: &[&str] = &["http", "https"];

/// Renders and parses a URL whose scheme is one of `schemes`.
fn render_url_of(
    scope: &Scope,
    s: &Spanned<String>,
    schemes: &[&str],
    diags: &mut Diags,
) -> Option<Url> {
    let rendered = try_render(scope, s, diags)?;
    let url = check_scheme(&rendered.text, s, schemes, diags)?;
    if let Some(password) = url.password() {
        // Sent as Basic auth to this origin only, and hidden like a secret everywhere.
        let user = url.username();
        diags.learnt.push(format!("{user}:{password}"));
        diags.learnt.push(password.to_string());
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        diags
            .learnt
            .push(format!("{}:{}", decode(user), decode(password)));
        diags.learnt.push(decode(password));
        if !userinfo_from_secrets(&s.value) {
            diags.warnings.push(Diagnostic::new(
                s.span.clone(),
                "the URL holds a password in clear text: move it to [secrets] and write {{ secrets.NAME }}"
                    .into(),
            ));
        }
    }
    Some(url)
}

/// True when the userinfo of a URL template takes its password from `{{ secrets.NAME }}`.
pub(crate) fn userinfo_from_secrets(template: &str) -> bool {
    let rest = template.split_once("://").map_or(template, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .is_some_and(|(_, password)| password.contains("{{") && password.contains("secrets."))
}

/// Parses a rendered URL; only http:// and https:// are accepted.
pub(crate) fn check_url(text: &str, s: &Spanned<String>, diags: &mut Diags) -> Option<Url> {
    check_scheme(text, s, HTTP_SCHEMES, diags)
}

fn check_scheme(
    text: &str,
    s: &Spanned<String>,
    schemes: &[&str],
    diags: &mut Diags,
) -> Option<Url> {
    match Url::parse(text) {
        Ok(u) if schemes.contains(&u.scheme()) => Some(u),
        Ok(u) => {
            let allowed: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
            let msg = format!(
                "URL \"{text}\" must be {}, not {}://",
                allowed.join(" or "),
                u.scheme()
            );
            diags.push(Diagnostic::new(s.span.clone(), msg));
            None
        }
        Err(e) => {
            diags.push(Diagnostic::new(
                s.span.clone(),
                format!("invalid URL \"{text}\": {e}"),
            ));
            None
        }
    }
}

pub(crate) fn render_expect(
    scope: &Scope,
    list: &[Spanned<String>],
    ctx: Context,
    diags: &mut Diags,
) -> Vec<Assertion> {
    let mut assertions: Vec<Assertion> = list
        .iter()
        .filter_map(|a| {
            let text = try_render(scope, a, diags)?.text;
            // Shape errors were reported when the file was read; this only catches interpolated values.
            Assertion::parse(&text, ctx)
                .map_err(|e| {
                    diags.push(Diagnostic::new(
                        a.span.clone(),
                        format!("invalid assertion after interpolation: {}", e.message),
                    ))
                })
                .ok()
        })
        .collect();
    // Kept for as long as the agent runs: no spare capacity per check.
    assertions.shrink_to_fit();
    assertions
}

/// Renders a request: URL, method, headers and body.
pub(crate) fn render_request(
    scope: &Scope,
    spec: &RequestSpec,
    base: &dyn Fn(Url) -> Request,
    diags: &mut Diags,
) -> Option<Request> {
    let url = render_url(scope, &spec.url, diags);
    let mut secret_headers = Vec::new();
    let mut headers: Vec<(String, String)> = spec
        .headers
        .iter()
        .map(|(k, v)| {
            let rendered = render(scope, v, diags);
            if rendered.uses_secret {
                secret_headers.push(k.to_ascii_lowercase());
            }
            check_header(k, &rendered.text, v, diags);
            (k.clone(), rendered.text)
        })
        .collect();
    let body = spec
        .body
        .as_ref()
        .map(|b| render_body(scope, b, &mut headers, diags))
        .unwrap_or_default();
    let method = spec.method.parse().unwrap_or(http::Method::GET);
    Some(Request {
        method,
        headers,
        body,
        secret_headers,
        ..base(url?)
    })
}

/// A header must be valid HTTP, so the problem shows up in `validate` and not as a failed run.
pub(crate) fn check_header(name: &str, value: &str, at: &Spanned<String>, diags: &mut Diags) {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        diags.push(Diagnostic::new(
            at.span.clone(),
            format!("invalid header name \"{name}\""),
        ));
    } else if http::HeaderValue::from_str(value).is_err() {
        diags.push(Diagnostic::new(
            at.span.clone(),
            format!("header \"{name}\": the value holds characters HTTP does not allow"),
        ));
    }
}

/// `example.com:8443` → (`example.com`, 8443); a bare host means port 443; `[::1]:443` works.
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 443,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        None if !s.is_empty() => Some((s.to_string(), 443)),
        _ => None,
    }
}

pub(crate) fn render_body(
    scope: &Scope,
    body: &BodySpec,
    headers: &mut Vec<(String, String)>,
    diags: &mut Diags,
) -> Bytes {
    body_template(scope, Some(body), headers, diags).to_bytes()
}

/// A TOML value as JSON, with every string interpolated.
pub(crate) fn to_json(scope: &Scope, node: &Node, diags: &mut Diags) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Str(s) => J::String(
            render(
                scope,
                &Spanned {
                    span: node.span.clone(),
                    value: s.clone(),
                },
                diags,
            )
            .text,
        ),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Bool(b) => J::Bool(*b),
        Value::Datetime(d) => J::String(d.clone()),
        Value::Array(items) => J::Array(items.iter().map(|n| to_json(scope, n, diags)).collect()),
        Value::Table(entries) => J::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_json(scope, &e.node, diags)))
                .collect(),
        ),
    }
}

pub(crate) fn body_template(
    scope: &Scope,
    body: Option<&BodySpec>,
    headers: &mut Vec<(String, String)>,
    diags: &mut Diags,
) -> BodyTemplate {
    let mut set_type = |t: &str| {
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("Content-Type".into(), t.into()));
        }
    };
    match body {
        None => BodyTemplate::Empty,
        Some(BodySpec::Raw(s)) => BodyTemplate::Raw(render(scope, s, diags).text),
        Some(BodySpec::Json(node)) => {
            set_type("application/json");
            BodyTemplate::Json(to_json(scope, node, diags))
        }
        Some(BodySpec::Form(fields)) => {
            set_type("application/x-www-form-urlencoded");
            BodyTemplate::Form(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), render(scope, v, diags).text))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("example.com"),
            Some(("example.com".into(), 443))
        );
        assert_eq!(
            split_host_port("example.com:8443"),
            Some(("example.com".into(), 8443))
        );
        assert_eq!(split_host_port("[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(split_host_port("example.com:x"), None);
        assert_eq!(split_host_port(""), None);
    }
}
