//! Redaction: secret and captured values are replaced before anything leaves the process.

use std::borrow::Cow;

/// The text that stands in for a secret everywhere.
pub const REDACTED: &str = "‹redacted›";

/// The set of values that must never be shown. Cloned into every output path.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// Adds a value to hide. Very short values are ignored: hiding "a" would shred every report.
    pub fn add(&mut self, value: &str) {
        if value.len() >= 3 && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
            // Longest first, so a secret that contains another is hidden whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
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
    pub fn scrub(&self, text: &mut String) {
        if let Cow::Owned(s) = self.redact(text) {
            *text = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
