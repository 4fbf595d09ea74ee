//! Benchmarks: how fast the simulated cluster converges at scale, and what the apiserver
//! costs over a real etcd compared with raw store writes.
//!
//! This is the one place that reads the real clock (`std::time::Instant`): the figures are
//! wall-clock measurements of the simulator itself, never part of a simulation's output.
//! Everything the cluster does still runs on its virtual clock, so the work measured is the
//! same from run to run; only the timings vary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use apiserver::resources::{find, Resource};
use apiserver::sim::{Clock, SimRng};
use apiserver::store::{EtcdStore, MemStore, Store, StoredValue};
use apiserver::{ApiConfig, ApiServer};
use serde_json::{json, Value};

use crate::cluster::cache::str_at;
use crate::cluster::{Cluster, ClusterConfig, NodeConfig};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// Pod counts for the scale runs, in the order run (increasing, so that the per-process
    /// peak RSS reported after each one is that size's peak).
    pub pods: Vec<usize>,
    /// etcd endpoints; `None` skips the etcd part.
    pub etcd: Option<Vec<String>>,
    /// Also measure the data path and kube-proxy rules.
    pub net: bool,
}

impl Default for BenchArgs {
    fn default() -> Self {
        BenchArgs {
            pods: vec![1_000, 10_000],
            etcd: None,
            net: true,
        }
    }
}

/// Nodes in the scale runs: one control plane and 99 workers.
const SCALE_NODES: usize = 100;
/// Replicas per Deployment (and so ready addresses per Service's Endpoints).
const REPLICAS: usize = 10;
/// Pods (and 5x as many Events) written in the write-path figure.
const WRITE_PATH_PODS: usize = 2_000;
/// Objects created per store in the etcd part.
const ETCD_N: usize = 2_000;
const APP_IMAGE: &str = "wangyanglinux/myapp:v2";

/// The wall clock. Benchmarks measure the simulator itself, so here (and only here) the
/// real clock is the right one; nothing read from it reaches a simulation.
#[allow(clippy::disallowed_methods)]
fn wall_now() -> Instant {
    Instant::now()
}

/// Runs the benchmarks and returns a plain-text report.
pub async fn run(args: &BenchArgs) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut sizes = args.pods.clone();
    sizes.sort_unstable();
    sizes.dedup();
    writeln!(
        out,
        "== scale: {SCALE_NODES} nodes (1 control plane + {} workers), Deployments of {REPLICAS} replicas + one Service each, MemStore ==",
        SCALE_NODES - 1
    )?;
    writeln!(
        out,
        "peak RSS is VmHWM, a per-process high-water mark: sizes run in increasing order, so each figure is that size's peak (it includes the earlier, smaller runs' leftovers)."
    )?;
    if args.net {
        crate::bench_net::datapath(&mut out, 500).await?;
        crate::bench_net::rules(&mut out, 10_000)?;
    }
    let mut results: Vec<ScaleResult> = Vec::new();
    for &pods in &sizes {
        // Only the last size's sample is used: earlier ones must not count in this peak.
        for r in &mut results {
            r.sample_pods = Vec::new();
        }
        let r = scale_run(SCALE_NODES, pods).await?;
        r.report(&mut out)?;
        results.push(r);
    }
    if let (Some(first), Some(last)) = (results.first(), results.last()) {
        if results.len() > 1 && first.pods > 0 {
            let size_ratio = last.pods as f64 / first.pods as f64;
            let time_ratio = last.total.as_secs_f64() / first.total.as_secs_f64().max(1e-9);
            // Growth exponent k in time ∝ pods^k.
            let k = time_ratio.ln() / size_ratio.ln();
            writeln!(
                out,
                "growth {} -> {} pods ({size_ratio:.0}x): create+converge time x{time_ratio:.1} (~ pods^{k:.2}; 1.00 would be linear)",
                first.pods, last.pods
            )?;
        }
        if let Some(r) = results.iter().find(|r| r.pods == 10_000) {
            let secs = r.total.as_secs_f64();
            let mib = r.peak_rss_kib.map(|k| k as f64 / 1024.0);
            writeln!(
                out,
                "targets (10k pods <= 2 s, <= 500 MiB): time {secs:.2} s {}, peak RSS {} {}",
                if secs <= 2.0 { "MET" } else { "MISSED" },
                mib.map_or("unknown".to_owned(), |m| format!("{m:.0} MiB")),
                match mib {
                    Some(m) if m <= 500.0 => "MET",
                    Some(_) => "MISSED",
                    None => "(not measured)",
                }
            )?;
        }
    }
    if let Some(last) = results.last() {
        write_path(last, &mut out).await?;
    }
    if let Some(endpoints) = &args.etcd {
        writeln!(out)?;
        etcd_bench(endpoints, &mut out).await?;
    }
    Ok(out)
}

