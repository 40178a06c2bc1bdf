//! The conformance tests, one module per component; each is a function registered by catalog id.
