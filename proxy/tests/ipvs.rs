//! ipvs and userspace modes against the reference (§4, §5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proxy::*;

fn ref_4_8(mode: Mode) -> ProxyInput {
    let mut web = svc(
        "default",
        "web",
        "ClusterIP",
        "10.96.100.50",
        &[P("", 80, 8080, None, "TCP")],
    );
    web["spec"]["sessionAffinity"] = "ClientIP".into();
    input(
        mode,
        vec![
            svc(
                "default",
                "kubernetes",
                "ClusterIP",
                "10.96.0.1",
                &[P("https", 443, 6443, None, "TCP")],
            ),
            svc(
                "kube-system",
                "kube-dns",
                "ClusterIP",
                "10.96.0.10",
                &[
                    P("dns", 53, 53, None, "UDP"),
                    P("dns-tcp", 53, 53, None, "TCP"),
                ],
            ),
            web,
        ],
        vec![
            slice(
                "default",
                "kubernetes",
                &[("https", 6443, "TCP")],
                &[E("172.18.0.2", "node-1", true)],
            ),
            // The reference example lists one UDP real server and two TCP ones: the
            // endpoints are split over two slices accordingly.
            slice(
                "kube-system",
                "kube-dns",
                &[("dns-tcp", 53, "TCP")],
                &[
                    E("10.244.0.3", "node-1", true),
                    E("10.244.0.2", "node-1", true),
                ],
            ),
            slice(
                "kube-system",
                "kube-dns",
                &[("dns", 53, "UDP")],
                &[E("10.244.0.2", "node-1", true)],
            ),
            slice(
                "default",
                "web",
                &[("", 8080, "TCP")],
                &[E("10.244.1.5", "node-2", true)],
            ),
        ],
    )
}

#[test]
fn ipvsadm_4_8_byte_for_byte() {
    let rt = sync(&ref_4_8(Mode::Ipvs)).unwrap();
    // §4.8 with its `·` markers turned back into the spaces they stand for.
    let want = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.96.0.1:443 rr
  -> 172.18.0.2:6443              Masq    1      0          0·········
TCP  10.96.0.10:53 rr
  -> 10.244.0.2:53                Masq    1      0          0·········
  -> 10.244.0.3:53                Masq    1      0          0·········
TCP  10.96.100.50:80 rr persistent 10800
  -> 10.244.1.5:8080              Masq    1      0          0·········
UDP  10.96.0.10:53 rr
  -> 10.244.0.2:53                Masq    1      0          0·········
"
    .replace('·', " ");
    assert_eq!(ipvsadm_ln(&rt, &[]), want);
    assert_eq!(
        rt.ipvs_addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        ["10.96.0.1", "10.96.0.10", "10.96.100.50"]
    );
}

#[test]
fn ipvsadm_counts_connections_per_real_server() {
    let rt = sync(&ref_4_8(Mode::Ipvs)).unwrap();
    // "PROTO CLIENT_PORT VIP:PORT RIP:PORT STATE", all from client 10.244.0.1.
    let conn = |line: &str| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let addr = |s: &str| {
            let (ip, port) = s.split_once(':').unwrap();
            (ip.parse().unwrap(), port.parse().unwrap())
        };
        let ((vip, vport), (rip, rport)) = (addr(f[2]), addr(f[3]));
        IpvsConn {
            proto: if f[0] == "udp" {
                Proto::Udp
            } else {
                Proto::Tcp
            },
            client: "10.244.0.1".parse().unwrap(),
            cport: f[1].parse().unwrap(),
            vip,
            vport,
            rip,
            rport,
            state: match f[4] {
                "ESTABLISHED" => IpvsConnState::Established,
                "TIME_WAIT" => IpvsConnState::TimeWait,
                _ => IpvsConnState::Udp,
            },
            expires_s: 117,
        }
    };
    let conns = [
        // Two finished connections and one open one to the DNS server on 53/TCP...
        "tcp 40001 10.96.0.10:53 10.244.0.3:53 TIME_WAIT",
        "tcp 40002 10.96.0.10:53 10.244.0.3:53 TIME_WAIT",
        "tcp 40003 10.96.0.10:53 10.244.0.2:53 ESTABLISHED",
        // ...a UDP query, which never counts as active...
        "udp 40004 10.96.0.10:53 10.244.0.2:53 UDP",
        // ...and flows that match no virtual server or real server: not counted.
        "tcp 40005 10.96.0.10:9153 10.244.0.2:9153 TIME_WAIT",
        "tcp 40006 10.96.100.50:80 10.244.9.9:8080 TIME_WAIT",
    ]
    .map(conn);
    let want = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.96.0.1:443 rr
  -> 172.18.0.2:6443              Masq    1      0          0·········
TCP  10.96.0.10:53 rr
  -> 10.244.0.2:53                Masq    1      1          0·········
  -> 10.244.0.3:53                Masq    1      0          2·········
TCP  10.96.100.50:80 rr persistent 10800
  -> 10.244.1.5:8080              Masq    1      0          0·········
UDP  10.96.0.10:53 rr
  -> 10.244.0.2:53                Masq    1      0          1·········
"
    .replace('·', " ");
    assert_eq!(ipvsadm_ln(&rt, &conns), want);

    // `ipvsadm -Lnc` lists the same table, columns as ipvsadm's `print_conn` pads them.
    let want = "IPVS connection entries
