//! Defaulting, validation and allocation on create and update, per kind, as a kubeadm
//! cluster's apiserver does them. Works on JSON objects; typed decoding happens before.

use std::net::Ipv4Addr;
use std::sync::LazyLock;

use serde_json::{json, Map, Value};

use crate::alloc::{AllocError, IpAllocator, PortAllocator};
use crate::error::{quoted, FieldError};
use crate::json::{At, Pointer};
use crate::resources::Resource;
use crate::sim::SimRng;
use crate::validation::{go_string_map, name_errors, validate_port, NameRule};

/// The allocators a create or update may draw from.
pub struct Allocators {
    pub cluster_ips: IpAllocator,
    pub node_ports: PortAllocator,
}

/// What admission needs from the server.
pub struct Ctx<'a> {
    pub alloc: &'a mut Allocators,
    pub rng: &'a SimRng,
}

/// Allocations made while admitting one object, released if the write fails.
#[derive(Debug, Default)]
pub struct Taken {
    pub ips: Vec<Ipv4Addr>,
    pub ports: Vec<i64>,
}

impl Taken {
    pub fn release(self, alloc: &mut Allocators) {
        for ip in self.ips {
            alloc.cluster_ips.release(ip);
        }
        for p in self.ports {
            alloc.node_ports.release(p);
        }
    }
}

/// Makes `v` an object if it is not one and returns its map.
pub fn ensure_object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// The object at `v[key]`, created empty if absent.
pub fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    ensure_object(ensure_object(v).entry(key).or_insert(Value::Null))
}

/// Sets `key` to `value()` unless it has a value. The default is built only when it is
/// used: pods made from a defaulted template already have most of these.
fn default_key(m: &mut Map<String, Value>, key: &str, value: impl FnOnce() -> Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_owned(), value());
    }
}

fn str_at<'a, P: Pointer + ?Sized>(v: &'a Value, ptr: &P) -> Option<&'a str> {
    v.at(ptr).and_then(Value::as_str)
}

/// Name rule per resource (Services and Namespaces are labels; most things subdomains).
pub fn name_rule(res: &Resource) -> NameRule {
    match res.plural {
        "services" => NameRule::Dns1035Label,
        "namespaces" => NameRule::Dns1123Label,
        _ => NameRule::Dns1123Subdomain,
    }
}

/// Defaults and validates a new object (metadata already filled in by the registry).
pub fn admit_create(
    res: &Resource,
    obj: &mut Value,
    ctx: &mut Ctx<'_>,
) -> Result<Taken, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut taken = Taken::default();
    match res.plural {
        "pods" => {
            default_pod_spec(obj_mut(obj, "spec"));
            mirror_service_account(obj_mut(obj, "spec"));
            validate_pod_spec("spec", obj.get("spec").unwrap_or(&Value::Null), &mut errs);
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        "deployments" | "replicasets" | "daemonsets" | "statefulsets" => {
            default_workload(res, obj);
            validate_workload(res, obj, &mut errs);
            obj["status"] = json!({});
        }
        "services" => {
            default_service(obj);
            validate_service(obj, &mut errs);
            if errs.is_empty() {
                allocate_service(obj, None, ctx, &mut taken, &mut errs);
            }
            obj["status"] = json!({"loadBalancer": {}});
        }
        "namespaces" => {
            let name = str_at(obj, &["metadata", "name"])
                .unwrap_or_default()
                .to_owned();
            let meta = ensure_object(ensure_object(obj).entry("metadata").or_insert(Value::Null));
            let labels = ensure_object(meta.entry("labels").or_insert(Value::Null));
            labels.insert(
                "kubernetes.io/metadata.name".to_owned(),
                Value::String(name),
            );
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        "ingresses" => {
            crate::ingress_validation::validate_ingress_spec(obj, &mut errs);
            validate_ingress_class_on_create(obj, &mut errs);
            // The registry resets status on create; its loadBalancer is a struct, never
            // left out.
            obj["status"] = json!({"loadBalancer": {}});
        }
        "secrets" => default_secret(obj),
        _ => {}
    }
    if errs.is_empty() {
        Ok(taken)
    } else {
        taken.release(ctx.alloc);
        Err(errs)
    }
}

/// networking's ValidateIngressCreate: the legacy class annotation and
/// `spec.ingressClassName` may both be set only if they agree (checked on create only, so
/// that Ingresses written before the field existed stay updatable).
fn validate_ingress_class_on_create(obj: &Value, errs: &mut Vec<FieldError>) {
    let annotation = obj
        .at(&["metadata", "annotations"])
        .and_then(|a| a.get("kubernetes.io/ingress.class"))
        .and_then(Value::as_str);
    if let (Some(a), Some(class)) = (annotation, str_at(obj, &["spec", "ingressClassName"])) {
        if a != class {
            errs.push(FieldError::invalid(
                "annotations.kubernetes.io/ingress.class",
                quoted(a),
                "must match `ingressClassName` when both are specified",
            ));
        }
    }
}

/// Defaults and validates an update of `old` to `new` (spec-level; status handled by caller).
pub fn admit_update(
    res: &Resource,
    old: &Value,
    new: &mut Value,
    ctx: &mut Ctx<'_>,
) -> Result<(Taken, Taken), Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut taken = Taken::default();
    let mut released = Taken::default();
    match res.plural {
        "pods" => {
            default_pod_spec(obj_mut(new, "spec"));
            mirror_service_account(obj_mut(new, "spec"));
            // Only the image of a container may change on a running pod.
            if pod_spec_changed(old.get("spec"), new.get("spec")) {
                errs.push(FieldError::forbidden(
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                ));
            }
        }
        "deployments" | "replicasets" | "daemonsets" | "statefulsets" => {
            default_workload(res, new);
            validate_workload(res, new, &mut errs);
            if old.at(&["spec", "selector"]) != new.at(&["spec", "selector"]) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    label_selector_go(new.at(&["spec", "selector"])),
                    "field is immutable",
                ));
            }
        }
        "services" => {
            default_service(new);
            carry_allocated_values(old, new);
            validate_service(new, &mut errs);
            if errs.is_empty() {
                allocate_service(new, Some(old), ctx, &mut taken, &mut errs);
            }
            if errs.is_empty() {
                released = released_by_update(old, new);
            }
        }
        "ingresses" => crate::ingress_validation::validate_ingress_spec(new, &mut errs),
        "secrets" => {
            default_secret(new);
            if old.get("type") != new.get("type") {
                errs.push(FieldError::invalid(
                    "type",
                    quoted(str_at(new, &["type"]).unwrap_or_default()),
                    "field is immutable",
                ));
            }
        }
        _ => {}
    }
    if errs.is_empty() {
        Ok((taken, released))
    } else {
        taken.release(ctx.alloc);
        Err(errs)
    }
}

