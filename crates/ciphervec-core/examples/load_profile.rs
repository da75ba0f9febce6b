//! Reopen throughput of a disk index, for profiling `Index::load` without Node in the way.
//! Usage: cargo run --release -p ciphervec-core --example load_profile -- DIR [FBIN|-] [THREADS] [NLISTS]
//! Builds DIR once (glove-style .fbin, or 390k generated 50-d vectors; trained with NLISTS
//! lists if given), then loads it ROUNDS times (default 5), then measures the baseline: one
//! thread AES-256-GCM-opening blobs of the same sizes (the decryption floor of a load).
//! COMPACT=1 packs the index into segments (`Index::compact`) before the rounds.

// The same allocator as the Node addon, so the numbers match what `loadIndex` does there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Instant;

use ciphervec_core::DiskStorage;
use ciphervec_core::{Client, Metric, NewItem};

#[path = "common/fbin.rs"]
mod fbin;
use fbin::read_fbin;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let threads: usize = args.get(3).map_or(1, |t| t.parse().unwrap());
    let key = [7u8; 32];
    if std::env::var_os("FLOOR_ONLY").is_some() {
        let (s, bytes) = read_floor(&dir);
        println!("{s} {bytes}");
        return;
    }
    let fresh = !dir.join("ciphervec.redb").exists();
    if fresh {
        let (n, dim, data) = match args.get(2) {
            Some(p) if p != "-" => read_fbin(p),
            _ => (390_000, 50, (0..390_000 * 50).map(|i| (i as f32).sin()).collect()),
        };
        let t = Instant::now();
        let client = Client::new(Arc::new(DiskStorage::open(&dir).unwrap()), threads).unwrap();
        let index = client.create_index("load", &key, Some(dim), Metric::Euclidean).unwrap();
        let langs = ["en", "de", "fr"];
        for s in (0..n).step_by(50_000) {
            let batch = (s..n.min(s + 50_000))
                .map(|i| NewItem {
                    id: format!("doc-{i}"),
                    vector: data[i * dim..(i + 1) * dim].to_vec(),
                    metadata: Some(serde_json::json!({"lang": langs[i % 3], "year": 1990 + (i % 30)}).into()),
                    contents: None,
                })
                .collect();
            index.upsert(batch).unwrap();
        }
        println!(
            "ingest: {:.2} s ({:.0} items/s, durable batches of 50k)",
            t.elapsed().as_secs_f64(),
            n as f64 / t.elapsed().as_secs_f64()
        );
        if let Some(n_lists) = args.get(4) {
            let params = ciphervec_core::TrainParams {
                n_lists: Some(n_lists.parse().unwrap()),
                max_iters: Some(10),
                ..Default::default()
            };
            index.train(&params, &std::sync::atomic::AtomicBool::new(false), &|_| {}).unwrap();
        }
        client.close();
    }
    if std::env::var_os("COMPACT").is_some() {
        let client = Client::new(Arc::new(DiskStorage::open(&dir).unwrap()), threads).unwrap();
        let index = client.load_index("load", &key).unwrap();
        let t = Instant::now();
        index.compact().unwrap();
        println!("compact: {:.2} s", t.elapsed().as_secs_f64());
        client.close();
    }
    // Each in a fresh process, so that its destination is memory the process never touched.
    let floor = std::env::var_os("NO_BASELINE").is_none().then(|| median_floor(&dir));
    let rounds: usize = std::env::var("ROUNDS").map_or(5, |r| r.parse().unwrap());
    let stored: usize = entry_sizes(&dir).iter().sum();
    for round in 0..rounds {
        let client = Client::new(Arc::new(DiskStorage::open(&dir).unwrap()), threads).unwrap();
        if std::env::var_os("RSS").is_some() {
            println!("  before load: {}", rss());
        }
        let t = Instant::now();
        let index = client.load_index("load", &key).unwrap();
        let s = t.elapsed().as_secs_f64();
        println!(
            "round {round}: load {:.3} s, {} items, {:.0} items/s, {:.2} GB/s of {:.1} MB stored",
            s,
            index.count().unwrap(),
            index.count().unwrap() as f64 / s,
            stored as f64 / 1e9 / s,
            stored as f64 / 1e6
        );
        if std::env::var_os("RSS").is_some() {
            println!("  {}", rss());
        }
        client.close();
    }
    let Some((floor_s, bytes)) = floor else { return };
    let (s, _) = aes_baseline(&dir);
    println!(
        "baseline: AES-256-GCM open of the same {:.1} MB of stored entries on 1 thread: {:.3} s ({:.2} GB/s)",
        bytes as f64 / 1e6,
        s,
        bytes as f64 / 1e9 / s
    );
    println!(
        "floor: read those entries from a cached file, open them and copy the plaintext into fresh memory, \
         1 thread, median of 3 fresh processes: {:.3} s ({:.2} GB/s)",
        floor_s,
        bytes as f64 / 1e9 / floor_s
    );
}

