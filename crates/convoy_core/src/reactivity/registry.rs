//! The subscription registry: live queries indexed by what they read, so that a commit finds the
//! queries it may have changed in O(those queries), not O(every query). The heart of precise
//! invalidation; [`ReadSet::touched_by`] is its one-query twin, and the two must agree.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use uuid::Uuid;

use super::read_set::{Key, ReadSet};
use super::write_set::WriteSet;
use crate::schema::Schema;

/// `T` is what the registry holds for each query, found again by its number.
pub struct Registry<T> {
    queries: HashMap<u64, (T, ReadSet)>,
    everything: HashSet<u64>,
    tables: HashMap<String, HashSet<u64>>,
    ids: HashMap<Uuid, HashSet<u64>>,
    /// (table, index, equality prefix).
    ranges: HashMap<(String, String, Vec<Key>), HashSet<u64>>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self {
            queries: HashMap::new(),
            everything: HashSet::new(),
            tables: HashMap::new(),
            ids: HashMap::new(),
            ranges: HashMap::new(),
        }
    }
}

impl<T> Registry<T> {
    /// Records what query `number` read on its last run, replacing what it read before.
    pub fn set(&mut self, number: u64, query: T, reads: ReadSet) {
        self.remove(number);
        if reads.everything {
            self.everything.insert(number);
        }
        for table in &reads.tables {
            self.tables.entry(table.clone()).or_default().insert(number);
        }
        for id in &reads.ids {
            self.ids.entry(*id).or_default().insert(number);
        }
        for range in &reads.ranges {
            let key = (
                range.table.clone(),
                range.index.clone(),
                range.prefix.clone(),
            );
            self.ranges.entry(key).or_default().insert(number);
        }
        self.queries.insert(number, (query, reads));
    }

    /// Forgets query `number`; returns what it held.
    pub fn remove(&mut self, number: u64) -> Option<T> {
        let (query, reads) = self.queries.remove(&number)?;
        self.everything.remove(&number);
        for table in reads.tables {
            forget(&mut self.tables, table, number);
        }
        for id in reads.ids {
            forget(&mut self.ids, id, number);
        }
        for range in reads.ranges {
            forget(
                &mut self.ranges,
                (range.table, range.index, range.prefix),
                number,
            );
        }
        Some(query)
    }

    pub fn get(&self, number: u64) -> Option<&T> {
        self.queries.get(&number).map(|(query, _)| query)
    }

