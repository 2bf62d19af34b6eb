//! Content-Security-Policy (CSP Level 3) parsing, and the judgements shipwatch and the grade need.

use std::collections::BTreeMap;

/// Directive name → source list, for one or more policies combined.
///
/// When several policies are enforced, a resource must pass all of them, so a directive that
/// appears in more than one keeps only the sources every policy allows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub directives: BTreeMap<String, Vec<String>>,
}

/// Sources that allow scripts from nearly anywhere.
pub const BROAD: &[&str] = &[
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

impl Policy {
    /// Parses every header value (each may hold several comma-separated policies).
    pub fn parse(values: &[&str]) -> Result<Policy, String> {
        let mut combined: Option<BTreeMap<String, Vec<String>>> = None;
        for policy in values.iter().flat_map(|v| v.split(',')) {
            let one = parse_one(policy)?;
            if one.is_empty() {
                continue;
            }
            combined = Some(match combined {
                None => one,
                Some(mut acc) => {
                    for (k, v) in one {
                        match acc.get_mut(&k) {
                            Some(existing) => existing.retain(|s| v.contains(s)),
                            None => {
                                acc.insert(k, v);
                            }
                        }
                    }
                    acc
                }
            });
        }
        combined
            .map(|directives| Policy { directives })
            .ok_or_else(|| "the policy is empty".to_string())
    }

    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.directives.get(name).map(Vec::as_slice)
    }

    /// The sources that apply to `directive`, falling back to `default-src`.
    pub fn effective(&self, directive: &str) -> Option<&[String]> {
        self.get(directive).or_else(|| self.get("default-src"))
    }

    /// Script sources, with `'unsafe-inline'` dropped when a nonce or hash disables it (CSP2+).
    pub fn script_src(&self) -> Vec<String> {
        let mut src: Vec<String> = self
            .effective("script-src")
            .map(<[String]>::to_vec)
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
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| vec!["*".into()]);
        if src.iter().any(|s| is_nonce_or_hash(s)) {
            src.retain(|s| s != "'unsafe-inline'");
        }
        src
    }

    pub fn object_src(&self) -> Vec<String> {
        self.effective("object-src")
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| vec!["*".into()])
    }

    /// Every source of every directive except the passive ones (images, media).
    pub fn active_sources(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .directives
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "img-src" | "media-src" | "script-src"))
            .flat_map(|(_, v)| v.iter().cloned())
            .collect();
        out.extend(self.script_src());
        out
    }

    pub fn passive_sources(&self) -> Vec<String> {
        ["img-src", "media-src"]
            .iter()
            .flat_map(|d| self.effective(d).unwrap_or(&[]).to_vec())
            .collect()
    }

    /// `frame-ancestors` sources, if the policy sets them.
    pub fn frame_ancestors(&self) -> Option<&[String]> {
        self.get("frame-ancestors")
    }
}

/// One policy: `;`-separated directives, a name and space-separated sources each.
fn parse_one(policy: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out = BTreeMap::new();
    for raw in policy.split(';') {
        let mut parts = raw.split_ascii_whitespace();
        let Some(name) = parts.next() else { continue };
        let name = name.to_ascii_lowercase();
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("invalid directive name \"{name}\""));
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
            return Err(format!("directive \"{name}\" holds control characters"));
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
        let p = Policy::parse(&["script-src 'self', object-src 'none'"]).unwrap();
        assert_eq!(p.object_src(), ["'none'"]);
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
