//! Dates as OpenSearch's default date format reads them: epoch
//! milliseconds, or ISO-8601 strings (`2026-11-22`, `2026-11-22T10:15:30Z`,
//! with optional fractions and `±HH:MM` offsets); date math in range bounds
//! (`now-1h`, `now/d`, `2026-11-22||+1M/M`); calendar units for intervals.
//! The civil calendar itself (Howard Hinnant's algorithms) and RFC 3339
//! formatting live in `crate::time`.

use serde_json::Value;

use crate::time::{DAY_MS, civil_from_days, days_from_civil};

/// The dates this module works with: ±100,000,000,000 days (±273 million
/// years) from the epoch, in milliseconds. Every date a request brings is
/// checked against it, so calendar arithmetic on it cannot overflow (the
/// limit leaves room below `i64::MAX` for a unit's worth of rounding),
/// and arithmetic that would leave it gives `None`, never a wrapped number
/// or a panic.
pub const MAX_MS: i64 = 100_000_000_000 * DAY_MS;
/// The years of [`MAX_MS`], rounded up: a date outside is refused before
/// any arithmetic on its year.
const MAX_YEAR: i64 = 274_000_000;

/// `ms` if it is within [`MAX_MS`].
fn in_range(ms: i64) -> Option<i64> {
    (-MAX_MS..=MAX_MS).contains(&ms).then_some(ms)
}

/// A date value as epoch milliseconds, if it is one (within [`MAX_MS`]).
pub fn millis(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => in_range(n.as_i64().or_else(|| {
            n.as_f64().filter(|f| f.is_finite() && f.abs() <= MAX_MS as f64).map(|f| f as i64)
        })?),
        Value::String(s) => parse(s),
        _ => None,
    }
}

/// Parses `YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM]` (no offset means UTC).
pub fn parse(s: &str) -> Option<i64> {
    let digits = |part: &str| -> Option<i64> {
        (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())).then(|| part.parse().ok()).flatten()
    };
    let (date, rest) = s.split_at(s.find('T').unwrap_or(s.len()));
    let mut ymd = date.split('-');
    let (year, month, day) = (digits(ymd.next()?)?, digits(ymd.next()?)?, digits(ymd.next()?)?);
    if ymd.next().is_some()
        || year > MAX_YEAR
        || !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
    {
        return None;
    }
    let mut ms = days_from_civil(year, month, day).checked_mul(DAY_MS)?;
    let Some(time) = rest.strip_prefix('T') else {
        // A date alone is checked against the range too: MAX_YEAR is
        // rounded up, so its last months lie beyond MAX_MS.
        return rest.is_empty().then_some(ms).and_then(in_range);
    };
    // Split off the zone: `Z`, `+HH:MM` or `-HH:MM` (or none).
    let (clock, offset_ms) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':').unwrap_or((&zone[1..], "0"));
        let (h, m) = (digits(h)?, digits(m)?);
        // ISO-8601 offsets stay within ±18:00.
        if h > 18 || m > 59 {
            return None;
        }
        (clock, sign * (h * 3_600_000 + m * 60_000))
    } else {
        (time, 0)
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.split(':');
    let hour = digits(parts.next()?)?;
    let minute = digits(parts.next()?)?;
    let second = parts.next().map(digits).unwrap_or(Some(0))?;
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let fraction_ms = if fraction.is_empty() {
        0
    } else {
        let first3: String = fraction.chars().chain("00".chars()).take(3).collect();
        digits(fraction)?;
        digits(&first3)?
    };
    ms = ms.checked_add(hour * 3_600_000 + minute * 60_000 + second * 1000 + fraction_ms)?;
    in_range(ms.checked_sub(offset_ms)?)
}

