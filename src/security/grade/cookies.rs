//! The grade's `cookies` test: every cookie the HTTPS session stored, from every response of its
//! redirect chain, judged the way the Observatory judges them.
//!
//! The Observatory keeps cookies in a cookie jar, so a cookie set twice counts once (the later
//! one), a cookie for another site or with a broken `__Host-`/`__Secure-` prefix is dropped, and an
//! expired cookie still counts. Its session cookie is a name containing "sess" or "login", its
//! anti-CSRF cookie a name containing "csrf", and its "worse" result follows a fixed list, not the
//! size of the penalty.

use url::Url;

/// Results from best to worst, in the Observatory's order.
const ORDER: &[&str] = &[
    "cookies-without-secure-flag-but-protected-by-hsts",
    "cookies-without-secure-flag",
    "cookies-session-without-secure-flag-but-protected-by-hsts",
    "cookies-samesite-flag-invalid",
    "cookies-anticsrf-without-samesite-flag",
    "cookies-session-without-httponly-flag",
    "cookies-session-without-secure-flag",
];

/// Load-balancer affinity cookies the Observatory ignores.
const IGNORED: &[&str] = &["heroku-session-affinity"];

/// One cookie as the jar keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub name: String,
    domain: String,
    path: String,
    pub secure: bool,
    pub http_only: bool,
    /// `strict`, `lax` or `none`; anything else is as if unset.
    pub same_site: Option<&'static str>,
}

/// A cookie jar with the storage rules that decide which cookies the grade sees.
#[derive(Debug, Clone, Default)]
pub struct Jar {
    cookies: Vec<Stored>,
}

impl Jar {
    /// Stores one `Set-Cookie` value received from `url`; a cookie the jar refuses is ignored.
    pub fn set(&mut self, raw: &str, url: &Url) {
        let Some(c) = parse(raw, url) else { return };
        match self
            .cookies
            .iter_mut()
            .find(|s| s.name == c.name && s.domain == c.domain && s.path == c.path)
        {
            Some(old) => *old = c,
            None => self.cookies.push(c),
        }
    }

    pub fn cookies(&self) -> &[Stored] {
        &self.cookies
    }
}

fn parse(raw: &str, url: &Url) -> Option<Stored> {
    let host = url
        .host_str()?
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    let mut parts = raw.split(';');
    let (name, _value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || raw.chars().any(|c| c.is_control() && c != '\t') {
        return None;
    }
    let mut c = Stored {
        name: name.to_string(),
        domain: host.clone(),
        path: default_path(url),
        secure: false,
        http_only: false,
        same_site: None,
    };
    let mut domain_attr = None;
    for attr in parts {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "secure" => c.secure = true,
            "httponly" => c.http_only = true,
            "samesite" => {
                c.same_site = ["strict", "lax", "none"]
                    .into_iter()
                    .find(|s| v.eq_ignore_ascii_case(s))
            }
            "domain" if !v.is_empty() => {
                domain_attr = Some(v.trim_start_matches('.').to_ascii_lowercase())
            }
            "path" if v.starts_with('/') => c.path = v.to_string(),
            _ => {}
        }
    }
    if let Some(d) = domain_attr {
        let matches = host == d || host.ends_with(&format!(".{d}"));
        if !matches || (d != "localhost" && super::super::site::is_public_suffix(&d)) {
            return None;
        }
        c.domain = d;
    }
    let lower = c.name.to_ascii_lowercase();
    let prefix_ok = if lower.starts_with("__secure-") {
        c.secure
    } else if lower.starts_with("__host-") {
        c.secure && domain_attr_absent(raw) && c.path == "/"
    } else {
        true
    };
    prefix_ok.then_some(c)
}

fn domain_attr_absent(raw: &str) -> bool {
    !raw.split(';').skip(1).any(|a| {
        a.split_once('=')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("domain"))
    })
}

/// RFC 6265 §5.1.4: the request path up to its last `/`.
fn default_path(url: &Url) -> String {
    let path = url.path();
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => path[..i].into(),
    }
}

/// True when a raw `Set-Cookie` value has a `SameSite` attribute that is empty or unknown.
fn invalid_same_site(raw: &str) -> bool {
    raw.trim().split(';').any(|p| {
        let mut kv = p.trim().split('=');
        let key = kv.next().unwrap_or("").trim();
        let value = kv.next();
        key.eq_ignore_ascii_case("samesite")
            && value.is_none_or(|v| {
                v.is_empty()
                    || !["lax", "strict", "none"]
                        .iter()
                        .any(|s| v.trim().eq_ignore_ascii_case(s))
            })
    })
}

