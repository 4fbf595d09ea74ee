//! Wire format (the "proto" layer): parse a DNS message from bytes and encode one back, with no I/O.
//!
//! Guarantee: every parse is bounds-checked and returns [`WireError`] instead of panicking, whatever the
//! input bytes; encoding writes names uncompressed unless asked to compress (as CoreDNS/miekg do only when
//! a reply would not fit the client's buffer).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("message truncated at offset {0}")]
    Truncated(usize),
    #[error("label longer than 63 bytes at offset {0}")]
    LabelTooLong(usize),
    #[error("name longer than 255 bytes")]
    NameTooLong,
    #[error("bad compression pointer at offset {0}")]
    BadPointer(usize),
    #[error("reserved label type at offset {0}")]
    BadLabelType(usize),
    #[error("malformed EDNS option")]
    BadOption,
}

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_IXFR: u16 = 251;
pub const TYPE_AXFR: u16 = 252;
pub const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u16 = 0;
pub const RCODE_FORMERR: u16 = 1;
pub const RCODE_SERVFAIL: u16 = 2;
pub const RCODE_NXDOMAIN: u16 = 3;
pub const RCODE_NOTIMP: u16 = 4;
pub const RCODE_REFUSED: u16 = 5;
pub const RCODE_BADVERS: u16 = 16;

pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;
pub const FLAG_TC: u16 = 0x0200;
pub const FLAG_RD: u16 = 0x0100;
pub const FLAG_RA: u16 = 0x0080;
pub const FLAG_AD: u16 = 0x0020;
pub const FLAG_CD: u16 = 0x0010;

/// A domain name in uncompressed wire form (length-prefixed labels, final zero byte), case as received.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Name(pub Vec<u8>);

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name(vec![0])
    }

    /// Builds a name from presentation text (`a.b.c.` or `a.b.c`); no escapes. Labels that are empty or
    /// longer than 63 bytes are rejected.
    pub fn from_text(text: &str) -> Option<Name> {
        let t = text.strip_suffix('.').unwrap_or(text);
        let mut out = Vec::with_capacity(t.len() + 2);
        if !t.is_empty() {
            for label in t.split('.') {
                let b = label.as_bytes();
                if b.is_empty() || b.len() > 63 {
                    return None;
                }
                out.push(b.len() as u8);
                out.extend_from_slice(b);
            }
        }
        out.push(0);
        if out.len() > 255 {
            return None;
        }
        Some(Name(out))
    }

    /// Builds a name from labels.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Name {
        let mut out = Vec::new();
        for l in labels {
            let l = &l[..l.len().min(63)];
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        out.push(0);
        Name(out)
    }

    /// The labels, root excluded.
    pub fn labels(&self) -> Vec<&[u8]> {
        let mut v = Vec::new();
        let mut i = 0;
        while let Some(&len) = self.0.get(i) {
            if len == 0 {
                break;
            }
            let start = i + 1;
            let end = start + len as usize;
            match self.0.get(start..end) {
                Some(l) => v.push(l),
                None => break,
            }
            i = end;
        }
        v
    }

    /// Wire length.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether this is the root name.
    pub fn is_empty(&self) -> bool {
        self.0.len() <= 1
    }

    /// Presentation form with BIND's escaping and a final dot (`.` for the root).
    pub fn to_text(&self) -> String {
        let labels = self.labels();
        if labels.is_empty() {
            return ".".to_string();
        }
        let mut s = String::new();
        for l in labels {
            for &b in l {
                match b {
                    b'.' | b'"' | b'(' | b')' | b';' | b'\\' | b'@' | b'$' => {
                        s.push('\\');
                        s.push(b as char);
                    }
                    0x21..=0x7e => s.push(b as char),
                    _ => s.push_str(&format!("\\{b:03}")),
                }
            }
            s.push('.');
        }
        s
    }
}

/// Message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub id: u16,
    /// The 16 flag bits (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode).
    pub bits: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn parse(b: &[u8]) -> Option<Header> {
        let g =
            |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])) };
        Some(Header {
            id: g(0)?,
            bits: g(2)?,
            qdcount: g(4)?,
            ancount: g(6)?,
            nscount: g(8)?,
            arcount: g(10)?,
        })
    }
    pub fn opcode(&self) -> u16 {
        (self.bits >> 11) & 0xf
    }
    pub fn rcode(&self) -> u16 {
        self.bits & 0xf
    }
}

/// A question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

/// One EDNS option (code, data), kept in the order received.
pub type EdnsOption = (u16, Vec<u8>);

