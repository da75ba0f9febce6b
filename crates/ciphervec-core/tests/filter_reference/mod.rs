//! Reference evaluator: interprets the filter JSON directly on every call, with
//! no compilation, as an independent statement of the pinned semantics.

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;

pub fn ref_matches(filter: &Value, doc: Option<&Value>) -> bool {
    filter.as_object().unwrap().iter().all(|(key, arg)| match key.as_str() {
        "$and" => arg.as_array().unwrap().iter().all(|f| ref_matches(f, doc)),
        "$or" => arg.as_array().unwrap().iter().any(|f| ref_matches(f, doc)),
        "$nor" => !arg.as_array().unwrap().iter().any(|f| ref_matches(f, doc)),
        "$not" => !ref_matches(arg, doc),
        field => cond_matches(lookup(doc, field), arg),
    })
}

fn lookup<'a>(doc: Option<&'a Value>, field: &str) -> Option<&'a Value> {
    let mut cur = doc?;
    for part in field.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) if !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) => {
                a.get(part.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

fn is_ops(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object().filter(|o| !o.is_empty() && o.keys().all(|k| k.starts_with('$')))
}

fn cond_matches(val: Option<&Value>, cond: &Value) -> bool {
    match is_ops(cond) {
        Some(ops) => ops.iter().all(|(op, arg)| op_matches(val, op, arg, ops)),
        None => eq_field(val, cond),
    }
}

/// The value itself plus, for arrays, each element.
fn candidates(val: &Value) -> Vec<&Value> {
    let mut out = vec![val];
    if let Value::Array(a) = val {
        out.extend(a.iter());
    }
    out
}

fn eq_field(val: Option<&Value>, want: &Value) -> bool {
    match val {
        None => want.is_null(),
        Some(v) => candidates(v).into_iter().any(|c| json_eq(c, want)),
    }
}

fn op_matches(val: Option<&Value>, op: &str, arg: &Value, siblings: &Map<String, Value>) -> bool {
    let cmp_any = |want: &[Ordering]| {
        val.is_some_and(|v| candidates(v).into_iter().any(|c| ordered_cmp(c, arg).is_some_and(|o| want.contains(&o))))
    };
    match op {
        "$eq" => eq_field(val, arg),
        "$ne" => val.is_some() && !eq_field(val, arg),
        "$gt" => cmp_any(&[Ordering::Greater]),
        "$gte" => cmp_any(&[Ordering::Greater, Ordering::Equal]),
        "$lt" => cmp_any(&[Ordering::Less]),
        "$lte" => cmp_any(&[Ordering::Less, Ordering::Equal]),
        "$in" => arg.as_array().unwrap().iter().any(|a| eq_field(val, a)),
        "$nin" => !arg.as_array().unwrap().iter().any(|a| eq_field(val, a)),
        "$exists" => val.is_some() == arg.as_bool().unwrap(),
        "$options" => true,
        "$regex" => {
            let flags = siblings.get("$options").and_then(Value::as_str).unwrap_or("");
            let re = regex(arg.as_str().unwrap(), flags);
            val.is_some_and(|v| candidates(v).into_iter().any(|c| c.as_str().is_some_and(|s| re.is_match(s))))
        }
        "$contains" => match (val, arg) {
            (Some(Value::Array(a)), _) => a.iter().any(|e| json_eq(e, arg)),
            (Some(Value::String(s)), Value::String(sub)) => s.contains(sub.as_str()),
            _ => false,
        },
        "$not" => !cond_matches(val, arg),
        other => panic!("reference evaluator: unknown operator {other}"),
    }
}

/// Memoized only because compiling regexes per call dominates the proptest's run time.
fn regex(pattern: &str, flags: &str) -> Regex {
    thread_local!(static CACHE: RefCell<HashMap<(String, String), Regex>> = RefCell::default());
    CACHE.with_borrow_mut(|cache| {
        cache
            .entry((pattern.to_string(), flags.to_string()))
            .or_insert_with(|| {
                RegexBuilder::new(pattern)
                    .case_insensitive(flags.contains('i'))
                    .multi_line(flags.contains('m'))
                    .dot_matches_new_line(flags.contains('s'))
                    .ignore_whitespace(flags.contains('x'))
                    .build()
                    .unwrap()
            })
            .clone()
    })
}

/// Ordering for same-typed numbers or strings only.
fn ordered_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => Some(num_cmp(a, b)),
        (Value::String(x), Value::String(y)) => {
            Some(x.chars().cmp(y.chars())) // code-point order, spelled out
        }
        _ => None,
    }
}

/// Exact numeric order: integers as i128; int vs float via f64, with ties
/// (possible only when the float is integral) resolved as integers.
fn num_cmp(a: &Value, b: &Value) -> Ordering {
    let int = |v: &Value| v.as_i64().map(i128::from).or(v.as_u64().map(i128::from));
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(x), None) => mixed(x, b.as_f64().unwrap()),
        (None, Some(y)) => mixed(y, a.as_f64().unwrap()).reverse(),
        (None, None) => a.as_f64().unwrap().partial_cmp(&b.as_f64().unwrap()).unwrap(),
    }
}

fn mixed(i: i128, f: f64) -> Ordering {
    let fi = i as f64;
    if fi == f {
        i.cmp(&(f as i128))
    } else {
        fi.partial_cmp(&f).unwrap()
    }
}

pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => num_cmp(a, b) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
