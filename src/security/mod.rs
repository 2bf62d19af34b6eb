//! Parsers and judges for security headers: CSP, HSTS, cookies, Permissions-Policy, and the
//! Observatory-style grade. Pure functions over header values, so they can be fuzzed.

pub mod cookies;
pub mod csp;
pub mod grade;
pub mod hsts;
pub mod permissions;
pub mod referrer;
pub mod site;

/// Why a header value could not be parsed, in a sentence that quotes the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// All values of a header, in order; a header sent twice counts twice.
pub fn values<'a>(headers: &'a http::HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .collect()
}
