//! The client side (a "presentation" layer): the query `dig` sends, and the text BIND 9.18's `dig` and
//! `nslookup` print for a reply.
//!
//! Guarantee: formatting never fails or panics on any reply bytes (a reply that does not parse prints as
//! dig's `;; Got bad packet` line); times and dates are parameters, so output is reproducible. Record lines
//! follow BIND's column rule (`dns_master_stylecreate(…, 24, 32, 40, 48, 80, 8, …)`: TTL, class, type and
//! rdata columns with tab width 8), so tabs and spaces come out where dig puts them.

use std::net::SocketAddr;

use crate::wire::{self, Message, Name, RData, Record};

/// Transport the reply came over, for `;; SERVER: …(…) (UDP)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigTransport {
    Udp,
    Tcp,
}

/// A name dig could not turn into a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("'{0}' is not a legal name")]
    BadName(String),
}

/// The query dig 9.18 sends by default: RD and AD set, one question (class IN), EDNS0 with a 1232-byte
/// buffer and, when given, an 8-byte client COOKIE.
pub fn build_query(
    name: &str,
    qtype: u16,
    id: u16,
    rd: bool,
    edns_cookie: Option<[u8; 8]>,
) -> Result<Vec<u8>, QueryError> {
    let qname = Name::from_text(name).ok_or_else(|| QueryError::BadName(name.to_string()))?;
    let mut bits = wire::FLAG_AD;
    if rd {
        bits |= wire::FLAG_RD;
    }
    let m = Message {
        header: wire::Header {
            id,
            bits,
            ..wire::Header::default()
        },
        questions: vec![wire::Question {
            name: qname,
            qtype,
            qclass: wire::CLASS_IN,
        }],
        additional: vec![wire::opt_record(wire::Opt {
            udp_size: 1232,
            ttl: 0,
            options: edns_cookie
                .map(|c| vec![(10u16, c.to_vec())])
                .unwrap_or_default(),
        })],
        ..Message::default()
    };
    Ok(wire::encode(&m, false))
}

fn rcode_text(rcode: u16) -> String {
    const T: [&str; 17] = [
        "NOERROR",
        "FORMERR",
        "SERVFAIL",
        "NXDOMAIN",
        "NOTIMP",
        "REFUSED",
        "YXDOMAIN",
        "YXRRSET",
        "NXRRSET",
        "NOTAUTH",
        "NOTZONE",
        "RESERVED11",
        "RESERVED12",
        "RESERVED13",
        "RESERVED14",
        "RESERVED15",
        "BADVERS",
    ];
    T.get(rcode as usize)
        .map_or_else(|| format!("RESERVED{rcode}"), |s| s.to_string())
}

fn opcode_text(op: u16) -> String {
    match op {
        0 => "QUERY".into(),
        1 => "IQUERY".into(),
        2 => "STATUS".into(),
        4 => "NOTIFY".into(),
        5 => "UPDATE".into(),
        n => format!("RESERVED{n}"),
    }
}

/// BIND's `indent()`: move from `col` to column `to` (at least one blank) with tabs of width 8, then spaces.
fn indent_to(out: &mut String, col: &mut usize, to: usize) {
    let to = to.max(*col + 1);
    let ntabs = to / 8 - *col / 8;
    let mut from = *col;
    if ntabs > 0 {
        out.extend(std::iter::repeat_n('\t', ntabs));
        from = (to / 8) * 8;
    }
    out.extend(std::iter::repeat_n(' ', to - from));
    *col = to;
}

fn txt_string(s: &[u8]) -> String {
    let mut o = String::from("\"");
    for &b in s {
        match b {
            b'"' | b'\\' => {
                o.push('\\');
                o.push(b as char);
            }
            0x20..=0x7e => o.push(b as char),
            _ => o.push_str(&format!("\\{b:03}")),
        }
    }
    o.push('"');
    o
}

/// Rdata in presentation form, as dig prints it.
pub fn rdata_text(r: &Record) -> String {
    match &r.data {
        RData::A(a) => a.to_string(),
        RData::Aaaa(a) => a.to_string(),
        RData::Cname(n) | RData::Ptr(n) | RData::Ns(n) => n.to_text(),
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => format!("{priority} {weight} {port} {}", target.to_text()),
        RData::Soa {
            mname,
            rname,
            serial,
            refresh,
            retry,
            expire,
            minimum,
        } => format!(
            "{} {} {serial} {refresh} {retry} {expire} {minimum}",
            mname.to_text(),
            rname.to_text()
        ),
        RData::Txt(strings) => strings
            .iter()
            .map(|s| txt_string(s))
            .collect::<Vec<_>>()
            .join(" "),
        RData::Opt(_) => String::new(),
        RData::Other(b) => {
            if b.is_empty() {
                "\\# 0".to_string()
            } else {
                let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
                format!("\\# {} {hex}", b.len())
            }
        }
    }
}

