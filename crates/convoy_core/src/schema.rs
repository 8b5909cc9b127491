//! The app's schema as the core sees it (SPEC §3): tables, their stage's columns, indexes and
//! the names those indexes carry in Postgres. Syncing it to the database is `migrate`.

use serde::{Deserialize, Serialize};

use crate::error::{ConvoyError, Result};
use crate::sql::field_expr;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Schema {
    pub tables: Vec<Table>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Table {
    pub name: String,
    /// `false` for `.unmanaged()` tables: existing relational tables Convoy never creates or alters.
    pub managed: bool,
    #[serde(default)]
    pub indexes: Vec<Index>,
    /// The user's field names (for error messages that point at `data->>'field'`).
    #[serde(default)]
    pub fields: Vec<String>,
    /// An unmanaged table's columns, read from the database (never from the app).
    #[serde(skip)]
    pub columns: Vec<Column>,
    /// An unmanaged table's primary key columns, read from the database.
    #[serde(skip)]
    pub primary_key: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// The column's type as Postgres prints it (`integer`, `timestamp with time zone`, …): the
    /// type query values are cast to.
    pub sql_type: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Index {
    pub name: String,
    pub fields: Vec<String>,
}

impl Schema {
    pub fn from_json(json: &str) -> Result<Self> {
        let schema: Self = serde_json::from_str(json).map_err(|error| {
            ConvoyError::InvalidArgs(format!("invalid schema description: {error}"))
        })?;
        for table in &schema.tables {
            if table.name.is_empty() || table.name.len() > 63 {
                return Err(ConvoyError::InvalidArgs(format!(
                    "table name {:?} must be 1 to 63 characters",
                    table.name
                )));
            }
            for index in &table.indexes {
                if index.fields.is_empty() {
                    return Err(ConvoyError::InvalidArgs(format!(
                        "index {} of table {} has no fields",
                        index.name, table.name
                    )));
                }
            }
        }
        Ok(schema)
    }

    pub fn table(&self, name: &str) -> Result<&Table> {
        self.tables
            .iter()
            .find(|table| table.name == name)
            .ok_or_else(|| ConvoyError::InvalidArgs(format!("table {name:?} is not in the schema")))
    }

    pub fn managed_tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().filter(|table| table.managed)
    }
}

impl Table {
    pub fn index(&self, name: &str) -> Result<&Index> {
        self.indexes
            .iter()
            .find(|index| index.name == name)
            .ok_or_else(|| {
                ConvoyError::InvalidArgs(format!("table {:?} has no index {name:?}", self.name))
            })
    }
}

impl Index {
    /// The Postgres name of this index: table, index and a hash of the definition, so that a
    /// changed definition gets a new name and can be built beside the old one.
    pub fn postgres_name(&self, table: &str) -> String {
        let hash = fnv1a(self.definition(table).as_bytes());
        let mut name = format!("{table}_{}", self.name);
        // Postgres cuts identifiers at 63 bytes; keep room for the 9 characters of the hash.
        while name.len() > 54 {
            name.pop();
        }
        format!("{name}_{:08x}", hash as u32)
    }

    fn definition(&self, table: &str) -> String {
        format!("{table}:{}", self.fields.join(","))
    }

    pub(crate) fn expressions(&self) -> Result<String> {
        Ok(self
            .fields
            .iter()
            .map(|field| field_expr(field))
            .collect::<Result<Vec<_>>>()?
            .join(", "))
    }
}

/// FNV-1a, 64 bits: it names indexes already in users' databases, so it must never change.
fn fnv1a(bytes: &[u8]) -> u64 {
    use std::hash::Hasher as _;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

#[cfg(test)]
mod index_name_tests {
    use super::fnv1a;

    /// The names of indexes already built must not change with the hash's implementation.
    #[test]
    fn index_names_hash_as_they_always_did() {
        let by_hand = |bytes: &[u8]| {
            bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        };
        for text in [
            "",
            "projects:userId",
            "projects:userId,status,createdAt",
            "é ✓",
        ] {
            assert_eq!(fnv1a(text.as_bytes()), by_hand(text.as_bytes()), "{text:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_fit_postgres_and_change_with_the_definition() {
        let index = Index {
            name: "by_userId".into(),
            fields: vec!["userId".into()],
        };
        let name = index.postgres_name("projects");
        assert!(name.starts_with("projects_by_userId_"), "{name}");
        let changed = Index {
            fields: vec!["userId".into(), "createdAt".into()],
            ..index.clone()
        };
        assert_ne!(name, changed.postgres_name("projects"));
        let long = Index {
            name: "x".repeat(60),
            fields: vec!["a".into()],
        };
        assert!(long.postgres_name(&"t".repeat(60)).len() <= 63);
    }
}
