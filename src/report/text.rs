//! The text report: a sign-off table, then what failed with expected vs actual, then one summary line.

use std::io::{self, Write};

use super::{Report, ms, notable};
use crate::probe::Status;

struct Paint {
    on: bool,
}

impl Paint {
    fn status(&self, s: Status) -> String {
        let (word, code) = match s {
            Status::Pass => ("pass", "32"),
            Status::Warn => ("WARN", "33"),
            Status::Fail => ("FAIL", "31"),
            Status::Error => ("ERROR", "35"),
        };
        self.wrap(&format!("{word:<5}"), code)
    }

    fn mark(&self, s: Status) -> String {
        let (m, code) = match s {
            Status::Pass => ("✓", "32"),
            Status::Warn => ("!", "33"),
            Status::Fail | Status::Error => ("✗", "31"),
        };
        self.wrap(m, code)
    }

    fn bold(&self, t: &str) -> String {
        self.wrap(t, "1")
    }

    fn wrap(&self, t: &str, code: &str) -> String {
        if self.on { format!("\x1b[{code}m{t}\x1b[0m") } else { t.to_string() }
    }
}

pub fn write(r: &Report, color: bool, w: &mut dyn Write) -> io::Result<()> {
    let p = Paint { on: color };
    let target = if r.target.is_empty() { String::new() } else { format!(" · {}", r.target) };
    writeln!(w, "{}", p.bold(&format!("shipwatch check · {}{target} · {}", r.environment, r.started_rfc3339())))?;
    writeln!(w)?;
    let name_w = r.checks.iter().map(|c| c.name.chars().count()).max().unwrap_or(5).max(5);
    writeln!(w, "    {:<name_w$}  {:<8}  {:<5}  {:>9}", "CHECK", "KIND", "STATE", "TIME")?;
    for c in &r.checks {
        let tries = if c.attempts.len() > 1 { format!("  (attempt {} of {})", c.attempts.len(), c.attempts.len()) } else { String::new() };
        let note = match &c.error {
            Some(e) => format!("  {}: {}", e.kind, e.message),
            None => tries,
        };
        writeln!(
            w,
            "  {} {:<name_w$}  {:<8}  {}  {:>7.1}ms{note}",
            p.mark(c.status),
            c.name,
            c.kind,
            p.status(c.status),
            ms(c.duration)
        )?;
        for a in c.attempts.iter().filter(|_| c.attempts.len() > 1) {
            writeln!(w, "      attempt {} at {:.1}s: {} ({})", a.number, a.at_s, a.status.as_str(), a.summary)?;
        }
    }
    let bad = notable(r);
    if !bad.is_empty() {
        writeln!(w)?;
        writeln!(w, "{}", p.bold("Findings to look at:"))?;
        for (c, f) in bad {
            writeln!(w, "  {} {} {}: {}", p.status(f.status), c.name, f.id, f.message)?;
            if let (Some(e), Some(a)) = (&f.expected, &f.actual) {
                writeln!(w, "          expected: {e}")?;
                writeln!(w, "          actual:   {a}")?;
            }
        }
    }
    let s = r.summary();
    writeln!(w)?;
    writeln!(
        w,
        "{} {} checks: {} pass, {} warn, {} fail, {} error in {:.1}ms",
        p.status(r.status()),
        r.checks.len(),
        s.pass,
        s.warn,
        s.fail,
        s.error,
        ms(r.duration)
    )
}
