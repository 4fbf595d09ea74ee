//! Cluster DNS: a snapshot of the cluster + a question → an answer (sans-IO). Filled by the DNS issue.
