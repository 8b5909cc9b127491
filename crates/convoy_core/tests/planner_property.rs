//! A property test of the planner (proptest): random filters, index ranges, orders, limits and
//! pages over random documents return exactly what a straightforward in-memory evaluation
//! returns — on a document table, and on a relational table holding the same documents (SPEC §3:
//! the same results for the same data, ordering included).
//!
//! The documents have fields of every kind of column: `a` and `b` hold any JSON value (a `jsonb`
//! column), `n` a number, `i` an integer, `s` a string, `f` a boolean (each optional: a typed
//! column whose NULL is a missing field), and `m` a string or `null` (required and nullable: a
//! typed column whose NULL is JSON `null`). Filters compare any field with values of any kind.
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

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0u64..6).prop_map(Value::from),
        1 => (0u64..6).prop_map(|half| Value::from(half as f64 + 0.5)),
    ]
}

fn integer() -> impl Strategy<Value = Value> {
    (0i64..6).prop_map(Value::from)
}

fn string() -> impl Strategy<Value = Value> {
    prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(Value::from)
}

/// A value: null, a boolean, a small number or a short string — few of each, so that
/// equalities and ties happen often.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        4 => number(),
        4 => string(),
    ]
}

/// The fields of the documents, each with the values it holds (`None`: the field is missing).
const FIELDS: [&str; 7] = ["a", "b", "n", "i", "s", "f", "m"];

fn document() -> impl Strategy<Value = Vec<Option<Value>>> {
    let optional = |strategy: BoxedStrategy<Value>| prop::option::weighted(0.85, strategy);
    (
        optional(value().boxed()),
        optional(value().boxed()),
        optional(number().boxed()),
        optional(integer().boxed()),
        optional(string().boxed()),
        optional(any::<bool>().prop_map(Value::from).boxed()),
        prop_oneof![3 => string(), 1 => Just(Value::Null)].prop_map(Some),
    )
        .prop_map(|(a, b, n, i, s, f, m)| vec![a, b, n, i, s, f, m])
}

fn field_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(FIELDS.to_vec())
}

/// The two tables the same documents go to, and the schema both are declared in.
const TABLES: [&str; 2] = ["items", "items_relational"];

fn schema() -> Value {
    let indexes = json!([
        { "name": "by_a", "fields": ["a"] },
        { "name": "by_a_b", "fields": ["a", "b"] },
        { "name": "by_s", "fields": ["s"] },
        { "name": "by_m_n", "fields": ["m", "n"] },
        { "name": "by_i", "fields": ["i"] }
    ]);
    let column = |field: &str, kind: &str, optional: bool, nullable: bool| {
        json!({ "field": field, "column": format!("{field}_col"), "type": kind,
                "notNull": !optional && !nullable, "optional": optional, "nullable": nullable })
    };
    let columns = json!([
        column("a", "jsonb", true, true),
        column("b", "jsonb", true, true),
        column("n", "double precision", true, false),
        column("i", "bigint", true, false),
        column("s", "text", true, false),
        column("f", "boolean", true, false),
        column("m", "text", false, true)
    ]);
    json!({ "tables": [
        { "name": TABLES[0], "managed": true, "indexes": indexes, "fields": FIELDS, "columns": columns },
        { "name": TABLES[1], "managed": true, "relational": true, "indexes": indexes, "fields": FIELDS, "columns": columns }
    ] })
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
    fields: Vec<Option<Value>>,
}