/// One record line: `name<ws>TTL<ws>CLASS<ws>TYPE<ws>RDATA` with BIND's columns.
fn record_line(r: &Record) -> String {
    let mut out = String::new();
    let name = r.name.to_text();
    out.push_str(&name);
    let mut col = name.len();
    indent_to(&mut out, &mut col, 24);
    let ttl = r.ttl.to_string();
    out.push_str(&ttl);
    col += ttl.len();
    indent_to(&mut out, &mut col, 32);
    let class = wire::class_name(r.class);
    out.push_str(&class);
    col += class.len();
    indent_to(&mut out, &mut col, 40);
    let t = wire::type_name(r.rtype);
    out.push_str(&t);
    col += t.len();
    indent_to(&mut out, &mut col, 48);
    out.push_str(&rdata_text(r));
    out.push('\n');
    out
}

/// BIND prints a section grouped by owner name (first appearance, compared case-insensitively), then by
/// rdataset (type, class), records in arrival order.
type Rrsets<'a> = Vec<((u16, u16), Vec<&'a Record>)>;

fn grouped<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<&'a Record> {
    let mut groups: Vec<(Vec<u8>, Rrsets<'a>)> = Vec::new();
    for r in records {
        let key = r.name.0.to_ascii_lowercase();
        let gi = match groups.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                groups.push((key, Vec::new()));
                groups.len() - 1
            }
        };
        let sets = &mut groups[gi].1;
        match sets.iter_mut().find(|(tc, _)| *tc == (r.rtype, r.class)) {
            Some((_, v)) => v.push(r),
            None => sets.push(((r.rtype, r.class), vec![r])),
        }
    }
    groups
        .into_iter()
        .flat_map(|(_, sets)| sets.into_iter().flat_map(|(_, v)| v))
        .collect()
}

fn section(out: &mut String, title: &str, records: Vec<&Record>) {
    if records.is_empty() {
        return;
    }
    out.push_str(&format!(";; {title} SECTION:\n"));
    for r in grouped(records.into_iter()) {
        out.push_str(&record_line(r));
    }
    out.push('\n');
}

fn is_dot_local(m: &Message) -> bool {
    m.questions.iter().any(|q| {
        q.name
            .labels()
            .last()
            .is_some_and(|l| l.eq_ignore_ascii_case(b"local"))
    })
}

/// What dig's command line says that changes the layout: the user's server argument, whether it came
/// before the first name (then dig prints `; (1 server found)`), and `+short`.
struct DigArgs {
    server_arg: Option<String>,
    server_before_name: bool,
    short: bool,
}

fn parse_args(words: &[&str]) -> DigArgs {
    let mut a = DigArgs {
        server_arg: None,
        server_before_name: false,
        short: false,
    };
    let mut seen_name = false;
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if let Some(srv) = w.strip_prefix('@') {
            a.server_arg = Some(srv.to_string());
            if !seen_name {
                a.server_before_name = true;
            }
        } else if let Some(opt) = w.strip_prefix('+') {
            if opt == "short" {
                a.short = true;
            } else if opt == "noshort" {
                a.short = false;
            }
        } else if w == "-x" {
            seen_name = true;
            i += 1;
        } else if let Some(flag) = w.strip_prefix('-') {
            // -t TYPE, -c CLASS, -p PORT, -q NAME, -b ADDR, -k FILE, -y KEY take a value (joined or not).
            if flag.len() == 1 && "tcpqbkyf".contains(flag) {
                if w == "-q" {
                    seen_name = true;
                }
                i += 1;
            }
        } else if wire::type_from_name(w).is_some()
            || w.eq_ignore_ascii_case("IN")
            || w.eq_ignore_ascii_case("CH")
        {
            // a type or class word
        } else {
            seen_name = true;
        }
        i += 1;
    }
    a
}

