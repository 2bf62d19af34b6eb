//! A cookie jar for one flow run (RFC 6265 §5.3–5.4): Domain, Path, Secure and expiry are honoured.

use std::time::{Duration, SystemTime};

use url::Url;

/// One stored cookie.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    name: String,
    value: String,
    domain: String,
    /// Without a Domain attribute, a cookie goes back only to the exact host that set it.
    host_only: bool,
    path: String,
    secure: bool,
    expires: Option<SystemTime>,
}

/// Cookies set during a flow, sent back on later steps.
#[derive(Debug, Clone, Default)]
pub struct Jar {
    cookies: Vec<Stored>,
}

impl Jar {
    /// Stores the cookies of a response from `url`, replacing same-name ones and dropping expired ones.
    pub fn store(&mut self, url: &Url, headers: &http::HeaderMap, now: SystemTime) {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        for v in headers.get_all(http::header::SET_COOKIE) {
            let Some(c) = v
                .to_str()
                .ok()
                .and_then(|s| parse(s, &host, url.path(), now))
            else {
                continue;
            };
            self.cookies
                .retain(|o| !(o.name == c.name && o.domain == c.domain && o.path == c.path));
            if c.expires.is_none_or(|e| e > now) {
                self.cookies.push(c);
            }
        }
    }

    /// The `Cookie` header for a request to `url`, if any cookie applies.
    pub(crate) fn header_for(&self, url: &Url, now: SystemTime) -> Option<String> {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        let path = url.path();
        let mut matching: Vec<&Stored> = self
            .cookies
            .iter()
            .filter(|c| c.expires.is_none_or(|e| e > now))
            .filter(|c| !c.secure || url.scheme() == "https")
            .filter(|c| {
                if c.host_only {
                    host == c.domain
                } else {
                    domain_match(&host, &c.domain)
                }
            })
            .filter(|c| path_match(path, &c.path))
            .collect();
        // Longer paths first, as browsers send them.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let pairs: Vec<String> = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// The current value of a cookie, for `cookie NAME` captures.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .rev()
            .find(|c| c.name == name)
            .map(|c| c.value.as_str())
    }
}

fn parse(header: &str, host: &str, request_path: &str, now: SystemTime) -> Option<Stored> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut c = Stored {
        name: name.to_string(),
        value: value.trim().to_string(),
        domain: host.to_string(),
        host_only: true,
        path: default_path(request_path),
        secure: false,
        expires: None,
    };
    let mut max_age = None;
    for attr in parts {
        let (k, v) = attr
            .split_once('=')
            .map_or((attr.trim(), ""), |(k, v)| (k.trim(), v.trim()));
        match k.to_ascii_lowercase().as_str() {
            "domain" if !v.is_empty() => {
                let d = v.trim_start_matches('.').to_ascii_lowercase();
                // A server may only widen a cookie to a domain it belongs to.
                if !domain_match(host, &d) {
                    return None;
                }
                c.domain = d;
                c.host_only = false;
            }
            "path" if v.starts_with('/') => c.path = v.to_string(),
            "secure" => c.secure = true,
            "max-age" => max_age = v.parse::<i64>().ok(),
            "expires" if c.expires.is_none() => c.expires = httpdate::parse_http_date(v).ok(),
            _ => {}
        }
    }
    // Max-Age wins over Expires.
    if let Some(secs) = max_age {
        c.expires = Some(if secs <= 0 {
            SystemTime::UNIX_EPOCH
        } else {
            now + Duration::from_secs(secs as u64)
        });
    }
    Some(c)
}

fn default_path(request_path: &str) -> String {
    match request_path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => request_path[..i].to_string(),
    }
}

fn domain_match(host: &str, domain: &str) -> bool {
    host == domain || (host.ends_with(domain) && host[..host.len() - domain.len()].ends_with('.'))
}

fn path_match(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request[cookie.len()..].starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(jar: &mut Jar, url: &str, cookies: &[&str], now: SystemTime) {
        let mut h = http::HeaderMap::new();
        for c in cookies {
            h.append(http::header::SET_COOKIE, c.parse().unwrap());
        }
        jar.store(&Url::parse(url).unwrap(), &h, now);
    }

    #[test]
    fn domain_path_secure_and_expiry() {
        let now = SystemTime::now();
        let mut jar = Jar::default();
        set(
            &mut jar,
            "https://api.example.com/auth/login",
            &[
                "sid=1; Path=/; Secure",
                "wide=2; Domain=example.com; Path=/",
                "scoped=3",
                "gone=4; Max-Age=0",
                "evil=5; Domain=other.com",
            ],
            now,
        );
        let get = |jar: &Jar, u: &str| jar.header_for(&Url::parse(u).unwrap(), now);
        assert_eq!(
            get(&jar, "https://api.example.com/auth/me").as_deref(),
            Some("scoped=3; sid=1; wide=2")
        );
        assert_eq!(
            get(&jar, "https://api.example.com/other").as_deref(),
            Some("sid=1; wide=2")
        );
        assert_eq!(
            get(&jar, "http://api.example.com/").as_deref(),
            Some("wide=2")
        );
        assert_eq!(
            get(&jar, "https://www.example.com/").as_deref(),
            Some("wide=2")
        );
        assert_eq!(get(&jar, "https://example.org/"), None);
        assert_eq!(
            jar.header_for(
                &Url::parse("https://api.example.com/").unwrap(),
                now + Duration::from_secs(1)
            )
            .as_deref(),
            Some("sid=1; wide=2")
        );
        set(
            &mut jar,
            "https://api.example.com/",
            &["sid=; Max-Age=0; Path=/"],
            now,
        );
        assert_eq!(
            get(&jar, "https://api.example.com/").as_deref(),
            Some("wide=2")
        );
        set(
            &mut jar,
            "https://api.example.com/",
            &["t=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT"],
            now,
        );
        assert_eq!(jar.value("t"), None);
    }
}
