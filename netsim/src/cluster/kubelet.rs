//! Kubelets: one per node, simulated. A bound pod gets a sandbox and an IP from the node's
//! podCIDR (host-local: sequential from .2, freed IPs not reused at once), then its image is
//! pulled (slow the first time on a node, "already present" after) and it runs; an image
//! that does not exist goes ErrImagePull → ImagePullBackOff with kubelet's back-off.
//! Containers are ready as soon as they run (readiness probes are not simulated); one whose
//! process ends is restarted by the pod's restartPolicy (`containers.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use apiserver::json::At;
use apiserver::resources::find;
use apiserver::ApiError;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::cache::{object, or_null, str_at, without, Key};
use super::{ignore_not_found, split_key, Cluster, ClusterError};
use crate::images;

/// How long the kubelet takes to start a pod's sandbox (pause container, CNI ADD) before
/// its first image pull or container start: 0.6–1.5 s, read off the pod's uid so that it
/// draws nothing from the cluster's RNG. Retries reuse the sandbox.
fn sandbox_delay_ms(uid: &str, attempt: u32) -> i64 {
    if attempt > 0 {
        return 0;
    }
    let h = uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    600 + (h % 900) as i64
}

/// When the pod worker syncs a pod again after a failed sync: kubelet's backOffPeriod
/// (10 s) with its 0.5 jitter, the jitter read off the uid and the resync's number.
pub(super) fn resync_delay_ms(uid: &str, n: u32) -> i64 {
    let h = uid
        .bytes()
        .chain(n.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    10_000 + (h % 5_000) as i64
}

/// What a kubelet is waiting for.
#[derive(Debug, Clone)]
pub enum Timer {
    /// Images are in; containers start.
    Started { key: Key, uid: String },
    /// A pull attempt failed (the image does not exist).
    PullFailed { key: Key, uid: String, attempt: u32 },
    /// Back-off elapsed: try pulling again.
    RetryPull { key: Key, uid: String, attempt: u32 },
    /// Containers stopped after SIGTERM: the kubelet removes the pod.
    Stopped { key: Key, uid: String },
    /// Container `container`'s process ended by itself (in its run number `restarts`).
    Exited {
        key: Key,
        uid: String,
        container: usize,
        restarts: i64,
        code: i32,
    },
    /// The sync after an exit: restart now, or report CrashLoopBackOff and wait.
    CrashBackOff {
        key: Key,
        uid: String,
        container: usize,
        restarts: i64,
    },
    /// A pod worker's resync during a crash back-off (the kubelet requeues a failed sync
    /// after 10–15 s): "Back-off restarting failed container" again, until `until`.
    CrashBackOffResync {
        key: Key,
        uid: String,
        container: usize,
        restarts: i64,
        until: i64,
        n: u32,
    },
    /// The same during an image pull back-off: "Back-off pulling image" and
    /// "Error: ImagePullBackOff" again, until the next pull at `until`.
    PullBackOffResync {
        key: Key,
        uid: String,
        until: i64,
        n: u32,
    },
    /// The crash back-off elapsed: start the container again.
    Restart {
        key: Key,
        uid: String,
        container: usize,
        restarts: i64,
    },
    /// Container `container`, killed because its definition (image) changed, has stopped
    /// with `code`; it starts again from the new definition.
    Redefined {
        key: Key,
        uid: String,
        container: usize,
        restarts: i64,
        code: i32,
    },
    /// The sync after that: start the container from its new definition.
    StartRedefined {
        key: Key,
        uid: String,
        container: usize,
        restarts: i64,
    },
    /// ingress-nginx's leader polls the status of its Ingresses (`cluster::ingress`).
    IngressStatus,
    /// A workload controller's back-off after a refused pod create ran out: sync it again.
    Requeue { owner: Owner, key: Key },
}

/// The workload controllers that create pods.
#[allow(clippy::enum_variant_names)] // named as the Kubernetes kinds they are
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    ReplicaSet,
    DaemonSet,
    StatefulSet,
}

