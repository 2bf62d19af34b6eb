//! A spanned TOML tree and a reader that collects every problem instead of stopping at the first,
//! with the diagnostics it produces. Configuration reading and every check kind's keys build on it.

mod error;

pub use error::{ConfigError, Diagnostic, line_col};

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use crate::units::suggest;

/// One TOML value with the byte range it came from, so every later error can point at it.
#[derive(Debug, Clone)]
pub struct Node {
    pub span: Range<usize>,
    pub value: Value,
}

/// The value part of a [`Node`]. Tables keep their keys' spans for "unknown key" errors.
#[derive(Debug, Clone)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// A key of a table, with the span of the key itself.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub node: Node,
}

impl Node {
    /// Parses TOML source into a spanned tree; a syntax error is returned as a diagnostic.
    pub fn parse(src: &str) -> Result<Node, Diagnostic> {
        match DeTable::parse(src) {
            Ok(table) => {
                let span = table.span();
                Ok(Node {
                    span,
                    value: Value::Table(convert_table(table.get_ref())),
                })
            }
            Err(err) => Err(Diagnostic::new(
                err.span().unwrap_or(0..0),
                format!("invalid TOML: {}", err.message().trim()),
            )),
        }
    }

    /// A short word for the value's type, used in "expected a string, found an integer".
    pub(crate) fn type_name(&self) -> &'static str {
        match self.value {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Datetime(_) => "a datetime",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

fn convert_table(table: &DeTable<'_>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = table
        .iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().to_string(),
            key_span: k.span(),
            node: convert(v.get_ref(), v.span()),
        })
        .collect();
    // The map is ordered by key; source order reads better in errors and reports.
    entries.sort_by_key(|e| e.key_span.start);
    entries
}

fn convert(value: &DeValue<'_>, span: Range<usize>) -> Node {
    let value = match value {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Value::Int(n),
            Err(_) => Value::Float(f64::INFINITY),
        },
        DeValue::Float(f) => Value::Float(f.to_string().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(a) => {
            Value::Array(a.iter().map(|v| convert(v.get_ref(), v.span())).collect())
        }
        DeValue::Table(t) => Value::Table(convert_table(t)),
    };
    Node { span, value }
}

/// Collects diagnostics while configuration is read, so all of them are reported at once.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub diagnostics: Vec<Diagnostic>,
    /// Every secret the file refers to outside `[secrets]` (sinks, `[agent]`), so `validate`
    /// can read them all before the agent needs them.
    pub secret_refs: Vec<SecretRef>,
}

impl Diagnostics {
    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(span, message.into()));
    }

    pub(crate) fn wrong_type(&mut self, path: &str, node: &Node, want: &str) {
        self.error(
            node.span.clone(),
            format!("{path}: expected {want}, found {}", node.type_name()),
        );
    }
}

/// Reads the keys of one table, remembering which were used so leftovers can be reported.
pub struct Table<'a> {
    path: String,
    span: Range<usize>,
    entries: &'a [Entry],
    used: Vec<bool>,
}

