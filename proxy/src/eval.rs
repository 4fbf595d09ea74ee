//! Evaluation: one new connection's packet walks the node's rules.
//!
//! Layer: data-path decision (pure). Guarantee: the walk reads the very [`RuleTable`] the
//! views print — rule by rule, chain by chain, in the same order — so what a student reads in
//! `iptables-save` is what happened. Randomness comes only from the caller's `draw` (the
//! seeded RNG), time only from `now_ms`, and all state (recent lists, rr counters, affinity)
//! lives in [`ProxyState`], in `BTreeMap`s. Statistic matches compare the draw against the
//! quantised probability `iptables-save` shows (§3.10), never against `1/n`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::model::*;
use crate::save::rule_save;

/// The netfilter hook a packet is at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

/// What the rules can see of a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: Proto,
    pub sport: u16,
    pub dport: u16,
    /// The packet mark (`KUBE-MARK-MASQ` sets 0x4000; carry it from PREROUTING/OUTPUT to
    /// POSTROUTING).
    pub mark: u32,
    /// Conntrack state of the packet's connection (`New` for a first packet).
    pub ctstate: CtState,
    /// Whether the connection was DNATed (conntrack's `DNAT` pseudo-state).
    pub ct_dnat: bool,
}

impl PacketMeta {
    /// A first packet of a new connection, no mark.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: Proto, sport: u16, dport: u16) -> PacketMeta {
        PacketMeta {
            src,
            dst,
            proto,
            sport,
            dport,
            mark: 0,
            ctstate: CtState::New,
            ct_dnat: false,
        }
    }
}

/// A destination rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dnat {
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// One line of the packet-path trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    /// `nat`, `filter`, `ipvs`, `nft`, `userspace`.
    pub table: String,
    pub chain: String,
    /// The rule as the view prints it (`-A KUBE-SVC-… -m comment --comment "…" …`).
    pub rule: String,
    /// Why it matched or not: `jump`, `draw 0.41 < 0.50000000000`, `rr index 1/3`, …
    pub why: String,
}

/// The outcome for this hook.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// DNAT (or REDIRECT, or an IPVS pick) chosen for the connection.
    pub nat: Option<Dnat>,
    /// `nat` is an IPVS real server: the connection is in IPVS's table, which
    /// `ipvsadm -Ln` counts (an iptables DNAT is not).
    pub ipvs: bool,
    /// SNAT to the outgoing interface's address.
    pub masquerade: bool,
    /// Refuse with ICMP port unreachable.
    pub reject: bool,
    /// Silently drop.
    pub drop: bool,
    /// The packet mark after this hook.
    pub mark: u32,
    pub trace: Vec<TraceLine>,
}

/// An IPVS virtual server's identity: (protocol, VIP, port).
pub type VsKey = (Proto, Ipv4Addr, u16);

/// Mutable proxier-side state, all keyed deterministically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyState {
    /// `-m recent` lists: (list name, source address) → last seen (ms).
    pub recent: BTreeMap<(String, Ipv4Addr), i64>,
    /// IPVS rr position per virtual server (proto, vip, port): the next index to use.
    pub ipvs_rr: BTreeMap<VsKey, usize>,
    /// IPVS persistence templates: (vs, client) → (real server, expiry ms).
    pub ipvs_persist: BTreeMap<(VsKey, Ipv4Addr), (Ipv4Addr, u16, i64)>,
    /// Userspace round robin: proxy port → next index.
    pub userspace_rr: BTreeMap<u16, usize>,
    /// Userspace ClientIP affinity: (proxy port, client) → (endpoint, last used ms).
    pub userspace_affinity: BTreeMap<(u16, Ipv4Addr), ((Ipv4Addr, u16), i64)>,
}

/// How a chain walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Terminal {
    /// Fell off a built-in chain (policy) or ACCEPT.
    Accept,
    Drop,
    Reject,
    Dnat(Dnat),
    Masquerade,
    Redirect(u16),
}

/// Guard against jump loops: iptables itself refuses loops; this keeps a bad table finite.
const MAX_DEPTH: usize = 64;

struct Walk<'a> {
    rt: &'a RuleTable,
    table: &'a Table,
    pkt: &'a mut PacketMeta,
    state: &'a mut ProxyState,
    draw: &'a mut dyn FnMut() -> f64,
    now_ms: i64,
    trace: &'a mut Vec<TraceLine>,
}

