//! Quality, determinism, cancellation and edge cases of k-means.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Lcg(u64);
impl Lcg {
    fn unit(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Roughly standard normal (sum of uniforms), enough for blob tests.
    fn gauss(&mut self) -> f32 {
        (0..12).map(|_| self.unit()).sum::<f32>() - 6.0
    }
}

/// `blobs` well-separated Gaussian blobs of `per` points; returns (data, centers).
fn blobs(blobs: usize, per: usize, dim: usize, sigma: f32, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut r = Lcg(seed);
    let centers: Vec<f32> = (0..blobs * dim).map(|_| r.unit() * 100.0).collect();
    let mut data = Vec::with_capacity(blobs * per * dim);
    for i in 0..blobs * per {
        let c = &centers[(i % blobs) * dim..][..dim];
        data.extend(c.iter().map(|&v| v + sigma * r.gauss()));
    }
    (data, centers)
}

fn quiet(_: &Progress) {}

fn run(data: &[f32], dim: usize, p: &KMeansParams) -> Result<KMeansResult, KMeansError> {
    train(data, dim, p, &|| false, &quiet)
}

/// Lloyd's defaults with `k` lists.
fn lloyd(k: usize) -> KMeansParams {
    KMeansParams::with(k, Algorithm::Lloyd)
}

/// Mini-batch's defaults with `k` lists.
fn minibatch(k: usize) -> KMeansParams {
    KMeansParams::with(k, Algorithm::MiniBatch)
}

/// The run recovers `blobs`: inertia near the optimum (about n * dim * sigma^2) and every true
/// centre has a centroid within a few sigma / sqrt(per).
fn assert_recovers_blobs(p: &KMeansParams) -> KMeansResult {
    let (dim, per, sigma) = (16, 200, 0.5);
    let (data, centers) = blobs(p.n_lists, per, dim, sigma, 1);
    let r = run(&data, dim, p).unwrap();
    let optimal = (p.n_lists * per * dim) as f64 * (sigma as f64).powi(2);
    assert!(r.inertia < 1.1 * optimal && r.inertia > 0.9 * optimal, "{} vs {optimal}", r.inertia);
    for c in centers.chunks_exact(dim) {
        let (_, d) = assign(c, dim, &r.centroids)[0];
        assert!(d < 0.05, "center missed by {d}");
    }
    r
}

#[test]
fn recovers_gaussian_blobs() {
    let mut p = lloyd(12);
    p.max_iters = 100;
    p.tolerance = 1e-6;
    let r = assert_recovers_blobs(&p);
    assert_eq!(r.trained_on, 12 * 200);
    assert!(r.iterations < p.max_iters, "tolerance should stop early");
}

#[test]
fn lloyd_deterministic_for_seed_and_thread_count() {
    let (data, _) = blobs(20, 30, 8, 3.0, 2);
    let mut p = lloyd(25);
    p.max_points_per_centroid = 20; // forces sampling
    let in_pool = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| run(&data, 8, &p).unwrap())
    };
    let a = in_pool(2);
    let b = in_pool(2);
    let c = in_pool(1);
    assert_eq!(a.trained_on, 500);
    assert_eq!((a.centroids.clone(), a.inertia), (b.centroids, b.inertia));
    assert_eq!((a.centroids.clone(), a.inertia), (c.centroids, c.inertia));
    p.seed += 1;
    assert_ne!(a.centroids, run(&data, 8, &p).unwrap().centroids);
}

#[test]
fn lloyd_progress_reports_each_iteration() {
    let (data, _) = blobs(10, 50, 4, 5.0, 3);
    let mut p = lloyd(10);
    p.max_iters = 7;
    p.tolerance = 0.0;
    let seen = Mutex::new(Vec::new());
    let r = train(&data, 4, &p, &|| false, &|pr: &Progress| {
        seen.lock().unwrap().push((pr.iteration, pr.max_iters, pr.inertia))
    })
    .unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(r.iterations, 7);
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());
    assert!(seen.iter().all(|s| s.1 == 7));
    assert!(seen.windows(2).all(|w| w[1].2 <= w[0].2 * (1.0 + 1e-6)), "Lloyd inertia must not rise");
    assert_eq!(seen[6].2, r.inertia);
}

