//! The app's schema as the core sees it (SPEC §3): tables, their stage's columns, indexes and
//! the names those indexes carry in Postgres. Syncing it to the database is `migrate`.
//!
//! A managed table is at one of two stages (GRADUATION.md): documents, its fields in `data`, or
//! relational, a typed column per field. The app declares which stage a new table gets; the
//! stage a table is served at is the one the database's bookkeeping records ([`Table::stage`]).

use serde::{Deserialize, Serialize};

use crate::error::{ConvoyError, Result};
use crate::sql::{field_expr, quote_ident};

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
    /// Declared `.relational()`: created with a typed column per field.
    #[serde(default)]
    pub relational: bool,
    /// Each field's column at the relational stage (GRADUATION.md § Mapping), in field order; the
    /// TypeScript layer reads it from the Zod schema.
    #[serde(default, rename = "columns")]
    pub field_columns: Vec<FieldColumn>,
    /// The stage the table is served at: the database's bookkeeping says, once read
    /// (`migrate::introspect`); until then the declared one.
    #[serde(skip)]
    pub stage: Stage,
    /// Reads come from the typed columns: a relational table, or one whose graduation has
    /// filled and validated them while `data` is still the truth (GRADUATION.md step 4).
    #[serde(skip)]
    pub reads_columns: bool,
    /// The step of the graduation under way, if one is (`convoy.graduations`).
    #[serde(skip)]
    pub graduation_step: Option<String>,
    /// An unmanaged table's columns, read from the database (never from the app).
    #[serde(skip)]
    pub columns: Vec<Column>,
    /// An unmanaged table's primary key columns, read from the database.
    #[serde(skip)]
    pub primary_key: Vec<String>,
    /// The statements that read and write this table, planned once: every write of a table is
    /// the same statement, and every read selects the same columns (a relational table's name
    /// dozens of them).
    #[serde(skip)]
    pub planned: PlannedStatements,
}

/// A table's planned statements, each with the stage it was planned for: a copy of the table at
/// another stage (a graduation's target) plans its own.
#[derive(Debug, Clone, Default)]
pub struct PlannedStatements {
    pub insert: std::sync::OnceLock<(Stage, String)>,
    pub insert_rows: std::sync::OnceLock<(Stage, String)>,
    pub replace: std::sync::OnceLock<(Stage, String)>,
    /// What a read selects of each row, `id, data, created_at`: for a relational table, the
    /// document built from its columns.
    pub document_columns: std::sync::OnceLock<(Stage, String)>,
    /// A relational table's insert from typed arrays (`plan::typed_rows`).
    pub insert_columns: std::sync::OnceLock<(Stage, std::sync::Arc<crate::plan::ColumnsInsert>)>,
    /// A relational table's field columns as its reads select them (`plan::column_documents`).
    pub column_shape: std::sync::OnceLock<(Stage, std::sync::Arc<crate::plan::ColumnsShape>)>,
}

/// Where a managed table keeps its fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    #[default]
    Documents,
    Relational,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Documents => "documents",
            Self::Relational => "relational",
        }
    }
}

/// One field's column at the relational stage.
// Each flag is a fact of its own about the field (the mapping states them apart), not a state.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldColumn {
    pub field: String,
    pub column: String,
    #[serde(rename = "type")]
    pub kind: ColumnKind,
    /// Required and not nullable: `NOT NULL`.
    pub not_null: bool,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub nullable: bool,
    /// An enum's or literal's values: `CHECK (column IN (...))`.
    #[serde(default)]
    pub allowed: Option<Vec<serde_json::Value>>,
    /// `defineRef(table)`: a foreign key to that table's `id`.
    #[serde(default)]
    pub references: Option<String>,
    #[serde(default)]
    pub on_delete: OnDelete,
    /// A `jsonb` column of one JSON kind (`object`, `array`): `CHECK (jsonb_typeof(...) = ...)`.
    #[serde(default)]
    pub jsonb_kind: Option<String>,
    /// `renamed` when the field's `snake_case` name was one of Convoy's own columns (`createdAt`
    /// is `created_at_field`): sync says so when it creates the column.
    #[serde(default)]
    pub named: Option<String>,
    /// Whether the database holds the column `NOT NULL` (read from it, never from the app).
    #[serde(skip)]
    pub enforced_not_null: bool,
}

impl FieldColumn {
    /// Whether SQL NULL in this column is the JSON value `null` (a required, nullable field of a
    /// typed column) rather than a missing field. In `jsonb` columns JSON `null` is a value of
    /// its own, and SQL NULL is always "missing".
    pub fn null_is_json_null(&self) -> bool {
        self.kind != ColumnKind::Jsonb && self.nullable && !self.optional
    }
}

/// The column types of GRADUATION.md § Mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum ColumnKind {
    #[serde(rename = "text")]
    Text,
    #[serde(rename = "double precision")]
    Double,
    #[serde(rename = "bigint")]
    Bigint,
    #[serde(rename = "boolean")]
    Boolean,
    #[serde(rename = "uuid")]
    Uuid,
    #[serde(rename = "jsonb")]
    Jsonb,
}

impl ColumnKind {
    pub fn sql(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Double => "double precision",
            Self::Bigint => "bigint",
            Self::Boolean => "boolean",
            Self::Uuid => "uuid",
            Self::Jsonb => "jsonb",
        }
    }
}