#[derive(Default)]
pub struct KubeletState {
    /// Pods this kubelet has started handling (by uid).
    seen: BTreeSet<String>,
    terminating: BTreeSet<String>,
    /// Images present per node (`repo:tag`).
    pub(super) images: BTreeSet<(String, String)>,
    /// host-local IPAM per node: last index handed out, and IPs in use.
    last_ip: BTreeMap<String, u32>,
    used_ips: BTreeSet<Ipv4Addr>,
    ip_of: BTreeMap<String, Ipv4Addr>,
    /// Crash back-off per (pod uid, container index).
    pub(super) backoff: BTreeMap<(String, usize), super::containers::Backoff>,
    /// Containers being replaced after a definition change: when their new image's pull
    /// began (ms), if it had to be pulled.
    pub(super) redefining: BTreeMap<(String, usize), Option<i64>>,
    /// Containers whose new image does not exist, with that image.
    pub(super) bad_images: BTreeMap<(String, usize), String>,
    /// Each image reference's `imageID`: a digest of the name, made once per image rather
    /// than once per container start.
    image_ids: BTreeMap<String, String>,
}

impl KubeletState {
    /// Drops what was kept for a pod that is gone.
    pub fn forget(&mut self, uid: &str) {
        self.backoff.retain(|(u, _), _| u != uid);
        self.redefining.retain(|(u, _), _| u != uid);
        self.bad_images.retain(|(u, _), _| u != uid);
    }

    /// The `imageID` a container of `image` reports.
    pub(super) fn image_id(&mut self, image: &str) -> String {
        if let Some(id) = self.image_ids.get(image) {
            return id.clone();
        }
        let id = image_id(image);
        self.image_ids.insert(image.to_owned(), id.clone());
        id
    }

    pub fn preload_image(&mut self, node: &str, image: &str) {
        self.images
            .insert((node.to_owned(), images::qualified(image)));
    }

    /// Takes over a pod found in a kept store: its IP, and for running pods the sandbox and
    /// images, so a restart of netsim does not restart them.
    pub fn adopt(&mut self, pod: &Value) {
        let Some(node) = str_at(pod, &["spec", "nodeName"]) else {
            return;
        };
        let running = str_at(pod, &["status", "phase"]) == Some("Running");
        let host_network = pod.at(&["spec", "hostNetwork"]).and_then(Value::as_bool) == Some(true);
        let uid = str_at(pod, &["metadata", "uid"])
            .unwrap_or_default()
            .to_owned();
        if let Some(ip) = str_at(pod, &["status", "podIP"]).and_then(|i| i.parse::<Ipv4Addr>().ok())
        {
            if !host_network {
                self.used_ips.insert(ip);
                self.ip_of.insert(uid.clone(), ip);
            }
        }
        if running {
            self.seen.insert(uid);
            for c in pod
                .at(&["spec", "containers"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(image) = c.get("image").and_then(Value::as_str) {
                    self.preload_image(node, image);
                }
            }
        }
    }
}

pub(super) fn pods_res() -> Result<&'static apiserver::resources::Resource, ApiError> {
    find("pods").ok_or_else(|| ApiError::internal("no pods resource"))
}

fn image_id(image: &str) -> String {
    let q = images::qualified(image);
    let digest = Sha256::digest(q.as_bytes());
    // One String, not a formatted one per byte: this runs for every container start.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    let repo = q.rsplit_once(':').map(|(r, _)| r).unwrap_or(&q);
    format!("{repo}@sha256:{hex}")
}