/// Starts a run of `p` on `data` on a 2-thread pool, sets the cancel flag once the first
/// iteration (or pass) is reported, and checks the run stops with `Aborted` after a bounded
/// number of polls saw the flag: each worker sees it at its next poll and may have taken one
/// more block before the run stopped handing them out, however long a block takes on a busy
/// machine. The latency is printed, not asserted.
fn assert_cancel_stops_within_a_block_per_worker(data: &[f32], dim: usize, p: &KMeansParams) {
    let cancel = AtomicBool::new(false);
    let polls_after = AtomicUsize::new(0);
    let polled = || {
        let stopped = cancel.load(Ordering::Acquire);
        if stopped {
            polls_after.fetch_add(1, Ordering::Relaxed);
        }
        stopped
    };
    let iterations = AtomicUsize::new(0);
    let threads = 2;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            pool.install(|| {
                train(data, dim, p, &polled, &|pr: &Progress| iterations.store(pr.iteration, Ordering::Relaxed))
            })
        });
        while iterations.load(Ordering::Relaxed) < 1 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let t = Instant::now();
        cancel.store(true, Ordering::Release);
        assert_eq!(h.join().unwrap().unwrap_err(), KMeansError::Aborted);
        let polls = polls_after.load(Ordering::Relaxed);
        assert!(polls <= 2 * threads, "{polls} polls saw the cancel: workers ran on after it");
        println!("abort observed after {:?}, {polls} poll(s)", t.elapsed());
    });
}

/// A cancel is observed at the next poll of every worker (see the helper above).
#[test]
fn cancel_from_another_thread_aborts_within_a_block_per_worker() {
    let mut r = Lcg(4);
    let dim = 32;
    let data: Vec<f32> = (0..20_000 * dim).map(|_| r.unit()).collect();
    let mut p = lloyd(256);
    p.max_iters = 100_000;
    p.tolerance = 0.0;
    p.batch_size = 64; // debug builds are slow: keep blocks short
    assert_cancel_stops_within_a_block_per_worker(&data, dim, &p);
}

#[test]
fn cancel_before_start_aborts() {
    let (data, _) = blobs(4, 50, 4, 1.0, 5);
    let res = train(&data, 4, &KMeansParams::new(4), &|| true, &quiet);
    assert_eq!(res.unwrap_err(), KMeansError::Aborted);
}

#[test]
fn insufficient_points() {
    let data = vec![0.5f32; 15 * 3];
    let res = run(&data, 3, &KMeansParams::new(8));
    assert_eq!(res.unwrap_err(), KMeansError::InsufficientPoints { needed: 16, have: 15 });
}

#[test]
fn invalid_arguments() {
    let data = vec![0.0f32; 100];
    for (dim, f) in [
        (0, (|_| {}) as fn(&mut KMeansParams)),
        (3, |_| {}),
        (4, |p| p.max_iters = 0),
        (4, |p| p.batch_size = 0),
        (4, |p| p.tolerance = f64::NAN),
        (4, |p| p.n_lists = 0),
        (4, |p| p.max_memory_bytes = 10),
    ] {
        for algorithm in [Algorithm::MiniBatch, Algorithm::Lloyd] {
            let mut p = KMeansParams::with(2, algorithm);
            f(&mut p);
            assert!(matches!(run(&data, dim, &p), Err(KMeansError::InvalidArgument(_))), "dim {dim} {p:?}");
        }
    }
}

#[test]
fn duplicate_points_leave_no_nan_and_near_zero_inertia() {
    // 5 distinct points, 20 lists: most clusters start or become empty and get re-split.
    let dim = 6;
    let distinct: Vec<f32> = (0..5 * dim).map(|i| (i % 7) as f32 - 3.0).collect();
    let data: Vec<f32> = (0..400).flat_map(|i| distinct[(i % 5) * dim..][..dim].to_vec()).collect();
    let mut p = lloyd(20);
    p.tolerance = 0.0;
    p.max_iters = 10;
    let r = run(&data, dim, &p).unwrap();
    assert!(r.centroids.iter().all(|v| v.is_finite()));
    // Split centroids are nudged copies, so distances are tiny but not exactly zero.
    assert!(r.inertia < 1e-6, "{}", r.inertia);
    assert!(r.iterations < 10, "zero inertia counts as converged");
}

#[test]
fn empty_clusters_are_refilled() {
    // 60% of points are one duplicate: seeding picks it many times, so splitting must spread lists.
    let mut g = Lcg(6);
    let dim = 4;
    let mut data = vec![1.0f32; 600 * dim];
    data.extend((0..400 * dim).map(|_| g.unit() * 10.0));
    let mut p = lloyd(40);
    p.tolerance = 0.0;
    p.max_iters = 15;
    let r = run(&data, dim, &p).unwrap();
    let mut sizes = vec![0usize; 40];
    for (id, _) in assign(&data, dim, &r.centroids) {
        sizes[id as usize] += 1;
    }
    let used = sizes.iter().filter(|&&s| s > 0).count();
    assert!(used >= 38, "only {used} of 40 lists used: {sizes:?}");
}

