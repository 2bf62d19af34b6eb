//! The grade's `content-security-policy` test, with the Observatory's own policy parser.
//!
//! This parser is deliberately not [`crate::security::csp`]: the grade must read a policy exactly
//! as the Observatory does, quirks included. Header values and `<meta http-equiv>` policies are
//! parsed together; a policy shorter than `img-src` is invalid; a directive repeated within one
//! policy is invalid, except `report-uri` and `report-to`, whose repetition only costs the bonus;
//! several policies are combined by keeping the sources that appear in both.

use std::cmp::Ordering;
use std::collections::BTreeSet;

/// Sources that let almost anything load.
const BROAD: &[&str] = &[
    "ftp:",
    "http:",
    "https:",
    "*",
    "http://*",
    "http://*.*",
    "https://*",
    "https://*.*",
];
const UNSAFE_INLINE: &[&str] = &["'unsafe-inline'", "data:"];
const NONCES_HASHES: &[&str] = &["'sha256-", "'sha384-", "'sha512-", "'nonce-"];
/// The shortest policy the Observatory accepts is one character shorter than `img-src`.
const SHORTEST: usize = "img-src".len() - 1;
/// Directives a `<meta>` policy cannot set.
const NOT_IN_META: &[&str] = &["frame-ancestors", "report-uri", "sandbox"];
const REPEATABLE: &[&str] = &["report-uri", "report-to"];

/// One parsed (and combined) policy: directives in the order first seen, each with its sources.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Parsed {
    directives: Vec<(String, BTreeSet<String>)>,
    /// `report-uri` or `report-to` appeared twice in one policy.
    pub repeated_report: bool,
}

impl Parsed {
    pub fn get(&self, name: &str) -> Option<&BTreeSet<String>> {
        self.directives
            .iter()
            .find(|(d, _)| d == name)
            .map(|(_, s)| s)
    }

    fn remove(&mut self, name: &str) {
        self.directives.retain(|(d, _)| d != name);
    }