/// What one scale run measured.
#[derive(Debug)]
pub(crate) struct ScaleResult {
    pub pods: usize,
    pub nodes: usize,
    pub deployments: usize,
    pub boot: Duration,
    pub create: Duration,
    pub converge: Duration,
    pub total: Duration,
    /// Store writes (revisions) made during create + converge.
    pub writes: u64,
    /// Time spent in `settle` / `advance_to` / our convergence checks while converging.
    pub settle_time: Duration,
    pub advance_time: Duration,
    pub check_time: Duration,
    /// The slowest single settle or advance step.
    pub slowest_step: Duration,
    /// Loop iterations (one advance each, except the last).
    pub steps: usize,
    /// Virtual time the cluster took to converge.
    pub virtual_ms: i64,
    pub peak_rss_kib: Option<u64>,
    pub rss_before_kib: Option<u64>,
    /// Writes by (key's resource, create/update/delete).
    pub writes_by_kind: BTreeMap<(String, &'static str), u64>,
    /// Some converged pods, as the write-path figure's realistic objects.
    pub sample_pods: Vec<Arc<Value>>,
}

impl ScaleResult {
    fn report(&self, out: &mut String) -> anyhow::Result<()> {
        let secs = self.total.as_secs_f64().max(1e-9);
        writeln!(
            out,
            "-- {} pods: {} nodes, {} Deployments, {} Services",
            self.pods, self.nodes, self.deployments, self.deployments
        )?;
        writeln!(
            out,
            "   boot (not counted): {:.3} s",
            self.boot.as_secs_f64()
        )?;
        writeln!(
            out,
            "   create + converge: {:.3} s (create {:.3} s, converge {:.3} s), {} virtual ms",
            secs,
            self.create.as_secs_f64(),
            self.converge.as_secs_f64(),
            self.virtual_ms
        )?;
        writeln!(
            out,
            "   writes: {} ({:.0} writes/s, {:.1} writes per pod)",
            self.writes,
            self.writes as f64 / secs,
            self.writes as f64 / self.pods.max(1) as f64
        )?;
        writeln!(
            out,
            "   converge loop: {} steps; settle {:.3} s, advance_to {:.3} s, convergence checks {:.3} s, slowest step {:.3} s",
            self.steps,
            self.settle_time.as_secs_f64(),
            self.advance_time.as_secs_f64(),
            self.check_time.as_secs_f64(),
            self.slowest_step.as_secs_f64()
        )?;
        let kib = |k: Option<u64>| {
            k.map_or("unknown".to_owned(), |k| {
                format!("{:.0} MiB", k as f64 / 1024.0)
            })
        };
        writeln!(
            out,
            "   peak RSS (VmHWM): {} (RSS before this size: {})",
            kib(self.peak_rss_kib),
            kib(self.rss_before_kib)
        )?;
        let mut kinds: Vec<_> = self.writes_by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let parts: Vec<String> = kinds
            .iter()
            .map(|((res, op), n)| format!("{res} {op} {n}"))
            .collect();
        writeln!(out, "   writes by kind: {}", parts.join(", "))?;
        Ok(())
    }
}

fn node_configs(nodes: usize) -> Vec<NodeConfig> {
    (1..=nodes)
        .map(|i| NodeConfig {
            name: format!("node-{i:03}"),
            control_plane: i == 1,
        })
        .collect()
}

fn deployment(i: usize) -> Value {
    let app = format!("app{i}");
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": app, "labels": {"app": app}},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "myapp", "image": APP_IMAGE, "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn service(i: usize) -> Value {
    let app = format!("app{i}");
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": app},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}
    })
}