#[test]
fn memory_limit_caps_training_sample() {
    let (data, _) = blobs(10, 1000, 8, 1.0, 7);
    for algorithm in [Algorithm::MiniBatch, Algorithm::Lloyd] {
        let mut p = KMeansParams::with(10, algorithm);
        p.max_memory_bytes = 150_000;
        let r = run(&data, 8, &p).unwrap();
        assert!(r.trained_on < 10_000 && r.trained_on >= 20, "{algorithm:?}: {}", r.trained_on);
        assert_eq!(r.trained_on, sample_size(10_000, 8, &p).unwrap());
        p.max_memory_bytes = 0;
        assert_eq!(run(&data, 8, &p).unwrap().trained_on, 2560, "{algorithm:?}: 256 per list without a limit");
    }
}

#[test]
fn assign_matches_brute_force() {
    let mut g = Lcg(8);
    let dim = 50;
    let data: Vec<f32> = (0..3000 * dim).map(|_| g.unit()).collect();
    let cents: Vec<f32> = (0..100 * dim).map(|_| g.unit()).collect();
    for ((id, d), x) in assign(&data, dim, &cents).into_iter().zip(data.chunks_exact(dim)) {
        let exact = |c: &[f32]| x.iter().zip(c).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
        let best = cents.chunks_exact(dim).map(exact).fold(f64::INFINITY, f64::min);
        let got = exact(&cents[id as usize * dim..][..dim]);
        assert!(got <= best + 1e-4, "{got} > {best}");
        assert!((d as f64 - got).abs() < 1e-4);
    }
}

// Unit tests of the helpers.
#[test]
fn split_copies_largest_and_halves_its_count() {
    let mut c = vec![9.0, 9.0, 1.0, 2.0, 3.0, 4.0];
    let mut counts = vec![0, 5, 3];
    split_empty_clusters(&mut c, 2, &mut counts);
    assert_eq!(counts, [2, 3, 3]);
    let e = 1.0 / 1024.0;
    assert_eq!(c[..4], [1.0 * (1.0 + e), 2.0 * (1.0 - e), 1.0 * (1.0 - e), 2.0 * (1.0 + e)]);
}

#[test]
fn pick_distinct_is_sorted_unique_and_in_range() {
    let mut rng = SplitMix64(7);
    for (n, m) in [(10, 10), (1000, 3), (50, 49)] {
        let v = pick_distinct(n, m, &mut rng);
        assert_eq!(v.len(), m);
        assert!(v.windows(2).all(|w| w[0] < w[1]) && v[m - 1] < n);
    }
}

#[test]
fn memory_limit_shrinks_sample() {
    for algorithm in [Algorithm::MiniBatch, Algorithm::Lloyd] {
        let mut p = KMeansParams::with(10, algorithm);
        p.batch_size = 256;
        p.max_memory_bytes = 100_000;
        let m = sample_size(100_000, 8, &p).unwrap();
        assert!((20..2560).contains(&m), "{algorithm:?}: {m}");
        p.max_memory_bytes = 1000;
        assert!(matches!(sample_size(100_000, 8, &p), Err(KMeansError::InvalidArgument(_))));
    }
}

// Mini-batch k-means (the default algorithm).

/// Overlapping clusters (unlike `blobs`, where any decent run finds the optimum): here the
/// algorithms' inertias differ, so quality comparisons mean something.
fn overlapping(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let (data, _) = blobs(40, n / 40, dim, 12.0, seed);
    data
}

#[test]
fn minibatch_recovers_gaussian_blobs() {
    let p = minibatch(12);
    assert_eq!(KMeansParams::new(12).algorithm, Algorithm::Lloyd, "Lloyd is the default");
    assert_eq!(p.max_iters, DEFAULT_PASSES);
    assert_recovers_blobs(&p);
}

