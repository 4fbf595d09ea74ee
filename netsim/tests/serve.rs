//! `netsim serve` as users meet it: real HTTP on loopback, the real kubectl when the
//! machine has one, and a real etcd that dies and comes back (issue 5's fault tests).
//! Every process a test starts is killed when its guard drops.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netsim-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, JSON body).
fn http(addr: &str, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status: u16 = resp.split_whitespace().nth(1)?.parse().ok()?;
    let (head, payload) = resp.split_once("\r\n\r\n")?;
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    Some((
        status,
        serde_json::from_str(&payload).unwrap_or(Value::Null),
    ))
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((len, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Starts `netsim serve` and returns it with the address from its first line.
fn serve(args: &[&str]) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netsim"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
    assert!(
        line.starts_with("netsim: serving the cluster at http://"),
        "{line}"
    );
    (Proc(child), addr)
}

fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    for _ in 0..300 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn serve_speaks_the_kubernetes_api_over_http() {
    let (_p, addr) = serve(&[]);
    let (code, nodes) = http(&addr, "GET", "/api/v1/nodes", None).unwrap();
    assert_eq!(code, 200);
    let names: Vec<&str> = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["k8s-master", "kongming", "laojun", "zhangliang"]);
    let (code, _) = http(
        &addr,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(&json!({"metadata": {"name": "c"}, "data": {"k": "v"}})),
    )
    .unwrap();
    assert_eq!(code, 201);
    let (code, status) = http(
        &addr,
        "GET",
        "/api/v1/namespaces/default/configmaps/nope",
        None,
    )
    .unwrap();
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
}

#[test]
fn the_real_kubectl_works_against_serve() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no kubectl on this machine");
        return;
    }
    let dir = temp_dir("kubectl");
    let kc = dir.join("kubeconfig");
    let (_p, _addr) = serve(&["--kubeconfig", kc.to_str().unwrap()]);
    let out = Command::new("kubectl")
        .args(["--kubeconfig", kc.to_str().unwrap(), "get", "nodes"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("NAME         STATUS   ROLES           AGE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("k8s-master   Ready    control-plane"),
        "{stdout}"
    );
    let manifest = dir.join("web.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: \"wangyanglinux/myapp:v2\"}]}\n",
    )
    .unwrap();
    let apply = |expect: &str| {
        let out = Command::new("kubectl")
            .args([
                "--kubeconfig",
                kc.to_str().unwrap(),
                "apply",
                "-f",
                manifest.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), expect);
    };
    // Default validation (strict) passes: the server advertises fieldValidation in OpenAPI v3.
    apply("deployment.apps/web created\n");
    apply("deployment.apps/web unchanged\n");
    // A changed image: the real kubectl sends a strategic merge patch ($setElementOrder,
    // the container by name), which the server merges by key.
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: \"wangyanglinux/myapp:v3\"}]}\n",
    )
    .unwrap();
    apply("deployment.apps/web configured\n");
    let image = Command::new("kubectl")
        .args(["--kubeconfig", kc.to_str().unwrap(), "get", "deploy", "web"])
        .args(["-o", "jsonpath={.spec.template.spec.containers[*].image}"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&image.stdout),
        "wangyanglinux/myapp:v3"
    );
    wait_for(
        || {
            let o = Command::new("kubectl")
                .args([
                    "--kubeconfig",
                    kc.to_str().unwrap(),
                    "get",
                    "pods",
                    "-l",
                    "app=web",
                    "--no-headers",
                ])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).lines().count() == 2
        },
        "two pods listed by kubectl",
    );
}

/// A private etcd on free loopback ports; `restart` keeps its data.
struct Etcd {
    bin: &'static str,
    proc: Option<Proc>,
    dir: PathBuf,
    client: u16,
    peer: u16,
}

