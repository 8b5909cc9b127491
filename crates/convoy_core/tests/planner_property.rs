//! A property test of the planner: random filters, index ranges, orders and limits over random
//! documents return exactly what a straightforward in-memory evaluation returns.
//!
//! The in-memory side spells out the semantics Convoy promises (docs/data-api.md): JSONB's total
//! order across kinds, a missing field as SQL NULL (three-valued logic inside and/or, `not` of an
//! unknown is true, `neq` is IS DISTINCT FROM), missing sort keys last ascending and first
//! descending, ties broken by id.

mod common;

use std::cmp::Ordering;
use std::sync::Arc;

use common::{in_call, in_mutation, TestDatabase};
use convoy_core::{CallKind, Engine};
use serde_json::{json, Value};

/// xorshift64*: a fixed seed makes every failure reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn pick<T: Clone>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len())].clone()
}

fn random_value(rng: &mut Rng) -> Value {
    match rng.below(10) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2..=5 => json!(rng.below(6)),
        _ => json!(pick(rng, &["a", "b", "c", "d"])),
    }
}

/// A field's value in a document, or None when the document lacks it (SQL NULL).
fn random_field(rng: &mut Rng) -> Option<Value> {
    (!rng.chance(15)).then(|| random_value(rng))
}

/// JSONB's order: null < strings < numbers < booleans (< arrays < objects, unused here).
fn jsonb_cmp(left: &Value, right: &Value) -> Ordering {
    let rank = |value: &Value| match value {
        Value::Null => 0,
        Value::String(_) => 1,
        Value::Number(_) => 2,
        Value::Bool(_) => 3,
        _ => 4,
    };
    match (left, right) {
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::Number(a), Value::Number(b)) => a.as_f64().unwrap().total_cmp(&b.as_f64().unwrap()),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        _ => rank(left).cmp(&rank(right)),
    }
}

const OPS: [&str; 6] = ["eq", "neq", "lt", "lte", "gt", "gte"];

fn compare(op: &str, left: Option<&Value>, right: Option<&Value>) -> Option<bool> {
    if op == "neq" {
        // IS DISTINCT FROM: never unknown.
        return Some(match (left, right) {
            (None, None) => false,
            (Some(a), Some(b)) => jsonb_cmp(a, b) != Ordering::Equal,
            _ => true,
        });
    }
    let ordering = jsonb_cmp(left?, right?);
    Some(match op {
        "eq" => ordering == Ordering::Equal,
        "lt" => ordering == Ordering::Less,
        "lte" => ordering != Ordering::Greater,
        "gt" => ordering == Ordering::Greater,
        "gte" => ordering != Ordering::Less,
        _ => unreachable!(),
    })
}

struct Doc {
    id: String,
    fields: [Option<Value>; 2],
}

impl Doc {
    fn field(&self, name: &str) -> Option<&Value> {
        self.fields[usize::from(name == "b")].as_ref()
    }
}

fn random_operand(rng: &mut Rng) -> Value {
    if rng.chance(20) {
        json!({ "field": pick(rng, &["a", "b"]) })
    } else {
        json!({ "value": random_value(rng) })
    }
}

fn random_filter(rng: &mut Rng, depth: usize) -> Value {
    match if depth >= 3 { 0 } else { rng.below(5) } {
        0 | 1 => json!({
            "cmp": pick(rng, &OPS),
            "left": { "field": pick(rng, &["a", "b"]) },
            "right": random_operand(rng),
        }),
        2 => {
            json!({ "and": (0..=rng.below(3)).map(|_| random_filter(rng, depth + 1)).collect::<Vec<_>>() })
        }
        3 => {
            json!({ "or": (0..=rng.below(3)).map(|_| random_filter(rng, depth + 1)).collect::<Vec<_>>() })
        }
        _ => json!({ "not": random_filter(rng, depth + 1) }),
    }
}

fn operand<'a>(doc: &'a Doc, operand: &'a Value) -> Option<&'a Value> {
    match operand.get("field") {
        Some(field) => doc.field(field.as_str().unwrap()),
        None => operand.get("value"),
    }
}

fn evaluate(doc: &Doc, filter: &Value) -> Option<bool> {
    if let Some(parts) = filter.get("and") {
        let results: Vec<_> = parts
            .as_array()
            .unwrap()
            .iter()
            .map(|part| evaluate(doc, part))
            .collect();
        if results.contains(&Some(false)) {
            return Some(false);
        }
        return if results.contains(&None) {
            None
        } else {
            Some(true)
        };
    }
    if let Some(parts) = filter.get("or") {
        let results: Vec<_> = parts
            .as_array()
            .unwrap()
            .iter()
            .map(|part| evaluate(doc, part))
            .collect();
        if results.contains(&Some(true)) {
            return Some(true);
        }
        return if results.contains(&None) {
            None
        } else {
            Some(false)
        };
    }
    if let Some(inner) = filter.get("not") {
        return Some(!evaluate(doc, inner).unwrap_or(false));
    }
    compare(
        filter["cmp"].as_str().unwrap(),
        operand(doc, &filter["left"]),
        operand(doc, &filter["right"]),
    )
}