impl Cluster {
    fn node_ip(&self, node: &str) -> Option<String> {
        self.cache
            .get("nodes", node)
            .and_then(|n| n.at(&["status", "addresses", "0", "address"]))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn allocate_pod_ip(&mut self, node: &str) -> Option<Ipv4Addr> {
        let cidr = self
            .cache
            .get("nodes", node)
            .and_then(|n| str_at(n, &["spec", "podCIDR"]))?
            .to_owned();
        let base: Ipv4Addr = cidr.split('/').next()?.parse().ok()?;
        let base = u32::from(base);
        let last = self.kubelet.last_ip.get(node).copied().unwrap_or(1);
        for step in 1..=253u32 {
            let idx = (last - 1 + step) % 253 + 1; // 1..=253, then wrap
            if idx < 2 {
                continue;
            }
            let ip = Ipv4Addr::from(base + idx);
            if !self.kubelet.used_ips.contains(&ip) {
                self.kubelet.used_ips.insert(ip);
                self.kubelet.last_ip.insert(node.to_owned(), idx);
                return Some(ip);
            }
        }
        None
    }

    pub(super) async fn run_kubelets(&mut self, keys: BTreeSet<Key>) -> Result<(), ClusterError> {
        for key in keys {
            let Some(pod) = self.cache.get_shared("pods", &key).cloned() else {
                continue;
            };
            let uid = str_at(&pod, &["metadata", "uid"])
                .unwrap_or_default()
                .to_owned();
            let Some(node) = str_at(&pod, &["spec", "nodeName"]).map(str::to_owned) else {
                continue;
            };
            if pod.at(&["metadata", "deletionTimestamp"]).is_some() {
                if self.kubelet.terminating.insert(uid.clone()) {
                    let grace = pod
                        .at(&["metadata", "deletionGracePeriodSeconds"])
                        .and_then(Value::as_i64)
                        .unwrap_or(30)
                        * 1000;
                    // Only running processes get SIGTERM and a grace period to use.
                    let running = str_at(&pod, &["status", "phase"]) == Some("Running")
                        && pod
                            .at(&["status", "containerStatuses"])
                            .and_then(Value::as_array)
                            .is_some_and(|cs| {
                                cs.iter().any(|c| c.at(&["state", "running"]).is_some())
                            });
                    let quick = pod
                        .at(&["spec", "containers"])
                        .and_then(Value::as_array)
                        .is_some_and(|cs| {
                            cs.iter().all(|c| {
                                c.get("image")
                                    .and_then(Value::as_str)
                                    .and_then(images::lookup)
                                    .is_some_and(|i| i.stops_on_sigterm)
                            })
                        });
                    let delay = if !running {
                        0
                    } else if quick {
                        grace.min(1000)
                    } else {
                        grace
                    };
                    let at = self.clock.now_ms() + delay;
                    self.schedule(
                        at,
                        Timer::Stopped {
                            key: key.clone(),
                            uid,
                        },
                    );
                }
                continue;
            }
            if !self.kubelet.seen.insert(uid.clone()) {
                self.check_definitions(&key, &uid, &pod).await?;
                continue;
            }
            self.start_sandbox(&key, &uid, &node, &pod).await?;
        }
        Ok(())
    }

    async fn start_sandbox(
        &mut self,
        key: &Key,
        uid: &str,
        node: &str,
        pod: &Value,
    ) -> Result<(), ClusterError> {
        let host_ip = self.node_ip(node).unwrap_or_default();
        let host_network = pod.at(&["spec", "hostNetwork"]).and_then(Value::as_bool) == Some(true);
        let pod_ip = if host_network {
            Some(host_ip.clone())
        } else if let Some(ip) = self.kubelet.ip_of.get(uid) {
            // A sandbox that survived a restart of netsim keeps its IP.
            Some(ip.to_string())
        } else {
            self.allocate_pod_ip(node).map(|ip| ip.to_string())
        };
        if let Some(ip) = pod_ip.as_ref().and_then(|i| i.parse().ok()) {
            self.kubelet.ip_of.insert(uid.to_owned(), ip);
        }
        let now = self.clock.now_rfc3339();
        let containers: Vec<Value> = pod
            .at(&["spec", "containers"])
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // Built field by field, in key order (`json!` would serialize every borrowed field
        // into a new value): this runs once for every pod.
        let text = |s: &str| Value::String(s.to_owned());
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| {
                object([
                    ("image", or_null(c.get("image"))),
                    ("imageID", text("")),
                    ("lastState", object([])),
                    ("name", or_null(c.get("name"))),
                    ("ready", false.into()),
                    ("restartCount", 0.into()),
                    ("started", false.into()),
                    (
                        "state",
                        object([("waiting", object([("reason", text("ContainerCreating"))]))]),
                    ),
                ])
            })
            .collect();
        // Whole, in key order: fields added afterwards would each grow the map.
        let condition = |kind: &str, ok: bool, at: Value| {
            if ok {
                return object([
                    ("lastProbeTime", Value::Null),
                    ("lastTransitionTime", at),
                    ("status", text("True")),
                    ("type", text(kind)),
                ]);
            }
            let message = format!("containers with unready status: [{}]", names(&containers));
            object([
                ("lastProbeTime", Value::Null),
                ("lastTransitionTime", at),
                ("message", Value::String(message)),
                ("reason", text("ContainersNotReady")),
                ("status", text("False")),
                ("type", text(kind)),
            ])
        };
        let ips = |ip: &str| Value::Array(vec![object([("ip", text(ip))])]);
        let mut status = object([
            (
                "conditions",
                Value::Array(vec![
                    condition("PodReadyToStartContainers", true, text(&now)),
                    condition("Initialized", true, text(&now)),
                    condition("Ready", false, text(&now)),
                    condition("ContainersReady", false, text(&now)),
                    condition(
                        "PodScheduled",
                        true,
                        or_null(pod.at(&["metadata", "creationTimestamp"])),
                    ),
                ]),
            ),
            ("containerStatuses", Value::Array(statuses)),
            ("hostIP", text(&host_ip)),
            ("hostIPs", ips(&host_ip)),
            ("phase", text("Pending")),
            ("qosClass", text("BestEffort")),
            ("startTime", text(&now)),
        ]);
        if let Some(ip) = &pod_ip {
            status["podIP"] = text(ip);
            status["podIPs"] = ips(ip);
        }
        let (ns, name) = split_key(key);
        let mut n = without(pod, &["status"]);
        n["status"] = status;
        let Some(updated) =
            ignore_not_found(self.api.update_status(pods_res()?, ns, name, n).await)?
        else {
            return Ok(());
        };
        self.begin_pull(key, uid, node, &updated, 0).await
    }

