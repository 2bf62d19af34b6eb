//! A forgiving, single-pass HTML tag scanner: enough to find assets, scripts and `<meta>` policies,
//! never a panic on bad HTML, and no allocation per tag, so a hostile page of a million tiny tags
//! costs time, not memory.
//!
//! It follows the HTML tokenizer where that changes which tags a browser sees: comments, doctypes
//! and processing instructions are skipped, a `>` inside a quoted attribute value does not end the
//! tag, and the text of raw-text elements (`<script>`, `<style>`, `<textarea>`, `<title>`, …) is not
//! read as markup. The content of `<template>` is reported with [`Tag::in_template`] set, because
//! browsers keep it out of the document.

use std::borrow::Cow;
use std::ops::ControlFlow;

/// A start tag, borrowed from the page.
#[derive(Debug, Clone, Copy)]
pub struct Tag<'a> {
    /// The name as written; compare with [`Tag::is`].
    pub name: &'a str,
    /// Everything between the name and the closing `>`.
    attrs: &'a str,
    /// Inside a `<template>` element, which is not part of the document.
    pub in_template: bool,
}

impl<'a> Tag<'a> {
    /// True when the tag's name is `name` (ASCII case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The first attribute called `name`, with character references decoded. A repeated
    /// attribute is ignored, as browsers do.
    pub(crate) fn attr(&self, name: &str) -> Option<Cow<'a, str>> {
        attributes(self.attrs)
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| decode(v))
    }

    /// True when the tag has an attribute called `name`, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        attributes(self.attrs).any(|(k, _)| k.eq_ignore_ascii_case(name))
    }
}

/// Elements whose content is text, not markup.
const RAW_TEXT: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
];

/// Calls `visit` for each start tag in document order; `visit` may stop the scan early.
pub(crate) fn scan<'a>(html: &'a str, mut visit: impl FnMut(&Tag<'a>) -> ControlFlow<()>) {
    let bytes = html.as_bytes();
    let mut i = 0;
    let mut template_depth = 0usize;
    while let Some(off) = memchr(b'<', &bytes[i..]) {
        i += off + 1;
        let rest = &html[i..];
        if let Some(after) = rest.strip_prefix("!--") {
            i += 3 + comment_end(after);
            continue;
        }
        match rest.as_bytes().first() {
            Some(b'!' | b'?') => {
                i += memchr(b'>', rest.as_bytes()).map_or(rest.len(), |e| e + 1);
                continue;
            }
            Some(b'/') => {
                let end = memchr(b'>', rest.as_bytes()).map_or(rest.len(), |e| e + 1);
                let name = tag_name(&rest[1..]);
                if name.eq_ignore_ascii_case("template") {
                    template_depth = template_depth.saturating_sub(1);
                }
                i += end;
                continue;
            }
            Some(c) if c.is_ascii_alphabetic() => {}
            _ => continue,
        }
        let name = tag_name(rest);
        let (attrs, len) = tag_body(&rest[name.len()..]);
        i += name.len() + len;
        let tag = Tag {
            name,
            attrs,
            in_template: template_depth > 0,
        };
        if visit(&tag).is_break() {
            return;
        }
        if tag.is("template") {
            template_depth += 1;
        } else if let Some(raw) = RAW_TEXT.iter().find(|r| tag.is(r)) {
            i += raw_text_end(&html[i..], raw);
        }
    }
}

/// Every start tag, collected: for tests and small pages. Prefer [`scan`].
pub fn tags(html: &str) -> Vec<Tag<'_>> {
    let mut out = Vec::new();
    scan(html, |t| {
        out.push(*t);
        ControlFlow::Continue(())
    });
    out
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

/// The length of a comment's body and its terminator; `<!-->` and `<!--->` end at once.
fn comment_end(after: &str) -> usize {
    if after.starts_with('>') {
        return 1;
    }
    if after.starts_with("->") {
        return 2;
    }
    after.find("-->").map_or(after.len(), |e| e + 3)
}

fn tag_name(s: &str) -> &str {
    let end = s
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(s.len());
    &s[..end]
}

/// The attribute text of a tag and the bytes consumed up to and including its `>`. Quoted values
/// may contain `>`.
fn tag_body(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    let mut after_eq = false;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'>' => return (&s[..i], i + 1),
            None if (c == b'"' || c == b'\'') && after_eq => quote = Some(c),
            None => {}
        }
        if quote.is_none() && !c.is_ascii_whitespace() {
            after_eq = c == b'=';
        }
        i += 1;
    }
    (s, s.len())
}

