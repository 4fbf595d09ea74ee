//! The built-in kubectl.

pub mod describe;
pub mod jsonpath;
pub mod tabwriter;