impl Walk<'_> {
    fn line(&mut self, chain: &str, rule: &Rule, why: String) {
        self.trace.push(TraceLine {
            table: self.table.name.clone(),
            chain: chain.to_string(),
            rule: rule_save(chain, rule),
            why,
        });
    }

    /// Does `rule` match? Matches run in order and stop at the first miss, so a statistic
    /// draw (or a recent side effect) only happens when everything before it matched.
    fn matches(&mut self, chain: &str, rule: &Rule) -> (bool, String) {
        let addr_ok = |a: Option<AddrMatch>, ip: Ipv4Addr| match a {
            None => true,
            Some(a) => a.cidr.contains(ip) != a.negate,
        };
        if !addr_ok(rule.src, self.pkt.src) || !addr_ok(rule.dst, self.pkt.dst) {
            return (false, String::new());
        }
        if let Some(p) = rule.proto {
            if p != self.pkt.proto {
                return (false, String::new());
            }
        }
        let mut why = Vec::new();
        for m in &rule.matches {
            let ok = match m {
                Match::Comment(_) => true,
                Match::Proto { proto, dport } => {
                    *proto == self.pkt.proto && dport.is_none_or(|d| d == self.pkt.dport)
                }
                Match::Statistic(p) => {
                    let d = (self.draw)();
                    // Kernel: (prandom_u32() & 0x7fffffff) < stored.
                    let r = (d.clamp(0.0, 1.0) * 2f64.powi(31)) as u64;
                    let hit = r < u64::from(p.stored);
                    if hit {
                        why.push(format!("draw {d:.6} < {}", p.display()));
                    } else {
                        self.line(
                            chain,
                            rule,
                            format!("no match: draw {d:.6} >= {}", p.display()),
                        );
                    }
                    hit
                }
                Match::AddrTypeLocal { dir, negate } => {
                    let ip = match dir {
                        AddrDir::Src => self.pkt.src,
                        AddrDir::Dst => self.pkt.dst,
                    };
                    self.rt.is_local(ip) != *negate
                }
                Match::Mark {
                    value,
                    mask,
                    negate,
                } => ((self.pkt.mark & mask) == *value) != *negate,
                Match::Recent { name, op } => {
                    let key = (name.clone(), self.pkt.src);
                    match op {
                        RecentOp::Set => {
                            self.state.recent.insert(key, self.now_ms);
                            why.push(format!("recent {name}: set {}", self.pkt.src));
                            true
                        }
                        RecentOp::Rcheck { seconds } => {
                            let window = i64::from(*seconds) * 1000;
                            match self.state.recent.get(&key).copied() {
                                Some(t) if self.now_ms - t <= window => {
                                    why.push(format!(
                                        "affinity hit: {} seen {} ms ago (window {seconds}s)",
                                        self.pkt.src,
                                        self.now_ms - t
                                    ));
                                    true
                                }
                                Some(_) => {
                                    // --reap: forget entries older than the window.
                                    self.state.recent.remove(&key);
                                    false
                                }
                                None => false,
                            }
                        }
                    }
                }
                Match::Conntrack { states, negate } => {
                    let has = states.iter().any(|s| match s {
                        CtState::Dnat => self.pkt.ct_dnat,
                        s => *s == self.pkt.ctstate,
                    });
                    has != *negate
                }
                Match::Set { name, dirs, negate } => {
                    set_contains(self.rt, name, dirs, self.pkt) != *negate
                }
            };
            if !ok {
                return (false, String::new());
            }
        }
        (true, why.join("; "))
    }

    fn chain(&mut self, name: &str, depth: usize) -> Option<Terminal> {
        if depth > MAX_DEPTH {
            return Some(Terminal::Drop);
        }
        let table = self.table;
        let chain = table.chains.get(name)?;
        for rule in &chain.rules {
            let (hit, why) = self.matches(name, rule);
            if !hit {
                continue;
            }
            let why = |t: &str| {
                if why.is_empty() {
                    t.to_string()
                } else {
                    format!("{why}; {t}")
                }
            };
            match &rule.target {
                Target::Jump(next) => {
                    self.line(name, rule, why(&format!("jump {next}")));
                    if let Some(t) = self.chain(next, depth + 1) {
                        return Some(t);
                    }
                }
                Target::Return => {
                    self.line(name, rule, why("return"));
                    return None;
                }
                Target::Accept => {
                    self.line(name, rule, why("accept"));
                    return Some(Terminal::Accept);
                }
                Target::Drop => {
                    self.line(name, rule, why("drop"));
                    return Some(Terminal::Drop);
                }
                Target::Reject => {
                    self.line(name, rule, why("reject (icmp port unreachable)"));
                    return Some(Terminal::Reject);
                }
                Target::Dnat { ip, port } => {
                    self.line(name, rule, why(&format!("DNAT to {ip}:{port}")));
                    return Some(Terminal::Dnat(Dnat {
                        ip: *ip,
                        port: *port,
                    }));
                }
                Target::Masquerade { .. } => {
                    self.line(name, rule, why("masquerade"));
                    return Some(Terminal::Masquerade);
                }
                Target::Mark { value, mask } => {
                    self.pkt.mark = (self.pkt.mark & !mask) ^ value;
                    self.line(name, rule, why(&format!("mark now 0x{:x}", self.pkt.mark)));
                }
                Target::Redirect { port } => {
                    self.line(name, rule, why(&format!("redirect to proxy port {port}")));
                    return Some(Terminal::Redirect(*port));
                }
            }
        }
        if chain.policy.is_some() {
            Some(Terminal::Accept)
        } else {
            None
        }
    }
}

