//! netsim: a whole Kubernetes cluster in one process, on a simulated network, deterministically.

pub mod kubectl;
