//! Matching reads against writes, payloads, and the log.

use super::*;
use crate::schema::Schema;
use serde_json::json;
use serde_json::Value;
use uuid::Uuid;

use super::commit_log::LOG_CAPACITY;

fn schema() -> Schema {
    Schema::from_json(
        &json!({ "tables": [
            { "name": "projects", "managed": true, "indexes": [
                { "name": "by_userId", "fields": ["userId", "createdAt"] }
            ] }
        ] })
        .to_string(),
    )
    .unwrap()
}

fn by_user(user: &str) -> ReadSet {
    ReadSet {
        ranges: vec![IndexRead {
            table: "projects".into(),
            index: "by_userId".into(),
            prefix: vec![Key::of(Some(&json!(user)))],
        }],
        ..ReadSet::default()
    }
}

fn write(old: Option<Value>, new: Option<Value>) -> WriteSet {
    WriteSet {
        everything: false,
        writes: vec![Write {
            table: "projects".into(),
            id: Some(Uuid::now_v7()),
            old,
            new,
        }],
    }
}

#[test]
fn a_write_wakes_the_reads_of_its_old_and_new_keys_only() {
    let schema = schema();
    let insert_a = write(None, Some(json!({ "userId": "a", "createdAt": 1 })));
    assert!(by_user("a").touched_by(&insert_a, &schema));
    assert!(!by_user("b").touched_by(&insert_a, &schema));
    // Moving a project from a to b changes both lists.
    let moved = write(
        Some(json!({ "userId": "a" })),
        Some(json!({ "userId": "b" })),
    );
    assert!(by_user("a").touched_by(&moved, &schema));
    assert!(by_user("b").touched_by(&moved, &schema));
    assert!(!by_user("c").touched_by(&moved, &schema));
}

#[test]
fn numbers_match_as_jsonb_compares_them() {
    assert_eq!(Key::of(Some(&json!(1))), Key::of(Some(&json!(1.0))));
    assert_ne!(Key::of(Some(&json!(1))), Key::of(Some(&json!("1"))));
    assert_eq!(Key::of(None), Key::of(Some(&Value::Null)));
    assert_eq!(
        Key::of(Some(&json!({ "b": 1, "a": [2] }))),
        Key::of(Some(&json!({ "a": [2.0], "b": 1.0 })))
    );
}

#[test]
fn tables_ids_and_raw_sql_are_coarse_and_safe() {
    let schema = schema();
    let insert = write(None, Some(json!({ "userId": "a" })));
    let mut table = ReadSet::default();
    table.tables.insert("projects".into());
    assert!(table.touched_by(&insert, &schema));
    assert!(ReadSet::everything().touched_by(&insert, &schema));
    let raw = WriteSet {
        everything: true,
        writes: vec![],
    };
    assert!(by_user("z").touched_by(&raw, &schema));
    let mut other = ReadSet::default();
    other.tables.insert("users".into());
    assert!(!other.touched_by(&insert, &schema));
}

#[test]
fn payloads_carry_indexed_fields_and_fall_back_to_tables() {
    let schema = schema();
    let commit = write(
        Some(json!({ "userId": "a", "name": "old", "createdAt": 1 })),
        Some(json!({ "userId": "b", "name": "new", "createdAt": 1 })),
    );
    let payload = commit.to_payload("me", &schema);
    assert!(
        !payload.contains("\"name\""),
        "only indexed fields travel: {payload}"
    );
    let (origin, received) = WriteSet::from_payload(&payload).unwrap();
    assert_eq!(origin, "me");
    assert!(by_user("a").touched_by(&received, &schema));
    assert!(by_user("b").touched_by(&received, &schema));
    assert!(!by_user("c").touched_by(&received, &schema));

    let many = WriteSet {
        everything: false,
        writes: (0..500)
            .map(|n| Write {
                table: "projects".into(),
                id: Some(Uuid::now_v7()),
                old: None,
                new: Some(json!({ "userId": format!("user {n}") })),
            })
            .collect(),
    };
    let payload = many.to_payload("me", &schema);
    assert!(payload.len() < 8000);
    let (_, received) = WriteSet::from_payload(&payload).unwrap();
    assert!(
        by_user("anyone").touched_by(&received, &schema),
        "the table alone wakes every read of it"
    );
}

#[test]
fn the_log_answers_what_came_after_a_position() {
    let log = CommitLog::default();
    assert_eq!(log.position(), 0);
    let schema = schema();
    let first = log.append(write(None, Some(json!({ "userId": "a" }))).into());
    let second = log.append(write(None, Some(json!({ "userId": "b" }))).into());
    assert_eq!((first, second), (1, 2));
    assert!(log.touched_since(0, &by_user("a"), &schema));
    assert!(!log.touched_since(1, &by_user("a"), &schema));
    assert!(log.touched_since(1, &by_user("b"), &schema));
    for _ in 0..LOG_CAPACITY {
        log.append(WriteSet::default().into());
    }
    assert!(
        log.since(1).is_none(),
        "forgotten commits count as touching"
    );
    assert!(log.touched_since(1, &by_user("nobody"), &schema));
}
