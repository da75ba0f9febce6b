//! Where a `train()` goes, without Node: seconds to each k-means iteration (from its progress
//! report), then the rest of the run (assigning every vector, the code book, re-sealing every
//! record, building the lists), for profiling (`perf record`) and A/B runs of training changes.
//! Usage: cargo run --release -p ciphervec-core --example train_profile -- FBIN [TYPE] [NLISTS]
//! [ROUNDS]
//! FBIN is a glove-style .fbin (rows, cols, f32 row-major); TYPE one of `flat`, `sq8`, `fp16`
//! (default `flat`); NLISTS default 1024; every round trains a fresh index on a memory store.
//! `THREADS=N` gives the client N worker threads (default 2); `ITERS=N` sets `maxIters`; `SEED=N`
//! its `seed`.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ciphervec_core::{Client, IndexSpec, IndexType, MemoryStorage, Metric, TrainParams};

#[path = "common/fbin.rs"]
mod fbin;
use fbin::read_fbin;
#[path = "common/items.rs"]
mod items;
use items::vector_items;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let base = args.first().expect("usage: train_profile FBIN [TYPE] [NLISTS] [ROUNDS]");
    let index_type = match args.get(1).map_or("flat", String::as_str) {
        "flat" => IndexType::IvfFlat,
        "sq8" => IndexType::IvfSq8,
        "fp16" => IndexType::IvfFp16,
        t => panic!("unknown type {t}"),
    };
    let n_lists: usize = args.get(2).map_or(1024, |s| s.parse().unwrap());
    let rounds: usize = args.get(3).map_or(1, |s| s.parse().unwrap());
    let threads = std::env::var("THREADS").map_or(2, |t| t.parse().unwrap());
    let max_iters = std::env::var("ITERS").ok().map(|t| t.parse().unwrap());
    let (_, dim, data) = read_fbin(base);
    let client = Client::new(Arc::new(MemoryStorage::new()), threads).unwrap();
    for round in 0..rounds {
        let spec = IndexSpec { dimension: Some(dim), metric: Metric::Euclidean, index_type, ..IndexSpec::default() };
        let index = client.create_index_with(&format!("round{round}"), &[9u8; 32], &spec).unwrap();
        index.upsert(vector_items(&data, dim)).unwrap();
        let mut params = TrainParams { n_lists: Some(n_lists), max_iters, ..TrainParams::default() };
        if let Ok(seed) = std::env::var("SEED") {
            params.seed = seed.parse().unwrap();
        }
        let marks = Mutex::new(Vec::new());
        let t0 = Instant::now();
        let report = index
            .train(&params, &AtomicBool::new(false), &|p| {
                marks.lock().unwrap().push((p.iteration, t0.elapsed().as_secs_f64(), p.inertia))
            })
            .unwrap();
        let total = t0.elapsed().as_secs_f64();
        let marks = marks.into_inner().unwrap();
        let mut prev = 0.0;
        for (it, at, inertia) in &marks {
            println!("round {round} iteration {it}: {:.3} s (at {at:.3}), inertia {inertia:.2}", at - prev);
            prev = *at;
        }
        println!(
            "round {round} {index_type:?}: k-means {prev:.3} s, after it {:.3} s, total {total:.3} s, \
             inertia {:.2}, {:.2} full assignments of distances, {} threads",
            total - prev,
            report.inertia,
            report.distances as f64 / (report.trained_on * report.n_lists) as f64,
            threads
        );
        index.destroy().unwrap();
    }
}