#[test]
fn minibatch_deterministic_for_seed_and_thread_count() {
    let data = overlapping(4000, 8, 2);
    let mut p = minibatch(25);
    p.max_points_per_centroid = 100; // forces sampling
    p.batch_size = 300; // several steps per pass, one batch split over the threads
    let in_pool = |threads: usize, p: &KMeansParams| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| run(&data, 8, p).unwrap())
    };
    let a = in_pool(2, &p);
    assert_eq!(a.trained_on, 2500);
    for threads in [2, 1, 3] {
        let b = in_pool(threads, &p);
        assert_eq!((&a.centroids, a.inertia), (&b.centroids, b.inertia), "{threads} threads");
    }
    p.seed += 1;
    assert_ne!(a.centroids, in_pool(2, &p).centroids);
}

#[test]
fn minibatch_progress_once_per_pass_then_once_for_the_finishing_lloyd_iteration() {
    let data = overlapping(2000, 4, 3);
    let mut p = minibatch(10);
    p.max_iters = 5;
    p.tolerance = 0.0;
    p.batch_size = 256;
    let seen = Mutex::new(Vec::new());
    let r = train(&data, 4, &p, &|| false, &|pr: &Progress| {
        seen.lock().unwrap().push((pr.iteration, pr.max_iters, pr.inertia))
    })
    .unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(r.iterations, 6);
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), (1..=6).collect::<Vec<_>>());
    assert!(seen.iter().all(|s| s.1 == 6 && s.2 > 0.0));
    assert_eq!(seen[5].2, r.inertia, "the last report is the exact inertia of the finishing iteration");
}

/// The work is counted, not timed: a pass assigns every sample point once, like a Lloyd
/// iteration, so mini-batch's defaults (4 passes + 1 Lloyd iteration) do half the work of
/// Lloyd's (10 iterations), and a tenth of the 100 iterations Lloyd ran by default before.
#[test]
fn work_is_counted_in_sample_assignments() {
    let data = overlapping(8000, 8, 4);
    let mut p = minibatch(32);
    p.tolerance = 0.0;
    let r = run(&data, 8, &p).unwrap();
    assert_eq!(r.iterations, DEFAULT_PASSES + 1);
    assert_eq!(r.assigned, (DEFAULT_PASSES + 1) * r.trained_on);
    let mut l = lloyd(32);
    l.tolerance = 0.0;
    let full = run(&data, 8, &l).unwrap();
    assert_eq!(full.iterations, DEFAULT_MAX_ITERS);
    assert_eq!(full.assigned, DEFAULT_MAX_ITERS * full.trained_on);
    assert_eq!(r.assigned * 2, full.assigned);
    l.max_iters = 100;
    assert_eq!(run(&data, 8, &l).unwrap().assigned, 10 * full.assigned);
}

/// Quality against exact Lloyd on the same sample and seeds: within 2 % of 20 Lloyd
/// iterations (FAISS's default) at a quarter of the work.
#[test]
fn minibatch_inertia_within_two_percent_of_twenty_lloyd_iterations() {
    let data = overlapping(20_000, 16, 5);
    let mb = run(&data, 16, &minibatch(64)).unwrap();
    let mut l = lloyd(64);
    l.max_iters = 20;
    l.tolerance = 0.0;
    let exact = run(&data, 16, &l).unwrap();
    assert!(mb.inertia <= 1.02 * exact.inertia, "mini-batch {} vs Lloyd {}", mb.inertia, exact.inertia);
    assert!(mb.assigned * 4 <= exact.assigned);
}

/// Batches smaller than a kernel tile (1..8 points; these once panicked in the assignment) or
/// larger than the sample.
#[test]
fn batch_larger_than_sample_or_of_one_point() {
    let data = overlapping(800, 4, 6);
    for algorithm in [Algorithm::MiniBatch, Algorithm::Lloyd] {
        for batch_size in [1, 3, 799, 10_000] {
            let mut p = KMeansParams::with(8, algorithm);
            p.batch_size = batch_size;
            p.max_iters = 4;
            p.tolerance = 0.0;
            let r = run(&data, 4, &p).unwrap();
            assert!(r.centroids.iter().all(|v| v.is_finite()), "{algorithm:?} batch {batch_size}");
            let iterations = if algorithm == Algorithm::MiniBatch { 5 } else { 4 };
            assert_eq!(r.assigned, iterations * 800, "{algorithm:?} batch {batch_size}");
        }
    }
}

#[test]
fn minibatch_duplicate_points_leave_no_nan() {
    let dim = 6;
    let distinct: Vec<f32> = (0..5 * dim).map(|i| (i % 7) as f32 - 3.0).collect();
    let data: Vec<f32> = (0..400).flat_map(|i| distinct[(i % 5) * dim..][..dim].to_vec()).collect();
    let r = run(&data, dim, &minibatch(20)).unwrap();
    assert!(r.centroids.iter().all(|v| v.is_finite()));
    assert!(r.inertia < 1e-6, "{}", r.inertia);
}