fn resource(plural: &str) -> anyhow::Result<&'static Resource> {
    find(plural).ok_or_else(|| anyhow!("unknown resource {plural}"))
}

/// True once every pod is Running and each of the first `apps` Services' Endpoints has
/// `REPLICAS` ready addresses.
fn converged(cluster: &Cluster, apps: usize) -> bool {
    let cache = cluster.cache();
    let pods_ok = cache
        .all("pods")
        .all(|p| str_at(p, "/status/phase") == Some("Running"));
    if !pods_ok || cache.all("pods").count() < apps * REPLICAS {
        return false;
    }
    (0..apps).all(|i| {
        let ready = cache
            .get("endpoints", &format!("default/app{i}"))
            .and_then(|ep| ep.get("subsets"))
            .and_then(Value::as_array)
            .map_or(0, |subsets| {
                subsets
                    .iter()
                    .filter_map(|s| s.get("addresses").and_then(Value::as_array))
                    .map(Vec::len)
                    .sum::<usize>()
            });
        ready == REPLICAS
    })
}

/// Boots a cluster of `nodes` nodes, creates `pods / 10` Deployments and as many Services,
/// and drives it to convergence, timing each part.
#[allow(clippy::disallowed_methods)] // reads the wall clock (via wall_now) to time the run
pub(crate) async fn scale_run(nodes: usize, pods: usize) -> anyhow::Result<ScaleResult> {
    if nodes < 2 {
        bail!("a scale run needs a control plane and at least one worker");
    }
    let apps = pods / REPLICAS;
    let rss_before_kib = read_status_kib("VmRSS");
    // Best effort: reset the high-water mark to the current RSS (Linux `clear_refs` 5).
    let _ = std::fs::write("/proc/self/clear_refs", "5");

    let config = ClusterConfig {
        nodes: node_configs(nodes),
        ..ClusterConfig::default()
    };
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let t0 = wall_now();
    let mut cluster = Cluster::new(config, store)
        .await
        .context("booting the cluster")?;
    let boot = t0.elapsed();
    let counts_before = cluster.api.write_counts();

    let t1 = wall_now();
    let deploy_res = resource("deployments")?;
    let svc_res = resource("services")?;
    for i in 0..apps {
        cluster
            .api
            .create(deploy_res, Some("default"), deployment(i))
            .await
            .with_context(|| format!("creating deployment app{i}"))?;
        cluster
            .api
            .create(svc_res, Some("default"), service(i))
            .await
            .with_context(|| format!("creating service app{i}"))?;
    }
    let create = t1.elapsed();

    let t2 = wall_now();
    let mut settle_time = Duration::ZERO;
    let mut advance_time = Duration::ZERO;
    let mut check_time = Duration::ZERO;
    let mut slowest_step = Duration::ZERO;
    let mut steps = 0usize;
    let virtual_start = cluster.now_ms();
    loop {
        let s = wall_now();
        cluster.settle().await?;
        let d = s.elapsed();
        settle_time += d;
        slowest_step = slowest_step.max(d);

        let c = wall_now();
        let done = converged(&cluster, apps);
        check_time += c.elapsed();
        if done {
            // Converged means every Event is stored too, not still queued for the writer.
            cluster.api.flush_events()?;
            break;
        }
        let Some(at) = cluster.next_timer_ms() else {
            bail!("{pods} pods: no timers left but the cluster has not converged");
        };
        let a = wall_now();
        cluster.advance_to(at).await?;
        let d = a.elapsed();
        advance_time += d;
        slowest_step = slowest_step.max(d);
        steps += 1;
    }
    let converge = t2.elapsed();
    let total = t1.elapsed();
    let peak_rss_kib = read_status_kib("VmHWM");
    let writes_by_kind = count_since(&cluster.api.write_counts(), &counts_before);
    let sample_pods = cluster
        .cache()
        .all_shared("pods")
        .filter(|p| str_at(p, "/metadata/namespace") == Some("default"))
        .take(WRITE_PATH_PODS)
        .cloned()
        .collect();

    Ok(ScaleResult {
        pods,
        nodes,
        deployments: apps,
        boot,
        create,
        converge,
        total,
        // Events have a store (and revisions) of their own: count writes, not revisions.
        writes: writes_by_kind.values().sum(),
        settle_time,
        advance_time,
        check_time,
        slowest_step,
        steps,
        virtual_ms: cluster.now_ms() - virtual_start,
        peak_rss_kib,
        rss_before_kib,
        writes_by_kind,
        sample_pods,
    })
}

