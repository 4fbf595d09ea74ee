//! The simulated network. Every node and every pod is a smoltcp `Interface` (medium IP) on
//! an in-memory device; the fabric moves the real IPv4 packets they emit:
//!
//! * a pod's packets enter its node through the bridge (netfilter PREROUTING); a node's own
//!   packets go through OUTPUT;
//! * new flows ask the node's [`Netfilter`] (kube-proxy's rule table) what to do: DNAT,
//!   masquerade, REJECT or DROP; conntrack remembers the translation so replies are
//!   un-NATed and later packets of the flow skip the rules, as on Linux;
//! * routing is host-gw (flannel's host-gw backend): a node owns its podCIDR and forwards
//!   other nodes' podCIDRs to them over the node network;
//! * masquerade picks the egress address: the bridge's `.1` towards a local pod, the node's
//!   own address towards another node.
//!
//! Time is passed in; the fabric never reads a clock. Same inputs, same packets.

pub mod device;
pub mod http;
pub mod ingress;
pub mod packet;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use device::QueueDevice;
use http::{HttpApp, Request};
use packet::{Proto, Summary, Tuple};

/// Where a packet meets netfilter's nat table on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Arriving from a pod on the node's bridge, or from another node.
    Prerouting,
    /// Sent by the node itself.
    Output,
}

/// What netfilter decided for a new flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub dnat: Option<(Ipv4Addr, u16)>,
    /// The DNAT is an IPVS pick: the flow is one of the node's IPVS connections.
    pub ipvs: bool,
    pub masquerade: bool,
    pub reject: bool,
    pub drop: bool,
    /// Human-readable lines for `--trace-path` (chain, rule, why).
    pub trace: Vec<String>,
}

/// A node's packet filter (kube-proxy's rule table behind it).
pub trait Netfilter {
    fn new_flow(&mut self, node: &str, hook: Hook, flow: &Tuple, now_ms: i64) -> Decision;

    /// Addresses the node holds besides its own (ipvs binds every ClusterIP to kube-ipvs0).
    fn is_local(&self, _node: &str, _ip: Ipv4Addr) -> bool {
        false
    }

    /// userspace mode: the backend kube-proxy's proxy socket on `proxy_port` connects a new
    /// client to (round robin, ClientIP affinity); `None` when the port is not a portal.
    fn userspace_backend(
        &mut self,
        _node: &str,
        _proxy_port: u16,
        _client: Ipv4Addr,
        _now_ms: i64,
    ) -> Option<(Ipv4Addr, u16)> {
        None
    }
}

/// No rules at all: plain routing (used before kube-proxy has synced, and in tests).
pub struct NoRules;

impl Netfilter for NoRules {
    fn new_flow(&mut self, _: &str, _: Hook, _: &Tuple, _: i64) -> Decision {
        Decision::default()
    }
}

/// A host to build: a node or a pod.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub name: String,
    pub node: String,
    pub ip: Ipv4Addr,
    pub is_node: bool,
    /// Servers this host runs (port → app).
    pub servers: Vec<(u16, HttpApp)>,
    /// A DNS server on UDP 53 (CoreDNS pods), answering from this snapshot.
    pub dns: Option<std::sync::Arc<dns::Snapshot>>,
    /// userspace kube-proxy's proxy ports on this node.
    pub relay_ports: Vec<u16>,
    /// An ingress-nginx controller's configuration: its nginx proxies on port 80.
    pub ingress: Option<std::sync::Arc<crate::ingress::Controller>>,
}

/// A node's place on the networks.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub ip: Ipv4Addr,
    pub pod_cidr: (Ipv4Addr, u8),
}

/// A node's connection tracking table: original tuple → reply tuple (NAT included), last
/// packet's time and whether IPVS scheduled it, with a reverse index so replies are found
/// in O(log n).
#[derive(Debug, Default)]
struct Conntrack {
    by_orig: BTreeMap<Tuple, (Tuple, i64, bool)>,
    by_reply: BTreeMap<Tuple, Tuple>,
}

/// How long a finished flow stays listed (TCP TIME_WAIT, `nf_conntrack_tcp_timeout_time_wait`).
pub const CONNTRACK_TIMEOUT_MS: i64 = 120_000;

impl Conntrack {
    fn expire(&mut self, now_ms: i64) {
        let old: Vec<Tuple> = self
            .by_orig
            .iter()
            .filter(|(_, (_, at, _))| now_ms - at >= CONNTRACK_TIMEOUT_MS)
            .map(|(o, _)| *o)
            .collect();
        for o in old {
            if let Some((r, _, _)) = self.by_orig.remove(&o) {
                self.by_reply.remove(&r);
            }
        }
    }
}

/// State that outlives one command: conntrack per node and the ephemeral port cursor.
#[derive(Debug, Default)]
pub struct NetState {
    conntrack: BTreeMap<String, Conntrack>,
    next_port: u16,
    /// Source ports for `MASQUERADE --random-fully` (made on first use, from the seed).
    snat_rng: Option<apiserver::sim::SimRng>,
    /// ingress-nginx balancer cursors and request-ID stream.
    ingress: ingress::IngressState,
}

impl NetState {
    /// Conntrack entries of a node as `conntrack -L` lists them: original, reply, and the
    /// seconds left before the entry expires.
    pub fn conntrack(&self, node: &str, now_ms: i64) -> Vec<(Tuple, Tuple, i64)> {
        self.live_flows(node, now_ms)
            .map(|(o, r, left, _)| (o, r, left))
            .collect()
    }

    /// The node's IPVS connections (original, reply, seconds left): the conntrack entries
    /// of flows IPVS scheduled (kube-proxy sets `net.ipv4.vs.conntrack=1`, so each has
    /// one), kept as long as conntrack keeps them. The kernel's IPVS table times out TCP
    /// TIME_WAIT after the same 120 s but UDP after 300 s; here UDP goes at 120 s too.
    pub fn ipvs_conns(&self, node: &str, now_ms: i64) -> Vec<(Tuple, Tuple, i64)> {
        self.live_flows(node, now_ms)
            .filter(|&(_, _, _, ipvs)| ipvs)
            .map(|(o, r, left, _)| (o, r, left))
            .collect()
    }