    pub fn is_empty(&self) -> bool {
        self.directives.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Source {
    text: String,
    policy: usize,
    keep: bool,
}

/// Parses every policy in `list` into one; `Err` when any is invalid.
pub fn parse(list: &[String]) -> Result<Parsed, ()> {
    let clean: Vec<String> = list
        .iter()
        .map(|p| p.replace(['\r', '\n'], "").trim().to_string())
        .collect();
    if clean.is_empty() {
        return Ok(Parsed::default());
    }
    if clean.iter().any(|p| p.encode_utf16().count() < SHORTEST) {
        return Err(());
    }
    let mut map: Vec<(String, Vec<Source>)> = Vec::new();
    let mut repeated_report = false;
    for (index, policy) in clean.iter().enumerate() {
        let mut seen: Vec<String> = Vec::new();
        for entry in policy.split(';') {
            let mut words = entry.split(char::is_whitespace).filter(|w| !w.is_empty());
            let Some(first) = words.next() else { continue };
            let directive = first.to_lowercase();
            if seen.contains(&directive) {
                if !REPEATABLE.contains(&directive.as_str()) {
                    return Err(());
                }
                repeated_report = true;
            } else {
                seen.push(directive.clone());
            }
            let mut values: Vec<Source> = words
                .map(|w| Source {
                    text: w.to_lowercase(),
                    policy: index,
                    keep: index == 0,
                })
                .collect();
            if values.is_empty() && directive.ends_with("-src") {
                values.push(Source {
                    text: "'none'".into(),
                    policy: index,
                    keep: index == 0,
                });
            }
            let slot = map.iter().position(|(d, _)| *d == directive);
            let earlier = match slot {
                Some(i) if index > 0 => std::mem::take(&mut map[i].1),
                _ => Vec::new(),
            };
            let combined = intersect(earlier, values, index == 0 && list.len() > 1)?;
            match slot {
                Some(i) => map[i].1 = combined,
                None => map.push((directive, combined)),
            }
        }
    }
    let directives = map
        .into_iter()
        .map(|(d, sources)| {
            let set: BTreeSet<String> = if sources.is_empty() {
                ["'none'".to_string()].into()
            } else {
                sources.into_iter().map(|s| s.text).collect()
            };
            (d, set)
        })
        .collect();
    Ok(Parsed {
        directives,
        repeated_report,
    })
}

/// A directive's sources so far combined with the next policy's, in the scanner's collation
/// order: what a later policy also allows is kept. `first_of_many` marks the first policy's
/// sources as needing confirmation by a later one.
fn intersect(
    earlier: Vec<Source>,
    values: Vec<Source>,
    first_of_many: bool,
) -> Result<Vec<Source>, ()> {
    let mut combined = earlier;
    combined.extend(values);
    combined.sort_by(|a, b| collate(&a.text, &b.text));
    for i in 1..combined.len() {
        let (prev, cur) = (combined[i - 1].clone(), &mut combined[i]);
        if cur.policy == prev.policy && cur.text.starts_with(&prev.text) {
            cur.keep = false;
        }
        if cur.policy != prev.policy && path_part_match(&prev.text, &cur.text)? {
            cur.keep = true;
        }
    }
    combined.retain(|s| s.keep);
    if first_of_many {
        combined.iter_mut().for_each(|s| s.keep = false);
    }
    Ok(combined)
}

/// The order of `Intl.Collator("en")` for the characters a lower-cased source holds: punctuation
/// first in its own order, then digits, then letters. Other characters sort after, by code point.
fn collate(a: &str, b: &str) -> Ordering {
    const ORDER: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz";
    let rank = |c: char| {
        ORDER
            .find(c)
            .map_or(ORDER.len() as u32 + c as u32, |i| i as u32)
    };
    a.chars().map(rank).cmp(b.chars().map(rank))
}

/// True when source `a` covers `b` path segment by segment (a trailing `/` covers what follows).
fn path_part_match(a: &str, b: &str) -> Result<bool, ()> {
    if a.is_empty() || (a == "/" && b.is_empty()) {
        return Ok(true);
    }
    let exact = !a.ends_with('/');
    let mut la: Vec<&str> = a.split('/').collect();
    let lb: Vec<&str> = b.split('/').collect();
    if la.len() > lb.len() || (exact && la.len() != lb.len()) {
        return Ok(false);
    }
    if !exact {
        la.pop();
    }
    for (x, y) in la.iter().zip(&lb) {
        if percent_decode(x)? != percent_decode(y)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `decodeURIComponent`: a malformed escape is an error, which makes the whole policy invalid.
fn percent_decode(s: &str) -> Result<String, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// What the CSP test concluded, and whether the policy sets `frame-ancestors` (which the
/// X-Frame-Options test counts as protection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub result: &'static str,
    pub frame_ancestors: bool,
}

/// Judges the enforced policies of a response: `header` holds the header values as Node
/// presents them, `meta` the `<meta http-equiv>` policies of the page.
pub(crate) fn judge(header: &[String], meta: &[String], report_only: bool, https: bool) -> Verdict {
    let verdict = |result| Verdict {
        result,
        frame_ancestors: false,
    };
    let all: Vec<String> = header.iter().chain(meta).cloned().collect();
    let Ok(mut csp) = parse(&all) else {
        return verdict("csp-header-invalid");
    };
    let header_only = parse(header).unwrap_or_default();
    let mut meta_only = parse(meta).unwrap_or_default();
    NOT_IN_META.iter().for_each(|d| meta_only.remove(d));
    if header_only.is_empty() && meta_only.is_empty() {
        return verdict(if report_only {
            "csp-not-implemented-but-reporting-enabled"
        } else {
            "csp-not-implemented"
        });
    }
    let frame_ancestors = csp.get("frame-ancestors").is_some();
    let result = classify(&mut csp, https);
    Verdict {
        result,
        frame_ancestors,
    }
}

/// Where a source list lives: the Observatory falls back to `default-src` by sharing the very same
/// set, so removing a source from `script-src` can remove it from `default-src` too. This keeps
/// that aliasing, because it changes results.
fn slot(csp: &Parsed, name: &str) -> Option<usize> {
    let find = |n: &str| csp.directives.iter().position(|(d, _)| d == n);
    find(name).or_else(|| find("default-src"))
}

fn sources<'a>(
    csp: &'a Parsed,
    at: Option<usize>,
    own: &'a BTreeSet<String>,
) -> &'a BTreeSet<String> {
    at.map_or(own, |i| &csp.directives[i].1)
}

fn classify(csp: &mut Parsed, https: bool) -> &'static str {
    let (object_at, script_at, style_at) = (
        slot(csp, "object-src"),
        slot(csp, "script-src"),
        slot(csp, "style-src"),
    );
    let (object_own, mut script_own, mut style_own) = (star(), star(), star());
    let invalid = drop_overridden(csp, script_at, style_at, &mut script_own, &mut style_own);
    let object = sources(csp, object_at, &object_own);
    let script = sources(csp, script_at, &script_own);
    let style = sources(csp, style_at, &style_own);
    let result = invalid.unwrap_or_else(|| verdict(csp, object, script, style, https));
    let passing = matches!(
        result,
        "csp-implemented-with-no-unsafe"
            | "csp-implemented-with-no-unsafe-default-src-none"
            | "csp-implemented-with-unsafe-inline-in-style-src-only"
            | "csp-implemented-with-insecure-scheme-in-passive-content-only"
    );
    if passing && csp.repeated_report {
        return "csp-implemented-but-duplicate-directives";
    }
    result
}

