//! kubectl jsonpath.