    /// The node's unexpired entries: original, reply, seconds left, scheduled by IPVS.
    fn live_flows(
        &self,
        node: &str,
        now_ms: i64,
    ) -> impl Iterator<Item = (Tuple, Tuple, i64, bool)> + '_ {
        self.conntrack
            .get(node)
            .into_iter()
            .flat_map(|c| c.by_orig.iter())
            .filter(move |(_, (_, at, _))| now_ms - at < CONNTRACK_TIMEOUT_MS)
            .map(move |(o, (r, at, ipvs))| {
                (*o, *r, (CONNTRACK_TIMEOUT_MS - (now_ms - at)) / 1000, *ipvs)
            })
    }
}

struct Server {
    port: u16,
    app: HttpApp,
    handle: SocketHandle,
    buf: Vec<u8>,
}

/// One of userspace kube-proxy's proxy sockets and, once a client connected, the
/// connection it opened to the backend; bytes are copied between the two.
struct Relay {
    port: u16,
    client: SocketHandle,
    upstream: Option<SocketHandle>,
}

struct Host {
    relays: Vec<Relay>,
    /// ingress-nginx's accepting connections (empty unless the pod is a controller).
    ingress: Vec<ingress::Conn>,
    dns_socket: Option<SocketHandle>,
    /// DNS over TCP (2-byte length prefix), for truncated answers and `dig +tcp`.
    dns_tcp: Vec<(SocketHandle, Vec<u8>)>,
    spec: HostSpec,
    iface: Interface,
    dev: QueueDevice,
    sockets: SocketSet<'static>,
    servers: Vec<Server>,
}

fn udp_socket() -> smoltcp::socket::udp::Socket<'static> {
    use smoltcp::socket::udp;
    udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 65535]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 65535]),
    )
}

/// CoreDNS with nowhere to forward to (no outside world in the simulation): SERVFAIL, as
/// CoreDNS answers once its `forward` plugin has no healthy upstream.
fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let mut r = query.to_vec();
    r[2] |= 0x80; // QR
    r[3] = (r[3] & 0xf0) | 0x80 | 2; // RA, SERVFAIL
    Some(r)
}

fn tcp_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 65535]),
        tcp::SocketBuffer::new(vec![0; 65535]),
    )
}

fn in_cidr(ip: Ipv4Addr, (net, prefix): (Ipv4Addr, u8)) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

/// Where a packet goes next from a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Host(usize),
    Node(usize),
    Nowhere,
}

/// One client request: from which host, to where, what to send, and by when.
#[derive(Debug, Clone, Copy)]
pub struct TcpExchange<'a> {
    pub from: usize,
    pub dst: Ipv4Addr,
    pub port: u16,
    pub request: &'a [u8],
    /// Give up connecting at this virtual time.
    pub connect_deadline_ms: i64,
    /// Give up altogether at this virtual time.
    pub deadline_ms: i64,
}

/// How one client exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// The bytes the server sent (the connection completed).
    Done(Vec<u8>),
    /// RST, or ICMP port unreachable (iptables REJECT): ECONNREFUSED.
    Refused,
    /// Nothing came back before the deadline.
    TimedOut { connected: bool },
}

pub struct Fabric<'s> {
    hosts: Vec<Host>,
    nodes: Vec<NodeSpec>,
    node_host: Vec<usize>,
    by_ip: BTreeMap<Ipv4Addr, usize>,
    state: &'s mut NetState,
    now_ms: i64,
    /// (host, local port) of connections refused by an ICMP error.
    refused: BTreeSet<(usize, u16)>,
    pub trace: Vec<String>,
    tracing: bool,
    /// TTL of the last echo reply delivered to (address, identifier): ping prints it.
    echo_ttl: BTreeMap<(Ipv4Addr, u16), u8>,
    /// LoadBalancer IP → the node that answers for it.
    lb_owner: BTreeMap<Ipv4Addr, usize>,
    seed: u64,
}

