//! Text views of the iptables tables: `iptables-save` and `iptables -L`.
//!
//! Layer: view (pure). Guarantee: byte-exact legacy iptables v1.8.7 layouts (the version
//! Ubuntu 22.04, the nodes' OS, ships; 1.8.9 would print `-L -n` protocols as numbers) for
//! the rules kube-proxy writes — normalisation of §3.20 (address/protocol first, `/32`, quoting,
//! `--set-xmark`, `--reject-with`, recent's `--mask … --rsource`), chain order of §3.21, and
//! `iptables -L`'s column printer (`print_header`/`print_firewall` in iptables.c).

use std::fmt::Write as _;

use crate::model::*;

/// xtables_save_string: bare if only `[A-Za-z0-9_-]` (and non-empty), else double-quoted with
/// `"`, `\` and `'` escaped.
fn save_string(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if safe {
        s.to_string()
    } else {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            if matches!(c, '"' | '\\' | '\'') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }
}

fn states(states: &[CtState]) -> String {
    let mut sorted = states.to_vec();
    sorted.sort();
    sorted
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(",")
}

fn set_dirs(dirs: &[SetDir]) -> String {
    dirs.iter()
        .map(|d| match d {
            SetDir::Src => "src",
            SetDir::Dst => "dst",
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn match_save(m: &Match, out: &mut String) {
    let neg = |n: bool| if n { " !" } else { "" };
    match m {
        Match::Comment(c) => {
            let _ = write!(out, " -m comment --comment {}", save_string(c));
        }
        Match::Proto { proto, dport } => {
            let _ = write!(out, " -m {}", proto.lower());
            if let Some(p) = dport {
                let _ = write!(out, " --dport {p}");
            }
        }
        Match::Statistic(p) => {
            let _ = write!(
                out,
                " -m statistic --mode random --probability {}",
                p.display()
            );
        }
        Match::AddrTypeLocal { dir, negate } => {
            let d = match dir {
                AddrDir::Src => "--src-type",
                AddrDir::Dst => "--dst-type",
            };
            let _ = write!(out, " -m addrtype{} {d} LOCAL", neg(*negate));
        }
        Match::Mark {
            value,
            mask,
            negate,
        } => {
            let _ = write!(
                out,
                " -m mark{} --mark 0x{value:x}/0x{mask:x}",
                neg(*negate)
            );
        }
        Match::Recent { name, op } => {
            out.push_str(" -m recent");
            match op {
                RecentOp::Set => out.push_str(" --set"),
                RecentOp::Rcheck { seconds } => {
                    let _ = write!(out, " --rcheck --seconds {seconds} --reap");
                }
            }
            let _ = write!(out, " --name {name} --mask 255.255.255.255 --rsource");
        }
        Match::Conntrack { states: s, negate } => {
            let _ = write!(out, " -m conntrack{} --ctstate {}", neg(*negate), states(s));
        }
        Match::Set { name, dirs, negate } => {
            let _ = write!(
                out,
                " -m set{} --match-set {name} {}",
                neg(*negate),
                set_dirs(dirs)
            );
        }
    }
}

fn target_save(t: &Target, out: &mut String) {
    match t {
        Target::Jump(c) => {
            let _ = write!(out, " -j {c}");
        }
        Target::Accept => out.push_str(" -j ACCEPT"),
        Target::Drop => out.push_str(" -j DROP"),
        Target::Return => out.push_str(" -j RETURN"),
        Target::Dnat { ip, port } => {
            let _ = write!(out, " -j DNAT --to-destination {ip}:{port}");
        }
        Target::Masquerade { random_fully } => {
            out.push_str(" -j MASQUERADE");
            if *random_fully {
                out.push_str(" --random-fully");
            }
        }
        Target::Mark { value, mask } => {
            let _ = write!(out, " -j MARK --set-xmark 0x{value:x}/0x{mask:x}");
        }
        Target::Reject => out.push_str(" -j REJECT --reject-with icmp-port-unreachable"),
        Target::Redirect { port } => {
            let _ = write!(out, " -j REDIRECT --to-ports {port}");
        }
    }
}

/// One rule as `iptables-save` prints it (`-A CHAIN ...`), also used by the evaluator's trace.
pub fn rule_save(chain: &str, r: &Rule) -> String {
    let mut out = format!("-A {chain}");
    for (flag, a) in [("-s", r.src), ("-d", r.dst)] {
        if let Some(a) = a {
            if a.negate {
                out.push_str(" !");
            }
            let _ = write!(out, " {flag} {}", a.cidr);
        }
    }
    if let Some(p) = r.proto {
        let _ = write!(out, " -p {}", p.lower());
    }
    for m in &r.matches {
        match_save(m, &mut out);
    }
    target_save(&r.target, &mut out);
    out
}

fn table_save(t: &Table, generated_at: &str, out: &mut String) {
    let _ = writeln!(out, "# Generated by iptables-save v1.8.7 on {generated_at}");
    let _ = writeln!(out, "*{}", t.name);
    for b in &t.builtin {
        let _ = writeln!(out, ":{b} ACCEPT [0:0]");
    }
    for (name, _) in t.user_chains() {
        let _ = writeln!(out, ":{name} - [0:0]");
    }
    let order = t.builtin.iter().chain(t.user_chains().map(|(n, _)| n));
    for name in order {
        if let Some(c) = t.chains.get(name) {
            for r in &c.rules {
                out.push_str(&rule_save(name, r));
                out.push('\n');
            }
        }
    }
    out.push_str("COMMIT\n");
    let _ = writeln!(out, "# Completed on {generated_at}");
}

/// `iptables-save [-t TABLE]` (legacy backend layout). Without a table, `nat` then `filter`
/// (the kernel lists the most recently registered table first). `generated_at` is the
/// ctime-style date the header shows (`Tue Oct 27 10:00:00 2020`). An unknown table prints
/// nothing, as iptables-save does after its error message.
pub fn iptables_save(rt: &RuleTable, table: Option<&str>, generated_at: &str) -> String {
    let mut out = String::new();
    let tables: Vec<&Table> = match table {
        Some(name) => rt.table(name).into_iter().collect(),
        None => vec![&rt.nat, &rt.filter],
    };
    for t in tables {
        table_save(t, generated_at, &mut out);
    }
    out
}

fn cidr_list(a: Option<AddrMatch>, numeric: bool) -> (char, String) {
    match a {
        None => (
            ' ',
            if numeric {
                "0.0.0.0/0".to_string()
            } else {
                "anywhere".to_string()
            },
        ),
        Some(a) => {
            let s = if a.cidr.prefix == 32 {
                a.cidr.addr.to_string()
            } else {
                a.cidr.to_string()
            };
            (if a.negate { '!' } else { ' ' }, s)
        }
    }
}

fn match_list(m: &Match, out: &mut String) {
    let neg = |n: bool| if n { " !" } else { "" };
    match m {
        Match::Comment(c) => {
            let _ = write!(out, " /* {c} */");
        }
        Match::Proto { proto, dport } => {
            let _ = write!(out, " {}", proto.lower());
            if let Some(p) = dport {
                let _ = write!(out, " dpt:{p}");
            }
        }
        Match::Statistic(p) => {
            let _ = write!(out, " statistic mode random probability {}", p.display());
        }
        Match::AddrTypeLocal { dir, negate } => {
            let d = match dir {
                AddrDir::Src => "src-type",
                AddrDir::Dst => "dst-type",
            };
            let _ = write!(out, " ADDRTYPE match {d}{} LOCAL", neg(*negate));
        }
        Match::Mark {
            value,
            mask,
            negate,
        } => {
            let _ = write!(out, " mark match{} 0x{value:x}/0x{mask:x}", neg(*negate));
        }
        Match::Recent { name, op } => {
            out.push_str(" recent:");
            match op {
                RecentOp::Set => out.push_str(" SET"),
                RecentOp::Rcheck { seconds } => {
                    let _ = write!(out, " CHECK seconds: {seconds} reap");
                }
            }
            let _ = write!(out, " name: {name} side: source mask: 255.255.255.255");
        }
        Match::Conntrack { states: s, negate } => {
            let _ = write!(out, "{} ctstate {}", neg(*negate), states(s));
        }
        Match::Set { name, dirs, negate } => {
            let _ = write!(out, "{} match-set {name} {}", neg(*negate), set_dirs(dirs));
        }
    }
}

fn target_name(t: &Target) -> &str {
    match t {
        Target::Jump(c) => c,
        Target::Accept => "ACCEPT",
        Target::Drop => "DROP",
        Target::Return => "RETURN",
        Target::Dnat { .. } => "DNAT",
        Target::Masquerade { .. } => "MASQUERADE",
        Target::Mark { .. } => "MARK",
        Target::Reject => "REJECT",
        Target::Redirect { .. } => "REDIRECT",
    }
}

fn target_list(t: &Target, out: &mut String) {
    match t {
        Target::Dnat { ip, port } => {
            let _ = write!(out, " to:{ip}:{port}");
        }
        Target::Masquerade { random_fully: true } => out.push_str(" random-fully"),
        Target::Mark { value, mask } => {
            if *value == 0 {
                let _ = write!(out, " MARK and 0x{:x}", !*mask);
            } else if value == mask {
                let _ = write!(out, " MARK or 0x{value:x}");
            } else if *mask == 0 {
                let _ = write!(out, " MARK xor 0x{value:x}");
            } else if *mask == u32::MAX {
                let _ = write!(out, " MARK set 0x{value:x}");
            } else {
                let _ = write!(out, " MARK xset 0x{value:x}/0x{mask:x}");
            }
        }
        Target::Reject => out.push_str(" reject-with icmp-port-unreachable"),
        Target::Redirect { port } => {
            let _ = write!(out, " redir ports {port}");
        }
        _ => {}
    }
}

fn list_chain(
    t: &Table,
    name: &str,
    c: &Chain,
    numeric: bool,
    line_numbers: bool,
    out: &mut String,
) {
    match &c.policy {
        Some(p) => {
            let _ = writeln!(out, "Chain {name} (policy {})", target_name(p));
        }
        None => {
            let refs = t
                .chains
                .values()
                .flat_map(|c| c.rules.iter())
                .filter(|r| matches!(&r.target, Target::Jump(j) if j == name))
                .count();
            let _ = writeln!(out, "Chain {name} ({refs} references)");
        }
    }
    if line_numbers {
        let _ = write!(out, "{:<4} ", "num");
    }
    let _ = writeln!(
        out,
        "{:<9}  prot opt {:<19}  {:<19} ",
        "target", "source", "destination"
    );
    for (i, r) in c.rules.iter().enumerate() {
        if line_numbers {
            let _ = write!(out, "{:<4} ", i + 1);
        }
        let _ = write!(out, "{:<9} ", target_name(&r.target));
        let proto = r.proto.map(|p| p.lower()).unwrap_or("all");
        let _ = write!(out, " {proto:<5}-- ");
        let (sc, s) = cidr_list(r.src, numeric);
        let (dc, d) = cidr_list(r.dst, numeric);
        let _ = write!(out, "{sc}{s:<19} {dc}{d:<19} ");
        for m in &r.matches {
            match_list(m, out);
        }
        target_list(&r.target, out);
        out.push('\n');
    }
}

/// `iptables -t TABLE -L [CHAIN] [-n] [--line-numbers]`. Without a chain, every chain
/// (built-ins first, then user chains alphabetically) separated by blank lines. `None` if
/// the table or chain does not exist (iptables exits 1 with "No chain/target/match by that
/// name."). Without `-n`, `0.0.0.0/0` shows as `anywhere`; addresses and ports are never
/// resolved to names (there is no resolver here).
pub fn iptables_list(
    rt: &RuleTable,
    table: &str,
    chain: Option<&str>,
    numeric: bool,
    line_numbers: bool,
) -> Option<String> {
    let t = rt.table(table)?;
    let mut out = String::new();
    match chain {
        Some(name) => {
            let c = t.chains.get(name)?;
            list_chain(t, name, c, numeric, line_numbers, &mut out);
        }
        None => {
            let names: Vec<&String> = t
                .builtin
                .iter()
                .chain(t.user_chains().map(|(n, _)| n))
                .collect();
            for (i, name) in names.into_iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                if let Some(c) = t.chains.get(name) {
                    list_chain(t, name, c, numeric, line_numbers, &mut out);
                }
            }
        }
    }
    Some(out)
}