/// As for Lloyd: mini-batch polls before every step and in every assignment sub-block.
#[test]
fn minibatch_cancel_from_another_thread_aborts_within_a_step() {
    let data = overlapping(20_000, 32, 7);
    let mut p = minibatch(256);
    p.max_iters = 100_000;
    p.tolerance = 0.0;
    assert_cancel_stops_within_a_block_per_worker(&data, 32, &p);
}

// Lloyd with bounds: the same assignments as without, for less work.

/// The bounds only skip centroids that cannot be nearer: in every iteration each point goes to
/// a centroid at its nearest distance (up to float rounding), with the exact squared distance
/// recorded, in several dimensions and group counts (one group is Hamerly's single bound),
/// from centroids that start far from the points (large first moves, empty clusters split)
/// and on overlapping clusters (reassignments late on).
#[test]
fn bounded_assignment_finds_the_nearest_centroid_every_iteration() {
    for (dim, k, n, seed) in [(16, 64, 4000, 1), (50, 256, 9000, 2), (3, 40, 2000, 3), (130, 100, 3000, 4)] {
        let x = overlapping(n, dim, seed);
        let mut g = Lcg(seed);
        let mut centroids: Vec<f32> = (0..k * dim).map(|_| g.unit() * 300.0).collect();
        // A window shorter than the run: bounds older than it take the summed moves.
        let mut assigner = bounded::Assigner::new(n, &centroids, dim, 4);
        let mut measured = 0;
        for it in 0..12 {
            measured += assigner.assign(&x, &centroids, 512, &|| false).unwrap();
            let largest = centroids.chunks_exact(dim).map(kernels::norm_sqr).fold(0f32, f32::max);
            for (p, (&id, &d)) in x.chunks_exact(dim).zip(assigner.ids.iter().zip(&assigner.dists)) {
                let dist = |c: usize| kernels::l2_sqr(p, &centroids[c * dim..(c + 1) * dim]);
                let nearest = (0..k).map(dist).fold(f32::INFINITY, f32::min);
                assert_eq!(d, dist(id as usize), "dim {dim}, iteration {it}: recorded distance");
                // Candidates are ranked by ‖c‖² − 2·x·c, as in the plain assignment: a tie within
                // that product's rounding may go either way.
                let rounding = (dim + 2) as f32 * f32::EPSILON * (kernels::norm_sqr(p) + largest);
                assert!(d <= nearest + rounding, "dim {dim}, iteration {it}: {d} > nearest {nearest} + {rounding}");
            }
            let mut counts = update_centroids(&x, dim, &assigner.ids, &mut centroids);
            split_empty_clusters(&mut centroids, dim, &mut counts);
        }
        assert!(measured < (12 * n * k) as u64, "dim {dim}: the bounds skipped nothing");
    }
}

/// On clustered data the bounds rule out most centroids after the first iterations: ten
/// iterations measure well under half of the point–centroid pairs plain Lloyd does, and the
/// run reports that work. Below `bounded::MIN_DIM` dimensions every pair is measured.
#[test]
fn bounded_lloyd_measures_a_fraction_of_the_pairs() {
    for dim in [bounded::MIN_DIM, bounded::MIN_DIM - 1] {
        let (x, _) = blobs(64, 100, dim, 2.0, 9);
        let mut p = lloyd(256);
        p.tolerance = 0.0;
        let r = run(&x, dim, &p).unwrap();
        let full = (r.iterations * r.trained_on * 256) as u64;
        assert_eq!(r.assigned, r.iterations * r.trained_on);
        if dim >= bounded::MIN_DIM {
            assert!(r.distances * 2 < full, "{} of {full} pairs measured", r.distances);
            assert!(r.distances >= (r.trained_on * 256) as u64, "the first iteration measures every pair");
        } else {
            assert_eq!(r.distances, full);
        }
    }
}

