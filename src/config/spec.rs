//! The `[[check]]` tables: the keys every check has, then its kind's own (read by the kind's
//! module in `check/`), each table rejecting keys it does not know.

use std::ops::Range;
use std::time::Duration;

use crate::assert::Context;
use crate::check::read::read_expect;
use crate::check::{Kind, KindSpec};
use crate::doc::{Diagnostics, Node, Spanned, Table};

/// One `[[check]]` as written, before interpolation.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub name: Spanned<String>,
    pub timeout: Option<Duration>,
    /// Lets requests go over a connection whose certificate failed verification.
    pub insecure: bool,
    /// Time between two runs in the agent; `[agent].interval` when unset.
    pub interval: Option<Duration>,
    /// This check's alert rule, when it differs from `[alerts]` (keys given here override it).
    pub alert: Option<Node>,
    pub span: Range<usize>,
    pub kind: KindSpec,
}

const COMMON: &[&str] = &["name", "kind", "timeout", "insecure", "interval", "alert"];

pub(super) fn read_check(node: &Node, index: usize, diags: &mut Diagnostics) -> Option<CheckSpec> {
    let mut t = Table::of(node, format!("check[{index}]"), diags);
    let name = t.str("name", diags);
    if name.is_none() {
        diags.error(t.span(), format!("{}: missing `name`", t.path()));
    }
    if let Some(n) = &name {
        let path = t.path().to_string();
        t = Table::of(node, format!("check \"{}\"", n.value), diags);
        t.get("name");
        let _ = path;
    }
    let timeout = t.duration("timeout", diags);
    let insecure = t.bool("insecure", diags).unwrap_or(false);
    let interval = t.duration("interval", diags);
    let alert = t.get("alert").cloned();
    if let Some(node) = &alert {
        let mut at = Table::of(node, format!("{}.alert", t.path()), diags);
        super::read_rule(&mut at, &mut crate::alert::Rule::default(), diags);
        at.finish(
            &["failures", "successes", "repeat", "send_resolved", "window"],
            diags,
        );
    }
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    let kind = match t.str("kind", diags) {
        None => {
            diags.error(
                t.span(),
                format!("{}: missing `kind` (one of {})", t.path(), names.join(", ")),
            );
            None
        }
        Some(k) => match Kind::from_name(&k.value) {
            Some(kind) => Some(KindSpec::read(kind, &mut t, diags)),
            None => {
                let hint = super::suggest(&k.value, names.iter().copied())
                    .map(|s| format!(", did you mean \"{s}\"?"))
                    .unwrap_or_else(|| format!(" (known kinds: {})", names.join(", ")));
                diags.error(k.span, format!("unknown check kind \"{}\"{hint}", k.value));
                None
            }
        },
    };
    match &kind {
        Some(kind) => {
            let own = kind.as_ref().map(|k| k.kind().keys()).unwrap_or_default();
            let known: Vec<&str> = COMMON.iter().copied().chain(own).collect();
            t.finish(&known, diags);
        }
        // Without a valid kind, still report typos and bad assertions: any kind's key is accepted.
        None => {
            read_expect(&mut t, Context::Response, diags);
            let mut known: Vec<&str> = COMMON.to_vec();
            for k in Kind::ALL {
                known.extend(k.keys());
            }
            t.finish(&known, diags);
        }
    }
    Some(CheckSpec {
        name: name?,
        timeout,
        insecure,
        interval,
        alert,
        span: node.span.clone(),
        kind: kind.flatten()?,
    })
}
