//! Parsing and validating a filter once, into the tree `eval` runs. `depth` is the JSON
//! nesting level of the value being parsed (the filter object itself is 1); error paths are
//! built only while parsing.

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use super::eval::{Bound, CmpOp, Lit, Node, Num, Op, Segment, ValueSet};
use super::{FilterError, MAX_DEPTH, REGEX_SIZE_LIMIT};

fn err<T>(path: &str, message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError { path: path.to_string(), message: message.into() })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check_depth(depth: usize, path: &str) -> Result<(), FilterError> {
    if depth > MAX_DEPTH {
        return err(path, format!("nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(())
}

/// Nesting levels of `v` (scalars 0), counted only up to `limit + 1` so hostile
/// inputs cannot make this recurse deeply.
fn json_depth(v: &Value, limit: usize) -> usize {
    fn deepest<'a>(children: impl Iterator<Item = &'a Value>, limit: usize) -> usize {
        match limit {
            0 => 0,
            _ => children.map(|c| json_depth(c, limit - 1)).max().unwrap_or(0),
        }
    }
    match v {
        Value::Array(items) => 1 + deepest(items.iter(), limit),
        Value::Object(map) => 1 + deepest(map.values(), limit),
        _ => 0,
    }
}

pub(super) fn parse_filter(v: &Value, path: &str, depth: usize) -> Result<Node, FilterError> {
    check_depth(depth, path)?;
    let Value::Object(map) = v else {
        return err(path, "expected a filter object");
    };
    let mut children = Vec::with_capacity(map.len());
    for (key, value) in map {
        let child_path = join(path, key);
        let node = match key.as_str() {
            "$and" => Node::And(parse_clauses(value, &child_path, depth + 1)?),
            "$or" => Node::Or(parse_clauses(value, &child_path, depth + 1)?),
            "$nor" => Node::Nor(parse_clauses(value, &child_path, depth + 1)?),
            "$not" => Node::Not(Box::new(parse_filter(value, &child_path, depth + 1)?)),
            op if op.starts_with('$') => return unknown_operator(op, &child_path),
            field => Node::Field(parse_path(field, &child_path)?, parse_condition(value, &child_path, depth + 1)?),
        };
        children.push(node);
    }
    Ok(match children.len() {
        1 => children.pop().expect("one child"),
        _ => Node::And(children.into()),
    })
}

fn unknown_operator<T>(op: &str, path: &str) -> Result<T, FilterError> {
    let hint = if op == "$date" { " (dates are compared as stored: ISO-8601 strings or epoch-ms numbers)" } else { "" };
    err(path, format!("unknown operator {op}{hint}"))
}

fn parse_clauses(v: &Value, path: &str, depth: usize) -> Result<Box<[Node]>, FilterError> {
    check_depth(depth, path)?;
    let Value::Array(items) = v else {
        return err(path, "expected an array of filter objects");
    };
    items.iter().enumerate().map(|(i, item)| parse_filter(item, &format!("{path}[{i}]"), depth + 1)).collect()
}

fn parse_path(field: &str, path: &str) -> Result<Box<[Segment]>, FilterError> {
    field
        .split('.')
        .map(|key| {
            if key.is_empty() {
                return err(path, "empty segment in field path");
            }
            let index = if key.bytes().all(|b| b.is_ascii_digit()) { key.parse().ok() } else { None };
            Ok(Segment { key: key.into(), index })
        })
        .collect()
}

/// Whether `map` is an operator object (all keys `$`) rather than a literal (no `$` keys).
fn is_operator_object(map: &Map<String, Value>, path: &str) -> Result<bool, FilterError> {
    let ops = map.keys().filter(|k| k.starts_with('$')).count();
    if ops > 0 && ops < map.len() {
        return err(path, "cannot mix operators and plain keys in one object");
    }
    Ok(ops > 0)
}

/// The value of a field key: an operator object or a literal for implicit equality.
fn parse_condition(v: &Value, path: &str, depth: usize) -> Result<Box<[Op]>, FilterError> {
    if let Value::Object(map) = v {
        if is_operator_object(map, path)? {
            return parse_ops(map, path, depth);
        }
    }
    Ok(Box::new([Op::Eq(parse_literal(v, path, depth)?)]))
}

fn parse_ops(map: &Map<String, Value>, path: &str, depth: usize) -> Result<Box<[Op]>, FilterError> {
    check_depth(depth, path)?;
    let mut ops = Vec::with_capacity(map.len());
    for (key, v) in map {
        let p = join(path, key);
        let d = depth + 1;
        ops.push(match key.as_str() {
            "$eq" => Op::Eq(parse_literal(v, &p, d)?),
            "$ne" => Op::Ne(parse_literal(v, &p, d)?),
            "$gt" => Op::Cmp(CmpOp::Gt, parse_bound(v, &p)?),
            "$gte" => Op::Cmp(CmpOp::Gte, parse_bound(v, &p)?),
            "$lt" => Op::Cmp(CmpOp::Lt, parse_bound(v, &p)?),
            "$lte" => Op::Cmp(CmpOp::Lte, parse_bound(v, &p)?),
            "$in" => Op::In(parse_set(v, &p, d)?),
            "$nin" => Op::Nin(parse_set(v, &p, d)?),
            "$exists" => match v {
                Value::Bool(b) => Op::Exists(*b),
                _ => return err(&p, "expected true or false"),
            },
            "$regex" => Op::Regex(parse_regex(v, map.get("$options"), &p, &join(path, "$options"))?),
            "$options" if map.contains_key("$regex") => continue,
            "$options" => return err(&p, "$options requires a sibling $regex"),
            "$contains" => Op::Contains(parse_literal(v, &p, d)?),
            "$not" => match v {
                Value::Object(inner) if !inner.is_empty() && is_operator_object(inner, &p)? => {
                    Op::Not(parse_ops(inner, &p, d)?)
                }
                _ => {
                    return err(&p, "expected a non-empty operator object such as {\"$gt\": 5}");
                }
            },
            op => return unknown_operator(op, &p),
        });
    }
    Ok(ops.into())
}

/// An equality operand. Top-level `$` keys are rejected so that operator-like
/// values (`{"$date": ..}`) fail loudly instead of never matching.
fn parse_literal(v: &Value, path: &str, depth: usize) -> Result<Lit, FilterError> {
    check_value(v, path, depth)?;
    Ok(Lit::new(v))
}

fn check_value(v: &Value, path: &str, depth: usize) -> Result<(), FilterError> {
    if let Value::Object(map) = v {
        if let Some(key) = map.keys().find(|k| k.starts_with('$')) {
            return err(path, format!("operator {key} is not allowed inside a value"));
        }
    }
    check_depth(depth - 1 + json_depth(v, MAX_DEPTH), path)
}

fn parse_bound(v: &Value, path: &str) -> Result<Bound, FilterError> {
    match v {
        Value::Number(n) => Ok(Bound::Num(Num::of(n))),
        Value::String(s) => Ok(Bound::Str(s.as_str().into())),
        _ => err(path, "expected a number or a string"),
    }
}

fn parse_set(v: &Value, path: &str, depth: usize) -> Result<ValueSet, FilterError> {
    check_depth(depth, path)?;
    let Value::Array(items) = v else {
        return err(path, "expected an array");
    };
    for (i, item) in items.iter().enumerate() {
        if matches!(item, Value::Array(_) | Value::Object(_)) {
            check_value(item, &format!("{path}[{i}]"), depth + 1)?;
        }
    }
    Ok(ValueSet::new(items))
}

fn parse_regex(v: &Value, options: Option<&Value>, path: &str, options_path: &str) -> Result<Regex, FilterError> {
    let Value::String(pattern) = v else {
        return err(path, "expected a regex string");
    };
    let mut builder = RegexBuilder::new(pattern);
    builder.size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT);
    match options {
        None => {}
        Some(Value::String(flags)) => {
            for flag in flags.chars() {
                match flag {
                    'i' => builder.case_insensitive(true),
                    'm' => builder.multi_line(true),
                    's' => builder.dot_matches_new_line(true),
                    'x' => builder.ignore_whitespace(true),
                    _ => {
                        return err(options_path, format!("unknown regex option '{flag}' (allowed: imsx)"));
                    }
                };
            }
        }
        Some(_) => return err(options_path, "expected a string of regex options"),
    }
    builder.build().or_else(|e| err(path, format!("invalid regex: {e}")))
}
