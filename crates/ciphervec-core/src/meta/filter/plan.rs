//! A filter's plan for the metadata index (`meta::postings`): the equalities and ranges every
//! match must satisfy. Only parts that are implied by the filter enter it, so the candidates it yields
//! contain every match (and the filter still decides each candidate).

use crate::meta::filter::eval::{Node, Op};
use crate::meta::postings::Plan;

/// A plan, and whether its candidates are exactly the filter's matches: every part of the
/// filter planned, over strings and booleans only (numbers are keyed by their rounded `f64`
/// value, so their candidates may include near misses), so the filter need not be run on
/// them again.
pub(crate) struct Planned {
    pub(crate) plan: Plan,
    pub(crate) exact: bool,
}

impl Node {
    pub(super) fn plan(&self) -> Option<Planned> {
        match self {
            // Each child is implied: intersect those that plan; the rest only filter later.
            Node::And(children) => {
                let planned: Vec<Planned> = children.iter().filter_map(Node::plan).collect();
                let exact = planned.len() == children.len() && planned.iter().all(|p| p.exact);
                combine(planned.into_iter().map(|p| p.plan).collect(), exact)
            }
            // A match satisfies some child: every child must plan, or the union is unknown.
            Node::Or(children) => {
                let planned = children.iter().map(Node::plan).collect::<Option<Vec<_>>>()?;
                let exact = planned.iter().all(|p| p.exact);
                Some(Planned { plan: Plan::Or(planned.into_iter().map(|p| p.plan).collect()), exact })
            }
            Node::Nor(_) | Node::Not(_) => None,
            Node::Field(path, ops) => {
                // Array positions (`tags.0`) are not indexed.
                if path.iter().any(|s| s.index.is_some()) {
                    return None;
                }
                let path: Box<str> = path.iter().map(|s| &*s.key).collect::<Vec<_>>().join(".").into();
                // Every operator of the field is implied: intersect those that plan.
                let planned: Vec<Planned> = ops.iter().filter_map(|op| plan_op(&path, op)).collect();
                let exact = planned.len() == ops.len() && planned.iter().all(|p| p.exact);
                combine(planned.into_iter().map(|p| p.plan).collect(), exact)
            }
        }
    }
}

/// Numeric parts are exact here when their operands are `f64`s exactly; the metadata index
/// then also needs every value at the path to be one (`Postings::restrict` checks that).
fn plan_op(path: &str, op: &Op) -> Option<Planned> {
    match op {
        Op::Eq(lit) => lit.key().map(|k| Planned { exact: lit.key_is_exact(), plan: Plan::Term(path.into(), k) }),
        Op::In(set) => set.keys().map(|keys| Planned {
            exact: set.keys_are_exact(),
            plan: Plan::Or(keys.into_iter().map(|k| Plan::Term(path.into(), k)).collect()),
        }),
        Op::Cmp(cmp, bound) => {
            let (lo, hi) = bound.ends(*cmp);
            Some(Planned { plan: Plan::Range(path.into(), lo, hi), exact: bound.is_exact() })
        }
        _ => None,
    }
}

/// The plan of parts that all hold: none, the one, or their intersection.
fn combine(parts: Vec<Plan>, exact: bool) -> Option<Planned> {
    let plan = match parts.len() {
        0 => return None,
        1 => parts.into_iter().next().expect("one part"),
        _ => Plan::And(parts),
    };
    Some(Planned { plan, exact })
}

#[cfg(test)]
mod tests {
    use crate::meta::filter::Filter;
    use crate::meta::postings::{End, Key, Plan};
    use serde_json::json;

    fn plan(v: serde_json::Value) -> Option<Plan> {
        Filter::parse(&v).unwrap().plan().map(|p| p.plan)
    }

    fn exact(v: serde_json::Value) -> bool {
        Filter::parse(&v).unwrap().plan().is_some_and(|p| p.exact)
    }

    #[test]
    fn plans_that_cover_the_whole_filter_with_exact_operands_are_exact() {
        for yes in [
            json!({ "tenant": "t7" }),
            json!({ "tenant": "t7", "flag": true, "tags": { "$in": ["a", "b"] } }),
            json!({ "$or": [{ "a": "x" }, { "b": { "$gte": "k", "$lt": "m" } }] }),
            json!({ "n": 1 }),
            json!({ "tenant": "t7", "n": { "$gt": 2.5 } }),
            json!({ "tags": { "$in": ["a", 3] } }),
            json!({ "$or": [{ "a": "x" }, { "b": 9007199254740992u64 }] }),
        ] {
            assert!(exact(yes.clone()), "{yes}");
        }
        for no in [
            json!({ "tenant": "t7", "x": { "$ne": "a" } }),
            json!({ "tenant": { "$eq": "t7", "$exists": true } }),
            json!({ "n": 9007199254740993u64 }),
            json!({ "n": { "$lt": -9007199254740993i64 } }),
            json!({ "tags": { "$in": ["a", 9007199254740993u64] } }),
        ] {
            assert!(!exact(no.clone()), "{no}");
        }
    }

    #[test]
    fn equalities_plan_and_everything_else_does_not() {
        let t = |p: &str, k: Key| Plan::Term(p.into(), k);
        assert_eq!(plan(json!({ "tenant": "t7" })), Some(t("tenant", Key::Str("t7".into()))));
        assert_eq!(
            plan(json!({ "a.b": 20, "c": { "$gt": 1, "$lte": "k" } })),
            Some(Plan::And(vec![
                t("a.b", Key::num(20.0)),
                Plan::And(vec![
                    Plan::Range("c".into(), Some(End::Num(1.0, false)), None),
                    Plan::Range("c".into(), None, Some(End::Str("k".into(), true))),
                ]),
            ]))
        );
        assert_eq!(
            plan(json!({ "x": { "$in": [true, "s"] } })),
            Some(Plan::Or(vec![t("x", Key::Bool(true)), t("x", Key::Str("s".into()))]))
        );
        assert_eq!(plan(json!({ "x": { "$in": [] } })), Some(Plan::Or(vec![])), "matches nothing");
        assert_eq!(
            plan(json!({ "$or": [{ "x": 1 }, { "y": { "$gt": 2 } }] })),
            Some(Plan::Or(vec![t("x", Key::num(1.0)), Plan::Range("y".into(), Some(End::Num(2.0, false)), None)]))
        );
        for unplanned in [
            json!({}),
            json!({ "x": null }),
            json!({ "x": { "$in": [1, null] } }),
            json!({ "x": [1, 2] }),
            json!({ "x": { "$ne": 1 } }),
            json!({ "tags.0": "a" }),
            json!({ "$or": [{ "x": 1 }, { "y": { "$ne": 2 } }] }),
            json!({ "$nor": [{ "x": 1 }] }),
            json!({ "$not": { "x": 1 } }),
            json!({ "x": { "$not": { "$eq": 1 } } }),
        ] {
            assert_eq!(plan(unplanned.clone()), None, "{unplanned}");
        }
        assert_eq!(
            plan(json!({ "$or": [{ "x": 1 }, { "$and": [{ "y": "a" }, { "z": false }] }] })),
            Some(Plan::Or(vec![
                t("x", Key::num(1.0)),
                Plan::And(vec![t("y", Key::Str("a".into())), t("z", Key::Bool(false))])
            ]))
        );
    }
}
