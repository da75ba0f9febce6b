//! Query throughput of each index type on one thread (or `THREADS`), without Node: the scan kernels, the
//! exact re-rank and top-k, for profiling (`perf record`) and A/B runs of kernel changes.
//! Usage: cargo run --release -p ciphervec-core --example scan_profile -- FBIN [QUERIES_FBIN]
//! [TYPES] [NPROBES] [RERANK] [ROUNDS]
//! FBIN is a glove-style .fbin (rows, cols, f32 row-major); the queries default to its
//! `.query.fbin` sibling. TYPES is a comma list of `flat`, `sq8`, `fp16` (default all), NPROBES
//! the lists probed (default 48 of 1024), RERANK the factor (default: the type's). Every round
//! runs every type once, so the types see the same load; the best round is reported.
//! `BATCH=1` in the environment sends the queries as one `query_batch` instead of one by one;
//! `THREADS=N` gives the client N worker threads (default 1; a batch runs on them);
//! `RESIDENT=codes` keeps only the codes in memory; `GT=IBIN` (ground truth, row indices nearest
//! first, e.g. `glove50.gt.ibin`) also reports each type's recall@10.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use ciphervec_core::{Client, Include, IndexSpec, IndexType, MemoryStorage, Metric, Resident, Search, TrainParams};

#[path = "common/fbin.rs"]
mod fbin;
use fbin::read_fbin;
#[path = "common/items.rs"]
mod items;
use items::vector_items;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let base = args.first().expect("usage: scan_profile FBIN [QUERIES] [TYPES] [NPROBES] [RERANK] [ROUNDS]");
    let queries =
        args.get(1).filter(|s| !s.is_empty()).cloned().unwrap_or_else(|| base.replace(".base.fbin", ".query.fbin"));
    let types: Vec<IndexType> = args
        .get(2)
        .map_or("flat,sq8,fp16", String::as_str)
        .split(',')
        .map(|t| match t {
            "flat" => IndexType::IvfFlat,
            "sq8" => IndexType::IvfSq8,
            "fp16" => IndexType::IvfFp16,
            _ => panic!("unknown type {t}"),
        })
        .collect();
    let n_probes: usize = args.get(3).map_or(48, |s| s.parse().unwrap());
    let rerank: Option<usize> = args.get(4).and_then(|s| s.parse().ok());
    let rounds: usize = args.get(5).map_or(3, |s| s.parse().unwrap());
    let (_, dim, data) = read_fbin(base);
    let (nq, _, qdata) = read_fbin(&queries);
    let nq = nq.min(5000);

    let threads = std::env::var("THREADS").map_or(1, |t| t.parse().unwrap());
    let resident = match std::env::var("RESIDENT").as_deref() {
        Ok("codes") => Resident::Codes,
        _ => Resident::Vectors,
    };
    let truth: Option<Vec<Vec<String>>> = std::env::var("GT").ok().map(|path| {
        let (_, cols, rows) = read_fbin(&path);
        // The ids are the row indices (written as int32, read here as their bit patterns).
        (0..nq).map(|q| rows[q * cols..q * cols + 10].iter().map(|x| x.to_bits().to_string()).collect()).collect()
    });
    let client = Client::new(Arc::new(MemoryStorage::new()), threads).unwrap();
    let key = [9u8; 32];
    let indexes: Vec<_> = types
        .iter()
        .map(|&index_type| {
            let spec = IndexSpec {
                dimension: Some(dim),
                metric: Metric::Euclidean,
                index_type,
                resident,
                ..IndexSpec::default()
            };
            let index = client.create_index_with(&format!("{index_type:?}"), &key, &spec).unwrap();
            index.upsert(vector_items(&data, dim)).unwrap();
            let params = TrainParams { n_lists: Some(1024), ..TrainParams::default() };
            index.train(&params, &AtomicBool::new(false), &|_| {}).unwrap();
            (index_type, index)
        })
        .collect();
    let search = Search { k: 10, n_probes: Some(n_probes), rerank, filter: None, include: Include::default() };
    let batch: Vec<Vec<f32>> = match std::env::var("BATCH").as_deref() {
        Ok("1") => (0..nq).map(|q| qdata[q * dim..(q + 1) * dim].to_vec()).collect(),
        _ => Vec::new(),
    };
    if let Some(truth) = &truth {
        for (index_type, index) in &indexes {
            let found: usize = (0..nq)
                .map(|q| {
                    let hits = index.query(&qdata[q * dim..(q + 1) * dim], &search).unwrap();
                    hits.iter().filter(|h| truth[q].contains(&h.id)).count()
                })
                .sum();
            println!("recall@10 {index_type:?}: {:.4}", found as f64 / (10 * nq) as f64);
        }
    }
    let mut best = vec![0f64; indexes.len()];
    for round in 0..rounds {
        for (i, (index_type, index)) in indexes.iter().enumerate() {
            let t0 = Instant::now();
            if batch.is_empty() {
                for q in 0..nq {
                    std::hint::black_box(index.query(&qdata[q * dim..(q + 1) * dim], &search).unwrap());
                }
            } else {
                std::hint::black_box(index.query_batch(&batch, &search).unwrap());
            }
            let qps = nq as f64 / t0.elapsed().as_secs_f64();
            best[i] = best[i].max(qps);
            println!("round {round} {index_type:?}: {qps:.0} QPS");
        }
    }
    for ((index_type, _), qps) in indexes.iter().zip(&best) {
        let mode = if batch.is_empty() { "one by one" } else { "one batch" };
        println!("best {index_type:?}: {qps:.0} QPS ({threads} threads, nProbes {n_probes}, {nq} queries {mode})");
    }
}