fn random_plan(rng: &mut Rng) -> Value {
    let index = match rng.below(4) {
        0 => json!({ "name": "by_a", "eq": [{ "field": "a", "value": random_value(rng) }] }),
        1 => json!({ "name": "by_a", "range": [
            { "field": "a", "op": pick(rng, &["gt", "gte"]), "value": random_value(rng) },
            { "field": "a", "op": pick(rng, &["lt", "lte"]), "value": random_value(rng) }
        ] }),
        2 => json!({ "name": "by_a_b",
            "eq": [{ "field": "a", "value": random_value(rng) }],
            "range": [{ "field": "b", "op": pick(rng, &OPS[2..]), "value": random_value(rng) }] }),
        _ => Value::Null,
    };
    json!({
        "table": "items",
        "index": index,
        "filter": if rng.chance(70) { random_filter(rng, 0) } else { Value::Null },
        "order": { "dir": pick(rng, &["asc", "desc"]), "field": pick(rng, &[json!("a"), json!("b"), Value::Null]) },
        "limit": if rng.chance(40) { json!(rng.below(15)) } else { Value::Null },
    })
}

fn expected(docs: &[Doc], plan: &Value) -> Vec<String> {
    let mut conditions: Vec<Value> = Vec::new();
    if let Some(index) = plan["index"].as_object() {
        for eq in index
            .get("eq")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            conditions.push(json!({ "cmp": "eq", "left": { "field": eq["field"] }, "right": { "value": eq["value"] } }));
        }
        for bound in index
            .get("range")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            conditions.push(json!({ "cmp": bound["op"], "left": { "field": bound["field"] }, "right": { "value": bound["value"] } }));
        }
    }
    if !plan["filter"].is_null() {
        conditions.push(plan["filter"].clone());
    }
    let mut matching: Vec<&Doc> = docs
        .iter()
        .filter(|doc| {
            conditions
                .iter()
                .all(|condition| evaluate(doc, condition) == Some(true))
        })
        .collect();
    let desc = plan["order"]["dir"] == "desc";
    let field = plan["order"]["field"].as_str();
    matching.sort_by(|x, y| {
        let by_key = match field {
            // Missing keys are NULL: last ascending, first descending — i.e. "greatest".
            Some(field) => match (x.field(field), y.field(field)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => jsonb_cmp(a, b),
            },
            // By creation time: the UUIDv7 ids sort the same way.
            None => Ordering::Equal,
        };
        let ordering = by_key.then_with(|| x.id.cmp(&y.id));
        if desc {
            ordering.reverse()
        } else {
            ordering
        }
    });
    let limit = plan["limit"]
        .as_u64()
        .map_or(usize::MAX, |limit| limit as usize);
    matching
        .into_iter()
        .take(limit)
        .map(|doc| doc.id.clone())
        .collect()
}

#[tokio::test]
async fn random_queries_match_an_in_memory_evaluation() {
    let db = TestDatabase::new().await;
    let engine: Arc<Engine> = db
        .engine(
            json!({ "tables": [{ "name": "items", "managed": true, "indexes": [
            { "name": "by_a", "fields": ["a"] },
            { "name": "by_a_b", "fields": ["a", "b"] }
        ] }] }),
        )
        .await;
    let mut rng = Rng(0x5eed_c0ff_ee00_0001);

    let mut docs = Vec::new();
    let fields: Vec<[Option<Value>; 2]> = (0..160)
        .map(|_| [random_field(&mut rng), random_field(&mut rng)])
        .collect();
    let ids = in_mutation(&engine, |call| {
        let engine = engine.clone();
        let fields = fields.clone();
        async move {
            let mut ids = Vec::new();
            for [a, b] in fields {
                let mut document = serde_json::Map::new();
                if let Some(a) = a {
                    document.insert("a".into(), a);
                }
                if let Some(b) = b {
                    document.insert("b".into(), b);
                }
                ids.push(
                    engine
                        .insert(call, "items", &Value::Object(document).to_string())
                        .await?,
                );
            }
            Ok(ids)
        }
    })
    .await
    .unwrap();
    for (id, fields) in ids.into_iter().zip(fields) {
        docs.push(Doc { id, fields });
    }

    for case in 0..400 {
        let plan = random_plan(&mut rng);
        let want = expected(&docs, &plan);
        let got = in_call(&engine, CallKind::Query, |call| {
            let engine = engine.clone();
            let plan = convoy_core::plan::QueryPlan::from_json(&plan.to_string());
            async move { engine.query(call, &plan?).await }
        })
        .await
        .unwrap_or_else(|error| panic!("case {case}: {plan}: {error}"));
        let got: Vec<String> = serde_json::from_str::<Vec<Value>>(&got)
            .unwrap()
            .iter()
            .map(|doc| doc["_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, want, "case {case}: {plan}");
    }
}
