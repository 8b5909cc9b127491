//! Every failure Convoy reports, with the code and HTTP status of SPEC §5.

use serde_json::{json, Value};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConvoyError {
    /// Args or a written document failed validation, or the request was malformed.
    #[error("{0}")]
    InvalidArgs(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// An unknown function, or a write to a missing document.
    #[error("{0}")]
    NotFound(String),
    /// A serialization failure or deadlock: the whole function may be run again.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The database cannot be reached; safe to retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// A planned statement named a column its table no longer has, or does not have yet: the
    /// table moved to another stage (a graduation) since this process last looked. The process
    /// reads the stages again and runs the call again; should that keep failing, it is internal.
    #[error("{0}")]
    StorageChanged(String),
    /// An error raised by the app's own code, passed to the client as it was thrown.
    #[error("{message}")]
    App {
        code: String,
        message: String,
        data: Option<Value>,
    },
}

pub type Result<T, E = ConvoyError> = std::result::Result<T, E>;

/// The built-in codes of SPEC §5, with their HTTP statuses. `Display` is the wire spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidArgs,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [Self; 8] = [
        Self::InvalidArgs,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::Unavailable,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgs => "INVALID_ARGS",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidArgs => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// The built-in code spelled `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl ConvoyError {
    /// The built-in code, or `None` for an app's own code (see [`ConvoyError::code`]).
    pub fn builtin_code(&self) -> Option<ErrorCode> {
        Some(match self {
            Self::InvalidArgs(_) => ErrorCode::InvalidArgs,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) | Self::StorageChanged(_) => ErrorCode::Internal,
            Self::App { code, .. } => return ErrorCode::parse(code),
        })
    }

    /// The code as the client sees it: a built-in one, or the app's own.
    pub fn code(&self) -> &str {
        match self {
            Self::App { code, .. } => code,
            other => other.builtin_code().map_or("INTERNAL", ErrorCode::as_str),
        }
    }

    pub fn http_status(&self) -> u16 {
        // An app's own codes are refusals the app chose to make, not server faults.
        self.builtin_code().map_or(400, ErrorCode::http_status)
    }

    /// The wire shape: `{"code", "message", "data"?}`.
    pub fn to_json(&self) -> Value {
        let mut shape = json!({ "code": self.code(), "message": self.to_string() });
        if let Self::App {
            data: Some(data), ..
        } = self
        {
            shape["data"] = data.clone();
        }
        shape
    }

    /// The shape that carries an error of the core's into JavaScript: the wire shape marked
    /// `"origin": "convoy"`, so that when a handler lets it through, [`ConvoyError::from_json`]
    /// knows it for the core's own (a conflict is retried) and not one the app threw.
    pub fn to_native_json(&self) -> Value {
        let mut shape = self.to_json();
        if !matches!(self, Self::App { .. }) {
            shape["origin"] = "convoy".into();
        }
        shape
    }

    /// Rebuilds an error from its wire shape, as a handler's outcome reports it. The core's own
    /// errors (marked by [`ConvoyError::to_native_json`]) map back to their variants, so that
    /// their retry rules apply; what the app threw passes to the client as it was thrown (its
    /// built-in codes keep their statuses). `INTERNAL` without data is always the core's kind,
    /// whose detail production mode keeps from the client.
    pub fn from_json(value: &Value) -> Self {
        let code = value
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("INTERNAL");
        let message = value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or(code)
            .to_owned();
        let data = value.get("data").cloned().filter(|data| !data.is_null());
        let ours = value.get("origin").and_then(Value::as_str) == Some("convoy");
        if !ours && code != "INTERNAL" {
            return Self::App {
                code: code.to_owned(),
                message,
                data,
            };
        }
        match (ErrorCode::parse(code), data) {
            (Some(ErrorCode::InvalidArgs), None) => Self::InvalidArgs(message),
            (Some(ErrorCode::Unauthorized), None) => Self::Unauthorized(message),
            (Some(ErrorCode::Forbidden), None) => Self::Forbidden(message),
            (Some(ErrorCode::NotFound), None) => Self::NotFound(message),
            (Some(ErrorCode::Conflict), None) => Self::Conflict(message),
            (Some(ErrorCode::Unavailable), None) => Self::Unavailable(message),
            (Some(ErrorCode::Internal), None) => Self::Internal(message),
            (_, data) => Self::App {
                code: code.to_owned(),
                message,
                data,
            },
        }
    }

    /// What a client may see of this error. An internal error outside development becomes a
    /// request id; its detail goes to the server log under that id.
    #[must_use]
    pub fn public(self, dev: bool) -> Self {
        let (Self::Internal(detail) | Self::StorageChanged(detail)) = self else {
            return self;
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        tracing::error!(target: "convoy::request", %request_id, %detail, "internal error");
        let message = if dev {
            detail
        } else {
            format!("Internal error (request {request_id})")
        };
        Self::App {
            code: ErrorCode::Internal.to_string(),
            message,
            data: Some(json!({ "requestId": request_id })),
        }
    }

    pub fn is_retryable_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// Whether the call failed because a table changed stage under it (see `StorageChanged`).
    pub fn is_storage_changed(&self) -> bool {
        matches!(self, Self::StorageChanged(_))
    }
}