/// Bytes up to and including the end tag of a raw-text element, or the rest of the page.
fn raw_text_end(s: &str, name: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(off) = memchr(b'<', &b[i..]) {
        i += off;
        let rest = &b[i..];
        let close = rest.len() > name.len() + 2
            && rest[1] == b'/'
            && rest[2..2 + name.len()].eq_ignore_ascii_case(name.as_bytes())
            && matches!(
                rest[2 + name.len()],
                b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | 0x0c
            );
        if close {
            return i + memchr(b'>', rest).map_or(rest.len(), |e| e + 1);
        }
        i += 1;
    }
    s.len()
}

/// The attributes of a tag body, as raw (name, value) slices; a name without `=` has "".
fn attributes(s: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = s;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
            if rest.is_empty() {
                return None;
            }
            let key_len = rest
                .char_indices()
                .skip(1)
                .find(|(_, c)| c.is_ascii_whitespace() || *c == '=' || *c == '/')
                .map_or(rest.len(), |(i, _)| i);
            let key = &rest[..key_len];
            rest = rest[key_len..].trim_start_matches(|c: char| c.is_ascii_whitespace());
            let Some(v) = rest.strip_prefix('=') else {
                return Some((key, ""));
            };
            let v = v.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let (val, after) = match v.as_bytes().first() {
                Some(&q @ (b'"' | b'\'')) => {
                    let body = &v[1..];
                    let close = memchr(q, body.as_bytes()).unwrap_or(body.len());
                    (&body[..close], body.get(close + 1..).unwrap_or(""))
                }
                _ => {
                    let e = v.find(|c: char| c.is_ascii_whitespace()).unwrap_or(v.len());
                    (&v[..e], &v[e..])
                }
            };
            rest = after;
            if key == "=" {
                // A stray `=` with no name before it: skip what it introduced.
                continue;
            }
            return Some((key, val));
        }
    })
}

/// Decodes the character references an attribute value is likely to hold.
pub(crate) fn decode(v: &str) -> Cow<'_, str> {
    if !v.contains('&') {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match reference(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// One character reference at the start of `s`: the character and the bytes it used.
fn reference(s: &str) -> Option<(char, usize)> {
    const NAMED: &[(&str, char)] = &[
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&apos;", '\''),
        ("&nbsp;", '\u{a0}'),
        ("&amp", '&'),
    ];
    if let Some((n, c)) = NAMED.iter().find(|(n, _)| s.starts_with(n)) {
        return Some((*c, n.len()));
    }
    let num = s.strip_prefix("&#")?;
    let (digits, radix, skip) = match num.strip_prefix(['x', 'X']) {
        Some(hex) => (hex, 16, 3),
        None => (num, 10, 2),
    };
    let len = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if len == 0 {
        return None;
    }
    let code = u32::from_str_radix(&digits[..len], radix).ok()?;
    let semi = usize::from(digits[len..].starts_with(';'));
    Some((
        char::from_u32(code).unwrap_or('\u{fffd}'),
        skip + len + semi,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(html: &str) -> Vec<String> {
        tags(html).iter().map(|t| t.name.to_string()).collect()
    }

    #[test]
    fn skips_comments_raw_text_and_quoted_brackets() {
        let html = r#"<!doctype html><!-- <script src="/c.js"> --><a title="x > y" href=/p>
            <script>if (a < b) document.write("<img src=/no.png>")</script >
            <STYLE>p > a { }</style><textarea><b>no</b></textarea><img src="/yes.png"><!---->
            <?xml bogus?><p>"#;
        assert_eq!(
            names(html),
            ["a", "script", "STYLE", "textarea", "img", "p"]
        );
        let a = tags(html)[0];
        assert_eq!(a.attr("title").as_deref(), Some("x > y"));
        assert_eq!(a.attr("HREF").as_deref(), Some("/p"));
    }

    #[test]
    fn attributes_decode_and_first_wins() {
        let t = tags(r#"<meta content="a&amp;b &#x41;&#66" content=no http-equiv name = 'q'>"#)[0];
        assert_eq!(t.attr("content").as_deref(), Some("a&b AB"));
        assert!(t.has("http-equiv"));
        assert_eq!(t.attr("http-equiv").as_deref(), Some(""));
        assert_eq!(t.attr("name").as_deref(), Some("q"));
        assert_eq!(t.attr("missing"), None);
    }

    #[test]
    fn template_content_is_marked() {
        let html =
            "<script src=a></script><template><script src=b></script></template><script src=c>";
        let flags: Vec<bool> = tags(html)
            .iter()
            .filter(|t| t.is("script"))
            .map(|t| t.in_template)
            .collect();
        assert_eq!(flags, [false, true, false]);
    }

    #[test]
    fn never_panics_on_broken_input() {
        for s in [
            "<",
            "<a",
            "<a b='",
            "<!--",
            "<script>",
            "</",
            "<a =x =>",
            "&#",
            "<x y=\u{e9}>",
        ] {
            let _ = tags(s);
            let _ = decode(s);
        }
    }
}
