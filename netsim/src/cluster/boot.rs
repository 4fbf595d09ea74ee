//! Booting a cluster the way kubeadm leaves one: namespaces, nodes with sequential
//! podCIDRs, the `kubernetes` Service, control-plane static pods, kube-proxy and CoreDNS.
//!
//! Decisions: nodes sit on a kind-like node network, `172.18.0.2` upward in declaration
//! order; node IPAM hands out `10.244.<i>.0/24` in the same order (the cidrset allocator is
//! sequential); system images are pre-pulled (kubeadm's `config images pull`); the
//! scenario's first command runs once every system pod is Running.

use std::net::Ipv4Addr;

use apiserver::json::At;
use apiserver::resources::find;
use apiserver::ApiError;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Cluster, ClusterError};

/// Kubernetes version the simulated nodes report.
pub const KUBELET_VERSION: &str = "v1.34.0";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub name: String,
    pub control_plane: bool,
}

/// How long before the epoch (the lab's first step) kubeadm set the cluster up: nodes,
/// kube-system pods and the `kubernetes` Service are this old when a scenario starts, as on
/// a lab cluster built for the session, and their boot Events are still within
/// kube-apiserver's one-hour `--event-ttl`.
pub const CLUSTER_AGE_MS: i64 = 30 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub seed: u64,
    pub epoch_ms: i64,
    pub nodes: Vec<NodeConfig>,
    /// userspace | iptables | ipvs | nftables (used by the data path).
    pub proxy_mode: String,
    pub node_network_base: Ipv4Addr,
    /// Addresses the built-in LoadBalancer hands out (MetalLB-like); `None`: EXTERNAL-IP
    /// stays `<pending>`, as on a cluster without a load-balancer implementation.
    pub lb_pool: Option<(Ipv4Addr, Ipv4Addr)>,
    /// The client outside the cluster (`on: external`), on the node network.
    pub external_ip: Ipv4Addr,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        let node = |n: &str, cp: bool| NodeConfig {
            name: n.to_owned(),
            control_plane: cp,
        };
        ClusterConfig {
            seed: 0,
            epoch_ms: apiserver::sim::DEFAULT_EPOCH_MS,
            nodes: vec![
                node("k8s-master", true),
                node("zhangliang", false),
                node("kongming", false),
                node("laojun", false),
            ],
            proxy_mode: "iptables".to_owned(),
            node_network_base: Ipv4Addr::new(172, 18, 0, 2),
            lb_pool: Some((
                Ipv4Addr::new(172, 18, 255, 200),
                Ipv4Addr::new(172, 18, 255, 250),
            )),
            external_ip: Ipv4Addr::new(172, 18, 0, 100),
        }
    }
}

impl ClusterConfig {
    pub fn node_ip(&self, index: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.node_network_base) + index as u32)
    }

    pub fn control_plane(&self) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.control_plane)
    }
}

/// kubeadm's KubeProxyConfiguration (the fields a lab touches; `mode: ""` means iptables).
pub fn kube_proxy_config(mode: &str) -> String {
    format!(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nbindAddress: 0.0.0.0\nclientConnection:\n  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\nclusterCIDR: 10.244.0.0/16\nipvs:\n  scheduler: \"\"\nkind: KubeProxyConfiguration\nmode: \"{mode}\"\n"
    )
}

const COREDNS_IMAGE: &str = "registry.k8s.io/coredns/coredns:v1.12.1";
const KUBE_PROXY_IMAGE: &str = "registry.k8s.io/kube-proxy:v1.34.0";
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// kube-system's ServiceAccounts on a kubeadm v1.34 cluster other than `default`: one per
/// kube-controller-manager controller (`--controllers=*,bootstrapsigner,tokencleaner`,
/// with the DynamicResourceAllocation and VolumeAttributesClass gates on by default), plus
/// kubeadm's coredns and kube-proxy.
const KUBE_SYSTEM_SERVICE_ACCOUNTS: [&str; 38] = [
    "attachdetach-controller",
    "bootstrap-signer",
    "certificate-controller",
    "clusterrole-aggregation-controller",
    "coredns",
    "cronjob-controller",
    "daemon-set-controller",
    "deployment-controller",
    "disruption-controller",
    "endpoint-controller",
    "endpointslice-controller",
    "endpointslicemirroring-controller",
    "ephemeral-volume-controller",
    "expand-controller",
    "generic-garbage-collector",
    "horizontal-pod-autoscaler",
    "job-controller",
    "kube-proxy",
    "legacy-service-account-token-cleaner",
    "namespace-controller",
    "node-controller",
    "persistent-volume-binder",
    "pod-garbage-collector",
    "pv-protection-controller",
    "pvc-protection-controller",
    "replicaset-controller",
    "replication-controller",
    "resource-claim-controller",
    "resourcequota-controller",
    "root-ca-cert-publisher",
    "service-account-controller",
    "service-cidrs-controller",
    "statefulset-controller",
    "token-cleaner",
    "ttl-after-finished-controller",
    "ttl-controller",
    "validatingadmissionpolicy-status-controller",
    "volumeattributesclass-protection-controller",
];

