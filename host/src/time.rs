//! The host's one clock: wall time since the Unix epoch, and the one
//! millisecond conversion. Date math and parsing stay in `cluster::dates`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(millis).unwrap_or(0)
}

/// Milliseconds since the Unix epoch, signed, as date math uses them.
pub fn now_ms_signed() -> i64 {
    i64::try_from(now_ms()).unwrap_or(i64::MAX)
}

/// A duration in whole milliseconds, saturating (the one conversion, instead
/// of mixed `as u64` casts).
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_agree() {
        let (secs, ms) = (now_secs(), now_ms());
        assert!(ms / 1000 >= secs && ms / 1000 - secs <= 1);
        assert!(secs > 1_700_000_000);
        assert_eq!(millis(Duration::from_secs(u64::MAX)), u64::MAX);
        assert_eq!(millis(Duration::from_micros(2500)), 2);
    }
}