/// The OPT pseudo-record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Opt {
    pub udp_size: u16,
    /// The TTL field: extended rcode (8), version (8), DO + Z (16).
    pub ttl: u32,
    pub options: Vec<EdnsOption>,
}

impl Opt {
    pub fn version(&self) -> u8 {
        (self.ttl >> 16) as u8
    }
    pub fn do_bit(&self) -> bool {
        self.ttl & 0x8000 != 0
    }
    fn rdata(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for (code, data) in &self.options {
            v.extend_from_slice(&code.to_be_bytes());
            v.extend_from_slice(&(data.len() as u16).to_be_bytes());
            v.extend_from_slice(data);
        }
        v
    }
    /// Encoded length (root owner name + fixed fields + options).
    pub fn wire_len(&self) -> usize {
        11 + self.options.iter().map(|(_, d)| 4 + d.len()).sum::<usize>()
    }
}

/// Record data, typed for the kinds the responder emits and the formatter prints; the rest stays raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(Name),
    Ptr(Name),
    Ns(Name),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    Soa {
        mname: Name,
        rname: Name,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    Txt(Vec<Vec<u8>>),
    Opt(Opt),
    Other(Vec<u8>),
}

/// A resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

/// A whole message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

impl Message {
    /// The OPT record (the last one in ADDITIONAL, as miekg's `IsEdns0`).
    pub fn opt(&self) -> Option<&Opt> {
        self.additional.iter().rev().find_map(|r| match &r.data {
            RData::Opt(o) => Some(o),
            _ => None,
        })
    }
}

/// Reads a possibly compressed name at `off`; returns the name and the offset after it.
pub fn read_name(msg: &[u8], off: usize) -> Result<(Name, usize), WireError> {
    let mut out = Vec::with_capacity(32);
    let mut pos = off;
    let mut end: Option<usize> = None;
    let mut hops = 0usize;
    loop {
        let len = *msg.get(pos).ok_or(WireError::Truncated(pos))?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    out.push(0);
                    if out.len() > 255 {
                        return Err(WireError::NameTooLong);
                    }
                    return Ok((Name(out), end.unwrap_or(pos + 1)));
                }
                let l = len as usize;
                let label = msg
                    .get(pos + 1..pos + 1 + l)
                    .ok_or(WireError::Truncated(pos))?;
                out.push(len);
                out.extend_from_slice(label);
                if out.len() > 255 {
                    return Err(WireError::NameTooLong);
                }
                pos += 1 + l;
            }
            0xc0 => {
                let lo = *msg.get(pos + 1).ok_or(WireError::Truncated(pos))?;
                let target = (((len & 0x3f) as usize) << 8) | lo as usize;
                hops += 1;
                // A pointer must point backwards; bounding hops also stops loops.
                if target >= pos || hops > 126 {
                    return Err(WireError::BadPointer(pos));
                }
                if end.is_none() {
                    end = Some(pos + 2);
                }
                pos = target;
            }
            _ => return Err(WireError::BadLabelType(pos)),
        }
    }
}

fn u16_at(msg: &[u8], off: usize) -> Result<u16, WireError> {
    match msg.get(off..off + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(WireError::Truncated(off)),
    }
}

fn u32_at(msg: &[u8], off: usize) -> Result<u32, WireError> {
    match msg.get(off..off + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(WireError::Truncated(off)),
    }
}

/// Parses the question at `off`.
pub fn read_question(msg: &[u8], off: usize) -> Result<(Question, usize), WireError> {
    let (name, off) = read_name(msg, off)?;
    let qtype = u16_at(msg, off)?;
    let qclass = u16_at(msg, off + 2)?;
    Ok((
        Question {
            name,
            qtype,
            qclass,
        },
        off + 4,
    ))
}

