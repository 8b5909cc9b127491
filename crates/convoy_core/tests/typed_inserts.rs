//! A relational table's lone inserts go as typed columns where they can (`plan::typed_rows`):
//! whichever way a document goes, the row Postgres stores — or the error it gives — is the one
//! the JSONB statement (`(document->>'field')::type`) gives for the same document. Random
//! documents made of awkward JSON (numbers at and past every type's edge, uuids in every
//! spelling, escapes, values of the wrong kind, keys given twice or undeclared) are written both
//! ways and compared column by column.

mod common;

use std::sync::Arc;

use common::TestDatabase;
use convoy_core::document::JsonbParam;
use convoy_core::plan::{plan_insert, plan_insert_columns};
use convoy_core::{CallKind, Engine};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::json;
use uuid::Uuid;

/// The two tables, declared alike: Convoy's lone inserts write `typed`, the JSONB statement
/// writes `reference`.
const TABLES: [&str; 2] = ["typed", "reference"];
const FIELDS: [&str; 8] = ["j", "n", "i", "s", "f", "u", "r", "e"];
const ROW: &str = "(j, n, i, s, f, u, r, e)::text";

fn schema() -> serde_json::Value {
    let column = |field: &str, kind: &str, required: bool| {
        json!({ "field": field, "column": field, "type": kind, "notNull": required,
                "optional": !required, "nullable": field == "j" })
    };
    let mut enumerated = column("e", "text", false);
    enumerated["allowed"] = json!(["x", "y"]);
    let columns = json!([
        column("j", "jsonb", false),
        column("n", "double precision", false),
        column("i", "bigint", false),
        column("s", "text", false),
        column("f", "boolean", false),
        column("u", "uuid", false),
        column("r", "text", true),
        enumerated
    ]);
    let table = |name: &str| {
        json!({ "name": name, "managed": true, "relational": true, "indexes": [],
                "fields": FIELDS, "columns": columns })
    };
    json!({ "tables": [table(TABLES[0]), table(TABLES[1])] })
}

/// JSON values as written, each a hard case for some column.
const VALUES: &[&str] = &[
    "0",
    "-0",
    "-0.0",
    "42",
    "-17",
    "1.5",
    "1e5",
    "1E+2",
    "2.5e-3",
    "5.0",
    "1e400",
    "-1e400",
    "1e-400",
    "5e-324",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "12345678901234567890123",
    "0.1000000000000000055511151231257827",
    r#""""#,
    r#""x""#,
    r#""y""#,
    r#""a\"b\u00e9""#,
    r#""\ud83d\ude00""#,
    r#""\ud800""#,
    r#""true""#,
    r#""1.5""#,
    r#""42""#,
    r#""0190b3c1-7c9e-7abc-8def-0123456789ab""#,
    r#""0190B3C1-7C9E-7ABC-8DEF-0123456789AB""#,
    r#""0190b3c17c9e7abc8def0123456789ab""#,
    r#""{0190b3c1-7c9e-7abc-8def-0123456789ab}""#,
    r#""0190b3c1-7c9e7abc-8def-0123456789ab""#,
    "true",
    "false",
    "null",
    "[]",
    r#"[1,"a",null]"#,
    r#"{"k":1,"k":2}"#,
];

/// Keys as written: the declared fields, a field spelt with an escape, and one undeclared.
const KEYS: &[&str] = &["j", "n", "i", "s", "f", "u", "r", "e", "\\u0073", "zz"];