/// What deleting a Service frees.
pub fn service_allocations(svc: &Value) -> Taken {
    let mut t = Taken::default();
    if let Some(ip) = str_at(svc, &["spec", "clusterIP"]).and_then(|s| s.parse().ok()) {
        t.ips.push(ip);
    }
    t.ports = node_ports_of(svc);
    if let Some(p) = svc
        .at(&["spec", "healthCheckNodePort"])
        .and_then(Value::as_i64)
    {
        t.ports.push(p);
    }
    t
}

fn node_ports_of(svc: &Value) -> Vec<i64> {
    svc.at(&["spec", "ports"])
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
                .collect()
        })
        .unwrap_or_default()
}

fn released_by_update(old: &Value, new: &Value) -> Taken {
    let mut t = Taken::default();
    let old_ip = str_at(old, &["spec", "clusterIP"]);
    if old_ip != str_at(new, &["spec", "clusterIP"]) {
        if let Some(ip) = old_ip.and_then(|s| s.parse().ok()) {
            t.ips.push(ip);
        }
    }
    let new_ports = node_ports_of(new);
    t.ports = node_ports_of(old)
        .into_iter()
        .filter(|p| !new_ports.contains(p))
        .collect();
    let old_hc = old
        .at(&["spec", "healthCheckNodePort"])
        .and_then(Value::as_i64);
    if old_hc.is_some()
        && old_hc
            != new
                .at(&["spec", "healthCheckNodePort"])
                .and_then(Value::as_i64)
    {
        t.ports.extend(old_hc);
    }
    t
}

