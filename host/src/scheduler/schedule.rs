//! When a job runs: once at an instant, every N seconds, or on a five-field
//! cron expression, in UTC or in an IANA time zone. Each schedule is
//! validated when it is registered, so the dispatcher only ever computes
//! next runs of schedules that have one. Also here: the jitter that spreads
//! a job's runs (as OpenSearch job-scheduler does) and the catch-up policy
//! for runs missed while no node was up.
//!
//! Daylight saving time, for a cron in a zone: a local time that does not
//! exist (the spring-forward gap) runs at the first instant after the gap,
//! as cronie does — once, however many of the skipped minutes match; a
//! local time that occurs twice (fall-back) runs once, at its first
//! occurrence.

use jiff::Timestamp;
use jiff::tz::{AmbiguousOffset, TimeZone};
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
/// `{"once": ms}`, `{"interval": secs}`, `{"cron": "m h dom mon dow"}` (UTC)
/// or `{"cron": "m h dom mon dow", "timezone": "Europe/Berlin"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Repr", try_from = "Repr")]
pub enum Schedule {
    Once(u64),
    Interval(u64),
    /// A cron expression, in `timezone` (an IANA name) or UTC when `None`.
    Cron {
        expr: String,
        timezone: Option<String>,
    },
}

/// [`Schedule`]'s JSON: one key naming the kind, `timezone` beside `cron`
/// only (a stored `{"cron": ".."}` is UTC, as it always was); any other
/// key is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Once(OnceRepr),
    Interval(IntervalRepr),
    Cron(CronRepr),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnceRepr {
    once: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntervalRepr {
    interval: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CronRepr {
    cron: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
}

/// The refusal of a JSON schedule of no known shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownShape;

impl std::fmt::Display for UnknownShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a schedule is {\"once\": ms}, {\"interval\": secs} or {\"cron\": \"..\"[, \"timezone\": \"..\"]}")
    }
}

impl From<Schedule> for Repr {
    fn from(schedule: Schedule) -> Repr {
        match schedule {
            Schedule::Once(once) => Repr::Once(OnceRepr { once }),
            Schedule::Interval(interval) => Repr::Interval(IntervalRepr { interval }),
            Schedule::Cron { expr, timezone } => Repr::Cron(CronRepr { cron: expr, timezone }),
        }
    }
}

impl TryFrom<Repr> for Schedule {
    type Error = UnknownShape;

    fn try_from(repr: Repr) -> Result<Schedule, UnknownShape> {
        Ok(match repr {
            Repr::Once(OnceRepr { once }) => Schedule::Once(once),
            Repr::Interval(IntervalRepr { interval }) => Schedule::Interval(interval),
            Repr::Cron(CronRepr { cron, timezone }) => Schedule::Cron { expr: cron, timezone },
        })
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("interval must be between 1 and {MAX_INTERVAL_SECS} seconds, got {0}")]
    Interval(u64),
    #[error("`once` time {0} is beyond year 9999")]
    Instant(u64),
    #[error("cron expression `{expr}`: {reason}")]
    Cron { expr: String, reason: String },
    #[error("unknown time zone `{name}`: use an IANA name such as `Europe/Berlin` or `America/New_York`")]
    TimeZone { name: String },
    #[error(
        "jitter must be a fraction of the interval between 0 and {MAX_JITTER} (as OpenSearch job-scheduler caps it), got {0}"
    )]
    Jitter(f64),
}

impl crate::error::HasKind for ScheduleError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Invalid
    }
}

/// Time zone names longer than this are refused before any lookup (the
/// longest IANA name is 32 bytes).
const MAX_TIME_ZONE_BYTES: usize = 64;

/// The zone named, from the bundled IANA database.
fn time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    let unknown = || ScheduleError::TimeZone {
        name: if name.len() > MAX_TIME_ZONE_BYTES {
            format!("{}…", name.chars().take(32).collect::<String>())
        } else {
            name.to_owned()
        },
    };
    // Only names: `TimeZone::get` would not take an offset or a POSIX
    // rule, but say so plainly rather than rely on it.
    if name.is_empty() || name.len() > MAX_TIME_ZONE_BYTES || name.chars().any(|c| c.is_whitespace()) {
        return Err(unknown());
    }
    TimeZone::get(name).map_err(|_| unknown())
}

