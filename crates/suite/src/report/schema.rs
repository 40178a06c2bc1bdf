//! The JSON Schema of `report.json` (reports/report.schema.json, embedded) and validation.

use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

const SCHEMA_TEXT: &str = include_str!("../../../../reports/report.schema.json");

/// The report JSON Schema (draft 2020-12), parsed once.
pub fn report_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        // The schema is part of this binary and a unit test parses it, so a failure here is a
        // build defect, not bad input.
        serde_json::from_str(SCHEMA_TEXT).expect("embedded reports/report.schema.json is JSON")
    })
}

fn validator() -> Result<&'static Validator, String> {
    static VALIDATOR: OnceLock<Result<Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(report_schema())
                .map_err(|e| format!("report schema does not compile: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Validates a `report.json` document; each error is one line "`<json pointer>`: <problem>".
pub fn validate_report_json(v: &Value) -> Result<(), Vec<String>> {
    let validator = validator().map_err(|e| vec![e])?;
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| {
            let path = e.instance_path().as_str();
            let path = if path.is_empty() { "/" } else { path };
            let message = e.to_string().replace('\n', " ");
            format!("`{path}`: {message}")
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schema_is_a_valid_2020_12_schema() {
        let schema = report_schema();
        assert_eq!(schema["$id"], super::super::REPORT_SCHEMA_ID);
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        jsonschema::draft202012::meta::validate(schema).unwrap();
        validator().unwrap();
    }
}
