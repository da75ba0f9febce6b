//! Random valid filters over a small vocabulary must agree with the reference evaluator.

mod filter_reference;

use ciphervec_core::Filter;
use ciphervec_core::Meta;
use filter_reference::ref_matches;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const FIELDS: &[&str] = &["a", "b", "s", "tags", "o", "o.x", "tags.0", "tags.1", "n", "missing"];
const STRINGS: &[&str] = &["", "x", "X", "xy", "y", "ab", "2024-05-01T00:00:00Z"];
const PATTERNS: &[&str] = &["^x", "y$", "X", ".", "^$", "a|b"];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => (-3i64..4).prop_map(Value::from),
        1 => prop::sample::select(vec![-2.0, 0.5, 1.0, 2.0, 2.5]).prop_map(Value::from),
        3 => prop::sample::select(STRINGS).prop_map(Value::from),
        1 => Just(json!(9007199254740993u64)),
        1 => Just(json!(9007199254740992.0)),
    ]
}

/// Scalars, small arrays (possibly nested once) and one-key objects.
fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            inner.prop_map(|v| json!({"x": v})),
        ]
    })
}

fn bound() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..4).prop_map(Value::from),
        prop::sample::select(vec![0.5, 2.0, 2.5]).prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
    ]
}

/// One operator as one or two (key, operand) pairs (`$regex` may bring `$options`).
fn operator() -> impl Strategy<Value = Vec<(String, Value)>> {
    let one = |k: &'static str| move |v: Value| vec![(k.to_string(), v)];
    prop_oneof![
        value().prop_map(one("$eq")),
        value().prop_map(one("$ne")),
        bound().prop_map(one("$gt")),
        bound().prop_map(one("$gte")),
        bound().prop_map(one("$lt")),
        bound().prop_map(one("$lte")),
        prop::collection::vec(value(), 0..5).prop_map(|v| vec![("$in".into(), Value::Array(v))]),
        prop::collection::vec(value(), 0..5).prop_map(|v| vec![("$nin".into(), Value::Array(v))]),
        any::<bool>().prop_map(|b| vec![("$exists".into(), Value::Bool(b))]),
        value().prop_map(one("$contains")),
        prop::sample::select(STRINGS).prop_map(|s| vec![("$contains".into(), json!(s))]),
        (prop::sample::select(PATTERNS), prop::sample::select(vec!["", "i", "im", "x"])).prop_map(|(p, o)| {
            let mut ops = vec![("$regex".to_string(), json!(p))];
            if !o.is_empty() {
                ops.push(("$options".into(), json!(o)));
            }
            ops
        }),
    ]
}

fn operator_object(ops: Vec<Vec<(String, Value)>>) -> Value {
    Value::Object(ops.into_iter().flatten().collect::<Map<_, _>>())
}

/// A field condition: a literal, or an operator object, possibly wrapped in `$not`.
fn condition() -> impl Strategy<Value = Value> {
    let ops = || prop::collection::vec(operator(), 1..3).prop_map(operator_object);
    prop_oneof![
        2 => value().prop_filter("literal objects have no $ keys", |v| !is_operator_like(v)),
        4 => ops(),
        1 => ops().prop_map(|o| json!({"$not": o})),
    ]
}

fn is_operator_like(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.keys().any(|k| k.starts_with('$')))
}

fn filter() -> impl Strategy<Value = Value> {
    let leaf = prop::collection::vec((prop::sample::select(FIELDS), condition()), 0..3)
        .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    leaf.prop_recursive(3, 24, 3, |inner| {
        let clauses = prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array);
        prop_oneof![
            clauses.clone().prop_map(|c| json!({"$and": c})),
            clauses.clone().prop_map(|c| json!({"$or": c})),
            clauses.prop_map(|c| json!({"$nor": c})),
            inner.clone().prop_map(|f| json!({"$not": f})),
            (inner.clone(), inner).prop_map(|(a, b)| {
                let mut merged = a.as_object().cloned().unwrap_or_default();
                merged.extend(b.as_object().cloned().unwrap_or_default());
                Value::Object(merged)
            }),
        ]
    })
}

fn doc() -> impl Strategy<Value = Option<Value>> {
    let field = |name: &'static str, s: BoxedStrategy<Value>| {
        prop::option::of(s).prop_map(move |v| v.map(|v| (name.to_string(), v)))
    };
    let object = (
        field("a", value().boxed()),
        field("b", value().boxed()),
        field("tags", prop::collection::vec(value(), 0..4).prop_map(Value::Array).boxed()),
        field("o", value().boxed()),
        field("n", bound().boxed()),
        field("s", prop::sample::select(STRINGS).prop_map(Value::from).boxed()),
    )
        .prop_map(|(a, b, t, o, n, s)| Some(Value::Object([a, b, t, o, n, s].into_iter().flatten().collect())));
    prop_oneof![1 => Just(None), 9 => object]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compiled_filter_agrees_with_reference(
        filter in filter(),
        docs in prop::collection::vec(doc(), 8),
    ) {
        let compiled = Filter::parse(&filter).map_err(|e| TestCaseError::fail(format!("{filter}: {e}")))?;
        for doc in &docs {
            // Documents reach the filter as the working set holds them: parsed from JSON text.
            let meta: Option<Meta> = doc.as_ref().map(|d| serde_json::from_str(&d.to_string()).unwrap());
            prop_assert_eq!(
                compiled.matches(meta.as_ref()),
                ref_matches(&filter, doc.as_ref()),
                "filter {} doc {:?}", filter, doc
            );
        }
    }

    /// The metadata index never loses a match: its candidates hold every matching document,
    /// and are exactly the matches when the plan says so.
    #[test]
    fn metadata_index_candidates_hold_every_match(
        filter in filter(),
        docs in prop::collection::vec(doc(), 16),
    ) {
        let compiled = Filter::parse(&filter).map_err(|e| TestCaseError::fail(format!("{filter}: {e}")))?;
        let metas: Vec<Option<Meta>> =
            docs.iter().map(|d| d.as_ref().map(|d| serde_json::from_str(&d.to_string()).unwrap())).collect();
        if let Some((candidates, exact)) = ciphervec_core::test_util::filter_candidates(&metas, &compiled) {
            let matches: Vec<u32> =
                (0..metas.len() as u32).filter(|&i| compiled.matches(metas[i as usize].as_ref())).collect();
            for m in &matches {
                prop_assert!(candidates.contains(m), "filter {} lost doc {:?}", filter, docs[*m as usize]);
            }
            if exact {
                prop_assert_eq!(&candidates, &matches, "filter {} is planned exactly", filter);
            }
        }
    }
}