    pub fn len(&self) -> usize {
        self.queries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Adds to `out` the numbers of the queries `commit` may have changed.
    pub fn touched(&self, commit: &WriteSet, schema: &Schema, out: &mut HashSet<u64>) {
        if commit.everything {
            out.extend(self.queries.keys());
            return;
        }
        out.extend(&self.everything);
        for write in &commit.writes {
            if let Some(numbers) = self.tables.get(&write.table) {
                out.extend(numbers);
            }
            let Some(id) = write.id else {
                // Known only by its table: every read of the table (rare; a scan is fine).
                for ((table, _, _), numbers) in &self.ranges {
                    if *table == write.table {
                        out.extend(numbers);
                    }
                }
                continue;
            };
            if let Some(numbers) = self.ids.get(&id) {
                out.extend(numbers);
            }
            let Ok(table) = schema.table(&write.table) else {
                continue;
            };
            for index in &table.indexes {
                for document in [&write.old, &write.new].into_iter().flatten() {
                    let values: Vec<Key> = index
                        .fields
                        .iter()
                        .map(|field| Key::of(document.get(field)))
                        .collect();
                    // A read whose prefix is any leading part of this key holds the document.
                    for length in 0..=values.len() {
                        let key = (
                            write.table.clone(),
                            index.name.clone(),
                            values[..length].to_vec(),
                        );
                        if let Some(numbers) = self.ranges.get(&key) {
                            out.extend(numbers);
                        }
                    }
                }
            }
        }
    }
}

fn forget<K: Hash + Eq>(map: &mut HashMap<K, HashSet<u64>>, key: K, number: u64) {
    if let Some(set) = map.get_mut(&key) {
        set.remove(&number);
        if set.is_empty() {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::reactivity::{IndexRead, Write};

    fn schema() -> Schema {
        Schema::from_json(
            &json!({ "tables": [
                { "name": "projects", "managed": true, "indexes": [
                    { "name": "by_user_status", "fields": ["userId", "status"] }
                ] },
                { "name": "events", "managed": false, "indexes": [] }
            ] })
            .to_string(),
        )
        .unwrap()
    }

    fn range(prefix: &[Value]) -> ReadSet {
        ReadSet {
            ranges: vec![IndexRead {
                table: "projects".into(),
                index: "by_user_status".into(),
                prefix: prefix.iter().map(|value| Key::of(Some(value))).collect(),
            }],
            ..ReadSet::default()
        }
    }

    fn commit(id: Option<Uuid>, old: Option<Value>, new: Option<Value>) -> WriteSet {
        WriteSet {
            everything: false,
            writes: vec![Write {
                table: "projects".into(),
                id,
                old,
                new,
            }],
        }
    }

    fn touched(registry: &Registry<&'static str>, commit: &WriteSet) -> Vec<&'static str> {
        let mut numbers = HashSet::new();
        registry.touched(commit, &schema(), &mut numbers);
        let mut names: Vec<&str> = numbers
            .into_iter()
            .map(|number| *registry.get(number).unwrap())
            .collect();
        names.sort_unstable();
        names
    }

    /// Each kind of read, one query each.
    fn registry() -> Registry<&'static str> {
        let mut registry = Registry::default();
        registry.set(1, "alice", range(&[json!("alice")]));
        registry.set(2, "alice-active", range(&[json!("alice"), json!("active")]));
        registry.set(3, "bob", range(&[json!("bob")]));
        registry.set(4, "every-project", range(&[]));
        let mut table = ReadSet::default();
        table.tables.insert("projects".into());
        registry.set(5, "scan", table);
        registry.set(6, "raw", ReadSet::everything());
        registry
    }

    #[test]
    fn an_insert_wakes_the_ranges_holding_its_key_and_no_other_users() {
        let registry = registry();
        let insert = commit(
            Some(Uuid::nil()),
            None,
            Some(json!({ "userId": "alice", "status": "done" })),
        );
        assert_eq!(
            touched(&registry, &insert),
            ["alice", "every-project", "raw", "scan"]
        );
    }

    #[test]
    fn an_update_wakes_the_ranges_of_its_old_and_new_keys() {
        let registry = registry();
        let moved = commit(
            Some(Uuid::nil()),
            Some(json!({ "userId": "alice", "status": "active" })),
            Some(json!({ "userId": "bob", "status": "active" })),
        );
        assert_eq!(
            touched(&registry, &moved),
            [
                "alice",
                "alice-active",
                "bob",
                "every-project",
                "raw",
                "scan"
            ]
        );
    }

    #[test]
    fn numbers_match_as_jsonb_compares_them() {
        let mut registry = Registry::default();
        registry.set(1, "one", range(&[json!(1)]));
        let write = commit(Some(Uuid::nil()), None, Some(json!({ "userId": 1.0 })));
        assert_eq!(touched(&registry, &write), ["one"]);
    }

    #[test]
    fn a_get_is_woken_by_its_id_only() {
        let mut registry = Registry::default();
        let id = Uuid::now_v7();
        let mut reads = ReadSet::default();
        reads.ids.insert(id);
        registry.set(1, "get", reads);
        assert_eq!(touched(&registry, &commit(Some(id), None, None)), ["get"]);
        assert!(touched(&registry, &commit(Some(Uuid::nil()), None, None)).is_empty());
    }

    #[test]
    fn a_write_known_only_by_its_table_wakes_every_read_of_the_table() {
        let registry = registry();
        assert_eq!(
            touched(&registry, &commit(None, None, None)),
            [
                "alice",
                "alice-active",
                "bob",
                "every-project",
                "raw",
                "scan"
            ]
        );
        assert_eq!(
            touched(&registry, &WriteSet::everything()).len(),
            registry.len()
        );
    }

    #[test]
    fn set_replaces_and_remove_forgets() {
        let mut registry = registry();
        registry.set(3, "bob", range(&[json!("carol")]));
        let bob = commit(Some(Uuid::nil()), None, Some(json!({ "userId": "bob" })));
        assert_eq!(touched(&registry, &bob), ["every-project", "raw", "scan"]);
        assert_eq!(registry.remove(6), Some("raw"));
        assert_eq!(registry.remove(6), None);
        assert_eq!(touched(&registry, &bob), ["every-project", "scan"]);
        for number in 1..=5 {
            registry.remove(number);
        }
        assert!(registry.is_empty());
        assert!(registry.ranges.is_empty() && registry.tables.is_empty());
    }

    /// The registry and `ReadSet::touched_by` are two answers to one question.
    #[test]
    fn the_registry_agrees_with_each_read_set() {
        let registry = registry();
        let writes = [
            commit(Some(Uuid::nil()), None, Some(json!({ "userId": "alice" }))),
            commit(
                Some(Uuid::nil()),
                Some(json!({ "userId": "bob", "status": "x" })),
                None,
            ),
            commit(None, None, None),
        ];
        for write in &writes {
            let mut numbers = HashSet::new();
            registry.touched(write, &schema(), &mut numbers);
            for (number, (_, reads)) in &registry.queries {
                assert_eq!(
                    numbers.contains(number),
                    reads.touched_by(write, &schema()),
                    "query {number}"
                );
            }
        }
    }
}