impl Etcd {
    fn start(name: &str) -> Option<Etcd> {
        let bin = ["etcd", "/usr/bin/etcd"]
            .into_iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok())?;
        let mut e = Etcd {
            bin,
            proc: None,
            dir: temp_dir(name),
            client: free_port(),
            peer: free_port(),
        };
        e.restart();
        Some(e)
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client)
    }

    fn restart(&mut self) {
        let c = format!("http://127.0.0.1:{}", self.client);
        let p = format!("http://127.0.0.1:{}", self.peer);
        let child = Command::new(self.bin)
            .args([
                "--name",
                "t",
                "--data-dir",
                self.dir.join("data").to_str().unwrap(),
            ])
            .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
            .args([
                "--listen-peer-urls",
                &p,
                "--initial-advertise-peer-urls",
                &p,
            ])
            .args(["--initial-cluster", &format!("t={p}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
        let ep = self.endpoint();
        wait_for(
            || {
                http(&ep, "GET", "/health", None)
                    .is_some_and(|(c, b)| c == 200 && b["health"] == "true")
            },
            "etcd healthy",
        );
    }

    fn stop(&mut self) {
        self.proc = None;
    }
}

#[test]
fn etcd_dying_under_serve_gives_503_then_recovers_with_nothing_lost() {
    let Some(mut etcd) = Etcd::start("restart") else {
        eprintln!("SKIPPED: no etcd binary (scripts/test installs etcd-server)");
        return;
    };
    let store = format!("etcd://{}", etcd.endpoint());
    let (serve1, addr) = serve(&["--store", &store, "--etcd-prefix", "/netsim-serve-test"]);
    let (code, _) = http(
        &addr,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(&json!({"metadata": {"name": "kept"}, "data": {"k": "v"}})),
    )
    .unwrap();
    assert_eq!(code, 201);

    etcd.stop();
    let (code, status) = http(
        &addr,
        "GET",
        "/api/v1/namespaces/default/configmaps/kept",
        None,
    )
    .unwrap();
    assert_eq!(code, 503, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "ServiceUnavailable");
    let msg = status["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("etcd unavailable at {}", etcd.endpoint())),
        "{msg}"
    );

    etcd.restart();
    wait_for(
        || {
            http(
                &addr,
                "GET",
                "/api/v1/namespaces/default/configmaps/kept",
                None,
            )
            .is_some_and(|(c, _)| c == 200)
        },
        "recovery",
    );
    let (code, _) = http(
        &addr,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(&json!({"metadata": {"name": "after"}})),
    )
    .unwrap();
    assert_eq!(code, 201);

    // A new netsim on the same etcd carries on with the same cluster: no second boot.
    drop(serve1);
    let (_serve2, addr2) = serve(&["--store", &store, "--etcd-prefix", "/netsim-serve-test"]);
    for name in ["kept", "after"] {
        let (code, cm) = http(
            &addr2,
            "GET",
            &format!("/api/v1/namespaces/default/configmaps/{name}"),
            None,
        )
        .unwrap();
        assert_eq!(code, 200, "{name}: {cm}");
    }
    let (_, nodes) = http(&addr2, "GET", "/api/v1/nodes", None).unwrap();
    assert_eq!(nodes["items"].as_array().unwrap().len(), 4);
    let (_, pods) = http(&addr2, "GET", "/api/v1/namespaces/kube-system/pods", None).unwrap();
    // etcd, apiserver, controller-manager, scheduler, 4 kube-proxy, 2 coredns.
    assert_eq!(
        pods["items"].as_array().unwrap().len(),
        10,
        "the system pods once, not twice"
    );
}

#[tokio::test]
async fn etcd_dying_during_a_scenario_is_a_clean_error() {
    let Some(mut etcd) = Etcd::start("scenario") else {
        eprintln!("SKIPPED: no etcd binary (scripts/test installs etcd-server)");
        return;
    };
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/deployment.yaml");
    let loaded = netsim::scenario::load(&path).unwrap();
    let store = apiserver::store::EtcdStore::connect(&[etcd.endpoint()], "/netsim-fault")
        .await
        .unwrap();
    let cluster =
        netsim::cluster::Cluster::new(loaded.cluster_config(None), std::sync::Arc::new(store))
            .await
            .unwrap();
    etcd.stop();
    let err = match netsim::runner::run_on(cluster, &loaded).await {
        Ok(r) => panic!("a run without its store succeeded:\n{}", r.transcript),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with(&format!("etcd unavailable at {}", etcd.endpoint())),
        "{err}"
    );
}
