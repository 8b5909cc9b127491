//! The query IR that `ctx.db.query(...)` builds in JavaScript (docs/architecture.md): table,
//! index range, filter tree, order, limit.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ConvoyError, Result};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueryPlan {
    pub table: String,
    #[serde(default)]
    pub index: Option<IndexRange>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub order: Order,
    #[serde(default)]
    pub limit: Option<u32>,
}

impl QueryPlan {
    /// The plan `ctx.db.query(...)` built in JavaScript, from its JSON.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|error| ConvoyError::InvalidArgs(format!("invalid query: {error}")))
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IndexRange {
    pub name: String,
    #[serde(default)]
    pub eq: Vec<FieldValue>,
    #[serde(default)]
    pub range: Vec<RangeBound>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldValue {
    pub field: String,
    pub value: Value,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RangeBound {
    pub field: String,
    pub op: RangeOp,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RangeOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CompareOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl From<RangeOp> for CompareOp {
    fn from(op: RangeOp) -> Self {
        match op {
            RangeOp::Gt => Self::Gt,
            RangeOp::Gte => Self::Gte,
            RangeOp::Lt => Self::Lt,
            RangeOp::Lte => Self::Lte,
        }
    }
}

impl CompareOp {
    pub(super) fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            // `!=` would drop documents that lack the field (NULL); "is not equal" keeps them.
            Self::Neq => "IS DISTINCT FROM",
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Filter {
    Compare {
        cmp: CompareOp,
        left: Operand,
        right: Operand,
    },
    And {
        and: Vec<Filter>,
    },
    Or {
        or: Vec<Filter>,
    },
    Not {
        not: Box<Filter>,
    },
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Operand {
    Field { field: String },
    Value { value: Value },
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    #[serde(default)]
    pub dir: Direction,
    #[serde(default)]
    pub field: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

impl Direction {
    pub fn is_desc(self) -> bool {
        matches!(self, Self::Desc)
    }

    pub(super) fn sql(self) -> &'static str {
        match self {
            Self::Asc => "ASC",
            Self::Desc => "DESC",
        }
    }
}