/// What deleting a referenced row does to the rows that refer to it (`defineRef(t, { onDelete })`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OnDelete {
    /// The delete is refused while rows refer to it (`CONFLICT`).
    #[default]
    Restrict,
    /// The rows that refer to it are deleted with it.
    Cascade,
    /// The referring field becomes missing (optional refs only).
    SetNull,
}

impl OnDelete {
    pub fn sql(self) -> &'static str {
        match self {
            // NO ACTION rather than RESTRICT: checked at the statement's end, so one statement may
            // delete a parent and its children in any order.
            Self::Restrict => "NO ACTION",
            Self::Cascade => "CASCADE",
            Self::SetNull => "SET NULL",
        }
    }
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
        let mut schema: Self = serde_json::from_str(json).map_err(|error| {
            ConvoyError::InvalidArgs(format!("invalid schema description: {error}"))
        })?;
        for table in &mut schema.tables {
            table.stage = if table.relational {
                Stage::Relational
            } else {
                Stage::Documents
            };
            table.reads_columns = table.relational;
            if table.relational && table.field_columns.len() != table.fields.len() {
                return Err(ConvoyError::InvalidArgs(format!(
                    "table {} is declared relational but its description maps {} of its {} fields to columns",
                    table.name,
                    table.field_columns.len(),
                    table.fields.len()
                )));
            }
        }
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

    /// The tables whose rows a delete from `parent` may change besides the one it names: the
    /// relational tables whose refs to it cascade or set null. The database changes them, so
    /// the commit must say it did.
    pub fn changed_by_delete_from<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a str> {
        // A graduating table has its foreign keys from the first step on (NOT VALID ones still
        // act on deletes).
        self.managed_tables()
            .filter(|table| table.stage == Stage::Relational || table.graduation_step.is_some())
            .filter(move |table| {
                table.field_columns.iter().any(|column| {
                    column.references.as_deref() == Some(parent)
                        && column.on_delete != OnDelete::Restrict
                })
            })
            .map(|table| table.name.as_str())
    }

    pub fn managed_tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().filter(|table| table.managed)
    }
}

impl Table {
    /// The column of `field` at the relational stage, if the field has one.
    pub fn field_column(&self, field: &str) -> Option<&FieldColumn> {
        self.field_columns
            .iter()
            .find(|column| column.field == field)
    }

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
    /// The Postgres name of this index on `table`: table, index and a hash of the definition, so
    /// that a changed definition — other fields, or the table's fields moving from `data` to
    /// columns — gets a new name and can be built beside the old one.
    pub fn postgres_name(&self, table: &Table) -> String {
        let hash = fnv1a(self.definition(table).as_bytes());
        let mut name = format!("{}_{}", table.name, self.name);
        // Postgres cuts identifiers at 63 bytes; keep room for the 9 characters of the hash.
        while name.len() > 54 {
            name.pop();
        }
        format!("{name}_{:08x}", hash as u32)
    }

    fn definition(&self, table: &Table) -> String {
        // A document table's definition is the one its indexes were always named by.
        match table.stage {
            Stage::Documents => format!("{}:{}", table.name, self.fields.join(",")),
            Stage::Relational => format!("{}:columns:{}", table.name, self.fields.join(",")),
        }
    }

    /// What the index is built over: the fields' expressions in `data`, or their columns. A
    /// column whose NULL is JSON `null` sorts its NULLs first, as `null` sorts in JSONB.
    pub(crate) fn expressions(&self, table: &Table) -> Result<String> {
        Ok(self
            .fields
            .iter()
            .map(|field| match table.stage {
                Stage::Documents => field_expr(field),
                Stage::Relational => match table.field_column(field) {
                    Some(column) if column.null_is_json_null() => {
                        Ok(format!("{} NULLS FIRST", quote_ident(&column.column)?))
                    }
                    Some(column) => quote_ident(&column.column),
                    None => Err(ConvoyError::InvalidArgs(format!(
                        "index {} of table {} names {field}, which has no column",
                        self.name, table.name
                    ))),
                },
            })
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
        let table = |name: &str, stage: Stage| Table {
            name: name.into(),
            managed: true,
            indexes: Vec::new(),
            fields: Vec::new(),
            relational: false,
            field_columns: Vec::new(),
            stage,
            reads_columns: false,
            graduation_step: None,
            columns: Vec::new(),
            primary_key: Vec::new(),
            planned: PlannedStatements::default(),
        };
        let projects = table("projects", Stage::Documents);
        let index = Index {
            name: "by_userId".into(),
            fields: vec!["userId".into()],
        };
        let name = index.postgres_name(&projects);
        assert!(name.starts_with("projects_by_userId_"), "{name}");
        let changed = Index {
            fields: vec!["userId".into(), "createdAt".into()],
            ..index.clone()
        };
        assert_ne!(name, changed.postgres_name(&projects));
        assert_ne!(
            name,
            index.postgres_name(&table("projects", Stage::Relational))
        );
        let long = Index {
            name: "x".repeat(60),
            fields: vec!["a".into()],
        };
        assert!(
            long.postgres_name(&table(&"t".repeat(60), Stage::Documents))
                .len()
                <= 63
        );
    }
}