fn set_contains(rt: &RuleTable, name: &str, dirs: &[SetDir], pkt: &PacketMeta) -> bool {
    let Some(set) = rt.ipsets.get(name) else {
        return false;
    };
    let ip = |d: SetDir| match d {
        SetDir::Src => pkt.src,
        SetDir::Dst => pkt.dst,
    };
    let port = |d: SetDir| match d {
        SetDir::Src => pkt.sport,
        SetDir::Dst => pkt.dport,
    };
    let key = match (set.kind.as_str(), dirs) {
        ("hash:ip,port", [a, b, ..]) => format!("{},{}:{}", ip(*a), pkt.proto.lower(), port(*b)),
        ("hash:ip,port,ip", [a, b, c, ..]) => {
            format!("{},{}:{},{}", ip(*a), pkt.proto.lower(), port(*b), ip(*c))
        }
        ("bitmap:port", [a, ..]) => port(*a).to_string(),
        ("hash:ip", [a, ..]) => ip(*a).to_string(),
        ("hash:net", [a, ..]) => {
            return set
                .entries
                .iter()
                .filter_map(|e| Cidr::parse(e))
                .any(|c| c.contains(ip(*a)));
        }
        _ => return false,
    };
    set.entries.contains(&key)
}

/// The caller-owned parts of a walk: state, randomness, time and the trace being built.
struct Ctx<'a> {
    state: &'a mut ProxyState,
    draw: &'a mut dyn FnMut() -> f64,
    now_ms: i64,
    trace: Vec<TraceLine>,
}

fn walk_table(
    rt: &RuleTable,
    table: &Table,
    chain: &str,
    pkt: &mut PacketMeta,
    cx: &mut Ctx<'_>,
) -> Terminal {
    let mut w = Walk {
        rt,
        table,
        pkt,
        state: &mut *cx.state,
        draw: &mut *cx.draw,
        now_ms: cx.now_ms,
        trace: &mut cx.trace,
    };
    w.chain(chain, 0).unwrap_or(Terminal::Accept)
}

fn apply(v: &mut Verdict, t: Terminal, pkt: &mut PacketMeta, redirect_ip: Ipv4Addr) {
    match t {
        Terminal::Accept => {}
        Terminal::Drop => v.drop = true,
        Terminal::Reject => v.reject = true,
        Terminal::Masquerade => v.masquerade = true,
        Terminal::Dnat(d) => {
            v.nat = Some(d);
            pkt.dst = d.ip;
            pkt.dport = d.port;
            pkt.ct_dnat = true;
        }
        Terminal::Redirect(port) => {
            let d = Dnat {
                ip: redirect_ip,
                port,
            };
            v.nat = Some(d);
            pkt.dst = d.ip;
            pkt.dport = d.port;
            pkt.ct_dnat = true;
        }
    }
}

