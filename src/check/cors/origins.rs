//! The origins a CORS check sends: the allowed ones, and for each misconfiguration class the
//! look-alikes that a sloppy origin check lets in.

use url::Url;

use crate::security::site::registrable_domain;

/// A class of origins that must not be allowed, with its finding id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Allowed,
    Reflect,
    Prefix,
    Suffix,
    UnescapedDot,
    SpecialChars,
    Null,
    HttpOrigin,
    Subdomain,
    ThirdParty,
}

impl Class {
    /// Classes of origins that must be refused, in report order.
    pub const FORBIDDEN: [Class; 9] = [
        Class::Reflect,
        Class::Prefix,
        Class::Suffix,
        Class::UnescapedDot,
        Class::SpecialChars,
        Class::Null,
        Class::HttpOrigin,
        Class::Subdomain,
        Class::ThirdParty,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Class::Allowed => "cors.allowed",
            Class::Reflect => "cors.reflect",
            Class::Prefix => "cors.prefix",
            Class::Suffix => "cors.suffix",
            Class::UnescapedDot => "cors.unescaped_dot",
            Class::SpecialChars => "cors.special_chars",
            Class::Null => "cors.null",
            Class::HttpOrigin => "cors.http_origin",
            Class::Subdomain => "cors.subdomain",
            Class::ThirdParty => "cors.third_party",
        }
    }

    /// What the class's origins are, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Class::Allowed => "an allowed origin",
            Class::Reflect => "an unrelated origin",
            Class::Prefix => "an origin that starts with the site's host",
            Class::Suffix => "an origin that ends with the site's domain but is another site",
            Class::UnescapedDot => "an origin that matches a regex with an unescaped dot",
            Class::SpecialChars => "an origin with special characters after the host",
            Class::Null => "the null origin",
            Class::HttpOrigin => "the http:// twin of an https origin",
            Class::Subdomain => "an unlisted subdomain",
            Class::ThirdParty => "a hosting platform anyone can publish on",
        }
    }
}

/// One origin to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub class: Class,
    pub origin: String,
}

/// Characters that a host check stopping at the first non-host character lets through.
const SPECIAL_CHARS: &[&str] = &[
    "_", "-", "\"", "{", "}", "+", "^", "%60", "!", "~", "`", ";", "|", "&", "'", "(", ")", "*",
    ",", "$", "=", "%0b",
];

/// Origins on platforms where anyone can publish a page: a policy that trusts the platform's
/// domain trusts every stranger on it.
const THIRD_PARTY: &[&str] = &[
    "https://shipwatch-probe.github.io",
    "https://shipwatch-probe.herokuapp.com",
    "https://shipwatch-probe.vercel.app",
    "https://shipwatch-probe.netlify.app",
    "https://shipwatch-probe.pages.dev",
    "https://shipwatch-probe.azurewebsites.net",
    "https://d1shipwatchprobe.cloudfront.net",
    "https://shipwatch-probe.s3.amazonaws.com",
    "https://shipwatch-probe.web.app",
    "https://shipwatch-probe.glitch.me",
    "https://whatever.github.io",
    "http://jsbin.com",
    "https://codepen.io",
    "https://jsfiddle.net",
    "http://www.webdevout.net",
    "https://repl.it",
];