/// `apply` and PUT without allocated fields keep them (kube-apiserver `patchAllocatedValues`),
/// unless the type change drops them (`dropTypeDependentFields`).
fn carry_allocated_values(old: &Value, new: &mut Value) {
    let new_type = str_at(new, &["spec", "type"])
        .unwrap_or("ClusterIP")
        .to_owned();
    if new_type != "ExternalName"
        && new
            .at(&["spec", "clusterIP"])
            .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
    {
        if let Some(ip) = old.at(&["spec", "clusterIP"]).cloned() {
            let spec = obj_mut(new, "spec");
            spec.insert("clusterIP", ip);
            if let Some(ips) = old.at(&["spec", "clusterIPs"]).cloned() {
                spec.insert("clusterIPs", ips);
            }
        }
    }
    if new_type == "ExternalName" {
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            if spec.get("clusterIP") == old.at(&["spec", "clusterIP"]) {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
        }
    }
    let wants_node_ports = matches!(new_type.as_str(), "NodePort" | "LoadBalancer");
    let old_ports = old
        .at(&["spec", "ports"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in ports {
            if !wants_node_ports {
                if let Some(m) = p.as_object_mut() {
                    m.remove("nodePort");
                }
                continue;
            }
            if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                let same = old_ports.iter().find(|o| {
                    o.get("port") == p.get("port")
                        && o.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                            == p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                });
                if let Some(np) = same.and_then(|o| o.get("nodePort")).cloned() {
                    p["nodePort"] = np;
                }
            }
        }
    }
    if new.at(&["spec", "healthCheckNodePort"]).is_none() && new_type == "LoadBalancer" {
        if let Some(hc) = old.at(&["spec", "healthCheckNodePort"]).cloned() {
            if str_at(new, &["spec", "externalTrafficPolicy"]) == Some("Local") {
                obj_mut(new, "spec").insert("healthCheckNodePort", hc);
            }
        }
    }
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    default_key(spec, "restartPolicy", || json!("Always"));
    default_key(spec, "dnsPolicy", || json!("ClusterFirst"));
    default_key(spec, "schedulerName", || json!("default-scheduler"));
    default_key(spec, "terminationGracePeriodSeconds", || json!(30));
    default_key(spec, "securityContext", || json!({}));
    default_key(spec, "enableServiceLinks", || json!(true));
    default_key(spec, "preemptionPolicy", || json!("PreemptLowerPriority"));
    default_key(spec, "priority", || json!(0));
    // A container map shared with a template is copied when taken mutably: only those
    // missing a default are (a pod made from a defaulted template has them all).
    if let Some(cs) = spec.get_mut("containers").and_then(Value::as_array_mut) {
        for c in cs
            .iter_mut()
            .filter(|c| container_lacks_defaults(c))
            .filter_map(Value::as_object_mut)
        {
            let image = c
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            for (key, value) in CONTAINER_DEFAULTS {
                default_key(c, key, || value(&image));
            }
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    default_key(p, "protocol", || json!("TCP"));
                }
            }
        }
    }
    if !spec.contains_key("tolerations") {
        // The DefaultTolerationSeconds admission plugin's pair. Built once: a copy of a
        // built object shares its fields until written.
        static TOLERATIONS: LazyLock<Value> = LazyLock::new(|| {
            json!([
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ])
        });
        spec.insert("tolerations", TOLERATIONS.clone());
    }
}

type DefaultFromImage = fn(&str) -> Value;

/// A container's defaults, each from the container's image (one table, so that
/// [`container_lacks_defaults`] checks exactly what [`default_pod_spec`] sets).
const CONTAINER_DEFAULTS: [(&str, DefaultFromImage); 4] = [
    ("imagePullPolicy", |image| {
        // `Always` for an untagged or `:latest` image, as kubelet's defaulting does.
        let tag = image
            .rsplit('/')
            .next()
            .and_then(|last| last.split_once(':'))
            .map(|(_, t)| t);
        let policy = match tag {
            None | Some("latest") => "Always",
            Some(_) => "IfNotPresent",
        };
        json!(policy)
    }),
    ("terminationMessagePath", |_| json!("/dev/termination-log")),
    ("terminationMessagePolicy", |_| json!("File")),
    ("resources", |_| json!({})),
];

/// Whether [`default_pod_spec`] would set anything in container `c`.
fn container_lacks_defaults(c: &Value) -> bool {
    let missing = |v: &Value, key: &str| crate::json::get(v, key).is_none_or(Value::is_null);
    CONTAINER_DEFAULTS.iter().any(|(k, _)| missing(c, k))
        || crate::json::get(c, "ports")
            .and_then(Value::as_array)
            .is_some_and(|ps| ps.iter().any(|p| p.is_object() && missing(p, "protocol")))
}

/// v1's `serviceAccount` is the deprecated alias of `serviceAccountName`: decoding fills
/// an empty name from it, and encoding always writes it from the name, so a v1 client sees
/// both (`kubectl get pod -o yaml`).
fn mirror_service_account(spec: &mut Map<String, Value>) {
    match named_service_account(spec).map(str::to_owned) {
        Some(n) => {
            spec.insert("serviceAccountName", Value::String(n.clone()));
            spec.insert("serviceAccount", Value::String(n));
        }
        None => {
            spec.remove("serviceAccount");
        }
    }
}

