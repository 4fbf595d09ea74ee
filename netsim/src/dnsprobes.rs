//! Name resolution as programs in pods and on nodes do it: `/etc/resolv.conf` per dnsPolicy,
//! the glibc search/ndots walk, and `dig`/`nslookup` — every query a real DNS message over
//! UDP through the simulated network to a CoreDNS pod (via kube-proxy for 10.96.0.10).
//!
//! Decisions: nodes resolve through `172.18.0.1` (the node network's resolver, as on kind),
//! which nothing answers in the simulation — so cluster names do not resolve from a node,
//! as on a real cluster; CoreDNS answers names outside the cluster with SERVFAIL at once
//! (its `forward` has no upstream: the simulation has no outside world).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::Value;

use crate::cluster::cache::str_at;
use crate::cluster::Cluster;
use crate::net::{Fabric, Netfilter};
use crate::output::Output;
use crate::probes::Place;

/// The node network's resolver address (kind's Docker network gateway).
pub const NODE_RESOLVER: &str = "172.18.0.1";
/// kubelet's `clusterDNS` (kubeadm's kube-dns Service IP).
pub const CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
pub const ZONE: &str = "cluster.local";
/// dig's per-try timeout and tries (`+time=5 +tries=3`).
const DIG_TIMEOUT_MS: i64 = 5_000;
const DIG_TRIES: usize = 3;

/// A parsed resolv.conf.
#[derive(Debug, Clone, Default)]
pub struct Resolv {
    pub text: String,
    pub nameservers: Vec<Ipv4Addr>,
    pub search: Vec<String>,
    pub ndots: usize,
}

impl Resolv {
    fn parse(text: String) -> Resolv {
        let mut r = Resolv {
            ndots: 1,
            ..Default::default()
        };
        for line in text.lines() {
            let mut w = line.split_whitespace();
            match w.next() {
                Some("nameserver") => r
                    .nameservers
                    .extend(w.next().and_then(|s| s.parse::<Ipv4Addr>().ok())),
                Some("search") => r.search = w.map(str::to_owned).collect(),
                Some("options") => {
                    for o in w {
                        if let Some(n) = o.strip_prefix("ndots:") {
                            r.ndots = n.parse().unwrap_or(1);
                        }
                    }
                }
                _ => {}
            }
        }
        r.text = text;
        r
    }
}

fn node_resolv() -> dns::NodeResolv {
    dns::NodeResolv {
        nameservers: vec![NODE_RESOLVER.to_owned()],
        searches: Vec::new(),
        options: vec!["ndots:0".to_owned()],
    }
}

/// `/etc/resolv.conf` at a place.
pub fn resolv_for(cluster: &Cluster, place: &Place) -> Resolv {
    let text = match place {
        Place::Node(_) | Place::External => {
            format!("nameserver {NODE_RESOLVER}\noptions ndots:0\n")
        }
        Place::Pod { namespace, name } => {
            let pod = cluster.cache().get("pods", &format!("{namespace}/{name}"));
            let policy = match pod.and_then(|p| str_at(p, "/spec/dnsPolicy")) {
                Some("Default") => dns::DnsPolicy::Default,
                Some("None") => dns::DnsPolicy::None,
                Some("ClusterFirstWithHostNet") => dns::DnsPolicy::ClusterFirstWithHostNet,
                _ => dns::DnsPolicy::ClusterFirst,
            };
            let host_network = pod
                .and_then(|p| p.pointer("/spec/hostNetwork"))
                .and_then(Value::as_bool)
                == Some(true);
            let cfg = pod
                .and_then(|p| p.pointer("/spec/dnsConfig"))
                .map(|c| dns::PodDnsConfig {
                    nameservers: strings(c.get("nameservers")),
                    searches: strings(c.get("searches")),
                    options: c
                        .get("options")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|o| {
                            (
                                str_at(o, "/name").unwrap_or_default().to_owned(),
                                str_at(o, "/value").map(str::to_owned),
                            )
                        })
                        .collect(),
                });
            dns::resolv_conf(
                policy,
                host_network,
                namespace,
                &[IpAddr::V4(CLUSTER_DNS)],
                ZONE,
                &node_resolv(),
                cfg.as_ref(),
            )
        }
    };
    Resolv::parse(text)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// What a DNS exchange gave.
pub enum Lookup {
    Reply(Vec<u8>),
    TimedOut,
}

/// One query with dig's retries; returns the reply bytes or a timeout.
pub fn query(
    fabric: &mut Fabric<'_>,
    nf: &mut dyn Netfilter,
    from: usize,
    server: Ipv4Addr,
    port: u16,
    msg: &[u8],
    tries: usize,
) -> Lookup {
    for _ in 0..tries {
        let deadline = fabric.now_ms() + DIG_TIMEOUT_MS;
        if let Some(r) = fabric.udp_exchange(nf, from, server, port, msg, deadline) {
            return Lookup::Reply(r);
        }
    }
    Lookup::TimedOut
}