fn document() -> impl Strategy<Value = String> {
    let value = prop::sample::select(VALUES.to_vec());
    // Mostly the declared fields with a value of their kind, now and then anything anywhere.
    let field = (prop::sample::select(KEYS.to_vec()), value);
    let typical = Just(
        r#"{"j":[1],"n":1.5,"i":3,"s":"a","f":true,"u":"0190b3c1-7c9e-7abc-8def-0123456789ab","r":"x","e":"y"}"#,
    );
    (
        typical,
        prop_oneof![1 => Just(Vec::new()), 2 => prop::collection::vec(field, 1..4)],
        any::<bool>(),
    )
        .prop_map(|(typical, fields, start_typical)| {
            let mut entries: Vec<String> = if start_typical {
                vec![typical.trim_matches(['{', '}']).to_owned()]
            } else {
                vec![r#""r":"x""#.to_owned()]
            };
            entries.extend(
                fields
                    .into_iter()
                    .map(|(key, value)| format!(r#""{key}":{value}"#)),
            );
            format!("{{{}}}", entries.join(","))
        })
}

/// What writing `document` came to: the row as Postgres prints it, or that it was refused.
#[derive(Debug, PartialEq)]
enum Stored {
    Row(String),
    Refused,
}

async fn through_convoy(engine: &Arc<Engine>, db: &TestDatabase, document: &str) -> Stored {
    let (call, _answer) = engine.begin_call(CallKind::Mutation, true, None);
    let id = engine.queue_insert(call.id, TABLES[0], document).unwrap();
    if engine.finish_call(&call, true).await.is_err() {
        return Stored::Refused;
    }
    let row = db
        .psql()
        .await
        .query_one(
            &format!("SELECT {ROW} FROM typed WHERE id = $1"),
            &[&Uuid::parse_str(&id).unwrap()],
        )
        .await
        .unwrap();
    Stored::Row(row.get(0))
}

async fn through_jsonb(engine: &Arc<Engine>, db: &TestDatabase, document: &str) -> Stored {
    let sql = plan_insert(&engine.schema(), TABLES[1]).unwrap();
    let id = Uuid::now_v7();
    let client = db.psql().await;
    let inserted = client
        .execute(
            sql.as_str(),
            &[&id, &JsonbParam(document), &std::time::SystemTime::now()],
        )
        .await;
    if inserted.is_err() {
        return Stored::Refused;
    }
    let row = client
        .query_one(
            &format!("SELECT {ROW} FROM reference WHERE id = $1"),
            &[&id],
        )
        .await
        .unwrap();
    Stored::Row(row.get(0))
}

/// A runtime, a database with the two tables, its engine, and the typed insert of `typed`.
fn set_up() -> (
    tokio::runtime::Runtime,
    TestDatabase,
    Arc<Engine>,
    Arc<convoy_core::plan::ColumnsInsert>,
) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(TestDatabase::new());
    let engine = runtime.block_on(db.engine(schema()));
    let columns = plan_insert_columns(&engine.schema(), TABLES[0])
        .unwrap()
        .expect("a relational table has a typed insert");
    (runtime, db, engine, columns)
}

#[test]
fn typed_columns_store_what_the_jsonb_statement_stores() {
    let (runtime, db, engine, columns) = set_up();
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let documents: Vec<String> = prop::collection::vec(document(), 400)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let (mut typed, mut stored) = (0, 0);
    for document in &documents {
        typed += usize::from(columns.values(&[document.as_str()]).is_some());
        let convoy = runtime.block_on(through_convoy(&engine, &db, document));
        let jsonb = runtime.block_on(through_jsonb(&engine, &db, document));
        assert_eq!(convoy, jsonb, "{document}");
        stored += usize::from(matches!(convoy, Stored::Row(_)));
    }
    // Both ways were tried, and both outcomes.
    assert!(
        typed > 100 && typed < documents.len() - 100,
        "{typed} typed"
    );
    assert!(
        stored > 100 && stored < documents.len() - 50,
        "{stored} stored"
    );
}

#[test]
fn what_goes_typed_and_what_goes_as_a_document() {
    let (runtime, db, _engine, columns) = set_up();
    let typed = |document: &str| columns.values(&[document]).is_some();
    assert!(typed(
        r#"{"r":"x","n":-0,"i":-0,"u":"0190B3C1-7C9E-7ABC-8DEF-0123456789AB","j":null}"#
    ));
    assert!(typed(r#"{"r":"x","s":"a\"b"}"#));
    assert!(!typed(r#"{"r":"x","r":"y"}"#), "a key given twice");
    assert!(!typed(r#"{"r":"x","zz":1}"#), "an undeclared field");
    assert!(!typed(r#"{"\u0072":"x"}"#), "a key with an escape");
    assert!(
        !typed(r#"{"r":"x","n":"1.5"}"#),
        "a string in a number column"
    );
    assert!(
        !typed(r#"{"r":"x","i":5.0}"#),
        "an integer written as a fraction"
    );
    assert!(
        !typed(r#"{"r":"x","n":1e-400}"#),
        "an underflow Postgres refuses"
    );
    assert!(!typed(
        r#"{"r":"x","u":"0190b3c17c9e7abc8def0123456789ab"}"#
    ));
    // One row that cannot go typed sends its whole batch as documents.
    assert!(columns
        .values(&[r#"{"r":"x"}"#, r#"{"r":"x","f":"true"}"#])
        .is_none());
    // The documents table has none.
    let documents = db.engine(json!({ "tables": [{ "name": "d", "managed": true }] }));
    let documents = runtime.block_on(documents);
    assert!(plan_insert_columns(&documents.schema(), "d")
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn typed_lone_inserts_at_the_same_moment_share_statements_and_fail_alone() {
    let db = TestDatabase::new().await;
    let engine = db.engine(schema()).await;
    // Every seventh is refused (a missing required field, an enum's stranger); every fifth
    // cannot go typed and sends its batch as documents.
    let documents: Vec<String> = (0..70)
        .map(|n| match (n % 7, n % 5) {
            (3, _) => format!(r#"{{"s":"no r {n}"}}"#),
            (6, _) => format!(r#"{{"r":"x","e":"z","s":"bad e {n}"}}"#),
            (_, 0) => format!(r#"{{"r":"x","n":"1.5","s":"as a document {n}"}}"#),
            _ => format!(r#"{{"r":"x","n":{n}.5,"s":"typed {n}"}}"#),
        })
        .collect();
    let answers = futures_util::future::join_all(documents.iter().map(|document| {
        let engine = engine.clone();
        async move {
            let (call, _answer) = engine.begin_call(CallKind::Mutation, true, None);
            engine.queue_insert(call.id, TABLES[0], document).unwrap();
            engine.finish_call(&call, true).await
        }
    }))
    .await;
    let mut refused = Vec::new();
    for (document, answer) in documents.iter().zip(&answers) {
        if let Err(error) = answer {
            refused.push(document.clone());
            assert!(
                document.contains("no r") || document.contains("bad e"),
                "{document}: {error}"
            );
        }
    }
    assert_eq!(refused.len(), 20);
    let rows = db
        .psql()
        .await
        .query("SELECT s, n FROM typed ORDER BY s", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 50);
    for row in rows {
        let (s, n): (String, f64) = (row.get(0), row.get(1));
        let number: f64 = s.rsplit(' ').next().unwrap().parse().unwrap();
        let expected = if s.starts_with("as a document") {
            1.5
        } else {
            number + 0.5
        };
        assert_eq!(n.to_bits(), expected.to_bits(), "{s}: {n}");
    }
    let stats = engine.group_commit_stats();
    assert_eq!(stats.rows, 70);
    assert!(stats.statements < 20, "{stats:?}");
}
