//! Redaction: secret and captured values are replaced before anything leaves the process, in the
//! forms a target is likely to echo them back in: as sent, base64 (standard and URL-safe, at any
//! alignment inside a longer value such as `user:password`), percent-encoded (`%20` and `+`
//! forms), and escaped for a JSON string or for HTML.

use std::borrow::Cow;

/// The text that stands in for a secret everywhere.
pub const REDACTED: &str = "‹redacted›";

/// Values shorter than this cannot be hidden without shredding every report.
pub const MIN_SECRET_LEN: usize = 3;

/// The set of values that must never be shown. Cloned into every output path.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// Adds a value to hide, with its encodings. Values shorter than [`MIN_SECRET_LEN`] are
    /// ignored: the configuration warns about them instead.
    pub fn add(&mut self, value: &str) {
        if value.len() < MIN_SECRET_LEN {
            return;
        }
        let mut forms = vec![value.to_string()];
        forms.extend(encodings(value).into_iter().filter(|f| f.len() >= 4));
        for f in forms {
            if !self.values.contains(&f) {
                self.values.push(f);
            }
        }
        // Longest first, so a secret that contains another is hidden whole.
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every known value replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = Cow::Owned(out.replace(v.as_str(), REDACTED));
            }
        }
        out
    }

    /// Redacts a string in place.
    pub(crate) fn scrub(&self, text: &mut String) {
        if let Cow::Owned(s) = self.redact(text) {
            *text = s;
        }
    }
}

/// The forms a value takes when a server echoes it back encoded.
fn encodings(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    for alphabet in [STANDARD, URL_SAFE] {
        for align in 0..3 {
            out.push(base64_core(v.as_bytes(), align, alphabet));
        }
    }
    out.push(percent(v, false, false));
    out.push(percent(v, false, true));
    out.push(percent(v, true, false));
    let json = serde_json::to_string(v).unwrap_or_default();
    out.push(json[1..json.len().saturating_sub(1).max(1)].to_string());
    out.push(json_ascii(v));
    out.push(html(v, "&#39;"));
    out.push(html(v, "&#x27;"));
    out.retain(|f| f != v && !f.is_empty());
    out.sort();
    out.dedup();
    out
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The base64 characters that depend only on `v` when it starts `align` bytes into a 3-byte
/// group: what any encoding of a longer value containing `v` at that alignment also holds.
fn base64_core(v: &[u8], align: usize, alphabet: &[u8; 64]) -> String {
    let mut bytes = vec![0u8; align];
    bytes.extend_from_slice(v);
    let (first_bit, end_bit) = (8 * align, 8 * (align + v.len()));
    let bit = |i: usize| bytes.get(i / 8).is_some_and(|b| b >> (7 - i % 8) & 1 == 1);
    let mut out = String::new();
    let mut j = 0;
    while 6 * j + 6 <= end_bit {
        if 6 * j >= first_bit {
            let idx = (0..6).fold(0usize, |acc, k| acc << 1 | usize::from(bit(6 * j + k)));
            out.push(char::from(alphabet[idx]));
        }
        j += 1;
    }
    out
}

/// Standard base64 with padding, for `Authorization: Basic`.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(STANDARD[(v >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encoding of everything but unreserved characters; `plus` writes a space as `+`.
fn percent(v: &str, lower: bool, plus: bool) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            b' ' if plus => out.push('+'),
            _ if lower => out.push_str(&format!("%{b:02x}")),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A JSON string body as some servers write it: every non-ASCII character and `/` escaped.
fn json_ascii(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out
}

fn html(v: &str, apostrophe: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(apostrophe),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8], alphabet: &[u8; 64]) -> String {
        let standard = base64(s);
        if alphabet == URL_SAFE {
            standard.replace('+', "-").replace('/', "_")
        } else {
            standard
        }
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn hides_every_occurrence() {
        let mut r = Redactor::default();
        r.add("hunter2");
        r.add("x");
        assert_eq!(
            r.redact("pw=hunter2&again=hunter2"),
            "pw=‹redacted›&again=‹redacted›"
        );
        assert_eq!(r.redact("x marks"), "x marks");
    }

    #[test]
    fn hides_base64_at_any_alignment() {
        let secret = "s3cr3t-T0ken/+?";
        let mut r = Redactor::default();
        r.add(secret);
        for prefix in ["", "a", "ab", "user:", "Basic "] {
            for alphabet in [STANDARD, URL_SAFE] {
                let encoded = b64(format!("{prefix}{secret}").as_bytes(), alphabet);
                let shown = r.redact(&encoded);
                assert!(shown.contains(REDACTED), "{prefix:?}: {encoded} → {shown}");
            }
        }
    }

    #[test]
    fn hides_url_json_and_html_forms() {
        let secret = "p@ss word/\"é<&>'";
        let mut r = Redactor::default();
        r.add(secret);
        let forms = [
            "p%40ss%20word%2F%22%C3%A9%3C%26%3E%27".to_string(),
            "p%40ss+word%2F%22%C3%A9%3C%26%3E%27".to_string(),
            "p%40ss%20word%2f%22%c3%a9%3c%26%3e%27".to_string(),
            serde_json::to_string(secret).unwrap(),
            r#"p@ss word\/\"\u00e9<&>'"#.to_string(),
            "p@ss word/&quot;é&lt;&amp;&gt;&#39;".to_string(),
            "p@ss word/&quot;é&lt;&amp;&gt;&#x27;".to_string(),
        ];
        for f in forms {
            assert!(r.redact(&f).contains(REDACTED), "{f}");
        }
    }
}