    /// Pulls what is missing; schedules the start or the failure. A first attempt waits for
    /// the pod's sandbox (the pause container and its CNI setup) before anything else.
    async fn begin_pull(
        &mut self,
        key: &Key,
        uid: &str,
        node: &str,
        pod: &Value,
        attempt: u32,
    ) -> Result<(), ClusterError> {
        let containers: Vec<Value> = pod
            .at(&["spec", "containers"])
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut total_ms = 0i64;
        for c in &containers {
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            let policy = c
                .get("imagePullPolicy")
                .and_then(Value::as_str)
                .unwrap_or("IfNotPresent");
            let present = self
                .kubelet
                .images
                .contains(&(node.to_owned(), images::qualified(image)));
            if present && policy != "Always" {
                if attempt == 0 {
                    self.record_event(
                        pod,
                        "Normal",
                        "Pulled",
                        format!("Container image \"{image}\" already present on machine"),
                        "kubelet",
                        Some(node),
                    )
                    .await?;
                }
                continue;
            }
            self.record_event(
                pod,
                "Normal",
                "Pulling",
                format!("Pulling image \"{image}\""),
                "kubelet",
                Some(node),
            )
            .await?;
            match images::lookup(image) {
                None => {
                    let at = self.clock.now_ms()
                        + sandbox_delay_ms(uid, attempt)
                        + 1500
                        + self.rng.below(1500) as i64;
                    self.schedule(
                        at,
                        Timer::PullFailed {
                            key: key.clone(),
                            uid: uid.to_owned(),
                            attempt,
                        },
                    );
                    return Ok(());
                }
                Some(info) => {
                    // Present images re-pulled with `Always` only check the digest.
                    let ms = if present {
                        600 + self.rng.below(400) as i64
                    } else {
                        5_000 + (info.size_bytes / 1_000) as i64 + self.rng.below(5_000) as i64
                    };
                    total_ms += ms;
                }
            }
        }
        let at = self.clock.now_ms() + sandbox_delay_ms(uid, attempt) + total_ms + 300;
        self.schedule(
            at,
            Timer::Started {
                key: key.clone(),
                uid: uid.to_owned(),
            },
        );
        Ok(())
    }

