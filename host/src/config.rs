//! The operator's settings read from the environment (beside the command
//! line flags, which `warden serve` parses): the scheduler's timings and
//! the audit log's limits and categories. Each reader takes the lookup as
//! an argument, so tests give it a map instead of changing the process's
//! environment; `from_env` variants read the real one.
//!
//! | variable | meaning |
//! |---|---|
//! | `WARDEN_SCHEDULER_TICK_MS` | how often due jobs are looked for |
//! | `WARDEN_JOB_RETRY_DELAY_MS` | a failed run's retry waits this × attempt |
//! | `WARDEN_JOB_TOKEN_SECS` | a run's token lifetime (renewed at half-life) |
//! | `WARDEN_REVOKE_TOKENS_ON` | which changes of a user revoke their OBO and API tokens: `password`, `disable`, `roles` (default `password,disable`; a deletion always does) |
//! | `WARDEN_CONSENT_MAX_AGE_SECS` | an external (JWT) user's consent lasts this long (default 30 days) |
//! | `WARDEN_JOB_HISTORY` | runs kept in each job's history (1–1000, default 20) |
//! | `WARDEN_JOB_MAX_FAILURES` | failed attempts in a row that suspend a job (default 5) |
//! | `WARDEN_AUDIT_MAX_FILE_BYTES` | rotate past it |
//! | `WARDEN_AUDIT_MAX_FILES` | rotated files kept (0 keeps none) |
//! | `WARDEN_AUDIT_MAX_FIELD_BYTES` | each field cut to it |
//! | `WARDEN_AUDIT_FAILED_LOGIN_BURST`, `WARDEN_AUDIT_FAILED_LOGIN_WINDOW_MS` | failed logins written one by one per address and window; the rest summarised with a count |
//! | `WARDEN_AUDIT_DISABLED_CATEGORIES` | comma-separated; empty enables all |

use std::collections::BTreeSet;
use std::num::ParseIntError;
use std::time::Duration;

use crate::audit::{AuditSettings, Category};
use crate::scheduler::SchedulerConfig;

