//! The rule table: plain data that both the views and the evaluator read.
//!
//! Layer: data model. Guarantee: a [`RuleTable`] is a complete, self-contained description of
//! what kube-proxy programmed on one node (iptables tables, ipsets, ipvs virtual servers,
//! kube-ipvs0 addresses, nftables ruleset, userspace portals). Every map is a `BTreeMap`, so
//! iterating it is deterministic; nothing here does I/O or reads a clock.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use crate::nft::NftRuleset;

/// kube-proxy's masquerade mark (`masqueradeBit` 14, reference §3.6).
pub const MASQ_MARK: u32 = 0x4000;

/// Which proxier produced the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    Iptables,
    Ipvs,
    Nftables,
    /// Historical: removed upstream in v1.26 (reference §5.1); kept for teaching.
    Userspace,
}

/// L4 protocol of a service port or packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// Lowercase name, as kube-proxy hashes and as iptables prints it.
    pub fn lower(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
    /// Uppercase name, as ipvsadm prints it.
    pub fn upper(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
        }
    }
    /// IP protocol number (ipvsadm sorts by it, §4.6).
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }
}

/// An IPv4 prefix (`10.244.0.0/16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn host(addr: Ipv4Addr) -> Cidr {
        Cidr { addr, prefix: 32 }
    }
    pub fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix.min(32)))
        }
    }
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == (u32::from(self.addr) & self.mask())
    }
    /// Parses `a.b.c.d/n` (or a bare address as /32).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().ok()?),
            None => (s, 32),
        };
        if p > 32 {
            return None;
        }
        let addr: Ipv4Addr = a.parse().ok()?;
        // iptables stores the network address (host bits cleared).
        let c = Cidr { addr, prefix: p };
        Some(Cidr {
            addr: Ipv4Addr::from(u32::from(addr) & c.mask()),
            prefix: p,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An `-s`/`-d` match, possibly negated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrMatch {
    pub cidr: Cidr,
    pub negate: bool,
}

/// `statistic --mode random` probability, stored as the kernel stores it: `lround(2^31 · p)`
/// of the string kube-proxy wrote (reference §3.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probability {
    /// The value in the kernel's `xt_statistic_info.u.random.probability`.
    pub stored: u32,
}

impl Probability {
    /// Probability `1/n` as kube-proxy writes it (`%0.10f`, since v1.17) and as
    /// `iptables-restore` then quantises it.
    pub fn one_in(n: usize) -> Probability {
        let written = format!("{:.10}", 1.0 / n.max(1) as f64);
        Probability::parse(&written).unwrap_or(Probability {
            stored: 0x8000_0000,
        })
    }
    /// What libxt_statistic's parser does with `--probability <s>`.
    pub fn parse(s: &str) -> Option<Probability> {
        let p: f64 = s.parse().ok()?;
        if !(0.0..=1.0).contains(&p) {
            return None;
        }
        Some(Probability {
            stored: (2f64.powi(31) * p).round() as u32,
        })
    }
    /// The quantised probability as a number (what the kernel compares against).
    pub fn value(self) -> f64 {
        f64::from(self.stored) / 2f64.powi(31)
    }
    /// As `iptables-save` prints it (`%.11f`).
    pub fn display(self) -> String {
        format!("{:.11}", self.value())
    }
}

/// `addrtype` type (kube-proxy only uses LOCAL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrDir {
    Src,
    Dst,
}

/// Conntrack states understood by `-m conntrack --ctstate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CtState {
    Invalid,
    New,
    Related,
    Established,
    /// Not a real state: the connection was DNATed (libxt_conntrack's `DNAT` pseudo-state).
    Dnat,
}

impl CtState {
    pub fn name(self) -> &'static str {
        match self {
            CtState::Invalid => "INVALID",
            CtState::New => "NEW",
            CtState::Related => "RELATED",
            CtState::Established => "ESTABLISHED",
            CtState::Dnat => "DNAT",
        }
    }
}

/// `-m recent` operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecentOp {
    /// `--set`: record the source address (always matches).
    Set,
    /// `--rcheck --seconds N --reap`: match if seen within N seconds; drop older entries.
    Rcheck { seconds: u32 },
}

/// `-m set --match-set NAME dir[,dir...]` direction flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetDir {
    Src,
    Dst,
}