    pub(super) async fn fire(&mut self, t: Timer) -> Result<(), ClusterError> {
        match t {
            Timer::IngressStatus => self.ingress_status_tick().await,
            Timer::StartRedefined {
                key,
                uid,
                container,
                restarts,
            } => self.start_redefined(&key, &uid, container, restarts).await,
            Timer::Redefined {
                key,
                uid,
                container,
                restarts,
                code,
            } => {
                self.redefined_stopped(&key, &uid, container, restarts, code)
                    .await
            }
            Timer::Requeue { owner, key } => {
                match owner {
                    Owner::ReplicaSet => self.dirty.replicasets.insert(key),
                    Owner::DaemonSet => self.dirty.daemonsets.insert(key),
                    Owner::StatefulSet => self.dirty.statefulsets.insert(key),
                };
                Ok(())
            }
            Timer::Started { key, uid } => self.containers_started(&key, &uid).await,
            Timer::PullFailed { key, uid, attempt } => self.pull_failed(&key, &uid, attempt).await,
            Timer::RetryPull { key, uid, attempt } if attempt == u32::MAX => {
                self.report_backoff(&key, &uid).await
            }
            Timer::PullBackOffResync { key, uid, until, n } => {
                self.pull_backoff_resync(&key, &uid, until, n).await
            }
            Timer::CrashBackOffResync {
                key,
                uid,
                container,
                restarts,
                until,
                n,
            } => {
                self.crash_backoff_resync(&key, &uid, container, restarts, until, n)
                    .await
            }
            Timer::RetryPull { key, uid, attempt } => {
                let Some(pod) = self.live_pod(&key, &uid) else {
                    return Ok(());
                };
                let node = str_at(&pod, &["spec", "nodeName"])
                    .unwrap_or_default()
                    .to_owned();
                self.begin_pull(&key, &uid, &node, &pod, attempt).await
            }
            Timer::Exited {
                key,
                uid,
                container,
                restarts,
                code,
            } => {
                self.container_exited(&key, &uid, container, restarts, code)
                    .await
            }
            Timer::CrashBackOff {
                key,
                uid,
                container,
                restarts,
            } => self.crash_backoff(&key, &uid, container, restarts).await,
            Timer::Restart {
                key,
                uid,
                container,
                restarts,
            } => self.restart_or_pull(&key, &uid, container, restarts).await,
            Timer::Stopped { key, uid } => {
                let Some(pod) = self.cache.get("pods", &key).cloned() else {
                    return Ok(());
                };
                if str_at(&pod, &["metadata", "uid"]) != Some(uid.as_str()) {
                    return Ok(());
                }
                if let Some(ip) = self.kubelet.ip_of.remove(&uid) {
                    self.kubelet.used_ips.remove(&ip);
                }
                let (ns, name) = split_key(&key);
                ignore_not_found(self.api.delete(pods_res()?, ns, name, Some(0)).await)?;
                Ok(())
            }
        }
    }

    fn live_pod(&self, key: &str, uid: &str) -> Option<Arc<Value>> {
        self.cache
            .get_shared("pods", key)
            .filter(|p| {
                str_at(p, &["metadata", "uid"]) == Some(uid)
                    && p.at(&["metadata", "deletionTimestamp"]).is_none()
            })
            .cloned()
    }