/// A range bound with date math: an anchor (`now`, or a date followed by
/// `||`), then `+N<unit>`, `-N<unit>` and `/<unit>` (rounding) steps, units
/// `y M w d h H m s`. Rounding goes down, or — for `gt` and `lte`, whose
/// bound includes the whole unit — to the unit's last millisecond, as
/// OpenSearch rounds.
pub fn bound(text: &str, now: i64, round_up: bool) -> Option<i64> {
    let (mut t, math) = match text.strip_prefix("now") {
        Some(_) if in_range(now).is_none() => return None,
        Some(math) => (now, math),
        None => match text.split_once("||") {
            Some((anchor, math)) => (parse(anchor)?, math),
            None => return parse(text),
        },
    };
    let mut rest = math;
    while let Some(op) = rest.chars().next() {
        let tail = &rest[op.len_utf8()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        let unit = tail[digits..].chars().next()?;
        let n: i64 = if digits == 0 { 1 } else { tail[..digits].parse().ok()? };
        t = match op {
            '+' => shift(t, n, unit)?,
            '-' => shift(t, -n, unit)?,
            '/' if digits == 0 => {
                let start = calendar_floor(unit_name(unit)?, t)?;
                if round_up {
                    calendar_floor(unit_name(unit)?, shift(start, 1, unit)?)?.checked_sub(1)?
                } else {
                    start
                }
            }
            _ => return None,
        };
        rest = &tail[digits + unit.len_utf8()..];
    }
    // Rounding down the first unit of the range starts before it: a bound
    // outside the range is none, as shifting out of it is.
    in_range(t)
}

fn unit_name(unit: char) -> Option<&'static str> {
    Some(match unit {
        'y' => "year",
        'M' => "month",
        'w' => "week",
        'd' => "day",
        'h' | 'H' => "hour",
        'm' => "minute",
        's' => "second",
        _ => return None,
    })
}

/// `t` moved by `n` units (months and years by the calendar); `None` when
/// the result would leave [`MAX_MS`].
fn shift(t: i64, n: i64, unit: char) -> Option<i64> {
    in_range(t)?;
    let fixed = |step: i64| n.checked_mul(step).and_then(|d| t.checked_add(d)).and_then(in_range);
    match unit {
        's' => fixed(1000),
        'm' => fixed(60_000),
        'h' | 'H' => fixed(3_600_000),
        'd' => fixed(DAY_MS),
        'w' => fixed(7 * DAY_MS),
        'M' | 'y' => {
            let months = if unit == 'y' { n.checked_mul(12)? } else { n };
            let (days, time) = (t.div_euclid(DAY_MS), t.rem_euclid(DAY_MS));
            let (year, month, day) = civil_from_days(days);
            let index = year.checked_mul(12)?.checked_add(month - 1)?.checked_add(months)?;
            let (year, month) = (index.div_euclid(12), index.rem_euclid(12) + 1);
            if year.abs() > MAX_YEAR {
                return None;
            }
            let days = days_from_civil(year, month, day.min(days_in_month(year, month)));
            in_range(days.checked_mul(DAY_MS)?.checked_add(time)?)
        }
        _ => None,
    }
}