/// One `-m` match, in the order it was written (iptables keeps that order).
#[derive(Clone, Debug, PartialEq)]
pub enum Match {
    /// `-m comment --comment C` (stored unquoted).
    Comment(String),
    /// `-m tcp|udp|sctp [--dport P]` (kube-proxy always pairs it with `-p`).
    Proto { proto: Proto, dport: Option<u16> },
    /// `-m statistic --mode random --probability P`.
    Statistic(Probability),
    /// `-m addrtype [!] --src-type|--dst-type LOCAL`.
    AddrTypeLocal { dir: AddrDir, negate: bool },
    /// `-m mark [!] --mark V/M`.
    Mark { value: u32, mask: u32, negate: bool },
    /// `-m recent --name N ...` (mask 255.255.255.255, rsource: the only form kube-proxy uses).
    Recent { name: String, op: RecentOp },
    /// `-m conntrack [!] --ctstate S,...`.
    Conntrack { states: Vec<CtState>, negate: bool },
    /// `-m set [!] --match-set NAME dirs` (ipvs mode).
    Set {
        name: String,
        dirs: Vec<SetDir>,
        negate: bool,
    },
}

/// A rule's target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Jump to a user chain.
    Jump(String),
    Accept,
    Drop,
    Return,
    /// `-j DNAT --to-destination ip:port`.
    Dnat {
        ip: Ipv4Addr,
        port: u16,
    },
    /// `-j MASQUERADE [--random-fully]`.
    Masquerade {
        random_fully: bool,
    },
    /// `-j MARK --set-xmark value/mask`: `mark = (mark & !mask) ^ value`.
    /// (`--or-mark X` is `X/X`, `--xor-mark X` is `X/0`.)
    Mark {
        value: u32,
        mask: u32,
    },
    /// `-j REJECT --reject-with icmp-port-unreachable`.
    Reject,
    /// `-j REDIRECT --to-ports P` (userspace mode).
    Redirect {
        port: u16,
    },
}

/// One iptables rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub src: Option<AddrMatch>,
    pub dst: Option<AddrMatch>,
    pub proto: Option<Proto>,
    pub matches: Vec<Match>,
    pub target: Target,
}

impl Rule {
    /// A rule with no matches, to be filled by the builder methods below (written in the
    /// same order as kube-proxy writes its arguments, because that order is what iptables
    /// keeps for `-m` matches).
    pub fn builder() -> RuleBuilder {
        RuleBuilder {
            src: None,
            dst: None,
            proto: None,
            matches: Vec::new(),
        }
    }
    /// The rule's comment, if any.
    pub fn comment(&self) -> Option<&str> {
        self.matches.iter().find_map(|m| match m {
            Match::Comment(c) => Some(c.as_str()),
            _ => None,
        })
    }
}

/// Builder for [`Rule`] (the order of calls is the order of `-m` matches).
#[derive(Clone, Debug)]
pub struct RuleBuilder {
    src: Option<AddrMatch>,
    dst: Option<AddrMatch>,
    proto: Option<Proto>,
    matches: Vec<Match>,
}

impl RuleBuilder {
    pub fn src(mut self, cidr: Cidr) -> Self {
        self.src = Some(AddrMatch {
            cidr,
            negate: false,
        });
        self
    }
    pub fn not_src(mut self, cidr: Cidr) -> Self {
        self.src = Some(AddrMatch { cidr, negate: true });
        self
    }
    pub fn dst(mut self, cidr: Cidr) -> Self {
        self.dst = Some(AddrMatch {
            cidr,
            negate: false,
        });
        self
    }
    pub fn not_dst(mut self, cidr: Cidr) -> Self {
        self.dst = Some(AddrMatch { cidr, negate: true });
        self
    }
    /// `-p P` alone (no `-m P`).
    pub fn proto_only(mut self, p: Proto) -> Self {
        self.proto = Some(p);
        self
    }
    /// `-m P -p P [--dport N]`.
    pub fn proto(mut self, p: Proto, dport: Option<u16>) -> Self {
        self.proto = Some(p);
        self.matches.push(Match::Proto { proto: p, dport });
        self
    }
    pub fn comment(mut self, c: impl Into<String>) -> Self {
        self.matches.push(Match::Comment(c.into()));
        self
    }
    pub fn m(mut self, m: Match) -> Self {
        self.matches.push(m);
        self
    }
    pub fn ctstate(self, states: &[CtState], negate: bool) -> Self {
        self.m(Match::Conntrack {
            states: states.to_vec(),
            negate,
        })
    }
    pub fn target(self, target: Target) -> Rule {
        Rule {
            src: self.src,
            dst: self.dst,
            proto: self.proto,
            matches: self.matches,
            target,
        }
    }
    pub fn jump(self, chain: &str) -> Rule {
        self.target(Target::Jump(chain.to_string()))
    }
}

/// A chain: built-in chains have a policy, user chains do not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chain {
    pub policy: Option<Target>,
    pub rules: Vec<Rule>,
}

/// One iptables table (`nat`, `filter`).
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub name: String,
    /// Built-in chain names in the kernel's order (iptables-save prints them first).
    pub builtin: Vec<String>,
    /// All chains, built-in and user, by name.
    pub chains: BTreeMap<String, Chain>,
}

