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
        if self.on {
            format!("\x1b[{code}m{t}\x1b[0m")
        } else {
            t.to_string()
        }
    }
}

pub fn write(r: &Report, color: bool, w: &mut dyn Write) -> io::Result<()> {
    let p = Paint { on: color };
    let target = if r.target.is_empty() {
        String::new()
    } else {
        format!(" · {}", r.target)
    };
    writeln!(
        w,
        "{}",
        p.bold(&format!(
            "shipwatch check · {}{target} · {}",
            r.environment,
            r.started_rfc3339()
        ))
    )?;
    writeln!(w)?;
    let name_w = r
        .checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        w,
        "  {:<7}  {:<name_w$}  {:<8}  {:>9}",
        "STATUS", "CHECK", "KIND", "TIME"
    )?;
    for c in &r.checks {
        writeln!(
            w,
            "  {} {}  {:<name_w$}  {:<8}  {:>7.1}ms{}",
            p.mark(c.status),
            p.status(c.status),
            c.name,
            c.kind,
            ms(c.duration),
            note(c)
        )?;
        for a in c.attempts.iter().filter(|_| c.attempts.len() > 1) {
            writeln!(
                w,
                "      attempt {} at {:.1}s: {} ({})",
                a.number,
                a.at_s,
                a.status.as_str(),
                a.summary
            )?;
        }
    }
    let bad = notable(r);
    if !bad.is_empty() {
        writeln!(w)?;
        writeln!(w, "{}", p.bold("Findings to look at:"))?;
        for (c, f) in bad {
            writeln!(
                w,
                "  {} {} {}: {}",
                p.status(f.status),
                c.name,
                f.id,
                f.message
            )?;
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
        "Sign-off: {} · {} checks: {} pass, {} warn, {} fail, {} error in {:.1}ms",
        p.bold(&r.status().as_str().to_uppercase()),
        r.checks.len(),
        s.pass,
        s.warn,
        s.fail,
        s.error,
        ms(r.duration)
    )
}

/// A short note after a check's line: why it could not run, or the fact a reader wants at a glance.
fn note(c: &crate::runner::Outcome) -> String {
    if let Some(e) = &c.error {
        return format!("  {}: {}", e.kind, e.message);
    }
    let mut parts = Vec::new();
    if let (Some(v), Some(d)) = (c.details.get("version"), c.details.get("days_left")) {
        parts.push(format!(
            "{}, certificate expires in {d} days",
            v.as_str().unwrap_or("")
        ));
    }
    if let (Some(g), Some(s)) = (c.details.get("grade"), c.details.get("score")) {
        parts.push(format!("grade {} (score {s})", g.as_str().unwrap_or("?")));
    }
    if c.attempts.len() > 1 {
        parts.push(format!("after {} attempts", c.attempts.len()));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("  {}", parts.join("; "))
    }
}
