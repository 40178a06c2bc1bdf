//! Structural-schema admission for custom resources (pruning, defaulting, validation).
//!
//! STUB: the real implementation is written by another helper; this placeholder keeps the
//! interface so the emulator core builds. It accepts everything and prunes nothing.

/// One schema violation, in the shape of a Status cause.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub reason: &'static str,
    pub message: String,
}

/// What admission found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaOutcome {
    pub errors: Vec<FieldError>,
    pub unknown_fields: Vec<String>,
}

/// Prunes fields not in the structural schema (recording their dotted paths in unknown_fields),
/// applies defaults, then validates. `schema` is a CRD version's openAPIV3Schema; `obj` is the
/// whole object (apiVersion/kind/metadata are handled as the apiserver does).
pub fn admit(_schema: &serde_json::Value, _obj: &mut serde_json::Value) -> SchemaOutcome {
    SchemaOutcome::default()
}