impl Schedule {
    /// A cron schedule in UTC.
    pub fn cron(expr: impl Into<String>) -> Schedule {
        Schedule::Cron { expr: expr.into(), timezone: None }
    }

    /// Refuses schedules that could never run or that make no sense.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        match self {
            Schedule::Once(at) if *at > MAX_INSTANT_MS => Err(ScheduleError::Instant(*at)),
            Schedule::Once(_) => Ok(()),
            Schedule::Interval(secs) if !(1..=MAX_INTERVAL_SECS).contains(secs) => {
                Err(ScheduleError::Interval(*secs))
            }
            Schedule::Interval(_) => Ok(()),
            Schedule::Cron { expr, .. } if expr.len() > MAX_CRON_BYTES => Err(ScheduleError::Cron {
                expr: format!("{}…", expr.chars().take(32).collect::<String>()),
                reason: format!("{} bytes; at most {MAX_CRON_BYTES}", expr.len()),
            }),
            Schedule::Cron { expr, timezone } => {
                let cron = Cron::parse(expr)?;
                let zone = timezone.as_deref().map(time_zone).transpose()?;
                // A date that never exists (30 February) has no next run.
                match cron.next_in(zone.as_ref(), 0) {
                    Some(_) => Ok(()),
                    None => Err(ScheduleError::Cron {
                        expr: expr.clone(),
                        reason: match timezone {
                            Some(zone) => format!("it matches no date that exists in `{zone}`"),
                            None => "it matches no date that exists".into(),
                        },
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
            Schedule::Cron { .. } => self.next_cron(now),
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
            Schedule::Cron { .. } => self.next_cron(now),
        }
    }

    /// How long from the slot `at` to the one after (what jitter is a
    /// fraction of, as in job-scheduler); `None` for a single run.
    pub fn period_after(&self, at: u64) -> Option<u64> {
        match self {
            Schedule::Once(_) => None,
            Schedule::Interval(secs) => Some(secs.saturating_mul(1000)),
            Schedule::Cron { .. } => self.next_cron(at).map(|next| next.saturating_sub(at)),
        }
    }

    /// Whether runs repeat (a catch-up policy applies only then).
    pub fn repeats(&self) -> bool {
        !matches!(self, Schedule::Once(_))
    }

    fn next_cron(&self, after: u64) -> Option<u64> {
        let Schedule::Cron { expr, timezone } = self else { return None };
        let zone = match timezone {
            Some(name) => Some(time_zone(name).ok()?),
            None => None,
        };
        Cron::parse(expr).ok()?.next_in(zone.as_ref(), after)
    }
}

/// The largest jitter accepted: job-scheduler's `jitter_limit` maximum.
pub const MAX_JITTER: f64 = 0.95;

/// Refuses a jitter outside `0..=0.95` (or not a number).
pub fn validate_jitter(jitter: f64) -> Result<(), ScheduleError> {
    if jitter.is_finite() && (0.0..=MAX_JITTER).contains(&jitter) {
        Ok(())
    } else {
        Err(ScheduleError::Jitter(jitter))
    }
}

/// The delay jitter adds to a run whose period is `period_ms`, from the
/// random draw `random`: in `[0, jitter × period)`, as job-scheduler draws
/// it (a random long modulo the interval, times the jitter), rounded down
/// so the bound is never reached. No jitter, no period: no delay.
pub fn jitter_delay(period_ms: u64, jitter: f64, random: u64) -> u64 {
    if period_ms == 0 || jitter <= 0.0 || !jitter.is_finite() {
        return 0;
    }
    let jitter = jitter.min(MAX_JITTER);
    // Exact for periods below 2^53 ms (285,000 years); longer are refused.
    ((random % period_ms) as f64 * jitter).floor() as u64
}

/// How a job's runs are spread and caught up, beside its schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct JobOptions {
    /// A fraction of the interval (0 to 0.95): each slot's run is delayed
    /// by a random amount in `[0, jitter × interval)`.
    #[serde(default)]
    pub jitter: f64,
    #[serde(default)]
    pub catch_up: CatchUp,
}

impl JobOptions {
    pub fn validate(&self) -> Result<(), ScheduleError> {
        validate_jitter(self.jitter)
    }