/// Writes by (resource, operation) made after `before` was taken.
fn count_since(
    now: &BTreeMap<(&'static str, &'static str), u64>,
    before: &BTreeMap<(&'static str, &'static str), u64>,
) -> BTreeMap<(String, &'static str), u64> {
    now.iter()
        .map(|(&(res, op), n)| {
            let was = before.get(&(res, op)).copied().unwrap_or(0);
            ((res.to_owned(), op), n - was)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// A `kB` field of /proc/self/status (Linux only; `None` elsewhere).
fn read_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

fn configmap(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("bench-{i:05}")},
        "data": {"index": i.to_string(), "payload": "x".repeat(64)}
    })
}

/// An apiserver over `store` with the `default` namespace in place.
async fn api_over(store: Arc<dyn Store>) -> anyhow::Result<ApiServer> {
    let clock = Clock::new(apiserver::sim::DEFAULT_EPOCH_MS);
    let api = ApiServer::new(store, clock, SimRng::new(0, "bench"), ApiConfig::default()).await?;
    api.create(
        resource("namespaces")?,
        None,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
    )
    .await?;
    // The serviceaccount controller's part: pods are admitted only with one.
    api.create(
        resource("serviceaccounts")?,
        Some("default"),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
    )
    .await?;
    Ok(api)
}

/// `n` ConfigMap creates through the apiserver, sequentially; returns the elapsed time.
#[allow(clippy::disallowed_methods)] // reads the wall clock (via wall_now) to time the creates
async fn api_creates(api: &ApiServer, n: usize) -> anyhow::Result<Duration> {
    let cm = resource("configmaps")?;
    let t = wall_now();
    for i in 0..n {
        api.create(cm, Some("default"), configmap(i))
            .await
            .with_context(|| format!("creating configmap bench-{i:05}"))?;
    }
    Ok(t.elapsed())
}

/// `n` raw `Store::create` puts of `value`, sequentially; returns the elapsed time.
#[allow(clippy::disallowed_methods)] // reads the wall clock (via wall_now) to time the puts
async fn raw_creates(store: &dyn Store, value: &StoredValue, n: usize) -> anyhow::Result<Duration> {
    let t = wall_now();
    for i in 0..n {
        store
            .create(&format!("bench-raw/{i:05}"), value.clone())
            .await
            .with_context(|| format!("raw put {i}"))?;
    }
    Ok(t.elapsed())
}

