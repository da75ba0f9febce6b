//! Full-text (BM25) and hybrid search: scores equal a straightforward reference to 1e-9,
//! writes / deletes / training / a reload keep the text index exact, hybrid fusion follows
//! its formula, bad input is a typed error, and the store sees no term.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use ciphervec_core::test_util::text_terms;
use ciphervec_core::{
    Client, Contents, Filter, Fusion, Include, Index, IndexSpec, MemoryStorage, Meta, Metric, NewItem, Search,
    TextQuery, TextSpec, TrainParams,
};
use common::Rng;
use serde_json::json;

const WORDS: [&str; 24] = [
    "apple", "running", "runs", "ocean", "blue", "green", "tree", "forest", "river", "stone", "quick", "brown",
    "foxes", "jumping", "lazy", "dogs", "cat", "sat", "mat", "the", "and", "data", "vector", "search",
];

/// A document of the corpus: its contents and title.
#[derive(Clone)]
struct Doc {
    id: String,
    contents: Option<String>,
    title: Option<String>,
    tenant: u64,
}

fn sentence(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| WORDS[rng.below(WORDS.len())]).collect::<Vec<_>>().join(" ")
}

fn corpus(rng: &mut Rng, n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("d{i}"),
            contents: (i % 7 != 3).then(|| {
                let n = 3 + rng.below(20);
                sentence(rng, n)
            }),
            title: (i % 5 != 1).then(|| {
                let n = 1 + rng.below(4);
                sentence(rng, n)
            }),
            tenant: (i % 3) as u64,
        })
        .collect()
}

fn item(d: &Doc, rng: &mut Rng) -> NewItem {
    let mut meta = json!({ "tenant": d.tenant });
    if let Some(t) = &d.title {
        meta["title"] = json!(t);
    } else {
        meta["title"] = json!(42); // a non-string: skipped for this item
    }
    NewItem {
        id: d.id.clone(),
        vector: rng.vector(4),
        metadata: Some(Meta::from(&meta)),
        contents: d.contents.clone().map(Contents::Text),
    }
}

/// BM25 the straightforward way, per field, summed (see `meta::text::index`).
fn reference(docs: &[Doc], query: &str, fields: &[&str], require_all: bool, k1: f64, b: f64) -> HashMap<String, f64> {
    let q = text_terms(query);
    let mut scores: HashMap<String, f64> = HashMap::new();
    let text_of = |d: &Doc, f: &str| if f == "contents" { d.contents.clone() } else { d.title.clone() };
    for f in fields {
        let tokenized: Vec<(String, Vec<String>)> =
            docs.iter().filter_map(|d| text_of(d, f).map(|t| (d.id.clone(), text_terms(&t)))).collect();
        let n = tokenized.len() as f64;
        if n == 0.0 {
            continue;
        }
        let avg = tokenized.iter().map(|(_, t)| t.len()).sum::<usize>() as f64 / n;
        for term in &q {
            let df = tokenized.iter().filter(|(_, t)| t.contains(term)).count() as f64;
            if df == 0.0 {
                continue;
            }
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for (id, t) in &tokenized {
                let tf = t.iter().filter(|x| *x == term).count() as f64;
                if tf > 0.0 {
                    let len = t.len() as f64;
                    *scores.entry(id.clone()).or_default() +=
                        idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * len / avg));
                }
            }
        }
    }
    if require_all {
        let mut distinct = q.clone();
        distinct.sort();
        distinct.dedup();
        scores.retain(|id, _| {
            let d = docs.iter().find(|d| &d.id == id).unwrap();
            distinct
                .iter()
                .all(|term| fields.iter().any(|f| text_of(d, f).is_some_and(|t| text_terms(&t).contains(term))))
        });
    }
    scores
}

fn text_index(spec: TextSpec) -> (Arc<MemoryStorage>, Client, [u8; 32], Arc<Index>) {
    let (store, client, key) = common::client();
    let spec = IndexSpec { dimension: Some(4), metric: Metric::Euclidean, text: Some(spec), ..IndexSpec::default() };
    let index = client.create_index_with("t", &key, &spec).unwrap();
    (store, client, key, index)
}

