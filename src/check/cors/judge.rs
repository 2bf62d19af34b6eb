//! Findings from what each origin got back. A browser honours exactly one
//! `Access-Control-Allow-Origin` equal to the origin (or `*`), so that is what "allowed" means here.
//!
//! When the server echoes every origin, or answers `*` to all of them, that is one cause: it is
//! explained once under `cors.reflect`, and the other classes say they share it.

use super::origins::{Class, Probe};
use super::{Results, Seen, Sent};
use crate::check::{Finding, Status};

/// The one misconfiguration behind many allowed origins, if there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// Every unrelated origin gets itself back.
    Echo,
    /// Every unrelated origin gets `*`.
    Star,
    None,
}

pub(super) fn findings(
    allowed: &[String],
    method: &http::Method,
    results: &Results,
) -> Vec<Finding> {
    let root = root(results);
    let mut out = vec![allowed_finding(allowed, method, results)];
    for class in Class::FORBIDDEN {
        let group: Vec<&(Probe, Vec<Seen>)> =
            results.iter().filter(|(p, _)| p.class == class).collect();
        if !group.is_empty() {
            out.push(forbidden_finding(class, &group, root));
        }
    }
    out.push(wildcard_credentials(results));
    out
}

fn root(results: &Results) -> Root {
    let unrelated: Vec<&(Probe, Vec<Seen>)> = results
        .iter()
        .filter(|(p, _)| p.class == Class::Reflect)
        .collect();
    let all = |f: &dyn Fn(&Probe, &Seen) -> bool| {
        !unrelated.is_empty()
            && unrelated
                .iter()
                .all(|(p, seen)| seen.iter().any(|s| f(p, s)))
    };
    if all(&|p, s| s.acao() == Some(p.origin.as_str())) {
        Root::Echo
    } else if all(&|_, s| s.acao() == Some("*")) {
        Root::Star
    } else {
        Root::None
    }
}

/// Why a response does not give `origin` exactly itself back, or `None` when it does.
fn refusal(s: &Seen, origin: &str) -> Option<String> {
    let got = match s.acao.as_slice() {
        [] => return Some("no Access-Control-Allow-Origin".into()),
        [one] => one.as_str(),
        many => {
            return Some(format!(
                "{} Access-Control-Allow-Origin headers ({}): browsers reject a response with more than one, which happens when both the application and a proxy add the header",
                many.len(),
                many.join(" | ")
            ));
        }
    };
    if got == origin {
        return None;
    }
    let listed = got.split([' ', ',']).filter(|t| !t.is_empty()).count() > 1;
    Some(if listed {
        format!(
            "a list of origins \"{got}\": the header takes exactly one origin, so echo the request's Origin when it is on your list"
        )
    } else if got.trim_end_matches('/') == origin {
        format!(
            "\"{got}\" has a trailing slash: browsers compare the origin exactly, and an origin has no path"
        )
    } else if got.eq_ignore_ascii_case(origin) {
        format!("\"{got}\" differs in letter case: browsers compare the origin byte for byte")
    } else if got == "*" {
        "* instead of the origin".into()
    } else {
        format!("another origin, \"{got}\"")
    })
}

fn allowed_finding(allowed: &[String], method: &http::Method, results: &Results) -> Finding {
    let expected = "each allowed origin gets exactly itself back, with Vary: Origin";
    if allowed.is_empty() {
        return Finding::new(
            "cors.allowed",
            Status::Pass,
            "no allowed origins are configured",
        )
        .with_values(expected, "none configured");
    }
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for (p, seen) in results.iter().filter(|(p, _)| p.class == Class::Allowed) {
        let pre = seen.iter().find(|s| s.sent == Sent::Preflight);
        let act = seen
            .iter()
            .find(|s| s.sent == Sent::Method)
            .or_else(|| seen.iter().find(|s| s.sent == Sent::Get));
        let (Some(pre), Some(act)) = (pre, act) else {
            continue;
        };
        let o = p.origin.as_str();
        match (refusal(pre, o), refusal(act, o)) {
            (None, None) => {
                for s in [pre, act].into_iter().filter(|s| !s.vary_origin) {
                    warnings.push(format!("{} without Vary: Origin, so a cache may serve one origin's answer to another", s.evidence()));
                }
            }
            (None, Some(why)) => problems.push(format!(
                "the preflight allows {o}, but the {method} response refuses it ({why}), so browsers block the answer: {}",
                act.evidence()
            )),
            (Some(why), None) => problems.push(format!(
                "the {method} response allows {o}, but the preflight refuses it ({why}), so browsers never send the {method}: {}",
                pre.evidence()
            )),
            (Some(_), Some(_)) if pre.acao() == Some("*") && act.acao() == Some("*") => {
                if act.credentials {
                    problems.push(format!("{o} gets * with credentials, which browsers reject: {}", act.evidence()));
                } else {
                    warnings.push(format!("{o} gets * instead of itself: {}", act.evidence()));
                }
            }
            (Some(why), Some(_)) => problems.push(format!("{o} is refused: {why}: {}", act.evidence())),
        }
    }
    let (status, detail) = if !problems.is_empty() {
        (Status::Fail, problems.join("; "))
    } else if !warnings.is_empty() {
        (Status::Warn, warnings.join("; "))
    } else {
        (
            Status::Pass,
            format!("{} origins allowed exactly", allowed.len()),
        )
    };
    let msg = match status {
        Status::Pass => detail.clone(),
        Status::Warn => format!("allowed origins work, but: {detail}"),
        _ => format!("an allowed origin does not work: {detail}"),
    };
    Finding::new("cors.allowed", status, msg).with_values(expected, detail)
}