/// The whole of dig 9.18's output for one reply. `cmdline` is the command as typed (`dig -t A name
/// @10.96.0.10`); `when` is the `WHEN:` text (`strftime("%a %b %d %H:%M:%S %Z %Y")`), passed in. A
/// truncated UDP reply prints dig's retry line only: the caller then asks over TCP and appends that
/// reply's formatting.
pub fn format_dig(
    cmdline: &str,
    response: &[u8],
    server: SocketAddr,
    transport: DigTransport,
    query_time_ms: u64,
    when: &str,
    version: &str,
) -> String {
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    let args_words = if words
        .first()
        .is_some_and(|w| *w == "dig" || w.ends_with("/dig"))
    {
        &words[1..]
    } else {
        &words[..]
    };
    let args = parse_args(args_words);
    let (m, extra_bytes) = match wire::parse_message(response) {
        Ok(x) => x,
        Err(e) => return format!(";; Got bad packet: {e}\n{} bytes\n", response.len()),
    };
    if transport == DigTransport::Udp && m.header.bits & wire::FLAG_TC != 0 {
        return ";; Truncated, retrying in TCP mode.\n".to_string();
    }
    if args.short {
        let mut out = String::new();
        for r in m.answers.iter() {
            out.push_str(&rdata_text(r));
            out.push('\n');
        }
        return out;
    }
    let mut out = String::new();
    out.push_str(&format!("\n; <<>> DiG {version} <<>>"));
    for w in args_words {
        out.push(' ');
        out.push_str(w);
    }
    out.push('\n');
    if args.server_before_name {
        out.push_str("; (1 server found)\n");
    }
    out.push_str(";; global options: +cmd\n");
    out.push_str(";; Got answer:\n");
    if is_dot_local(&m) {
        out.push_str(";; WARNING: .local is reserved for Multicast DNS\n");
        out.push_str(
            ";; You are currently testing what happens when an mDNS query is leaked to DNS\n",
        );
    }
    let h = m.header;
    let opt = m.opt().cloned();
    let rcode = h.rcode() | opt.as_ref().map_or(0, |o| ((o.ttl >> 24) as u16) << 4);
    out.push_str(&format!(
        ";; ->>HEADER<<- opcode: {}, status: {}, id: {}\n",
        opcode_text(h.opcode()),
        rcode_text(rcode),
        h.id
    ));
    out.push_str(";; flags:");
    for (bit, name) in [
        (wire::FLAG_QR, "qr"),
        (wire::FLAG_AA, "aa"),
        (wire::FLAG_TC, "tc"),
        (wire::FLAG_RD, "rd"),
        (wire::FLAG_RA, "ra"),
        (wire::FLAG_AD, "ad"),
        (wire::FLAG_CD, "cd"),
    ] {
        if h.bits & bit != 0 {
            out.push(' ');
            out.push_str(name);
        }
    }
    out.push_str(&format!(
        "; QUERY: {}, ANSWER: {}, AUTHORITY: {}, ADDITIONAL: {}\n",
        h.qdcount, h.ancount, h.nscount, h.arcount
    ));
    if h.bits & wire::FLAG_RD != 0 && h.bits & wire::FLAG_RA == 0 {
        out.push_str(";; WARNING: recursion requested but not available\n");
    }
    if opt.is_none() && (rcode == wire::RCODE_FORMERR || rcode == wire::RCODE_NOTIMP) {
        out.push_str(&format!(
            "\n;; WARNING: EDNS query returned status {} - retry with '+noedns'\n",
            rcode_text(rcode)
        ));
    }
    if extra_bytes != 0 {
        out.push_str(&format!(
            ";; WARNING: Message has {extra_bytes} extra bytes at end\n"
        ));
    }
    out.push('\n');
    if let Some(o) = &opt {
        out.push_str(";; OPT PSEUDOSECTION:\n");
        out.push_str(&format!("; EDNS: version: {}, flags:", o.version()));
        if o.do_bit() {
            out.push_str(" do");
        }
        let mbz = o.ttl & 0x7fff;
        if mbz != 0 {
            out.push_str(&format!("; MBZ: 0x{mbz:04x}, udp: {}\n", o.udp_size));
        } else {
            out.push_str(&format!("; udp: {}\n", o.udp_size));
        }
        for (code, data) in &o.options {
            match code {
                10 => {
                    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
                    // dig checks the client half against what it sent; CoreDNS echoes it unchanged and
                    // adds no server cookie, so an 8-byte cookie is "echoed".
                    let note = if data.len() == 8 { " (echoed)" } else { "" };
                    out.push_str(&format!("; COOKIE: {hex}{note}\n"));
                }
                3 => {
                    let hex: String = data.iter().map(|b| format!("{b:02x} ")).collect();
                    out.push_str(&format!("; NSID: {hex}\n"));
                }
                _ => {
                    let hex: String = data.iter().map(|b| format!("{b:02x} ")).collect();
                    if data.is_empty() {
                        out.push_str(&format!("; OPT={code}\n"));
                    } else {
                        out.push_str(&format!("; OPT={code}: {hex}\n"));
                    }
                }
            }
        }
    }
    if !m.questions.is_empty() {
        out.push_str(";; QUESTION SECTION:\n");
        for q in &m.questions {
            let mut line = String::from(";");
            let name = q.name.to_text();
            line.push_str(&name);
            let mut col = name.len(); // BIND counts columns from the name, not the ';'
            indent_to(&mut line, &mut col, 32);
            let class = wire::class_name(q.qclass);
            line.push_str(&class);
            col += class.len();
            indent_to(&mut line, &mut col, 40);
            line.push_str(&wire::type_name(q.qtype));
            line.push('\n');
            out.push_str(&line);
        }
        out.push('\n');
    }
    section(&mut out, "ANSWER", m.answers.iter().collect());
    section(&mut out, "AUTHORITY", m.authority.iter().collect());
    section(
        &mut out,
        "ADDITIONAL",
        m.additional
            .iter()
            .filter(|r| r.rtype != wire::TYPE_OPT)
            .collect(),
    );
    out.push_str(&format!(";; Query time: {query_time_ms} msec\n"));
    let proto = match transport {
        DigTransport::Udp => "UDP",
        DigTransport::Tcp => "TCP",
    };
    let from = match server {
        SocketAddr::V4(a) => format!("{}#{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("{}#{}", a.ip(), a.port()),
    };
    let userarg = args.server_arg.unwrap_or_else(|| server.ip().to_string());
    // `(UDP)`/`(TCP)` after SERVER appeared in dig 9.18 (older: `;; SERVER: 10.96.0.10#53(10.96.0.10)`).
    if version_at_least(version, 9, 18) {
        out.push_str(&format!(";; SERVER: {from}({userarg}) ({proto})\n"));
    } else {
        out.push_str(&format!(";; SERVER: {from}({userarg})\n"));
    }
    out.push_str(&format!(";; WHEN: {when}\n"));
    out.push_str(&format!(";; MSG SIZE  rcvd: {}\n", response.len()));
    out.push('\n');
    out
}

fn version_at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut it = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let ma: u32 = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let mi: u32 = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    (ma, mi) >= (major, minor)
}