fn check_against_reference(index: &Index, docs: &[Doc], k1: f64, b: f64) {
    let queries = [
        "apple",
        "running foxes",
        "the blue ocean",
        "runs run running",
        "data vector search stone",
        "zebra",
        "cat mat",
    ];
    let field_sets: [&[&str]; 3] = [&["contents", "title"], &["contents"], &["title"]];
    for query in queries {
        for fields in field_sets {
            for require_all in [false, true] {
                let owned: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
                let q = TextQuery { text: query, fields: Some(&owned), require_all };
                let got = index.text_search(&q, None, 10_000).unwrap();
                let want = reference(docs, query, fields, require_all, k1, b);
                assert_eq!(got.len(), want.len(), "{query:?} {fields:?} {require_all}: matched items");
                for hit in &got {
                    let w = want[&hit.id];
                    assert!(
                        (hit.score - w).abs() < 1e-9,
                        "{query:?} {fields:?}: {} scored {} not {w}",
                        hit.id,
                        hit.score
                    );
                }
                assert!(got
                    .windows(2)
                    .all(|p| p[0].score > p[1].score || (p[0].score == p[1].score && p[0].id < p[1].id)));
            }
        }
    }
}

#[test]
fn bm25_scores_equal_the_reference_through_writes_deletes_training_and_a_reload() {
    let mut rng = Rng(11);
    let mut docs = corpus(&mut rng, 300);
    let spec = TextSpec { fields: vec!["contents".into(), "title".into()], k1: 1.2, b: 0.75 };
    let (store, _, key, index) = text_index(spec);
    index.upsert(docs.iter().map(|d| item(d, &mut rng)).collect()).unwrap();
    check_against_reference(&index, &docs, f64::from(1.2f32), 0.75);

    // Overwrites and deletes (the working set moves its last item into each hole).
    for d in docs.iter_mut().filter(|d| d.id.ends_with('7')) {
        d.contents = Some(sentence(&mut rng, 5));
        d.title = None;
    }
    index.upsert(docs.iter().filter(|d| d.id.ends_with('7')).map(|d| item(d, &mut rng)).collect()).unwrap();
    let gone: Vec<String> =
        docs.iter().filter(|d| d.id.ends_with('2') || d.id.ends_with('5')).map(|d| d.id.clone()).collect();
    assert_eq!(index.delete(&gone).unwrap(), gone.len());
    docs.retain(|d| !gone.contains(&d.id));
    check_against_reference(&index, &docs, f64::from(1.2f32), 0.75);

    let params = TrainParams { n_lists: Some(4), ..TrainParams::default() };
    index.train(&params, &std::sync::atomic::AtomicBool::new(false), &|_| {}).unwrap();
    check_against_reference(&index, &docs, f64::from(1.2f32), 0.75);
    let reloaded = Client::new(store, 2).unwrap().load_index("t", &key).unwrap();
    check_against_reference(&reloaded, &docs, f64::from(1.2f32), 0.75);
    assert!(reloaded.memory().unwrap().text_index > 0);
}

#[test]
fn k1_and_b_are_kept_and_filters_pre_filter() {
    let mut rng = Rng(5);
    let docs = corpus(&mut rng, 120);
    let (store, _, key, index) = text_index(TextSpec { fields: vec!["contents".into()], k1: 2.0, b: 0.3 });
    index.upsert(docs.iter().map(|d| item(d, &mut rng)).collect()).unwrap();
    let reloaded = Client::new(store, 2).unwrap().load_index("t", &key).unwrap();
    let fields = ["contents".to_string()];
    let q = TextQuery { text: "ocean river", fields: Some(&fields), require_all: false };
    let want = reference(&docs, "ocean river", &["contents"], false, 2.0, f64::from(0.3f32));
    let got = reloaded.text_search(&q, None, 10_000).unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got.iter().all(|h| (h.score - want[&h.id]).abs() < 1e-9), "k1 and b survive the reload");
    let tenant = Filter::parse(&json!({ "tenant": 1 })).unwrap();
    let filtered = reloaded.text_search(&q, Some(&tenant), 10_000).unwrap();
    let expected: Vec<_> = got.iter().filter(|h| docs.iter().any(|d| d.id == h.id && d.tenant == 1)).cloned().collect();
    assert_eq!(filtered, expected, "the filter keeps exactly the matching items, in the same order");
    let top3 = reloaded.text_search(&q, None, 3).unwrap();
    assert_eq!(top3, got[..3.min(got.len())].to_vec());
}

