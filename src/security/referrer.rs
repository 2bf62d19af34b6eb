//! `Referrer-Policy`: the policy a browser applies is the last value it recognises.

/// Every value browsers recognise.
const KNOWN: &[&str] = &[
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "origin",
    "origin-when-cross-origin",
    "unsafe-url",
    "no-referrer-when-downgrade",
];

/// Values that keep paths and queries from leaking to other sites.
pub(crate) const PRIVATE: &[&str] = &[
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
];

/// The policy in force, given every header value and then the `<meta name=referrer>` value; `None`
/// when no token is recognised.
pub fn policy(values: &[&str]) -> Option<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .rfind(|t| KNOWN.contains(&t.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_known_token_wins() {
        assert_eq!(
            policy(&["no-referrer, bogus"]).as_deref(),
            Some("no-referrer")
        );
        assert_eq!(
            policy(&["unsafe-url", "Same-Origin"]).as_deref(),
            Some("same-origin")
        );
        assert_eq!(policy(&["bogus"]), None);
        assert_eq!(policy(&[]), None);
    }
}
