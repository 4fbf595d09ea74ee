//! Server-side Table rendering (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
//!
//! kubectl does not format `get` output itself: it asks the apiserver for a `meta.k8s.io/v1`
//! Table and prints the cells it receives (reference §2.1). So column names, cell text and AGE
//! must be computed here exactly as kube-apiserver's printers (k/k
//! `pkg/printers/internalversion/printers.go`) compute them.
//!
//! kube-apiserver always generates tables with `Wide: true` (k/k `pkg/printers/storage`), so
//! every row carries the priority-1 cells too and kubectl hides them unless `-o wide`. One
//! consequence: the 16-byte clipping of load-balancer addresses in the printers never happens
//! server-side, so it is not done here either.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{json, Value};

use crate::json::At;
use crate::resources::Resource;
use crate::sim::parse_rfc3339;

/// One column definition (meta.k8s.io/v1 TableColumnDefinition).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ColumnDefinition {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

// Column descriptions: the OpenAPI field docs the real printers use (`SwaggerDoc()[...]`).
// kubectl never shows them, but `kubectl get --raw` users and API clients do.
const D_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const D_AGE: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const D_POD_IP: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
const D_NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
const D_NOMINATED: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
const D_READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";
const D_RS_SPEC_REPLICAS: &str = "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
const D_RS_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
const D_RS_READY: &str =
    "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.";
const D_RS_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const D_DS_DESIRED: &str = "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const D_DS_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const D_DS_READY: &str = "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.";
const D_DS_UPDATED: &str = "The total number of nodes that are running updated daemon pod";
const D_DS_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)";
const D_NODE_SELECTOR: &str = "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/";
const D_DS_SELECTOR: &str = "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const D_SVC_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
const D_SVC_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const D_SVC_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
const D_SVC_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const D_SVC_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
const D_EP_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
const D_KUBELET_VERSION: &str = "Kubelet Version reported by the node.";
const D_NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
const D_OS_IMAGE: &str =
    "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
const D_KERNEL: &str =
    "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
const D_RUNTIME: &str = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";
const D_EV_LAST: &str = "The time at which the most recent occurrence of this event was recorded.";
const D_EV_TYPE: &str =
    "Type of this event (Normal, Warning), new types could be added in the future";
const D_EV_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
const D_EV_OBJECT: &str = "The object that this event is about.";
const D_EV_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
const D_EV_SOURCE: &str =
    "The component reporting this event. Should be a short machine understandable string.";
const D_EV_MESSAGE: &str = "A human-readable description of the status of this operation.";
const D_EV_FIRST: &str =
    "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
const D_EV_COUNT: &str = "The number of times this event has occurred.";
const D_CM_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
const D_SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
const D_SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
const D_SA_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";
const D_DEPLOY_UPDATED: &str = "Total number of non-terminating pods targeted by this deployment that have the desired template spec.";
const D_DEPLOY_AVAILABLE: &str = "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.";
const D_DEPLOY_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.";
const D_ES_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are defined for the \"FQDN\" type.";
const D_ES_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list.";
const D_ES_ENDPOINTS: &str = "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";

const D_RB_ROLE_REF: &str = "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.";
const D_CRB_ROLE_REF: &str = "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.";

const D_TEMPLATE_CONTAINERS: &str = "Names of each container in the template.";
const D_TEMPLATE_IMAGES: &str = "Images referenced by each container in the template.";
const D_READY_PODS: &str = "Number of the pod with ready state";