/// The probes for a check of `target` that should allow exactly `allowed`.
pub fn derive(target: &Url, allowed: &[String]) -> Vec<Probe> {
    let mut out: Vec<Probe> = Vec::new();
    let mut add = |class: Class, origin: String| {
        // A derived origin the user listed as allowed is not a misconfiguration.
        let listed = class != Class::Allowed && allowed.contains(&origin);
        if !listed && !out.iter().any(|p| p.origin == origin) {
            out.push(Probe { class, origin });
        }
    };
    for o in allowed {
        add(Class::Allowed, o.clone());
    }
    add(Class::Reflect, "https://evil.com".into());
    add(Class::Reflect, "https://shipwatch-probe.invalid".into());
    add(Class::Null, "null".into());
    let target_host = target.host_str().unwrap_or("").to_string();
    let hosts: Vec<String> = std::iter::once(target_host.clone())
        .chain(
            allowed
                .iter()
                .filter_map(|o| Url::parse(o).ok()?.host_str().map(str::to_string)),
        )
        .filter(|h| !h.is_empty())
        .collect();
    for host in &hosts {
        add(Class::Prefix, format!("https://{host}.evil.com"));
        for c in SPECIAL_CHARS {
            add(Class::SpecialChars, format!("https://{host}{c}.evil.com"));
        }
        if host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok()
        {
            continue;
        }
        let site = registrable_domain(host, false).unwrap_or_else(|| host.clone());
        add(Class::Suffix, format!("https://evil{site}"));
        if site.len() > 1 {
            // The domain's own tail: "xample.com" passes `"example.com".endswith(host)`.
            add(Class::Suffix, format!("https://{}", &site[1..]));
        }
        for dotless in unescaped_dots(host) {
            add(Class::UnescapedDot, format!("https://{dotless}"));
        }
        add(Class::Subdomain, format!("https://shipwatch-probe.{site}"));
        add(Class::Subdomain, format!("https://shipwatch-probe.{host}"));
    }
    if target.scheme() == "https" && !target_host.is_empty() {
        add(Class::HttpOrigin, format!("http://{target_host}"));
    }
    for o in allowed.iter().filter(|o| o.starts_with("https://")) {
        add(Class::HttpOrigin, o.replacen("https://", "http://", 1));
    }
    for o in THIRD_PARTY {
        add(Class::ThirdParty, (*o).to_string());
    }
    out
}

/// `app.example.com` → `appxexample.com`, `app.examplexcom`: one dot at a time replaced by a
/// letter, which a regex with that dot unescaped still accepts.
fn unescaped_dots(host: &str) -> Vec<String> {
    host.match_indices('.')
        .map(|(i, _)| format!("{}x{}", &host[..i], &host[i + 1..]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_every_class() {
        let target = Url::parse("https://api.example.com/login").unwrap();
        let probes = derive(&target, &["https://www.example.com".into()]);
        let has = |o: &str, c: Class| probes.iter().any(|p| p.origin == o && p.class == c);
        assert!(has("https://www.example.com", Class::Allowed));
        assert!(has("https://evil.com", Class::Reflect));
        assert!(has("null", Class::Null));
        assert!(has("https://api.example.com.evil.com", Class::Prefix));
        assert!(has("https://evilexample.com", Class::Suffix));
        assert!(has("https://xample.com", Class::Suffix));
        assert!(has("https://apixexample.com", Class::UnescapedDot));
        assert!(has("https://api.examplexcom", Class::UnescapedDot));
        assert!(has("https://wwwxexample.com", Class::UnescapedDot));
        assert!(has(
            "https://www.example.com_.evil.com",
            Class::SpecialChars
        ));
        assert!(has("http://www.example.com", Class::HttpOrigin));
        assert!(has("http://api.example.com", Class::HttpOrigin));
        assert!(has("https://shipwatch-probe.example.com", Class::Subdomain));
        assert!(has(
            "https://shipwatch-probe.api.example.com",
            Class::Subdomain
        ));
        assert!(has("https://shipwatch-probe.github.io", Class::ThirdParty));
        // A look-alike under the site's own domain is a subdomain, never a suffix bypass.
        assert!(
            !probes
                .iter()
                .any(|p| p.class == Class::Suffix && p.origin.ends_with(".example.com"))
        );
    }

    #[test]
    fn listed_origins_are_not_probes() {
        let target = Url::parse("https://a.example.com/").unwrap();
        let probes = derive(&target, &["http://a.example.com".into()]);
        assert!(
            !probes
                .iter()
                .any(|p| p.class == Class::HttpOrigin && p.origin == "http://a.example.com")
        );
    }
}
