//! The one back-off: how long to wait after a failed attempt.

use std::time::Duration;

use rand::Rng;

/// How a computed wait is randomised, so that clients failing together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// The wait is exactly the step.
    None,
    /// "Equal jitter": a uniform wait between half of the step and all of it.
    Equal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Steps {
    /// `initial * 2^(attempts-1)`, at most `max`.
    Exponential { initial: Duration, max: Duration },
    /// The `n`-th wait is `delays[n-1]`; the last one repeats.
    Schedule(Vec<Duration>),
}

/// The wait after a failed attempt: capped exponential ([`exponential`](Self::exponential)) or
/// a fixed schedule ([`schedule`](Self::schedule)), randomised by a [`Jitter`] drawn from an
/// RNG the caller passes (seed it in tests).
///
/// ```
/// use std::time::Duration;
/// use enishi::retry::{Backoff, Jitter};
/// use rand::SeedableRng;
///
/// let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(8));
/// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
/// let wait = backoff.delay(3, &mut rng).unwrap(); // after the third attempt: step 4 s
/// assert!(wait >= Duration::from_secs(2) && wait <= Duration::from_secs(4));
///
/// let fixed = Backoff::schedule([Duration::from_secs(3), Duration::from_secs(5)]);
/// assert_eq!(fixed.delay(9, &mut rng), Some(Duration::from_secs(5)));
/// assert_eq!(fixed.jitter_kind(), Jitter::None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Backoff {
    steps: Steps,
    jitter: Jitter,
}

impl Backoff {
    /// `initial` after the first attempt, doubling after each further one, at most `max`;
    /// with [`Jitter::Equal`].
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        Self { steps: Steps::Exponential { initial, max }, jitter: Jitter::Equal }
    }

    /// The waits after the first, second, ... attempt; the last one repeats. Without jitter.
    /// An empty schedule defines no wait: [`delay`](Self::delay) is `None` (never retry).
    pub fn schedule(delays: impl IntoIterator<Item = Duration>) -> Self {
        Self { steps: Steps::Schedule(delays.into_iter().collect()), jitter: Jitter::None }
    }

    /// Sets how waits are randomised.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// How waits are randomised.
    #[must_use]
    pub fn jitter_kind(&self) -> Jitter {
        self.jitter
    }

    /// The wait after `attempts` attempts (counting from 1) before jitter, or `None` for an
    /// empty schedule.
    #[must_use]
    pub fn step(&self, attempts: u32) -> Option<Duration> {
        match &self.steps {
            Steps::Exponential { initial, max } => {
                let doublings = attempts.saturating_sub(1).min(31);
                Some(initial.saturating_mul(1 << doublings).min(*max))
            }
            Steps::Schedule(delays) => {
                let k = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
                delays.get(k).or(delays.last()).copied()
            }
        }
    }

    /// No wait this back-off produces is longer than this (zero for an empty schedule).
    #[must_use]
    pub fn longest(&self) -> Duration {
        match &self.steps {
            Steps::Exponential { max, .. } => *max,
            Steps::Schedule(delays) => delays.iter().copied().max().unwrap_or_default(),
        }
    }

    /// The jittered wait after `attempts` attempts, drawing from `rng`; `None` for an empty
    /// schedule.
    #[must_use]
    pub fn delay(&self, attempts: u32, rng: &mut impl Rng) -> Option<Duration> {
        let step = self.step(attempts)?;
        Some(match self.jitter {
            Jitter::None => step,
            Jitter::Equal => {
                let nanos = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(rng.random_range(nanos / 2..=nanos))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn exponential_steps_double_up_to_the_cap() {
        let b = Backoff::exponential(ms(100), ms(1000));
        let steps: Vec<_> = (1..=6).map(|a| b.step(a).unwrap()).collect();
        assert_eq!(steps, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
        assert_eq!(b.step(u32::MAX), Some(ms(1000)), "no overflow");
        assert_eq!(b.longest(), ms(1000));
    }

    #[test]
    fn equal_jitter_stays_between_half_and_the_whole_step() {
        let b = Backoff::exponential(ms(100), ms(1000));
        let mut rng = StdRng::seed_from_u64(1);
        for attempts in 1..20 {
            let step = b.step(attempts).unwrap();
            for _ in 0..50 {
                let wait = b.delay(attempts, &mut rng).unwrap();
                assert!(wait >= step / 2 && wait <= step, "attempt {attempts}: {wait:?}");
            }
        }
    }

    #[test]
    fn a_seeded_rng_reproduces_the_waits() {
        let b = Backoff::exponential(ms(100), ms(10_000));
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..6).map(|a| b.delay(a, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn schedules_repeat_their_last_wait_and_have_no_jitter() {
        let b = Backoff::schedule([ms(3000), ms(5000), ms(15_000)]);
        let mut rng = StdRng::seed_from_u64(1);
        let waits: Vec<_> = [1, 2, 3, 4, 40].map(|a| b.delay(a, &mut rng).unwrap()).to_vec();
        assert_eq!(waits, [ms(3000), ms(5000), ms(15_000), ms(15_000), ms(15_000)]);
        assert_eq!(Backoff::schedule([]).delay(1, &mut rng), None);
        let jittered = Backoff::schedule([ms(1000)]).jitter(Jitter::Equal);
        let wait = jittered.delay(1, &mut rng).unwrap();
        assert!(wait >= ms(500) && wait <= ms(1000), "{wait:?}");
    }
}