/// One query over TCP (RFC 1035 §4.2.2 framing).
pub fn query_tcp(
    fabric: &mut Fabric<'_>,
    nf: &mut dyn Netfilter,
    from: usize,
    server: Ipv4Addr,
    port: u16,
    msg: &[u8],
) -> Lookup {
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    let start = fabric.now_ms();
    let x = crate::net::TcpExchange {
        from,
        dst: server,
        port,
        request: &framed,
        connect_deadline_ms: start + DIG_TIMEOUT_MS,
        deadline_ms: start + DIG_TIMEOUT_MS,
    };
    let complete =
        |b: &[u8]| b.len() >= 2 && b.len() >= 2 + usize::from(u16::from_be_bytes([b[0], b[1]]));
    match fabric.tcp_exchange(nf, &x, complete) {
        crate::net::Exchange::Done(b) if complete(&b) => Lookup::Reply(b[2..].to_vec()),
        _ => Lookup::TimedOut,
    }
}

fn truncated(msg: &[u8]) -> bool {
    msg.get(2).is_some_and(|b| b & 0x02 != 0)
}

fn rcode(msg: &[u8]) -> u16 {
    msg.get(3).map(|b| u16::from(b & 0x0f)).unwrap_or(2)
}

fn a_records(msg: &[u8]) -> Vec<Ipv4Addr> {
    dns::wire::parse_message(msg)
        .map(|(m, _)| {
            m.answers
                .iter()
                .filter_map(|r| match r.data {
                    dns::wire::RData::A(ip) => Some(ip),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves `name` to an IPv4 address as glibc would (search walk, first nameserver).
pub fn resolve(
    fabric: &mut Fabric<'_>,
    nf: &mut dyn Netfilter,
    from: usize,
    resolv: &Resolv,
    name: &str,
    id: u16,
) -> Option<Ipv4Addr> {
    if let Ok(ip) = name.parse() {
        return Some(ip);
    }
    if name == "localhost" {
        return Some(Ipv4Addr::LOCALHOST);
    }
    let server = *resolv.nameservers.first()?;
    for cand in dns::search_candidates(name, &resolv.search, resolv.ndots) {
        let msg = dns::build_query(&cand, 1, id, true, None).ok()?;
        match query(fabric, nf, from, server, 53, &msg, 2) {
            Lookup::TimedOut => return None,
            Lookup::Reply(r) => {
                if let Some(ip) = a_records(&r).first() {
                    return Some(*ip);
                }
                if rcode(&r) != 0 && rcode(&r) != 3 {
                    return None;
                }
            }
        }
    }
    None
}

fn qtype(word: &str) -> Option<u16> {
    Some(match word.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "ANY" => 255,
        _ => return None,
    })
}

/// `dig [@server] [-p port] [-t TYPE] [-x ADDR] [+short] [+search] NAME [TYPE]`.
/// What one `dig` invocation brings besides its arguments: its id and cookie (seeded), the
/// command line as typed, and the `WHEN:` text.
pub struct DigCall<'a> {
    pub cmdline: &'a str,
    pub id: u16,
    pub cookie: [u8; 8],
    pub when: &'a str,
}

pub fn dig(
    fabric: &mut Fabric<'_>,
    nf: &mut dyn Netfilter,
    from: usize,
    resolv: &Resolv,
    argv: &[String],
    call: &DigCall<'_>,
) -> Output {
    let DigCall {
        cmdline,
        id,
        cookie,
        when,
    } = *call;
    let mut out = Output::default();
    let mut server: Option<Ipv4Addr> = None;
    let mut port = 53u16;
    let mut ty = 1u16;
    let mut name: Option<String> = None;
    let mut short = false;
    let mut search = false;
    let mut tcp = false;
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        match a {
            "-p" => {
                i += 1;
                port = argv.get(i).and_then(|p| p.parse().ok()).unwrap_or(53);
            }
            "-t" => {
                i += 1;
                ty = argv.get(i).and_then(|t| qtype(t)).unwrap_or(1);
            }
            "-x" => {
                i += 1;
                if let Some(ip) = argv.get(i).and_then(|s| s.parse::<Ipv4Addr>().ok()) {
                    let o = ip.octets();
                    name = Some(format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0]));
                    ty = 12;
                }
            }
            "+short" => short = true,
            "+tcp" | "+vc" => tcp = true,
            "+search" => search = true,
            s if s.starts_with('@') => server = s[1..].parse().ok(),
            s if s.starts_with('+') || s.starts_with('-') => {}
            s => match qtype(s) {
                Some(t) if name.is_some() => ty = t,
                _ => name = Some(s.to_owned()),
            },
        }
        i += 1;
    }
    let name = name.unwrap_or_else(|| ".".to_owned());
    let Some(server) = server.or_else(|| resolv.nameservers.first().copied()) else {
        out.out(";; no servers could be reached\n");
        out.exit = 9;
        return out;
    };
    let candidates = if search && !name.ends_with('.') {
        dns::search_candidates(&name, &resolv.search, resolv.ndots)
    } else {
        vec![name.clone()]
    };
    let mut last = None;
    for cand in &candidates {
        let Ok(msg) = dns::build_query(cand, ty, id, true, Some(cookie)) else {
            out.err(&format!(
                "dig: '{cand}' is not a legal name (unexpected end of input)\n"
            ));
            out.exit = 10;
            return out;
        };
        let got = if tcp {
            query_tcp(fabric, nf, from, server, port, &msg)
        } else {
            query(fabric, nf, from, server, port, &msg, DIG_TRIES)
        };
        match got {
            Lookup::TimedOut => {
                for _ in 0..DIG_TRIES {
                    out.out(&format!(
                        ";; communications error to {server}#{port}: timed out\n"
                    ));
                }
                if !short {
                    out.out(&format!(
                        "\n; <<>> DiG 9.18.30 <<>> {}\n;; global options: +cmd\n",
                        cmdline.trim_start_matches("dig ")
                    ));
                }
                out.out(";; no servers could be reached\n");
                out.exit = 9;
                return out;
            }
            Lookup::Reply(r) => {
                let found = rcode(&r) == 0 && !a_records(&r).is_empty();
                last = Some(r);
                if found || !search {
                    break;
                }
            }
        }
    }
    let Some(mut reply) = last else { return out };
    if short {
        // +short hides the sections, not the retry: a truncated answer is asked again over
        // TCP (dighost.c requeues on TC unless +ignore) and that answer is the one printed.
        if !tcp && truncated(&reply) {
            out.out(";; Truncated, retrying in TCP mode.\n");
            let last = candidates.last().map(String::as_str).unwrap_or(&name);
            if let Ok(msg) = dns::build_query(last, ty, id, true, Some(cookie)) {
                if let Lookup::Reply(r) = query_tcp(fabric, nf, from, server, port, &msg) {
                    reply = r;
                }
            }
        }
        if let Ok((m, _)) = dns::wire::parse_message(&reply) {
            for rec in &m.answers {
                out.out(&format!("{}\n", dns::dig::rdata_text(rec)));
            }
        }
        return out;
    }
    let server_addr = SocketAddr::new(IpAddr::V4(server), port);
    let transport = if tcp {
        dns::DigTransport::Tcp
    } else {
        dns::DigTransport::Udp
    };
    out.out(&dns::format_dig(
        cmdline,
        &reply,
        server_addr,
        transport,
        0,
        when,
        "9.18.30",
    ));
    if !tcp && truncated(&reply) {
        // dig retries a truncated answer over TCP and prints that answer too.
        let last = candidates.last().map(String::as_str).unwrap_or(&name);
        if let Ok(msg) = dns::build_query(last, ty, id, true, Some(cookie)) {
            if let Lookup::Reply(r) = query_tcp(fabric, nf, from, server, port, &msg) {
                out.out(&dns::format_dig(
                    cmdline,
                    &r,
                    server_addr,
                    dns::DigTransport::Tcp,
                    0,
                    when,
                    "9.18.30",
                ));
            }
        }
    }
    out
}