/// The apiserver's own cost per write — admission, encode, MemStore, the kept decoded copy —
/// with no controller, watch or cache behind it: the floor under a scale run's time per
/// write. Uses the last scale run's converged pods (real shapes), re-created on a fresh
/// store, their status written back, and Events shaped as the cluster records them; then
/// prices that run's write mix at these rates.
#[allow(clippy::disallowed_methods)] // reads the wall clock (via wall_now) to time the writes
async fn write_path(run: &ScaleResult, out: &mut String) -> anyhow::Result<()> {
    if run.sample_pods.is_empty() {
        return Ok(());
    }
    let api = api_over(Arc::new(MemStore::new())).await?;
    let pods_res = resource("pods")?;
    let events_res = resource("events")?;
    let n = run.sample_pods.len();

    let t = wall_now();
    let mut created = Vec::with_capacity(n);
    for p in &run.sample_pods {
        let meta = p.get("metadata").cloned().unwrap_or(Value::Null);
        let body = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": meta.get("name"), "labels": meta.get("labels"),
                "ownerReferences": meta.get("ownerReferences")},
            "spec": p.get("spec"),
        });
        created.push(api.create_shared(pods_res, Some("default"), body).await?);
    }
    let create = t.elapsed();

    let t = wall_now();
    for (c, p) in created.iter().zip(&run.sample_pods) {
        let mut n = (**c).clone();
        n["status"] = p.get("status").cloned().unwrap_or(Value::Null);
        let name = str_at(c, "/metadata/name").unwrap_or_default().to_owned();
        api.update_status(pods_res, Some("default"), &name, n)
            .await?;
    }
    let update = t.elapsed();

    let t = wall_now();
    for (i, c) in created.iter().cycle().take(5 * n).enumerate() {
        let name = str_at(c, "/metadata/name").unwrap_or_default();
        let ev = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{i:x}"), "namespace": "default"},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": "default",
                "uid": c.pointer("/metadata/uid"), "resourceVersion": c.pointer("/metadata/resourceVersion")},
            "reason": "Pulled", "message": format!("Successfully pulled image \"{APP_IMAGE}\" in 2.1s"),
            "source": {"component": "kubelet", "host": "node-002"}, "type": "Normal",
            "firstTimestamp": "2020-10-27T10:00:05Z", "lastTimestamp": "2020-10-27T10:00:05Z", "count": 1,
            "reportingComponent": "kubelet", "reportingInstance": "node-002",
        });
        api.create_shared(events_res, Some("default"), ev).await?;
    }
    let events = t.elapsed();

    let us = |d: Duration, k: usize| d.as_secs_f64() * 1e6 / k.max(1) as f64;
    let (c_us, u_us, e_us) = (us(create, n), us(update, n), us(events, 5 * n));
    // The run's writes priced at these rates: Event creates, other creates, and updates.
    let count = |f: &dyn Fn(&str, &str) -> bool| -> f64 {
        run.writes_by_kind
            .iter()
            .filter(|((res, op), _)| f(res, op))
            .map(|(_, n)| *n as f64)
            .sum()
    };
    let floor = (count(&|r, o| r == "events" && o == "create") * e_us
        + count(&|r, o| r != "events" && o == "create") * c_us
        + count(&|_, o| o != "create") * u_us)
        / 1e6;
    writeln!(
        out,
        "apiserver write path alone (no controllers, watch or cache; MemStore; {n} converged pods): pod create {c_us:.1} us, pod status write {u_us:.1} us, Event create {e_us:.1} us; the {}-pod run's {} writes at these rates: {floor:.2} s",
        run.pods, run.writes
    )?;
    Ok(())
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

