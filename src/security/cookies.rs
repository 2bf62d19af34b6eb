//! `Set-Cookie` attributes (RFC 6265bis): only the flags are kept, never the value.

/// The security-relevant parts of one cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub secure: bool,
    pub http_only: bool,
    /// The SameSite value as sent, if any.
    pub same_site: Option<String>,
}

/// Parses a `Set-Cookie` value; `None` when it has no `name=` pair.
pub fn parse(header: &str) -> Option<Cookie> {
    let mut parts = header.split(';');
    let (name, _value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut c = Cookie {
        name: name.to_string(),
        secure: false,
        http_only: false,
        same_site: None,
    };
    for attr in parts {
        let (k, v) = attr
            .split_once('=')
            .map_or((attr.trim(), ""), |(k, v)| (k.trim(), v.trim()));
        match k.to_ascii_lowercase().as_str() {
            "secure" => c.secure = true,
            "httponly" => c.http_only = true,
            "samesite" => c.same_site = Some(v.to_string()),
            _ => {}
        }
    }
    Some(c)
}

impl Cookie {
    /// Names that usually carry a session or credentials, which must not be readable by scripts.
    /// An anti-CSRF token (`csrftoken`, `XSRF-TOKEN`) is not one: the double-submit pattern needs
    /// scripts to read it.
    pub fn is_session_like(&self) -> bool {
        let n = self.name.to_ascii_lowercase();
        !self.is_anti_csrf()
            && ["sess", "sid", "login", "auth", "token", "jwt", "remember"]
                .iter()
                .any(|p| n.contains(p))
    }

    pub(crate) fn is_anti_csrf(&self) -> bool {
        let n = self.name.to_ascii_lowercase();
        n.contains("csrf") || n.contains("xsrf")
    }

    /// `Strict`, `Lax` or `None` (any case); `None` only with `Secure`.
    pub fn same_site_problem(&self) -> Option<String> {
        let v = self.same_site.as_deref()?;
        match v.to_ascii_lowercase().as_str() {
            "strict" | "lax" => None,
            "none" if self.secure => None,
            "none" => Some("SameSite=None without Secure".into()),
            _ => Some(format!("invalid SameSite=\"{v}\"")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_classes() {
        let c = parse("SESSIONID=abc; Path=/; Secure; HttpOnly; SameSite=Lax").unwrap();
        assert!(c.secure && c.http_only && c.is_session_like() && c.same_site_problem().is_none());
        let c = parse("theme=dark; samesite=None").unwrap();
        assert_eq!(
            c.same_site_problem().as_deref(),
            Some("SameSite=None without Secure")
        );
        assert!(!c.is_session_like());
        assert_eq!(
            parse("x=1; SameSite=Sometimes")
                .unwrap()
                .same_site_problem()
                .as_deref(),
            Some("invalid SameSite=\"Sometimes\"")
        );
        assert!(parse("csrftoken=1").unwrap().is_anti_csrf());
        assert!(!parse("XSRF-TOKEN=1").unwrap().is_session_like());
        assert!(parse("auth_token=1").unwrap().is_session_like());
        assert!(parse("novalue").is_none());
        assert!(parse("=x").is_none());
    }
}