    async fn containers_started(&mut self, key: &Key, uid: &str) -> Result<(), ClusterError> {
        let Some(pod) = self.live_pod(key, uid) else {
            return Ok(());
        };
        if str_at(&pod, &["metadata", "labels", "k8s-app"]) == Some("kube-proxy") {
            // kube-proxy reads its mode from the ConfigMap when it starts, and only then.
            let node = str_at(&pod, &["spec", "nodeName"])
                .unwrap_or_default()
                .to_owned();
            let mode = self
                .cache
                .get("configmaps", "kube-system/kube-proxy")
                .and_then(|cm| str_at(cm, &["data", "config.conf"]))
                .and_then(|c| c.lines().find_map(|l| l.strip_prefix("mode:")))
                .map(|m| m.trim().trim_matches('"').to_owned())
                .unwrap_or_default();
            let mode = if mode.is_empty() {
                "iptables".to_owned()
            } else {
                mode
            };
            self.proxy_modes.insert(node, mode);
        }
        let node = str_at(&pod, &["spec", "nodeName"])
            .unwrap_or_default()
            .to_owned();
        let now = self.clock.now_rfc3339();
        let containers: Vec<Value> = pod
            .at(&["spec", "containers"])
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let started_ms = self.clock.now_ms();
        let pull_started = str_at(&pod, &["status", "startTime"])
            .and_then(apiserver::sim::parse_rfc3339)
            .unwrap_or(started_ms);
        let mut statuses = Vec::new();
        for c in &containers {
            let image = c
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let cname = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let q = images::qualified(&image);
            // Pulled now: new on this node, or pulled again by an `Always` policy.
            let always = c.get("imagePullPolicy").and_then(Value::as_str) == Some("Always");
            if self.kubelet.images.insert((node.clone(), q.clone())) || always {
                let took = super::containers::go_duration(
                    (started_ms - pull_started - 300 - sandbox_delay_ms(uid, 0)).max(0),
                );
                let size = images::lookup(&image).map(|i| i.size_bytes).unwrap_or(0);
                self.record_event(&pod, "Normal", "Pulled", format!("Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {size} bytes."), "kubelet", Some(&node)).await?;
            }
            self.record_event(
                &pod,
                "Normal",
                "Created",
                format!("Created container: {cname}"),
                "kubelet",
                Some(&node),
            )
            .await?;
            self.record_event(
                &pod,
                "Normal",
                "Started",
                format!("Started container {cname}"),
                "kubelet",
                Some(&node),
            )
            .await?;
            // Field by field, in key order (see `start_sandbox`).
            statuses.push(object([
                (
                    "containerID",
                    Value::String(format!("containerd://{}", self.rng.hex(64))),
                ),
                ("image", Value::String(q)),
                ("imageID", Value::String(self.kubelet.image_id(&image))),
                ("lastState", object([])),
                ("name", Value::String(cname)),
                ("ready", true.into()),
                ("restartCount", 0.into()),
                ("started", true.into()),
                (
                    "state",
                    object([(
                        "running",
                        object([("startedAt", Value::String(now.clone()))]),
                    )]),
                ),
            ]));
        }
        let mut n = (*pod).clone();
        n["status"]["phase"] = json!("Running");
        n["status"]["containerStatuses"] = Value::Array(statuses);
        // Not `pointer_mut`: it copies each token into a String (this runs once per pod).
        if let Some(conds) = n
            .get_mut("status")
            .and_then(|s| s.get_mut("conditions"))
            .and_then(Value::as_array_mut)
        {
            for c in conds.iter_mut() {
                if matches!(
                    c.get("type").and_then(Value::as_str),
                    Some("Ready") | Some("ContainersReady")
                ) {
                    *c = object([
                        ("lastProbeTime", Value::Null),
                        ("lastTransitionTime", Value::String(now.clone())),
                        ("status", "True".into()),
                        ("type", or_null(c.get("type"))),
                    ]);
                }
            }
        }
        let (ns, name) = split_key(key);
        ignore_not_found(self.api.update_status(pods_res()?, ns, name, n).await)?;
        self.schedule_exits(key, &pod, &[]);
        Ok(())
    }

    /// A pull of an image that does not exist: containerd's error as the kubelet's two
    /// `Failed` events; returns the ErrImagePull waiting message.
    pub(super) async fn image_missing(
        &mut self,
        pod: &Value,
        node: &str,
        image: &str,
    ) -> Result<String, ClusterError> {
        let why = format!(
            "failed to pull and unpack image \"{q}\": failed to resolve reference \"{q}\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed",
            q = images::qualified(image)
        );
        for message in [
            format!("Failed to pull image \"{image}\": {why}"),
            "Error: ErrImagePull".to_owned(),
        ] {
            self.record_event(pod, "Warning", "Failed", message, "kubelet", Some(node))
                .await?;
        }
        Ok(format!("failed to pull image \"{image}\": {why}"))
    }

