//! Quoting for the few names that cannot be bind parameters: table names and the JSON keys of
//! index expressions (an index is only used when the query spells its expression identically).

use crate::error::{ConvoyError, Result};

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> Result<String> {
    reject_nul(name)?;
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// `'text'` with embedded quotes doubled. Postgres runs with `standard_conforming_strings` on
/// (the default since 9.1), so backslashes are ordinary characters.
pub fn quote_literal(text: &str) -> Result<String> {
    reject_nul(text)?;
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// The expression of a document field: `(data->'field')`.
pub fn field_expr(field: &str) -> Result<String> {
    Ok(format!("(data->{})", quote_literal(field)?))
}

fn reject_nul(text: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(ConvoyError::InvalidArgs(
            "names may not contain the NUL character".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled_not_escaped() {
        assert_eq!(quote_ident(r#"we"ird"#).unwrap(), r#""we""ird""#);
        assert_eq!(quote_literal(r"it's \n").unwrap(), r"'it''s \n'");
        assert_eq!(field_expr("userId").unwrap(), "(data->'userId')");
    }

    #[test]
    fn nul_is_refused() {
        assert!(quote_ident("a\0b").is_err());
        assert!(field_expr("a\0").is_err());
    }
}
