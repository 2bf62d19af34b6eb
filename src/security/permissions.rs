//! `Permissions-Policy`: a structured-field dictionary (RFC 8941) of feature → allowlist.

/// Parses the header into feature names; an error says what does not parse.
pub fn parse(value: &str) -> Result<Vec<String>, super::Invalid> {
    let mut features = Vec::new();
    for member in split_top(value) {
        let member = member.trim();
        if member.is_empty() {
            return Err(super::Invalid("empty member".into()));
        }
        let (key, rest) = member.split_once('=').unwrap_or((member, "?1"));
        let key = key.trim();
        let first = key.chars().next().unwrap_or(' ');
        let key_ok = (first.is_ascii_lowercase() || first == '*')
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*".contains(c));
        if !key_ok {
            return Err(super::Invalid(format!("invalid feature name \"{key}\"")));
        }
        // Parameters (`;report-to=x`) follow the value.
        let value = rest.split(';').next().unwrap_or("").trim();
        if !valid_value(value) {
            return Err(super::Invalid(format!(
                "invalid allowlist for \"{key}\": {value}"
            )));
        }
        features.push(key.to_string());
    }
    if features.is_empty() {
        return Err(super::Invalid("no features".into()));
    }
    Ok(features)
}

/// Splits on commas that are not inside a parenthesised list or a string.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut quoted, mut start) = (Vec::new(), 0i32, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_item(item: &str) -> bool {
    item == "*"
        || item == "self"
        || item == "src"
        || (item.len() >= 2
            && item.starts_with('"')
            && item.ends_with('"')
            && !item[1..item.len() - 1].contains('"'))
}

fn valid_value(v: &str) -> bool {
    if let Some(inner) = v.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        return inner.split_ascii_whitespace().all(valid_item);
    }
    valid_item(v) || v == "?1" || v == "?0"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_forms() {
        assert_eq!(
            parse("geolocation=(), camera=(self \"https://a.example\"), fullscreen=*").unwrap(),
            ["geolocation", "camera", "fullscreen"]
        );
        assert!(parse("interest-cohort=()").is_ok());
        assert!(parse("geolocation 'none'").is_err());
        assert!(parse("Camera=()").is_err());
        assert!(parse("camera=(self").is_err());
        assert!(parse("").is_err());
    }
}