impl<'s> Fabric<'s> {
    /// Builds interfaces for `hosts` on `nodes` at virtual time `now_ms`.
    pub fn new(
        nodes: Vec<NodeSpec>,
        hosts: Vec<HostSpec>,
        state: &'s mut NetState,
        now_ms: i64,
        seed: u64,
    ) -> Self {
        let mut built = Vec::new();
        let mut by_ip = BTreeMap::new();
        for (i, spec) in hosts.into_iter().enumerate() {
            let mut dev = QueueDevice::default();
            let mut cfg = Config::new(HardwareAddress::Ip);
            cfg.random_seed = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut iface = Interface::new(cfg, &mut dev, Instant::from_millis(now_ms));
            let node = nodes.iter().find(|n| n.name == spec.node);
            iface.update_ip_addrs(|a| {
                if spec.is_node {
                    let _ = a.push(IpCidr::new(IpAddress::Ipv4(spec.ip), 16));
                    let _ = a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8));
                } else {
                    let prefix = node.map(|n| n.pod_cidr.1).unwrap_or(24);
                    let _ = a.push(IpCidr::new(IpAddress::Ipv4(spec.ip), prefix));
                }
            });
            let gw = match node {
                Some(n) if !spec.is_node => Ipv4Addr::from(u32::from(n.pod_cidr.0) + 1),
                _ => Ipv4Addr::from((u32::from(spec.ip) & 0xffff_0000) + 1),
            };
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
            let mut sockets = SocketSet::new(Vec::new());
            let mut servers = Vec::new();
            for (port, app) in &spec.servers {
                // A few listening sockets: a server accepts several connections at once.
                for _ in 0..4 {
                    let mut s = tcp_socket();
                    let _ = s.listen(*port);
                    let handle = sockets.add(s);
                    servers.push(Server {
                        port: *port,
                        app: app.clone(),
                        handle,
                        buf: Vec::new(),
                    });
                }
            }
            if !spec.is_node {
                by_ip.insert(spec.ip, i);
            }
            let mut relays = Vec::new();
            for port in &spec.relay_ports {
                for _ in 0..2 {
                    let mut t = tcp_socket();
                    let _ = t.listen(*port);
                    relays.push(Relay {
                        port: *port,
                        client: sockets.add(t),
                        upstream: None,
                    });
                }
            }
            let ingress_conns = match &spec.ingress {
                // A few at once, as nginx's workers accept several connections.
                Some(c) => (0..4)
                    .map(|_| ingress::Conn::listen(&mut sockets, c.http_port))
                    .collect(),
                None => Vec::new(),
            };
            let dns_tcp: Vec<(SocketHandle, Vec<u8>)> = if spec.dns.is_some() {
                (0..2)
                    .map(|_| {
                        let mut t = tcp_socket();
                        let _ = t.listen(53);
                        (sockets.add(t), Vec::new())
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let dns_socket = spec.dns.as_ref().map(|_| {
                let mut u = udp_socket();
                let _ = u.bind(53);
                sockets.add(u)
            });
            built.push(Host {
                relays,
                ingress: ingress_conns,
                dns_socket,
                dns_tcp,
                spec,
                iface,
                dev,
                sockets,
                servers,
            });
        }
        let node_host = nodes
            .iter()
            .map(|n| {
                built
                    .iter()
                    .position(|h| h.spec.is_node && h.spec.name == n.name)
                    .unwrap_or(usize::MAX)
            })
            .collect();
        for ct in state.conntrack.values_mut() {
            ct.expire(now_ms);
        }
        if state.next_port == 0 {
            state.next_port = 32768 + (seed % 28000) as u16;
        }
        Fabric {
            hosts: built,
            nodes,
            node_host,
            by_ip,
            state,
            now_ms,
            refused: BTreeSet::new(),
            trace: Vec::new(),
            tracing: false,
            echo_ttl: BTreeMap::new(),
            lb_owner: BTreeMap::new(),
            seed,
        }
    }

    pub fn set_tracing(&mut self, on: bool) {
        self.tracing = on;
    }

    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    pub fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.spec.name == name)
    }

    pub fn host_ip(&self, h: usize) -> Ipv4Addr {
        self.hosts[h].spec.ip
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    fn note(&mut self, line: String) {
        if self.tracing {
            self.trace.push(line);
        }
    }

    fn route(&self, node: usize, dst: Ipv4Addr) -> Route {
        let n = &self.nodes[node];
        if dst == n.ip || dst.is_loopback() {
            return Route::Host(self.node_host[node]);
        }
        if in_cidr(dst, n.pod_cidr) {
            return self
                .by_ip
                .get(&dst)
                .map_or(Route::Nowhere, |h| Route::Host(*h));
        }
        for (m, other) in self.nodes.iter().enumerate() {
            if m != node && (dst == other.ip || in_cidr(dst, other.pod_cidr)) {
                return Route::Node(m);
            }
        }
        // A client outside the cluster, on the node network.
        match self.by_ip.get(&dst) {
            Some(h) if self.hosts[*h].spec.node.is_empty() => Route::Host(*h),
            _ => Route::Nowhere,
        }
    }

    /// Which node answers for a LoadBalancer IP (MetalLB L2: one elected speaker).
    pub fn set_lb_owners(&mut self, owners: BTreeMap<Ipv4Addr, String>) {
        self.lb_owner = owners
            .into_iter()
            .filter_map(|(ip, n)| self.node_index(&n).map(|i| (ip, i)))
            .collect();
    }

    /// A packet from a host outside the cluster enters the node network: it reaches the node
    /// that owns its destination (a node address, or a LoadBalancer IP via its speaker).
    fn enter_from_outside(&mut self, nf: &mut dyn Netfilter, pkt: Vec<u8>, from: usize) {
        let Some(s) = packet::summarize(&pkt) else {
            return;
        };
        let dst = s.tuple.dst;
        let node = self
            .nodes
            .iter()
            .position(|n| n.ip == dst)
            .or_else(|| self.lb_owner.get(&dst).copied());
        match node {
            Some(n) => {
                if self.tracing && (s.syn || s.icmp_type == Some(8)) {
                    let name = self.nodes[n].name.clone();
                    self.note(format!("network: {dst} is answered by {name}"));
                }
                self.forward(nf, pkt, n, Hook::Prerouting, from, 1);
            }
            None => {
                if let Some(h) = self.by_ip.get(&dst).copied() {
                    self.hosts[h].dev.rx.push_back(pkt);
                }
            }
        }
    }

    /// The address masquerade uses when leaving `node` along `route`.
    fn egress_ip(&self, node: usize, route: Route) -> Ipv4Addr {
        let n = &self.nodes[node];
        match route {
            Route::Host(h) if !self.hosts[h].spec.is_node => {
                Ipv4Addr::from(u32::from(n.pod_cidr.0) + 1)
            }
            _ => n.ip,
        }
    }

    /// A source port for a masqueraded flow. kube-proxy masquerades with `--random-fully`
    /// (nftables: `fully-random`), so the kernel always picks a random port in 1024–65535
    /// (`nf_nat_l4proto_unique_tuple`), moving on from a port whose reply tuple is taken.
    fn random_snat_port(&mut self, node_name: &str, t: &Tuple) -> u16 {
        let seed = self.seed;
        let rng = self
            .state
            .snat_rng
            .get_or_insert_with(|| apiserver::sim::SimRng::new(seed, "snat"));
        let off = rng.below(64_512);
        let table = self.state.conntrack.get(node_name);
        (0..64_512u64)
            .map(|i| 1024 + ((off + i) % 64_512) as u16)
            .find(|&port| {
                let reply = Tuple { sport: port, ..*t }.reversed();
                table.is_none_or(|c| !c.by_reply.contains_key(&reply))
            })
            .unwrap_or(t.sport)
    }

    /// One packet arriving at `node` through `hook`.
    fn forward(
        &mut self,
        nf: &mut dyn Netfilter,
        mut pkt: Vec<u8>,
        node: usize,
        hook: Hook,
        from: usize,
        hops: u8,
    ) {
        if hops > 8 {
            return;
        }
        let Some(s) = packet::summarize(&pkt) else {
            return;
        };
        let node_name = self.nodes[node].name.clone();
        let now = self.now_ms;
        let table = self.state.conntrack.entry(node_name.clone()).or_default();
        let t = s.tuple;
        let translated = if let Some((reply, at, _)) = table.by_orig.get_mut(&t) {
            // Original direction of a known flow: same translation as its first packet.
            *at = now;
            Some(reply.reversed())
        } else if let Some(orig) = table.by_reply.get(&t).copied() {
            // Reply direction: undo the translation.
            if let Some((_, at, _)) = table.by_orig.get_mut(&orig) {
                *at = now;
            }
            let back = orig.reversed();
            if self.tracing
                && (s.synack || s.icmp_type == Some(0) || t.proto == Proto::Udp)
                && back != t
            {
                self.note(format!(
                    "{node_name}: reply {}:{} -> {}:{} un-NATed by conntrack to {}:{} -> {}:{}",
                    t.src, t.sport, t.dst, t.dport, back.src, back.sport, back.dst, back.dport
                ));
            }
            Some(back)
        } else {
            None
        };
        let t2 = match translated {
            Some(t2) => t2,
            None if is_error_or_reply(&s) => t,
            None => {
                let d = nf.new_flow(&node_name, hook, &t, self.now_ms);
                for line in &d.trace {
                    self.note(format!("{node_name}: {line}"));
                }
                if d.reject {
                    if let Some(icmp) = packet::port_unreachable(t.dst, &pkt) {
                        self.refused.insert((from, t.sport));
                        self.note(format!(
                            "{node_name}: REJECT -> ICMP port unreachable to {}",
                            t.src
                        ));
                        self.hosts[from].dev.rx.push_back(icmp);
                    }
                    return;
                }
                if d.drop {
                    self.note(format!("{node_name}: DROP"));
                    return;
                }
                let mut t2 = t;
                if let Some((ip, port)) = d.dnat {
                    t2.dst = ip;
                    t2.dport = port;
                }
                if d.masquerade {
                    let r = self.route(node, t2.dst);
                    t2.src = self.egress_ip(node, r);
                    if t2.proto == Proto::Icmp {
                        self.note(format!(
                            "{node_name}: POSTROUTING MASQUERADE {} -> {}",
                            t.src, t2.src
                        ));
                    } else {
                        t2.sport = self.random_snat_port(&node_name, &t2);
                        self.note(format!(
                            "{node_name}: POSTROUTING MASQUERADE --random-fully {}:{} -> {}:{}",
                            t.src, t.sport, t2.src, t2.sport
                        ));
                    }
                }
                let ct = self.state.conntrack.entry(node_name.clone()).or_default();
                ct.by_orig.insert(t, (t2.reversed(), now, d.ipvs));
                ct.by_reply.insert(t2.reversed(), t);
                t2
            }
        };
        if t2 != t {
            packet::rewrite(&mut pkt, &t2);
        }
        let route = self.route(node, t2.dst);
        // A node decrements TTL when it routes: packets from another node, or leaving for
        // another node. Bridged traffic between a node's own pods keeps its TTL.
        let routed = hook == Hook::Prerouting && (hops > 0 || matches!(route, Route::Node(_)));
        if routed && route != Route::Host(self.node_host[node]) && !packet::decrement_ttl(&mut pkt)
        {
            return;
        }
        if matches!(route, Route::Host(_)) && t2.proto == Proto::Icmp && s.icmp_type == Some(0) {
            self.echo_ttl.insert((t2.dst, t2.dport), packet::ttl(&pkt));
        }
        match route {
            Route::Host(h) => {
                if self.tracing && translated.is_none() {
                    let name = self.hosts[h].spec.name.clone();
                    self.note(format!("{node_name}: route {} -> {name}", t2.dst));
                }
                self.hosts[h].dev.rx.push_back(pkt);
            }
            Route::Node(m) => {
                if self.tracing && translated.is_none() {
                    let next = self.nodes[m].name.clone();
                    self.note(format!(
                        "{node_name}: route {} via {next} ({})",
                        t2.dst, self.nodes[m].ip
                    ));
                }
                self.forward(nf, pkt, m, Hook::Prerouting, from, hops + 1);
            }
            Route::Nowhere if nf.is_local(&node_name, t2.dst) && s.icmp_type == Some(8) => {
                // kube-ipvs0 holds the ClusterIP: the node's kernel answers the echo itself.
                self.note(format!(
                    "{node_name}: {} is local (kube-ipvs0): echo reply from the node",
                    t2.dst
                ));
                if let Some(reply) = packet::echo_reply(&pkt) {
                    self.forward(nf, reply, node, Hook::Output, from, hops + 1);
                }
            }
            Route::Nowhere if nf.is_local(&node_name, t2.dst) => {
                // An address on kube-ipvs0 with no virtual server for this port: the node's
                // own stack answers, and nothing listens there (TCP RST / ECONNREFUSED).
                self.note(format!(
                    "{node_name}: {} is local (kube-ipvs0), nothing listens on {}: RST",
                    t2.dst, t2.dport
                ));
                if t2.proto == Proto::Tcp {
                    self.refused.insert((from, t.sport));
                }
            }
            Route::Nowhere => {
                if translated.is_none() && !is_error_or_reply(&s) {
                    self.note(format!(
                        "{node_name}: no route to {}: the packet is lost",
                        t2.dst
                    ));
                }
            }
        }
    }

    /// Polls every host once and moves what they sent. Returns whether anything moved.
    fn step(&mut self, nf: &mut dyn Netfilter) -> bool {
        let now = Instant::from_millis(self.now_ms);
        let mut moved = false;
        for i in 0..self.hosts.len() {
            let date = http::http_date(self.now_ms);
            let h = &mut self.hosts[i];
            h.iface.poll(now, &mut h.dev, &mut h.sockets);
            for srv in &mut h.servers {
                let sock = h.sockets.get_mut::<tcp::Socket>(srv.handle);
                if sock.can_recv() {
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = sock.recv_slice(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        srv.buf.extend_from_slice(&chunk[..n]);
                    }
                    if let Some(req) = Request::parse(&srv.buf) {
                        let client = match sock.remote_endpoint() {
                            Some(ep) => match ep.addr {
                                IpAddress::Ipv4(a) => SocketAddrV4::new(a, ep.port),
                            },
                            None => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                        };
                        let resp = srv.app.respond(&req, client, &date);
                        let _ = sock.send_slice(&resp);
                        sock.close();
                        srv.buf.clear();
                    }
                }
                if matches!(sock.state(), tcp::State::Closed | tcp::State::TimeWait) {
                    sock.abort();
                    let _ = sock.listen(srv.port);
                    srv.buf.clear();
                }
            }
            if !h.relays.is_empty() {
                let node = h.spec.node.clone();
                for r in &mut h.relays {
                    pump_relay(
                        r,
                        &mut h.iface,
                        &mut h.sockets,
                        nf,
                        &node,
                        self.now_ms,
                        &mut self.state.next_port,
                    );
                }
            }
            if let Some(controller) = h.spec.ingress.clone() {
                let mut cx = ingress::Ctx {
                    controller: &controller,
                    host: &h.spec.name,
                    now_ms: self.now_ms,
                    next_port: &mut self.state.next_port,
                    state: &mut self.state.ingress,
                    seed: self.seed,
                    trace: self.tracing.then_some(&mut self.trace),
                };
                for c in &mut h.ingress {
                    ingress::pump(c, &mut h.iface, &mut h.sockets, &mut cx);
                }
            }
            if let Some(snap) = h.spec.dns.clone() {
                for (handle, buf) in &mut h.dns_tcp {
                    let sock = h.sockets.get_mut::<tcp::Socket>(*handle);
                    let mut chunk = [0u8; 4096];
                    while sock.can_recv() {
                        match sock.recv_slice(&mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    if buf.len() >= 2 {
                        let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
                        if buf.len() >= 2 + len {
                            if let dns::Outcome::Reply(r) =
                                snap.answer(&buf[2..2 + len], dns::Transport::Tcp)
                            {
                                let mut framed = (r.len() as u16).to_be_bytes().to_vec();
                                framed.extend_from_slice(&r);
                                let _ = sock.send_slice(&framed);
                            }
                            buf.clear();
                            sock.close();
                        }
                    }
                    if matches!(sock.state(), tcp::State::Closed | tcp::State::TimeWait) {
                        sock.abort();
                        let _ = sock.listen(53);
                        buf.clear();
                    }
                }
            }
            if let (Some(handle), Some(snap)) = (h.dns_socket, h.spec.dns.clone()) {
                let sock = h.sockets.get_mut::<smoltcp::socket::udp::Socket>(handle);
                let mut buf = vec![0u8; 65535];
                while let Ok((n, meta)) = sock.recv_slice(&mut buf) {
                    let reply = match snap.answer(&buf[..n], dns::Transport::Udp { ipv6: false }) {
                        dns::Outcome::Reply(r) => Some(r),
                        dns::Outcome::Forward => servfail(&buf[..n]),
                        dns::Outcome::Drop => None,
                    };
                    if let Some(r) = reply {
                        let _ = sock.send_slice(&r, meta.endpoint);
                    }
                }
            }
            h.iface.poll(now, &mut h.dev, &mut h.sockets);
            let out: Vec<Vec<u8>> = h.dev.tx.drain(..).collect();
            let (is_node, node) = (h.spec.is_node, h.spec.node.clone());
            for pkt in out {
                moved = true;
                if node.is_empty() {
                    self.enter_from_outside(nf, pkt, i);
                    continue;
                }
                let Some(n) = self.node_index(&node) else {
                    continue;
                };
                let hook = if is_node {
                    Hook::Output
                } else {
                    Hook::Prerouting
                };
                self.forward(nf, pkt, n, hook, i, 0);
            }
            if !self.hosts[i].dev.rx.is_empty() {
                moved = true;
            }
        }
        moved
    }

    /// Runs until `done` holds or virtual time reaches `deadline_ms`; returns whether done.
    fn run_until(
        &mut self,
        nf: &mut dyn Netfilter,
        deadline_ms: i64,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> bool {
        loop {
            let mut rounds = 0;
            while self.step(nf) && rounds < 10_000 {
                rounds += 1;
                if done(self) {
                    return true;
                }
            }
            if done(self) {
                return true;
            }
            let now = Instant::from_millis(self.now_ms);
            let next = self
                .hosts
                .iter_mut()
                .filter_map(|h| h.iface.poll_at(now, &h.sockets))
                .map(|t| t.total_millis())
                .min();
            match next {
                Some(t) if t <= deadline_ms => self.now_ms = t.max(self.now_ms + 1),
                _ => {
                    self.now_ms = deadline_ms.max(self.now_ms);
                    return done(self);
                }
            }
        }
    }

    /// Opens a TCP connection from host `from` to `dst:port`, sends `request`, and reads
    /// until the response is complete (`complete`) or the peer closes.
    pub fn tcp_exchange(
        &mut self,
        nf: &mut dyn Netfilter,
        x: &TcpExchange<'_>,
        complete: impl Fn(&[u8]) -> bool,
    ) -> Exchange {
        let TcpExchange {
            from,
            dst,
            port,
            request,
            connect_deadline_ms,
            deadline_ms,
        } = *x;
        let local_port = self.state.next_port;
        self.state.next_port = if self.state.next_port >= 60999 {
            32768
        } else {
            self.state.next_port + 1
        };
        let handle = {
            let h = &mut self.hosts[from];
            let mut s = tcp_socket();
            if s.connect(h.iface.context(), (IpAddress::Ipv4(dst), port), local_port)
                .is_err()
            {
                return Exchange::Refused;
            }
            h.sockets.add(s)
        };
        let mut sent = false;
        let mut connected = false;
        let mut got = Vec::new();
        let mut refused = false;
        let mut closed = false;
        let ok = self.run_until(nf, deadline_ms, |f| {
            if f.refused.contains(&(from, local_port)) {
                refused = true;
                return true;
            }
            let sock = f.hosts[from].sockets.get_mut::<tcp::Socket>(handle);
            if sock.state() == tcp::State::Established {
                connected = true;
            }
            if !connected && sock.state() == tcp::State::Closed {
                refused = true;
                return true;
            }
            if !connected && f.now_ms >= connect_deadline_ms {
                return true;
            }
            if connected && !sent && sock.can_send() {
                let _ = sock.send_slice(request);
                sent = true;
            }
            let mut chunk = [0u8; 4096];
            while sock.can_recv() {
                match sock.recv_slice(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
            }
            if connected && !sock.may_recv() {
                closed = true;
            }
            sent && (complete(&got) || closed)
        });
        // curl closes its end; let the FIN exchange finish so servers can accept again.
        {
            let sock = self.hosts[from].sockets.get_mut::<tcp::Socket>(handle);
            sock.close();
        }
        let settle_until = self.now_ms + 1;
        self.run_until(nf, settle_until, |_| false);
        self.hosts[from].sockets.remove(handle);
        if refused {
            Exchange::Refused
        } else if ok && sent {
            Exchange::Done(got)
        } else {
            Exchange::TimedOut { connected }
        }
    }
}

impl Fabric<'_> {
    /// Sends one UDP datagram from host `from` and waits for the first reply to it.
    pub fn udp_exchange(
        &mut self,
        nf: &mut dyn Netfilter,
        from: usize,
        dst: Ipv4Addr,
        port: u16,
        payload: &[u8],
        deadline_ms: i64,
    ) -> Option<Vec<u8>> {
        use smoltcp::socket::udp;
        let local_port = self.state.next_port;
        self.state.next_port = if self.state.next_port >= 60999 {
            32768
        } else {
            self.state.next_port + 1
        };
        let handle = {
            let h = &mut self.hosts[from];
            let mut s = udp_socket();
            let _ = s.bind(local_port);
            let _ = s.send_slice(payload, (IpAddress::Ipv4(dst), port));
            h.sockets.add(s)
        };
        let mut got = None;
        self.run_until(nf, deadline_ms, |f| {
            let sock = f.hosts[from].sockets.get_mut::<udp::Socket>(handle);
            let mut buf = vec![0u8; 65535];
            if let Ok((n, _)) = sock.recv_slice(&mut buf) {
                got = Some(buf[..n].to_vec());
            }
            got.is_some() || f.refused.contains(&(from, local_port))
        });
        self.hosts[from].sockets.remove(handle);
        got
    }
}

/// One echo of `ping`: the reply's TTL, or `None` if it was lost.
/// What came back for one echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// An echo reply, with the TTL it arrived with.
    Reply { ttl: u8 },
    /// An ICMP port unreachable from `from`: a REJECT on the way.
    Unreachable { from: Ipv4Addr },
    /// Nothing within the interval.
    Lost,
}

impl Fabric<'_> {
    /// `ping -c count`: echo requests one second apart from host `from` to `dst`, each
    /// waiting up to its interval for the reply.
    pub fn ping(
        &mut self,
        nf: &mut dyn Netfilter,
        from: usize,
        dst: Ipv4Addr,
        count: u16,
        ident: u16,
    ) -> Vec<Echo> {
        use smoltcp::socket::icmp;
        use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr};
        let handle = {
            let h = &mut self.hosts[from];
            let mut s = icmp::Socket::new(
                icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 8], vec![0; 2048]),
                icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 8], vec![0; 2048]),
            );
            let _ = s.bind(icmp::Endpoint::Ident(ident));
            h.sockets.add(s)
        };
        let src_ip = self.hosts[from].spec.ip;
        let mut out = Vec::new();
        for seq in 1..=count {
            let start = self.now_ms;
            let data = [0u8; 56];
            let repr = Icmpv4Repr::EchoRequest {
                ident,
                seq_no: seq,
                data: &data,
            };
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(
                &mut Icmpv4Packet::new_unchecked(&mut buf),
                &smoltcp::phy::ChecksumCapabilities::default(),
            );
            let _ = self.hosts[from]
                .sockets
                .get_mut::<icmp::Socket>(handle)
                .send_slice(&buf, IpAddress::Ipv4(dst));
            let key = (if dst.is_loopback() { dst } else { src_ip }, ident);
            self.echo_ttl.remove(&key);
            let mut got = Echo::Lost;
            self.run_until(nf, start + 1000, |f| {
                // A rejected request: the filter recorded it, its ICMP error names the
                // address that refused (the socket, bound to the ident, sees only replies).
                if f.refused.remove(&(from, ident)) {
                    got = Echo::Unreachable { from: dst };
                    return true;
                }
                let sock = f.hosts[from].sockets.get_mut::<icmp::Socket>(handle);
                while let Ok((bytes, _)) = sock.recv() {
                    if let Ok(p) = Icmpv4Packet::new_checked(bytes) {
                        if u8::from(p.msg_type()) == 0 && p.echo_seq_no() == seq {
                            got = Echo::Reply {
                                ttl: f.echo_ttl.get(&key).copied().unwrap_or(64),
                            };
                        }
                    }
                }
                got != Echo::Lost
            });
            out.push(got);
            // The next request leaves one interval after this one did.
            if seq < count {
                self.now_ms = self.now_ms.max(start + 1000);
            }
        }
        self.hosts[from].sockets.remove(handle);
        out
    }
}