pro expire state       source             virtual            destination
TCP 01:57  TIME_WAIT   10.244.0.1:40001   10.96.0.10:53      10.244.0.3:53
TCP 01:57  TIME_WAIT   10.244.0.1:40002   10.96.0.10:53      10.244.0.3:53
TCP 01:57  ESTABLISHED 10.244.0.1:40003   10.96.0.10:53      10.244.0.2:53
UDP 01:57  UDP         10.244.0.1:40004   10.96.0.10:53      10.244.0.2:53
TCP 01:57  TIME_WAIT   10.244.0.1:40005   10.96.0.10:9153    10.244.0.2:9153
TCP 01:57  TIME_WAIT   10.244.0.1:40006   10.96.100.50:80    10.244.9.9:8080
";
    assert_eq!(ipvsadm_lnc(&conns), want);
}

fn tcp(src: &str, dst: &str, dport: u16) -> PacketMeta {
    PacketMeta::new(
        src.parse().unwrap(),
        dst.parse().unwrap(),
        Proto::Tcp,
        40000,
        dport,
    )
}

#[test]
fn ipvs_rr_and_persistence() {
    let rt = sync(&ref_4_8(Mode::Ipvs)).unwrap();
    let mut st = ProxyState::default();
    // rr over the two kube-dns real servers, in turn.
    let picks: Vec<String> = (0..4)
        .map(|_| {
            let v = evaluate(
                &rt,
                Hook::Input,
                &tcp("10.244.1.9", "10.96.0.10", 53),
                &mut st,
                &mut || 0.0,
                0,
            );
            v.nat.unwrap().ip.to_string()
        })
        .collect();
    assert_eq!(
        picks,
        ["10.244.0.2", "10.244.0.3", "10.244.0.2", "10.244.0.3"]
    );
    let v = evaluate(
        &rt,
        Hook::Input,
        &tcp("10.244.1.9", "10.96.0.10", 53),
        &mut st,
        &mut || 0.0,
        0,
    );
    assert!(
        v.trace.iter().any(|t| t.table == "ipvs"
            && t.rule == "TCP  10.96.0.10:53 rr"
            && t.why.starts_with("rr index 0 of 2")),
        "{:?}",
        v.trace
    );
    // Persistent service: a second connection is an affinity hit.
    evaluate(
        &rt,
        Hook::Input,
        &tcp("10.244.1.9", "10.96.100.50", 80),
        &mut st,
        &mut || 0.0,
        0,
    );
    let v = evaluate(
        &rt,
        Hook::Input,
        &tcp("10.244.1.9", "10.96.100.50", 80),
        &mut st,
        &mut || 0.0,
        1000,
    );
    assert!(
        v.trace
            .iter()
            .any(|t| t.why.contains("persistent affinity hit")),
        "{:?}",
        v.trace
    );
    // Off-cluster source to a ClusterIP is marked for masquerade by the KUBE-CLUSTER-IP ipset rule.
    let v = evaluate(
        &rt,
        Hook::Output,
        &tcp("172.18.0.2", "10.96.0.1", 443),
        &mut st,
        &mut || 0.0,
        0,
    );
    assert_eq!(v.mark, 0x4000, "{:?}", v.trace);
    assert_eq!(v.nat.unwrap().port, 6443);
}

#[test]
fn ipvs_iptables_part_4_3() {
    let rt = sync(&ref_4_8(Mode::Ipvs)).unwrap();
    let nat = iptables_save(&rt, Some("nat"), "x");
    assert!(nat.contains(r#"-A KUBE-SERVICES ! -s 10.244.0.0/16 -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ"#), "{nat}");
    assert!(rt.ipsets["KUBE-CLUSTER-IP"]
        .entries
        .contains("10.96.0.10,udp:53"));
}

#[test]
fn userspace_portals_round_robin() {
    let rt = sync(&ref_4_8(Mode::Userspace)).unwrap();
    let dns = rt
        .portals
        .iter()
        .find(|p| p.service == "kube-system/kube-dns:dns-tcp")
        .unwrap();
    let pp = dns.proxy_port;
    // A pod's connection to the ClusterIP is REDIRECTed to the proxy port on the node.
    let mut st = ProxyState::default();
    let v = evaluate(
        &rt,
        Hook::Prerouting,
        &tcp("10.244.1.9", "10.96.0.10", 53),
        &mut st,
        &mut || 0.0,
        0,
    );
    assert_eq!(
        v.nat,
        Some(Dnat {
            ip: "172.18.0.2".parse().unwrap(),
            port: pp
        }),
        "{:?}",
        v.trace
    );
    assert!(v.trace.iter().any(|t| t.chain == "KUBE-PORTALS-CONTAINER"));
    let picks: Vec<String> = (0..3)
        .map(|_| {
            userspace_pick(
                &rt,
                Proto::Tcp,
                pp,
                "10.244.1.9".parse().unwrap(),
                &mut st,
                0,
            )
            .unwrap()
            .0
             .0
            .to_string()
        })
        .collect();
    assert_eq!(picks, ["10.244.0.2", "10.244.0.3", "10.244.0.2"]);
    // Proxy ports are stable whatever else is in the cluster.
    let mut fewer = ref_4_8(Mode::Userspace);
    fewer.services.remove(0);
    let rt2 = sync(&fewer).unwrap();
    assert_eq!(
        rt2.portals
            .iter()
            .find(|p| p.service == "kube-system/kube-dns:dns-tcp")
            .unwrap()
            .proxy_port,
        pp
    );
}
