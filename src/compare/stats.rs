//! The Mann-Whitney U test on two latency samples kept as HDR histograms: a rank test that asks
//! whether one sample tends to be larger, without assuming a distribution (latency is skewed and
//! heavy-tailed, so a t-test would mislead). Ties share their mean rank; the p-value is the normal
//! approximation with tie and continuity corrections, which is accurate for the sample sizes a
//! latency check records (tens to thousands).

use hdrhistogram::Histogram;

/// The result of comparing a new sample with a baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// U of the new sample: how often a new value beats a baseline value (ties count half).
    pub u: f64,
    /// Two-sided p-value of "neither sample tends to be larger".
    pub p: f64,
    /// Rank-biserial correlation, from -1 (new always smaller) to 1 (new always larger).
    pub effect: f64,
}

/// Compares `new` with `base`, given as `(value, count)` pairs sorted by value.
pub fn mann_whitney(base: &[(u64, u64)], new: &[(u64, u64)]) -> Option<Shift> {
    let n1: f64 = new.iter().map(|(_, c)| *c as f64).sum();
    let n2: f64 = base.iter().map(|(_, c)| *c as f64).sum();
    if n1 == 0.0 || n2 == 0.0 {
        return None;
    }
    let (rank_sum, tie_term) = ranks(base, new);
    let u = rank_sum - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let mean = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let p = if variance <= 0.0 {
        1.0
    } else {
        let z = ((u - mean).abs() - 0.5).max(0.0) / variance.sqrt();
        erfc(z / std::f64::consts::SQRT_2)
    };
    Some(Shift {
        u,
        p: p.clamp(0.0, 1.0),
        effect: 2.0 * u / (n1 * n2) - 1.0,
    })
}

/// The sum of the new sample's ranks (mean ranks for ties), and Σ(t³ - t) over tie groups.
fn ranks(base: &[(u64, u64)], new: &[(u64, u64)]) -> (f64, f64) {
    let (mut i, mut j) = (0, 0);
    let (mut below, mut rank_sum, mut tie_term) = (0.0f64, 0.0f64, 0.0f64);
    while i < base.len() || j < new.len() {
        let value = match (base.get(i), new.get(j)) {
            (Some(b), Some(n)) => b.0.min(n.0),
            (Some(b), None) => b.0,
            (None, Some(n)) => n.0,
            (None, None) => break,
        };
        let from_base = base.get(i).filter(|b| b.0 == value).map_or(0, |b| b.1) as f64;
        let from_new = new.get(j).filter(|n| n.0 == value).map_or(0, |n| n.1) as f64;
        i += usize::from(from_base > 0.0);
        j += usize::from(from_new > 0.0);
        let t = from_base + from_new;
        let mean_rank = below + (t + 1.0) / 2.0;
        rank_sum += from_new * mean_rank;
        tie_term += t * t * t - t;
        below += t;
    }
    (rank_sum, tie_term)
}

/// A histogram's recorded values and counts, lowest first.
pub fn sample(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// The complementary error function, to 1.2e-7 (Numerical Recipes' Chebyshev fit).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones(values: &[u64]) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = values.iter().map(|x| (*x, 1)).collect();
        v.sort();
        v
    }

    /// Aesop's race as the textbook tells it: finishing order T H H H H H T T T T T H. The
    /// tortoises' U is 25 and the hares' 11.
    #[test]
    fn the_tortoise_and_the_hare() {
        let tortoises = ones(&[1, 7, 8, 9, 10, 11]);
        let hares = ones(&[2, 3, 4, 5, 6, 12]);
        let t = mann_whitney(&hares, &tortoises).unwrap();
        assert_eq!(t.u, 25.0);
        let h = mann_whitney(&tortoises, &hares).unwrap();
        assert_eq!(h.u, 11.0);
        assert!(
            (t.p - h.p).abs() < 1e-12,
            "two-sided: the same p either way"
        );
    }

    /// 1..5 against 6..10: U = 0, z = 12 / sqrt(25·11/12) with the continuity correction,
    /// p = erfc(z/√2) = 0.0121858 (computed independently).
    #[test]
    fn separated_samples_match_the_normal_approximation() {
        let s = mann_whitney(&ones(&[6, 7, 8, 9, 10]), &ones(&[1, 2, 3, 4, 5])).unwrap();
        assert_eq!(s.u, 0.0);
        assert!((s.p - 0.012_185_78).abs() < 1e-6, "{}", s.p);
        assert_eq!(s.effect, -1.0);
    }

    #[test]
    fn identical_samples_show_no_shift_and_ties_are_shared() {
        let a = vec![(10, 50), (20, 50)];
        let s = mann_whitney(&a, &a).unwrap();
        assert_eq!(s.u, 5000.0);
        assert!(s.p > 0.99);
        assert_eq!(s.effect, 0.0);
        assert_eq!(mann_whitney(&a, &[]), None);
    }
}