    /// When the run of slot `slot` should start: the slot, plus jitter.
    pub fn start_of(&self, schedule: &Schedule, slot: u64) -> u64 {
        if self.jitter <= 0.0 {
            return slot;
        }
        let delay =
            schedule.period_after(slot).map_or(0, |period| jitter_delay(period, self.jitter, random()));
        slot.saturating_add(delay)
    }
}

/// A random draw for jitter (none if the system has no randomness: the
/// run is then simply not delayed).
fn random() -> u64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => 0,
    }
}

/// What to do with runs that came due while no node was up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Skip them: the job next runs at its next slot still to come.
    #[default]
    Skip,
    /// Run once now for all of them, then carry on with the schedule.
    Once,
}

impl CatchUp {
    pub fn parse(text: &str) -> Option<CatchUp> {
        match text {
            "skip" => Some(CatchUp::Skip),
            "once" => Some(CatchUp::Once),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Skip => "skip",
            CatchUp::Once => "once",
        }
    }

    /// Where a run planned for `planned` (slot `due`) goes when a node that
    /// started at `node_started` picks it up at `now`: `None` runs it now;
    /// `Some(slot)` skips it, the job then waits for `slot`. A run is
    /// missed when it came due before this node started (nobody was up to
    /// run it); a single run (`once` schedule) is never skipped: it has no
    /// later slot to wait for.
    pub fn skip_to(
        self,
        schedule: &Schedule,
        (planned, due): (u64, u64),
        node_started: u64,
        now: u64,
    ) -> Option<u64> {
        if self == CatchUp::Once || !schedule.repeats() || planned >= node_started {
            return None;
        }
        schedule.next_run(due, now)
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
        let (day, minute) = self.matching_minutes(start)?.next()?;
        u64::try_from(day).ok()?.checked_mul(DAY_MS)?.checked_add(minute * MINUTE_MS)
    }

    /// The first instant strictly after `after` at which the expression
    /// matches the local time in `zone` (UTC when `None`). A matching local
    /// time in a gap runs at the first instant after the gap; one that
    /// occurs twice runs at its first occurrence only.
    pub fn next_in(&self, zone: Option<&TimeZone>, after: u64) -> Option<u64> {
        let Some(zone) = zone else { return self.next_after(after) };
        let after_ts = Timestamp::from_millisecond(i64::try_from(after).ok()?).ok()?;
        let offset_ms = i64::from(zone.to_offset(after_ts).seconds()) * 1000;
        let local_after = i64::try_from(after).ok()?.checked_add(offset_ms)?;
        let start = (local_after.div_euclid(MINUTE_MS as i64) + 1) * MINUTE_MS as i64;
        for (day, minute) in self.matching_local_minutes(start)? {
            let instant = instant_of(zone, day, minute)?;
            if instant > after {
                return Some(instant);
            }
        }
        None
    }