/// The start of the calendar unit (`minute`, `hour`, `day`, `week` — from
/// Monday, `month`, `quarter`, `year`, or their `1m`/`1h`/`1d`/`1w`/`1M`/
/// `1q`/`1y` forms) holding `ms`; `None` for an unknown unit or a date
/// outside [`MAX_MS`].
pub fn calendar_floor(unit: &str, ms: i64) -> Option<i64> {
    in_range(ms)?;
    // Within MAX_MS, a unit's start (at most a year earlier) still fits.
    let fixed = |step: i64| ms.div_euclid(step) * step;
    let days = ms.div_euclid(DAY_MS);
    let (year, month, _) = civil_from_days(days);
    Some(match unit {
        "second" | "1s" => fixed(1000),
        "minute" | "1m" => fixed(60_000),
        "hour" | "1h" => fixed(3_600_000),
        "day" | "1d" => fixed(DAY_MS),
        // 1970-01-01 was a Thursday: Monday is 3 days before it.
        "week" | "1w" => (days - (days + 3).rem_euclid(7)) * DAY_MS,
        "month" | "1M" => days_from_civil(year, month, 1) * DAY_MS,
        "quarter" | "1q" => days_from_civil(year, (month - 1) / 3 * 3 + 1, 1) * DAY_MS,
        "year" | "1y" => days_from_civil(year, 1, 1) * DAY_MS,
        _ => return None,
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::rfc3339 as format;

    #[test]
    fn parses_iso_dates_and_round_trips() {
        let cases = [
            ("1970-01-01", Some(0)),
            ("1970-01-01T00:00:01Z", Some(1000)),
            ("2026-11-22T10:15:30.250Z", Some(1_795_342_530_250)),
            ("2026-11-22T11:15:30.250+01:00", Some(1_795_342_530_250)),
            ("2026-11-22T05:15:30.25-05:00", Some(1_795_342_530_250)),
            ("2026-11-22T10:15", Some(1_795_342_500_000)),
            ("1969-12-31T23:59:59Z", Some(-1000)),
            ("2024-02-29", Some(1_709_164_800_000)),
            ("2023-02-29", None),
            ("2026-13-01", None),
            ("2026-11-22T25:00:00Z", None),
            ("2026-11-22T10:15:30Zjunk", None),
            ("yesterday", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), expected, "{text}");
        }
        for ms in [0, -1000, 1_795_342_530_250, 951_782_400_000] {
            assert_eq!(parse(&format(ms)), Some(ms), "{}", format(ms));
        }
        assert_eq!(format(1_795_342_530_250), "2026-11-22T10:15:30.250Z");
    }

    #[test]
    fn calendar_units_start_where_the_calendar_says() {
        let at = parse("2026-11-22T10:15:30Z").unwrap_or_default(); // a Sunday
        let start = |unit| calendar_floor(unit, at).map(format);
        assert_eq!(start("hour").as_deref(), Some("2026-11-22T10:00:00.000Z"));
        assert_eq!(start("day").as_deref(), Some("2026-11-22T00:00:00.000Z"));
        assert_eq!(start("week").as_deref(), Some("2026-11-16T00:00:00.000Z"));
        assert_eq!(start("1M").as_deref(), Some("2026-11-01T00:00:00.000Z"));
        assert_eq!(start("quarter").as_deref(), Some("2026-10-01T00:00:00.000Z"));
        assert_eq!(start("year").as_deref(), Some("2026-01-01T00:00:00.000Z"));
        assert_eq!(start("fortnight"), None);
    }

    #[test]
    fn date_math_in_range_bounds() {
        let now = parse("2026-11-22T10:15:30Z").unwrap_or_default();
        let at = |text: &str, up: bool| bound(text, now, up).map(format);
        assert_eq!(at("now", false).as_deref(), Some("2026-11-22T10:15:30.000Z"));
        assert_eq!(at("now-1h", false).as_deref(), Some("2026-11-22T09:15:30.000Z"));
        assert_eq!(at("now-1d/d", false).as_deref(), Some("2026-11-21T00:00:00.000Z"));
        assert_eq!(at("now/d", true).as_deref(), Some("2026-11-22T23:59:59.999Z"));
        assert_eq!(at("now+1M/M", false).as_deref(), Some("2026-12-01T00:00:00.000Z"));
        assert_eq!(at("2026-01-31||+1M", false).as_deref(), Some("2026-02-28T00:00:00.000Z"));
        assert_eq!(at("2026-11-22", false).as_deref(), Some("2026-11-22T00:00:00.000Z"));
        assert_eq!(at("now-1q", false), None, "unknown unit");
        assert_eq!(at("now-", false), None);
        assert_eq!(at("later", false), None);
        assert_eq!(at("now€1d", false), None);
    }

    /// Dates and date math a request chooses never overflow: out of range
    /// is `None` (a date that is no date), never a panic or a wrapped value.
    #[test]
    fn extreme_dates_are_refused_not_overflowed() {
        let now = parse("2026-11-22T10:15:30Z").unwrap_or_default();
        for text in [
            "now+9223372036854775807d",
            "now-9223372036854775807y",
            "now+9223372036854775807M",
            "now+106751991167d",
            "now+300000000y/y",
            "292278994-08-17T07:12:55.807Z",
            "99999999999999999-01-01",
            "2026-01-01T00:00+99999999999999:00",
            "2026-01-01T00:00+19:00",
            "274000000-12-31||+1y/y",
        ] {
            assert_eq!(bound(text, now, true), None, "{text}");
            assert_eq!(bound(text, now, false), None, "{text}");
        }
        assert_eq!(bound("now", i64::MAX, false), None);
        for ms in [i64::MIN, i64::MAX, MAX_MS + 1, -MAX_MS - 1] {
            assert_eq!(millis(&serde_json::json!(ms)), None, "{ms}");
            for unit in ["second", "day", "week", "month", "quarter", "year"] {
                assert_eq!(calendar_floor(unit, ms), None, "{unit} {ms}");
            }
        }
        for ms in [MAX_MS, -MAX_MS] {
            for unit in ["second", "day", "week", "month", "quarter", "year"] {
                assert!(calendar_floor(unit, ms).is_some_and(|f| f <= ms), "{unit} {ms}");
            }
            assert!(!format(ms).is_empty());
        }
        assert_eq!(millis(&serde_json::json!(1e300)), None);
        assert_eq!(bound("now+1d", now, false), Some(now + DAY_MS), "the legitimate path");
    }
}
