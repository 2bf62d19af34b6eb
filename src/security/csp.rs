//! Content-Security-Policy (CSP Level 3) parsing, and the judgements shipwatch and the grade need.

use std::collections::BTreeMap;

/// One or more enforced policies. A resource must pass every policy, so each lookup intersects
/// what the policies allow, with each policy's own `default-src` fallback applied first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub policies: Vec<BTreeMap<String, Vec<String>>>,
}

/// Sources that allow scripts from nearly anywhere.
pub(crate) const BROAD: &[&str] = &[
    "*",
    "http:",
    "https:",
    "ftp:",
    "http://*",
    "https://*",
    "http://*.*",
    "https://*.*",
];

fn is_nonce_or_hash(s: &str) -> bool {
    ["'nonce-", "'sha256-", "'sha384-", "'sha512-"]
        .iter()
        .any(|p| s.starts_with(p))
}

fn intersect<'a>(lists: impl Iterator<Item = &'a Vec<String>>) -> Option<Vec<String>> {
    lists.fold(None, |acc: Option<Vec<String>>, l| match acc {
        None => Some(l.clone()),
        Some(mut a) => {
            a.retain(|s| l.contains(s));
            Some(a)
        }
    })
}

impl Policy {
    /// Parses every header value (each may hold several comma-separated policies).
    pub fn parse(values: &[&str]) -> Result<Policy, super::Invalid> {
        let mut policies = Vec::new();
        for policy in values.iter().flat_map(|v| v.split(',')) {
            let one = parse_one(policy)?;
            if !one.is_empty() {
                policies.push(one);
            }
        }
        if policies.is_empty() {
            return Err(super::Invalid("the policy is empty".to_string()));
        }
        Ok(Policy { policies })
    }

    /// A directive exactly as the policies set it, without fallback.
    pub fn get(&self, name: &str) -> Option<Vec<String>> {
        intersect(self.policies.iter().filter_map(|p| p.get(name)))
    }

    /// The sources that apply to `directive`, each policy falling back to its `default-src`.
    pub(crate) fn effective(&self, directive: &str) -> Option<Vec<String>> {
        intersect(
            self.policies
                .iter()
                .filter_map(|p| p.get(directive).or_else(|| p.get("default-src"))),
        )
    }

    fn directive_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .policies
            .iter()
            .flat_map(|p| p.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Script sources, with `'unsafe-inline'` dropped when a nonce or hash disables it (CSP2+).
    pub fn script_src(&self) -> Vec<String> {
        let mut src: Vec<String> = self
            .effective("script-src")
            .unwrap_or_else(|| vec!["*".into()]);
        if src.iter().any(|s| is_nonce_or_hash(s)) {
            src.retain(|s| s != "'unsafe-inline'");
            if src.iter().any(|s| s == "'strict-dynamic'") {
                src.retain(|s| s != "'self'" && !BROAD.iter().any(|b| s.starts_with(b)));
            }
        }
        src
    }

    pub fn style_src(&self) -> Vec<String> {
        let mut src: Vec<String> = self
            .effective("style-src")
            .unwrap_or_else(|| vec!["*".into()]);
        if src.iter().any(|s| is_nonce_or_hash(s)) {
            src.retain(|s| s != "'unsafe-inline'");
        }
        src
    }

    pub fn object_src(&self) -> Vec<String> {
        self.effective("object-src")
            .unwrap_or_else(|| vec!["*".into()])
    }

    /// Every source of every directive except the passive ones (images, media).
    pub fn active_sources(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .directive_names()
            .into_iter()
            .filter(|k| !matches!(k.as_str(), "img-src" | "media-src" | "script-src"))
            .flat_map(|k| self.effective(&k).unwrap_or_default())
            .collect();
        out.extend(self.script_src());
        out
    }

    pub fn passive_sources(&self) -> Vec<String> {
        ["img-src", "media-src"]
            .iter()
            .flat_map(|d| self.effective(d).unwrap_or_default())
            .collect()
    }

    /// `frame-ancestors` sources, if the policy sets them.
    pub fn frame_ancestors(&self) -> Option<Vec<String>> {
        self.get("frame-ancestors")
    }
}

/// One policy: `;`-separated directives, a name and space-separated sources each.
fn parse_one(policy: &str) -> Result<BTreeMap<String, Vec<String>>, super::Invalid> {
    let mut out = BTreeMap::new();
    for raw in policy.split(';') {
        let mut parts = raw.split_ascii_whitespace();
        let Some(name) = parts.next() else { continue };
        let name = name.to_ascii_lowercase();
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(super::Invalid(format!("invalid directive name \"{name}\"")));
        }
        let sources: Vec<String> = parts
            .map(|s| {
                // Keywords and schemes are case-insensitive; hosts and nonces keep their case.
                let lower = s.to_ascii_lowercase();
                if s.starts_with('\'') && !is_nonce_or_hash(&lower) || lower.ends_with(':') {
                    lower
                } else {
                    s.to_string()
                }
            })
            .collect();
        if sources.iter().any(|s| s.chars().any(|c| c.is_control())) {
            return Err(super::Invalid(format!(
                "directive \"{name}\" holds control characters"
            )));
        }
        // The first occurrence wins (CSP3 §2.2.1); later duplicates are ignored.
        out.entry(name).or_insert(sources);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_policies_intersect() {
        let p = Policy::parse(&[
            "default-src 'self' https://cdn.example; img-src *",
            "default-src 'self'",
        ])
        .unwrap();
        assert_eq!(p.get("default-src").unwrap(), ["'self'"]);
        assert_eq!(p.get("img-src").unwrap(), ["*"]);
        // The second policy's default-src still limits images: no source is in both lists.
        assert_eq!(p.effective("img-src"), Some(Vec::new()));
        let p = Policy::parse(&["script-src 'self', object-src 'none'"]).unwrap();
        assert_eq!(p.object_src(), ["'none'"]);
        let p = Policy::parse(&["default-src 'self', script-src 'self' 'unsafe-inline'"]).unwrap();
        assert_eq!(p.script_src(), ["'self'"]);
    }

    #[test]
    fn nonces_disable_unsafe_inline_and_fallbacks_apply() {
        let p = Policy::parse(&[
            "default-src 'none'; script-src 'nonce-AbC' 'unsafe-inline' 'UNSAFE-EVAL'",
        ])
        .unwrap();
        assert_eq!(p.script_src(), ["'nonce-AbC'", "'unsafe-eval'"]);
        assert_eq!(p.object_src(), ["'none'"]);
        assert_eq!(
            Policy::parse(&["img-src 'self'"]).unwrap().script_src(),
            ["*"]
        );
        let p = Policy::parse(&["script-src 'strict-dynamic' 'sha256-x' https: 'self'"]).unwrap();
        assert_eq!(p.script_src(), ["'strict-dynamic'", "'sha256-x'"]);
    }

    #[test]
    fn rejects_what_does_not_parse() {
        assert!(Policy::parse(&[""]).is_err());
        assert!(Policy::parse(&["scr!pt-src 'self'"]).is_err());
        assert_eq!(
            Policy::parse(&["script-src a; script-src b"])
                .unwrap()
                .get("script-src")
                .unwrap(),
            ["a"]
        );
    }
}
