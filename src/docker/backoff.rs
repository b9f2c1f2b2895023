//! Capped, jittered exponential backoff for reconnecting to Docker.
//!
//! Jittered: each delay is uniform in `[c/2, c]` where `c = min(base·2ⁿ, cap)` (half fixed,
//! half random — what AWS's backoff article calls "equal jitter"), so a fleet of sidecars
//! restarted together does not hammer a recovering daemon in lockstep, and no delay drops
//! near zero. The watcher resets it after a healthy period, so one blip long ago does not
//! slow the next reconnect. A sidecar never gives up: there is no attempt limit.
//!
//! The randomness is `fastrand`'s seedable generator: a seed makes the delays reproducible in
//! tests, and a random seed spreads real sidecars out.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A seeded backoff: the same seed gives the same delays (tests).
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Backoff {
        Backoff::with_rng(base, cap, fastrand::Rng::with_seed(seed))
    }

    /// Seeded at random, so sidecars started together spread out.
    pub fn from_entropy(base: Duration, cap: Duration) -> Backoff {
        Backoff::with_rng(base, cap, fastrand::Rng::new())
    }

    fn with_rng(base: Duration, cap: Duration, rng: fastrand::Rng) -> Backoff {
        Backoff {
            base,
            cap,
            attempt: 0,
            rng,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(20));
        let ceiling = exp.min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let spread = (ceiling - half).as_nanos() as u64;
        half + Duration::from_nanos(self.rng.u64(0..=spread))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
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
    fn a_seed_gives_reproducible_delays() {
        let delays = |seed| {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), seed);
            (0..10).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(delays(1), delays(1));
        assert_ne!(delays(1), delays(2));
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