async fn etcd_bench(endpoints: &[String], out: &mut String) -> anyhow::Result<()> {
    let prefix = format!("/netsim-bench-{}", std::process::id());
    writeln!(
        out,
        "== etcd: {ETCD_N} sequential creates each, one task, endpoints {}, prefix {prefix} ==",
        endpoints.join(",")
    )?;
    let etcd = EtcdStore::connect(endpoints, &prefix)
        .await
        .context("connecting to etcd")?;
    let store: Arc<dyn Store> = Arc::new(etcd);
    let api = api_over(store.clone()).await?;
    let api_time = api_creates(&api, ETCD_N).await?;

    // The raw puts write exactly the bytes the apiserver stored for one ConfigMap.
    let cm = resource("configmaps")?;
    let sample = store
        .get(&cm.key(Some("default"), "bench-00000"))
        .await?
        .ok_or_else(|| anyhow!("the first ConfigMap is not in etcd"))?;
    let raw_time = raw_creates(store.as_ref(), &sample.value, ETCD_N).await?;

    let api_rate = per_sec(ETCD_N, api_time);
    let raw_rate = per_sec(ETCD_N, raw_time);
    let ratio = api_rate / raw_rate.max(1e-9);
    writeln!(
        out,
        "apiserver ConfigMap creates on etcd: {api_rate:.0} creates/s ({:.3} s, {:.0} µs each)",
        api_time.as_secs_f64(),
        api_time.as_secs_f64() * 1e6 / ETCD_N as f64
    )?;
    writeln!(
        out,
        "raw Store::create on etcd ({} bytes each): {raw_rate:.0} puts/s ({:.3} s, {:.0} µs each)",
        sample.value.bytes().len(),
        raw_time.as_secs_f64(),
        raw_time.as_secs_f64() * 1e6 / ETCD_N as f64
    )?;
    writeln!(
        out,
        "ratio apiserver/raw: {ratio:.2} (target >= 0.5: {})",
        if ratio >= 0.5 { "MET" } else { "MISSED" }
    )?;

    let mem: Arc<dyn Store> = Arc::new(MemStore::new());
    let mem_api = api_over(mem).await?;
    let mem_time = api_creates(&mem_api, ETCD_N).await?;
    writeln!(
        out,
        "apiserver ConfigMap creates on MemStore: {:.0} creates/s ({:.3} s) — {:.0}x the etcd rate",
        per_sec(ETCD_N, mem_time),
        mem_time.as_secs_f64(),
        per_sec(ETCD_N, mem_time) / api_rate.max(1e-9)
    )?;

    // Leave etcd as we found it (untimed).
    let page = store.list("", &Default::default()).await?;
    for kv in page.items {
        let _ = store.delete(&kv.key, None).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tiny_scale_run_converges() {
        let r = scale_run(5, 20).await.unwrap();
        assert_eq!(r.deployments, 2);
        assert!(r.writes > 0);
        assert!(r
            .writes_by_kind
            .contains_key(&("pods".to_owned(), "create")));
    }

    #[tokio::test]
    async fn write_path_prices_a_runs_writes() {
        let r = scale_run(5, 20).await.unwrap();
        assert!(r
            .sample_pods
            .iter()
            .all(|p| str_at(p, "/status/phase") == Some("Running")));
        assert_eq!(r.sample_pods.len(), 20);
        let mut out = String::new();
        write_path(&r, &mut out).await.unwrap();
        assert!(out.starts_with("apiserver write path alone"), "{out}");
        assert!(
            out.contains(&format!("the 20-pod run's {} writes", r.writes)),
            "{out}"
        );
    }

    /// The full benchmark, run by hand:
    /// `NETSIM_ETCD_ENDPOINTS=127.0.0.1:2379 cargo test --release -p netsim bench -- --ignored --nocapture`
    #[tokio::test]
    #[ignore = "minutes of wall time; run by hand in release"]
    async fn full_bench() {
        let etcd = std::env::var("NETSIM_ETCD_ENDPOINTS")
            .ok()
            .map(|e| e.split(',').map(str::to_owned).collect());
        let pods = std::env::var("NETSIM_BENCH_PODS")
            .ok()
            .map(|p| p.split(',').map(|n| n.parse().unwrap()).collect())
            .unwrap_or_else(|| vec![1_000, 10_000]);
        let report = run(&BenchArgs {
            pods,
            etcd,
            net: true,
        })
        .await
        .unwrap();
        println!("{report}");
    }

    #[test]
    fn status_fields_parse() {
        // Linux only; elsewhere there is no /proc and the field is simply unknown.
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(read_status_kib("VmRSS").is_some_and(|k| k > 0));
        }
    }
}