fn read_rdata(
    msg: &[u8],
    rtype: u16,
    class: u16,
    ttl: u32,
    start: usize,
    end: usize,
) -> Result<RData, WireError> {
    let rd = msg.get(start..end).ok_or(WireError::Truncated(start))?;
    let name_in = |off: usize| -> Result<(Name, usize), WireError> {
        let (n, o) = read_name(msg, off)?;
        if o > end {
            return Err(WireError::Truncated(off));
        }
        Ok((n, o))
    };
    Ok(match rtype {
        TYPE_A if rd.len() == 4 => RData::A(Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3])),
        TYPE_AAAA if rd.len() == 16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(rd);
            RData::Aaaa(Ipv6Addr::from(a))
        }
        TYPE_CNAME | TYPE_PTR | TYPE_NS => {
            let (n, o) = name_in(start)?;
            if o != end {
                return Ok(RData::Other(rd.to_vec()));
            }
            match rtype {
                TYPE_CNAME => RData::Cname(n),
                TYPE_PTR => RData::Ptr(n),
                _ => RData::Ns(n),
            }
        }
        TYPE_SRV if rd.len() >= 7 => {
            let (target, o) = name_in(start + 6)?;
            if o != end {
                return Ok(RData::Other(rd.to_vec()));
            }
            RData::Srv {
                priority: u16_at(msg, start)?,
                weight: u16_at(msg, start + 2)?,
                port: u16_at(msg, start + 4)?,
                target,
            }
        }
        TYPE_SOA => {
            let (mname, o) = name_in(start)?;
            let (rname, o) = name_in(o)?;
            if o + 20 != end {
                return Ok(RData::Other(rd.to_vec()));
            }
            RData::Soa {
                mname,
                rname,
                serial: u32_at(msg, o)?,
                refresh: u32_at(msg, o + 4)?,
                retry: u32_at(msg, o + 8)?,
                expire: u32_at(msg, o + 12)?,
                minimum: u32_at(msg, o + 16)?,
            }
        }
        TYPE_TXT => {
            let mut strings = Vec::new();
            let mut i = 0;
            while i < rd.len() {
                let l = rd[i] as usize;
                let s = rd
                    .get(i + 1..i + 1 + l)
                    .ok_or(WireError::Truncated(start + i))?;
                strings.push(s.to_vec());
                i += 1 + l;
            }
            RData::Txt(strings)
        }
        TYPE_OPT => {
            let mut options = Vec::new();
            let mut i = 0;
            while i < rd.len() {
                let code = u16_at(rd, i).map_err(|_| WireError::BadOption)?;
                let l = u16_at(rd, i + 2).map_err(|_| WireError::BadOption)? as usize;
                let d = rd.get(i + 4..i + 4 + l).ok_or(WireError::BadOption)?;
                options.push((code, d.to_vec()));
                i += 4 + l;
            }
            RData::Opt(Opt {
                udp_size: class,
                ttl,
                options,
            })
        }
        _ => RData::Other(rd.to_vec()),
    })
}

fn read_record(msg: &[u8], off: usize) -> Result<(Record, usize), WireError> {
    let (name, off) = read_name(msg, off)?;
    let rtype = u16_at(msg, off)?;
    let class = u16_at(msg, off + 2)?;
    let ttl = u32_at(msg, off + 4)?;
    let rdlen = u16_at(msg, off + 8)? as usize;
    let start = off + 10;
    let end = start + rdlen;
    if end > msg.len() {
        return Err(WireError::Truncated(start));
    }
    let data = read_rdata(msg, rtype, class, ttl, start, end)?;
    Ok((
        Record {
            name,
            rtype,
            class,
            ttl,
            data,
        },
        end,
    ))
}

/// Parses a whole message. Trailing bytes after the counted records are ignored (as miekg does); the
/// number of them is returned so a formatter can warn like dig.
pub fn parse_message(msg: &[u8]) -> Result<(Message, usize), WireError> {
    let header = Header::parse(msg).ok_or(WireError::Truncated(0))?;
    let mut off = 12;
    let mut m = Message {
        header,
        ..Message::default()
    };
    for _ in 0..header.qdcount {
        let (q, o) = read_question(msg, off)?;
        m.questions.push(q);
        off = o;
    }
    for (count, section) in [
        (header.ancount, &mut m.answers),
        (header.nscount, &mut m.authority),
        (header.arcount, &mut m.additional),
    ] {
        for _ in 0..count {
            let (r, o) = read_record(msg, off)?;
            section.push(r);
            off = o;
        }
    }
    Ok((m, msg.len() - off))
}

/// A message encoder: uncompressed by default; with `compress`, names in owner, CNAME/PTR/NS/SOA
/// positions are compressed (SRV targets never are, RFC 2782), as miekg/dns does.
pub struct Encoder {
    pub buf: Vec<u8>,
    compress: bool,
    seen: BTreeMap<Vec<u8>, u16>,
}

impl Encoder {
    pub fn new(compress: bool) -> Encoder {
        Encoder {
            buf: Vec::with_capacity(512),
            compress,
            seen: BTreeMap::new(),
        }
    }