/// Bounded Lloyd on every row given also returns each row's nearest of the final centroids
/// (up to the scores' rounding tie); below `bounded::MIN_DIM`, on a subsample, or after
/// mini-batch steps it leaves the assignment to the caller.
#[test]
fn bounded_lloyd_returns_the_assignment_to_the_final_centroids() {
    let dim = bounded::MIN_DIM;
    let (x, _) = blobs(32, 80, dim, 2.0, 11);
    let r = run(&x, dim, &lloyd(32)).unwrap();
    let ids = r.assignment.expect("the whole sample, with bounds");
    assert_eq!(ids.len(), x.len() / dim);
    let largest = r.centroids.chunks_exact(dim).map(kernels::norm_sqr).fold(0f32, f32::max);
    for (p, &id) in x.chunks_exact(dim).zip(&ids) {
        let dist = |c: usize| kernels::l2_sqr(p, &r.centroids[c * dim..(c + 1) * dim]);
        let nearest = (0..32).map(dist).fold(f32::INFINITY, f32::min);
        let rounding = (dim + 2) as f32 * f32::EPSILON * (kernels::norm_sqr(p) + largest);
        assert!(dist(id as usize) <= nearest + rounding, "{} > nearest {nearest}", dist(id as usize));
    }
    let (low, _) = blobs(32, 80, bounded::MIN_DIM - 1, 2.0, 11);
    assert!(run(&low, bounded::MIN_DIM - 1, &lloyd(32)).unwrap().assignment.is_none(), "no bounds");
    let mut capped = lloyd(32);
    capped.max_points_per_centroid = 40;
    let r = run(&x, dim, &capped).unwrap();
    assert!(r.trained_on < x.len() / dim && r.assignment.is_none(), "a subsample's rows are not the caller's");
    assert!(run(&x, dim, &minibatch(32)).unwrap().assignment.is_none(), "one finishing iteration runs plain");
}

/// Bounded Lloyd is deterministic for a seed whatever the thread count (each point's
/// reassignment is independent of how the blocks fall on threads).
#[test]
fn bounded_lloyd_deterministic_for_seed_and_thread_count() {
    let (data, _) = blobs(20, 60, bounded::MIN_DIM, 3.0, 2);
    let mut p = lloyd(40);
    p.batch_size = 100;
    let in_pool = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| run(&data, bounded::MIN_DIM, &p).unwrap())
    };
    let (a, b) = (in_pool(1), in_pool(3));
    assert!(a.distances < (a.assigned * 40) as u64, "the bounds were not used");
    assert_eq!((a.centroids, a.inertia, a.distances), (b.centroids, b.inertia, b.distances));
}

/// A cancel reaches bounded Lloyd's workers at their next poll too.
#[test]
fn bounded_lloyd_cancel_aborts_within_a_block_per_worker() {
    let mut r = Lcg(4);
    let dim = bounded::MIN_DIM;
    let data: Vec<f32> = (0..10_000 * dim).map(|_| r.unit()).collect();
    let mut p = lloyd(256);
    p.max_iters = 100_000;
    p.tolerance = 0.0;
    p.batch_size = 64;
    assert_cancel_stops_within_a_block_per_worker(&data, dim, &p);
}

/// A seeding step gives the same distances on the calling thread and shared out over the
/// pool (the path depends on the subsample's size, so the seeds must not).
#[test]
fn seeding_steps_give_the_same_distances_on_one_thread_and_on_the_pool() {
    let mut r = Lcg(9);
    let dim = 37;
    // More than one parallel piece, and a last piece that is not full.
    let n = 2 * Seeding::ROWS + 123;
    let sub: Vec<f32> = (0..n * dim).map(|_| r.unit()).collect();
    let seeds: Vec<&[f32]> = (0..5).map(|i| &sub[i * 997 * dim..][..dim]).collect();
    let mut one = Seeding { sub: &sub, dim, parallel: false, scratch: vec![0.0; n] };
    let mut pool = Seeding { sub: &sub, dim, parallel: true, scratch: Vec::new() };
    let (mut a, mut b) = (vec![f32::NAN; n], vec![0.5; n]);
    one.distances(seeds[0], &mut a);
    pool.distances(seeds[0], &mut b);
    for c in &seeds[1..] {
        one.lower(c, &mut a);
        pool.lower(c, &mut b);
    }
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    // And each is the lowest distance to the seeds.
    for (i, &d) in a.iter().enumerate() {
        let row = &sub[i * dim..(i + 1) * dim];
        let want = seeds.iter().map(|c| kernels::l2_sqr(c, row)).fold(f32::INFINITY, f32::min);
        assert!((d - want).abs() <= 1e-5 * want.max(1.0), "point {i}: {d} vs {want}");
    }
    assert!(Seeding::new(&sub, dim).parallel == (n * dim >= Seeding::PARALLEL_FLOPS));
}
