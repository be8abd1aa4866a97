//! When a job runs: once at an instant, every N seconds, or on a five-field
//! cron expression (UTC). Each schedule is validated when it is registered,
//! so the dispatcher only ever computes next runs of schedules that have one.

use serde::{Deserialize, Serialize};

use crate::time::{civil_from_days, days_from_civil};

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;
/// The longest interval accepted (a year): longer is a `once` or a cron.
pub const MAX_INTERVAL_SECS: u64 = 366 * 86_400;
/// Instants after 9999-12-31 are refused: nothing formats them.
const MAX_INSTANT_MS: u64 = 253_402_300_799_999;
/// How far ahead a cron expression is searched for its next match; one
/// that names no real day (`0 0 30 2 *`) is refused at registration.
const CRON_HORIZON_DAYS: u64 = 8 * 366;
/// Longer expressions are refused before parsing (they are stored too).
const MAX_CRON_BYTES: usize = 256;

/// A job's schedule, as stored and as the REST API shows it:
/// `{"once": ms}`, `{"interval": secs}` or `{"cron": "m h dom mon dow"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Schedule {
    Once(u64),
    Interval(u64),
    Cron(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("interval must be between 1 and {MAX_INTERVAL_SECS} seconds, got {0}")]
    Interval(u64),
    #[error("`once` time {0} is beyond year 9999")]
    Instant(u64),
    #[error("cron expression `{expr}`: {reason}")]
    Cron { expr: String, reason: String },
}

impl crate::error::HasKind for ScheduleError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Invalid
    }
}

impl Schedule {
    /// Refuses schedules that could never run or that make no sense.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        match self {
            Schedule::Once(at) if *at > MAX_INSTANT_MS => Err(ScheduleError::Instant(*at)),
            Schedule::Once(_) => Ok(()),
            Schedule::Interval(secs) if !(1..=MAX_INTERVAL_SECS).contains(secs) => {
                Err(ScheduleError::Interval(*secs))
            }
            Schedule::Interval(_) => Ok(()),
            Schedule::Cron(expr) if expr.len() > MAX_CRON_BYTES => Err(ScheduleError::Cron {
                expr: format!("{}…", expr.chars().take(32).collect::<String>()),
                reason: format!("{} bytes; at most {MAX_CRON_BYTES}", expr.len()),
            }),
            Schedule::Cron(expr) => {
                let cron = Cron::parse(expr)?;
                // A date that never exists (30 February) has no next run.
                match cron.next_after(0) {
                    Some(_) => Ok(()),
                    None => Err(ScheduleError::Cron {
                        expr: expr.clone(),
                        reason: "it matches no date that exists".into(),
                    }),
                }
            }
        }
    }

    /// The first run of a job registered at `now`.
    pub fn first_run(&self, now: u64) -> Option<u64> {
        match self {
            Schedule::Once(at) => Some(*at),
            Schedule::Interval(secs) => now.checked_add(secs.saturating_mul(1000)),
            Schedule::Cron(expr) => Cron::parse(expr).ok()?.next_after(now),
        }
    }

    /// The run after the one due at `due`, once that one is over at `now`:
    /// runs missed while the host was down are not caught up one by one,
    /// the job runs at its next slot after `now`.
    pub fn next_run(&self, due: u64, now: u64) -> Option<u64> {
        match self {
            Schedule::Once(_) => None,
            Schedule::Interval(secs) => {
                let step = secs.saturating_mul(1000).max(1);
                // Keep the phase of the original schedule: no drift.
                let missed = now.saturating_sub(due) / step + 1;
                due.checked_add(missed.saturating_mul(step))
            }
            Schedule::Cron(expr) => Cron::parse(expr).ok()?.next_after(now),
        }
    }
}

/// A parsed five-field cron expression: minute hour day-of-month month
/// day-of-week, each a bit set; `@hourly`, `@daily`, `@weekly`, `@monthly`
/// and `@yearly` are accepted too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Both day fields restricted: a day matches if either does (as in cron).
    either_day: bool,
}

