//! Table-driven spec: hand-written expected matches for every operator and pinned
//! edge case, checked against both `Filter` and the reference evaluator.

mod filter_reference;

use ciphervec_core::Meta;
use ciphervec_core::{Filter, FilterError};
use filter_reference::ref_matches;
use serde_json::{json, Value};

/// Index 7 is an item without metadata (`None`).
const DOCS: &[Option<&str>] = &[
    Some(
        r#"{"tenant":"t1","price":10,"tags":["a","b"],"loc":{"city":"Berlin","zip":"10115"},"title":"Hello World","published":"2024-05-01T00:00:00Z","ts":1714521600000,"active":true,"rating":4.5,"big":9007199254740992}"#,
    ),
    Some(
        r#"{"tenant":"t1","price":20.0,"tags":["b","c"],"loc":{"city":"berlin"},"title":"hello there","published":"2024-06-15T08:30:00Z","ts":1718440200000,"active":false,"rating":null}"#,
    ),
    Some(
        r#"{"tenant":"t2","price":20,"tags":[],"loc":{"city":"Paris","zip":"75001"},"title":"Bonjour","published":"2023-12-31T23:59:59Z","ts":1704067199000,"active":true}"#,
    ),
    Some(r#"{"tenant":"t2","price":5.5,"tags":["a",["x","y"]],"title":"HELLO","active":null}"#),
    Some(r#"{"tenant":"t3","tags":"a","loc":null,"nested":{"a":{"b":[1,2,3]}},"m":{"0":"zero"}}"#),
    Some(r#"{"price":"20","tags":["A"],"title":"line1\nline2","published":1714521600000}"#),
    Some("{}"),
    None,
    Some(
        r#"{"tenant":"t1","price":9007199254740993,"tags":[null,"a"],"loc":{"city":"Berlin"},"big":9007199254740993}"#,
    ),
    Some(r#"{"tenant":"t4","price":-3,"tags":[["x","y"]],"obj":{"k":1,"j":[1,2]},"rating":3}"#),
    Some(r#"{"tenant":"T1","price":100,"tags":["c"],"obj":{"j":[1.0,2],"k":1.0},"big":9007199254740992.0}"#),
    Some(r#"{"tenant":"t5","price":[5,15],"tags":["a","b","c","d"],"loc":{"city":"Köln"},"rating":5}"#),
];

const ALL: &[usize] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

fn docs() -> Vec<Option<Value>> {
    DOCS.iter().map(|d| d.map(|s| serde_json::from_str(s).unwrap())).collect()
}

fn rows() -> Vec<(Value, Vec<usize>)> {
    let many_tenants: Vec<Value> = (0..200).map(|i| json!(format!("t{}", i + 100))).chain([json!("t4")]).collect();
    let many_prices: Vec<Value> = (0..300).map(|i| json!(i)).collect();
    let rows: Vec<(Value, &[usize])> = vec![
        // implicit equality, numbers, strings, objects
        (json!({}), ALL),
        (json!({"tenant": "t1"}), &[0, 1, 8]),
        (json!({"tenant": {"$eq": "T1"}}), &[10]),
        (json!({"price": 20}), &[1, 2]),
        (json!({"price": 20.0}), &[1, 2]),
        (json!({"price": {"$eq": 5}}), &[11]),
        (json!({"loc": {"city": "Berlin", "zip": "10115"}}), &[0]),
        (json!({"loc": {"zip": "10115", "city": "Berlin"}}), &[0]),
        (json!({"loc": {"city": "Berlin"}}), &[8]),
        (json!({"loc": {}}), &[]),
        (json!({"obj": {"k": 1, "j": [1, 2]}}), &[9, 10]),
        (json!({"tenant": "t1", "price": {"$lt": 15}}), &[0]),
        // arrays: contains, whole-array equality, array as element
        (json!({"tags": "a"}), &[0, 3, 4, 8, 11]),
        (json!({"tags": ["x", "y"]}), &[3, 9]),
        (json!({"tags": {"$eq": ["a", "b"]}}), &[0]),
        (json!({"tags": {"$eq": ["b", "a"]}}), &[]),
        (json!({"tags": []}), &[2]),
        // paths
        (json!({"loc.city": "Berlin"}), &[0, 8]),
        (json!({"loc.city.x": "a"}), &[]),
        (json!({"nested.a.b": 2}), &[4]),
        (json!({"nested.a.b.1": 2}), &[4]),
        (json!({"nested.a.b.0": 2}), &[]),
        (json!({"tags.0": "a"}), &[0, 3, 11]),
        (json!({"m.0": "zero"}), &[4]),
        (json!({"tags.1": {"$exists": true}}), &[0, 1, 3, 8, 11]),
        (json!({"$and": [{"tags.0": {"$exists": false}}, {"tags": {"$exists": true}}]}), &[2, 4]),
        // null and $exists
        (json!({"rating": null}), &[1, 2, 3, 4, 5, 6, 7, 8, 10]),
        (json!({"tags": null}), &[6, 7, 8]),
        (json!({"tags": {"$eq": null}}), &[6, 7, 8]),
        (json!({"active": null}), &[3, 4, 5, 6, 7, 8, 9, 10, 11]),
        (json!({"rating": {"$exists": true}}), &[0, 1, 9, 11]),
        (json!({"rating": {"$exists": false}}), &[2, 3, 4, 5, 6, 7, 8, 10]),
        (json!({"loc": {"$exists": true}}), &[0, 1, 2, 4, 8, 11]),
        // booleans
        (json!({"active": true}), &[0, 2]),
        (json!({"active": false}), &[1]),
        (json!({"active": {"$gt": "a"}}), &[]),
        // $ne: field must exist (differs from MongoDB); $not+$eq is Mongo's $ne
        (json!({"tenant": {"$ne": "t1"}}), &[2, 3, 4, 9, 10, 11]),
        (json!({"tags": {"$ne": "a"}}), &[1, 2, 5, 9, 10]),
        (json!({"rating": {"$ne": null}}), &[0, 9, 11]),
        (json!({"active": {"$ne": true}}), &[1, 3]),
        (json!({"tenant": {"$not": {"$eq": "t1"}}}), &[2, 3, 4, 5, 6, 7, 9, 10, 11]),
        // comparisons
        (json!({"price": {"$gt": 10}}), &[1, 2, 8, 10, 11]),
        (json!({"price": {"$gte": 10}}), &[0, 1, 2, 8, 10, 11]),
        (json!({"price": {"$lt": 10}}), &[3, 9, 11]),
        (json!({"price": {"$lte": 5.5}}), &[3, 9, 11]),
        (json!({"price": {"$gt": 5, "$lt": 15}}), &[0, 3, 11]),
        (json!({"price": {"$gt": "10"}}), &[5]),
        (json!({"price": {"$gte": 20, "$in": [20, 100]}}), &[1, 2, 10]),
        (json!({"rating": {"$gte": 4}}), &[0, 11]),
        (json!({"tags": {"$gt": "b"}}), &[1, 10, 11]),
        (json!({"title": {"$gte": "hello"}}), &[1, 5]),
        (json!({"title": {"$lt": "Hello"}}), &[2, 3]),
        (json!({"loc.city": {"$gt": "Z"}}), &[1]),
        (json!({"loc.city": {"$gt": "Kz"}}), &[1, 2, 11]),
        // exact big integers; int vs float
        (json!({"big": 9007199254740993u64}), &[8]),
        (json!({"big": 9007199254740992u64}), &[0, 10]),
        (json!({"big": {"$gt": 9007199254740992u64}}), &[8]),
        (json!({"big": {"$gte": 9007199254740992.0}}), &[0, 8, 10]),
        (json!({"price": 9007199254740993u64}), &[8]),
        // dates: ISO strings compare as strings, epoch-ms as numbers, never across
        (json!({"published": {"$gte": "2024-05-01T00:00:00Z"}}), &[0, 1]),
        (json!({"published": {"$lt": "2024-01-01T00:00:00Z"}}), &[2]),
        (json!({"ts": {"$gte": 1714521600000u64}}), &[0, 1]),
        (json!({"published": {"$gte": 1714521600000u64}}), &[5]),
        (json!({"ts": {"$gte": "2024-05-01T00:00:00Z"}}), &[]),
        // $in / $nin
        (json!({"tenant": {"$in": ["t1", "t2"]}}), &[0, 1, 2, 3, 8]),
        (json!({"tenant": {"$nin": ["t1", "t2"]}}), &[4, 5, 6, 7, 9, 10, 11]),
        (json!({"tags": {"$in": ["c", "d"]}}), &[1, 10, 11]),
        (json!({"tags": {"$in": []}}), &[]),
        (json!({"tags": {"$nin": []}}), ALL),
        (json!({"rating": {"$in": [null, 5]}}), &[1, 2, 3, 4, 5, 6, 7, 8, 10, 11]),
        (json!({"rating": {"$nin": [null]}}), &[0, 9, 11]),
        (json!({"price": {"$in": [20, 100.0, -3]}}), &[1, 2, 9, 10]),
        (json!({"tags": {"$in": [["x", "y"], "zzz"]}}), &[3, 9]),
        (json!({"active": {"$in": [false, null]}}), &[1, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
        (json!({"loc": {"$in": [{"city": "Berlin"}]}}), &[8]),
        (json!({"tenant": {"$in": many_tenants}}), &[9]),
        (json!({"price": {"$in": many_prices}}), &[0, 1, 2, 10, 11]),
        // $regex
        (json!({"title": {"$regex": "^hello"}}), &[1]),
        (json!({"title": {"$regex": "^hello", "$options": "i"}}), &[0, 1, 3]),
        (json!({"title": {"$regex": "^line2$", "$options": "m"}}), &[5]),
        (json!({"title": {"$regex": "line1.line2", "$options": "s"}}), &[5]),
        (json!({"title": {"$regex": "line1.line2"}}), &[]),
        (json!({"title": {"$regex": "h e l l o", "$options": "xi"}}), &[0, 1, 3]),
        (json!({"tags": {"$regex": "^[A-Z]$"}}), &[5]),
        (json!({"price": {"$regex": "2"}}), &[5]),
        // $contains
        (json!({"title": {"$contains": "llo"}}), &[0, 1]),
        (json!({"tags": {"$contains": "a"}}), &[0, 3, 4, 8, 11]),
        (json!({"tags": {"$contains": ["x", "y"]}}), &[3, 9]),
        (json!({"tags": {"$contains": null}}), &[8]),
        (json!({"price": {"$contains": 5}}), &[11]),
        (json!({"title": {"$contains": 5}}), &[]),
        // logical operators
        (json!({"$and": [{"tenant": "t1"}, {"price": {"$gte": 20}}]}), &[1, 8]),
        (json!({"$or": [{"tenant": "t3"}, {"tags": "c"}]}), &[1, 4, 10, 11]),
        (json!({"$nor": [{"tenant": "t1"}, {"price": {"$gt": 10}}]}), &[3, 4, 5, 6, 7, 9]),
        (json!({"$nor": [{"rating": {"$gt": 4}}]}), &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        (json!({"$and": []}), ALL),
        (json!({"$or": []}), &[]),
        (json!({"$nor": []}), ALL),
        (json!({"tenant": "t1", "$or": [{"price": 10}, {"price": 9007199254740993u64}]}), &[0, 8]),
        (
            json!({"$or": [{"$and": [{"tenant": "t2"}, {"price": 20}]}, {"$nor": [{"tags": {"$exists": true}}]}]}),
            &[2, 6, 7],
        ),
        // $not: field-level negates the operator expression (matches missing); top-level negates a sub-filter
        (json!({"price": {"$not": {"$gt": 10}}}), &[0, 3, 4, 5, 6, 7, 9]),
        (json!({"price": {"$not": {"$gt": 5, "$lt": 15}}}), &[1, 2, 4, 5, 6, 7, 8, 9, 10]),
        (json!({"title": {"$not": {"$regex": "^h", "$options": "i"}}}), &[2, 4, 5, 6, 7, 8, 9, 10, 11]),
        (json!({"tags": {"$not": {"$in": ["a"]}}}), &[1, 2, 5, 6, 7, 9, 10]),
        (json!({"$not": {"tenant": "t1"}}), &[2, 3, 4, 5, 6, 7, 9, 10, 11]),
        (json!({"$not": {"$not": {"tenant": "t1"}}}), &[0, 1, 8]),
        (json!({"$not": {}}), &[]),
    ];
    rows.into_iter().map(|(f, e)| (f, e.to_vec())).collect()
}

#[test]
fn table_matches_spec_and_reference() {
    let docs = docs();
    let metas: Vec<Option<Meta>> = docs.iter().map(|d| d.as_ref().map(Meta::from)).collect();
    let rows = rows();
    let mut failures = Vec::new();
    for (filter, expected) in &rows {
        let compiled = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        let got: Vec<usize> = (0..docs.len()).filter(|&i| compiled.matches(metas[i].as_ref())).collect();
        let reference: Vec<usize> = (0..docs.len()).filter(|&i| ref_matches(filter, docs[i].as_ref())).collect();
        if &got != expected || &reference != expected {
            failures.push(format!("{filter}\n  expected {expected:?}\n  filter   {got:?}\n  reference {reference:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), rows.len(), failures.join("\n"));
    eprintln!("{} table rows checked", rows.len());
}

#[test]
fn match_all_detection() {
    assert!(Filter::parse(&json!({})).unwrap().is_match_all());
    assert!(Filter::parse(&json!({"$and": []})).unwrap().is_match_all());
    assert!(!Filter::parse(&json!({"a": 1})).unwrap().is_match_all());
    assert!(!Filter::parse(&json!({"$or": []})).unwrap().is_match_all());
}

#[test]
fn non_object_metadata_has_no_fields() {
    let f = Filter::parse(&json!({"a": {"$exists": false}})).unwrap();
    assert!(f.matches(Some(&json!(5).into())));
    assert!(f.matches(Some(&json!([{"a": 1}]).into())));
}

#[test]
fn filter_is_send_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Filter>();
}

fn parse_err(filter: Value) -> FilterError {
    match Filter::parse(&filter) {
        Ok(_) => panic!("expected an error for {filter}"),
        Err(e) => e,
    }
}

/// `{"$and": [{"$and": [ ... {"a": 1} ... ]}]}` with `wrappers` levels.
fn nested_and(wrappers: usize) -> Value {
    (0..wrappers).fold(json!({"a": 1}), |inner, _| json!({"$and": [inner]}))
}

fn nested_array(levels: usize) -> Value {
    (0..levels).fold(json!(1), |inner, _| Value::Array(vec![inner]))
}

#[test]
fn errors_have_paths() {
    let nested_path = "$and[0].".repeat(16).trim_end_matches('.').to_string();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!([]), "", "filter object"),
        (json!("x"), "", "filter object"),
        (json!(null), "", "filter object"),
        (json!({"$foo": 1}), "$foo", "unknown operator $foo"),
        (json!({"a": {"$foo": 1}}), "a.$foo", "unknown operator $foo"),
        (json!({"a": {"$date": "2024-05-01T00:00:00Z"}}), "a.$date", "unknown operator $date"),
        (json!({"a": {"$eq": {"$date": "2024-05-01T00:00:00Z"}}}), "a.$eq", "$date"),
        (json!({"a": {"$in": [1, {"$x": 1}]}}), "a.$in[1]", "$x"),
        (json!({"$and": [{"a": 1}, {"price": {"$gt": true}}]}), "$and[1].price.$gt", "number or a string"),
        (json!({"a": {"$gte": null}}), "a.$gte", "number or a string"),
        (json!({"a": {"$lt": {"x": 1}}}), "a.$lt", "number or a string"),
        (json!({"a": {"$lte": [1]}}), "a.$lte", "number or a string"),
        (json!({"a": {"$exists": 1}}), "a.$exists", "true or false"),
        (json!({"a": {"$in": "x"}}), "a.$in", "array"),
        (json!({"a": {"$nin": {}}}), "a.$nin", "array"),
        (json!({"$and": {}}), "$and", "array"),
        (json!({"$or": [1]}), "$or[0]", "filter object"),
        (json!({"$nor": "x"}), "$nor", "array"),
        (json!({"$or": [{"a": 1}, {"b": {"$in": 3}}]}), "$or[1].b.$in", "array"),
        (json!({"a": {"$gt": 1, "b": 2}}), "a", "mix"),
        (json!({"a": {"$regex": "("}}), "a.$regex", "invalid regex"),
        (json!({"a": {"$regex": 5}}), "a.$regex", "regex string"),
        (json!({"a": {"$regex": "(?:\\w{100}){100}"}}), "a.$regex", "size limit"),
        (json!({"a": {"$regex": "x", "$options": "q"}}), "a.$options", "unknown regex option"),
        (json!({"a": {"$regex": "x", "$options": 1}}), "a.$options", "string"),
        (json!({"a": {"$options": "i"}}), "a.$options", "$regex"),
        (json!({"a": {"$not": 5}}), "a.$not", "operator object"),
        (json!({"a": {"$not": {}}}), "a.$not", "operator object"),
        (json!({"a": {"$not": {"b": 1}}}), "a.$not", "operator object"),
        (json!({"a": {"$not": {"$gt": 1, "b": 1}}}), "a.$not", "mix"),
        (json!({"a": {"$not": {"$bad": 1}}}), "a.$not.$bad", "unknown operator"),
        (json!({"$not": []}), "$not", "filter object"),
        (json!({"$not": {"x": {"$gt": false}}}), "$not.x.$gt", "number or a string"),
        (json!({"a.": 1}), "a.", "empty segment"),
        (json!({"a..b": 1}), "a..b", "empty segment"),
        (nested_and(16), &nested_path, "32 levels"),
        (json!({"a": nested_array(32)}), "a", "32 levels"),
        (json!({"a": {"$in": [nested_array(31)]}}), "a.$in[0]", "32 levels"),
    ];
    for (filter, path, needle) in cases {
        let e = parse_err(filter.clone());
        assert_eq!(e.path, path, "{filter}: {e}");
        assert!(e.message.contains(needle), "{filter}: message {:?} lacks {needle:?}", e.message);
    }
}

#[test]
fn depth_limit_boundary() {
    assert!(Filter::parse(&nested_and(15)).is_ok()); // 31 levels
    assert!(Filter::parse(&json!({"a": nested_array(31)})).is_ok()); // 32 levels
}

#[test]
fn hostile_deep_value_rejected_without_recursion() {
    // Building and dropping the value recurses inside serde_json, so give that a
    // big stack; `Filter::parse` itself stops at the depth limit.
    let handle = std::thread::Builder::new().stack_size(256 << 20).spawn(|| {
        let mut deep = json!({"a": {"$eq": null}});
        deep["a"]["$eq"] = nested_array(100_000);
        assert_eq!(parse_err(deep).path, "a.$eq");
    });
    handle.unwrap().join().unwrap();
}

#[test]
fn error_display() {
    let e = parse_err(json!({"$and": [{}, {"price": {"$gt": true}}]}));
    assert_eq!(e.to_string(), "invalid filter at $and[1].price.$gt: expected a number or a string");
    assert_eq!(parse_err(json!(1)).to_string(), "invalid filter: expected a filter object");
}
