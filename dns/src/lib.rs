//! Cluster DNS, sans-IO: a snapshot of Services, EndpointSlices, Pods and Namespaces plus the bytes of a
//! query give the bytes of the answer CoreDNS's kubernetes plugin would send (kubeadm's Corefile), and
//! the text BIND's `dig`/`nslookup` would print for it.
//!
//! Layers, in the hickory-dns proto/server split:
//! - [`wire`]: the message format — the "proto" layer: hickory-proto decodes and encodes, `wire` keeps
//!   the plain view of a message the other layers use;
//! - [`snapshot`]: the index built once from API objects — the "store";
//! - [`responder`]: query → [`Outcome`] with CoreDNS semantics — the "server";
//! - [`dig`]: client side: `build_query`, `format_dig`, `format_nslookup`;
//! - [`resolver`]: pod `/etc/resolv.conf` and the glibc search/ndots walk.
//!
//! Guarantee for the whole crate: no I/O, no clock reads (time is passed in), no randomness, no hash
//! maps; the same inputs give the same bytes, and no input bytes make it panic.

pub mod bench;
pub mod dig;
pub mod resolver;
pub mod responder;
pub mod snapshot;
pub mod wire;

pub use dig::{build_query, format_dig, format_nslookup, DigTransport};
pub use resolver::{resolv_conf, search_candidates, DnsPolicy, NodeResolv, PodDnsConfig};
pub use responder::{Outcome, Transport};
pub use snapshot::{DnsConfig, PodsMode, Snapshot};
