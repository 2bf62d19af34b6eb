//! Registrable domains ("sites") from the Public Suffix List, for the rules that must tell a
//! sibling subdomain from a stranger: the grade's subresource-integrity test and the CORS probes.

/// The registrable domain of `host` (one label above its public suffix), or `None` for an IP
/// address, a bare public suffix or a name with no suffix. With `icann_only`, suffixes from the
/// list's private section (`github.io`, `herokuapp.com`, …) are not suffixes, as the Observatory
/// reads them; without it, they are, as browsers read them.
pub(crate) fn registrable_domain(host: &str, icann_only: bool) -> Option<String> {
    let host = host
        .trim_matches(['[', ']'])
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let suffix_len = suffix_len(&host, icann_only)?;
    if suffix_len >= host.len() {
        return None;
    }
    let above = &host[..host.len() - suffix_len - 1];
    let label = above.rsplit('.').next()?;
    Some(host[host.len() - suffix_len - label.len() - 1..].to_string())
}

/// True when `domain` is itself a public suffix (either section), such as `com` or `github.io`.
pub(crate) fn is_public_suffix(domain: &str) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    psl::suffix(d.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes().len() == d.len())
}

/// The byte length of the public suffix of `host`.
fn suffix_len(host: &str, icann_only: bool) -> Option<usize> {
    let mut name = host;
    loop {
        let s = psl::suffix(name.as_bytes())?;
        if !icann_only || s.typ() != Some(psl::Type::Private) {
            return Some(s.as_bytes().len());
        }
        // A private suffix: look for the ICANN suffix below it, from its parent down.
        let private = std::str::from_utf8(s.as_bytes()).ok()?;
        name = private.split_once('.')?.1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_by_section() {
        let d = |h, i| registrable_domain(h, i);
        assert_eq!(d("cdn.example.com", true).as_deref(), Some("example.com"));
        assert_eq!(d("a.b.github.io", true).as_deref(), Some("github.io"));
        assert_eq!(d("a.b.github.io", false).as_deref(), Some("b.github.io"));
        assert_eq!(d("foo.co.uk", false).as_deref(), Some("foo.co.uk"));
        assert_eq!(
            d("static.localhost", true).as_deref(),
            Some("static.localhost")
        );
        assert_eq!(d("localhost", true), None);
        assert_eq!(d("127.0.0.1", true), None);
        assert_eq!(d("[::1]", false), None);
        assert_eq!(d("com", false), None);
        assert!(is_public_suffix("com") && is_public_suffix("github.io"));
        assert!(!is_public_suffix("example.com") && !is_public_suffix("localhost"));
    }
}