/// IPVS: the virtual server for the packet's destination, if any, picks a real server
/// (persistence template first, then `rr`).
fn ipvs_pick(
    rt: &RuleTable,
    pkt: &PacketMeta,
    state: &mut ProxyState,
    now_ms: i64,
    v: &mut Verdict,
) {
    // The kernel finds a virtual server by hash; the table is kept in ipvsadm's sort order
    // (protocol, address, port), so a binary search gives the same constant-ish lookup.
    let key = (pkt.proto.number(), u32::from(pkt.dst), pkt.dport);
    let Ok(i) = rt
        .virtual_servers
        .binary_search_by_key(&key, |vs| (vs.proto.number(), u32::from(vs.vip), vs.port))
    else {
        return;
    };
    let vs = &rt.virtual_servers[i];
    let key = (vs.proto, vs.vip, vs.port);
    let line = crate::ipvs::service_line(vs);
    if vs.real_servers.is_empty() {
        // No destination: ip_vs_leave answers ICMP port unreachable (connection refused).
        v.reject = true;
        v.trace.push(TraceLine {
            table: "ipvs".into(),
            chain: "ipvs".into(),
            rule: line,
            why: "no real servers: reject".into(),
        });
        return;
    }
    if let Some(timeout) = vs.persistent_s {
        if let Some((ip, port, exp)) = state.ipvs_persist.get(&(key, pkt.src)).copied() {
            if now_ms < exp && vs.real_servers.iter().any(|r| r.ip == ip && r.port == port) {
                state.ipvs_persist.insert(
                    (key, pkt.src),
                    (ip, port, now_ms + i64::from(timeout) * 1000),
                );
                v.nat = Some(Dnat { ip, port });
                v.ipvs = true;
                v.trace.push(TraceLine {
                    table: "ipvs".into(),
                    chain: "ipvs".into(),
                    rule: line,
                    why: format!("persistent affinity hit for {} → {ip}:{port}", pkt.src),
                });
                return;
            }
        }
    }
    let n = vs.real_servers.len();
    let idx = state.ipvs_rr.get(&key).copied().unwrap_or(0) % n;
    state.ipvs_rr.insert(key, (idx + 1) % n);
    let rs = &vs.real_servers[idx];
    if let Some(timeout) = vs.persistent_s {
        state.ipvs_persist.insert(
            (key, pkt.src),
            (rs.ip, rs.port, now_ms + i64::from(timeout) * 1000),
        );
    }
    v.nat = Some(Dnat {
        ip: rs.ip,
        port: rs.port,
    });
    v.ipvs = true;
    v.trace.push(TraceLine {
        table: "ipvs".into(),
        chain: "ipvs".into(),
        rule: line,
        why: format!("rr index {idx} of {n} → {}:{}", rs.ip, rs.port),
    });
}

/// Runs one hook for one packet. Netfilter order within a hook is kept: at OUTPUT, nat then
/// IPVS (ipvs mode) then filter; at INPUT, filter then IPVS. The filter walk sees the
/// packet after this hook's DNAT. In nftables mode the nft ruleset is walked instead.
pub fn evaluate(
    rt: &RuleTable,
    hook: Hook,
    pkt: &PacketMeta,
    state: &mut ProxyState,
    draw: &mut dyn FnMut() -> f64,
    now_ms: i64,
) -> Verdict {
    let mut v = Verdict::default();
    let mut p = pkt.clone();
    if rt.mode == Mode::Nftables {
        crate::nft::evaluate(rt, hook, &mut p, state, draw, now_ms, &mut v);
        v.mark = p.mark;
        return v;
    }
    let node_ip = rt.node_ips.first().copied().unwrap_or(Ipv4Addr::LOCALHOST);
    let mut cx = Ctx {
        state,
        draw,
        now_ms,
        trace: Vec::new(),
    };
    match hook {
        Hook::Prerouting => {
            let t = walk_table(rt, &rt.nat, "PREROUTING", &mut p, &mut cx);
            apply(&mut v, t, &mut p, node_ip);
        }
        Hook::Output => {
            let t = walk_table(rt, &rt.nat, "OUTPUT", &mut p, &mut cx);
            apply(&mut v, t, &mut p, Ipv4Addr::LOCALHOST);
            v.trace.append(&mut cx.trace);
            if rt.mode == Mode::Ipvs && v.nat.is_none() {
                ipvs_pick(rt, &p, cx.state, now_ms, &mut v);
                if let Some(d) = v.nat {
                    p.dst = d.ip;
                    p.dport = d.port;
                    p.ct_dnat = true;
                }
            }
            if !v.drop && !v.reject {
                let t = walk_table(rt, &rt.filter, "OUTPUT", &mut p, &mut cx);
                apply(&mut v, t, &mut p, Ipv4Addr::LOCALHOST);
            }
        }
        Hook::Input => {
            let t = walk_table(rt, &rt.filter, "INPUT", &mut p, &mut cx);
            apply(&mut v, t, &mut p, node_ip);
            v.trace.append(&mut cx.trace);
            if rt.mode == Mode::Ipvs && !v.drop && !v.reject {
                ipvs_pick(rt, &p, cx.state, now_ms, &mut v);
            }
        }
        Hook::Forward => {
            let t = walk_table(rt, &rt.filter, "FORWARD", &mut p, &mut cx);
            apply(&mut v, t, &mut p, node_ip);
        }
        Hook::Postrouting => {
            let t = walk_table(rt, &rt.nat, "POSTROUTING", &mut p, &mut cx);
            apply(&mut v, t, &mut p, node_ip);
        }
    }
    v.trace.append(&mut cx.trace);
    v.mark = p.mark;
    v
}