/// What browsers ignore once a nonce or hash is present: `'unsafe-inline'`, and with
/// `'strict-dynamic'` the host and scheme sources too. `'strict-dynamic'` without a nonce or hash
/// makes the policy invalid, which is returned.
fn drop_overridden(
    csp: &mut Parsed,
    script_at: Option<usize>,
    style_at: Option<usize>,
    script_own: &mut BTreeSet<String>,
    style_own: &mut BTreeSet<String>,
) -> Option<&'static str> {
    let has_nonce = |s: &BTreeSet<String>| {
        s.iter()
            .any(|x| NONCES_HASHES.iter().any(|n| x.starts_with(n)))
    };
    for (at, own) in [(script_at, &mut *script_own), (style_at, &mut *style_own)] {
        let list = match at {
            Some(i) => &mut csp.directives[i].1,
            None => own,
        };
        if has_nonce(list) {
            list.remove("'unsafe-inline'");
        }
    }
    let script = match script_at {
        Some(i) => &mut csp.directives[i].1,
        None => script_own,
    };
    if !script.contains("'strict-dynamic'") {
        return None;
    }
    if !has_nonce(script) {
        return Some("csp-header-invalid");
    }
    script.retain(|s| {
        !(BROAD.iter().any(|b| s.starts_with(b)) || s == "'self'" || s == "'unsafe-inline'")
    });
    None
}

/// The sources of active content (scripts and everything else but images and media) and of
/// passive content (images and media).
fn content<'a>(
    csp: &'a Parsed,
    script: &'a BTreeSet<String>,
) -> (Vec<&'a String>, Vec<&'a String>) {
    let mut active: Vec<&String> = csp
        .directives
        .iter()
        .filter(|(d, _)| !matches!(d.as_str(), "img-src" | "media-src" | "script-src"))
        .flat_map(|(_, s)| s)
        .collect();
    active.extend(script);
    let passive: Vec<&String> = ["img-src", "media-src"]
        .iter()
        .filter_map(|d| csp.get(d).or_else(|| csp.get("default-src")))
        .flatten()
        .collect();
    (active, passive)
}

/// The first of the scanner's verdicts that applies, from worst to best.
fn verdict(
    csp: &Parsed,
    object: &BTreeSet<String>,
    script: &BTreeSet<String>,
    style: &BTreeSet<String>,
    https: bool,
) -> &'static str {
    let (active, passive) = content(csp, script);
    let broad = |s: &&String| BROAD.contains(&s.as_str());
    let broad_or_inline = |s: &&String| broad(s) || UNSAFE_INLINE.contains(&s.as_str());
    let insecure = |s: &&String| s.starts_with("http:") || s.starts_with("ftp:");
    if script.iter().any(|s| broad_or_inline(&s)) || object.iter().any(|s| broad(&s)) {
        "csp-implemented-with-unsafe-inline"
    } else if https && active.iter().any(insecure) {
        "csp-implemented-with-insecure-scheme"
    } else if script.contains("'unsafe-eval'") || style.contains("'unsafe-eval'") {
        "csp-implemented-with-unsafe-eval"
    } else if https && passive.iter().any(insecure) {
        "csp-implemented-with-insecure-scheme-in-passive-content-only"
    } else if style.iter().any(|s| broad_or_inline(&s)) {
        "csp-implemented-with-unsafe-inline-in-style-src-only"
    } else if csp
        .get("default-src")
        .is_some_and(|d| d.len() == 1 && d.contains("'none'"))
    {
        "csp-implemented-with-no-unsafe-default-src-none"
    } else {
        "csp-implemented-with-no-unsafe"
    }
}