const MONTHS: [&str; 12] =
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, ScheduleError> {
        let error = |reason: String| ScheduleError::Cron { expr: expr.to_owned(), reason };
        let expanded = match expr.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(error(format!(
                "needs 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        };
        let field = |text: &str, name: &str, min: u32, max: u32, names: &[&str]| {
            parse_field(text, min, max, names)
                .map_err(|reason| error(format!("{name} field `{text}`: {reason}")))
        };
        let mut weekdays = field(weekday, "day-of-week", 0, 7, &WEEKDAYS)?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7);
        }
        Ok(Cron {
            minutes: field(minute, "minute", 0, 59, &[])?,
            hours: field(hour, "hour", 0, 23, &[])?,
            days: field(day, "day-of-month", 1, 31, &[])?,
            months: field(month, "month", 1, 12, &MONTHS)?,
            weekdays,
            either_day: !day.starts_with('*') && !weekday.starts_with('*'),
        })
    }

    /// The first matching minute strictly after `after` (ms since the
    /// epoch, UTC), or `None` within the search horizon.
    pub fn next_after(&self, after: u64) -> Option<u64> {
        let start = (after / MINUTE_MS + 1) * MINUTE_MS;
        let first_day = start / DAY_MS;
        for day in first_day..first_day + CRON_HORIZON_DAYS {
            let (year, month, dom) = civil_from_days(i64::try_from(day).ok()?);
            // 1970-01-01 was a Thursday.
            let weekday = (day + 4) % 7;
            if !self.day_matches(month as u32, dom as u32, weekday as u32) {
                continue;
            }
            debug_assert_eq!(days_from_civil(year, month, dom), day as i64);
            let from_minute = if day == first_day { (start % DAY_MS) / MINUTE_MS } else { 0 };
            for minute_of_day in from_minute..24 * 60 {
                let (h, m) = (minute_of_day / 60, minute_of_day % 60);
                if bit(self.hours, h as u32) && bit(self.minutes, m as u32) {
                    return Some(day * DAY_MS + minute_of_day * MINUTE_MS);
                }
            }
        }
        None
    }

    fn day_matches(&self, month: u32, dom: u32, weekday: u32) -> bool {
        if !bit(self.months, month) {
            return false;
        }
        let (by_date, by_weekday) = (bit(self.days, dom), bit(self.weekdays, weekday));
        if self.either_day { by_date || by_weekday } else { by_date && by_weekday }
    }
}

fn bit(set: u64, n: u32) -> bool {
    set & (1u64 << n) != 0
}

