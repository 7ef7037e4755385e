//! Time sources: wall clock for call-record timestamps, a monotonic clock for everything else.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Monotonic nanoseconds since the first call in this process.
pub fn now_ns() -> u64 {
    origin().elapsed().as_nanos() as u64
}

/// Monotonic milliseconds since the first call in this process.
pub fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