/// The ServiceAccount a pod spec names: `serviceAccountName`, else the deprecated
/// `serviceAccount` (empty strings name nothing).
pub fn named_service_account(spec: &Map<String, Value>) -> Option<&str> {
    ["serviceAccountName", "serviceAccount"]
        .iter()
        .find_map(|k| {
            spec.get(*k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
}

/// Where ServiceAccount admission mounts the API credentials in every container.
pub const SERVICE_ACCOUNT_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The kubelet's static pods, mirrored into the API: ServiceAccount admission leaves them
/// alone (they may not use service accounts).
pub fn is_mirror_pod(pod: &Value) -> bool {
    pod.at(&["metadata", "annotations"])
        .and_then(|a| a.get("kubernetes.io/config.mirror"))
        .is_some()
}

/// The ServiceAccount a pod runs as, set on its spec: `serviceAccountName`, else the
/// deprecated `serviceAccount`, else `default` (ServiceAccount admission).
pub fn pod_service_account(pod: &mut Value) -> String {
    let spec = obj_mut(pod, "spec");
    let given = named_service_account(spec).unwrap_or("default").to_owned();
    spec.insert("serviceAccountName", Value::String(given.clone()));
    given
}

/// Whether the token is mounted: the pod's `automountServiceAccountToken` wins, then the
/// ServiceAccount's; both default to true.
pub fn should_automount(pod: &Value, service_account: &Value) -> bool {
    pod.at(&["spec", "automountServiceAccountToken"])
        .or_else(|| service_account.get("automountServiceAccountToken"))
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// ServiceAccount admission's projected API-access volume (`kube-api-access-<5 chars>`: a
/// bound token, the cluster CA from `kube-root-ca.crt`, the namespace), mounted read-only
/// at [`SERVICE_ACCOUNT_MOUNT_PATH`] in every init and app container that does not already
/// mount something there. An existing `kube-api-access-*` volume is reused.
pub fn mount_service_account_token(pod: &mut Value, rng: &SimRng) {
    let spec = obj_mut(pod, "spec");
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .find(|n| n.starts_with("kube-api-access-"))
        .map(str::to_owned);
    let volume = existing
        .clone()
        .unwrap_or_else(|| format!("kube-api-access-{}", rng.k8s_suffix(5)));
    // In key order, as the map keeps them (`json!` serializes each field into place).
    let mount = crate::json::object([
        ("mountPath", SERVICE_ACCOUNT_MOUNT_PATH.into()),
        ("name", volume.as_str().into()),
        ("readOnly", true.into()),
    ]);
    let mut mounted = false;
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            let mounts = c
                .entry("volumeMounts")
                .or_insert_with(|| Value::Array(Vec::new()));
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            let taken = mounts.iter().any(|m| {
                m.get("mountPath").and_then(Value::as_str) == Some(SERVICE_ACCOUNT_MOUNT_PATH)
            });
            if !taken {
                mounts.push(mount.clone());
                mounted = true;
            }
        }
    }
    if mounted && existing.is_none() {
        let vols = spec
            .entry("volumes")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(vols) = vols.as_array_mut() {
            // The same for every pod but its name: built once (see `TOLERATIONS`).
            static PROJECTED: LazyLock<Value> = LazyLock::new(|| {
                json!({"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                    {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}
                ]})
            });
            vols.push(crate::json::object([
                ("name", Value::String(volume)),
                ("projected", PROJECTED.clone()),
            ]));
        }
    }
}

/// Secrets: `stringData` is write-only, merged into `data` base64-encoded (it wins on a
/// shared key), and `type` defaults to `Opaque`.
fn default_secret(obj: &mut Value) {
    use base64::Engine as _;
    let m = ensure_object(obj);
    if let Some(Value::Object(plain)) = m.remove("stringData") {
        let data = ensure_object(m.entry("data").or_insert(Value::Null));
        for (k, v) in plain {
            let text = v.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            data.insert(k, Value::String(encoded));
        }
    }
    if m.get("data")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        m.remove("data");
    }
    default_key(m, "type", || json!("Opaque"));
}

fn validate_pod_spec(path: &str, spec: &Value, errs: &mut Vec<FieldError>) {
    let containers = spec.get("containers").and_then(Value::as_array);
    match containers {
        None => errs.push(FieldError::required(format!("{path}.containers"), "")),
        Some(cs) if cs.is_empty() => {
            errs.push(FieldError::required(format!("{path}.containers"), ""))
        }
        Some(cs) => {
            // Field paths are spelled only for an error (this runs for every pod).
            for (i, c) in cs.iter().enumerate() {
                let cp = || format!("{path}.containers[{i}]");
                match c.get("name").and_then(Value::as_str) {
                    None | Some("") => {
                        errs.push(FieldError::required(format!("{}.name", cp()), ""))
                    }
                    Some(n) if !crate::validation::is_dns1123_label(n) => errs.extend(name_errors(
                        &format!("{}.name", cp()),
                        n,
                        NameRule::Dns1123Label,
                    )),
                    Some(_) => {}
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    errs.push(FieldError::required(format!("{}.image", cp()), ""));
                }
                if let Some(ports) = c.get("ports").and_then(Value::as_array) {
                    for (j, p) in ports.iter().enumerate() {
                        let port = p.get("containerPort").unwrap_or(&Value::Null);
                        if port.as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
                            continue;
                        }
                        let field = format!("{}.ports[{j}].containerPort", cp());
                        errs.extend(validate_port(&field, port));
                    }
                }
            }
        }
    }
}