/// One field: a comma list of `*`, `n`, `a-b`, each optionally `/step`;
/// `names` (lower case) stand for `min + position` in months, `position`
/// in weekdays.
fn parse_field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    let value = |s: &str| -> Result<u32, String> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            // Months are named from 1, weekdays from 0.
            return Ok(i as u32 + if names.len() == 12 { 1 } else { 0 });
        }
        let n: u32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
        if (min..=max).contains(&n) { Ok(n) } else { Err(format!("{n} is outside {min}-{max}")) }
    };
    let mut set = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| format!("step `{step}` is not a number"))?;
                if step == 0 {
                    return Err("a step of 0".into());
                }
                (range, step)
            }
            None => (item, 1),
        };
        let (low, high) = match range {
            "*" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `5/15` means from 5 to the end in steps of 15.
                None if step > 1 => (value(range)?, max),
                None => (value(range)?, value(range)?),
            },
        };
        if low > high {
            return Err(format!("range {low}-{high} runs backwards"));
        }
        set |= (low..=high).step_by(step as usize).fold(0u64, |acc, n| acc | (1 << n));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::dates;

    fn at(iso: &str) -> u64 {
        dates::parse(iso).and_then(|ms| u64::try_from(ms).ok()).unwrap_or_else(|| panic!("bad date {iso}"))
    }

    fn next(expr: &str, after: &str) -> Option<String> {
        let cron = Cron::parse(expr).unwrap_or_else(|e| panic!("{e}"));
        cron.next_after(at(after)).map(|ms| crate::time::rfc3339(ms as i64))
    }

    #[test]
    fn cron_finds_the_next_matching_minute() {
        assert_eq!(next("*/15 * * * *", "2026-11-23T10:07:30Z").as_deref(), Some("2026-11-23T10:15:00.000Z"));
        // Strictly after: a run at 10:15 does not match itself again.
        assert_eq!(next("*/15 * * * *", "2026-11-23T10:15:00Z").as_deref(), Some("2026-11-23T10:30:00.000Z"));
        assert_eq!(next("0 3 * * *", "2026-11-23T03:00:00Z").as_deref(), Some("2026-11-24T03:00:00.000Z"));
        assert_eq!(
            next("30 9 * * mon-fri", "2026-11-27T10:00:00Z").as_deref(),
            Some("2026-11-30T09:30:00.000Z")
        );
        assert_eq!(next("0 0 1 jan *", "2026-11-23T00:00:00Z").as_deref(), Some("2027-01-01T00:00:00.000Z"));
        assert_eq!(next("@monthly", "2026-12-31T23:59:00Z").as_deref(), Some("2027-01-01T00:00:00.000Z"));
        // 29 February: the next leap year.
        assert_eq!(next("0 12 29 2 *", "2026-03-01T00:00:00Z").as_deref(), Some("2028-02-29T12:00:00.000Z"));
        // Sunday as 7 and as 0.
        for sunday in ["0 0 * * 7", "0 0 * * 0", "0 0 * * sun"] {
            assert_eq!(
                next(sunday, "2026-11-23T00:00:00Z").as_deref(),
                Some("2026-11-29T00:00:00.000Z"),
                "{sunday}"
            );
        }
        // Both day fields restricted: either matches (the 1st, or a Friday).
        assert_eq!(next("0 0 1 * 5", "2026-11-23T00:00:00Z").as_deref(), Some("2026-11-27T00:00:00.000Z"));
        assert_eq!(next("5/20 1 * * *", "2026-11-23T01:06:00Z").as_deref(), Some("2026-11-23T01:25:00.000Z"));
        assert_eq!(next("0 0 30 2 *", "2026-01-01T00:00:00Z"), None);
    }

    #[test]
    fn bad_cron_expressions_are_named() {
        for (expr, says) in [
            ("* * * *", "needs 5 fields"),
            ("60 * * * *", "minute field `60`: 60 is outside 0-59"),
            ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day-of-month field"),
            ("* * * 13 *", "month field"),
            ("* * * * 8", "day-of-week field"),
            ("*/0 * * * *", "a step of 0"),
            ("5-1 * * * *", "runs backwards"),
            ("x * * * *", "`x` is not a number"),
        ] {
            let e = Cron::parse(expr).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(says), "{expr}: {e}");
        }
        let long = Schedule::Cron(format!("{} * * * *", vec!["0"; 200].join(","))).validate();
        assert!(long.is_err_and(|e| e.to_string().contains("at most 256")));
        let never = Schedule::Cron("0 0 31 4 *".into()).validate();
        assert!(never.is_err_and(|e| e.to_string().contains("matches no date")));
    }

    #[test]
    fn schedules_validate_and_advance() {
        assert!(Schedule::Interval(0).validate().is_err());
        assert!(Schedule::Interval(MAX_INTERVAL_SECS + 1).validate().is_err());
        assert!(Schedule::Once(u64::MAX).validate().is_err());
        assert!(Schedule::Interval(60).validate().is_ok());
        let every_minute = Schedule::Interval(60);
        assert_eq!(every_minute.first_run(1_000), Some(61_000));
        // On time: the next slot. Late by 2.5 intervals: the slot after now,
        // in the original phase.
        assert_eq!(every_minute.next_run(61_000, 61_500), Some(121_000));
        assert_eq!(every_minute.next_run(61_000, 211_000), Some(241_000));
        assert_eq!(Schedule::Once(5).next_run(5, 10), None);
        let serialized = serde_json::to_string(&Schedule::Cron("@daily".into())).unwrap_or_default();
        assert_eq!(serialized, r#"{"cron":"@daily"}"#);
        assert!(serde_json::from_str::<Schedule>(r#"{"every":5}"#).is_err());
    }
}
