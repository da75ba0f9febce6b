//! A filter's plan for the metadata index (`meta::postings`): the equalities and ranges every
//! match must satisfy. Only parts that are implied by the filter enter it, so the candidates it yields
//! contain every match (and the filter still decides each candidate).

use crate::meta::filter::eval::{Node, Op};
use crate::meta::postings::Plan;

impl Node {
    pub(super) fn plan(&self) -> Option<Plan> {
        match self {
            // Each child is implied: intersect those that plan; the rest only filter later.
            Node::And(children) => {
                let parts: Vec<Plan> = children.iter().filter_map(Node::plan).collect();
                match parts.len() {
                    0 => None,
                    1 => parts.into_iter().next(),
                    _ => Some(Plan::And(parts)),
                }
            }
            // A match satisfies some child: every child must plan, or the union is unknown.
            Node::Or(children) => children.iter().map(Node::plan).collect::<Option<Vec<_>>>().map(Plan::Or),
            Node::Nor(_) | Node::Not(_) => None,
            Node::Field(path, ops) => {
                // Array positions (`tags.0`) are not indexed.
                if path.iter().any(|s| s.index.is_some()) {
                    return None;
                }
                let path: Box<str> = path.iter().map(|s| &*s.key).collect::<Vec<_>>().join(".").into();
                // Every operator of the field is implied: intersect those that plan.
                let parts: Vec<Plan> = ops
                    .iter()
                    .filter_map(|op| match op {
                        Op::Eq(lit) => lit.key().map(|k| Plan::Term(path.clone(), k)),
                        Op::In(set) => set
                            .keys()
                            .map(|keys| Plan::Or(keys.into_iter().map(|k| Plan::Term(path.clone(), k)).collect())),
                        Op::Cmp(cmp, bound) => {
                            let (lo, hi) = bound.ends(*cmp);
                            Some(Plan::Range(path.clone(), lo, hi))
                        }
                        _ => None,
                    })
                    .collect();
                match parts.len() {
                    0 => None,
                    1 => parts.into_iter().next(),
                    _ => Some(Plan::And(parts)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::meta::filter::Filter;
    use crate::meta::postings::{End, Key, Plan};
    use serde_json::json;

    fn plan(v: serde_json::Value) -> Option<Plan> {
        Filter::parse(&v).unwrap().plan()
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
                    Plan::Range("c".into(), Some(End::Num(1.0)), None),
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
            Some(Plan::Or(vec![t("x", Key::num(1.0)), Plan::Range("y".into(), Some(End::Num(2.0)), None)]))
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
