//! Distance metrics. Lower distance is always closer.
//!
//! Scores are computed in `f32` by the kernels, so a metric also says which vectors it can
//! score: [`Metric::check`] rejects those whose distances would overflow, underflow or have no
//! direction, so no result ever holds NaN or an infinity.

/// Largest squared length a vector may have. For two such vectors `|a − b|² ≤ 2(|a|² + |b|²)`
/// stays below `f32::MAX`, and so do the `|c|² − 2·x·c` terms of centroid assignment and
/// every k-means inertia term: `[1e20; 8]` (squared length 8e40) made every distance
/// infinite and dropped items from results.
pub const MAX_NORM_SQR: f64 = f32::MAX as f64 / 4.0;

/// Smallest squared length a vector may have under cosine. Below it, `f32` products of its
/// components fall into subnormals and its norm loses precision, so `1 − a·b / (|a||b|)` is no
/// longer a cosine distance: `[1e-30; 8]` had a squared norm of 0 in `f32` and scored `-∞`
/// against every query.
pub const MIN_COSINE_NORM_SQR: f64 = 1e-30;

/// How distances between vectors are measured (Euclidean unless told).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    /// √Σ(a−b)²
    #[default]
    Euclidean,
    /// Σ(a−b)²: same order as Euclidean, without the square root.
    SquaredEuclidean,
    /// 1 − cos(a, b), in [0, 2].
    Cosine,
}

impl Metric {
    /// The metric named `s` (`"euclidean"`, `"squared_euclidean"`, `"cosine"`).
    pub fn parse(s: &str) -> Option<Metric> {
        match s {
            "euclidean" => Some(Metric::Euclidean),
            "squared_euclidean" => Some(Metric::SquaredEuclidean),
            "cosine" => Some(Metric::Cosine),
            _ => None,
        }
    }

    /// The metric's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Euclidean => "euclidean",
            Metric::SquaredEuclidean => "squared_euclidean",
            Metric::Cosine => "cosine",
        }
    }

    pub(crate) fn to_byte(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_byte(b: u8) -> Option<Metric> {
        [Metric::Euclidean, Metric::SquaredEuclidean, Metric::Cosine].get(b as usize).copied()
    }

    /// Turns a scan score into the distance reported to users. Rounding can take a score just
    /// past its range (a vector's cosine distance to itself came back as -1.2e-7), so it is
    /// clamped to the range the metric defines.
    #[inline]
    pub(crate) fn finish(self, score: f32) -> f32 {
        match self {
            Metric::Euclidean => score.max(0.0).sqrt(),
            Metric::SquaredEuclidean => score.max(0.0),
            Metric::Cosine => score.clamp(0.0, 2.0),
        }
    }

    /// Why `v` cannot be stored or queried under this metric, if it cannot: empty, a NaN or
    /// infinite value, a squared length above [`MAX_NORM_SQR`], or (cosine) below
    /// [`MIN_COSINE_NORM_SQR`]. The message says what to change.
    pub fn check(self, v: &[f32]) -> Result<(), String> {
        if v.is_empty() {
            return Err("is empty".into());
        }
        if let Some(pos) = v.iter().position(|x| !x.is_finite()) {
            return Err(format!("has a non-finite value ({}) at position {pos}", v[pos]));
        }
        // In f64, where no value that passed the check above can overflow or underflow.
        let norm_sqr: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        if norm_sqr > MAX_NORM_SQR {
            return Err(format!(
                "is too long: its squared length {norm_sqr:.3e} is above {MAX_NORM_SQR:.3e}, beyond which float32 \
                 distances overflow; scale it down"
            ));
        }
        if self == Metric::Cosine && norm_sqr < MIN_COSINE_NORM_SQR {
            return Err(if norm_sqr == 0.0 {
                "is all zeros, which has no direction under the cosine metric".into()
            } else {
                format!(
                    "is too close to zero for the cosine metric: its squared length {norm_sqr:.3e} is below \
                     {MIN_COSINE_NORM_SQR:e}, where float32 loses its direction; scale it up"
                )
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_rejects_what_the_kernels_cannot_score_and_accepts_the_bounds() {
        for m in [Metric::Euclidean, Metric::SquaredEuclidean, Metric::Cosine] {
            assert!(m.check(&[]).is_err());
            assert!(m.check(&[1.0, f32::NAN]).is_err());
            assert!(m.check(&[f32::INFINITY]).is_err());
            assert!(m.check(&[1e20; 8]).is_err(), "squared length 8e40");
            assert!(m.check(&[1e19; 8]).is_err(), "squared length 8e38");
            let edge = (MAX_NORM_SQR / 8.0).sqrt() as f32 * 0.999;
            assert!(m.check(&[edge; 8]).is_ok(), "just inside");
            assert!(m.check(&[0.5, -2.0]).is_ok());
        }
        assert!(Metric::Cosine.check(&[0.0; 4]).unwrap_err().contains("all zeros"));
        assert!(Metric::Cosine.check(&[1e-30; 8]).unwrap_err().contains("too close to zero"));
        assert!(Metric::Euclidean.check(&[1e-30; 8]).is_ok(), "tiny is fine without a direction");
        assert!(Metric::Cosine.check(&[1e-15, 0.0]).is_ok(), "squared length 1e-30 is the bound");
    }

    #[test]
    fn finished_distances_stay_in_range() {
        assert_eq!(Metric::Cosine.finish(-1.2e-7), 0.0);
        assert_eq!(Metric::Cosine.finish(2.000_001), 2.0);
        assert_eq!(Metric::Euclidean.finish(-1e-9), 0.0);
        assert_eq!(Metric::SquaredEuclidean.finish(4.0), 4.0);
    }
}