impl Table {
    pub fn new(name: &str) -> Table {
        let builtin: &[&str] = match name {
            "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
            "filter" => &["INPUT", "FORWARD", "OUTPUT"],
            "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
            _ => &[],
        };
        let mut chains = BTreeMap::new();
        for b in builtin {
            chains.insert(
                (*b).to_string(),
                Chain {
                    policy: Some(Target::Accept),
                    rules: Vec::new(),
                },
            );
        }
        Table {
            name: name.to_string(),
            builtin: builtin.iter().map(|s| (*s).to_string()).collect(),
            chains,
        }
    }
    /// Declares a user chain (idempotent).
    pub fn chain(&mut self, name: &str) -> &mut Chain {
        self.chains.entry(name.to_string()).or_default()
    }
    /// Appends a rule (`-A`), declaring the chain if needed.
    pub fn append(&mut self, chain: &str, rule: Rule) {
        self.chain(chain).rules.push(rule);
    }
    /// User chains in iptables-save order (alphabetical, §3.21).
    pub fn user_chains(&self) -> impl Iterator<Item = (&String, &Chain)> {
        self.chains.iter().filter(|(_, c)| c.policy.is_none())
    }
}

/// An ipset (ipvs mode, §4.3). Entries are kept as the strings `ipset list` shows
/// (`10.96.0.1,tcp:443`), which is also how membership is tested.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpSet {
    /// `hash:ip,port`, `hash:ip,port,ip`, `bitmap:port`, `hash:ip`...
    pub kind: String,
    pub comment: String,
    pub entries: std::collections::BTreeSet<String>,
}

/// One IPVS real server.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RealServer {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// Always 1 from kube-proxy.
    pub weight: u32,
}

/// One IPVS virtual server (`ipvsadm -A -t vip:port -s rr [-p timeout]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServer {
    pub proto: Proto,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub scheduler: String,
    /// `persistent <timeout>` (ClientIP affinity).
    pub persistent_s: Option<u32>,
    /// Real servers, in the order ipvsadm lists them (§4.6).
    pub real_servers: Vec<RealServer>,
    /// The service port this virtual server belongs to (`ns/name:port`).
    pub service: String,
}

/// A userspace-mode portal: `ClusterIP:port` (or a NodePort) redirected to a proxy port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Portal {
    /// `ns/name:port`.
    pub service: String,
    pub proto: Proto,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    /// The local port kube-proxy listens on.
    pub proxy_port: u16,
    /// Backends (`ip`, `port`) in round-robin order.
    pub endpoints: Vec<(Ipv4Addr, u16)>,
    /// ClientIP affinity timeout.
    pub affinity_s: Option<u32>,
}

/// Everything kube-proxy programmed on one node.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleTable {
    pub mode: Mode,
    pub node_name: String,
    pub node_ips: Vec<Ipv4Addr>,
    pub cluster_cidr: Cidr,
    pub filter: Table,
    pub nat: Table,
    /// ipvs mode: ipsets by name.
    pub ipsets: BTreeMap<String, IpSet>,
    /// ipvs mode: virtual servers.
    pub virtual_servers: Vec<VirtualServer>,
    /// ipvs mode: addresses bound to `kube-ipvs0` (sorted).
    pub ipvs_addrs: Vec<Ipv4Addr>,
    /// nftables mode: the `ip kube-proxy` table.
    pub nft: Option<NftRuleset>,
    /// userspace mode: portals.
    pub portals: Vec<Portal>,
}

impl RuleTable {
    /// Whether `ip` is a local address of this node (addrtype LOCAL): loopback, the node's
    /// addresses, and in ipvs mode the addresses bound to kube-ipvs0.
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        ip.is_loopback()
            || self.node_ips.contains(&ip)
            || self.ipvs_addrs.binary_search(&ip).is_ok()
    }
    /// Whether a new packet without ports (ICMP) to `ip` is refused: in ipvs mode the
    /// `KUBE-IPVS-FILTER` chain returns only for the (address, protocol:port) pairs of the
    /// service ipsets and REJECTs every other NEW packet to a kube-ipvs0 address, so since
    /// kube-proxy 1.27 a ClusterIP no longer answers ping there (it used to: the address is
    /// local).
    pub fn rejects_portless(&self, ip: Ipv4Addr) -> bool {
        self.mode == Mode::Ipvs && self.ipvs_addrs.binary_search(&ip).is_ok()
    }
    /// An iptables table by name (`nat`, `filter`).
    pub fn table(&self, name: &str) -> Option<&Table> {
        match name {
            "nat" => Some(&self.nat),
            "filter" => Some(&self.filter),
            _ => None,
        }
    }
}