    async fn pull_failed(
        &mut self,
        key: &Key,
        uid: &str,
        attempt: u32,
    ) -> Result<(), ClusterError> {
        let Some(pod) = self.live_pod(key, uid) else {
            return Ok(());
        };
        let node = str_at(&pod, &["spec", "nodeName"])
            .unwrap_or_default()
            .to_owned();
        let image = pod
            .at(&["spec", "containers", "0", "image"])
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let waiting = self.image_missing(&pod, &node, &image).await?;
        self.set_waiting(key, &pod, "ErrImagePull", &waiting)
            .await?;
        // kubelet image back-off: 10s doubling to a 5 minute cap.
        let backoff_ms = (10_000i64 << attempt.min(5)).min(300_000);
        let now = self.clock.now_ms();
        // The next sync (about a second later) reports the back-off.
        self.schedule(
            now + 1_000,
            Timer::RetryPull {
                key: key.clone(),
                uid: uid.to_owned(),
                attempt: u32::MAX,
            },
        );
        self.schedule(
            now + backoff_ms,
            Timer::RetryPull {
                key: key.clone(),
                uid: uid.to_owned(),
                attempt: attempt + 1,
            },
        );
        let next = now + 1_000 + resync_delay_ms(uid, 0);
        if next < now + backoff_ms {
            self.schedule(
                next,
                Timer::PullBackOffResync {
                    key: key.clone(),
                    uid: uid.to_owned(),
                    until: now + backoff_ms,
                    n: 0,
                },
            );
        }
        Ok(())
    }

    /// A resync inside an image pull back-off reports the back-off again (the status is
    /// unchanged, so nothing is written) and requeues itself while the back-off lasts.
    async fn pull_backoff_resync(
        &mut self,
        key: &Key,
        uid: &str,
        until: i64,
        n: u32,
    ) -> Result<(), ClusterError> {
        let Some(pod) = self.live_pod(key, uid) else {
            return Ok(());
        };
        let waiting = str_at(&pod, "/status/containerStatuses/0/state/waiting/reason");
        if waiting != Some("ImagePullBackOff") {
            return Ok(());
        }
        self.record_pull_backoff(&pod).await?;
        let next = self.clock.now_ms() + resync_delay_ms(uid, n + 1);
        if next < until {
            self.schedule(
                next,
                Timer::PullBackOffResync {
                    key: key.clone(),
                    uid: uid.to_owned(),
                    until,
                    n: n + 1,
                },
            );
        }
        Ok(())
    }

    async fn set_waiting(
        &mut self,
        key: &Key,
        pod: &Value,
        reason: &str,
        message: &str,
    ) -> Result<(), ClusterError> {
        let mut n = pod.clone();
        if let Some(cs) = n
            .pointer_mut("/status/containerStatuses")
            .and_then(Value::as_array_mut)
        {
            for c in cs.iter_mut() {
                c["state"] = json!({"waiting": {"reason": reason, "message": message}});
            }
        }
        let (ns, name) = split_key(key);
        ignore_not_found(self.api.update_status(pods_res()?, ns, name, n).await)?;
        Ok(())
    }
}

impl Cluster {
    /// The sync after a failed pull reports the back-off (`RetryPull` with `u32::MAX`).
    pub(super) async fn report_backoff(
        &mut self,
        key: &Key,
        uid: &str,
    ) -> Result<(), ClusterError> {
        let Some(pod) = self.live_pod(key, uid) else {
            return Ok(());
        };
        let image = self.record_pull_backoff(&pod).await?;
        self.set_waiting(
            key,
            &pod,
            "ImagePullBackOff",
            &format!("Back-off pulling image \"{image}\""),
        )
        .await
    }
}

impl Cluster {
    /// The two Events of a sync inside an image pull back-off; returns the image.
    async fn record_pull_backoff(&mut self, pod: &Value) -> Result<String, ClusterError> {
        let node = str_at(pod, &["spec", "nodeName"])
            .unwrap_or_default()
            .to_owned();
        let image = str_at(pod, &["spec", "containers", "0", "image"])
            .unwrap_or_default()
            .to_owned();
        self.record_event(
            pod,
            "Normal",
            "BackOff",
            format!("Back-off pulling image \"{image}\""),
            "kubelet",
            Some(&node),
        )
        .await?;
        self.record_event(
            pod,
            "Warning",
            "Failed",
            "Error: ImagePullBackOff".to_owned(),
            "kubelet",
            Some(&node),
        )
        .await?;
        Ok(image)
    }
}

fn names(containers: &[Value]) -> String {
    containers
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}