#[test]
fn hybrid_fusion_follows_weighted_reciprocal_rank_fusion() {
    let mut rng = Rng(3);
    let docs = corpus(&mut rng, 200);
    let (_, _, _, index) = text_index(TextSpec::new(vec!["contents".into(), "title".into()]));
    index.upsert(docs.iter().map(|d| item(d, &mut rng)).collect()).unwrap();
    let vector = rng.vector(4);
    let q = TextQuery { text: "quick brown foxes", fields: None, require_all: false };
    let k = 10;
    let include = Include { distance: true, ..Include::default() };
    let search = Search { k, n_probes: None, rerank: None, filter: None, include };
    let vector_leg = index.query(&vector, &Search { k: 3 * k, ..search }).unwrap();
    let text_leg = index.text_search(&q, None, 3 * k).unwrap();
    for alpha in [0.0, 0.3, 0.5, 1.0] {
        let fusion = Fusion { alpha, rrf_k: 60.0 };
        let got = index.hybrid_query(&vector, &q, fusion, &search).unwrap();
        let mut want: HashMap<String, f64> = HashMap::new();
        for (r, v) in vector_leg.iter().enumerate() {
            *want.entry(v.id.clone()).or_default() += alpha / (60.0 + (r + 1) as f64);
        }
        for (r, t) in text_leg.iter().enumerate() {
            *want.entry(t.id.clone()).or_default() += (1.0 - alpha) / (60.0 + (r + 1) as f64);
        }
        let mut want: Vec<(String, f64)> = want.into_iter().collect();
        want.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then_with(|| a.0.cmp(&b.0)));
        want.truncate(k);
        let got_pairs: Vec<(String, f64)> = got.iter().map(|(v, s)| (v.id.clone(), *s)).collect();
        assert_eq!(got_pairs.len(), want.len(), "alpha {alpha}");
        for ((gi, gs), (wi, ws)) in got_pairs.iter().zip(&want) {
            assert_eq!(gi, wi, "alpha {alpha}");
            assert!((gs - ws).abs() < 1e-12);
        }
        // Every result has its exact distance, also those only the text leg found.
        for (view, _) in &got {
            let stored =
                index.get(std::slice::from_ref(&view.id), Include { vector: true, ..Include::default() }).unwrap();
            let v = stored[0].vector.as_ref().unwrap();
            let exact = v.iter().zip(&vector).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt();
            assert!((view.distance.unwrap() - exact).abs() < 1e-4, "{}", view.id);
        }
    }
    let text_only: Vec<String> = index
        .hybrid_query(&vector, &q, Fusion { alpha: 0.0, rrf_k: 60.0 }, &search)
        .unwrap()
        .into_iter()
        .map(|(v, _)| v.id)
        .collect();
    assert_eq!(
        text_only,
        text_leg.iter().take(k).map(|t| t.id.clone()).collect::<Vec<_>>(),
        "alpha 0 is the text ranking"
    );
}