/// A column shown by default.
const fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> ColumnDefinition {
    ColumnDefinition {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

/// A column shown only with `-o wide`.
const fn wide(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> ColumnDefinition {
    ColumnDefinition {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

/// The NAME column: `format: name` is how kubectl finds the object's name in a row.
const NAME: ColumnDefinition = ColumnDefinition {
    name: "Name",
    type_: "string",
    format: "name",
    description: D_NAME,
    priority: 0,
};

const AGE: ColumnDefinition = col("Age", "string", D_AGE);

/// Columns for a resource, as kube-apiserver's printers define them (priority 1 = only with -o wide).
pub fn columns(res: &Resource) -> Vec<ColumnDefinition> {
    match res.plural {
        "namespaces" => vec![
            NAME,
            col("Status", "string", "The status of the namespace"),
            AGE,
        ],
        "nodes" => vec![
            NAME,
            col("Status", "string", "The status of the node"),
            col("Roles", "string", "The roles of the node"),
            AGE,
            col("Version", "string", D_KUBELET_VERSION),
            wide("Internal-IP", "string", D_NODE_ADDRESSES),
            wide("External-IP", "string", D_NODE_ADDRESSES),
            wide("OS-Image", "string", D_OS_IMAGE),
            wide("Kernel-Version", "string", D_KERNEL),
            wide("Container-Runtime", "string", D_RUNTIME),
        ],
        "pods" => vec![
            NAME,
            col(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            wide("IP", "string", D_POD_IP),
            wide("Node", "string", D_NODE_NAME),
            wide("Nominated Node", "string", D_NOMINATED),
            wide("Readiness Gates", "string", D_READINESS_GATES),
        ],
        "services" => vec![
            NAME,
            col("Type", "string", D_SVC_TYPE),
            col("Cluster-IP", "string", D_SVC_CLUSTER_IP),
            col("External-IP", "string", D_SVC_EXTERNAL_IPS),
            col("Port(s)", "string", D_SVC_PORTS),
            AGE,
            wide("Selector", "string", D_SVC_SELECTOR),
        ],
        "endpoints" => vec![NAME, col("Endpoints", "string", D_EP_SUBSETS), AGE],
        // Events are the one table whose name column is not first (and is wide-only).
        "events" => vec![
            col("Last Seen", "string", D_EV_LAST),
            col("Type", "string", D_EV_TYPE),
            col("Reason", "string", D_EV_REASON),
            col("Object", "string", D_EV_OBJECT),
            wide("Subobject", "string", D_EV_FIELD_PATH),
            wide("Source", "string", D_EV_SOURCE),
            col("Message", "string", D_EV_MESSAGE),
            wide("First Seen", "string", D_EV_FIRST),
            wide("Count", "string", D_EV_COUNT),
            ColumnDefinition {
                priority: 1,
                ..NAME
            },
        ],
        "configmaps" => vec![NAME, col("Data", "string", D_CM_DATA), AGE],
        "serviceaccounts" => vec![NAME, col("Secrets", "string", D_SA_SECRETS), AGE],
        "secrets" => vec![
            NAME,
            col("Type", "string", D_SECRET_TYPE),
            col("Data", "string", D_SECRET_DATA),
            AGE,
        ],
        "deployments" => vec![
            NAME,
            col("Ready", "string", D_READY_PODS),
            col("Up-to-date", "string", D_DEPLOY_UPDATED),
            col("Available", "string", D_DEPLOY_AVAILABLE),
            AGE,
            wide("Containers", "string", D_TEMPLATE_CONTAINERS),
            wide("Images", "string", D_TEMPLATE_IMAGES),
            wide("Selector", "string", D_DEPLOY_SELECTOR),
        ],
        "replicasets" => vec![
            NAME,
            col("Desired", "integer", D_RS_SPEC_REPLICAS),
            col("Current", "integer", D_RS_STATUS_REPLICAS),
            col("Ready", "integer", D_RS_READY),
            AGE,
            wide("Containers", "string", D_TEMPLATE_CONTAINERS),
            wide("Images", "string", D_TEMPLATE_IMAGES),
            wide("Selector", "string", D_RS_SELECTOR),
        ],
        "daemonsets" => vec![
            NAME,
            col("Desired", "integer", D_DS_DESIRED),
            col("Current", "integer", D_DS_CURRENT),
            col("Ready", "integer", D_DS_READY),
            col("Up-to-date", "integer", D_DS_UPDATED),
            col("Available", "integer", D_DS_AVAILABLE),
            col("Node Selector", "string", D_NODE_SELECTOR),
            AGE,
            wide("Containers", "string", D_TEMPLATE_CONTAINERS),
            wide("Images", "string", D_TEMPLATE_IMAGES),
            wide("Selector", "string", D_DS_SELECTOR),
        ],
        "statefulsets" => vec![
            NAME,
            col("Ready", "string", D_READY_PODS),
            AGE,
            wide("Containers", "string", D_TEMPLATE_CONTAINERS),
            wide("Images", "string", D_TEMPLATE_IMAGES),
        ],
        "endpointslices" => vec![
            NAME,
            col("AddressType", "string", D_ES_ADDRESS_TYPE),
            col("Ports", "string", D_ES_PORTS),
            col("Endpoints", "string", D_ES_ENDPOINTS),
            AGE,
        ],
        "ingresses" => vec![
            NAME,
            col(
                "Class",
                "string",
                "The name of the IngressClass resource that should be used for additional configuration",
            ),
            col(
                "Hosts",
                "string",
                "Hosts that incoming requests are matched against before the ingress rule",
            ),
            col(
                "Address",
                "string",
                "Address is a list containing ingress points for the load-balancer",
            ),
            col("Ports", "string", "Ports of TLS configurations that open"),
            AGE,
        ],
        "ingressclasses" => vec![
            NAME,
            col(
                "Controller",
                "string",
                "Controller that is responsible for handling this class",
            ),
            col(
                "Parameters",
                "string",
                "A reference to a resource with additional parameters",
            ),
            AGE,
        ],
        // Roles have no printer: kube-apiserver's default table convertor gives them a
        // `Created At` column holding the RFC3339 timestamp instead of an age.
        "clusterroles" | "roles" => vec![NAME, col("Created At", "date", D_AGE)],
        "rolebindings" => vec![
            NAME,
            col("Role", "string", D_RB_ROLE_REF),
            AGE,
            wide("Users", "string", "Users in the roleBinding"),
            wide("Groups", "string", "Groups in the roleBinding"),
            wide("ServiceAccounts", "string", "ServiceAccounts in the roleBinding"),
        ],
        "clusterrolebindings" => vec![
            NAME,
            col("Role", "string", D_CRB_ROLE_REF),
            AGE,
            wide("Users", "string", "Users in the clusterRoleBinding"),
            wide("Groups", "string", "Groups in the clusterRoleBinding"),
            wide(
                "ServiceAccounts",
                "string",
                "ServiceAccounts in the clusterRoleBinding",
            ),
        ],
        _ => vec![NAME, AGE],
    }
}

/// The cells of one row (JSON strings / integers as the real server sends them), `now_ms` = virtual now in ms since the Unix epoch, used for AGE.
pub fn cells(res: &Resource, obj: &Value, now_ms: i64) -> Vec<Value> {
    let name = Value::from(text(obj, "/metadata/name"));
    let age = Value::from(age(obj, now_ms));
    match res.plural {
        "namespaces" => vec![name, text(obj, "/status/phase").into(), age],
        "nodes" => node_cells(obj, name, age),
        "pods" => pod_cells(obj, name, age, now_ms),
        "services" => service_cells(obj, name, age),
        "endpoints" => vec![name, format_endpoints(obj).into(), age],
        "events" => event_cells(obj, name, now_ms),
        "configmaps" => {
            let n = map_len(obj, "/data") + map_len(obj, "/binaryData");
            vec![name, n.into(), age]
        }
        "serviceaccounts" => vec![name, (list(obj, "/secrets").len() as i64).into(), age],
        "secrets" => vec![
            name,
            text(obj, "/type").into(),
            map_len(obj, "/data").into(),
            age,
        ],
        "deployments" => {
            let (names, images) = container_cells(obj);
            vec![
                name,
                format!("{}/{}", int(obj, "/status/readyReplicas"), replicas(obj)).into(),
                int(obj, "/status/updatedReplicas").into(),
                int(obj, "/status/availableReplicas").into(),
                age,
                names.into(),
                images.into(),
                // Deployments print the bare selector string: empty, not `<none>`.
                selector_string(obj.at("/spec/selector"))
                    .unwrap_or_else(|| "<invalid>".to_owned())
                    .into(),
            ]
        }
        "replicasets" => {
            let (names, images) = container_cells(obj);
            vec![
                name,
                replicas(obj).into(),
                int(obj, "/status/replicas").into(),
                int(obj, "/status/readyReplicas").into(),
                age,
                names.into(),
                images.into(),
                format_label_selector(obj.at("/spec/selector")).into(),
            ]
        }
        "daemonsets" => {
            let (names, images) = container_cells(obj);
            vec![
                name,
                int(obj, "/status/desiredNumberScheduled").into(),
                int(obj, "/status/currentNumberScheduled").into(),
                int(obj, "/status/numberReady").into(),
                int(obj, "/status/updatedNumberScheduled").into(),
                int(obj, "/status/numberAvailable").into(),
                format_labels(obj.at("/spec/template/spec/nodeSelector")).into(),
                age,
                names.into(),
                images.into(),
                format_label_selector(obj.at("/spec/selector")).into(),
            ]
        }
        "statefulsets" => {
            let (names, images) = container_cells(obj);
            vec![
                name,
                format!("{}/{}", int(obj, "/status/readyReplicas"), replicas(obj)).into(),
                age,
                names.into(),
                images.into(),
            ]
        }
        "endpointslices" => vec![
            name,
            text(obj, "/addressType").into(),
            format_discovery_ports(obj).into(),
            format_discovery_endpoints(obj).into(),
            age,
        ],
        "ingresses" => ingress_cells(obj, name, age),
        "ingressclasses" => {
            let parameters = match obj.at("/spec/parameters") {
                Some(p) if p.is_object() => {
                    let mut s = text(p, "/kind").to_owned();
                    if let Some(group) = p.get("apiGroup").and_then(Value::as_str) {
                        s.push('.');
                        s.push_str(group);
                    }
                    s.push('/');
                    s.push_str(text(p, "/name"));
                    s
                }
                _ => "<none>".to_owned(),
            };
            vec![
                name,
                text(obj, "/spec/controller").into(),
                parameters.into(),
                age,
            ]
        }
        "clusterroles" | "roles" => {
            vec![name, text(obj, "/metadata/creationTimestamp").into()]
        }
        "rolebindings" | "clusterrolebindings" => binding_cells(obj, name, age),
        _ => vec![name, age],
    }
}

/// A (Cluster)RoleBinding's row: `Kind/name` of the role, then its subjects split by kind
/// as rbac's `SubjectsStrings` does (service accounts as `namespace/name`).
fn binding_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        text(obj, "/roleRef/kind"),
        text(obj, "/roleRef/name")
    );
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in list(obj, "/subjects") {
        let n = text(s, "/name");
        match text(s, "/kind") {
            "User" => users.push(n.to_owned()),
            "Group" => groups.push(n.to_owned()),
            "ServiceAccount" => sas.push(format!("{}/{n}", text(s, "/namespace"))),
            _ => {}
        }
    }
    vec![
        name,
        role.into(),
        age,
        users.join(", ").into(),
        groups.join(", ").into(),
        sas.join(", ").into(),
    ]
}

/// apimachinery duration.HumanDuration (2.8), input in milliseconds.
pub fn human_duration(ms: i64) -> String {
    // Go truncates the float seconds toward zero, as integer division does.
    let seconds = ms / 1000;
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `meta.k8s.io/v1` Table; field order follows the real server's encoding.
#[derive(Serialize)]
struct Table {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: ListMeta,
    #[serde(rename = "columnDefinitions")]
    column_definitions: Vec<ColumnDefinition>,
    rows: Vec<TableRow>,
}

#[derive(Serialize)]
struct ListMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
}

#[derive(Serialize)]
struct TableRow {
    cells: Vec<Value>,
    /// Only finished pods carry conditions (`Completed`); the server omits the field otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    conditions: Vec<Value>,
    object: PartialObjectMetadata,
}

/// What each row's `object` is with the default `includeObject=Metadata` (2.3): kubectl reads
/// namespace and labels from it for `-A` and `--show-labels`.
#[derive(Serialize)]
struct PartialObjectMetadata {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: Value,
}

/// The whole Table object: {"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":rv},"columnDefinitions":[...],"rows":[{"cells":[...],"object":<PartialObjectMetadata>}]}.
pub fn table(res: &Resource, objects: &[Value], now_ms: i64, resource_version: &str) -> Value {
    let rows = objects
        .iter()
        .map(|obj| TableRow {
            cells: cells(res, obj, now_ms),
            conditions: row_conditions(res, obj),
            object: PartialObjectMetadata {
                kind: "PartialObjectMetadata",
                api_version: "meta.k8s.io/v1",
                metadata: obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
            },
        })
        .collect();
    let t = Table {
        kind: "Table",
        api_version: "meta.k8s.io/v1",
        metadata: ListMeta {
            resource_version: resource_version.to_owned(),
        },
        column_definitions: columns(res),
        rows,
    };
    // Serializing plain structs of strings, numbers and Values cannot fail.
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// The printers mark finished pods so clients can tell them apart without parsing STATUS.
fn row_conditions(res: &Resource, obj: &Value) -> Vec<Value> {
    if res.plural != "pods" {
        return Vec::new();
    }
    let (reason, message) = match text(obj, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return Vec::new(),
    };
    vec![json!({"type": "Completed", "status": "True", "reason": reason, "message": message})]
}

// ---- field access: missing or mistyped fields read as Go's zero values ----

/// A string field, `""` when absent (Go's zero value, which the printers test for).
fn text<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.at(ptr).and_then(Value::as_str).unwrap_or("")
}

/// An integer field, 0 when absent.
fn int(v: &Value, ptr: &str) -> i64 {
    v.at(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// An array field, empty when absent.
fn list<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.at(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map_len(v: &Value, ptr: &str) -> i64 {
    v.at(ptr)
        .and_then(Value::as_object)
        .map_or(0, |m| m.len() as i64)
}

/// A timestamp field in ms; absent or unparsable is Go's zero time.
fn time_ms(v: &Value, ptr: &str) -> Option<i64> {
    v.at(ptr).and_then(Value::as_str).and_then(parse_rfc3339)
}

/// `translateTimestampSince`: `<unknown>` for the zero time.
fn since(ts: Option<i64>, now_ms: i64) -> String {
    match ts {
        Some(t) => human_duration(now_ms - t),
        None => "<unknown>".to_owned(),
    }
}

fn age(obj: &Value, now_ms: i64) -> String {
    since(time_ms(obj, "/metadata/creationTimestamp"), now_ms)
}

/// `spec.replicas`; defaulting sets 1 when omitted, so an undefaulted object reads as 1.
fn replicas(obj: &Value) -> i64 {
    obj.at("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// `layoutContainerCells`: names and images of the pod template, comma-joined.
fn container_cells(obj: &Value) -> (String, String) {
    let containers = list(obj, "/spec/template/spec/containers");
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `labels.FormatLabels`: `k=v` sorted by key, `<none>` when empty.
fn format_labels(map: Option<&Value>) -> String {
    let pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            // serde_json's Map iterates in key order, but sort anyway so the output does not
            // depend on that feature flag.
            let sorted: std::collections::BTreeMap<&str, &Value> =
                m.iter().map(|(k, v)| (k.as_str(), v)).collect();
            sorted
                .into_iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        "<none>".to_owned()
    } else {
        pairs.join(",")
    }
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key
/// (`app=web`, `tier in (a,b)`, `tier notin (a)`, `tier`, `!tier`). None = invalid operator.
fn selector_string(sel: Option<&Value>) -> Option<String> {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return Some(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            reqs.push((k.to_string(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for e in list(sel, "/matchExpressions") {
        let key = text(e, "/key");
        let values: BTreeSet<&str> = list(e, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let joined = values.into_iter().collect::<Vec<_>>().join(",");
        let s = match text(e, "/operator") {
            "In" => format!("{key} in ({joined})"),
            "NotIn" => format!("{key} notin ({joined})"),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        };
        reqs.push((key.to_owned(), s));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Some(
        reqs.into_iter()
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// `metav1.FormatLabelSelector`: like [`selector_string`] but `<none>` when it selects
/// everything or nothing, `<error>` when invalid.
fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        None => "<error>".to_owned(),
        Some(s) if s.is_empty() => "<none>".to_owned(),
        Some(s) => s,
    }
}

/// `ip:port` as Go's `net.JoinHostPort` writes it (IPv6 in brackets).
fn join_host_port(ip: &str, port: i64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// `listWithMoreString`: at most 3 items then ` + N more...`; `<unset>` when empty.
fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        "<unset>".to_owned()
    } else {
        ret
    }
}

// ---- per-resource cells ----

fn node_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    // Only the Ready condition is reported; the last one of that type wins, as in the
    // printer's condition map.
    let ready = list(obj, "/status/conditions")
        .iter()
        .rfind(|c| text(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if text(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if obj
        .at("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        status.push("SchedulingDisabled");
    }
    let mut roles = BTreeSet::new();
    if let Some(labels) = obj.at("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_owned());
                }
            } else if k == "kubernetes.io/role" {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_owned());
                }
            }
        }
    }
    let roles = if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };
    let address = |kind: &str| -> String {
        list(obj, "/status/addresses")
            .iter()
            .find(|a| text(a, "/type") == kind)
            .map_or_else(|| "<none>".to_owned(), |a| text(a, "/address").to_owned())
    };
    let info = |field: &str| -> String {
        let v = text(obj, &format!("/status/nodeInfo/{field}"));
        if v.is_empty() {
            "<unknown>".to_owned()
        } else {
            v.to_owned()
        }
    };
    vec![
        name,
        status.join(",").into(),
        roles.into(),
        age,
        text(obj, "/status/nodeInfo/kubeletVersion").into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

/// Whether a pointer names a present, non-null field (Go's non-nil pointer test).
fn has(c: &Value, ptr: &str) -> bool {
    c.at(ptr).is_some_and(|v| !v.is_null())
}

/// `reason` of a terminated state, or `Signal:N` / `ExitCode:N` when it has none.
fn terminated_reason(c: &Value, prefix: &str) -> String {
    let reason = text(c, "/state/terminated/reason");
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int(c, "/state/terminated/signal");
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int(c, "/state/terminated/exitCode"))
    }
}

fn pod_cells(pod: &Value, name: Value, age: Value, now_ms: i64) -> Vec<Value> {
    let phase = text(pod, "/status/phase");
    let mut reason = phase.to_owned();
    let status_reason = text(pod, "/status/reason");
    if !status_reason.is_empty() {
        reason = status_reason.to_owned();
    }
    let conditions = list(pod, "/status/conditions");
    if conditions
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_owned();
    }

    let init_specs = list(pod, "/spec/initContainers");
    // Sidecars (restartable init containers) count towards READY's total.
    let is_sidecar = |container: &str| {
        init_specs
            .iter()
            .any(|s| text(s, "/name") == container && text(s, "/restartPolicy") == "Always")
    };
    let total = list(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|s| text(s, "/restartPolicy") == "Always")
            .count();
    let mut ready = 0usize;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<i64> = None;
    let mut last_sidecar_restart: Option<i64> = None;
    let finished = |c: &Value| time_ms(c, "/lastState/terminated/finishedAt");

    let init_statuses = list(pod, "/status/initContainerStatuses");
    let mut initializing = false;
    for (i, c) in init_statuses.iter().enumerate() {
        restarts += int(c, "/restartCount");
        last_restart = last_restart.max(finished(c));
        let sidecar = is_sidecar(text(c, "/name"));
        if sidecar {
            sidecar_restarts += int(c, "/restartCount");
            last_sidecar_restart = last_sidecar_restart.max(finished(c));
        }
        let terminated = has(c, "/state/terminated");
        let waiting_reason = text(c, "/state/waiting/reason");
        if terminated && int(c, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if sidecar && c.get("started").and_then(Value::as_bool).unwrap_or(false) {
            if c.get("ready").and_then(Value::as_bool).unwrap_or(false) {
                ready += 1;
            }
            continue;
        }
        if terminated {
            reason = terminated_reason(c, "Init:");
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .any(|c| text(c, "/type") == "Initialized" && text(c, "/status") == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        // The printer walks containers last to first, so the first container's state wins.
        for c in list(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(c, "/restartCount");
            last_restart = last_restart.max(finished(c));
            let waiting_reason = text(c, "/state/waiting/reason");
            if has(c, "/state/waiting") && !waiting_reason.is_empty() {
                reason = waiting_reason.to_owned();
            } else if has(c, "/state/terminated") {
                reason = terminated_reason(c, "");
            } else if c.get("ready").and_then(Value::as_bool).unwrap_or(false)
                && has(c, "/state/running")
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_owned();
        }
    }

    if has(pod, "/metadata/deletionTimestamp") {
        if status_reason == "NodeLost" {
            reason = "Unknown".to_owned();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_owned();
        }
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now_ms)),
        _ => restarts.to_string(),
    };

    let pod_ip = list(pod, "/status/podIPs")
        .first()
        .map(|p| text(p, "/ip"))
        .unwrap_or_else(|| text(pod, "/status/podIP"));
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_owned()
        } else {
            s.to_owned()
        }
    };
    let gates = list(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| {
                let t = text(g, "/conditionType");
                conditions
                    .iter()
                    .find(|c| text(c, "/type") == t)
                    .is_some_and(|c| text(c, "/status") == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };

    vec![
        name,
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_str.into(),
        age,
        or_none(pod_ip).into(),
        or_none(text(pod, "/spec/nodeName")).into(),
        or_none(text(pod, "/status/nominatedNodeName")).into(),
        readiness_gates.into(),
    ]
}

fn service_cells(svc: &Value, name: Value, age: Value) -> Vec<Value> {
    let svc_type = text(svc, "/spec/type");
    // clusterIPs is always populated alongside clusterIP by the real apiserver; fall back to
    // clusterIP for objects that were stored without it.
    let cluster_ip = list(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            Some(text(svc, "/spec/clusterIP"))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "<none>".to_owned());

    let external_ips: Vec<&str> = list(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_owned()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb: BTreeSet<&str> = list(svc, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| {
                    let ip = text(i, "/ip");
                    let host = text(i, "/hostname");
                    if !ip.is_empty() {
                        Some(ip)
                    } else if !host.is_empty() {
                        Some(host)
                    } else {
                        None
                    }
                })
                .collect();
            let mut all: Vec<&str> = lb.into_iter().collect();
            all.extend(external_ips.iter().copied());
            if all.is_empty() {
                "<pending>".to_owned()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => text(svc, "/spec/externalName").to_owned(),
        _ => "<unknown>".to_owned(),
    };

    let ports: Vec<String> = list(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int(p, "/port");
            // Defaulting sets TCP; an undefaulted port reads as TCP too.
            let proto = Some(text(p, "/protocol"))
                .filter(|s| !s.is_empty())
                .unwrap_or("TCP");
            let node_port = int(p, "/nodePort");
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_owned()
    } else {
        ports.join(",")
    };

    vec![
        name,
        svc_type.into(),
        cluster_ip.into(),
        external.into(),
        ports.into(),
        age,
        format_labels(svc.at("/spec/selector")).into(),
    ]
}

/// `formatEndpoints`: ready addresses only, `ip:port` per port, max 3; `<none>` without
/// subsets, an empty string when subsets hold only not-ready addresses.
fn format_endpoints(ep: &Value) -> String {
    let subsets = list(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    const MAX: usize = 3;
    let mut out: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    let mut add = |s: String, out: &mut Vec<String>| {
        if out.len() == MAX {
            more = true;
        }
        if !more {
            out.push(s);
        }
        count += 1;
    };
    for ss in subsets {
        let addresses = list(ss, "/addresses");
        let ports = list(ss, "/ports");
        if ports.is_empty() {
            for a in addresses {
                add(text(a, "/ip").to_owned(), &mut out);
            }
        } else {
            for p in ports {
                for a in addresses {
                    add(join_host_port(text(a, "/ip"), int(p, "/port")), &mut out);
                }
            }
        }
    }
    let ret = out.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

/// `formatDiscoveryPorts`: port number, else port name, else `*`.
fn format_discovery_ports(slice: &Value) -> String {
    const MAX: usize = 3;
    let mut out = Vec::new();
    let mut more = false;
    let mut count = 0;
    for p in list(slice, "/ports") {
        if out.len() < MAX {
            let s = if let Some(n) = p.get("port").and_then(Value::as_i64) {
                n.to_string()
            } else if let Some(n) = p.get("name").and_then(Value::as_str) {
                n.to_owned()
            } else {
                "*".to_owned()
            };
            out.push(s);
        } else if out.len() == MAX {
            more = true;
        }
        count += 1;
    }
    list_with_more(&out, more, count, MAX)
}

/// `formatDiscoveryEndpoints`: every address, ready or not.
fn format_discovery_endpoints(slice: &Value) -> String {
    const MAX: usize = 3;
    let mut out = Vec::new();
    let mut more = false;
    let mut count = 0;
    for e in list(slice, "/endpoints") {
        for a in list(e, "/addresses").iter().filter_map(Value::as_str) {
            if out.len() < MAX {
                out.push(a.to_owned());
            } else if out.len() == MAX {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(&out, more, count, MAX)
}

fn ingress_cells(ing: &Value, name: Value, age: Value) -> Vec<Value> {
    let class = ing
        .at("/spec/ingressClassName")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    // formatHosts: `more` trips once 3 hosts are listed and another rule follows.
    const MAX: usize = 3;
    let rules = list(ing, "/spec/rules");
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for r in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let h = text(r, "/host");
        if !more && !h.is_empty() {
            hosts.push(h);
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_owned()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let address: BTreeSet<&str> = list(ing, "/status/loadBalancer/ingress")
        .iter()
        .filter_map(|i| {
            let ip = text(i, "/ip");
            let host = text(i, "/hostname");
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    let address = address.into_iter().collect::<Vec<_>>().join(",");
    let ports = if list(ing, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name,
        class.into(),
        hosts.into(),
        address.into(),
        ports.into(),
        age,
    ]
}

fn event_cells(ev: &Value, name: Value, now_ms: i64) -> Vec<Value> {
    let first = match time_ms(ev, "/firstTimestamp") {
        Some(t) => since(Some(t), now_ms),
        None => since(time_ms(ev, "/eventTime"), now_ms),
    };
    let mut last = match time_ms(ev, "/lastTimestamp") {
        Some(t) => since(Some(t), now_ms),
        None => first.clone(),
    };
    let mut count = int(ev, "/count");
    if let Some(series) = ev.get("series").filter(|s| s.is_object()) {
        last = since(time_ms(series, "/lastObservedTime"), now_ms);
        count = int(series, "/count");
    } else if count == 0 {
        // Singleton events of the events.k8s.io API carry no count.
        count = 1;
    }
    let kind = text(ev, "/involvedObject/kind").to_lowercase();
    let obj_name = text(ev, "/involvedObject/name");
    let target = if obj_name.is_empty() {
        kind
    } else {
        format!("{kind}/{obj_name}")
    };
    let first_non_empty = |a: &'static str, b: &'static str| -> String {
        let x = text(ev, a);
        if x.is_empty() {
            text(ev, b).to_owned()
        } else {
            x.to_owned()
        }
    };
    let component = first_non_empty("/source/component", "/reportingComponent");
    let instance = first_non_empty("/source/host", "/reportingInstance");
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last.into(),
        text(ev, "/type").into(),
        text(ev, "/reason").into(),
        target.into(),
        text(ev, "/involvedObject/fieldPath").into(),
        source.into(),
        text(ev, "/message").trim().into(),
        first.into(),
        count.into(),
        name,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    /// 2026-01-01T00:00:00Z: the virtual "now" of every test.
    const NOW: &str = "2026-01-01T00:00:00Z";

    fn now() -> i64 {
        parse_rfc3339(NOW).unwrap()
    }

    /// An RFC 3339 timestamp `secs` seconds before [`NOW`].
    fn ago(secs: i64) -> String {
        let t = chrono::DateTime::from_timestamp_millis(now() - secs * 1000).unwrap();
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    fn row(resource: &str, obj: Value) -> Vec<Value> {
        cells(find(resource).unwrap(), &obj, now())
    }

    /// The cells kubectl shows without `-o wide` (priority-0 columns).
    fn narrow(resource: &str, obj: Value) -> Vec<Value> {
        let res = find(resource).unwrap();
        let cols = columns(res);
        let c = cells(res, &obj, now());
        assert_eq!(cols.len(), c.len(), "one cell per column for {resource}");
        cols.iter()
            .zip(c)
            .filter(|(col, _)| col.priority == 0)
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn human_duration_matches_reference_examples() {
        let s = 1000;
        let m = 60 * s;
        let h = 60 * m;
        let d = 24 * h;
        for (ms, want) in [
            (119 * s, "119s"),
            (2 * m, "2m"),
            (3 * m + 11 * s, "3m11s"),
            (62 * m, "62m"),
            (179 * m, "179m"),
            (5 * h + 2 * m, "5h2m"),
            (3 * h, "3h"),
            (47 * h, "47h"),
            (2 * d + 5 * h, "2d5h"),
            (7 * d + 23 * h, "7d23h"),
            (114 * d, "114d"),
            (729 * d, "729d"),
            (2 * 365 * d + 3 * d, "2y3d"),
            (-2 * s, "<invalid>"),
            (-s, "0s"),
            (-500, "0s"),
            (0, "0s"),
        ] {
            assert_eq!(human_duration(ms), want, "{ms} ms");
        }
    }

    #[test]
    fn missing_creation_timestamp_is_unknown() {
        let c = row("ns", json!({"metadata": {"name": "x"}}));
        assert_eq!(c, vec![json!("x"), json!(""), json!("<unknown>")]);
    }

    #[test]
    fn running_pod_matches_2_14() {
        let pod = json!({
            "metadata": {"name": "nginx-7cf55fb7bb-5fjcn", "creationTimestamp": ago(37 * 60)},
            "spec": {"nodeName": "k8s-node2", "containers": [{"name": "nginx", "image": "nginx"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.244.169.136",
                "podIPs": [{"ip": "10.244.169.136"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{
                    "name": "nginx", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": ago(37 * 60)}}
                }]
            }
        });
        assert_eq!(
            row("pods", pod),
            vec![
                json!("nginx-7cf55fb7bb-5fjcn"),
                json!("1/1"),
                json!("Running"),
                json!("0"),
                json!("37m"),
                json!("10.244.169.136"),
                json!("k8s-node2"),
                json!("<none>"),
                json!("<none>"),
            ]
        );
    }

    fn waiting_pod(reason: &str) -> Value {
        json!({
            "metadata": {"name": "web", "creationTimestamp": ago(5)},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            "status": {
                "phase": "Pending",
                "containerStatuses": [{
                    "name": "web", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": reason}}
                }]
            }
        })
    }

    #[test]
    fn container_creating_pod() {
        assert_eq!(
            narrow("pods", waiting_pod("ContainerCreating")),
            vec![
                json!("web"),
                json!("0/1"),
                json!("ContainerCreating"),
                json!("0"),
                json!("5s")
            ]
        );
    }

    #[test]
    fn image_pull_backoff_pod() {
        let c = narrow("pods", waiting_pod("ImagePullBackOff"));
        assert_eq!(c[1], json!("0/1"));
        assert_eq!(c[2], json!("ImagePullBackOff"));
        let c = narrow("pods", waiting_pod("ErrImagePull"));
        assert_eq!(c[2], json!("ErrImagePull"));
    }

    #[test]
    fn restarts_show_last_termination_age() {
        // 2.12: `3 (41s ago)`.
        let pod = json!({
            "metadata": {"name": "crash", "creationTimestamp": ago(300)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {
                "phase": "Running",
                "containerStatuses": [{
                    "name": "c", "ready": false, "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(41)}}
                }]
            }
        });
        let c = narrow("pods", pod);
        assert_eq!(c[2], json!("CrashLoopBackOff"));
        assert_eq!(c[3], json!("3 (41s ago)"));
    }

    #[test]
    fn completed_and_terminating_pods() {
        let done = json!({
            "metadata": {"name": "job", "creationTimestamp": ago(60)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "c", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}
            }]}
        });
        assert_eq!(narrow("pods", done.clone())[2], json!("Completed"));
        let mut deleting = waiting_pod("ContainerCreating");
        deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(narrow("pods", deleting)[2], json!("Terminating"));
        // A finished pod stays Completed while being deleted.
        let mut done_deleting = done;
        done_deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(narrow("pods", done_deleting)[2], json!("Completed"));
    }

    fn service(name: &str, age_secs: i64, spec: Value) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": ago(age_secs)}, "spec": spec})
    }

    #[test]
    fn services_match_2_19() {
        let cases = [
            (
                service(
                    "kubernetes",
                    114 * 86400,
                    json!({"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                           "ports": [{"port": 443, "protocol": "TCP"}]}),
                ),
                [
                    "kubernetes",
                    "ClusterIP",
                    "10.96.0.1",
                    "<none>",
                    "443/TCP",
                    "114d",
                ],
            ),
            (
                service(
                    "web",
                    62 * 60,
                    json!({"type": "NodePort", "clusterIPs": ["10.96.45.12"],
                           "ports": [{"port": 80, "nodePort": 30707, "protocol": "TCP"}]}),
                ),
                [
                    "web",
                    "NodePort",
                    "10.96.45.12",
                    "<none>",
                    "80:30707/TCP",
                    "62m",
                ],
            ),
            (
                service(
                    "web-lb",
                    22,
                    json!({"type": "LoadBalancer", "clusterIPs": ["10.96.200.9"],
                           "ports": [{"port": 80, "nodePort": 31380, "protocol": "TCP"},
                                     {"port": 443, "nodePort": 31390, "protocol": "TCP"}]}),
                ),
                [
                    "web-lb",
                    "LoadBalancer",
                    "10.96.200.9",
                    "<pending>",
                    "80:31380/TCP,443:31390/TCP",
                    "22s",
                ],
            ),
            (
                service(
                    "headless",
                    191,
                    json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                           "ports": [{"port": 80, "protocol": "TCP"}]}),
                ),
                ["headless", "ClusterIP", "None", "<none>", "80/TCP", "3m11s"],
            ),
            (
                service(
                    "ext",
                    5 * 3600 + 120,
                    json!({"type": "ExternalName", "externalName": "www.example.com"}),
                ),
                [
                    "ext",
                    "ExternalName",
                    "<none>",
                    "www.example.com",
                    "<none>",
                    "5h2m",
                ],
            ),
        ];
        for (svc, want) in cases {
            let want: Vec<Value> = want.iter().map(|s| json!(s)).collect();
            assert_eq!(narrow("svc", svc), want);
        }
    }

    #[test]
    fn service_wide_selector_is_sorted() {
        let svc = service(
            "web",
            1,
            json!({"type": "ClusterIP", "clusterIPs": ["10.96.0.9"], "selector": {"tier": "fe", "app": "web"}}),
        );
        assert_eq!(row("svc", svc)[6], json!("app=web,tier=fe"));
        let svc = service("x", 1, json!({"type": "ClusterIP"}));
        assert_eq!(row("svc", svc)[6], json!("<none>"));
    }

    #[test]
    fn endpoints_formatting_2_21() {
        let addrs = ["10.244.1.5", "10.244.2.7", "10.244.2.8", "10.244.3.9"];
        let ep = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(62 * 60)},
            "subsets": [{
                "addresses": addrs.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>(),
                "ports": [{"port": 8080, "protocol": "TCP"}]
            }]
        });
        assert_eq!(
            row("ep", ep),
            vec![
                json!("web"),
                json!("10.244.1.5:8080,10.244.2.7:8080,10.244.2.8:8080 + 1 more..."),
                json!("62m"),
            ]
        );
        let not_ready = json!({
            "metadata": {"name": "web"},
            "subsets": [{"notReadyAddresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 8080}]}]
        });
        assert_eq!(row("ep", not_ready)[1], json!(""));
        let none = json!({"metadata": {"name": "web"}});
        assert_eq!(row("ep", none)[1], json!("<none>"));
    }

    #[test]
    fn deployment_matches_2_20() {
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(300)},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}
            },
            "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
        });
        assert_eq!(
            narrow("deploy", d.clone()),
            vec![json!("web"), json!("3/3"), json!(3), json!(3), json!("5m")]
        );
        let c = row("deploy", d);
        assert_eq!(
            c[5..],
            [json!("nginx"), json!("nginx:1.25"), json!("app=web")]
        );
    }

    #[test]
    fn replicaset_selector_is_sorted_label_selector() {
        let rs = json!({
            "metadata": {"name": "web-1"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"release": "stabel", "app": "myapp"}}},
            "status": {"replicas": 2, "readyReplicas": 1}
        });
        let c = row("rs", rs);
        assert_eq!(c[1..4], [json!(2), json!(2), json!(1)]);
        assert_eq!(c[7], json!("app=myapp,release=stabel"));
    }

    #[test]
    fn ingress_matches_2_24() {
        let example = json!({
            "metadata": {"name": "example", "creationTimestamp": ago(300)},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "foo.bar.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.49.2"}]}}
        });
        assert_eq!(
            row("ing", example),
            [
                "example",
                "nginx",
                "foo.bar.com",
                "192.168.49.2",
                "80",
                "5m"
            ]
            .map(|s| json!(s))
            .to_vec()
        );
        let tls = json!({
            "metadata": {"name": "tls", "creationTimestamp": ago(60)},
            "spec": {"ingressClassName": "nginx", "rules": [{"http": {}}], "tls": [{"secretName": "s"}]}
        });
        assert_eq!(
            row("ing", tls),
            ["tls", "nginx", "*", "", "80, 443", "60s"]
                .map(|s| json!(s))
                .to_vec()
        );
    }

    #[test]
    fn node_status_and_roles() {
        let n = json!({
            "metadata": {"name": "cp", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.34.0"},
                "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]
            }
        });
        let c = row("no", n);
        assert_eq!(c[1], json!("Ready,SchedulingDisabled"));
        assert_eq!(c[2], json!("control-plane"));
        assert_eq!(
            c[5..8],
            [json!("172.18.0.2"), json!("<none>"), json!("<unknown>")]
        );
        let w = json!({"metadata": {"name": "w"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let c = row("no", w);
        assert_eq!(c[1..3], [json!("NotReady"), json!("<none>")]);
    }

    #[test]
    fn columns_follow_the_printers() {
        for res in crate::resources::RESOURCES {
            let cols = columns(res);
            let name = cols.iter().find(|c| c.format == "name").unwrap();
            assert_eq!(name.name, "Name");
            if res.plural != "events" {
                assert_eq!(cols[0].name, "Name", "{}", res.plural);
            }
        }
        let pods: Vec<_> = columns(find("pods").unwrap())
            .iter()
            .map(|c| (c.name, c.priority))
            .collect();
        assert_eq!(
            pods,
            [
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1)
            ]
        );
    }

    #[test]
    fn table_shape() {
        let res = find("cm").unwrap();
        let objs = [json!({
            "metadata": {"name": "cfg", "namespace": "default", "creationTimestamp": ago(10)},
            "data": {"a": "1", "b": "2"}
        })];
        let t = table(res, &objs, now(), "42");
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"]["resourceVersion"], "42");
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert_eq!(t["columnDefinitions"][0]["type"], "string");
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["rows"][0]["cells"], json!(["cfg", 2, "10s"]));
        assert!(t["rows"][0].get("conditions").is_none());
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "default");
    }

    #[test]
    fn endpointslice_and_events() {
        let es = json!({
            "metadata": {"name": "web-abc"},
            "addressType": "IPv4",
            "ports": [{"port": 8080}, {"name": "http"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": false}}]
        });
        assert_eq!(
            row("endpointslices", es)[1..4],
            [json!("IPv4"), json!("8080,http,*"), json!("10.0.0.1")]
        );
        let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4"});
        assert_eq!(
            row("endpointslices", empty)[2..4],
            [json!("<unset>"), json!("<unset>")]
        );

        let ev = json!({
            "metadata": {"name": "web.1"},
            "type": "Normal", "reason": "Scheduled", "message": " Successfully assigned \n",
            "involvedObject": {"kind": "Pod", "name": "web"},
            "source": {"component": "default-scheduler"},
            "firstTimestamp": ago(30), "lastTimestamp": ago(20)
        });
        let c = row("ev", ev);
        assert_eq!(
            c,
            vec![
                json!("20s"),
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/web"),
                json!(""),
                json!("default-scheduler"),
                json!("Successfully assigned"),
                json!("30s"),
                json!(1),
                json!("web.1")
            ]
        );
    }
}
