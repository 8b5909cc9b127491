//! A property test of the planner (proptest): random filters, index ranges, orders and limits over random
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
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Value};

/// A field value: null, a boolean, a small number or a short string — few of each, so that
/// equalities and ties happen often.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        4 => (0u64..6).prop_map(Value::from),
        4 => prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(Value::from),
    ]
}

/// A field's value in a document, or None when the document lacks it (SQL NULL).
fn field_value() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(0.85, value())
}

fn field_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b"])
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

fn operand_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => field_name().prop_map(|field| json!({ "field": field })),
        4 => value().prop_map(|value| json!({ "value": value })),
    ]
}

/// A filter tree up to three levels deep: comparisons under `and`, `or` and `not`.
fn filter() -> impl Strategy<Value = Value> {
    let comparison = (
        prop::sample::select(OPS.to_vec()),
        field_name(),
        operand_strategy(),
    )
        .prop_map(
            |(op, field, right)| json!({ "cmp": op, "left": { "field": field }, "right": right }),
        );
    comparison.prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..=3).prop_map(|and| json!({ "and": and })),
            prop::collection::vec(inner.clone(), 1..=3).prop_map(|or| json!({ "or": or })),
            inner.prop_map(|not| json!({ "not": not })),
        ]
    })
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

/// An index range (or none), a filter (or none), an order and a limit (or none).
fn plan() -> impl Strategy<Value = Value> {
    let index = prop_oneof![
        value()
            .prop_map(|value| json!({ "name": "by_a", "eq": [{ "field": "a", "value": value }] })),
        (
            prop::sample::select(vec!["gt", "gte"]),
            value(),
            prop::sample::select(vec!["lt", "lte"]),
            value()
        )
            .prop_map(
                |(low_op, low, high_op, high)| json!({ "name": "by_a", "range": [
                { "field": "a", "op": low_op, "value": low },
                { "field": "a", "op": high_op, "value": high }
            ] })
            ),
        (value(), prop::sample::select(OPS[2..].to_vec()), value()).prop_map(|(a, op, b)| json!({
            "name": "by_a_b",
            "eq": [{ "field": "a", "value": a }],
            "range": [{ "field": "b", "op": op, "value": b }]
        })),
        Just(Value::Null),
    ];
    (
        index,
        prop::option::weighted(0.7, filter()),
        prop::sample::select(vec!["asc", "desc"]),
        prop::option::of(field_name()),
        prop::option::weighted(0.4, 0u64..15),
    )
        .prop_map(|(index, filter, dir, field, limit)| {
            json!({
                "table": "items",
                "index": index,
                "filter": filter,
                "order": { "dir": dir, "field": field },
                "limit": limit,
            })
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

/// 400 random plans (proptest, seeded by the test's name so that a failure reproduces) over 160
/// random documents; a failing plan is shrunk to a smallest one that still fails.
#[test]
fn random_queries_match_an_in_memory_evaluation() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 400,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let db = runtime.block_on(TestDatabase::new());
    let engine: Arc<Engine> = runtime.block_on(db.engine(json!({ "tables": [
        { "name": "items", "managed": true, "indexes": [
            { "name": "by_a", "fields": ["a"] },
            { "name": "by_a_b", "fields": ["a", "b"] }
        ] }
    ] })));

    let fields: Vec<[Option<Value>; 2]> =
        prop::collection::vec([field_value(), field_value()], 160)
            .new_tree(&mut runner)
            .unwrap()
            .current();
    let ids = runtime
        .block_on(in_mutation(&engine, |call| {
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
        }))
        .unwrap();
    let docs: Vec<Doc> = ids
        .into_iter()
        .zip(fields)
        .map(|(id, fields)| Doc { id, fields })
        .collect();

    runner
        .run(&plan(), |plan| {
            let want = expected(&docs, &plan);
            let got = runtime
                .block_on(in_call(&engine, CallKind::Query, |call| {
                    let engine = engine.clone();
                    let plan = convoy_core::plan::QueryPlan::from_json(&plan.to_string());
                    async move { engine.query(call, &plan?).await }
                }))
                .map_err(|error| TestCaseError::fail(format!("{plan}: {error}")))?;
            let got: Vec<String> = serde_json::from_str::<Vec<Value>>(&got)
                .unwrap()
                .iter()
                .map(|doc| doc["_id"].as_str().unwrap().to_owned())
                .collect();
            prop_assert_eq!(got, want, "{}", plan);
            Ok(())
        })
        .unwrap();
}