#[test]
fn bad_text_input_is_a_typed_error_and_the_store_sees_no_term() {
    let (store, client, key, index) = text_index(TextSpec::new(vec!["contents".into()]));
    index
        .upsert(vec![NewItem {
            id: "a".into(),
            vector: vec![1.0; 4],
            metadata: None,
            contents: Some(Contents::Text("zygomorphic xylophones quietly".into())),
        }])
        .unwrap();
    let q = |text: &'static str| TextQuery { text, fields: None, require_all: false };
    assert_eq!(index.text_search(&q("xylophone"), None, 10).unwrap()[0].id, "a");
    assert!(index.text_search(&q("the and of"), None, 10).unwrap().is_empty(), "only stopwords: no match");
    let code = |r: ciphervec_core::Result<Vec<ciphervec_core::TextHit>>| r.unwrap_err().code();
    assert_eq!(code(index.text_search(&q("  "), None, 10)), "ERR_INVALID_ARGUMENT");
    let long = "word ".repeat(20_000);
    let long_q = TextQuery { text: &long, fields: None, require_all: false };
    assert_eq!(code(index.text_search(&long_q, None, 10)), "ERR_INVALID_ARGUMENT");
    let unknown = ["title".to_string()];
    let by_unknown = TextQuery { text: "x", fields: Some(&unknown), require_all: false };
    assert_eq!(code(index.text_search(&by_unknown, None, 10)), "ERR_INVALID_ARGUMENT");
    assert_eq!(code(index.text_search(&q("x"), None, 0)), "ERR_INVALID_ARGUMENT");
    let search = Search { k: 5, n_probes: None, rerank: None, filter: None, include: Include::default() };
    let bad_alpha = index.hybrid_query(&[1.0; 4], &q("x"), Fusion { alpha: 1.5, rrf_k: 60.0 }, &search);
    assert_eq!(bad_alpha.unwrap_err().code(), "ERR_INVALID_ARGUMENT");
    let plain = client.create_index("plain", &key, Some(4), Metric::Cosine).unwrap();
    assert_eq!(code(plain.text_search(&q("x"), None, 10)), "ERR_INVALID_ARGUMENT");
    for bad in [vec![], vec!["a".to_string(), "a".to_string()], vec!["a..b".to_string()]] {
        let spec = IndexSpec { text: Some(TextSpec::new(bad)), ..IndexSpec::default() };
        assert_eq!(client.create_index_with("bad", &key, &spec).err().map(|e| e.code()), Some("ERR_INVALID_ARGUMENT"));
    }
    let spec = IndexSpec { text: Some(TextSpec { fields: vec!["x".into()], k1: 1.2, b: 2.0 }), ..IndexSpec::default() };
    assert_eq!(client.create_index_with("bad", &key, &spec).err().map(|e| e.code()), Some("ERR_INVALID_ARGUMENT"));
    for (space, k, v) in store.dump() {
        for bytes in [space.as_bytes(), &k[..], &v[..]] {
            for term in [&b"zygomorph"[..], b"xylophon", b"quiet"] {
                assert!(!bytes.windows(term.len()).any(|w| w == term), "a term reached the store");
            }
        }
    }
}

/// A load rebuilds the text index in blocks of 16,384 items, inserting one block while the
/// next is analyzed: over several blocks it scores exactly as the index built by the writes.
#[test]
fn a_load_over_several_blocks_rebuilds_the_same_text_index() {
    let mut rng = Rng(23);
    let docs = corpus(&mut rng, 35_000);
    let spec = TextSpec { fields: vec!["contents".into(), "title".into()], k1: 1.2, b: 0.75 };
    let (store, _, key, index) = text_index(spec);
    for chunk in docs.chunks(5_000) {
        index.upsert(chunk.iter().map(|d| item(d, &mut rng)).collect()).unwrap();
    }
    let reloaded = Client::new(store, 2).unwrap().load_index("t", &key).unwrap();
    for text in ["apple", "running foxes", "the blue ocean", "data vector search stone"] {
        let q = TextQuery { text, fields: None, require_all: false };
        let (want, got) =
            (index.text_search(&q, None, 10_000).unwrap(), reloaded.text_search(&q, None, 10_000).unwrap());
        assert!(!want.is_empty(), "{text}");
        assert_eq!(got.len(), want.len(), "{text}");
        for (g, w) in got.iter().zip(&want) {
            assert!(g.id == w.id && (g.score - w.score).abs() < 1e-9, "{text}: {g:?} vs {w:?}");
        }
    }
}
