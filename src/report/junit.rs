//! The JUnit report: one testsuite per check, one testcase per finding; could-not-run is `<error>`.

use std::io::{self, Write};

use super::{Report, ms};
use crate::outcome::{Finding, Outcome, Status};

/// Escapes text for XML attributes and content.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

pub fn write(r: &Report, w: &mut dyn Write) -> io::Result<()> {
    let tests: usize = r.checks.iter().map(|c| c.findings.len().max(1)).sum();
    let failures = r
        .checks
        .iter()
        .flat_map(|c| &c.findings)
        .filter(|f| f.status == Status::Fail)
        .count();
    let errors = r.checks.iter().filter(|c| c.error.is_some()).count();
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<testsuites name="shipwatch {}" tests="{tests}" failures="{failures}" errors="{errors}" time="{:.3}" timestamp="{}">"#,
        esc(&r.environment),
        r.duration.as_secs_f64(),
        r.started_rfc3339()
    )?;
    for c in &r.checks {
        suite(r, c, w)?;
    }
    writeln!(w, "</testsuites>")
}

/// One check as a `<testsuite>`: could-not-run as an `<error>`, then a case per finding, then
/// its `--wait` attempts.
fn suite(r: &Report, c: &Outcome, w: &mut dyn Write) -> io::Result<()> {
    let class = esc(&format!("{}.{}", r.env_of(c), c.name));
    let fails = c
        .findings
        .iter()
        .filter(|f| f.status == Status::Fail)
        .count();
    writeln!(
        w,
        r#"  <testsuite name="{}" tests="{}" failures="{fails}" errors="{}" time="{:.3}">"#,
        esc(&r.label(c)),
        c.findings.len().max(1),
        usize::from(c.error.is_some()),
        ms(c.duration) / 1000.0
    )?;
    if let Some(e) = &c.error {
        writeln!(
            w,
            r#"    <testcase name="{}.run" classname="{class}">"#,
            esc(c.kind)
        )?;
        writeln!(
            w,
            r#"      <error type="{}" message="{}"/>"#,
            esc(e.kind),
            esc(&e.message)
        )?;
        writeln!(w, "    </testcase>")?;
    }
    for f in &c.findings {
        case(f, &class, w)?;
    }
    attempts(c, w)?;
    writeln!(w, "  </testsuite>")
}

/// One finding as a `<testcase>`: a failure is a `<failure>`, a warning goes in `<system-out>`.
fn case(f: &Finding, class: &str, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        r#"    <testcase name="{}" classname="{class}">"#,
        esc(&f.id)
    )?;
    let detail = format!(
        "{}\nexpected: {}\nactual: {}",
        f.message,
        f.expected.as_deref().unwrap_or("-"),
        f.actual.as_deref().unwrap_or("-")
    );
    match f.status {
        Status::Fail => writeln!(
            w,
            r#"      <failure type="fail" message="{}">{}</failure>"#,
            esc(&f.message),
            esc(&detail)
        )?,
        Status::Warn => writeln!(
            w,
            "      <system-out>warning: {}</system-out>",
            esc(&detail)
        )?,
        _ => {}
    }
    writeln!(w, "    </testcase>")
}

/// A check's `--wait` attempts, when there was more than one.
fn attempts(c: &Outcome, w: &mut dyn Write) -> io::Result<()> {
    if c.attempts.len() < 2 {
        return Ok(());
    }
    let lines: Vec<String> = c
        .attempts
        .iter()
        .map(|a| {
            format!(
                "attempt {} at {:.1}s: {} ({})",
                a.number,
                a.at_s,
                a.status.as_str(),
                a.summary
            )
        })
        .collect();
    writeln!(w, "    <system-out>{}</system-out>", esc(&lines.join("\n")))
}
