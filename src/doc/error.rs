//! Configuration diagnostics: positions, carets and "did you mean" suggestions.

use std::fmt;
use std::ops::Range;

/// One problem found in a configuration file, pointing at a byte range of the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub span: Range<usize>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(span: Range<usize>, message: String) -> Self {
        Diagnostic { span, message }
    }
}

/// Every problem in one file, ready to be shown as `file:line:col: message` with a caret.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub file: String,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// An error that is not about a position in a file, such as an unreadable path.
    pub fn plain(file: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            source: String::new(),
            diagnostics: vec![Diagnostic::new(0..0, message.into())],
        }
    }

    /// The 1-based line and column of a byte offset in the source.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.source, offset)
    }

    pub(crate) fn render_one(&self, d: &Diagnostic) -> String {
        if self.source.is_empty() {
            return format!("{}: {}", self.file, d.message);
        }
        let (line, col) = self.line_col(d.span.start);
        let text = self.source.lines().nth(line - 1).unwrap_or("");
        let width = d.span.end.saturating_sub(d.span.start).max(1);
        let width = width.min(text.chars().count().saturating_sub(col - 1).max(1));
        format!(
            "{}:{line}:{col}: {}\n{:>5} | {text}\n      | {}{}",
            self.file,
            d.message,
            line,
            " ".repeat(col - 1),
            "^".repeat(width)
        )
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{}", self.render_one(d))?;
        }
        let n = self.diagnostics.len();
        write!(
            f,
            "{n} error{} in {}",
            if n == 1 { "" } else { "s" },
            self.file
        )
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column (in characters) of `offset` in `src`.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..floor_char_boundary(src, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_suggestions() {
        assert_eq!(line_col("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_col("é=1", 2), (1, 2));
    }
}