/// One step of a userspace proxy socket: accept → pick a backend → connect → copy.
fn pump_relay(
    r: &mut Relay,
    iface: &mut Interface,
    sockets: &mut SocketSet<'static>,
    nf: &mut dyn Netfilter,
    node: &str,
    now_ms: i64,
    next_port: &mut u16,
) {
    let client_state = sockets.get::<tcp::Socket>(r.client).state();
    if r.upstream.is_none() && client_state == tcp::State::Established {
        let client = match sockets.get::<tcp::Socket>(r.client).remote_endpoint() {
            Some(ep) => match ep.addr {
                IpAddress::Ipv4(a) => a,
            },
            None => Ipv4Addr::UNSPECIFIED,
        };
        match nf.userspace_backend(node, r.port, client, now_ms) {
            None => sockets.get_mut::<tcp::Socket>(r.client).abort(),
            Some((ip, port)) => {
                let local = *next_port;
                *next_port = if *next_port >= 60999 {
                    32768
                } else {
                    *next_port + 1
                };
                let mut up = tcp_socket();
                if up
                    .connect(iface.context(), (IpAddress::Ipv4(ip), port), local)
                    .is_ok()
                {
                    r.upstream = Some(sockets.add(up));
                } else {
                    sockets.get_mut::<tcp::Socket>(r.client).abort();
                }
            }
        }
    }
    if let Some(u) = r.upstream {
        let mut buf = [0u8; 4096];
        // client -> backend
        loop {
            let can = sockets.get::<tcp::Socket>(u).can_send()
                && sockets.get::<tcp::Socket>(r.client).can_recv();
            if !can {
                break;
            }
            let n = sockets
                .get_mut::<tcp::Socket>(r.client)
                .recv_slice(&mut buf)
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            let _ = sockets.get_mut::<tcp::Socket>(u).send_slice(&buf[..n]);
        }
        // backend -> client
        loop {
            let can = sockets.get::<tcp::Socket>(r.client).can_send()
                && sockets.get::<tcp::Socket>(u).can_recv();
            if !can {
                break;
            }
            let n = sockets
                .get_mut::<tcp::Socket>(u)
                .recv_slice(&mut buf)
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            let _ = sockets
                .get_mut::<tcp::Socket>(r.client)
                .send_slice(&buf[..n]);
        }
        let (c, up) = (
            sockets.get::<tcp::Socket>(r.client),
            sockets.get::<tcp::Socket>(u),
        );
        let client_done = !c.may_recv() && c.recv_queue() == 0;
        // The backend has finished once it is past connecting and will send nothing more.
        let connecting = matches!(up.state(), tcp::State::SynSent | tcp::State::SynReceived);
        let up_done = !connecting && !up.may_recv() && up.recv_queue() == 0;
        let up_state = up.state();
        if client_done {
            sockets.get_mut::<tcp::Socket>(u).close();
        }
        if up_done && sockets.get::<tcp::Socket>(r.client).send_queue() == 0 {
            sockets.get_mut::<tcp::Socket>(r.client).close();
        }
        if up_state == tcp::State::Closed && !sockets.get::<tcp::Socket>(r.client).is_active() {
            sockets.remove(u);
            r.upstream = None;
        }
    }
    if r.upstream.is_none()
        && matches!(
            sockets.get::<tcp::Socket>(r.client).state(),
            tcp::State::Closed | tcp::State::TimeWait
        )
    {
        let c = sockets.get_mut::<tcp::Socket>(r.client);
        c.abort();
        let _ = c.listen(r.port);
    }
}

