//! The `netsim` binary as a user runs it: bad input fails before anything runs, with
//! `file:line:col` and exit 2; a failed expectation exits 1.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;

fn netsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netsim"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every one of `blocks` appears in the transcript `out`.
fn assert_shows(out: &str, blocks: &[&str]) {
    for block in blocks {
        assert!(out.contains(block), "missing:\n{block}\nin:\n{out}");
    }
}

fn scenario(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("netsim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

#[test]
fn yaml_error_names_file_line_and_column() {
    let p = scenario(
        "broken.yaml",
        "name: x\nsteps:\n  - run: kubectl get pod\n   bad: [\n",
    );
    let (code, out, err) = netsim(&["run", &p]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "nothing may run: {out}");
    assert!(err.starts_with(&format!("netsim: {p}:4:")), "{err}");
}

#[test]
fn unknown_key_is_an_error() {
    let p = scenario(
        "typo.yaml",
        "name: x\nsteps:\n  - run: kubectl get pod\n    expcet: {exit: 0}\n",
    );
    let (code, _, err) = netsim(&["run", &p]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown field `expcet`"), "{err}");
    assert!(
        err.contains(&format!("{p}:4:5: steps[0]: unknown field `expcet`")),
        "{err}"
    );
}

#[test]
fn unknown_command_is_an_error_with_its_line() {
    let p = scenario(
        "cmd.yaml",
        "name: x\nsteps:\n  - run: kubectl get pod\n  - run: kubeclt get pod\n",
    );
    let (code, out, err) = netsim(&["run", &p]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains(&format!("{p}:4:")) && err.contains("unknown command \"kubeclt\""),
        "{err}"
    );
}

#[test]
fn unknown_kubectl_subcommand_and_missing_file_are_errors() {
    let p = scenario("sub.yaml", "name: x\nsteps:\n  - run: kubectl gett pod\n");
    let (code, _, err) = netsim(&["run", &p]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown kubectl command \"gett\""), "{err}");
    let p = scenario(
        "file.yaml",
        "name: x\nsteps:\n  - run: kubectl apply -f nosuch.yaml\n",
    );
    let (code, _, err) = netsim(&["run", &p]);
    assert_eq!(code, 2);
    assert!(
        err.contains("file \"nosuch.yaml\" is neither in `files:`"),
        "{err}"
    );
}

#[test]
fn failed_expectation_exits_1_and_bad_manifest_shows_the_server_error() {
    let p = scenario(
        "expect.yaml",
        "name: x\nfiles:\n  d.yaml: |\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: web}\n    spec:\n      replica: 2\n      selector: {matchLabels: {app: web}}\n      template:\n        metadata: {labels: {app: other}}\n        spec: {containers: [{name: web, image: nginx}]}\nsteps:\n  - run: kubectl apply -f d.yaml\n  - run: kubectl get pod\n    expect: {contains: [web]}\n",
    );
    let (code, out, err) = netsim(&["run", &p]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("Error from server (BadRequest): error when creating \"d.yaml\": Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replica\""), "{out}");
    assert!(err.contains("expectation failed"), "{err}");
}

/// An invalid object prints as kubectl's checkErr prints a 422: the kind without its group,
/// one cause on the line, several as `*` lines; Ingress specs get kube-apiserver's checks.
#[test]
fn invalid_objects_print_their_causes_as_kubectl_does() {
    let p = scenario("invalid.yaml", INVALID_SCENARIO);
    let (code, out, err) = netsim(&["run", &p]);
    assert_eq!(code, 0, "{err}");
    assert_shows(
        &out,
        &[
        "kubectl apply -f deploy.yaml\nThe Deployment \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`\n[exit 1]\n",
        "kubectl apply -f ing.yaml\nThe Ingress \"bad\" is invalid: \n* spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address\n* spec.rules[0].http.paths[0].path: Invalid value: \"foo\": must be an absolute path\n* spec.rules[0].http.paths[1].pathType: Unsupported value: \"prefix\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"\n[exit 1]\n",
        "kubectl get ing\nNo resources found in default namespace.\n",
        ],
    );
}

const INVALID_SCENARIO: &str = "name: invalid\nfiles:\n  deploy.yaml: |\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: web}\n    spec:\n      selector: {matchLabels: {app: web}}\n      template:\n        metadata: {labels: {app: other}}\n        spec: {containers: [{name: web, image: nginx}]}\n  ing.yaml: |\n    apiVersion: networking.k8s.io/v1\n    kind: Ingress\n    metadata: {name: bad}\n    spec:\n      rules:\n      - host: 10.0.0.1\n        http:\n          paths:\n          - {path: foo, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}\n          - {path: /x, pathType: prefix, backend: {service: {name: web, port: {number: 80}}}}\nsteps:\n  - run: kubectl apply -f deploy.yaml\n  - run: kubectl apply -f ing.yaml\n  - run: kubectl get ing\n";

#[test]
fn a_store_that_is_not_there_fails_cleanly() {
    let p = scenario("ok.yaml", "name: x\nsteps:\n  - run: kubectl get ns\n");
    let (code, _, err) = netsim(&["run", "--store", "etcd://127.0.0.1:1", &p]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("etcd unavailable at 127.0.0.1:1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `kubectl wait` visits objects one at a time in list order under one deadline: the
/// `condition met` lines follow name order, the first object not met times out, every one
/// after it fails with it, and the errors print as kubectl aggregates them.
#[test]
fn wait_visits_in_list_order_under_one_deadline() {
    let p = scenario("wait.yaml", WAIT_SCENARIO);
    let (code, out, err) = netsim(&["run", &p]);
    assert_eq!(code, 0, "{err}");
    assert_shows(
        &out,
        &[
        "--timeout=2m\npod/z-ok condition met\npod/a-ok condition met\n",
        "-l app=w --timeout=30s\npod/a-ok condition met\npod/b-ok condition met\ntimed out waiting for the condition on pods/m-missing\ntimed out waiting for the condition on pods/z-ok\n[exit 1]\n",
        "pod z-ok m-missing --timeout=30s\npod/z-ok condition met\nerror: timed out waiting for the condition on pods/m-missing\n[exit 1]\n",
        "--timeout=0\nerror: condition not met for pods/m-missing\n[exit 1]\n",
        "pod nope\nError from server (NotFound): pods \"nope\" not found\n[exit 1]\n",
        "pod/b-ok pod/a-ok --timeout=40s\npod/b-ok condition met\nerror: timed out waiting for the condition on pods/a-ok\n[exit 1]\n",
        ],
    );
}

const WAIT_SCENARIO: &str = "name: wait-order\nfiles:\n  pods.yaml: |\n    apiVersion: v1\n    kind: Pod\n    metadata: {name: a-ok, labels: {app: w}}\n    spec: {containers: [{name: c, image: nginx}]}\n    ---\n    apiVersion: v1\n    kind: Pod\n    metadata: {name: b-ok, labels: {app: w}}\n    spec: {containers: [{name: c, image: nginx}]}\n    ---\n    apiVersion: v1\n    kind: Pod\n    metadata: {name: m-missing, labels: {app: w}}\n    spec: {containers: [{name: c, image: nosuch/image}]}\n    ---\n    apiVersion: v1\n    kind: Pod\n    metadata: {name: z-ok, labels: {app: w}}\n    spec: {containers: [{name: c, image: nginx}]}\nsteps:\n  - run: kubectl apply -f pods.yaml\n  - run: kubectl wait --for=condition=Ready pod/z-ok pod/a-ok --timeout=2m\n  - run: kubectl wait --for=condition=Ready pod -l app=w --timeout=30s\n  - run: kubectl wait --for=condition=Ready pod z-ok m-missing --timeout=30s\n  - run: kubectl wait --for=condition=Ready pod m-missing --timeout=0\n  - run: kubectl wait --for=condition=Ready pod nope\n  - run: kubectl delete pod b-ok --wait=false\n  - run: kubectl wait --for=delete pod/b-ok pod/a-ok --timeout=40s\n";

#[test]
fn create_generators_and_their_errors() {
    let p = scenario("create.yaml", CREATE_SCENARIO);
    let (code, out, err) = netsim(&["run", &p]);
    assert_eq!(code, 0, "{err}");
    assert_shows(
        &out,
        &[
        "kubectl create ns lab\nnamespace/lab created\n",
        "kubectl create ns lab\nError from server (AlreadyExists): namespaces \"lab\" already exists\n[exit 1]\n",
        "kubectl create configmap cfg -n lab --from-literal=a=1 --from-literal=b=2\nconfigmap/cfg created\n",
        "kubectl get cm -n lab\nNAME               DATA   AGE\ncfg                2      0s\nkube-root-ca.crt   1      60s\n",
        "kubectl create secret generic s --from-literal=novalue\nerror: invalid literal source novalue, expected key=value\n[exit 1]\n",
        "kubectl create deployment web --image=nginx --replicas=2\ndeployment.apps/web created\n",
        "kubectl create deployment bad\nerror: required flag(s) \"image\" not set\n[exit 1]\n",
        "kubectl get deploy web -o jsonpath={.metadata.labels.app}/{.spec.template.spec.containers[0].name}/{.status.readyReplicas}/{.spec.strategy.rollingUpdate.maxSurge}\nweb/nginx/2/25%",
        "kubectl create widget w\nerror: Unexpected args: [widget w]\nSee 'kubectl create -h' for help and examples\n[exit 1]\n",
        // Deleting `default` waits for that object only: the controller's new one is not it.
        "kubectl delete sa default -n lab\nserviceaccount \"default\" deleted from lab namespace\n",
        "kubectl get sa -n lab\nNAME      SECRETS   AGE\ndefault   0         0s\n",
        ],
    );
}

const CREATE_SCENARIO: &str = "name: create\nsteps:\n  - run: kubectl create ns lab\n  - run: kubectl create ns lab\n  - sleep: 1m\n  - run: kubectl create configmap cfg -n lab --from-literal=a=1 --from-literal=b=2\n  - run: kubectl get cm -n lab\n  - run: kubectl create secret generic s --from-literal=novalue\n  - run: kubectl create deployment web --image=nginx --replicas=2\n  - run: kubectl create deployment bad\n  - run: kubectl wait --for=condition=Available deploy/web --timeout=2m\n  - run: kubectl get deploy web -o jsonpath={.metadata.labels.app}/{.spec.template.spec.containers[0].name}/{.status.readyReplicas}/{.spec.strategy.rollingUpdate.maxSurge}\n  - run: kubectl create widget w\n  - run: kubectl delete sa default -n lab\n  - run: kubectl get sa -n lab\n";

#[test]
fn reapplying_a_pod_merges_its_containers_by_name_and_restarts_it() {
    // The second manifest changes the image only: kubectl apply's strategic patch names the
    // container, and the server keeps the volume mount ServiceAccount admission added.
    let p = scenario(
        "reapply.yaml",
        "name: reapply\nfiles:\n  p1.yaml: |\n    apiVersion: v1\n    kind: Pod\n    metadata: {name: p}\n    spec: {containers: [{name: web, image: 'wangyanglinux/myapp:v1'}]}\n  p2.yaml: |\n    apiVersion: v1\n    kind: Pod\n    metadata: {name: p}\n    spec: {containers: [{name: web, image: 'wangyanglinux/myapp:v2'}]}\n  p9.yaml: |\n    apiVersion: v1\n    kind: Pod\n    metadata: {name: p}\n    spec: {containers: [{name: web, image: 'wangyanglinux/myapp:v9'}]}\nsteps:\n  - run: kubectl apply -f p1.yaml\n  - run: kubectl wait --for=condition=Ready pod/p\n  - run: kubectl apply -f p2.yaml\n  - run: kubectl get pod p -o jsonpath={.spec.containers[0].image}/{.spec.containers[0].volumeMounts[0].mountPath}\n  - sleep: 40s\n  - run: kubectl get pod p -o jsonpath={.status.containerStatuses[0].image}/{.status.containerStatuses[0].restartCount}/{.status.containerStatuses[0].lastState.terminated.reason}\n  - run: kubectl get events --field-selector reason=Killing\n  - run: kubectl apply -f p9.yaml\n  - sleep: 5s\n  - run: kubectl get pod p --no-headers\n  - run: kubectl apply -f p2.yaml\n  - sleep: 2s\n  - run: kubectl get pod p --no-headers\n",
    );
    let (code, out, err) = netsim(&["run", &p]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("kubectl apply -f p2.yaml\npod/p configured\n"),
        "{out}"
    );
    assert!(
        out.contains("wangyanglinux/myapp:v2//var/run/secrets/kubernetes.io/serviceaccount"),
        "{out}"
    );
    // The kubelet replaces the running container: killed, the new image pulled, restarted.
    assert!(
        out.contains("\ndocker.io/wangyanglinux/myapp:v2/1/Completed\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "Normal   Killing   pod/p    Container web definition changed, will be restarted"
        ),
        "{out}"
    );
    // A tag that does not exist: the container waits in ErrImagePull until the spec names
    // one that does, which (already on the node) starts at once.
    for line in [
        "\np     0/1   ErrImagePull   1 ",
        "\np     1/1   Running   2 ",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

/// A deleted namespace takes its Events with it (the namespace controller deletes every
/// namespaced object, Events included, though no informer follows them).
#[test]
fn deleting_a_namespace_deletes_its_events() {
    let p = scenario(
        "ns-events.yaml",
        "name: ns-events\nsteps:\n  - run: kubectl create ns lab\n  - run: kubectl create deployment web --image=nginx -n lab\n  - run: kubectl wait --for=condition=Available deploy/web -n lab --timeout=2m\n  - run: kubectl get events -n lab -o name\n    capture: BEFORE\n  - run: kubectl delete ns lab\n  - run: kubectl get ns lab\n  - run: kubectl get events -n lab\n",
    );
    let (code, out, err) = netsim(&["run", &p]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("event/web."),
        "the pod recorded events:\n{out}"
    );
    assert_shows(
        &out,
        &[
            "kubectl delete ns lab\nnamespace \"lab\" deleted\n",
            "kubectl get ns lab\nError from server (NotFound): namespaces \"lab\" not found\n[exit 1]\n",
            "kubectl get events -n lab\nNo resources found in lab namespace.\n",
        ],
    );
}

#[test]
fn ipvsadm_lists_services_or_connections_and_refuses_other_options() {
    let p = scenario(
        "ipvsadm.yaml",
        "name: x\ncluster: {proxyMode: ipvs}\nsteps:\n  - run: ipvsadm -Lnc\n  - run: ipvsadm -L -n --stats\n",
    );
    let (code, out, err) = netsim(&["run", &p]);
    assert_eq!(code, 0, "{err}");
    assert_shows(
        &out,
        &[
            "$ ipvsadm -Lnc\nIPVS connection entries\n\
             pro expire state       source             virtual            destination\n\
             user@",
            "$ ipvsadm -L -n --stats\n\
             ipvsadm: netsim lists the tables with -L [-n] [-c], not --stats\n[exit 2]\n",
        ],
    );
}

#[test]
fn object_yaml_is_printed_as_kubectl_prints_it() {
    let p = scenario(
        "yaml.yaml",
        "name: x\nfiles:\n  app.yaml: |\n    apiVersion: v1\n    kind: Service\n    metadata: {name: web}\n    spec: {selector: {app: web}, ports: [{port: 80}]}\n    ---\n    apiVersion: v1\n    kind: Pod\n    metadata: {name: web, labels: {app: web}}\n    spec: {containers: [{name: c, image: busybox}]}\nsteps:\n  - run: kubectl apply -f app.yaml\n  - sleep: 3s\n  - run: kubectl get ep web -o yaml\n  - run: kubectl get pod web -o yaml\n  - run: kubectl get cm kube-root-ca.crt -o yaml\n",
    );
    let (code, out, err) = netsim(&["run", &p]);
    assert_eq!(code, 0, "{err}");
    // An Endpoints of a Service without labels has none (`omitempty`), not `labels: {}`.
    assert_shows(&out, &["kind: Endpoints\nmetadata:\n  creationTimestamp: \"2020-10-27T10:00:00Z\"\n  name: web\n"]);
    // go-yaml single-quotes a string that is not plain-safe and double-quotes one that
    // would read as another type.
    assert_shows(
        &out,
        &["    message: 'containers with unready status: [c]'\n    reason: ContainersNotReady\n    status: \"False\"\n"],
    );
    // Long scalars are folded past column 80.
    assert_shows(
        &out,
        &["    kubernetes.io/description: Contains a CA bundle that can be used to verify the\n      kube-apiserver when using internal endpoints such as the internal service IP\n"],
    );
}