fn name_no_dot(n: &Name) -> String {
    let t = n.to_text();
    if t == "." {
        t
    } else {
        t.trim_end_matches('.').to_string()
    }
}

/// BIND 9.18 `nslookup NAME [SERVER]` output for the A reply and (when the A lookup succeeded) the AAAA
/// reply, and the exit code (1 when the server could not find the name). `shown_name` is the name as
/// nslookup reports failures (the name looked up last, without the final dot).
pub fn format_nslookup(
    server_arg: &str,
    server: SocketAddr,
    shown_name: &str,
    a_response: &[u8],
    aaaa_response: Option<&[u8]>,
) -> (String, i32) {
    let mut out = String::new();
    let from = match server {
        SocketAddr::V4(a) => format!("{}#{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("{}#{}", a.ip(), a.port()),
    };
    out.push_str(&format!("Server:\t\t{server_arg}\nAddress:\t{from}\n\n"));
    let Ok((a, _)) = wire::parse_message(a_response) else {
        out.push_str(";; Got bad packet\n\n");
        return (out, 1);
    };
    let rc = a.header.rcode();
    if rc != 0 {
        out.push_str(&format!(
            "** server can't find {shown_name}: {}\n\n",
            rcode_text(rc)
        ));
        return (out, 1);
    }
    if a.header.bits & wire::FLAG_AA == 0 {
        out.push_str("Non-authoritative answer:\n");
    }
    let mut any = false;
    let mut print = |m: &Message, out: &mut String| {
        for r in &m.answers {
            any = true;
            match &r.data {
                RData::A(ip) => {
                    out.push_str(&format!("Name:\t{}\nAddress: {ip}\n", name_no_dot(&r.name)))
                }
                RData::Aaaa(ip) => {
                    out.push_str(&format!("Name:\t{}\nAddress: {ip}\n", name_no_dot(&r.name)))
                }
                RData::Cname(t) => out.push_str(&format!(
                    "{}\tcanonical name = {}\n",
                    name_no_dot(&r.name),
                    t.to_text()
                )),
                _ => out.push_str(&format!(
                    "{}\t{} = {}\n",
                    name_no_dot(&r.name),
                    wire::type_name(r.rtype).to_lowercase(),
                    rdata_text(r)
                )),
            }
        }
    };
    print(&a, &mut out);
    if let Some((b, _)) = aaaa_response.and_then(|b| wire::parse_message(b).ok()) {
        if b.header.rcode() == 0 {
            print(&b, &mut out);
        }
    }
    if !any {
        out.push_str(&format!("*** Can't find {shown_name}: No answer\n"));
    }
    out.push('\n');
    (out, 0)
}
