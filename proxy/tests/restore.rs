//! The real `iptables-restore --test` accepts our `iptables-save` output (issue #3). Skips
//! with a message when the binary is absent or cannot run here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use proxy::*;

fn cluster() -> ProxyInput {
    let mut np = svc(
        "default",
        "web-np",
        "NodePort",
        "10.96.45.13",
        &[P("http", 80, 8080, Some(30080), "TCP")],
    );
    np["spec"]["externalIPs"] = serde_json::json!(["192.168.10.5"]);
    let mut lb = svc(
        "default",
        "web-lb",
        "LoadBalancer",
        "10.96.45.14",
        &[P("http", 80, 8080, Some(30081), "TCP")],
    );
    lb["status"]["loadBalancer"] =
        serde_json::json!({"ingress": [{"ip": "172.18.255.200", "ipMode": "VIP"}]});
    lb["spec"]["loadBalancerSourceRanges"] = serde_json::json!(["172.18.0.0/16"]);
    let mut sticky = svc(
        "default",
        "sticky",
        "ClusterIP",
        "10.96.45.15",
        &[P("", 80, 8080, None, "TCP")],
    );
    sticky["spec"]["sessionAffinity"] = "ClientIP".into();
    let mut local = svc(
        "default",
        "echo",
        "LoadBalancer",
        "10.96.45.16",
        &[P("http", 80, 8080, Some(30082), "TCP")],
    );
    local["spec"]["externalTrafficPolicy"] = "Local".into();
    local["spec"]["healthCheckNodePort"] = 32000.into();
    local["status"]["loadBalancer"] = serde_json::json!({"ingress": [{"ip": "172.18.255.201"}]});
    let mut remote_only = svc(
        "default",
        "remote",
        "NodePort",
        "10.96.45.18",
        &[P("", 80, 8080, Some(30083), "TCP")],
    );
    remote_only["spec"]["externalTrafficPolicy"] = "Local".into();
    remote_only["spec"]["healthCheckNodePort"] = 32001.into();
    let dns = svc(
        "kube-system",
        "kube-dns",
        "ClusterIP",
        "10.96.0.10",
        &[
            P("dns", 53, 53, None, "UDP"),
            P("dns-tcp", 53, 53, None, "TCP"),
        ],
    );
    let eps3 = || {
        [
            E("10.244.1.5", "node-1", true),
            E("10.244.2.7", "node-2", true),
            E("10.244.2.8", "node-2", false),
        ]
    };
    input(
        Mode::Iptables,
        vec![
            svc(
                "default",
                "web",
                "ClusterIP",
                "10.96.45.12",
                &[P("http", 80, 8080, None, "TCP")],
            ),
            np,
            lb,
            sticky,
            local,
            remote_only,
            dns,
            svc(
                "default",
                "empty",
                "NodePort",
                "10.96.45.17",
                &[P("http", 80, 8080, Some(30090), "TCP")],
            ),
        ],
        vec![
            slice("default", "web", &[("http", 8080, "TCP")], &eps3()),
            slice("default", "web-np", &[("http", 8080, "TCP")], &eps3()),
            slice("default", "web-lb", &[("http", 8080, "TCP")], &eps3()),
            slice("default", "sticky", &[("", 8080, "TCP")], &eps3()),
            slice("default", "echo", &[("http", 8080, "TCP")], &eps3()),
            slice(
                "default",
                "remote",
                &[("", 8080, "TCP")],
                &[E("10.244.2.9", "node-2", true)],
            ),
            slice(
                "kube-system",
                "kube-dns",
                &[("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")],
                &[E("10.244.0.2", "node-1", true)],
            ),
        ],
    )
}

fn restore_test(binary: &str, text: &str) -> Option<(bool, String)> {
    let mut child = match Command::new(binary)
        .arg("--test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("skipping: cannot run {binary}: {e}");
            return None;
        }
    };
    child.stdin.take()?.write_all(text.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success()
        && (err.contains("Permission denied") || err.contains("you must be root"))
    {
        println!("skipping: {binary} needs privileges it cannot get here: {err}");
        return None;
    }
    Some((out.status.success(), err))
}

#[test]
fn iptables_restore_accepts_our_save() {
    let rt = sync(&cluster()).unwrap();
    let text = iptables_save(&rt, None, "Tue Oct 27 10:00:00 2020");
    // Sanity: the fixture exercises every kind of rule.
    for needle in [
        "KUBE-EXT-",
        "KUBE-SVL-",
        "KUBE-FW-",
        "--rcheck",
        "has no endpoints",
        "has no local endpoints",
        "health check node port",
        "loadbalancer IP",
        "external IP",
    ] {
        assert!(text.contains(needle), "fixture lacks {needle}:\n{text}");
    }
    let mut ran = false;
    for binary in ["iptables-restore", "iptables-legacy-restore"] {
        if let Some((ok, err)) = restore_test(binary, &text) {
            ran = true;
            assert!(ok, "{binary} --test rejected our rules: {err}\n{text}");
        }
    }
    // scripts/test installs iptables and sets this: in CI the check must really run.
    if std::env::var_os("NETSIM_REQUIRE_TOOLS").is_some() {
        assert!(
            ran,
            "NETSIM_REQUIRE_TOOLS is set but no iptables-restore could run"
        );
    }
    // A deliberately broken line must be refused, or the test proves nothing.
    if ran {
        let broken = text.replacen("-m statistic", "-m no-such-module", 1);
        if let Some((ok, _)) = restore_test("iptables-restore", &broken) {
            assert!(!ok, "iptables-restore --test accepted a bogus module");
        }
    }
}