/// How bad one allowing response is for an origin of `class`.
fn severity(class: Class, s: &Seen, root: Root) -> Status {
    let star = s.acao() == Some("*");
    match (star, s.credentials) {
        // `*` answers every origin alike: judged once, under cors.reflect.
        (true, _) if class != Class::Reflect && root == Root::Star => Status::Pass,
        (true, true) => Status::Fail,
        (true, false) => Status::Warn,
        (false, true) => Status::Fail,
        (false, false) if class == Class::Subdomain => Status::Warn,
        (false, false) => Status::Fail,
    }
}

/// A forbidden origin that is allowed: an exact echo fails, `*` warns unless credentials come
/// with it, and an unlisted subdomain warns unless credentials come with it.
fn forbidden_finding(class: Class, group: &[&(Probe, Vec<Seen>)], root: Root) -> Finding {
    let mut worst = Status::Pass;
    let mut evidence = Vec::new();
    let mut allowed_origins = Vec::new();
    for (p, seen) in group {
        let allowing: Vec<&Seen> = seen.iter().filter(|s| s.allows(&p.origin)).collect();
        for s in &allowing {
            worst = worst.max(severity(class, s, root));
            evidence.push(s.evidence());
        }
        if !allowing.is_empty() {
            allowed_origins.push(p.origin.as_str());
        }
        if allowing.len() == 1 && allowing[0].sent == Sent::Get && seen.len() > 1 {
            evidence.push(format!(
                "only the simple GET allows {}: a browser sends it without a preflight",
                p.origin
            ));
        }
    }
    let origins: Vec<&str> = group.iter().map(|(p, _)| p.origin.as_str()).collect();
    let expected = format!("not allowed: {}", origins.join(", "));
    let what = class.what();
    if evidence.is_empty() {
        return Finding::new(
            class.id(),
            Status::Pass,
            format!("{what} is not allowed ({} origins tried)", origins.len()),
        )
        .with_values(expected, "no Access-Control-Allow-Origin for them");
    }
    let shared = class != Class::Reflect && root != Root::None;
    let msg = match (class, root) {
        (Class::Reflect, Root::Echo) => format!(
            "the server echoes any Origin it is sent back in Access-Control-Allow-Origin, so every site can read its answers{}: {}",
            if worst == Status::Fail && group.iter().any(|(_, s)| s.iter().any(|x| x.credentials)) {
                " with the user's cookies"
            } else {
                ""
            },
            evidence.join("; ")
        ),
        (Class::Reflect, Root::Star) => format!(
            "the server answers every origin with *: {}",
            evidence.join("; ")
        ),
        _ if shared && worst == Status::Pass => format!(
            "{what} gets * like every origin ({}): judged once, under cors.reflect",
            allowed_origins.join(", ")
        ),
        _ if shared => format!(
            "{what} is allowed ({}), like every origin: same cause as cors.reflect",
            allowed_origins.join(", ")
        ),
        _ => format!("{what} is allowed: {}", evidence.join("; ")),
    };
    let actual = if shared {
        format!(
            "allowed ({}): same cause as cors.reflect",
            allowed_origins.join(", ")
        )
    } else {
        evidence.join("; ")
    };
    Finding::new(class.id(), worst, msg).with_values(expected, actual)
}

fn wildcard_credentials(results: &Results) -> Finding {
    let expected = "no `*` together with Access-Control-Allow-Credentials: true";
    let hit = results
        .iter()
        .flat_map(|(_, r)| r)
        .find(|s| s.acao() == Some("*") && s.credentials);
    match hit {
        Some(s) => Finding::new(
            "cors.wildcard_credentials",
            Status::Fail,
            format!(
                "* with credentials, which browsers refuse to honour: {}",
                s.evidence()
            ),
        )
        .with_values(expected, s.evidence()),
        None => Finding::new(
            "cors.wildcard_credentials",
            Status::Pass,
            "no wildcard origin with credentials",
        )
        .with_values(expected, "none"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(acao: &[&str]) -> Seen {
        Seen {
            sent: Sent::Method,
            request: "POST / with Origin: https://app.example.com".into(),
            acao: acao.iter().map(|s| s.to_string()).collect(),
            credentials: false,
            vary_origin: true,
        }
    }

    #[test]
    fn refusals_say_what_to_fix() {
        let o = "https://app.example.com";
        let r = |acao: &[&str]| refusal(&seen(acao), o).unwrap_or_default();
        assert!(r(&[o, o]).contains("2 Access-Control-Allow-Origin headers"));
        assert!(
            r(&["https://app.example.com https://www.example.com"]).contains("a list of origins")
        );
        assert!(
            r(&["https://app.example.com, https://www.example.com"]).contains("a list of origins")
        );
        assert!(r(&["https://app.example.com/"]).contains("trailing slash"));
        assert!(r(&["https://App.Example.com"]).contains("letter case"));
        assert!(r(&["https://other.example.com"]).contains("another origin"));
        assert!(r(&[]).contains("no Access-Control-Allow-Origin"));
        assert_eq!(refusal(&seen(&[o]), o), None);
    }
}