    /// Drops everything written from `len` on (and the compression targets that pointed there).
    pub fn rollback(&mut self, len: usize) {
        self.buf.truncate(len);
        self.seen.retain(|_, off| (*off as usize) < len);
    }

    pub fn header(&mut self, h: &Header) {
        for v in [h.id, h.bits, h.qdcount, h.ancount, h.nscount, h.arcount] {
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
    }

    pub fn name(&mut self, n: &Name, compressible: bool) {
        if !self.compress {
            self.buf.extend_from_slice(&n.0);
            return;
        }
        let w = &n.0;
        let mut i = 0;
        while i < w.len() && w[i] != 0 {
            let suffix = &w[i..];
            if compressible {
                if let Some(&ptr) = self.seen.get(suffix) {
                    self.buf.extend_from_slice(&(0xc000 | ptr).to_be_bytes());
                    return;
                }
            }
            let here = self.buf.len();
            if here < 0x4000 {
                self.seen.entry(suffix.to_vec()).or_insert(here as u16);
            }
            let l = w[i] as usize;
            let end = (i + 1 + l).min(w.len());
            self.buf.extend_from_slice(&w[i..end]);
            i = end;
        }
        self.buf.push(0);
    }

    pub fn question(&mut self, q: &Question) {
        self.name(&q.name, true);
        self.buf.extend_from_slice(&q.qtype.to_be_bytes());
        self.buf.extend_from_slice(&q.qclass.to_be_bytes());
    }

    pub fn record(&mut self, r: &Record) {
        self.name(&r.name, true);
        self.buf.extend_from_slice(&r.rtype.to_be_bytes());
        let (class, ttl) = match &r.data {
            RData::Opt(o) => (o.udp_size, o.ttl),
            _ => (r.class, r.ttl),
        };
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        match &r.data {
            RData::A(a) => self.buf.extend_from_slice(&a.octets()),
            RData::Aaaa(a) => self.buf.extend_from_slice(&a.octets()),
            RData::Cname(n) | RData::Ptr(n) | RData::Ns(n) => self.name(n, true),
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                for v in [*priority, *weight, *port] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
                self.name(target, false);
            }
            RData::Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            } => {
                self.name(mname, true);
                self.name(rname, true);
                for v in [*serial, *refresh, *retry, *expire, *minimum] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
            }
            RData::Txt(strings) => {
                for s in strings {
                    let s = &s[..s.len().min(255)];
                    self.buf.push(s.len() as u8);
                    self.buf.extend_from_slice(s);
                }
            }
            RData::Opt(o) => self.buf.extend_from_slice(&o.rdata()),
            RData::Other(b) => self.buf.extend_from_slice(b),
        }
        let rdlen = (self.buf.len() - len_at - 2).min(u16::MAX as usize) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }
}

/// Encodes a message, uncompressed or compressed.
pub fn encode(m: &Message, compress: bool) -> Vec<u8> {
    let mut e = Encoder::new(compress);
    let mut h = m.header;
    h.qdcount = m.questions.len() as u16;
    h.ancount = m.answers.len() as u16;
    h.nscount = m.authority.len() as u16;
    h.arcount = m.additional.len() as u16;
    e.header(&h);
    for q in &m.questions {
        e.question(q);
    }
    for r in m.answers.iter().chain(&m.authority).chain(&m.additional) {
        e.record(r);
    }
    e.buf
}

/// The OPT record wrapped as a [`Record`].
pub fn opt_record(o: Opt) -> Record {
    Record {
        name: Name::root(),
        rtype: TYPE_OPT,
        class: o.udp_size,
        ttl: o.ttl,
        data: RData::Opt(o),
    }
}

/// Mnemonic of a type, or `TYPEnnn` (RFC 3597) as BIND prints unknown types.
pub fn type_name(t: u16) -> String {
    let s = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        257 => "CAA",
        _ => return format!("TYPE{t}"),
    };
    s.to_string()
}

/// Type from a mnemonic (case-insensitive) or `TYPEnnn`.
pub fn type_from_name(s: &str) -> Option<u16> {
    let u = s.to_ascii_uppercase();
    if let Some(n) = u.strip_prefix("TYPE") {
        return n.parse().ok();
    }
    (1..=257u16).find(|&t| type_name(t) == u)
}

/// Class mnemonic as BIND prints it.
pub fn class_name(c: u16) -> String {
    match c {
        1 => "IN".to_string(),
        3 => "CH".to_string(),
        4 => "HS".to_string(),
        254 => "NONE".to_string(),
        255 => "ANY".to_string(),
        _ => format!("CLASS{c}"),
    }
}
