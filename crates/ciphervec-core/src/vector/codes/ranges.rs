//! Per-dimension ranges that 8-bit codes cut into steps, and the largest magnitude float16
//! codes are scaled to.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rayon::prelude::*;

/// The share of values on each side of each dimension that 8-bit ranges leave out (they are
/// clamped to the range's end): 1 in ~33,000, so indexes under 33,334 vectors keep the
/// minimum and maximum. A few extreme values stretch a min–max range for everyone; codes-only
/// recall@10 by share left out (glove50 at 64 probes; a 384-d set at 8 / 16 probes): 0 →
/// 0.9535; 0.9836 / 0.9954, 1e-5 → 0.9550; 0.9836 / 0.9956, **3e-5** → 0.9558; 0.9844 /
/// 0.9963, 1e-4 → 0.9557; 0.9829 / 0.9949, 1e-3 → 0.9539 on glove50 (BENCHMARKS.md, "8-bit
/// codes of residuals").
pub(crate) const CLAMPED_SHARE: f64 = 3e-5;

/// Per dimension of `n` values `value(i)` (a vector, or its difference from its list's
/// centroid), the range from the `k+1`-th smallest to the `k+1`-th largest value, where
/// `k = ⌊n · clamped_share⌋`: the minimum and maximum when `k` is 0 (fewer than 33,334
/// vectors at [`CLAMPED_SHARE`]). Zeros when `n` is 0. Exact, in one parallel pass: each
/// dimension keeps its `k+1` smallest and largest values in two bounded heaps, which most
/// values pass with one comparison.
pub(crate) fn trimmed(
    dim: usize,
    n: usize,
    clamped_share: f64,
    value: &(dyn Fn(usize, &mut [f32]) + Sync),
) -> (Vec<f32>, Vec<f32>) {
    if n == 0 {
        return (vec![0.0; dim], vec![0.0; dim]);
    }
    let keep = (n as f64 * clamped_share) as usize + 1;
    let start = || (Tails::new(dim, keep), vec![0f32; dim]);
    let (tails, _) = (0..n)
        .into_par_iter()
        .fold(start, |(mut tails, mut row), i| {
            value(i, &mut row);
            for (j, &x) in row.iter().enumerate() {
                tails.push(j, x);
            }
            (tails, row)
        })
        .reduce(start, |(mut a, row), (b, _)| {
            a.merge(b);
            (a, row)
        });
    tails.ends()
}

/// `f32` in its total order, for the heaps (the values are finite: the index refuses NaN).
#[derive(Clone, Copy, PartialEq)]
struct Total(f32);

impl Eq for Total {}

impl PartialOrd for Total {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Total {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The `keep` smallest (a max-heap: its top is the largest of them) and `keep` largest values
/// seen per dimension.
struct Tails {
    keep: usize,
    low: Vec<BinaryHeap<Total>>,
    high: Vec<BinaryHeap<Reverse<Total>>>,
}

impl Tails {
    fn new(dim: usize, keep: usize) -> Tails {
        Tails {
            keep,
            low: (0..dim).map(|_| BinaryHeap::with_capacity(keep)).collect(),
            high: (0..dim).map(|_| BinaryHeap::with_capacity(keep)).collect(),
        }
    }

    fn push(&mut self, j: usize, x: f32) {
        self.push_low(j, x);
        self.push_high(j, x);
    }

    fn merge(&mut self, other: Tails) {
        for (j, (low, high)) in other.low.into_iter().zip(other.high).enumerate() {
            for Total(x) in low {
                self.push_low(j, x);
            }
            for Reverse(Total(x)) in high {
                self.push_high(j, x);
            }
        }
    }

    fn push_low(&mut self, j: usize, x: f32) {
        let low = &mut self.low[j];
        if low.len() < self.keep {
            low.push(Total(x));
        } else if x < low.peek().expect("keep ≥ 1").0 {
            low.pop();
            low.push(Total(x));
        }
    }

    fn push_high(&mut self, j: usize, x: f32) {
        let high = &mut self.high[j];
        if high.len() < self.keep {
            high.push(Reverse(Total(x)));
        } else if x > high.peek().expect("keep ≥ 1").0 .0 {
            high.pop();
            high.push(Reverse(Total(x)));
        }
    }

    /// Per dimension, the `keep`-th smallest and `keep`-th largest value (or, with fewer
    /// values seen, the smallest and largest).
    fn ends(self) -> (Vec<f32>, Vec<f32>) {
        let low = self.low.iter().map(|h| h.peek().map_or(0.0, |t| t.0)).collect();
        let high = self.high.iter().map(|h| h.peek().map_or(0.0, |t| t.0 .0)).collect();
        (low, high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_ranges_leave_out_the_given_share_on_each_side() {
        // Dimension 0: 0..20,000 shuffled; dimension 1: constant 5.
        let n = 20_000;
        let value = |i: usize, out: &mut [f32]| {
            out[0] = ((i * 7919) % n) as f32;
            out[1] = 5.0;
        };
        // ⌊20,000 · 1e-4⌋ = 2 left out per side: 2 and 19,997.
        assert_eq!(trimmed(2, n, 1e-4, &value), (vec![2.0, 5.0], vec![19_997.0, 5.0]));
        // Nothing left out: the minimum and maximum.
        assert_eq!(trimmed(2, n, 0.0, &value), (vec![0.0, 5.0], vec![19_999.0, 5.0]));
        assert_eq!(trimmed(2, 0, 1e-4, &value), (vec![0.0, 0.0], vec![0.0, 0.0]));
        // One left out per side of three: both ends are the middle value.
        let three = |i: usize, out: &mut [f32]| out.copy_from_slice(&[[3.0, -1.0], [1.0, 0.0], [2.0, 9.0]][i]);
        assert_eq!(trimmed(2, 3, 0.4, &three), (vec![2.0, 0.0], vec![2.0, 0.0]));
    }
}