/// Packets that never open a flow: TCP without SYN, ICMP errors and echo replies.
fn is_error_or_reply(s: &Summary) -> bool {
    match s.tuple.proto {
        Proto::Tcp => !s.syn,
        Proto::Icmp => s.icmp_type != Some(8),
        Proto::Udp => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two nodes, a myapp pod `web-1` on n2 and a `client` pod on n1.
    pub(super) fn lab() -> (Vec<NodeSpec>, Vec<HostSpec>) {
        let nodes = vec![
            NodeSpec {
                name: "n1".into(),
                ip: Ipv4Addr::new(172, 18, 0, 3),
                pod_cidr: (Ipv4Addr::new(10, 244, 1, 0), 24),
            },
            NodeSpec {
                name: "n2".into(),
                ip: Ipv4Addr::new(172, 18, 0, 4),
                pod_cidr: (Ipv4Addr::new(10, 244, 2, 0), 24),
            },
        ];
        let (app, port) = HttpApp::for_container("wangyanglinux/myapp:v2", &[], "web-1").unwrap();
        let hosts = vec![
            HostSpec {
                name: "n1".into(),
                node: "n1".into(),
                ip: nodes[0].ip,
                is_node: true,
                servers: vec![],
                dns: None,
                relay_ports: Vec::new(),
                ingress: None,
            },
            HostSpec {
                name: "n2".into(),
                node: "n2".into(),
                ip: nodes[1].ip,
                is_node: true,
                servers: vec![],
                dns: None,
                relay_ports: Vec::new(),
                ingress: None,
            },
            HostSpec {
                name: "web-1".into(),
                node: "n2".into(),
                ip: Ipv4Addr::new(10, 244, 2, 2),
                is_node: false,
                servers: vec![(port, app)],
                dns: None,
                relay_ports: Vec::new(),
                ingress: None,
            },
            HostSpec {
                name: "client".into(),
                node: "n1".into(),
                ip: Ipv4Addr::new(10, 244, 1, 2),
                is_node: false,
                servers: vec![],
                dns: None,
                relay_ports: Vec::new(),
                ingress: None,
            },
        ];
        (nodes, hosts)
    }

    const GET: &[u8] = b"GET /hostname.html HTTP/1.1\r\nHost: 10.244.2.2\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";

    fn complete(b: &[u8]) -> bool {
        http::Response::parse(b, false).is_some()
    }

    #[test]
    fn a_pod_on_one_node_reaches_a_pod_on_another_over_real_tcp() {
        let (nodes, hosts) = lab();
        let mut st = NetState::default();
        let mut f = Fabric::new(nodes, hosts, &mut st, 0, 1);
        let client = f.host_index("client").unwrap();
        for _ in 0..3 {
            let r = f.tcp_exchange(
                &mut NoRules,
                &TcpExchange {
                    from: client,
                    dst: Ipv4Addr::new(10, 244, 2, 2),
                    port: 80,
                    request: GET,
                    connect_deadline_ms: 5_000,
                    deadline_ms: 10_000,
                },
                complete,
            );
            let Exchange::Done(bytes) = r else {
                panic!("{r:?}")
            };
            assert!(
                bytes.ends_with(b"\r\n\r\nweb-1\n"),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let node = f.host_index("n1").unwrap();
        let r = f.tcp_exchange(
            &mut NoRules,
            &TcpExchange {
                from: node,
                dst: Ipv4Addr::new(10, 244, 2, 2),
                port: 80,
                request: GET,
                connect_deadline_ms: 5_000,
                deadline_ms: 10_000,
            },
            complete,
        );
        assert!(matches!(r, Exchange::Done(_)), "{r:?}");
    }

    #[test]
    fn nobody_listening_is_refused_and_no_route_times_out() {
        let (nodes, hosts) = lab();
        let mut st = NetState::default();
        let mut f = Fabric::new(nodes, hosts, &mut st, 0, 1);
        let client = f.host_index("client").unwrap();
        let r = f.tcp_exchange(
            &mut NoRules,
            &TcpExchange {
                from: client,
                dst: Ipv4Addr::new(10, 244, 2, 2),
                port: 81,
                request: GET,
                connect_deadline_ms: 5_000,
                deadline_ms: 10_000,
            },
            complete,
        );
        assert_eq!(r, Exchange::Refused);
        let r = f.tcp_exchange(
            &mut NoRules,
            &TcpExchange {
                from: client,
                dst: Ipv4Addr::new(10, 9, 9, 9),
                port: 80,
                request: GET,
                connect_deadline_ms: 3_000,
                deadline_ms: 3_000,
            },
            complete,
        );
        assert_eq!(r, Exchange::TimedOut { connected: false });
        assert!(f.now_ms() >= 3_000);
    }

    struct Dnat(Ipv4Addr, u16);
    impl Netfilter for Dnat {
        fn new_flow(&mut self, _: &str, _: Hook, t: &Tuple, _: i64) -> Decision {
            if t.dst == Ipv4Addr::new(10, 96, 1, 1) {
                Decision {
                    dnat: Some((self.0, self.1)),
                    masquerade: true,
                    ..Default::default()
                }
            } else if t.dst == Ipv4Addr::new(10, 96, 5, 5) {
                Decision {
                    reject: true,
                    ..Default::default()
                }
            } else {
                Decision::default()
            }
        }
    }

    #[test]
    fn dnat_and_masquerade_are_undone_on_the_way_back_and_reject_refuses() {
        let (nodes, hosts) = lab();
        let mut st = NetState::default();
        let mut f = Fabric::new(nodes, hosts, &mut st, 0, 1);
        let client = f.host_index("client").unwrap();
        let mut nf = Dnat(Ipv4Addr::new(10, 244, 2, 2), 80);
        let r = f.tcp_exchange(
            &mut nf,
            &TcpExchange {
                from: client,
                dst: Ipv4Addr::new(10, 96, 1, 1),
                port: 80,
                request: GET,
                connect_deadline_ms: 5_000,
                deadline_ms: 10_000,
            },
            complete,
        );
        assert!(
            matches!(r, Exchange::Done(ref b) if b.ends_with(b"web-1\n")),
            "{r:?}"
        );
        let r = f.tcp_exchange(
            &mut nf,
            &TcpExchange {
                from: client,
                dst: Ipv4Addr::new(10, 96, 5, 5),
                port: 80,
                request: GET,
                connect_deadline_ms: 5_000,
                deadline_ms: 10_000,
            },
            complete,
        );
        assert_eq!(r, Exchange::Refused);
        // The node-level conntrack shows the translation: original to the VIP, reply from the pod to the node.
        let ct = st.conntrack("n1", 0);
        assert!(
            ct.iter()
                .any(|(o, r, _)| o.dst == Ipv4Addr::new(10, 96, 1, 1)
                    && r.src == Ipv4Addr::new(10, 244, 2, 2)
                    && r.dst == Ipv4Addr::new(172, 18, 0, 3)),
            "{ct:?}"
        );
    }
}

#[cfg(test)]
mod ingress_tests {
    use super::tests::lab;
    use super::*;
    use crate::ingress::route::{IngressRules, PathRule, PathType, Routes, Rule, Target};
    use crate::ingress::Controller;

    /// lab()'s nodes and pods, plus an ingress controller pod on n1 routing `/` to web-1,
    /// `/refused` to a port nobody listens on and `/lost` to an address with no route.
    fn with_controller() -> (Vec<NodeSpec>, Vec<HostSpec>) {
        let (nodes, mut hosts) = lab();
        let rule = |path: &str, up: &str| PathRule {
            path: path.into(),
            path_type: PathType::Prefix,
            target: Target::Upstream(up.into()),
        };
        let routes = Routes::build(vec![IngressRules {
            key: "default/i".into(),
            created: "2020-10-27T10:00:00Z".into(),
            default_backend: None,
            rules: vec![Rule {
                host: Some("web.example".into()),
                paths: vec![
                    rule("/", "web"),
                    rule("/refused", "refused"),
                    rule("/lost", "lost"),
                    rule("/empty", "empty"),
                ],
            }],
        }]);
        let ep = |s: &str| vec![s.parse::<SocketAddrV4>().unwrap()];
        let controller = Controller {
            routes,
            upstreams: [
                ("web".to_owned(), ep("10.244.2.2:80")),
                ("refused".to_owned(), ep("10.244.2.2:81")),
                ("lost".to_owned(), ep("10.244.9.9:80")),
                ("empty".to_owned(), vec![]),
            ]
            .into(),
            http_port: 80,
        };
        hosts.push(HostSpec {
            name: "ingress".into(),
            node: "n1".into(),
            ip: Ipv4Addr::new(10, 244, 1, 9),
            is_node: false,
            servers: vec![],
            dns: None,
            relay_ports: Vec::new(),
            ingress: Some(std::sync::Arc::new(controller)),
        });
        (nodes, hosts)
    }

    fn get(f: &mut Fabric<'_>, path: &str) -> String {
        let client = f.host_index("client").unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: web.example\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n");
        let start = f.now_ms();
        let r = f.tcp_exchange(
            &mut NoRules,
            &TcpExchange {
                from: client,
                dst: Ipv4Addr::new(10, 244, 1, 9),
                port: 80,
                request: req.as_bytes(),
                connect_deadline_ms: start + 5_000,
                deadline_ms: start + 120_000,
            },
            |b| http::Response::parse(b, false).is_some(),
        );
        match r {
            Exchange::Done(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn the_controller_proxies_over_a_new_connection_and_answers_errors_itself() {
        let (nodes, hosts) = with_controller();
        let mut st = NetState::default();
        let mut f = Fabric::new(nodes, hosts, &mut st, 0, 1);
        let ok = get(&mut f, "/hostname.html");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nweb-1\n"), "{ok}");
        assert!(!ok.contains("Server:"), "{ok}");
        let refused = get(&mut f, "/refused");
        assert!(
            refused.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
            "{refused}"
        );
        let empty = get(&mut f, "/empty");
        assert!(
            empty.starts_with("HTTP/1.1 503 Service Temporarily Unavailable\r\n"),
            "{empty}"
        );
        let before = f.now_ms();
        let lost = get(&mut f, "/lost");
        assert!(
            lost.starts_with("HTTP/1.1 504 Gateway Time-out\r\n"),
            "{lost}"
        );
        assert!(f.now_ms() - before >= 60_000, "{}", f.now_ms() - before);
        // The connection slots are reusable afterwards.
        assert!(get(&mut f, "/").contains("Version: v2"));
    }
}
