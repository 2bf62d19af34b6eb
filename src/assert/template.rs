//! `{{ name }}` interpolation for every configuration string.

use std::collections::BTreeMap;

/// The names a template can use, and which of them are secret.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub values: BTreeMap<String, String>,
    pub secret_names: Vec<String>,
    /// Names a later flow step captures, with that step's name: using one too early gets a
    /// message that says so.
    pub later: BTreeMap<String, String>,
}

impl Scope {
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_string(), value.into());
    }

    pub(crate) fn set_secret(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_string(), value.into());
        self.secret_names.push(name.to_string());
    }
}

/// An unknown name, or an unclosed `{{`, at a byte offset in the template.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub offset: usize,
    /// Length of the offending `{{ ... }}`, for the caret.
    pub len: usize,
    pub message: String,
}

/// The rendered text, and whether a secret went into it (such a request needs a trusted connection).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub uses_secret: bool,
}

/// Replaces every `{{ name }}` in `template` with its value from `scope`.
pub fn interpolate(template: &str, scope: &Scope) -> Result<Rendered, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut uses_secret = false;
    let mut rest = template;
    let mut offset = 0;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(TemplateError {
                offset: offset + open,
                len: 2,
                message: "unclosed \"{{\"".into(),
            });
        };
        let name = after[..close].trim();
        match scope.values.get(name) {
            Some(v) => {
                out.push_str(v);
                uses_secret |= scope.secret_names.iter().any(|s| s == name);
            }
            None if scope.later.contains_key(name) => {
                let step = &scope.later[name];
                return Err(TemplateError {
                    offset: offset + open,
                    len: close + 4,
                    message: format!(
                        "\"{name}\" is captured by the step \"{step}\", which has not run yet here: a step can use only what earlier steps captured"
                    ),
                });
            }
            None => {
                let hint = crate::units::suggest(name, scope.values.keys().map(String::as_str))
                    .map(|s| format!(", did you mean \"{s}\"?"))
                    .unwrap_or_default();
                return Err(TemplateError {
                    offset: offset + open,
                    len: close + 4,
                    message: format!("unknown variable \"{name}\"{hint}"),
                });
            }
        }
        let consumed = open + 2 + close + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    out.push_str(rest);
    Ok(Rendered {
        text: out,
        uses_secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_and_flags_secrets() {
        let mut s = Scope::default();
        s.set("base_url", "https://x");
        s.set_secret("secrets.pw", "hunter2");
        let r = interpolate("{{ base_url }}/a?p={{secrets.pw}}", &s).unwrap();
        assert_eq!(
            r,
            Rendered {
                text: "https://x/a?p=hunter2".into(),
                uses_secret: true
            }
        );
        assert!(!interpolate("{{ base_url }}", &s).unwrap().uses_secret);
        let e = interpolate("x {{ base_ur }}", &s).unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("did you mean \"base_url\""));
        assert_eq!(
            interpolate("{{ open", &s).unwrap_err().message,
            "unclosed \"{{\""
        );
    }
}