    /// Every matching (day since the epoch, minute of the day) from the
    /// minute starting at `start` (ms since the epoch, UTC) on, in order,
    /// within the search horizon.
    fn matching_minutes(&self, start: u64) -> Option<impl Iterator<Item = (i64, u64)> + '_> {
        self.matching_local_minutes(i64::try_from(start).ok()?)
    }

    /// [`Cron::matching_minutes`] from a local minute (may precede 1970).
    fn matching_local_minutes(&self, start: i64) -> Option<impl Iterator<Item = (i64, u64)> + '_> {
        let first_day = start.div_euclid(DAY_MS as i64);
        let from = u64::try_from(start.rem_euclid(DAY_MS as i64)).ok()? / MINUTE_MS;
        let days = first_day..first_day.checked_add(CRON_HORIZON_DAYS as i64)?;
        Some(days.filter(move |day| self.day_is(*day)).flat_map(move |day| {
            let from_minute = if day == first_day { from } else { 0 };
            (from_minute..24 * 60)
                .filter(move |m| bit(self.hours, (m / 60) as u32) && bit(self.minutes, (m % 60) as u32))
                .map(move |m| (day, m))
        }))
    }

    fn day_is(&self, day: i64) -> bool {
        let (year, month, dom) = civil_from_days(day);
        // 1970-01-01 was a Thursday.
        let weekday = (day + 4).rem_euclid(7);
        debug_assert_eq!(days_from_civil(year, month, dom), day);
        self.day_matches(month as u32, dom as u32, weekday as u32)
    }

    fn day_matches(&self, month: u32, dom: u32, weekday: u32) -> bool {
        if !bit(self.months, month) {
            return false;
        }
        let (by_date, by_weekday) = (bit(self.days, dom), bit(self.weekdays, weekday));
        if self.either_day { by_date || by_weekday } else { by_date && by_weekday }
    }
}