/// `nslookup NAME [SERVER]` with the search walk.
pub fn nslookup(
    fabric: &mut Fabric<'_>,
    nf: &mut dyn Netfilter,
    from: usize,
    resolv: &Resolv,
    argv: &[String],
    id: u16,
) -> Output {
    let mut out = Output::default();
    let Some(name) = argv.iter().find(|a| !a.starts_with('-')).cloned() else {
        out.err("nslookup: usage: nslookup NAME [SERVER]\n");
        out.exit = 1;
        return out;
    };
    let server_arg = argv.iter().filter(|a| !a.starts_with('-')).nth(1).cloned();
    let server = server_arg
        .as_deref()
        .and_then(|s| s.parse().ok())
        .or_else(|| resolv.nameservers.first().copied())
        .unwrap_or(CLUSTER_DNS);
    let server_addr = SocketAddr::new(IpAddr::V4(server), 53);
    let mut shown = name.trim_end_matches('.').to_owned();
    let mut a_reply = None;
    for cand in dns::search_candidates(&name, &resolv.search, resolv.ndots) {
        let Ok(msg) = dns::build_query(&cand, 1, id, true, None) else {
            continue;
        };
        match query(fabric, nf, from, server, 53, &msg, 2) {
            Lookup::TimedOut => {
                out.out(
                    ";; connection timed out; no servers could be reached

",
                );
                out.exit = 1;
                return out;
            }
            Lookup::Reply(r) => {
                let hit = rcode(&r) == 0 && !a_records(&r).is_empty();
                shown = cand.trim_end_matches('.').to_owned();
                a_reply = Some(r);
                if hit {
                    break;
                }
            }
        }
    }
    let Some(a) = a_reply else { return out };
    let aaaa = if rcode(&a) == 0 {
        dns::build_query(&shown, 28, id.wrapping_add(1), true, None)
            .ok()
            .and_then(|m| match query(fabric, nf, from, server, 53, &m, 2) {
                Lookup::Reply(r) => Some(r),
                Lookup::TimedOut => None,
            })
    } else {
        None
    };
    let (text, code) = dns::format_nslookup(
        server_arg.as_deref().unwrap_or(&server.to_string()),
        server_addr,
        &shown,
        &a,
        aaaa.as_deref(),
    );
    out.out(&text);
    out.exit = code;
    out
}