/// apps/v1 strategy defaulting, field by field as SetDefaults_* do it: an empty `type` is
/// RollingUpdate, and a RollingUpdate strategy gets each missing `rollingUpdate` field
/// (`strategy: {}` from `kubectl create deployment` ends up fully defaulted).
fn default_rolling(spec: &mut Map<String, Value>, key: &str, fields: &[(&str, Value)]) {
    let strategy = ensure_object(spec.entry(key).or_insert(Value::Null));
    default_key(strategy, "type", || json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let rolling = ensure_object(strategy.entry("rollingUpdate").or_insert(Value::Null));
        for (k, v) in fields {
            default_key(rolling, k, || v.clone());
        }
    }
}

fn default_workload(res: &Resource, obj: &mut Value) {
    let spec = obj_mut(obj, "spec");
    match res.plural {
        "deployments" => {
            default_key(spec, "replicas", || json!(1));
            default_key(spec, "revisionHistoryLimit", || json!(10));
            default_key(spec, "progressDeadlineSeconds", || json!(600));
            default_rolling(
                spec,
                "strategy",
                &[("maxSurge", json!("25%")), ("maxUnavailable", json!("25%"))],
            );
        }
        "replicasets" => default_key(spec, "replicas", || json!(1)),
        "daemonsets" => {
            default_key(spec, "revisionHistoryLimit", || json!(10));
            default_rolling(
                spec,
                "updateStrategy",
                &[("maxSurge", json!(0)), ("maxUnavailable", json!(1))],
            );
        }
        "statefulsets" => {
            default_key(spec, "replicas", || json!(1));
            default_key(spec, "revisionHistoryLimit", || json!(10));
            default_key(spec, "podManagementPolicy", || json!("OrderedReady"));
            default_rolling(spec, "updateStrategy", &[("partition", json!(0))]);
            default_key(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                || json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
        }
        _ => {}
    }
    let tmpl = match spec.get_mut("template").and_then(Value::as_object_mut) {
        Some(t) => t,
        None => return,
    };
    if let Some(ps) = tmpl.get_mut("spec").and_then(Value::as_object_mut) {
        // Fields that pod admission adds (default tolerations, service account, priority)
        // are not template defaults: drop them again unless the template set them.
        const POD_ADMISSION_ONLY: [&str; 5] = [
            "tolerations",
            "serviceAccountName",
            "preemptionPolicy",
            "priority",
            "enableServiceLinks",
        ];
        let had: Vec<&str> = POD_ADMISSION_ONLY
            .iter()
            .copied()
            .filter(|k| ps.contains_key(*k))
            .collect();
        default_pod_spec(ps);
        for k in POD_ADMISSION_ONLY {
            if !had.contains(&k) {
                ps.remove(k);
            }
        }
        mirror_service_account(ps);
    }
}

/// Go's `%#v` of a label selector in immutability errors (abbreviated to its map form).
fn label_selector_go(sel: Option<&Value>) -> String {
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}",
        go_string_map(
            sel.and_then(|s| s.get("matchLabels"))
                .and_then(Value::as_object)
        )
    )
}

