//! Where the memory of a loaded (and of a freshly trained) disk index goes, without Node.
//! Usage: cargo run --release -p ciphervec-core --example memory_profile -- DIR [FBIN|gen384] [THREADS]
//! Builds DIR once (a glove-style .fbin, or `gen384`: 107,659 generated 384-d unit vectors,
//! the size of the sentence-embedding set), each item with two metadata fields, packed
//! by `compact()`. Then, in fresh child processes: `train` loads the untrained store and trains
//! it (1024 lists, 10 Lloyd iterations), `load` loads the trained store. Each reports resident
//! memory (VmRSS) and its peak (VmHWM, reset before the step) over the process before the step,
//! the live heap (a counting allocator around mimalloc, the addon's allocator) and its peak, and
//! the index's own accounting (`Index::memory`), structure by structure. `TYPE=ivfflat|ivfsq8|
//! ivffp16` (default: the library's) and `RESIDENT=codes` choose the index built (use a new
//! DIR for each). `SMAPS=1` adds the largest mappings (size, resident, huge pages) and
//! mimalloc's statistics after each step, to see which memory the allocator holds.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ciphervec_core::{Client, DiskStorage, IndexSpec, IndexType, Metric, NewItem, Resident, TrainParams};

#[path = "common/fbin.rs"]
mod fbin;
use fbin::read_fbin;

/// mimalloc, counting live bytes (requested sizes) and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grow(new_size);
        }
        p
    }
}

fn grow(n: usize) {
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MB: f64 = 1e6;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let threads: usize = args.get(3).map_or(2, |t| t.parse().unwrap());
    match std::env::var("STEP").as_deref() {
        Ok("train") => return step(&dir, threads, true),
        Ok("load") => return step(&dir, threads, false),
        _ => {}
    }
    let untrained = dir.join("untrained");
    if !untrained.join(DiskStorage::FILE_NAME).exists() {
        build(&untrained, args.get(2).map_or("gen384", String::as_str), threads);
    }
    let trained = dir.join("trained");
    let _ = std::fs::remove_dir_all(&trained);
    copy_dir(&untrained, &trained);
    let rounds: usize = std::env::var("ROUNDS").map_or(1, |r| r.parse().unwrap());
    for _ in 0..rounds {
        // Train a copy each round, so every round trains the same untrained store.
        let _ = std::fs::remove_dir_all(&trained);
        copy_dir(&untrained, &trained);
        child(&trained, threads, "train");
    }
    for _ in 0..rounds {
        child(&trained, threads, "load");
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join(DiskStorage::FILE_NAME), to.join(DiskStorage::FILE_NAME)).unwrap();
}

fn child(dir: &std::path::Path, threads: usize, step: &str) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .arg(dir)
        .arg("-")
        .arg(threads.to_string())
        .env("STEP", step)
        .status()
        .unwrap();
    assert!(status.success());
}

fn build(dir: &std::path::Path, data: &str, threads: usize) {
    let (n, dim, vectors) = if data == "gen384" { gen384() } else { read_fbin(data) };
    let t = Instant::now();
    let client = Client::new(Arc::new(DiskStorage::open(dir).unwrap()), threads).unwrap();
    let index_type = match std::env::var("TYPE").as_deref() {
        Ok("ivfflat") => IndexType::IvfFlat,
        Ok("ivffp16") => IndexType::IvfFp16,
        Ok("ivfsq8") | Err(_) => IndexType::IvfSq8,
        Ok(other) => panic!("unknown TYPE {other}"),
    };
    let resident =
        if std::env::var("RESIDENT").as_deref() == Ok("codes") { Resident::Codes } else { Resident::Vectors };
    let spec =
        IndexSpec { dimension: Some(dim), metric: Metric::Euclidean, index_type, resident, ..IndexSpec::default() };
    let index = client.create_index_with("mem", &[7u8; 32], &spec).unwrap();
    println!("index type {index_type:?}, resident {resident:?}");
    let langs = ["en", "de", "fr"];
    for s in (0..n).step_by(50_000) {
        let batch = (s..n.min(s + 50_000))
            .map(|i| NewItem {
                id: format!("doc-{i}"),
                vector: vectors[i * dim..(i + 1) * dim].to_vec(),
                metadata: Some(serde_json::json!({"lang": langs[i % 3], "year": 1990 + (i % 30)}).into()),
                contents: None,
            })
            .collect();
        index.upsert(batch).unwrap();
    }
    while index.is_compacting() || index.is_training() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    index.compact().unwrap();
    println!("built {n} x {dim} ({:.1} MB of f32) in {:.1} s", (n * dim * 4) as f64 / MB, t.elapsed().as_secs_f64());
    client.close();
}

/// 107,659 × 384 unit vectors around 1,000 random centres (a seeded xorshift).
fn gen384() -> (usize, usize, Vec<f32>) {
    let (n, dim, centres) = (107_659, 384, 1000);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let c: Vec<f32> = (0..centres * dim).map(|_| next()).collect();
    let mut v = Vec::with_capacity(n * dim);
    for i in 0..n {
        let base = (i * 7919) % centres * dim;
        let row: Vec<f32> = (0..dim).map(|j| c[base + j] + 0.3 * next()).collect();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.extend(row.iter().map(|x| x / norm));
    }
    (n, dim, v)
}

/// The addon's allocator setting beyond its build features (`src/memory.rs`): freed memory is
/// purged after 10 ms instead of mimalloc v3's built-in second, unless `MIMALLOC_PURGE_DELAY`
/// says otherwise.
fn as_in_addon() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: option 15 is mi_option_purge_delay (see src/memory.rs).
        unsafe { libmimalloc_sys::mi_option_set(15, 10) }
    }
}

