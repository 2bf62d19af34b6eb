//! Building one job: the check's common settings, then its kind's own `build`.

use crate::assert::Scope;
use crate::check::build::{Build, Diags};
use crate::config::{CheckSpec, Config};

use super::Job;

pub(super) fn build_job(
    config: &Config,
    spec: &CheckSpec,
    scope: &Scope,
    diags: &mut Diags,
) -> Option<Job> {
    let timeout = spec
        .timeout
        .unwrap_or_else(|| spec.kind.default_timeout(config.defaults.timeout));
    let mut build = Build {
        scope,
        diags,
        insecure: spec.insecure,
        max_body: config.defaults.max_body,
    };
    let probe = spec.kind.build(&mut build)?;
    Some(Job {
        name: spec.name.value.clone(),
        interval: spec.interval,
        timeout,
        probe,
    })
}