impl Doc {
    fn field(&self, name: &str) -> Option<&Value> {
        let position = FIELDS.iter().position(|field| *field == name).unwrap();
        self.fields[position].as_ref()
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

/// An index range (or none), a filter (or none), an order, a limit (or none) and a page size
/// (or none: the query is collected, not paginated).
fn plan() -> impl Strategy<Value = (Value, Option<u32>)> {
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
        (prop::sample::select(OPS[2..].to_vec()), value()).prop_map(|(op, s)| json!({
            "name": "by_s",
            "range": [{ "field": "s", "op": op, "value": s }]
        })),
        (value(), prop::sample::select(OPS[2..].to_vec()), value()).prop_map(|(m, op, n)| json!({
            "name": "by_m_n",
            "eq": [{ "field": "m", "value": m }],
            "range": [{ "field": "n", "op": op, "value": n }]
        })),
        value().prop_map(|i| json!({ "name": "by_i", "eq": [{ "field": "i", "value": i }] })),
        Just(Value::Null),
        Just(Value::Null),
    ];
    (
        index,
        prop::option::weighted(0.7, filter()),
        prop::sample::select(vec!["asc", "desc"]),
        prop::option::of(field_name()),
        prop::option::weighted(0.4, 0u64..15),
        prop::option::weighted(0.25, 1u32..7),
    )
        .prop_map(|(index, filter, dir, field, limit, page)| {
            let plan = json!({
                "index": index,
                "filter": filter,
                "order": { "dir": dir, "field": field },
                // A page size replaces the limit.
                "limit": if page.is_some() { None } else { limit },
            });
            (plan, page)
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

/// Every page of `plan`, `size` documents at a time, one cursor after the other: the ids in order.
async fn all_pages(
    engine: &Arc<Engine>,
    plan: &Value,
    size: u32,
) -> convoy_core::Result<Vec<String>> {
    let plan = convoy_core::plan::QueryPlan::from_json(&plan.to_string())?;
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..200 {
        let page = in_call(engine, CallKind::Query, |call| {
            let engine = engine.clone();
            let cursor = cursor.clone();
            let plan = &plan;
            async move { engine.paginate(call, plan, cursor.as_deref(), size).await }
        })
        .await?;
        let page: Value = serde_json::from_str(&page).unwrap();
        ids.extend(
            page["page"]
                .as_array()
                .unwrap()
                .iter()
                .map(|doc| doc["_id"].as_str().unwrap().to_owned()),
        );
        if page["isDone"] == true {
            return Ok(ids);
        }
        cursor = Some(page["continueCursor"].as_str().unwrap().to_owned());
    }
    panic!("200 pages and not done: {plan:?}");
}

/// 400 random plans (proptest, seeded by the test's name so that a failure reproduces) over 160
/// random documents, on both tables; a failing plan is shrunk to a smallest one that still fails.
#[test]
fn random_queries_match_an_in_memory_evaluation_on_both_storages() {
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
    let engine: Arc<Engine> = runtime.block_on(db.engine(schema()));

    let documents: Vec<Vec<Option<Value>>> = prop::collection::vec(document(), 160)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let docs: Vec<Vec<Doc>> = TABLES
        .iter()
        .map(|table| {
            let ids = runtime
                .block_on(in_mutation(&engine, |call| {
                    let engine = engine.clone();
                    let documents = documents.clone();
                    async move {
                        let mut ids = Vec::new();
                        for fields in documents {
                            let document: serde_json::Map<String, Value> = FIELDS
                                .iter()
                                .zip(fields)
                                .filter_map(|(name, value)| Some(((*name).to_owned(), value?)))
                                .collect();
                            ids.push(
                                engine
                                    .insert(call, table, &Value::Object(document).to_string())
                                    .await?,
                            );
                        }
                        Ok(ids)
                    }
                }))
                .unwrap();
            ids.into_iter()
                .zip(documents.clone())
                .map(|(id, fields)| Doc { id, fields })
                .collect()
        })
        .collect();

    runner
        .run(&plan(), |(plan, page)| {
            for (table, docs) in TABLES.iter().zip(&docs) {
                let mut plan = plan.clone();
                plan["table"] = json!(table);
                let want = expected(docs, &plan);
                let got = match page {
                    Some(size) => runtime.block_on(all_pages(&engine, &plan, size)),
                    None => runtime
                        .block_on(in_call(&engine, CallKind::Query, |call| {
                            let engine = engine.clone();
                            let plan = convoy_core::plan::QueryPlan::from_json(&plan.to_string());
                            async move { engine.query(call, &plan?).await }
                        }))
                        .map(|got| {
                            serde_json::from_str::<Vec<Value>>(&got)
                                .unwrap()
                                .iter()
                                .map(|doc| doc["_id"].as_str().unwrap().to_owned())
                                .collect()
                        }),
                }
                .map_err(|error| TestCaseError::fail(format!("{plan} (page {page:?}): {error}")))?;
                prop_assert_eq!(got, want, "{} (page {:?})", plan, page);
            }
            Ok(())
        })
        .unwrap();
}

/// A relational table gives back each document exactly as it was written: missing fields
/// missing, `null` as `null`, numbers as numbers.
#[test]
fn a_relational_table_reads_back_what_was_written() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let db = runtime.block_on(TestDatabase::new());
    let engine: Arc<Engine> = runtime.block_on(db.engine(schema()));
    let documents: Vec<Vec<Option<Value>>> = prop::collection::vec(document(), 60)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    for fields in documents {
        let written: serde_json::Map<String, Value> = FIELDS
            .iter()
            .zip(fields)
            .filter_map(|(name, value)| Some(((*name).to_owned(), value?)))
            .collect();
        let read = runtime
            .block_on(in_mutation(&engine, |call| {
                let engine = engine.clone();
                let written = Value::Object(written.clone()).to_string();
                async move {
                    let id = engine.insert(call, TABLES[1], &written).await?;
                    engine.get(call, Some(TABLES[1]), &id).await
                }
            }))
            .unwrap();
        let mut read: Value = serde_json::from_str(&read.expect("the document is there")).unwrap();
        let read = read.as_object_mut().unwrap();
        read.remove("_id");
        read.remove("_creationTime");
        assert_eq!(read, &written);
    }
}
