//! kubectl describe.