/// The instant (ms since the epoch) of local minute `minute` of local day
/// `day` in `zone`: in a gap, the end of the gap (the transition); in a
/// fold, the first occurrence.
fn instant_of(zone: &TimeZone, day: i64, minute: u64) -> Option<u64> {
    let (year, month, dom) = civil_from_days(day);
    let local = jiff::civil::DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(dom).ok()?,
        i8::try_from(minute / 60).ok()?,
        i8::try_from(minute % 60).ok()?,
        0,
        0,
    )
    .ok()?;
    let local_ms = day.checked_mul(DAY_MS as i64)?.checked_add(i64::try_from(minute * MINUTE_MS).ok()?)?;
    let minus = |offset: jiff::tz::Offset| local_ms.checked_sub(i64::from(offset.seconds()) * 1000);
    let instant = match zone.to_ambiguous_timestamp(local).offset() {
        AmbiguousOffset::Unambiguous { offset } => minus(offset)?,
        // The first occurrence: still on the offset from before the change.
        AmbiguousOffset::Fold { before, .. } => minus(before)?,
        // Skipped: the transition itself, the first instant after the gap
        // (it lies at or before the local time read with the old offset).
        AmbiguousOffset::Gap { before, .. } => {
            let probe = Timestamp::from_millisecond(minus(before)?.checked_add(1)?).ok()?;
            zone.preceding(probe).next()?.timestamp().as_millisecond()
        }
    };
    u64::try_from(instant).ok()
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
        let long = Schedule::cron(format!("{} * * * *", vec!["0"; 200].join(","))).validate();
        assert!(long.is_err_and(|e| e.to_string().contains("at most 256")));
        let never = Schedule::cron("0 0 31 4 *").validate();
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
        let serialized = serde_json::to_string(&Schedule::cron("@daily")).unwrap_or_default();
        assert_eq!(serialized, r#"{"cron":"@daily"}"#);
        assert!(serde_json::from_str::<Schedule>(r#"{"every":5}"#).is_err());
    }

    fn berlin(expr: &str) -> Schedule {
        Schedule::Cron { expr: expr.into(), timezone: Some("Europe/Berlin".into()) }
    }

    /// The next run of `schedule` after `after`, as RFC 3339 (UTC).
    fn next_of(schedule: &Schedule, after: &str) -> Option<String> {
        schedule.first_run(at(after)).map(|ms| crate::time::rfc3339(ms as i64))
    }

    /// The first `n` runs of `schedule` after `after`, each planned from
    /// the one before, as RFC 3339 (UTC).
    fn runs_after(schedule: &Schedule, after: &str, n: usize) -> Vec<String> {
        std::iter::successors(Some(at(after)), |t| schedule.next_run(*t, *t))
            .skip(1)
            .take(n)
            .map(|ms| crate::time::rfc3339(ms as i64))
            .collect()
    }

    #[test]
    fn cron_in_a_time_zone_follows_its_offset_across_dst() {
        let daily = berlin("0 3 * * *");
        assert!(daily.validate().is_ok());
        // 03:00 in Berlin: UTC+1 in winter, UTC+2 from 29 March 2026 on.
        assert_eq!(next_of(&daily, "2026-03-27T12:00:00Z").as_deref(), Some("2026-03-28T02:00:00.000Z"));
        assert_eq!(next_of(&daily, "2026-03-28T02:00:00Z").as_deref(), Some("2026-03-29T01:00:00.000Z"));
        assert_eq!(next_of(&daily, "2026-03-29T01:00:00Z").as_deref(), Some("2026-03-30T01:00:00.000Z"));
        // The day of the change is 23 hours long: jitter is a fraction of that.
        assert_eq!(daily.period_after(at("2026-03-28T02:00:00Z")), Some(23 * 3_600_000));
        // And back to UTC+1 after 25 October 2026 (03:00 itself occurs once).
        assert_eq!(next_of(&daily, "2026-10-24T12:00:00Z").as_deref(), Some("2026-10-25T02:00:00.000Z"));
        assert_eq!(next_of(&daily, "2026-10-25T02:00:00Z").as_deref(), Some("2026-10-26T02:00:00.000Z"));
        assert_eq!(daily.period_after(at("2026-10-24T01:00:00Z")), Some(25 * 3_600_000));
        // next_run (after a run) agrees with first_run.
        assert_eq!(
            daily.next_run(at("2026-03-28T02:00:00Z"), at("2026-03-28T02:00:05Z")),
            Some(at("2026-03-29T01:00:00Z"))
        );
        // The same expression without a zone is UTC, as ever.
        assert_eq!(
            next_of(&Schedule::cron("0 3 * * *"), "2026-03-28T02:00:00Z").as_deref(),
            Some("2026-03-28T03:00:00.000Z")
        );
    }

    #[test]
    fn a_local_time_in_the_spring_gap_runs_once_right_after_it() {
        // 29 March 2026: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30
        // never happens, so the run comes at the first instant after the gap.
        let half_past_two = berlin("30 2 * * *");
        assert_eq!(
            next_of(&half_past_two, "2026-03-28T01:30:00Z").as_deref(),
            Some("2026-03-29T01:00:00.000Z")
        );
        assert_eq!(
            next_of(&half_past_two, "2026-03-29T01:00:00Z").as_deref(),
            Some("2026-03-30T00:30:00.000Z")
        );
        // Every minute of the gap matches: still one run, at 03:00 CEST.
        let every_quarter_at_two = berlin("*/15 2 * * *");
        assert_eq!(
            next_of(&every_quarter_at_two, "2026-03-29T00:50:00Z").as_deref(),
            Some("2026-03-29T01:00:00.000Z")
        );
        assert_eq!(
            next_of(&every_quarter_at_two, "2026-03-29T01:00:00Z").as_deref(),
            Some("2026-03-30T00:00:00.000Z")
        );
        // Minutes before and after the gap are untouched.
        let every_half_hour = berlin("*/30 * * * *");
        let runs = runs_after(&every_half_hour, "2026-03-29T00:00:00Z", 4);
        assert_eq!(
            runs,
            [
                "2026-03-29T00:30:00.000Z",
                "2026-03-29T01:00:00.000Z",
                "2026-03-29T01:30:00.000Z",
                "2026-03-29T02:00:00.000Z"
            ]
        );
    }

    #[test]
    fn a_local_time_that_occurs_twice_runs_once_at_the_first() {
        // 25 October 2026: 03:00 CEST falls back to 02:00 CET (01:00 UTC);
        // 02:30 happens at 00:30 UTC and again at 01:30 UTC.
        let half_past_two = berlin("30 2 * * *");
        assert_eq!(
            next_of(&half_past_two, "2026-10-24T12:00:00Z").as_deref(),
            Some("2026-10-25T00:30:00.000Z")
        );
        assert_eq!(
            next_of(&half_past_two, "2026-10-25T00:30:00Z").as_deref(),
            Some("2026-10-26T01:30:00.000Z")
        );
        // Looked for during the repeated hour (a node that started then):
        // the first 02:30 is past, the second is not run.
        assert_eq!(
            next_of(&half_past_two, "2026-10-25T01:10:00Z").as_deref(),
            Some("2026-10-26T01:30:00.000Z")
        );
        let every_half_hour = berlin("*/30 * * * *");
        let runs = runs_after(&every_half_hour, "2026-10-24T23:30:00Z", 4);
        // 02:00 and 02:30 CEST, then 03:00 CET: the repeated 02:00 and
        // 02:30 (CET) are not run again.
        assert_eq!(
            runs,
            [
                "2026-10-25T00:00:00.000Z",
                "2026-10-25T00:30:00.000Z",
                "2026-10-25T02:00:00.000Z",
                "2026-10-25T02:30:00.000Z"
            ]
        );
    }

    #[test]
    fn time_zones_are_named_and_checked() {
        for bad in ["Mars/Olympus", "", "Europe/Berlin 0", "+02:00", "../../etc/passwd"] {
            let schedule = Schedule::Cron { expr: "0 3 * * *".into(), timezone: Some(bad.into()) };
            let e = schedule.validate().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.starts_with(&format!("unknown time zone `{bad}`")), "{bad}: {e}");
        }
        let long = "x".repeat(100);
        let e = Schedule::Cron { expr: "0 3 * * *".into(), timezone: Some(long) }.validate();
        assert!(e.is_err_and(|e| e.to_string().len() < 200), "a long name is cut in the error");
        for good in ["America/New_York", "Asia/Kolkata", "UTC", "Australia/Lord_Howe"] {
            let schedule = Schedule::Cron { expr: "0 3 * * *".into(), timezone: Some(good.into()) };
            assert!(schedule.validate().is_ok(), "{good}");
        }
        // A cron that never fires is refused in a zone too, naming it.
        let never = berlin("0 0 30 2 *").validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(never.contains("matches no date that exists in `Europe/Berlin`"), "{never}");
        // A half-hour zone: 03:00 in Kolkata is 21:30 UTC the day before.
        let kolkata = Schedule::Cron { expr: "0 3 * * *".into(), timezone: Some("Asia/Kolkata".into()) };
        assert_eq!(next_of(&kolkata, "2026-06-01T00:00:00Z").as_deref(), Some("2026-06-01T21:30:00.000Z"));
    }

    #[test]
    fn schedules_keep_their_json_shape() -> Result<(), serde_json::Error> {
        let zoned = berlin("0 3 * * *");
        assert_eq!(serde_json::to_string(&zoned)?, r#"{"cron":"0 3 * * *","timezone":"Europe/Berlin"}"#);
        assert_eq!(
            serde_json::from_str::<Schedule>(r#"{"cron":"0 3 * * *","timezone":"Europe/Berlin"}"#)?,
            zoned
        );
        // Stored before zones existed: UTC.
        assert_eq!(serde_json::from_str::<Schedule>(r#"{"cron":"@daily"}"#)?, Schedule::cron("@daily"));
        assert_eq!(serde_json::from_str::<Schedule>(r#"{"interval":60}"#)?, Schedule::Interval(60));
        assert_eq!(serde_json::to_string(&Schedule::Once(5))?, r#"{"once":5}"#);
        for bad in [
            r#"{"interval":5,"timezone":"Europe/Berlin"}"#,
            r#"{"once":1,"interval":2}"#,
            r#"{"cron":"x","tz":"y"}"#,
            "{}",
        ] {
            assert!(serde_json::from_str::<Schedule>(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn jitter_is_capped_and_stays_within_its_fraction() -> Result<(), getrandom::Error> {
        for ok in [0.0, 0.5, 0.95] {
            assert!(validate_jitter(ok).is_ok(), "{ok}");
        }
        for bad in [-0.01, 0.951, 1.0, f64::NAN, f64::INFINITY] {
            let e = validate_jitter(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                e.starts_with("jitter must be a fraction of the interval between 0 and 0.95"),
                "{bad}: {e}"
            );
        }
        // Deterministic draws: the random value modulo the period, times the jitter.
        assert_eq!(jitter_delay(60_000, 0.5, 59_999), 29_999);
        assert_eq!(jitter_delay(60_000, 0.5, 60_000), 0);
        assert_eq!(jitter_delay(60_000, 0.95, u64::MAX), ((u64::MAX % 60_000) as f64 * 0.95) as u64);
        assert_eq!(jitter_delay(60_000, 0.0, 12_345), 0, "no jitter, no delay");
        assert_eq!(jitter_delay(0, 0.5, 12_345), 0, "no period (a single run), no delay");
        // Many real draws: always in [0, jitter × period), and spread over it.
        let (period, jitter) = (10_000u64, 0.6);
        let mut seen_max = 0;
        for _ in 0..20_000 {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes)?;
            let delay = jitter_delay(period, jitter, u64::from_le_bytes(bytes));
            assert!(delay < 6_000, "{delay}");
            seen_max = seen_max.max(delay);
        }
        assert!(seen_max > 5_800, "the draws reach near the bound: {seen_max}");
        // A job's run starts within its slot's jitter window; `once` has none.
        let options = JobOptions { jitter: 0.5, catch_up: CatchUp::Skip };
        for _ in 0..1_000 {
            let start = options.start_of(&Schedule::Interval(60), 1_000_000);
            assert!((1_000_000..1_030_000).contains(&start), "{start}");
        }
        assert_eq!(options.start_of(&Schedule::Once(5), 5), 5);
        assert_eq!(JobOptions::default().start_of(&Schedule::Interval(60), 7), 7);
        assert!(JobOptions { jitter: 0.96, ..options }.validate().is_err());
        Ok(())
    }

    #[test]
    fn missed_runs_are_skipped_or_caught_up_once() {
        // A node started at 100 000; an every-minute job planned for 10 000.
        let node_started = 100_000;
        let every_minute = Schedule::Interval(60);
        let (planned, due, now) = (10_000, 10_000, 100_500);
        // Skip: no run now; the next slot still to come, in phase.
        assert_eq!(CatchUp::Skip.skip_to(&every_minute, (planned, due), node_started, now), Some(130_000));
        // Once: run now (then the schedule carries on from the run's end).
        assert_eq!(CatchUp::Once.skip_to(&every_minute, (planned, due), node_started, now), None);
        assert_eq!(every_minute.next_run(due, 101_000), Some(130_000));
        // Came due while this node was up (merely late): run, whatever the policy.
        assert_eq!(CatchUp::Skip.skip_to(&every_minute, (100_000, 100_000), node_started, 160_000), None);
        // A retry planned before the start is missed too; it goes to the next slot.
        assert_eq!(CatchUp::Skip.skip_to(&every_minute, (99_000, 70_000), node_started, now), Some(130_000));
        // A single run has no later slot: it runs, late, whatever the policy.
        assert_eq!(CatchUp::Skip.skip_to(&Schedule::Once(10_000), (10_000, 10_000), node_started, now), None);
        // A cron in a zone skips to its next local slot.
        let daily = berlin("0 3 * * *");
        let (started, missed) = (at("2026-03-29T12:00:00Z"), at("2026-03-28T02:00:00Z"));
        assert_eq!(
            CatchUp::Skip.skip_to(&daily, (missed, missed), started, started + 500),
            Some(at("2026-03-30T01:00:00Z"))
        );
        assert_eq!(
            (CatchUp::parse("once"), CatchUp::parse("skip"), CatchUp::parse("all")),
            (Some(CatchUp::Once), Some(CatchUp::Skip), None)
        );
        assert_eq!(CatchUp::default(), CatchUp::Skip);
    }
}