/// [`read_floor`] in three child processes: the median seconds, and the bytes.
fn median_floor(dir: &std::path::Path) -> (f64, usize) {
    let mut runs: Vec<(f64, usize)> = (0..3)
        .map(|_| {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .arg(dir)
                .env("FLOOR_ONLY", "1")
                .output()
                .unwrap();
            let out = String::from_utf8(out.stdout).unwrap();
            let mut fields = out.split_whitespace();
            (fields.next().unwrap().parse().unwrap(), fields.next().unwrap().parse().unwrap())
        })
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs[1]
}

/// Sizes of the stored entries a load opens (records, segments, tombstones).
fn entry_sizes(dir: &std::path::Path) -> Vec<usize> {
    use ciphervec_core::Storage;
    let store = DiskStorage::open(dir).unwrap();
    let space = store.spaces().unwrap().pop().unwrap();
    let sizes = [b"r", b"p", b"d"]
        .iter()
        .flat_map(|prefix| store.scan_prefix(&space, *prefix).unwrap())
        .map(|(_, v)| v.len())
        .collect();
    store.close();
    sizes
}

/// The least any load of these entries does, on one thread: `pread` each from a file in the
/// page cache, AES-GCM-open it, and copy its plaintext into memory the process has not
/// touched before (a load's working set is new memory, which the kernel zeroes on first
/// touch). Returns the seconds and the entries' total bytes.
fn read_floor(dir: &std::path::Path) -> (f64, usize) {
    use ciphervec_core::random_key;
    use ciphervec_core::test_util::{Sealer, SEAL_OVERHEAD};
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let sizes = entry_sizes(dir);
    let sealer = Sealer::new(&random_key());
    let aad = [0u8; 50];
    let path = dir.join("floor.tmp");
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path);
    let mut file = std::io::BufWriter::new(file.unwrap());
    for &n in &sizes {
        file.write_all(&sealer.seal(&aad, &vec![1u8; n - SEAL_OVERHEAD])).unwrap();
    }
    let file = file.into_inner().unwrap();
    let total: usize = sizes.iter().sum();
    let t = Instant::now();
    let mut dest: Vec<u8> = Vec::with_capacity(total);
    let mut buf = vec![0u8; sizes.iter().copied().max().unwrap_or(0)];
    let mut offset = 0u64;
    for &n in &sizes {
        file.read_exact_at(&mut buf[..n], offset).unwrap();
        offset += n as u64;
        dest.extend_from_slice(sealer.open_in_place(&aad, &mut buf[..n]).unwrap());
    }
    let s = t.elapsed().as_secs_f64();
    assert_eq!(dest.len(), total - sizes.len() * SEAL_OVERHEAD);
    std::fs::remove_file(&path).unwrap();
    (s, total)
}

/// Seconds one thread needs to AES-GCM-open blobs of exactly the stored entries' sizes
/// (records, segments, tombstones), and their total bytes: the decryption floor of `load`,
/// measured in the same run.
fn aes_baseline(dir: &std::path::Path) -> (f64, usize) {
    use ciphervec_core::random_key;
    use ciphervec_core::test_util::{Sealer, SEAL_OVERHEAD};
    let sizes = entry_sizes(dir);
    let sealer = Sealer::new(&random_key());
    let aad = [0u8; 50];
    let mut blobs: Vec<Vec<u8>> = sizes.iter().map(|&n| sealer.seal(&aad, &vec![0u8; n - SEAL_OVERHEAD])).collect();
    let t = Instant::now();
    for b in &mut blobs {
        sealer.open_in_place(&aad, b).unwrap();
    }
    (t.elapsed().as_secs_f64(), sizes.iter().sum())
}

/// Resident and peak resident memory of this process (Linux), for `RSS=1`.
fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).map_or("?", |l| l[name.len()..].trim());
    format!("RSS {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}
