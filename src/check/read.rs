//! Reading the keys every kind shares from a `[[check]]` table: a request (`url`, `method`,
//! `headers` and one body) and `expect`, each problem reported with its position.

use crate::assert::{Assertion, Context};
use crate::doc::{Diagnostics, Node, Spanned, Table};

/// The body of a request: raw text, a JSON document, or form fields.
#[derive(Debug, Clone)]
pub enum BodySpec {
    Raw(Spanned<String>),
    Json(Node),
    Form(Vec<(String, Spanned<String>)>),
}

/// A request as written: the part shared by `http` checks and a `headers` check's login.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub url: Spanned<String>,
    pub method: String,
    pub headers: Vec<(String, Spanned<String>)>,
    pub body: Option<BodySpec>,
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

pub(crate) fn required(
    t: &mut Table<'_>,
    key: &str,
    diags: &mut Diagnostics,
) -> Option<Spanned<String>> {
    let v = t.str(key, diags);
    if v.is_none() {
        diags.error(t.span(), format!("{}: missing `{key}`", t.path()));
    }
    v
}

/// Parses each assertion now, so a typo is a configuration error pointing at its column.
pub(crate) fn read_expect(
    t: &mut Table<'_>,
    ctx: Context,
    diags: &mut Diagnostics,
) -> Vec<Spanned<String>> {
    let list = t.str_list("expect", diags).unwrap_or_default();
    for a in &list {
        if let Err(e) = Assertion::parse(&a.value, ctx) {
            // +1 skips the opening quote of the TOML string.
            let at = a.span.start + 1 + e.offset;
            diags.error(
                at..a.span.end.saturating_sub(1).max(at + 1),
                format!("invalid assertion: {}", e.message),
            );
        }
    }
    list
}

pub(crate) fn read_method(t: &mut Table<'_>, diags: &mut Diagnostics) -> String {
    match t.str("method", diags) {
        Some(m) if METHODS.contains(&m.value.to_ascii_uppercase().as_str()) => {
            m.value.to_ascii_uppercase()
        }
        Some(m) => {
            let msg = format!(
                "unknown method \"{}\", expected one of {}",
                m.value,
                METHODS.join(", ")
            );
            diags.error(m.span, msg);
            "GET".into()
        }
        None => "GET".into(),
    }
}

/// The keys [`read_request`] reads.
pub(crate) const REQUEST_KEYS: &[&str] = &["url", "method", "headers", "body", "json", "form"];

/// The keys of a request: `url`, `method`, `headers`, and one of `body`, `json` or `form`.
pub(crate) fn read_request(t: &mut Table<'_>, diags: &mut Diagnostics) -> Option<RequestSpec> {
    let url = required(t, "url", diags);
    let method = read_method(t, diags);
    let headers = t.str_map("headers", diags).unwrap_or_default();
    let mut bodies = Vec::new();
    if let Some(b) = t.str("body", diags) {
        bodies.push(BodySpec::Raw(b));
    }
    if let Some(j) = t.get("json") {
        bodies.push(BodySpec::Json(j.clone()));
    }
    if let Some(f) = t.str_map("form", diags) {
        bodies.push(BodySpec::Form(f));
    }
    if bodies.len() > 1 {
        diags.error(
            t.span(),
            format!("{}: use only one of `body`, `json` and `form`", t.path()),
        );
    }
    Some(RequestSpec {
        url: url?,
        method,
        headers,
        body: bodies.into_iter().next(),
    })
}
