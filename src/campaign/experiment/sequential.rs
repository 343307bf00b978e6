//! The anytime-valid sequential test of two conversion rates: a mixture sequential
//! probability ratio test (mSPRT) with a normal mixture, after Johari, Koomen, Pekelis and
//! Walsh, "Always Valid Inference" (2017/2022). Pure arithmetic, no I/O.

use serde::{Deserialize, Serialize};

/// Conversions of one arm (or the holdout): how many customers were exposed, how many
/// converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tally {
    /// Customers counted (sent to, or held out).
    pub exposed: u64,
    /// Of those, customers who converted.
    pub converted: u64,
}

impl Tally {
    /// `converted` of `exposed` (a larger `converted` is capped at `exposed`).
    #[must_use]
    pub fn new(exposed: u64, converted: u64) -> Self {
        Self { exposed, converted: converted.min(exposed) }
    }

    /// The conversion rate (0 when nobody was exposed).
    #[must_use]
    pub fn rate(&self) -> f64 {
        if self.exposed == 0 { 0.0 } else { self.converted as f64 / self.exposed as f64 }
    }

    /// Adds one customer.
    pub fn add(&mut self, converted: bool) {
        self.exposed += 1;
        self.converted += u64::from(converted);
    }
}

/// The mSPRT's reading of one comparison `a` vs `b` at one look.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Comparison {
    /// Estimated difference of conversion rates, `rate(a) − rate(b)`.
    pub difference: f64,
    /// The mixture likelihood ratio Λ (1 before the burn-in).
    pub likelihood_ratio: f64,
    /// The always-valid p-value at this look, `min(1, 1/Λ)`; keep the running minimum over
    /// looks ([`SequentialTest::p_value`]).
    pub p_value: f64,
    /// The always-valid confidence interval of the difference at this level (a confidence
    /// sequence: it covers the true difference at every look at once with probability
    /// ≥ 1 − α). `None` before the burn-in.
    pub interval: Option<(f64, f64)>,
    /// Λ ≥ 1/α: the rates differ.
    pub significant: bool,
}

/// The mSPRT for the difference of two conversion rates, with a normal mixture N(0, τ²) over
/// the difference. See `docs/experiments.md` for the method and why it may be checked after
/// every customer.
///
/// ```
/// use enishi::campaign::{SequentialTest, Tally};
///
/// let test = SequentialTest::new(0.05, 0.02).unwrap();
/// let reading = test.compare(Tally::new(2000, 160), Tally::new(2000, 100));
/// assert!(reading.significant);
/// let null = test.compare(Tally::new(2000, 101), Tally::new(2000, 100));
/// assert!(!null.significant);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SequentialTest {
    /// The false-positive rate the test keeps under continuous monitoring (default 0.05).
    pub alpha: f64,
    /// τ, the standard deviation of the normal mixture over the difference of rates
    /// (default 0.02, i.e. effects of a few percentage points).
    pub tau: f64,
    /// Each side needs this many customers before the test reads anything (default 100).
    pub min_exposed: u64,
}

impl Default for SequentialTest {
    fn default() -> Self {
        Self { alpha: 0.05, tau: 0.02, min_exposed: 100 }
    }
}

/// A sequential test's parameters are out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid sequential test: {0}")]
#[non_exhaustive]
pub struct SequentialTestError(pub String);

impl SequentialTest {
    /// A test at level `alpha` (0 < α < 1) with mixture standard deviation `tau` (> 0).
    ///
    /// # Errors
    /// [`SequentialTestError`] for α outside (0, 1) or τ not positive and finite.
    pub fn new(alpha: f64, tau: f64) -> Result<Self, SequentialTestError> {
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(SequentialTestError(format!("alpha must be in (0, 1), got {alpha}")));
        }
        if !(tau > 0.0 && tau.is_finite()) {
            return Err(SequentialTestError(format!("tau must be positive, got {tau}")));
        }
        Ok(Self { alpha, tau, min_exposed: 100 })
    }

    /// Sets the burn-in: each side needs `n` customers before the test reads anything.
    #[must_use]
    pub fn with_min_exposed(mut self, n: u64) -> Self {
        self.min_exposed = n;
        self
    }

    /// The same test at level `alpha` (for a Bonferroni split over several comparisons).
    #[must_use]
    pub fn at_level(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Compares `a` with `b` at this look.
    ///
    /// Λ = √(V / (V + τ²)) · exp(τ² · d² / (2 V (V + τ²))), where d is the difference of the
    /// rates and V = p̄(1 − p̄)(1/n_a + 1/n_b) its variance under "no difference" (p̄ pooled).
    #[must_use]
    pub fn compare(&self, a: Tally, b: Tally) -> Comparison {
        let difference = a.rate() - b.rate();
        let quiet = Comparison {
            difference,
            likelihood_ratio: 1.0,
            p_value: 1.0,
            interval: None,
            significant: false,
        };
        if a.exposed < self.min_exposed.max(1) || b.exposed < self.min_exposed.max(1) {
            return quiet;
        }
        let (na, nb) = (a.exposed as f64, b.exposed as f64);
        let pooled = (a.converted + b.converted) as f64 / (na + nb);
        let tau2 = self.tau * self.tau;
        let v0 = pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb);
        let likelihood_ratio = if v0 > 0.0 {
            let log = 0.5 * (v0 / (v0 + tau2)).ln()
                + tau2 * difference * difference / (2.0 * v0 * (v0 + tau2));
            log.exp()
        } else {
            // No conversions (or only conversions) on both sides: no evidence either way.
            1.0
        };
        // The confidence sequence inverts the same mixture around the estimate, with the
        // unpooled variance (rates smoothed by one success and one failure so it is never 0).
        let smooth = |t: Tally| (t.converted as f64 + 1.0) / (t.exposed as f64 + 2.0);
        let (sa, sb) = (smooth(a), smooth(b));
        let v = sa * (1.0 - sa) / na + sb * (1.0 - sb) / nb;
        let half = (v * (v + tau2) / tau2
            * (2.0 * (1.0 / self.alpha).ln() + ((v + tau2) / v).ln()))
        .sqrt();
        Comparison {
            difference,
            likelihood_ratio,
            p_value: (1.0 / likelihood_ratio).min(1.0),
            interval: Some((difference - half, difference + half)),
            significant: likelihood_ratio >= 1.0 / self.alpha,
        }
    }

    /// The always-valid p-value after a sequence of looks: the smallest `min(1, 1/Λ)` seen.
    #[must_use]
    pub fn p_value(looks: &[Comparison]) -> f64 {
        looks.iter().map(|c| c.p_value).fold(1.0, f64::min)
    }
}