fn validate_workload(res: &Resource, obj: &Value, errs: &mut Vec<FieldError>) {
    if let Some(r) = obj.at(&["spec", "replicas"]).and_then(Value::as_i64) {
        if r < 0 {
            errs.push(FieldError::invalid(
                "spec.replicas",
                r.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
    let selector = obj.at(&["spec", "selector"]);
    let empty_selector = selector.is_none_or(|s| {
        s.get("matchLabels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
            && s.get("matchExpressions")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
    });
    if empty_selector {
        errs.push(FieldError::required("spec.selector", ""));
    }
    if res.plural == "statefulsets" && str_at(obj, &["spec", "serviceName"]).is_none() {
        // serviceName became optional in 1.32; nothing to report.
    }
    let labels = obj
        .at(&["spec", "template", "metadata", "labels"])
        .and_then(Value::as_object);
    let sel = crate::selector::LabelSelector::from_json(selector.unwrap_or(&Value::Null));
    if empty_selector || !sel.matches_labels(labels) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            go_string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    match obj.at(&["spec", "template", "spec"]) {
        Some(ps) => validate_pod_spec("spec.template.spec", ps, errs),
        None => errs.push(FieldError::required("spec.template.spec.containers", "")),
    }
}

fn default_service(obj: &mut Value) {
    let spec = obj_mut(obj, "spec");
    default_key(spec, "type", || json!("ClusterIP"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    default_key(spec, "sessionAffinity", || json!("None"));
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
        default_key(
            spec,
            "sessionAffinityConfig",
            || json!({"clientIP": {"timeoutSeconds": 10800}}),
        );
    }
    if ty != "ExternalName" {
        default_key(spec, "internalTrafficPolicy", || json!("Cluster"));
        default_key(spec, "ipFamilies", || json!(["IPv4"]));
        default_key(spec, "ipFamilyPolicy", || json!("SingleStack"));
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
        default_key(spec, "externalTrafficPolicy", || json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default_key(spec, "allocateLoadBalancerNodePorts", || json!(true));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default_key(p, "protocol", || json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                default_key(p, "targetPort", || port);
            }
        }
    }
}

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

fn validate_service(obj: &Value, errs: &mut Vec<FieldError>) {
    let ty = str_at(obj, &["spec", "type"]).unwrap_or("ClusterIP");
    if !SERVICE_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(
            "spec.type",
            quoted(ty),
            SERVICE_TYPES,
        ));
        return;
    }
    let ports = obj
        .at(&["spec", "ports"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let headless = str_at(obj, &["spec", "clusterIP"]) == Some("None");
    if ty == "ExternalName" {
        match str_at(obj, &["spec", "externalName"]) {
            None | Some("") => errs.push(FieldError::required("spec.externalName", "")),
            Some(n) => {
                let n = n.trim_end_matches('.');
                errs.extend(name_errors(
                    "spec.externalName",
                    n,
                    NameRule::Dns1123Subdomain,
                ));
            }
        }
    } else if ports.is_empty() && !headless {
        errs.push(FieldError::required("spec.ports", ""));
    }
    if headless && matches!(ty, "NodePort" | "LoadBalancer") {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            quoted("None"),
            format!("may not be set to 'None' for {ty} services"),
        ));
    }
    for (i, p) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        if ports.len() > 1
            && p.get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            errs.push(FieldError::required(format!("{path}.name"), ""));
        }
        if let Some(e) = validate_port(
            &format!("{path}.port"),
            p.get("port").unwrap_or(&Value::Null),
        ) {
            errs.push(e);
        }
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
        if !["SCTP", "TCP", "UDP"].contains(&proto) {
            errs.push(FieldError::not_supported(
                format!("{path}.protocol"),
                quoted(proto),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        if let Some(tp) = p.get("targetPort") {
            if tp.is_i64() {
                if let Some(e) = validate_port(&format!("{path}.targetPort"), tp) {
                    errs.push(e);
                }
            }
        }
        if let Some(np) = p.get("nodePort").and_then(Value::as_i64) {
            if np != 0 && !matches!(ty, "NodePort" | "LoadBalancer") {
                errs.push(FieldError::forbidden(
                    format!("{path}.nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
}

fn alloc_field_error(field: &str, value: String, e: AllocError) -> FieldError {
    FieldError::invalid(field, value, e.to_string())
}

fn allocate_service(
    obj: &mut Value,
    old: Option<&Value>,
    ctx: &mut Ctx<'_>,
    taken: &mut Taken,
    errs: &mut Vec<FieldError>,
) {
    let ty = str_at(obj, &["spec", "type"])
        .unwrap_or("ClusterIP")
        .to_owned();
    let old_ip = old
        .and_then(|o| str_at(o, &["spec", "clusterIP"]))
        .map(str::to_owned);
    if ty == "ExternalName" {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            if spec
                .get("clusterIP")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty() && s != "None")
                && old_ip.is_none()
            {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
        }
    } else {
        let requested = str_at(obj, &["spec", "clusterIP"]).unwrap_or("").to_owned();
        if let (Some(o), false) = (&old_ip, requested.is_empty()) {
            if o != &requested && o != "None" {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    quoted(&requested),
                    "may not change once set",
                ));
                return;
            }
        }
        let ip = if requested == "None" {
            Some("None".to_owned())
        } else if old_ip.as_deref() == Some(requested.as_str()) && !requested.is_empty() {
            Some(requested)
        } else if requested.is_empty() {
            match ctx.alloc.cluster_ips.allocate_next(ctx.rng) {
                Ok(ip) => {
                    taken.ips.push(ip);
                    Some(ip.to_string())
                }
                Err(e) => {
                    errs.push(FieldError::invalid(
                        "spec.clusterIPs",
                        "[]string(nil)",
                        format!("failed to allocate IP: {e}"),
                    ));
                    None
                }
            }
        } else {
            match requested.parse::<Ipv4Addr>() {
                Err(_) => {
                    errs.push(FieldError::invalid(
                        "spec.clusterIPs[0]",
                        quoted(&requested),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    ));
                    None
                }
                Ok(ip) => match ctx.alloc.cluster_ips.allocate_specific(ip) {
                    Ok(()) => {
                        taken.ips.push(ip);
                        Some(requested)
                    }
                    Err(e) => {
                        errs.push(alloc_field_error("spec.clusterIP", quoted(&requested), e));
                        None
                    }
                },
            }
        };
        if let Some(ip) = ip {
            let spec = obj_mut(obj, "spec");
            spec.insert("clusterIP", json!(ip));
            spec.insert("clusterIPs", json!([ip]));
        }
    }
    let wants_np = matches!(ty.as_str(), "NodePort" | "LoadBalancer")
        && !(ty == "LoadBalancer"
            && obj.at(&["spec", "allocateLoadBalancerNodePorts"]) == Some(&json!(false)));
    let old_nps = old.map(node_ports_of).unwrap_or_default();
    if let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for (i, p) in ports.iter_mut().enumerate() {
            let np = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
            if np != 0 {
                if old_nps.contains(&np) {
                    continue;
                }
                match ctx.alloc.node_ports.allocate_specific(np) {
                    Ok(()) => taken.ports.push(np),
                    Err(e) => errs.push(alloc_field_error(
                        &format!("spec.ports[{i}].nodePort"),
                        np.to_string(),
                        e,
                    )),
                }
            } else if wants_np {
                match ctx.alloc.node_ports.allocate_next(ctx.rng) {
                    Ok(np) => {
                        taken.ports.push(np);
                        p["nodePort"] = json!(np);
                    }
                    Err(e) => errs.push(alloc_field_error(
                        &format!("spec.ports[{i}].nodePort"),
                        "0".into(),
                        e,
                    )),
                }
            }
        }
    }
    if ty == "LoadBalancer" && str_at(obj, &["spec", "externalTrafficPolicy"]) == Some("Local") {
        let hc = obj
            .at(&["spec", "healthCheckNodePort"])
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let old_hc = old
            .and_then(|o| o.at(&["spec", "healthCheckNodePort"]))
            .and_then(Value::as_i64);
        if hc == 0 {
            if let Ok(p) = ctx.alloc.node_ports.allocate_next(ctx.rng) {
                taken.ports.push(p);
                obj_mut(obj, "spec").insert("healthCheckNodePort", json!(p));
            }
        } else if old_hc != Some(hc) {
            match ctx.alloc.node_ports.allocate_specific(hc) {
                Ok(()) => taken.ports.push(hc),
                Err(e) => errs.push(alloc_field_error(
                    "spec.healthCheckNodePort",
                    hc.to_string(),
                    e,
                )),
            }
        }
    } else if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("healthCheckNodePort");
    }
}

/// Whether a pod's spec changed in more than what may change on an existing pod: container
/// images, and `nodeName` (set by the binding). Compared in place: pods are updated on
/// every status change, and copying both specs to blank those fields cost more than the
/// rest of the update.
fn pod_spec_changed(old: Option<&Value>, new: Option<&Value>) -> bool {
    let (Some(Value::Object(a)), Some(Value::Object(b))) = (old, new) else {
        return old != new;
    };
    differs_except(a, b, "nodeName", |k, x, y| match (x, y) {
        (Some(Value::Array(xs)), Some(Value::Array(ys))) if k == "containers" => {
            xs.len() != ys.len()
                || xs.iter().zip(ys).any(|(c, d)| match (c, d) {
                    (Value::Object(c), Value::Object(d)) => {
                        differs_except(c, d, "image", |_, x, y| x != y)
                    }
                    _ => c != d,
                })
        }
        _ => x != y,
    })
}

/// Whether two objects differ in any field but `skip`, comparing each field with `differ`.
fn differs_except(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
    skip: &str,
    differ: impl Fn(&str, Option<&Value>, Option<&Value>) -> bool,
) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    // A status write carries the stored spec itself: one copy-on-write map, equal as it is.
    if a.ptr_eq(b) {
        return false;
    }
    // Both iterate in key order: one merged walk pairs the fields up (looking each key up
    // in both maps was ~45 searches for a pod spec, most of a binding's admission).
    let (mut xs, mut ys) = (a.iter().peekable(), b.iter().peekable());
    loop {
        let order = match (xs.peek(), ys.peek()) {
            (None, None) => return false,
            (Some(_), None) => Less,
            (None, Some(_)) => Greater,
            (Some((x, _)), Some((y, _))) => x.as_str().cmp(y.as_str()),
        };
        let (k, x, y) = match order {
            Less => match xs.next() {
                Some((k, x)) => (k, Some(x), None),
                None => return false,
            },
            Greater => match ys.next() {
                Some((k, y)) => (k, None, Some(y)),
                None => return false,
            },
            Equal => match (xs.next(), ys.next()) {
                (Some((k, x)), Some((_, y))) => (k, Some(x), Some(y)),
                _ => return false,
            },
        };
        if k.as_str() != skip && differ(k, x, y) {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kubelet's pull-policy default, from the image reference's tag (a registry's port is
    /// not a tag); a policy already given is kept.
    #[test]
    fn image_pull_policy_defaults_from_the_tag() {
        let policy = |image: &str, given: Option<&str>| {
            let mut c = json!({"name": "c", "image": image});
            if let Some(g) = given {
                c["imagePullPolicy"] = json!(g);
            }
            let mut spec = json!({"containers": [c]});
            default_pod_spec(ensure_object(&mut spec));
            spec["containers"][0]["imagePullPolicy"].clone()
        };
        assert_eq!(policy("wangyanglinux/myapp:v2", None), "IfNotPresent");
        assert_eq!(policy("nginx:latest", None), "Always");
        assert_eq!(policy("nginx", None), "Always");
        assert_eq!(policy("registry.local:5000/app", None), "Always");
        assert_eq!(policy("nginx:1.25", Some("Never")), "Never");
    }

    #[test]
    fn container_errors_name_the_field_they_are_about() {
        let spec = json!({"containers": [
            {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "My_App", "ports": [{"containerPort": 80}, {"containerPort": 0}, {}]},
            {"image": "x"}
        ]});
        let mut errs = Vec::new();
        validate_pod_spec("spec.template.spec", &spec, &mut errs);
        let got: Vec<(&str, &str, &str)> = errs
            .iter()
            .map(|e| (e.field.as_str(), e.reason, e.detail.as_str()))
            .collect();
        let c1 = "spec.template.spec.containers[1]";
        assert_eq!(
            got,
            [
                (&*format!("{c1}.name"), "FieldValueInvalid", "Invalid value: \"My_App\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
                (&*format!("{c1}.image"), "FieldValueRequired", "Required value"),
                (&*format!("{c1}.ports[1].containerPort"), "FieldValueInvalid", "Invalid value: 0: must be between 1 and 65535, inclusive"),
                (&*format!("{c1}.ports[2].containerPort"), "FieldValueRequired", "Required value"),
                ("spec.template.spec.containers[2].name", "FieldValueRequired", "Required value"),
            ]
        );
        let mut errs = Vec::new();
        validate_pod_spec("spec", &json!({"containers": []}), &mut errs);
        assert_eq!(errs[0].field, "spec.containers");
    }

    #[test]
    fn only_images_and_binding_may_change_in_a_pod_spec() {
        let old = json!({"containers": [{"name": "app", "image": "myapp:v1", "ports": [{"containerPort": 80}]}], "restartPolicy": "Always"});
        let same = old.clone();
        assert!(!pod_spec_changed(Some(&old), Some(&same)));
        let image = json!({"containers": [{"name": "app", "image": "myapp:v2", "ports": [{"containerPort": 80}]}], "restartPolicy": "Always"});
        assert!(!pod_spec_changed(Some(&old), Some(&image)));
        let bound = json!({"containers": [{"name": "app", "image": "myapp:v1", "ports": [{"containerPort": 80}]}], "restartPolicy": "Always", "nodeName": "node1"});
        assert!(!pod_spec_changed(Some(&old), Some(&bound)));
        let port = json!({"containers": [{"name": "app", "image": "myapp:v1", "ports": [{"containerPort": 81}]}], "restartPolicy": "Always"});
        assert!(pod_spec_changed(Some(&old), Some(&port)));
        let extra = json!({"containers": [{"name": "app", "image": "myapp:v1", "ports": [{"containerPort": 80}]}], "restartPolicy": "Always", "hostNetwork": true});
        assert!(pod_spec_changed(Some(&old), Some(&extra)));
        let dropped = json!({"containers": [{"name": "app", "image": "myapp:v1", "ports": [{"containerPort": 80}]}]});
        assert!(pod_spec_changed(Some(&old), Some(&dropped)));
        let more = json!({"containers": [{"name": "app", "image": "myapp:v1", "ports": [{"containerPort": 80}]}, {"name": "side", "image": "x"}], "restartPolicy": "Always"});
        assert!(pod_spec_changed(Some(&old), Some(&more)));
        // A field only one side has, sorting before or after all the other's.
        let first = json!({"affinity": {}, "containers": [{"name": "app", "image": "myapp:v1", "ports": [{"containerPort": 80}]}], "restartPolicy": "Always"});
        assert!(pod_spec_changed(Some(&old), Some(&first)));
        assert!(pod_spec_changed(Some(&first), Some(&old)));
        let last = json!({"containers": [{"name": "app", "image": "myapp:v1", "ports": [{"containerPort": 80}]}], "restartPolicy": "Always", "volumes": []});
        assert!(pod_spec_changed(Some(&old), Some(&last)));
        assert!(pod_spec_changed(Some(&last), Some(&old)));
        // Binding and an image change together; unbinding is a change of nodeName only.
        let both = json!({"containers": [{"name": "app", "image": "myapp:v2", "ports": [{"containerPort": 80}]}], "nodeName": "node1", "restartPolicy": "Always"});
        assert!(!pod_spec_changed(Some(&old), Some(&both)));
        assert!(!pod_spec_changed(Some(&bound), Some(&old)));
    }
}