fn star() -> BTreeSet<String> {
    BTreeSet::from(["*".to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(p: &str) -> Verdict {
        judge(&[p.to_string()], &[], false, true)
    }

    #[test]
    fn results_follow_the_observatory_order() {
        assert_eq!(
            one("default-src 'none'").result,
            "csp-implemented-with-no-unsafe-default-src-none"
        );
        assert_eq!(
            one("default-src 'self'").result,
            "csp-implemented-with-no-unsafe"
        );
        assert_eq!(
            one("default-src 'self'; script-src 'self' 'unsafe-inline'").result,
            "csp-implemented-with-unsafe-inline"
        );
        assert_eq!(
            one("default-src 'self'; script-src 'nonce-x' 'unsafe-inline'").result,
            "csp-implemented-with-no-unsafe"
        );
        assert_eq!(
            one("default-src 'self'; img-src http://cdn.example").result,
            "csp-implemented-with-insecure-scheme-in-passive-content-only"
        );
        assert_eq!(
            one("default-src 'self'; style-src 'unsafe-inline'").result,
            "csp-implemented-with-unsafe-inline-in-style-src-only"
        );
        assert_eq!(
            one("script-src 'strict-dynamic'").result,
            "csp-header-invalid"
        );
        // script-src falls back to default-src by sharing it: strict-dynamic removes http: from both.
        assert_eq!(
            one("default-src 'strict-dynamic' 'nonce-x' http:; object-src 'none'").result,
            "csp-implemented-with-no-unsafe"
        );
        assert_eq!(one("img-s").result, "csp-header-invalid");
        assert_eq!(one("img-sr").result, "csp-implemented-with-unsafe-inline");
        assert_eq!(
            one("default-src 'self'; default-src 'none'").result,
            "csp-header-invalid"
        );
        assert_eq!(
            one("default-src 'none'; report-uri /a; report-uri /b").result,
            "csp-implemented-but-duplicate-directives"
        );
    }

    #[test]
    fn meta_policies_count_but_cannot_frame() {
        let v = judge(
            &[],
            &["default-src 'self'; frame-ancestors 'none'".into()],
            false,
            true,
        );
        assert_eq!(v.result, "csp-implemented-with-no-unsafe");
        assert!(
            v.frame_ancestors,
            "the Observatory counts a meta frame-ancestors"
        );
        let v = judge(&[], &["frame-ancestors 'none'".into()], true, true);
        assert_eq!(v.result, "csp-not-implemented-but-reporting-enabled");
        assert!(!v.frame_ancestors);
    }

    #[test]
    fn two_policies_keep_common_sources() {
        let p = parse(&[
            "default-src 'self' https://a.example; script-src 'self'".into(),
            "default-src 'self'".into(),
        ])
        .unwrap();
        assert_eq!(
            p.get("default-src").unwrap().iter().collect::<Vec<_>>(),
            ["'self'"]
        );
        assert_eq!(
            p.get("script-src").unwrap().iter().collect::<Vec<_>>(),
            ["'self'"]
        );
        assert!(
            parse(&[
                "default-src https://a/%zz".into(),
                "default-src https://b".into()
            ])
            .is_ok()
        );
        assert!(
            parse(&[
                "default-src https://a/%zz".into(),
                "default-src https://a/%zz".into()
            ])
            .is_err()
        );
    }

    #[test]
    fn collation_puts_punctuation_before_digits_and_letters() {
        assert_eq!(collate("a-c", "ab"), Ordering::Less);
        assert_eq!(collate("'self'", "https:"), Ordering::Less);
        assert_eq!(collate("https:", "https://a"), Ordering::Less);
    }
}
