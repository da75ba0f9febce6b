//! Distance metrics. Lower distance is always closer.

/// How distances between vectors are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// √Σ(a−b)²
    Euclidean,
    /// Σ(a−b)²: same order as Euclidean, without the square root.
    SquaredEuclidean,
    /// 1 − cos(a, b), in [0, 2].
    Cosine,
}

impl Metric {
    pub fn parse(s: &str) -> Option<Metric> {
        match s {
            "euclidean" => Some(Metric::Euclidean),
            "squared_euclidean" => Some(Metric::SquaredEuclidean),
            "cosine" => Some(Metric::Cosine),
            _ => None,
        }
    }

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

    /// Turns a scan score into the distance reported to users.
    #[inline]
    pub(crate) fn finish(self, score: f32) -> f32 {
        match self {
            Metric::Euclidean => score.max(0.0).sqrt(),
            Metric::SquaredEuclidean => score.max(0.0),
            Metric::Cosine => score,
        }
    }
}