/// SQLSTATEs that mean "run the whole transaction again".
fn is_conflict_state(code: &tokio_postgres::error::SqlState) -> bool {
    use tokio_postgres::error::SqlState;
    *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
}

impl From<tokio_postgres::Error> for ConvoyError {
    fn from(error: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        let Some(db_error) = error.as_db_error() else {
            // No server answer at all: the connection broke or could not be made.
            return Self::Unavailable(format!("the database connection failed: {error}"));
        };
        let code = db_error.code();
        if is_conflict_state(code) {
            return Self::Conflict(
                "the mutation conflicted with concurrent ones too many times".into(),
            );
        }
        if let Some(refused) = constraint_violation(db_error) {
            return refused;
        }
        if *code == SqlState::UNDEFINED_COLUMN {
            return Self::StorageChanged(format!("database error: {}", db_error.message()));
        }
        if *code == SqlState::UNTRANSLATABLE_CHARACTER
            || *code == SqlState::INVALID_TEXT_REPRESENTATION
            || *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
            || *code == SqlState::NUMERIC_VALUE_OUT_OF_RANGE
            || *code == SqlState::INVALID_DATETIME_FORMAT
            || *code == SqlState::DATETIME_FIELD_OVERFLOW
            || *code == SqlState::STRING_DATA_RIGHT_TRUNCATION
            || *code == SqlState::DATATYPE_MISMATCH
        {
            // Postgres JSONB refuses NUL (\u0000) in strings; the app can do nothing but not send it.
            return Self::InvalidArgs(format!(
                "the value cannot be stored in Postgres: {}",
                db_error.message()
            ));
        }
        if *code == SqlState::QUERY_CANCELED {
            return Self::Internal(format!(
                "the statement was stopped: it ran past its function's timeout ({})",
                db_error.message()
            ));
        }
        if code.code().starts_with("08")
            || code.code().starts_with("57P")
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            return Self::Unavailable(format!(
                "the database is unavailable: {}",
                db_error.message()
            ));
        }
        Self::Internal(format!("database error: {}", db_error.message()))
    }
}

