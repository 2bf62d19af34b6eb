//! `--format github`: a GitHub Actions workflow command per failing finding (`::error`) and per
//! warning (`::warning`), so they show as annotations on the run and, with the config file,
//! on the line of the check that found them. The Markdown report goes to the job summary.

use std::io::{self, Write};

use super::{Report, notable};
use crate::outcome::Status;

/// The config file the checks came from, to point each annotation at its check's line.
pub struct Source<'a> {
    pub path: &'a str,
    pub text: &'a str,
}

impl Source<'_> {
    /// The line of `name = "CHECK"`, 1-based.
    fn line_of(&self, check: &str) -> Option<usize> {
        let wanted = [format!("name = \"{check}\""), format!("name = '{check}'")];
        self.text
            .lines()
            .position(|l| wanted.iter().any(|w| l.trim() == w))
            .map(|i| i + 1)
    }
}

/// Escapes a message the way the runner unescapes it.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value (`file`, `title`).
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

pub fn write(r: &Report, source: Option<&Source<'_>>, w: &mut dyn Write) -> io::Result<()> {
    for c in r.checks.iter().filter(|c| c.error.is_some()) {
        let e = c
            .error
            .as_ref()
            .map(|e| e.message.as_str())
            .unwrap_or_default();
        let title = format!("{}: could not run", r.label(c));
        writeln!(w, "::error {}::{}", props(source, &c.name, &title), data(e))?;
    }
    for (c, f) in notable(r) {
        let level = if f.status == Status::Fail {
            "error"
        } else {
            "warning"
        };
        let title = format!("{} {}", r.label(c), f.id);
        let mut message = f.message.clone();
        if let (Some(e), Some(a)) = (&f.expected, &f.actual) {
            message.push_str(&format!("\nexpected: {e}\nactual: {a}"));
        }
        writeln!(
            w,
            "::{level} {}::{}",
            props(source, &c.name, &title),
            data(&message)
        )?;
    }
    let s = r.summary();
    writeln!(
        w,
        "shipwatch: {} · {} pass, {} warn, {} fail, {} error",
        r.status().as_str(),
        s.pass,
        s.warn,
        s.fail,
        s.error
    )
}

fn props(source: Option<&Source<'_>>, check: &str, title: &str) -> String {
    let mut p = Vec::new();
    if let Some(src) = source {
        p.push(format!("file={}", property(src.path)));
        if let Some(line) = src.line_of(check) {
            p.push(format!("line={line}"));
        }
    }
    p.push(format!("title={}", property(title)));
    p.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_properties_are_escaped_as_the_runner_expects() {
        assert_eq!(data("50% down\nnow"), "50%25 down%0Anow");
        assert_eq!(property("a: b, c"), "a%3A b%2C c");
        let src = Source {
            path: "shipwatch.toml",
            text: "[[check]]\nname = \"api\"\n\n[[check]]\n  name = \"web\"\n",
        };
        assert_eq!(src.line_of("web"), Some(5));
        assert_eq!(src.line_of("nope"), None);
    }
}
