//! Rebuild time of the BM25 index at load, for profiling without Node in the way.
//! Usage: cargo run --release -p ciphervec-core --example text_load_profile -- DICT [THREADS]
//! DICT is WordNet's `dict/` folder (`npm run bench:text` fetches it into `bench/data/`); each
//! gloss of `data.{noun,verb,adj,adv}` is an item with the gloss as contents and its first
//! lemma as metadata `title`. Loads a memory store ROUNDS times (default 5) with the text
//! fields `contents` and `title`, and once as often without, alternating.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Instant;

use ciphervec_core::{Client, Contents, IndexSpec, MemoryStorage, Meta, Metric, NewItem, TextSpec};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dict = std::path::PathBuf::from(&args[1]);
    let threads: usize = args.get(2).map_or(2, |t| t.parse().unwrap());
    let rounds: usize = std::env::var("ROUNDS").ok().map_or(5, |r| r.parse().unwrap());
    let mut items = Vec::new();
    for pos in ["noun", "verb", "adj", "adv"] {
        let text = std::fs::read_to_string(dict.join(format!("data.{pos}"))).unwrap();
        for line in text.lines().filter(|l| !l.starts_with("  ")) {
            let Some((head, gloss)) = line.split_once(" | ") else { continue };
            let mut words = head.split(' ');
            let offset = words.next().unwrap();
            let title = words.nth(3).unwrap_or("").replace('_', " ");
            let i = items.len();
            items.push(NewItem {
                id: format!("{pos}{offset}"),
                vector: vec![(i % 97) as f32, (i % 89) as f32, 1.0, 0.5],
                metadata: Some(Meta::from(&serde_json::json!({ "title": title }))),
                contents: Some(Contents::Text(gloss.trim().to_string())),
            });
        }
    }
    let n = items.len();
    let store = Arc::new(MemoryStorage::new());
    let client = Client::new(store.clone(), threads).unwrap();
    let key = [7u8; 32];
    let text = TextSpec::new(vec!["contents".into(), "title".into()]);
    for (name, text) in [("text", Some(text)), ("plain", None)] {
        let spec = IndexSpec { dimension: Some(4), metric: Metric::Euclidean, text, ..IndexSpec::default() };
        let index = client.create_index_with(name, &key, &spec).unwrap();
        for chunk in items.chunks(10_000) {
            index.upsert(chunk.to_vec()).unwrap();
        }
    }
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (t, name) in times.iter_mut().zip(["text", "plain"]) {
            let client = Client::new(store.clone(), threads).unwrap();
            let t0 = Instant::now();
            let index = client.load_index(name, &key).unwrap();
            t.push(t0.elapsed().as_secs_f64() * 1e3);
            assert_eq!(index.count().unwrap(), n);
        }
    }
    for (t, name) in times.iter_mut().zip(["with text fields", "without"]) {
        t.sort_by(f64::total_cmp);
        println!("{n} items, {threads} threads, load {name}: median {:.0} ms (min {:.0})", t[t.len() / 2], t[0]);
    }
}