impl<'a> Table<'a> {
    /// Views `node` as a table; reports a type error and yields an empty view otherwise.
    pub fn of(node: &'a Node, path: impl Into<String>, diags: &mut Diagnostics) -> Table<'a> {
        let path = path.into();
        let entries: &[Entry] = match &node.value {
            Value::Table(e) => e,
            _ => {
                diags.wrong_type(&path, node, "a table");
                &[]
            }
        };
        Table {
            path,
            span: node.span.clone(),
            entries,
            used: vec![false; entries.len()],
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The dotted path of a key, for messages.
    pub(crate) fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw node for `key`, marking it used.
    pub fn get(&mut self, key: &str) -> Option<&'a Node> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        self.used[i] = true;
        Some(&self.entries[i].node)
    }

    pub fn str(&mut self, key: &str, diags: &mut Diagnostics) -> Option<Spanned<String>> {
        let node = self.get(key)?;
        match &node.value {
            Value::Str(s) => Some(Spanned {
                span: node.span.clone(),
                value: s.clone(),
            }),
            _ => {
                diags.wrong_type(&self.key_path(key), node, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, key: &str, diags: &mut Diagnostics) -> Option<bool> {
        let node = self.get(key)?;
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                diags.wrong_type(&self.key_path(key), node, "true or false");
                None
            }
        }
    }

    /// An integer within `range`, reported with its bounds when it is outside them.
    pub(crate) fn int(
        &mut self,
        key: &str,
        range: Range<i64>,
        diags: &mut Diagnostics,
    ) -> Option<i64> {
        let node = self.get(key)?;
        match node.value {
            Value::Int(n) if range.contains(&n) => Some(n),
            Value::Int(n) => {
                let msg = format!(
                    "{}: {n} is out of range, expected {} to {}",
                    self.key_path(key),
                    range.start,
                    range.end - 1
                );
                diags.error(node.span.clone(), msg);
                None
            }
            _ => {
                diags.wrong_type(&self.key_path(key), node, "an integer");
                None
            }
        }
    }

    pub fn duration(&mut self, key: &str, diags: &mut Diagnostics) -> Option<Duration> {
        let s = self.str(key, diags)?;
        match parse_duration(&s.value) {
            Ok(d) => Some(d),
            Err(why) => {
                diags.error(s.span, format!("{}: {why}", self.key_path(key)));
                None
            }
        }
    }

    /// A list of strings; a lone string is also accepted as a one-element list.
    pub(crate) fn str_list(
        &mut self,
        key: &str,
        diags: &mut Diagnostics,
    ) -> Option<Vec<Spanned<String>>> {
        let node = self.get(key)?;
        let path = self.key_path(key);
        Some(str_list(node, &path, diags))
    }

    /// A table of string values, such as `headers` or `labels`.
    pub(crate) fn str_map(
        &mut self,
        key: &str,
        diags: &mut Diagnostics,
    ) -> Option<Vec<(String, Spanned<String>)>> {
        let node = self.get(key)?;
        let path = self.key_path(key);
        let mut out = Vec::new();
        let mut t = Table::of(node, path.clone(), diags);
        for e in t.entries {
            match &e.node.value {
                Value::Str(s) => out.push((
                    e.key.clone(),
                    Spanned {
                        span: e.node.span.clone(),
                        value: s.clone(),
                    },
                )),
                _ => diags.wrong_type(&format!("{path}.{}", e.key), &e.node, "a string"),
            }
        }
        t.used.iter_mut().for_each(|u| *u = true);
        Some(out)
    }

    /// Every entry of this table, marking all of them used (for free-form maps).
    pub(crate) fn entries(&mut self) -> &'a [Entry] {
        self.used.iter_mut().for_each(|u| *u = true);
        self.entries
    }

    /// Reports keys that were never read, with a suggestion from `known`.
    pub(crate) fn finish(self, known: &[&str], diags: &mut Diagnostics) {
        for (e, used) in self.entries.iter().zip(&self.used) {
            // A known key left unread belongs to a part that could not be judged (e.g. an unknown kind).
            if *used || known.contains(&e.key.as_str()) {
                continue;
            }
            let mut msg = format!("unknown key `{}` in {}", e.key, self.describe());
            if let Some(s) = suggest(&e.key, known.iter().copied()) {
                msg.push_str(&format!(", did you mean `{s}`?"));
            } else if !known.is_empty() {
                msg.push_str(&format!(" (known keys: {})", known.join(", ")));
            }
            diags.error(e.key_span.clone(), msg);
        }
    }

    fn describe(&self) -> String {
        if self.path.is_empty() {
            "the top level".to_string()
        } else {
            format!("`{}`", self.path)
        }
    }
}

/// Reads a list of strings from `node`, accepting a single string as a list of one.
pub(crate) fn str_list(node: &Node, path: &str, diags: &mut Diagnostics) -> Vec<Spanned<String>> {
    match &node.value {
        Value::Str(s) => vec![Spanned {
            span: node.span.clone(),
            value: s.clone(),
        }],
        Value::Array(items) => items
            .iter()
            .filter_map(|n| match &n.value {
                Value::Str(s) => Some(Spanned {
                    span: n.span.clone(),
                    value: s.clone(),
                }),
                _ => {
                    diags.wrong_type(path, n, "a string");
                    None
                }
            })
            .collect(),
        _ => {
            diags.wrong_type(path, node, "a list of strings");
            Vec::new()
        }
    }
}

/// A value with the byte range of the source text it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub span: Range<usize>,
    pub value: T,
}

pub use crate::units::parse_duration;

/// Where a secret's value comes from. The value itself is only read when a plan is built.
#[derive(Debug, Clone)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    NotSet(String),
    #[error("cannot read \"{}\": {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A secret that could not be read, with what it was for.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct SecretReadError {
    pub what: String,
    #[source]
    pub source: SecretError,
}

/// Reads a secret for a named purpose; passed in so only `main.rs` reads the environment.
pub(crate) type ReadSecret<'a> = &'a dyn Fn(&SecretSource, &str) -> Result<String, SecretReadError>;

impl SecretSource {
    /// Reads the secret's value; `getenv` is passed in so only `main.rs` reads the environment.
    pub fn read(&self, getenv: &dyn Fn(&str) -> Option<String>) -> Result<String, SecretError> {
        match self {
            SecretSource::Env(var) => getenv(var)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| SecretError::NotSet(var.clone())),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|source| SecretError::Unreadable {
                    path: path.clone(),
                    source,
                }),
        }
    }
}

/// A secret the file refers to outside `[secrets]`: where, and what it is for.
#[derive(Debug, Clone)]
pub struct SecretRef {
    /// The key path, such as `alerts.sink[0].webhook_url`.
    pub what: String,
    pub source: SecretSource,
    pub span: std::ops::Range<usize>,
}
