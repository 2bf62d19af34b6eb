//! The grade's `subresource-integrity` test: how the page's `<script src>` elements load.
//!
//! As in the Observatory: a script from the same registrable domain as the scanned host (ICANN
//! section of the Public Suffix List) counts as the site's own, even over another subdomain; a
//! protocol-relative `//host/x.js` counts as foreign and not secure; one same-origin script with
//! integrity earns the bonus; and foreign scripts that all carry integrity over HTTPS earn it too,
//! even when the site's own scripts carry none.

use std::ops::ControlFlow;

use crate::security::site::registrable_domain;

const ORDER: &[&str] = &[
    "sri-implemented-and-all-scripts-loaded-securely",
    "sri-implemented-and-external-scripts-loaded-securely",
    "sri-implemented-but-external-scripts-not-loaded-securely",
    "sri-not-implemented-but-external-scripts-loaded-securely",
    "sri-not-implemented-and-external-scripts-not-loaded-securely",
    "sri-not-implemented-response-not-html",
];

fn worse(new: &'static str, old: Option<&'static str>) -> &'static str {
    let rank = |r: &str| ORDER.iter().position(|x| *x == r);
    match old {
        Some(o) if rank(new) <= rank(o) => o,
        _ => new,
    }
}

/// Judges the page's scripts. `html` is `None` when the response is not HTML; `host` is the
/// scanned host name and `https` whether the session started on HTTPS.
pub(crate) fn judge(html: Option<&str>, host: &str, https: bool) -> &'static str {
    let Some(html) = html else {
        return "sri-not-implemented-response-not-html";
    };
    let site = registrable_domain(host, true);
    let mut result: Option<&'static str> = None;
    let mut scripts = 0usize;
    let mut foreign_seen = false;
    crate::html::scan(html, |tag| {
        if !tag.is("script") || tag.in_template {
            return ControlFlow::Continue(());
        }
        scripts += 1;
        let Some(raw) = tag.attr("src") else {
            return ControlFlow::Continue(());
        };
        let src = reflected_src(&raw);
        let integrity = tag.attr("integrity").is_some_and(|i| !i.is_empty());
        let protocol_relative =
            src.len() > 2 && src.starts_with("//") && !src[2..].starts_with('/');
        let full = src.starts_with("http://") || src.starts_with("https://");
        let same_site = protocol_relative
            || !full
            || url::Url::parse(&src)
                .ok()
                .and_then(|u| u.host_str().map(|h| registrable_domain(h, true)))
                .is_some_and(|d| d == site);
        // A relative path is the site's own; a full URL is when its registrable domain matches.
        let own = !protocol_relative && (!full || same_site);
        let secure = src.starts_with("https://") || (!full && !protocol_relative && https);
        if own {
            if integrity && secure && result.is_none() {
                result = Some("sri-implemented-and-all-scripts-loaded-securely");
            }
            return ControlFlow::Continue(());
        }
        foreign_seen = true;
        let verdict = match (integrity, secure) {
            (true, false) => Some("sri-implemented-but-external-scripts-not-loaded-securely"),
            (false, true) => Some("sri-not-implemented-but-external-scripts-loaded-securely"),
            (false, false) => Some("sri-not-implemented-and-external-scripts-not-loaded-securely"),
            (true, true) => None,
        };
        if let Some(v) = verdict {
            result = Some(worse(v, result));
        }
        ControlFlow::Continue(())
    });
    if scripts == 0 {
        return "sri-not-implemented-but-no-scripts-loaded";
    }
    result.unwrap_or(if foreign_seen {
        "sri-implemented-and-external-scripts-loaded-securely"
    } else {
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
    })
}

/// What a DOM's `script.src` gives for a document with no base URL: an absolute URL normalised,
/// anything else (including a relative path) as written. An empty value resolves to `about:blank`.
fn reflected_src(raw: &str) -> String {
    if raw.trim().is_empty() {
        return "about:blank".into();
    }
    match url::Url::parse(raw) {
        Ok(u) => u.to_string(),
        Err(_) => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sri(html: &str) -> &'static str {
        judge(Some(html), "www.example.com", true)
    }

    #[test]
    fn classes() {
        assert_eq!(
            sri("<p>no scripts</p>"),
            "sri-not-implemented-but-no-scripts-loaded"
        );
        assert_eq!(
            sri("<script>inline()</script>"),
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
        );
        assert_eq!(
            sri(
                r#"<script src="/a.js" integrity="sha384-x"></script><script src="/b.js"></script>"#
            ),
            "sri-implemented-and-all-scripts-loaded-securely"
        );
        assert_eq!(
            sri(r#"<script src="https://static.example.com/a.js"></script>"#),
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
            "a sibling subdomain is the same site"
        );
        assert_eq!(
            sri(
                r#"<script src="/a.js"></script><script src="https://cdn.other.net/x.js" integrity="sha384-x"></script>"#
            ),
            "sri-implemented-and-external-scripts-loaded-securely"
        );
        assert_eq!(
            sri(r#"<script src="https://cdn.other.net/x.js"></script>"#),
            "sri-not-implemented-but-external-scripts-loaded-securely"
        );
        assert_eq!(
            sri(r#"<script src="//cdn.other.net/x.js" integrity="sha384-x"></script>"#),
            "sri-implemented-but-external-scripts-not-loaded-securely"
        );
        assert_eq!(
            sri(
                r#"<script src="http://cdn.other.net/x.js"></script><script src="//x.net/y.js" integrity="a"></script>"#
            ),
            "sri-not-implemented-and-external-scripts-not-loaded-securely"
        );
        assert_eq!(
            judge(None, "x", true),
            "sri-not-implemented-response-not-html"
        );
    }
}
