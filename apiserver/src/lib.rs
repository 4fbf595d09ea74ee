//! A minimal Kubernetes apiserver: the REST surface kubectl speaks, with real semantics
//! (admission, defaulting, validation, optimistic concurrency, watches, server-side tables),
//! over an etcd-shaped [`store::Store`].
//!
//! Architecture invariant: this crate knows nothing about nodes' networks, kube-proxy or DNS;
//! it stores and serves objects. Time and randomness come in through [`sim`].

pub mod admission;
pub mod alloc;
pub mod api;
pub mod decode;
pub mod error;
pub mod events;
pub mod http;
mod ingress_validation;
pub mod json;
pub mod reaper;
pub mod resources;
pub mod selector;
pub mod sim;
pub mod store;
pub mod strategic;
pub mod table;
pub mod validation;

pub use api::{ApiConfig, ApiServer, EventType, ListQuery, ObjectEvent, PatchType, WatchItem};
pub use error::ApiError;
pub use events::{EventRecord, ObjectRef};
