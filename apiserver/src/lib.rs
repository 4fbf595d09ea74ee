//! A minimal Kubernetes apiserver: the REST surface kubectl speaks, with real semantics
//! (admission, defaulting, validation, optimistic concurrency, watches, server-side tables),
//! over an etcd-shaped [`store::Store`].
//!
//! Architecture invariant: this crate knows nothing about nodes' networks, kube-proxy or DNS;
//! it stores and serves objects. Time and randomness come in through [`sim`].

pub mod error;
pub mod resources;
pub mod sim;
pub mod store;
pub mod table;

pub use error::ApiError;
