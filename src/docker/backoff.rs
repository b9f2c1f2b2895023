//! Capped, jittered exponential backoff for reconnecting to Docker.
//!
//! "Full jitter": each delay is uniform in `[base·2ⁿ/2, base·2ⁿ]`, capped, so a fleet of
//! sidecars restarted together does not hammer a recovering daemon in lockstep. The
//! controller resets it after a healthy period, so one blip long ago does not slow the next
//! reconnect. A sidecar never gives up: there is no attempt limit.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Backoff {
        Backoff {
            base,
            cap,
            attempt: 0,
            rng: seed | 1,
        }
    }

    /// Seeded from the clock and process id, so sidecars on one host spread out.
    pub fn from_clock(base: Duration, cap: Duration) -> Backoff {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
            .unwrap_or(0);
        Backoff::new(base, cap, nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(20));
        let ceiling = exp.min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let spread = (ceiling - half).as_nanos() as u64;
        let jitter = if spread == 0 { 0 } else { self.random() % (spread + 1) };
        half + Duration::from_nanos(jitter)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// xorshift64: plenty for jitter, no dependency.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_stays_within_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 42);
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100));
        assert!(delays[3] >= Duration::from_millis(400) && delays[3] <= Duration::from_millis(800));
        for d in &delays[6..] {
            assert!(
                *d >= Duration::from_millis(2500) && *d <= Duration::from_secs(5),
                "{d:?}"
            );
        }
        let distinct: std::collections::BTreeSet<_> = delays[6..].iter().collect();
        assert!(distinct.len() > 1, "capped delays are jittered: {delays:?}");
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 7);
        for _ in 0..10 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn never_overflows_after_many_attempts() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30), 3);
        for _ in 0..10_000 {
            assert!(b.next_delay() <= Duration::from_secs(30));
        }
    }
}
