//! `schedule`: a job's schedule as an extension registers it — once, an
//! interval, or a cron expression in UTC or an IANA time zone — and the
//! instant it is asked about.
//!
//! Properties of a schedule that validates: its JSON form reparses equal;
//! a cron expression with its fields re-spaced parses equal; the first
//! run of a repeating schedule and every next run are strictly after now
//! (and exist, short of the calendar's end); a cron's next run is the
//! first match (asking again just before it gives it again) and is
//! monotone in now.

use arbitrary::{Arbitrary, Unstructured};

use crate::scheduler::schedule::{Cron, Schedule};

/// The zones where local time is hardest: DST gaps and folds, 30- and
/// 45-minute offsets, a DST of 30 minutes, a DST change at midnight.
const ZONES: [&str; 8] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/Sao_Paulo",
    "Africa/Casablanca",
];
/// 9999-12-31T23:59:59.999Z: nothing later is an instant here.
const MAX_INSTANT_MS: u64 = 253_402_300_799_999;
/// Past this (the year 9000) a cron may run out of calendar.
const FAR_FUTURE_MS: u64 = 221_845_392_000_000;

pub fn check_schedule(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let now = u64::arbitrary(&mut u).unwrap_or(0) % MAX_INSTANT_MS;
    let schedule = match u.arbitrary::<u8>().unwrap_or(0) % 4 {
        0 => Schedule::Once(u64::arbitrary(&mut u).unwrap_or(0)),
        1 => Schedule::Interval(u64::arbitrary(&mut u).unwrap_or(0) % 40_000_000),
        2 => {
            let timezone = match u.arbitrary::<u8>().unwrap_or(0) {
                0..=127 => None,
                z @ 128..=247 => Some(ZONES[usize::from(z) % ZONES.len()].to_owned()),
                _ => Some(String::arbitrary(&mut u).unwrap_or_default()),
            };
            let expr = String::arbitrary_take_rest(u).unwrap_or_default();
            Schedule::Cron { expr, timezone }
        }
        // The REST form, as a client sends it.
        _ => match serde_json::from_slice(u.take_rest()) {
            Ok(schedule) => schedule,
            Err(_) => return,
        },
    };
    if schedule.validate().is_err() {
        return;
    }
    let json = serde_json::to_value(&schedule).unwrap_or_default();
    assert_eq!(serde_json::from_value::<Schedule>(json.clone()).ok().as_ref(), Some(&schedule), "{json}");

    match &schedule {
        Schedule::Once(at) => assert_eq!(schedule.first_run(now), Some(*at)),
        Schedule::Interval(_) => {
            let first = schedule.first_run(now);
            assert!(first.is_some_and(|t| t > now), "interval: first run {first:?} at now={now}");
            // Due in the past, in the future, or now: the next is after now.
            for due in [now.saturating_sub(123_456_789), now, now.saturating_add(1)] {
                let next = schedule.next_run(due, now);
                assert!(
                    next.is_some_and(|t| t > now && t > due),
                    "interval: next {next:?}, due {due}, now {now}"
                );
            }
        }
        Schedule::Cron { expr, timezone } => {
            let respaced = expr.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(
                Cron::parse(&respaced).ok(),
                Cron::parse(expr).ok(),
                "`{expr}` re-spaced as `{respaced}`"
            );
            cron_runs(&schedule, now, timezone.as_deref());
        }
    }
}

fn cron_runs(schedule: &Schedule, now: u64, timezone: Option<&str>) {
    let first = schedule.first_run(now);
    if let Some(t) = first {
        assert!(t > now, "cron ({timezone:?}): first run {t} is not after now={now}");
    } else {
        assert!(now >= FAR_FUTURE_MS, "cron ({timezone:?}): valid, but no run after now={now}");
        return;
    }
    let Some(t) = first else { return };
    assert_eq!(schedule.next_run(now, now), Some(t), "next run after a run due now");
    // The first match: nothing between now and it.
    if t - 1 > now {
        assert_eq!(schedule.first_run(t - 1), Some(t), "cron ({timezone:?}): asked just before {t}");
    }
    // Monotone: asked later, never earlier.
    let later = now + (now % 7_919) * 60_000 + 1;
    if let Some(u) = schedule.first_run(later) {
        assert!(u >= t, "cron ({timezone:?}): at now={now} next is {t}, at later {later} it is {u}");
    }
}
