//! The `netsim` command: run scenarios, benchmark.

/// mimalloc: several times faster than glibc's malloc for the simulator's many small,
/// short-lived JSON allocations (measured with `netsim bench`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use apiserver::store::{EtcdStore, MemStore, Store};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "netsim",
    version,
    about = "A whole Kubernetes cluster in one process, on a simulated network, deterministically."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenario files and print their transcripts.
    Run {
        /// Scenario files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Seed for every random choice (overrides the scenario's `seed:`).
        #[arg(long)]
        seed: Option<u64>,
        /// Where the apiserver keeps objects: `memory` (default) or `etcd://host:port[,host:port]`.
        #[arg(long, default_value = "memory")]
        store: String,
        /// Key prefix in etcd (each run should use its own when sharing an etcd).
        #[arg(long, default_value = "/registry")]
        etcd_prefix: String,
    },
    /// Serve the cluster on loopback for the real kubectl (plain HTTP, no auth).
    Serve {
        /// Address to listen on (port 0 picks a free one; the first line says which).
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: std::net::SocketAddr,
        /// `memory` (default) or `etcd://host:port[,host:port]`: with etcd the cluster
        /// survives restarts of netsim.
        #[arg(long, default_value = "memory")]
        store: String,
        #[arg(long, default_value = "/registry")]
        etcd_prefix: String,
        /// Take the cluster shape (nodes, proxyMode) from this scenario's `cluster:`.
        #[arg(long)]
        cluster: Option<PathBuf>,
        #[arg(long)]
        seed: Option<u64>,
        /// Write a kubeconfig here for `kubectl --kubeconfig` / `KUBECONFIG`.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
    /// Measure convergence time and memory at scale (and etcd write throughput).
    Bench {
        /// Pod counts to run (100 nodes; one Deployment of 10 and one Service per 10 pods).
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        pods: Vec<usize>,
        /// etcd endpoints (`host:port,...`) for the apiserver-vs-raw-put comparison.
        #[arg(long, value_delimiter = ',')]
        etcd: Option<Vec<String>>,
        /// Skip the data-path and rule-sync figures (only the scale runs and etcd).
        #[arg(long)]
        no_net: bool,
    },
}

async fn open_store(url: &str, prefix: &str) -> anyhow::Result<Arc<dyn Store>> {
    if url == "memory" {
        return Ok(Arc::new(MemStore::new()));
    }
    let endpoints = apiserver::store::parse_store_url(url)?;
    let store = EtcdStore::connect(&endpoints, prefix).await?;
    Ok(Arc::new(store))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netsim: cannot start runtime: {e}");
            return ExitCode::from(3);
        }
    };
    rt.block_on(async {
        match cli.command {
            Command::Run {
                files,
                seed,
                store,
                etcd_prefix,
            } => run(files, seed, &store, &etcd_prefix).await,
            Command::Serve {
                listen,
                store,
                etcd_prefix,
                cluster,
                seed,
                kubeconfig,
            } => serve(listen, &store, &etcd_prefix, cluster, seed, kubeconfig).await,
            Command::Bench { pods, etcd, no_net } => {
                match netsim::bench::run(&netsim::bench::BenchArgs {
                    pods,
                    etcd,
                    net: !no_net,
                })
                .await
                {
                    Ok(report) => {
                        print!("{report}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("netsim: bench: {e:#}");
                        ExitCode::from(3)
                    }
                }
            }
        }
    })
}

async fn run(files: Vec<PathBuf>, seed: Option<u64>, store: &str, prefix: &str) -> ExitCode {
    // Check every scenario before running any (bad input: exit 2, nothing ran).
    let mut loaded = Vec::new();
    for f in &files {
        match netsim::scenario::load(f) {
            Ok(l) => loaded.push(l),
            Err(e) => {
                eprintln!("netsim: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut failed = false;
    for (i, l) in loaded.iter().enumerate() {
        let result = async {
            // Several scenarios on one etcd: each gets its own cluster under the prefix.
            let prefix = if loaded.len() > 1 { format!("{prefix}/{i}-{}", l.scenario.name) } else { prefix.to_owned() };
            let store = open_store(store, &prefix).await?;
            let existing = store.list("", &apiserver::store::ListOptions { limit: Some(1), ..Default::default() }).await?;
            if !existing.items.is_empty() {
                anyhow::bail!(
                    "{} under prefix {prefix} already holds a cluster; `netsim run` starts a fresh one: pass --etcd-prefix with an unused prefix",
                    store.describe()
                );
            }
            netsim::runner::run(l, seed, store)
                .await
                .with_context(|| format!("running {}", l.path.display()))
        }
        .await;
        match result {
            Ok(r) => {
                if i > 0 {
                    println!();
                }
                print!("{}", r.transcript);
                if let Some(f) = r.failure {
                    eprintln!("netsim: {}: {f}", l.path.display());
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("netsim: {e:#}");
                return ExitCode::from(3);
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[allow(clippy::disallowed_methods)] // the edge: a served cluster starts at the real "now"
async fn serve(
    listen: std::net::SocketAddr,
    store: &str,
    prefix: &str,
    cluster: Option<PathBuf>,
    seed: Option<u64>,
    kubeconfig: Option<PathBuf>,
) -> ExitCode {
    let mut config = match &cluster {
        Some(path) => match netsim::scenario::load(path) {
            Ok(l) => l.cluster_config(seed),
            Err(e) => {
                eprintln!("netsim: {e}");
                return ExitCode::from(2);
            }
        },
        None => netsim::cluster::ClusterConfig {
            seed: seed.unwrap_or(0),
            ..Default::default()
        },
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(config.epoch_ms);
    config.epoch_ms = now_ms;
    let result = async {
        let store = open_store(store, prefix).await?;
        let opts = netsim::serve::ServeOptions {
            listen,
            config,
            kubeconfig,
            tick: std::time::Duration::from_millis(50),
        };
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        netsim::serve::serve(opts, store, shutdown).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netsim: serve: {e:#}");
            ExitCode::from(3)
        }
    }
}