/// A simulation of many experiments monitored after every customer (see [`simulate`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Simulation {
    /// How many experiments.
    pub experiments: u32,
    /// Customers per arm at most (the experiment ends there if nothing was found).
    pub max_per_arm: u64,
    /// Conversion rate of arm A.
    pub rate_a: f64,
    /// Conversion rate of arm B.
    pub rate_b: f64,
    /// The RNG seed (SplitMix64): the same seed gives the same result.
    pub seed: u64,
    /// The test applied after every pair of customers.
    pub test: SequentialTest,
}

impl Simulation {
    /// `experiments` experiments of up to `max_per_arm` customers per arm, with rates
    /// `rate_a` and `rate_b` (equal rates: null experiments), seed 1, the default test.
    #[must_use]
    pub fn new(experiments: u32, max_per_arm: u64, rate_a: f64, rate_b: f64) -> Self {
        Self { experiments, max_per_arm, rate_a, rate_b, seed: 1, test: SequentialTest::default() }
    }

    /// Sets the seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the test.
    #[must_use]
    pub fn test(mut self, test: SequentialTest) -> Self {
        self.test = test;
        self
    }
}

/// What a [`Simulation`] found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SimulationResult {
    /// Experiments run.
    pub experiments: u32,
    /// Experiments the test stopped as significant (false positives when the rates are equal).
    pub rejections: u32,
    /// Of those, how many named A the better arm.
    pub a_better: u32,
    /// Mean customers per arm at the stop, over the rejecting experiments (0 if none).
    pub mean_stop_per_arm: f64,
}

impl SimulationResult {
    /// `rejections / experiments`.
    #[must_use]
    pub fn rejection_rate(&self) -> f64 {
        if self.experiments == 0 {
            0.0
        } else {
            f64::from(self.rejections) / f64::from(self.experiments)
        }
    }
}

/// SplitMix64: a small, fast, seedable generator (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Runs `sim`: each experiment adds one customer to each arm at a time, converting with the
/// arm's rate, and applies the test after every pair (continuous monitoring); it stops at the
/// first significant look or at `max_per_arm`. Pure and deterministic in the seed.
#[must_use]
pub fn simulate(sim: &Simulation) -> SimulationResult {
    let mut rng = SplitMix64(sim.seed);
    let mut rejections = 0;
    let mut a_better = 0;
    let mut stop_sum = 0u64;
    for _ in 0..sim.experiments {
        let (mut a, mut b) = (Tally::default(), Tally::default());
        for _ in 0..sim.max_per_arm {
            a.add(rng.next_f64() < sim.rate_a);
            b.add(rng.next_f64() < sim.rate_b);
            let reading = sim.test.compare(a, b);
            if reading.significant {
                rejections += 1;
                a_better += u32::from(reading.difference > 0.0);
                stop_sum += a.exposed;
                break;
            }
        }
    }
    SimulationResult {
        experiments: sim.experiments,
        rejections,
        a_better,
        mean_stop_per_arm: if rejections == 0 {
            0.0
        } else {
            stop_sum as f64 / f64::from(rejections)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_matches_the_closed_form() {
        let t = SequentialTest::new(0.05, 0.1).unwrap().with_min_exposed(1);
        let c = t.compare(Tally::new(100, 30), Tally::new(100, 20));
        let v: f64 = 0.25 * 0.75 * 0.02;
        let expected = (v / (v + 0.01)).sqrt() * (0.01 * 0.01 / (2.0 * v * (v + 0.01))).exp();
        assert!((c.likelihood_ratio - expected).abs() < 1e-12, "{c:?} vs {expected}");
    }

    #[test]
    fn nothing_is_read_before_the_burn_in() {
        let t = SequentialTest::default();
        let c = t.compare(Tally::new(99, 99), Tally::new(99, 0));
        assert!(!c.significant);
        assert_eq!(c.interval, None);
    }

    #[test]
    fn parameters_are_checked() {
        assert!(SequentialTest::new(0.0, 0.1).is_err());
        assert!(SequentialTest::new(0.05, 0.0).is_err());
        assert!(SequentialTest::new(0.05, f64::NAN).is_err());
    }
}
