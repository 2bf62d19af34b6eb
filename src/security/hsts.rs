//! `Strict-Transport-Security` (RFC 6797): exactly one header, each directive once, a numeric max-age.

/// A parsed HSTS policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hsts {
    pub max_age: u64,
    pub include_subdomains: bool,
    pub preload: bool,
}

/// Parses one header value. Errors name the problem in words, for findings.
pub fn parse(value: &str) -> Result<Hsts, super::Invalid> {
    let mut max_age = None;
    let (mut include_subdomains, mut preload) = (false, false);
    let mut seen: Vec<String> = Vec::new();
    for raw in value.split(';') {
        let d = raw.trim();
        if d.is_empty() {
            continue;
        }
        let (name, arg) = match d.split_once('=') {
            Some((n, a)) => (
                n.trim().to_ascii_lowercase(),
                Some(a.trim().trim_matches('"')),
            ),
            None => (d.to_ascii_lowercase(), None),
        };
        if seen.contains(&name) {
            return Err(super::Invalid(format!(
                "directive \"{name}\" appears twice"
            )));
        }
        seen.push(name.clone());
        match (name.as_str(), arg) {
            ("max-age", Some(a)) if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) => {
                max_age = Some(a.parse::<u64>().unwrap_or(u64::MAX));
            }
            ("max-age", _) => {
                return Err(super::Invalid(format!("max-age is not a number: \"{d}\"")));
            }
            ("includesubdomains", None) => include_subdomains = true,
            ("preload", None) => preload = true,
            // Unknown directives are ignored, as RFC 6797 §6.1 requires.
            _ => {}
        }
    }
    let max_age = max_age.ok_or_else(|| super::Invalid("no max-age directive".into()))?;
    Ok(Hsts {
        max_age,
        include_subdomains,
        preload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            parse("max-age=31536000; includeSubDomains; preload"),
            Ok(Hsts {
                max_age: 31536000,
                include_subdomains: true,
                preload: true
            })
        );
        assert_eq!(parse("max-age=\"600\"").map(|h| h.max_age), Ok(600));
        assert_eq!(parse("MAX-AGE=0;").map(|h| h.max_age), Ok(0));
        assert!(
            parse("includeSubDomains")
                .unwrap_err()
                .0
                .contains("no max-age")
        );
        assert!(parse("max-age=1y").unwrap_err().0.contains("not a number"));
        assert!(
            parse("max-age=1; max-age=2")
                .unwrap_err()
                .0
                .contains("twice")
        );
        assert!(parse("max-age=99999999999999999999999").is_ok());
    }
}
