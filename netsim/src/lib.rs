//! netsim: a whole Kubernetes cluster in one process, on a simulated network, deterministically.

pub mod bench;
pub mod bench_net;
pub mod cluster;
pub mod dnsprobes;
pub mod images;
pub mod ingress;
pub mod kubectl;
pub mod net;
pub mod output;
pub mod probes;
pub mod runner;
pub mod scenario;
pub mod serve;
