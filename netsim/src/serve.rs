//! `netsim serve`: the same cluster, exposed on loopback so the machine's real `kubectl`
//! (and later `dig`, `curl`) can talk to it.
//!
//! This is an edge: it reads the real clock. Virtual time follows wall time from the start
//! (so AGE columns move as a user expects), and a driver task advances the cluster every
//! tick. The apiserver answers requests concurrently; the controllers run on the driver.
//! When the store goes away, requests get a 503 `Status` and the driver keeps retrying; when
//! it comes back, the driver watches again from where its cache stopped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apiserver::store::{Store, StoreError};
use tokio::net::TcpListener;

use crate::cluster::{Cluster, ClusterConfig, ClusterError};

pub struct ServeOptions {
    pub listen: SocketAddr,
    pub config: ClusterConfig,
    /// Where to write a kubeconfig for the real kubectl (`None`: do not write one).
    pub kubeconfig: Option<PathBuf>,
    /// How often the driver advances the cluster.
    pub tick: Duration,
}

/// A kubeconfig pointing at `server` (plain HTTP on loopback: no TLS, no auth).
pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: {server}\n  name: netsim\ncontexts:\n- context:\n    cluster: netsim\n    namespace: default\n    user: netsim\n  name: netsim\ncurrent-context: netsim\npreferences: {{}}\nusers:\n- name: netsim\n  user: {{}}\n"
    )
}

/// Serves until `shutdown` resolves. Prints the address it listens on as its first line.
#[allow(clippy::disallowed_methods)] // the edge: wall time drives the virtual clock here
pub async fn serve(
    opts: ServeOptions,
    store: Arc<dyn Store>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut cluster = Cluster::new(opts.config, store).await?;
    let listener = TcpListener::bind(opts.listen).await?;
    let addr = listener.local_addr()?;
    let server = format!("http://{addr}");
    // stdout may be a pipe nobody reads any more: never die for a status line.
    say(&format!("netsim: serving the cluster at {server}"));
    if let Some(path) = &opts.kubeconfig {
        std::fs::write(path, kubeconfig(&server))?;
        say(&format!(
            "netsim: kubeconfig written to {p} (export KUBECONFIG={p})",
            p = path.display()
        ));
    }
    let router = apiserver::http::router(cluster.api.clone());
    let http = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    });
    let started = std::time::Instant::now();
    let epoch = cluster.now_ms();
    let mut store_down: Option<String> = None;
    loop {
        if http.is_finished() {
            break;
        }
        tokio::time::sleep(opts.tick).await;
        let target = epoch + started.elapsed().as_millis() as i64;
        let step = if store_down.is_some() {
            match cluster.recover().await {
                Ok(()) => cluster.advance_to(target).await,
                Err(e) => Err(e),
            }
        } else {
            cluster.advance_to(target).await
        };
        match step {
            Ok(()) => {
                if store_down.take().is_some() {
                    eprintln!("netsim: store is back; watching again");
                }
            }
            Err(ClusterError::Store(e @ StoreError::Unavailable { .. }))
            | Err(ClusterError::Store(e @ StoreError::Compacted { .. })) => {
                let msg = e.to_string();
                if store_down.as_deref() != Some(msg.as_str()) {
                    eprintln!("netsim: {msg}; requests get 503 until it is back");
                }
                store_down = Some(msg);
            }
            Err(ClusterError::WatchEnded) => {
                if store_down.is_none() {
                    eprintln!("netsim: the store's watch ended; reconnecting");
                }
                store_down = Some("watch ended".into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    http.await??;
    Ok(())
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