fn worse(new: &'static str, old: Option<&'static str>) -> &'static str {
    let rank = |r: &str| ORDER.iter().position(|x| *x == r);
    match old {
        Some(o) if rank(new) <= rank(o) => o,
        _ => new,
    }
}

/// The test's result. `final_set_cookies` are the raw values of the final response (the only ones
/// whose SameSite spelling the Observatory reads), `hsts_passes` whether its HSTS test passed.
pub(crate) fn judge(jar: &Jar, final_set_cookies: &[String], hsts_passes: bool) -> &'static str {
    let mut result: Option<&'static str> = None;
    if final_set_cookies.iter().any(|c| invalid_same_site(c)) {
        result = Some(worse("cookies-samesite-flag-invalid", result));
    }
    let cookies: Vec<&Stored> = jar
        .cookies()
        .iter()
        .filter(|c| !IGNORED.contains(&c.name.as_str()))
        .collect();
    if cookies.is_empty() {
        return "cookies-not-found";
    }
    let mut missing_same_site = false;
    for c in cookies {
        let lower = c.name.to_lowercase();
        let session = lower.contains("login") || lower.contains("sess");
        let anti_csrf = lower.contains("csrf");
        let mut flag = |r| result = Some(worse(r, result));
        if !c.secure && c.same_site == Some("none") {
            flag("cookies-samesite-flag-invalid");
        }
        if !c.secure {
            flag(if hsts_passes {
                "cookies-without-secure-flag-but-protected-by-hsts"
            } else {
                "cookies-without-secure-flag"
            });
        }
        if anti_csrf && c.same_site.is_none() {
            flag("cookies-anticsrf-without-samesite-flag");
        }
        if session && !c.secure {
            flag(if hsts_passes {
                "cookies-session-without-secure-flag-but-protected-by-hsts"
            } else {
                "cookies-session-without-secure-flag"
            });
        }
        if session && !c.http_only {
            flag("cookies-session-without-httponly-flag");
        }
        missing_same_site |= c.same_site.is_none();
    }
    result.unwrap_or(if missing_same_site {
        "cookies-secure-with-httponly-sessions"
    } else {
        "cookies-secure-with-httponly-sessions-and-samesite"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jar(cookies: &[&str]) -> Jar {
        let url = Url::parse("https://www.example.com/a/b").unwrap();
        let mut j = Jar::default();
        cookies.iter().for_each(|c| j.set(c, &url));
        j
    }

    #[test]
    fn the_jar_keeps_what_a_browser_keeps() {
        let j = jar(&[
            "a=1",
            "a=2; Secure",
            "other=1; Domain=example.org",
            "suffix=1; Domain=com",
            "__Host-x=1; Path=/",
            "__Secure-y=1; Secure",
            "old=1; Max-Age=0",
            "p=1; Path=/x",
            "p=2",
        ]);
        let names: Vec<(&str, bool)> = j
            .cookies()
            .iter()
            .map(|c| (c.name.as_str(), c.secure))
            .collect();
        assert_eq!(
            names,
            [
                ("a", true),
                ("__Secure-y", true),
                ("old", false),
                ("p", false),
                ("p", false)
            ]
        );
    }

    #[test]
    fn results_follow_the_list_order_not_the_penalty() {
        // A session without Secure under HSTS (-10) is "worse" than a plain cookie without Secure (-20).
        let j = jar(&["sessionid=1; HttpOnly", "theme=dark"]);
        assert_eq!(
            judge(&j, &[], true),
            "cookies-session-without-secure-flag-but-protected-by-hsts"
        );
        assert_eq!(judge(&j, &[], false), "cookies-session-without-secure-flag");
        let j = jar(&["csrftoken=1; Secure"]);
        assert_eq!(
            judge(&j, &[], true),
            "cookies-anticsrf-without-samesite-flag"
        );
        let j = jar(&["login=1; Secure; HttpOnly; SameSite=Lax"]);
        assert_eq!(
            judge(&j, &[], true),
            "cookies-secure-with-httponly-sessions-and-samesite"
        );
        let j = jar(&["heroku-session-affinity=1"]);
        assert_eq!(judge(&j, &[], false), "cookies-not-found");
        let raw = ["x=1; Secure; SameSite=Sometimes".to_string()];
        assert_eq!(
            judge(&jar(&[&raw[0]]), &raw, true),
            "cookies-samesite-flag-invalid"
        );
    }
}