/// A constraint of the database refused the write (SPEC §5): never `INTERNAL`. A write whose
/// own value breaks it (NOT NULL, CHECK, a reference to a missing row) is `INVALID_ARGS` naming
/// the field and the constraint; one refused because of other rows (a duplicate key, a row
/// others still reference) is `CONFLICT` with `data.constraint` — an app's conflict, which no
/// retry can fix, so it is never run again as a serialization conflict is.
fn constraint_violation(db_error: &tokio_postgres::error::DbError) -> Option<ConvoyError> {
    use tokio_postgres::error::SqlState;
    let code = db_error.code();
    let constraint = db_error.constraint().unwrap_or("");
    let table = db_error.table().unwrap_or("");
    let detail = db_error
        .detail()
        .map_or_else(String::new, |detail| format!(" ({detail})"));
    // The column a constraint is about: Postgres names it for NOT NULL, and in the detail of a
    // foreign key ("Key (team_id)=(…) is not present…").
    let column = db_error.column().map(str::to_owned).or_else(|| {
        let detail = db_error.detail()?;
        let start = detail.find("Key (")? + 5;
        let end = start + detail[start..].find(")=")?;
        Some(detail[start..end].to_owned())
    });
    let conflict = |message: String| ConvoyError::App {
        code: ErrorCode::Conflict.to_string(),
        message,
        data: Some(json!({ "constraint": constraint, "table": table })),
    };
    // A write's own value broke it: INVALID_ARGS, with what the client needs to show it by.
    let invalid = |message: String| ConvoyError::App {
        code: ErrorCode::InvalidArgs.to_string(),
        message,
        data: Some(json!({ "constraint": constraint, "table": table, "column": column })),
    };
    if *code == SqlState::NOT_NULL_VIOLATION {
        let column = db_error.column().unwrap_or("");
        return Some(invalid(format!(
            "{table}.{column} cannot be empty: the database requires a value (NOT NULL){detail}"
        )));
    }
    if *code == SqlState::CHECK_VIOLATION {
        return Some(invalid(format!(
            "the write breaks the check {constraint} on {table}: {}{detail}",
            db_error.message()
        )));
    }
    if *code == SqlState::FOREIGN_KEY_VIOLATION {
        // Postgres says "is not present in table" of the writer's own reference, and "is still
        // referenced from table" of a row others point at.
        let still_referenced = db_error
            .detail()
            .is_some_and(|detail| detail.contains("still referenced"));
        return Some(if still_referenced {
            conflict(format!(
                "other rows still refer to this one ({constraint} on {table}){detail}"
            ))
        } else {
            invalid(format!(
                "the write refers to a row that does not exist ({constraint} on {table}){detail}"
            ))
        });
    }
    if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::EXCLUSION_VIOLATION {
        return Some(conflict(format!(
            "another row already holds this value ({constraint} on {table}){detail}"
        )));
    }
    None
}

impl From<deadpool_postgres::PoolError> for ConvoyError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(error)
            | deadpool_postgres::PoolError::PostCreateHook(
                deadpool_postgres::HookError::Backend(error),
            ) => error.into(),
            deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                Self::Unavailable(
                    "every database connection stayed busy for 10 s; safe to retry in a moment (a larger poolSize, or shorter function timeouts, make room)"
                        .into(),
                )
            }
            other => Self::Unavailable(format!("no database connection could be had: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_errors_round_trip_with_their_data() {
        let error = ConvoyError::from_json(&json!({
            "code": "PROJECT_LIMIT", "message": "Upgrade to add more projects", "data": { "limit": 3 }
        }));
        assert_eq!(error.code(), "PROJECT_LIMIT");
        assert_eq!(error.http_status(), 400);
        assert_eq!(
            error.to_json(),
            json!({ "code": "PROJECT_LIMIT", "message": "Upgrade to add more projects", "data": { "limit": 3 } })
        );
    }

    #[test]
    fn every_code_reads_back_as_itself() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        assert_eq!(ErrorCode::parse("PROJECT_LIMIT"), None);
    }

    #[test]
    fn builtin_codes_keep_their_statuses() {
        let error =
            ConvoyError::from_json(&json!({ "code": "UNAUTHORIZED", "message": "no token" }));
        assert_eq!(error.http_status(), 401);
        assert_eq!(
            error.to_json(),
            json!({ "code": "UNAUTHORIZED", "message": "no token" })
        );
        assert_eq!(ConvoyError::NotFound("x".into()).http_status(), 404);
        assert_eq!(ConvoyError::PayloadTooLarge("x".into()).http_status(), 413);
    }

    #[test]
    fn only_the_cores_own_conflicts_are_retried() {
        let ours = ConvoyError::Conflict("serialization failure".into());
        assert!(ConvoyError::from_json(&ours.to_native_json()).is_retryable_conflict());
        assert!(!ConvoyError::from_json(&ours.to_json()).is_retryable_conflict());
        let thrown =
            ConvoyError::from_json(&json!({ "code": "CONFLICT", "message": "Username taken" }));
        assert!(!thrown.is_retryable_conflict());
        assert_eq!(thrown.http_status(), 409);
        assert_eq!(thrown.to_string(), "Username taken");
        let internal = ConvoyError::from_json(&json!({ "code": "INTERNAL", "message": "detail" }));
        assert!(matches!(internal, ConvoyError::Internal(_)));
    }
}