impl Cluster {
    async fn create(
        &self,
        plural: &str,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, ClusterError> {
        let res =
            find(plural).ok_or_else(|| ApiError::internal(format!("unknown resource {plural}")))?;
        Ok(self.api.create(res, ns, obj).await?)
    }

    pub(super) async fn boot(&mut self) -> Result<(), ClusterError> {
        if self.cache.get("namespaces", "kube-system").is_some() {
            // Already booted (a kept etcd): carry on from the stored state.
            self.settle().await?;
            return self.advance_to_epoch().await;
        }
        for ns in ["default", "kube-node-lease", "kube-public", "kube-system"] {
            self.create(
                "namespaces",
                None,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .await?;
        }
        // kube-controller-manager runs each controller under its own ServiceAccount
        // (kubeadm sets --use-service-account-credentials) and creates them as it starts;
        // kubeadm's addon phase adds coredns and kube-proxy. `default` comes from the
        // serviceaccount controller, like every namespace's.
        for sa in KUBE_SYSTEM_SERVICE_ACCOUNTS {
            self.create(
                "serviceaccounts",
                Some("kube-system"),
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}}),
            )
            .await?;
        }
        let nodes = self.config.nodes.clone();
        for (i, n) in nodes.iter().enumerate() {
            let ip = self.config.node_ip(i).to_string();
            let mut labels = json!({
                "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux",
            });
            let mut taints = json!([]);
            if n.control_plane {
                labels["node-role.kubernetes.io/control-plane"] = json!("");
                labels["node.kubernetes.io/exclude-from-external-load-balancers"] = json!("");
                taints = json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]);
            }
            let cidr = format!("10.244.{i}.0/24");
            let now = self.clock.now_rfc3339();
            let cond = |t: &str, s: &str, r: &str, m: &str| json!({"type": t, "status": s, "reason": r, "message": m, "lastHeartbeatTime": now, "lastTransitionTime": now});
            let mut node = json!({
                "apiVersion": "v1", "kind": "Node",
                // No `kubeadm.alpha.kubernetes.io/cri-socket`: kubeadm 1.34 (NodeLocalCRISocket,
                // beta) keeps the socket in the kubelet's instance config instead.
                "metadata": {"name": n.name, "labels": labels, "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": n.name}],
                    "capacity": {"cpu": "2", "ephemeral-storage": "61202244Ki", "hugepages-2Mi": "0", "memory": "4015876Ki", "pods": "110"},
                    "allocatable": {"cpu": "2", "ephemeral-storage": "56403987978", "hugepages-2Mi": "0", "memory": "3913476Ki", "pods": "110"},
                    "conditions": [
                        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                    ],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                    "nodeInfo": {
                        "architecture": "amd64", "bootID": self.rng.uuid(), "machineID": self.rng.hex(32), "systemUUID": self.rng.uuid(),
                        "containerRuntimeVersion": "containerd://1.7.24", "kernelVersion": "5.15.0-126-generic",
                        "kubeProxyVersion": "", "kubeletVersion": KUBELET_VERSION, "operatingSystem": "linux",
                        "osImage": "Ubuntu 22.04.5 LTS"
                    }
                }
            });
            if n.control_plane {
                node["spec"]["taints"] = taints;
            }
            // The node object carries its status on create: the kubelet registers itself so.
            let created = self.create("nodes", None, node.clone()).await?;
            let mut with_status = created.clone();
            with_status["status"] = node["status"].clone();
            let res = find("nodes").ok_or_else(|| ApiError::internal("no nodes"))?;
            self.api
                .update(res, None, &n.name, with_status, true)
                .await?;
            for img in [PAUSE_IMAGE, KUBE_PROXY_IMAGE, COREDNS_IMAGE] {
                self.kubelet.preload_image(&n.name, img);
            }
        }
        let cp_index = nodes.iter().position(|n| n.control_plane).unwrap_or(0);
        let cp_ip = self.config.node_ip(cp_index).to_string();
        self.create("services", Some("default"), json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}], "sessionAffinity": "None", "type": "ClusterIP"}
        })).await?;
        self.create("endpoints", Some("default"), json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": cp_ip}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
        })).await?;
        self.create("endpointslices", Some("default"), json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [cp_ip], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]
        })).await?;
        if let Some(cp) = self.config.control_plane().cloned() {
            for (component, image) in [
                ("etcd", "registry.k8s.io/etcd:3.5.21-0"),
                ("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.34.0"),
                (
                    "kube-controller-manager",
                    "registry.k8s.io/kube-controller-manager:v1.34.0",
                ),
                ("kube-scheduler", "registry.k8s.io/kube-scheduler:v1.34.0"),
            ] {
                self.kubelet.preload_image(&cp.name, image);
                let node_uid = self
                    .cache
                    .get("nodes", &cp.name)
                    .and_then(|n| n.at(&["metadata", "uid"]))
                    .cloned();
                // A mirror pod: the kubelet's copy of a static pod's manifest, marked with
                // the manifest's hash (md5 there; a sha256 prefix here).
                let hash: String = Sha256::digest(format!("{component}/{}/{image}", cp.name))
                    .iter()
                    .take(16)
                    .map(|b| format!("{b:02x}"))
                    .collect();
                self.create("pods", Some("kube-system"), json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("{component}-{}", cp.name), "labels": {"component": component, "tier": "control-plane"},
                        "annotations": {"kubernetes.io/config.source": "file", "kubernetes.io/config.hash": hash,
                            "kubernetes.io/config.mirror": hash},
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": cp.name, "uid": node_uid, "controller": true}]},
                    "spec": {"nodeName": cp.name, "hostNetwork": true, "priorityClassName": "system-node-critical", "priority": 2000001000,
                        "containers": [{"name": component, "image": image, "imagePullPolicy": "IfNotPresent"}],
                        "tolerations": [{"effect": "NoExecute", "operator": "Exists"}]}
                })).await?;
            }
        }
        // kubeadm's kube-proxy ConfigMap: kube-proxy reads `mode` when it starts.
        let mode = if self.config.proxy_mode == "iptables" {
            String::new()
        } else {
            self.config.proxy_mode.clone()
        };
        self.create(
            "configmaps",
            Some("kube-system"),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kube-proxy", "labels": {"app": "kube-proxy"}},
                "data": {"config.conf": kube_proxy_config(&mode)}
            }),
        )
        .await?;
        self.create("daemonsets", Some("kube-system"), json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "kube-proxy", "labels": {"k8s-app": "kube-proxy"}},
            "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                "template": {"metadata": {"labels": {"k8s-app": "kube-proxy"}},
                    "spec": {"hostNetwork": true, "priorityClassName": "system-node-critical", "serviceAccountName": "kube-proxy",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [{"name": "kube-proxy", "image": KUBE_PROXY_IMAGE, "imagePullPolicy": "IfNotPresent",
                            "command": ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)"]}]}}}
        })).await?;
        self.create("deployments", Some("kube-system"), json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "coredns", "labels": {"k8s-app": "kube-dns"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                    "spec": {"priorityClassName": "system-cluster-critical", "serviceAccountName": "coredns", "dnsPolicy": "Default",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}, {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                        "containers": [{"name": "coredns", "image": COREDNS_IMAGE, "imagePullPolicy": "IfNotPresent", "args": ["-conf", "/etc/coredns/Corefile"],
                            "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}, {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}, {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}]}]}}}
        })).await?;
        self.create("services", Some("kube-system"), json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
                "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
            "spec": {"clusterIP": "10.96.0.10", "selector": {"k8s-app": "kube-dns"},
                "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}, {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}
        })).await?;
        // Run until every system pod is up.
        loop {
            self.settle().await?;
            match self.next_timer_ms() {
                Some(t) => self.advance_to(t).await?,
                None => break,
            }
        }
        self.advance_to_epoch().await
    }

    /// The boot began [`CLUSTER_AGE_MS`] before the epoch; the lab starts at the epoch.
    async fn advance_to_epoch(&mut self) -> Result<(), ClusterError> {
        if self.clock.now_ms() < self.config.epoch_ms {
            self.advance_to(self.config.epoch_ms).await?;
        }
        Ok(())
    }
}