/// A setting the environment gives wrongly; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: `{text}` is not a {what}")]
    NotANumber {
        name: &'static str,
        text: String,
        /// `number of milliseconds`, `whole number`, …
        what: &'static str,
        #[source]
        source: ParseIntError,
    },
    #[error("{name}: must be at least {min}")]
    TooSmall { name: &'static str, min: String },
    #[error("{name}: must be at most {max}")]
    TooLarge { name: &'static str, max: u64 },
    #[error("WARDEN_AUDIT_DISABLED_CATEGORIES: unknown category `{0}`")]
    UnknownCategory(String),
    #[error("{name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The longest run history a job may keep: each entry is a store
/// document of up to a few KiB, read whole by `GET …/runs`.
pub const MAX_JOB_HISTORY: u64 = 1000;

/// `env(name)` as a whole number (`None` when unset); `what` names the
/// kind expected in the error (`whole number`, `number of seconds`, …).
fn whole_number(
    env: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    what: &'static str,
) -> Result<Option<u64>, ConfigError> {
    let Some(text) = env(name) else { return Ok(None) };
    let n = text.trim().parse().map_err(|source| ConfigError::NotANumber {
        name,
        text: text.clone(),
        what,
        source,
    })?;
    Ok(Some(n))
}

/// A whole number within `min..=max`.
fn within(
    env: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ConfigError> {
    let Some(n) = whole_number(env, name, "whole number")? else { return Ok(None) };
    if n < min {
        return Err(ConfigError::TooSmall { name, min: min.to_string() });
    }
    if n > max {
        return Err(ConfigError::TooLarge { name, max });
    }
    Ok(Some(n))
}

/// A positive whole number of `unit`s, in milliseconds (`unit` 1 for
/// milliseconds, 1000 for seconds; `unit_name` says which in the error).
fn positive_ms(
    env: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    unit: u64,
    unit_name: &'static str,
) -> Result<Option<u64>, ConfigError> {
    let what = if unit == 1 { "number of milliseconds" } else { "number of seconds" };
    let Some(n) = whole_number(env, name, what)? else { return Ok(None) };
    if n == 0 {
        return Err(ConfigError::TooSmall { name, min: format!("1 ({unit_name})") });
    }
    Ok(Some(n.saturating_mul(unit)))
}

/// The scheduler's timings from `env` (see the module's table); unset
/// variables keep [`SchedulerConfig::default`].
pub fn scheduler_config(env: impl Fn(&str) -> Option<String>) -> Result<SchedulerConfig, ConfigError> {
    let duration = |name, unit, unit_name| {
        Ok::<_, ConfigError>(positive_ms(&env, name, unit, unit_name)?.map(Duration::from_millis))
    };
    let defaults = SchedulerConfig::default();
    Ok(SchedulerConfig {
        history: within(&env, "WARDEN_JOB_HISTORY", 1, MAX_JOB_HISTORY)?
            .map_or(defaults.history, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        max_failures: within(&env, "WARDEN_JOB_MAX_FAILURES", 1, u64::from(u32::MAX))?
            .map_or(defaults.max_failures, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        tick: duration("WARDEN_SCHEDULER_TICK_MS", 1, "milliseconds")?.unwrap_or(defaults.tick),
        retry_delay: duration("WARDEN_JOB_RETRY_DELAY_MS", 1, "milliseconds")?
            .unwrap_or(defaults.retry_delay),
        token_lifetime: duration("WARDEN_JOB_TOKEN_SECS", 1000, "seconds")?
            .unwrap_or(defaults.token_lifetime),
        ..defaults
    })
}

/// How long an external (JWT) user's consent lasts, from
/// `WARDEN_CONSENT_MAX_AGE_SECS` (default 30 days).
pub fn consent_max_age_ms(env: impl Fn(&str) -> Option<String>) -> Result<u64, ConfigError> {
    Ok(positive_ms(&env, "WARDEN_CONSENT_MAX_AGE_SECS", 1000, "seconds")?
        .unwrap_or(crate::security::consents::DEFAULT_EXTERNAL_MAX_AGE_MS))
}

/// Which changes of a user revoke their tokens, from
/// `WARDEN_REVOKE_TOKENS_ON` (`password,disable,roles`; default
/// `password,disable`).
pub fn revoke_tokens_on(
    env: impl Fn(&str) -> Option<String>,
) -> Result<crate::security::RevokeOn, ConfigError> {
    match env("WARDEN_REVOKE_TOKENS_ON") {
        None => Ok(crate::security::RevokeOn::default()),
        Some(text) => {
            text.parse().map_err(|reason| ConfigError::Invalid { name: "WARDEN_REVOKE_TOKENS_ON", reason })
        }
    }
}

/// The audit log's limits from `env` (see the module's table); unset
/// variables keep [`AuditSettings::default`].
pub fn audit_settings(env: impl Fn(&str) -> Option<String>) -> Result<AuditSettings, ConfigError> {
    let number = |name: &'static str, min: u64| within(&env, name, min, u64::MAX);
    let defaults = AuditSettings::default();
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(AuditSettings {
        max_file_bytes: number("WARDEN_AUDIT_MAX_FILE_BYTES", 4096)?.unwrap_or(defaults.max_file_bytes),
        max_files: number("WARDEN_AUDIT_MAX_FILES", 0)?.map_or(defaults.max_files, size),
        max_field_bytes: number("WARDEN_AUDIT_MAX_FIELD_BYTES", 64)?.map_or(defaults.max_field_bytes, size),
        failed_login_burst: number("WARDEN_AUDIT_FAILED_LOGIN_BURST", 0)?
            .map_or(defaults.failed_login_burst, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        failed_login_window: number("WARDEN_AUDIT_FAILED_LOGIN_WINDOW_MS", 1)?
            .map_or(defaults.failed_login_window, Duration::from_millis),
    })
}

/// The audit categories not recorded, from `WARDEN_AUDIT_DISABLED_CATEGORIES`
/// in `env`; by default AUTHENTICATED and GRANTED_PRIVILEGES are off, as in
/// OpenSearch.
pub fn disabled_audit_categories(
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeSet<Category>, ConfigError> {
    let Some(list) = env("WARDEN_AUDIT_DISABLED_CATEGORIES") else {
        return Ok([Category::Authenticated, Category::GrantedPrivileges].into());
    };
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| Category::parse(s).ok_or_else(|| ConfigError::UnknownCategory(s.to_owned())))
        .collect()
}

/// The process's environment, as the readers above take it.
pub fn from_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    /// `{e:#}` as the binary prints it: the message, then its sources.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    }

    #[test]
    fn unset_variables_keep_the_defaults() -> Result<(), ConfigError> {
        let scheduler = scheduler_config(env(&[]))?;
        assert_eq!(scheduler.tick, SchedulerConfig::default().tick);
        let audit = audit_settings(env(&[]))?;
        assert_eq!(audit.max_files, AuditSettings::default().max_files);
        assert_eq!(
            disabled_audit_categories(env(&[]))?,
            [Category::Authenticated, Category::GrantedPrivileges].into()
        );
        assert!(disabled_audit_categories(env(&[("WARDEN_AUDIT_DISABLED_CATEGORIES", "")]))?.is_empty());
        Ok(())
    }

    #[test]
    fn settings_are_read_and_bad_ones_named() -> Result<(), ConfigError> {
        let scheduler =
            scheduler_config(env(&[("WARDEN_SCHEDULER_TICK_MS", " 20 "), ("WARDEN_JOB_TOKEN_SECS", "7")]))?;
        assert_eq!(scheduler.tick, Duration::from_millis(20));
        assert_eq!(scheduler.token_lifetime, Duration::from_secs(7));
        let message =
            |r: Result<SchedulerConfig, ConfigError>| r.err().map(|e| chain(&e)).unwrap_or_default();
        assert_eq!(
            message(scheduler_config(env(&[("WARDEN_SCHEDULER_TICK_MS", "abc")]))),
            "WARDEN_SCHEDULER_TICK_MS: `abc` is not a number of milliseconds: invalid digit found in string"
        );
        assert_eq!(
            message(scheduler_config(env(&[("WARDEN_JOB_TOKEN_SECS", "0")]))),
            "WARDEN_JOB_TOKEN_SECS: must be at least 1 (seconds)"
        );
        let history =
            scheduler_config(env(&[("WARDEN_JOB_HISTORY", "5"), ("WARDEN_JOB_MAX_FAILURES", "2")]))?;
        assert_eq!((history.history, history.max_failures), (5, 2));
        let defaults = scheduler_config(env(&[]))?;
        assert_eq!((defaults.history, defaults.max_failures), (20, 5));
        for (name, value, says) in [
            ("WARDEN_JOB_HISTORY", "0", "WARDEN_JOB_HISTORY: must be at least 1"),
            ("WARDEN_JOB_HISTORY", "1001", "WARDEN_JOB_HISTORY: must be at most 1000"),
            ("WARDEN_JOB_MAX_FAILURES", "0", "WARDEN_JOB_MAX_FAILURES: must be at least 1"),
            ("WARDEN_JOB_MAX_FAILURES", "x", "WARDEN_JOB_MAX_FAILURES: `x` is not a whole number"),
        ] {
            let got = message(scheduler_config(env(&[(name, value)])));
            assert!(got.starts_with(says), "{name}={value}: {got}");
        }
        let audit = audit_settings(env(&[("WARDEN_AUDIT_MAX_FIELD_BYTES", "10")]));
        assert_eq!(
            audit.err().map(|e| e.to_string()).unwrap_or_default(),
            "WARDEN_AUDIT_MAX_FIELD_BYTES: must be at least 64"
        );
        let categories = disabled_audit_categories(env(&[("WARDEN_AUDIT_DISABLED_CATEGORIES", "nope")]));
        assert_eq!(
            categories.err().map(|e| e.to_string()).unwrap_or_default(),
            "WARDEN_AUDIT_DISABLED_CATEGORIES: unknown category `nope`"
        );
        Ok(())
    }
}