fn step(dir: &std::path::Path, threads: usize, train: bool) {
    as_in_addon();
    let client = Client::new(Arc::new(DiskStorage::open(dir).unwrap()), threads).unwrap();
    let index = if train {
        let index = client.load_index("mem", &[7u8; 32]).unwrap();
        give_back(&client);
        index
    } else {
        give_back(&client);
        let before = Sample::now();
        let t = Instant::now();
        let index = client.load_index("mem", &[7u8; 32]).unwrap();
        let s = t.elapsed().as_secs_f64();
        give_back(&client);
        report(&format!("load ({s:.2} s)"), &index, &before);
        if let Ok(n) = std::env::var("QUERIES") {
            queries(&index, n.parse().unwrap());
        }
        index
    };
    if train {
        let before = Sample::now();
        let t = Instant::now();
        let params = TrainParams { n_lists: Some(1024), max_iters: Some(10), seed: 1, ..Default::default() };
        index.train(&params, &std::sync::atomic::AtomicBool::new(false), &|_| {}).unwrap();
        let s = t.elapsed().as_secs_f64();
        give_back(&client);
        report(&format!("train ({s:.1} s)"), &index, &before);
    }
    client.close();
}

/// Single queries (topK 10, default nProbes) from this thread, then the same as one batch on
/// the pool: queries per second each way, for A/B runs of allocator settings.
fn queries(index: &ciphervec_core::Index, n: usize) {
    let dim = index.dimension().unwrap();
    let mut state = 12345u64;
    let qs: Vec<Vec<f32>> = (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        })
        .collect();
    let search =
        ciphervec_core::Search { k: 10, n_probes: None, rerank: None, filter: None, include: Default::default() };
    let t = Instant::now();
    for q in &qs {
        std::hint::black_box(index.query(q, &search).unwrap());
    }
    let single = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    std::hint::black_box(index.query_batch(&qs, &search).unwrap());
    let batch = n as f64 / t.elapsed().as_secs_f64();
    println!("  queries: {single:.0} QPS single, {batch:.0} QPS batch");
}

/// The process's memory at one moment; resets the peaks, so the next sample's peaks are those
/// since this one.
struct Sample {
    rss: f64,
    live: f64,
}

impl Sample {
    fn now() -> Sample {
        // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux).
        std::fs::write("/proc/self/clear_refs", "5").unwrap();
        let live = LIVE.load(Ordering::Relaxed);
        PEAK.store(live, Ordering::Relaxed);
        Sample { rss: status("VmRSS:"), live: live as f64 }
    }
}

fn status(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status.lines().find(|l| l.starts_with(field)).unwrap()[field.len()..]
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap();
    kb * 1024.0
}

fn report(step: &str, index: &ciphervec_core::Index, before: &Sample) {
    let usage = index.memory().unwrap();
    let raw = (index.len_hint() * index.dimension().unwrap() * 4) as f64;
    let ratio = |b: f64| format!("{:.1} MB ({:.3}×)", b / MB, b / raw);
    println!("{step}: {} items, raw f32 vectors {:.1} MB", index.len_hint(), raw / MB);
    println!("  resident growth  {}", ratio(status("VmRSS:") - before.rss));
    println!("  resident peak    {}", ratio(status("VmHWM:") - before.rss));
    println!("  live heap growth {}", ratio(LIVE.load(Ordering::Relaxed) as f64 - before.live));
    println!("  live heap peak   {}", ratio(PEAK.load(Ordering::Relaxed) as f64 - before.live));
    println!("  accounted        {}", ratio(usage.total() as f64));
    for (name, bytes) in usage.parts() {
        println!(
            "    {name:<22} {:>8.2} MB  {:>6.1} B/item",
            bytes as f64 / MB,
            bytes as f64 / index.len_hint() as f64
        );
    }
    // Transparent huge pages back part of the heap: slack inside them is resident too.
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    if let Some(line) = rollup.lines().find(|l| l.starts_with("AnonHugePages:")) {
        println!("  {}", line.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    if std::env::var("SMAPS").is_ok() {
        smaps();
    }
}

/// The twelve mappings with the most resident memory, then mimalloc's statistics (stderr).
fn smaps() {
    let text = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut rows: Vec<(u64, u64, u64, String)> = Vec::new();
    let mut cur: Option<(u64, u64, u64, String)> = None;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let first = it.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            if let Some(c) = cur.take() {
                rows.push(c);
            }
            let (a, b) = first.split_once('-').unwrap();
            let size = u64::from_str_radix(b, 16).unwrap() - u64::from_str_radix(a, 16).unwrap();
            cur = Some((size / 1024, 0, 0, line.to_string()));
        } else if first == "Rss:" {
            cur.as_mut().unwrap().1 = it.next().unwrap().parse().unwrap();
        } else if first == "AnonHugePages:" {
            cur.as_mut().unwrap().2 = it.next().unwrap().parse().unwrap();
        }
    }
    if let Some(c) = cur.take() {
        rows.push(c);
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    for r in rows.iter().take(12) {
        println!("    size {:>8} kB rss {:>8} kB thp {:>8} kB  {}", r.0, r.1, r.2, r.3);
    }
    unsafe { libmimalloc_sys::mi_stats_print_out(None, std::ptr::null_mut()) };
}

/// Hands freed memory back to the OS, as the addon does after a load. (Doing it on every
/// worker thread as well changed nothing: 298 vs 301 MB after the 384-d load.)
fn give_back(_client: &Client) {
    // SAFETY: mi_collect is thread-safe and only returns free memory.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
