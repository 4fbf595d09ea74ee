//! Two small kube-controller-manager loops that every namespace relies on: the
//! serviceaccount controller (a `default` ServiceAccount in every namespace, put back if
//! deleted) and root-ca-cert-publisher (the cluster CA as ConfigMap `kube-root-ca.crt` in
//! every namespace, put back if deleted or changed). A pod's API-access volume, mounted by
//! ServiceAccount admission, reads that ConfigMap.

use std::collections::BTreeSet;

use apiserver::json::At;
use apiserver::resources::find;
use apiserver::ApiError;
use serde_json::{json, Value};

use super::cache::Key;
use super::{Cluster, ClusterError};

pub(super) const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// The cluster CA: a real self-signed certificate (CN=kubernetes, RSA 2048, valid ten years
/// from 2020-10-27T09:55:00Z, as kubeadm makes one), generated once for netsim. Its key was
/// not kept: nothing in the simulation signs or verifies.
const CLUSTER_CA: &str = include_str!("ca.crt");

/// root-ca-cert-publisher's annotation on the ConfigMap.
const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

impl Cluster {
    pub(super) async fn run_namespace_defaults(
        &mut self,
        namespaces: BTreeSet<Key>,
    ) -> Result<(), ClusterError> {
        let sa_res = find("serviceaccounts").ok_or_else(|| ApiError::internal("no SAs"))?;
        let cm_res = find("configmaps").ok_or_else(|| ApiError::internal("no configmaps"))?;
        for ns in namespaces {
            let active = self
                .cache
                .get("namespaces", &ns)
                .is_some_and(|n| n.at(&["metadata", "deletionTimestamp"]).is_none());
            if !active {
                continue;
            }
            if self
                .cache
                .get("serviceaccounts", &format!("{ns}/default"))
                .is_none()
            {
                let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": ns}});
                already_there_is_fine(self.api.create(sa_res, Some(&ns), sa).await)?;
            }
            let ca = self
                .cache
                .get("configmaps", &format!("{ns}/{ROOT_CA_CONFIGMAP}"))
                .cloned();
            match ca {
                None => {
                    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": ns,
                            "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
                        "data": {"ca.crt": CLUSTER_CA}});
                    already_there_is_fine(self.api.create(cm_res, Some(&ns), cm).await)?;
                }
                Some(mut cm) => {
                    let want = json!({"ca.crt": CLUSTER_CA});
                    if cm.get("data") != Some(&want) {
                        cm["data"] = want;
                        super::ignore_not_found(
                            self.api
                                .update(cm_res, Some(&ns), ROOT_CA_CONFIGMAP, cm, false)
                                .await,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A create that lost a race with an earlier one (the object exists) did its job.
fn already_there_is_fine(r: Result<Value, ApiError>) -> Result<(), ApiError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 || e.code == 403 || e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
