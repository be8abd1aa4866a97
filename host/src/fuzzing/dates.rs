//! `dates`: dates and date math as range bounds and histograms read them
//! (`2026-11-22T10:15:30+01:00`, `now-1h/d`, `2026-11-22||+1M/M`).
//!
//! The input is two instants (`now` twice), a calendar unit, then text.
//!
//! Properties: parsing and date math never panic and stay within the
//! supported range; math on `now` is monotone in `now` (a later `now`
//! never gives an earlier bound), and rounding down never passes rounding
//! up; a calendar unit's floor is at or before the instant and, within
//! the range, floors to itself.

use arbitrary::{Arbitrary, Unstructured};
use serde_json::Value;

use crate::cluster::dates::{MAX_MS, bound, calendar_floor, millis, parse};

const UNITS: [&str; 14] = [
    "second", "minute", "hour", "day", "week", "month", "quarter", "year", "1m", "1h", "1d", "1w", "1M", "1y",
];

pub fn check_dates(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let instant = |u: &mut Unstructured<'_>| i64::arbitrary(u).unwrap_or(0) % (MAX_MS + 1);
    let (a, b) = (instant(&mut u), instant(&mut u));
    let (early, late) = (a.min(b), a.max(b));
    let unit = UNITS[usize::from(u8::arbitrary(&mut u).unwrap_or(0)) % UNITS.len()];
    let text = String::arbitrary_take_rest(u).unwrap_or_default();

    if let Some(ms) = parse(&text) {
        assert!((-MAX_MS..=MAX_MS).contains(&ms), "`{text}` parsed outside the range: {ms}");
    }
    assert_eq!(millis(&Value::String(text.clone())), parse(&text), "`{text}` as a value");

    for floor_of in [early, late] {
        if let Some(floor) = calendar_floor(unit, floor_of) {
            assert!(floor <= floor_of, "the {unit} of {floor_of} starts after it, at {floor}");
            // The first unit may start before the range (its floor is
            // given, though no date there is): only within it is a floor
            // a date that floors to itself.
            if floor >= -MAX_MS {
                assert_eq!(calendar_floor(unit, floor), Some(floor), "the {unit} floor of {floor_of} moves");
            }
        }
    }

    // The text as date math after `now`, and as written.
    for math in [format!("now{text}"), text.clone()] {
        for up in [false, true] {
            if let (Some(x), Some(y)) = (bound(&math, early, up), bound(&math, late, up)) {
                assert!(x <= y, "`{math}` (up: {up}) at now={early} gives {x}, later at now={late} {y}");
            }
        }
        if let (Some(down), Some(up)) = (bound(&math, early, false), bound(&math, early, true)) {
            assert!(down <= up, "`{math}` at now={early} rounds down to {down}, up to {up}");
        }
        for now in [early, late] {
            for up in [false, true] {
                if let Some(t) = bound(&math, now, up) {
                    assert!((-MAX_MS..=MAX_MS).contains(&t), "`{math}` left the range: {t}");
                }
            }
        }
    }
}
