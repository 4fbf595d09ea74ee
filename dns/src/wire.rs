//! Wire format (the "proto" layer), on hickory-proto: bytes are decoded with hickory's `BinDecoder`
//! (header, questions, records, names with compression pointers, rdata, EDNS options) and encoded with
//! its `BinEncoder`; this module keeps only the crate's plain view of a message ([`Message`],
//! [`Record`], [`RData`], [`Opt`]) that the responder builds and the dig formatter reads, and the
//! conversions between that view and hickory's types.
//!
//! Guarantee: decoding is bounds-checked by hickory and returns [`WireError`] instead of panicking,
//! whatever the input bytes; encoding writes names uncompressed unless asked to compress (as
//! CoreDNS/miekg do only when a reply would not fit the client's buffer).
//!
//! Two details hickory's public API cannot express are done by hand here, each in one small,
//! documented function: the EDNS UDP payload size below 512 (hickory clamps it to 512 on both decode
//! and encode; CoreDNS echoes the client's value as sent) — see [`opt_class_at`] and [`patch_opt_class`]
//! — and noticing an OPT whose option list is malformed (hickory drops the options with a warning;
//! miekg, and so CoreDNS, answer FORMERR) — see [`opt_rdlength_at`].

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{self as hop, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption as HEdnsOption, OPT};
use hickory_proto::rr::rdata::{self as hrd, NULL, SOA, SRV, TXT};
use hickory_proto::rr::{self as hrr, DNSClass, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding,
};
use hickory_proto::ProtoError;

/// Why a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// hickory's decoder rejected the bytes (truncation, bad label or pointer, name too long, rdata
    /// that does not match its length, …); the text is hickory's.
    #[error("{0}")]
    Malformed(String),
    #[error("malformed EDNS option")]
    BadOption,
}

impl From<hickory_proto::serialize::binary::DecodeError> for WireError {
    fn from(e: hickory_proto::serialize::binary::DecodeError) -> Self {
        WireError::Malformed(e.to_string())
    }
}

impl From<ProtoError> for WireError {
    fn from(e: ProtoError) -> Self {
        WireError::Malformed(e.to_string())
    }
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
    /// Reads the 12-byte header with hickory's decoder; `None` if fewer than 12 bytes. (The Z bit is
    /// not kept: hickory's header has no field for it, and nothing here reads it.)
    pub fn parse(b: &[u8]) -> Option<Header> {
        let h = hop::Header::read(&mut BinDecoder::new(b)).ok()?;
        Some(Header::from_hickory(&h))
    }

    /// The view of a hickory header (flag bits rebuilt, counts as on the wire).
    pub fn from_hickory(h: &hop::Header) -> Header {
        let m = &h.metadata;
        let mut bits = (u16::from(u8::from(m.op_code)) & 0xf) << 11;
        bits |= u16::from(m.response_code.low());
        for (on, bit) in [
            (m.message_type == MessageType::Response, FLAG_QR),
            (m.authoritative, FLAG_AA),
            (m.truncation, FLAG_TC),
            (m.recursion_desired, FLAG_RD),
            (m.recursion_available, FLAG_RA),
            (m.authentic_data, FLAG_AD),
            (m.checking_disabled, FLAG_CD),
        ] {
            if on {
                bits |= bit;
            }
        }
        Header {
            id: h.metadata.id,
            bits,
            qdcount: h.counts.queries,
            ancount: h.counts.answers,
            nscount: h.counts.authorities,
            arcount: h.counts.additionals,
        }
    }

    /// hickory's metadata for these bits; `rcode_high` is the extended rcode from the OPT, if any.
    pub fn metadata(&self, rcode_high: u8) -> Metadata {
        let b = self.bits;
        let kind = if b & FLAG_QR != 0 {
            MessageType::Response
        } else {
            MessageType::Query
        };
        let mut m = Metadata::new(self.id, kind, OpCode::from_u8(self.opcode() as u8));
        m.authoritative = b & FLAG_AA != 0;
        m.truncation = b & FLAG_TC != 0;
        m.recursion_desired = b & FLAG_RD != 0;
        m.recursion_available = b & FLAG_RA != 0;
        m.authentic_data = b & FLAG_AD != 0;
        m.checking_disabled = b & FLAG_CD != 0;
        m.response_code = ResponseCode::from(rcode_high, self.rcode() as u8);
        m
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

impl Name {
    /// The hickory name with the same labels (case kept). Fails only for a name hickory refuses
    /// (longer than 255 bytes).
    pub fn to_hickory(&self) -> Result<hrr::Name, ProtoError> {
        // Labels of 1..=63 bytes up to the root byte read by hickory's name decoder give the same
        // name as `from_labels` (both add the labels through the same 255-byte check), without
        // `from_labels`'s per-label allocations; anything else, or a name the decoder refuses, goes
        // through `from_labels` for its result and error.
        if self.is_plain_wire() {
            if let Ok(n) = hrr::Name::read(&mut BinDecoder::new(&self.0)) {
                return Ok(n);
            }
        }
        hrr::Name::from_labels(self.labels())
    }

    /// Whether the bytes start with labels of at most 63 bytes ending in the root byte (no pointers,
    /// nothing cut short).
    fn is_plain_wire(&self) -> bool {
        let mut i = 0;
        while let Some(&l) = self.0.get(i) {
            if l == 0 {
                return true;
            }
            if l > 63 {
                return false;
            }
            i += 1 + l as usize;
        }
        false
    }

    /// [`Name::to_hickory`] through `cache`: a name already converted for this message is cloned
    /// (owner names repeat: every A record of an answer carries the question's name).
    fn to_hickory_in<'a>(&'a self, cache: &mut NameCache<'a>) -> Result<hrr::Name, ProtoError> {
        cache.get(self)
    }

    /// The view of a hickory name: its labels as they are, case kept.
    pub fn from_hickory(n: &hrr::Name) -> Name {
        Name::from_labels(n.iter())
    }
}

/// hickory names already built for one message, keyed by the exact wire bytes (case kept), most
/// recent last. Bounded, so a message of many distinct names costs a few comparisons per name.
#[derive(Default)]
struct NameCache<'a> {
    entries: Vec<(&'a [u8], hrr::Name)>,
}

impl<'a> NameCache<'a> {
    const CAP: usize = 8;

    fn get(&mut self, n: &'a Name) -> Result<hrr::Name, ProtoError> {
        let key = n.0.as_slice();
        if let Some((_, h)) = self.entries.iter().rev().find(|(k, _)| *k == key) {
            return Ok(h.clone());
        }
        let h = n.to_hickory()?;
        if self.entries.len() >= Self::CAP {
            self.entries.remove(0);
        }
        self.entries.push((key, h.clone()));
        Ok(h)
    }
}

impl Question {
    fn from_hickory(q: &Query) -> Question {
        Question {
            name: Name::from_hickory(q.name()),
            qtype: u16::from(q.query_type()),
            qclass: u16::from(q.query_class()),
        }
    }

    fn to_hickory_in<'a>(&'a self, cache: &mut NameCache<'a>) -> Result<Query, ProtoError> {
        let mut q = Query::query(
            self.name.to_hickory_in(cache)?,
            RecordType::from(self.qtype),
        );
        q.set_query_class(DNSClass::from(self.qclass));
        Ok(q)
    }
}

impl Opt {
    /// hickory's EDNS for this OPT. Options go over as opaque (code, bytes) pairs, in order.
    /// hickory stores the payload size clamped to 512: see [`patch_opt_class`].
    fn to_hickory(&self) -> hop::Edns {
        let options = self
            .options
            .iter()
            .map(|(code, data)| {
                (
                    EdnsCode::from(*code),
                    HEdnsOption::Unknown(*code, data.clone()),
                )
            })
            .collect();
        let mut rec = hrr::Record::from_rdata(
            hrr::Name::root(),
            self.ttl,
            hrr::RData::OPT(OPT::new(options)),
        );
        rec.dns_class = DNSClass::for_opt(self.udp_size);
        hop::Edns::from(&rec)
    }
}

/// Rdata bytes of a record kind the view does not type, re-encoded by hickory (names uncompressed).
fn rdata_bytes(data: &hrr::RData) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    if data.emit(&mut enc).is_err() {
        return Vec::new();
    }
    buf
}

impl RData {
    fn from_hickory(data: &hrr::RData) -> RData {
        match data {
            hrr::RData::A(a) => RData::A(a.0),
            hrr::RData::AAAA(a) => RData::Aaaa(a.0),
            hrr::RData::CNAME(n) => RData::Cname(Name::from_hickory(&n.0)),
            hrr::RData::PTR(n) => RData::Ptr(Name::from_hickory(&n.0)),
            hrr::RData::NS(n) => RData::Ns(Name::from_hickory(&n.0)),
            hrr::RData::SRV(s) => RData::Srv {
                priority: s.priority,
                weight: s.weight,
                port: s.port,
                target: Name::from_hickory(&s.target),
            },
            hrr::RData::SOA(s) => RData::Soa {
                mname: Name::from_hickory(&s.mname),
                rname: Name::from_hickory(&s.rname),
                serial: s.serial,
                refresh: s.refresh as u32,
                retry: s.retry as u32,
                expire: s.expire as u32,
                minimum: s.minimum,
            },
            hrr::RData::TXT(t) => RData::Txt(t.txt_data.iter().map(|s| s.to_vec()).collect()),
            hrr::RData::Update0(RecordType::TXT) => RData::Txt(Vec::new()),
            hrr::RData::Update0(_) => RData::Other(Vec::new()),
            hrr::RData::Unknown { rdata, .. } | hrr::RData::NULL(rdata) => {
                RData::Other(rdata.anything.clone())
            }
            other => RData::Other(rdata_bytes(other)),
        }
    }

    fn to_hickory_in<'a>(&'a self, rtype: u16, cache: &mut NameCache<'a>) -> hrr::RData {
        match self {
            RData::A(a) => hrr::RData::A(hrd::A(*a)),
            RData::Aaaa(a) => hrr::RData::AAAA(hrd::AAAA(*a)),
            RData::Cname(n) | RData::Ptr(n) | RData::Ns(n) => {
                let Ok(n) = n.to_hickory_in(cache) else {
                    return unknown(rtype, n.0.clone());
                };
                match self {
                    RData::Cname(_) => hrr::RData::CNAME(hrd::CNAME(n)),
                    RData::Ptr(_) => hrr::RData::PTR(hrd::PTR(n)),
                    _ => hrr::RData::NS(hrd::NS(n)),
                }
            }
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => match target.to_hickory_in(cache) {
                Ok(t) => hrr::RData::SRV(SRV::new(*priority, *weight, *port, t)),
                Err(_) => unknown(rtype, Vec::new()),
            },
            RData::Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            } => match (mname.to_hickory_in(cache), rname.to_hickory_in(cache)) {
                (Ok(m), Ok(r)) => hrr::RData::SOA(SOA::new(
                    m,
                    r,
                    *serial,
                    *refresh as i32,
                    *retry as i32,
                    *expire as i32,
                    *minimum,
                )),
                _ => unknown(rtype, Vec::new()),
            },
            RData::Txt(strings) => hrr::RData::TXT(TXT::from_bytes(
                strings.iter().map(|s| &s[..s.len().min(255)]).collect(),
            )),
            RData::Opt(o) => hrr::RData::OPT(OPT::new(
                o.options
                    .iter()
                    .map(|(c, d)| (EdnsCode::from(*c), HEdnsOption::Unknown(*c, d.clone())))
                    .collect(),
            )),
            RData::Other(b) => unknown(rtype, b.clone()),
        }
    }
}

/// Raw rdata of type `rtype`, as hickory carries types it does not know.
fn unknown(rtype: u16, bytes: Vec<u8>) -> hrr::RData {
    let mut null = NULL::new();
    null.anything = bytes;
    hrr::RData::Unknown {
        code: RecordType::from(rtype),
        rdata: null,
    }
}

impl Record {
    fn from_hickory(r: &hrr::Record) -> Record {
        Record {
            name: Name::from_hickory(&r.name),
            rtype: u16::from(r.record_type()),
            class: u16::from(r.dns_class),
            ttl: r.ttl,
            data: RData::from_hickory(&r.data),
        }
    }

    /// hickory's record. A name hickory refuses (over 255 bytes) is an error.
    pub fn to_hickory(&self) -> Result<hrr::Record, ProtoError> {
        self.to_hickory_in(&mut NameCache::default())
    }

    fn to_hickory_in<'a>(&'a self, cache: &mut NameCache<'a>) -> Result<hrr::Record, ProtoError> {
        let mut rec = hrr::Record::from_rdata(
            self.name.to_hickory_in(cache)?,
            self.ttl,
            self.data.to_hickory_in(self.rtype, cache),
        );
        rec.dns_class = DNSClass::from(self.class);
        Ok(rec)
    }
}

/// Hand-written (hickory cannot do it): the CLASS field of an OPT record that starts at `start`, as
/// sent. hickory's record decoder turns it into `DNSClass::for_opt`, which raises anything below 512
/// to 512 (RFC 6891 says to *treat* it so), but CoreDNS echoes the client's number unchanged and dig
/// prints the number received. The OPT owner is the root (hickory has checked that), written as one
/// zero byte or as a 2-byte pointer.
fn opt_class_at(msg: &[u8], start: usize) -> Option<(u16, usize)> {
    let name_len = if *msg.get(start)? == 0 { 1 } else { 2 };
    let at = start + name_len + 2;
    let class = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
    Some((class, at))
}

/// Hand-written (hickory cannot do it): the RDLENGTH of the OPT whose CLASS is at `class_at`. hickory's
/// OPT decoder, given an option list that does not add up to the rdata, logs a warning and returns
/// no options; miekg (so CoreDNS) rejects such a message, so the caller compares this length with
/// the options hickory returned.
fn opt_rdlength_at(msg: &[u8], class_at: usize) -> Option<usize> {
    let at = class_at + 6;
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]) as usize)
}

/// Parses a whole message with hickory's decoder. Trailing bytes after the counted records are
/// ignored (as miekg does); the number of them is returned so a formatter can warn like dig. Records
/// stay in arrival order, the OPT included (the last OPT counts, as miekg's `IsEdns0`).
pub fn parse_message(msg: &[u8]) -> Result<(Message, usize), WireError> {
    let mut d = BinDecoder::new(msg);
    let h = hop::Header::read(&mut d)?;
    let mut m = Message {
        header: Header::from_hickory(&h),
        ..Message::default()
    };
    for _ in 0..h.counts.queries {
        m.questions
            .push(Question::from_hickory(&Query::read(&mut d)?));
    }
    for (count, section) in [
        (h.counts.answers, &mut m.answers),
        (h.counts.authorities, &mut m.authority),
        (h.counts.additionals, &mut m.additional),
    ] {
        for _ in 0..count {
            let start = d.index();
            let rec = hrr::Record::read(&mut d)?;
            let r = match &rec.data {
                hrr::RData::OPT(_) | hrr::RData::Update0(RecordType::OPT) => {
                    let (udp_size, class_at) =
                        opt_class_at(msg, start).ok_or(WireError::BadOption)?;
                    let rdlength = opt_rdlength_at(msg, class_at).ok_or(WireError::BadOption)?;
                    let options: Vec<HEdnsOption> = match &rec.data {
                        hrr::RData::OPT(o) => o.options.iter().map(|(_, v)| v.clone()).collect(),
                        _ => Vec::new(),
                    };
                    let mut opts = Vec::with_capacity(options.len());
                    for o in &options {
                        let data = Vec::<u8>::try_from(o).map_err(|_| WireError::BadOption)?;
                        opts.push((u16::from(EdnsCode::from(o)), data));
                    }
                    if opts.iter().map(|(_, d)| 4 + d.len()).sum::<usize>() != rdlength {
                        return Err(WireError::BadOption);
                    }
                    opt_record(Opt {
                        udp_size,
                        ttl: rec.ttl,
                        options: opts,
                    })
                }
                _ => Record::from_hickory(&rec),
            };
            section.push(r);
        }
    }
    Ok((m, d.len()))
}

/// The question at `off` (used to echo it in a FORMERR when the rest does not parse).
pub fn read_question(msg: &[u8], off: usize) -> Result<(Question, usize), WireError> {
    let off16 = u16::try_from(off).map_err(|_| WireError::Malformed("offset".into()))?;
    if off > msg.len() {
        return Err(WireError::Malformed("offset past the end".into()));
    }
    let mut d = BinDecoder::new(msg).clone(off16);
    let q = Query::read(&mut d)?;
    Ok((Question::from_hickory(&q), d.index()))
}

impl Message {
    /// hickory's message for this view. The OPT (the last one) becomes hickory's [`hop::Edns`], which
    /// hickory writes last in ADDITIONAL with the extended rcode taken from the message's rcode.
    pub fn to_hickory(&self) -> Result<hop::Message, ProtoError> {
        let opt = self.opt();
        let rcode_high = opt.map_or(0, |o| (o.ttl >> 24) as u8);
        let h = &self.header;
        let md = h.metadata(rcode_high);
        let mut m = hop::Message::new(md.id, md.message_type, md.op_code);
        m.metadata = md;
        let mut cache = NameCache::default();
        m.queries.reserve_exact(self.questions.len());
        for q in &self.questions {
            m.queries.push(q.to_hickory_in(&mut cache)?);
        }
        m.answers.reserve_exact(self.answers.len());
        for r in &self.answers {
            m.answers.push(r.to_hickory_in(&mut cache)?);
        }
        m.authorities.reserve_exact(self.authority.len());
        for r in &self.authority {
            m.authorities.push(r.to_hickory_in(&mut cache)?);
        }
        m.additionals.reserve_exact(self.additional.len());
        for r in &self.additional {
            if r.rtype != TYPE_OPT {
                m.additionals.push(r.to_hickory_in(&mut cache)?);
            }
        }
        m.edns = opt.map(Opt::to_hickory);
        Ok(m)
    }
}

/// Hand-written (hickory cannot do it): write the OPT's payload size as given when it is below 512,
/// which hickory's encoder raises to 512 (see [`opt_class_at`]). hickory writes the OPT last, so its
/// CLASS sits right before TTL (4), RDLENGTH (2) and the options at the end of `buf`.
fn patch_opt_class(buf: &mut [u8], o: &Opt) {
    if o.udp_size >= 512 {
        return;
    }
    let at = buf.len().checked_sub(o.wire_len() - 3);
    if let Some(at) = at {
        if at >= 3 && buf[at - 3..at] == [0, 0, TYPE_OPT as u8] {
            buf[at..at + 2].copy_from_slice(&o.udp_size.to_be_bytes());
        }
    }
}

/// Writes `m` with hickory's encoder, uncompressed or compressed (hickory compresses owner names and
/// the names in CNAME/PTR/NS/SOA rdata, never SRV targets, as miekg does).
///
/// Known difference from miekg in compressed mode: hickory compresses at most 120 names per message
/// and keeps at most 64 suffixes to point at (its guard against CVE-2024-8508, after Unbound), while
/// miekg has no such caps. Replies with fewer names come out byte for byte as miekg's; bigger ones
/// (over ~118 A records, or SRV answers with more than ~10 targets) are larger than CoreDNS's, so a
/// truncated one holds fewer records.
fn emit(m: &hop::Message, compress: bool, max: u16) -> Result<Vec<u8>, ProtoError> {
    let mut buf = Vec::with_capacity(512);
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_max_size(max);
    if !compress {
        enc.set_name_encoding(NameEncoding::Uncompressed);
    }
    m.emit(&mut enc)?;
    Ok(buf)
}

/// Encodes a message, uncompressed or compressed, with hickory's encoder. Never fails: a message
/// hickory refuses to write (a name over 255 bytes, or over 65535 bytes in all) comes out as a
/// header-only SERVFAIL with the same id, opcode and flags.
pub fn encode(m: &Message, compress: bool) -> Vec<u8> {
    let out = m.to_hickory().and_then(|hm| emit(&hm, compress, u16::MAX));
    finish(m, out)
}

/// The bytes of `m` once hickory has written it (`out`): the OPT's small payload size patched in, or
/// on an error the header-only SERVFAIL of [`encode`].
fn finish(m: &Message, out: Result<Vec<u8>, ProtoError>) -> Vec<u8> {
    match out {
        Ok(mut buf) => {
            if let Some(o) = m.opt() {
                patch_opt_class(&mut buf, o);
            }
            buf
        }
        Err(_) => {
            let mut h = m.header;
            h.bits = (h.bits & !0xf) | RCODE_SERVFAIL;
            let mut md = h.metadata(0);
            md.truncation = false;
            let header = hop::Header {
                metadata: md,
                counts: hop::HeaderCounts::default(),
            };
            let mut buf = Vec::with_capacity(12);
            let _ = header.emit(&mut BinEncoder::new(&mut buf));
            buf
        }
    }
}

/// How many records of each section (answer, authority, additional) fit in `budget` bytes when `m`
/// is written compressed, filling the sections in order and stopping at the first record that does
/// not fit (miekg's `Msg.Truncate`). hickory's encoder writes each record and is rolled back to
/// before it when it went past the budget. (Its own size limit is not used for this: hickory writes a
/// name in full before replacing it with a pointer, so a limit refuses records whose compressed form
/// would still fit.) The OPT is not counted.
pub fn fit_compressed(m: &Message, budget: usize) -> [usize; 3] {
    match m.to_hickory() {
        Ok(hm) => fit_hickory(&hm, budget),
        Err(_) => [0; 3],
    }
}

/// [`fit_compressed`] on hickory's message.
fn fit_hickory(hm: &hop::Message, budget: usize) -> [usize; 3] {
    let mut kept = [0usize; 3];
    let mut buf = Vec::with_capacity(budget.min(65535));
    let mut enc = BinEncoder::new(&mut buf);
    // The header's content does not matter for sizes; its 12 bytes do, for the name offsets.
    if enc.emit_vec(&[0; 12]).is_err() || enc.emit_all(hm.queries.iter()).is_err() {
        return kept;
    }
    let mut full = enc.len() >= budget;
    for (i, section) in [&hm.answers, &hm.authorities, &hm.additionals]
        .into_iter()
        .enumerate()
    {
        for r in section {
            if full {
                break;
            }
            let before = enc.offset();
            if r.emit(&mut enc).is_err() || enc.len() > budget {
                enc.set_offset(before);
                enc.trim();
                full = true;
                break;
            }
            kept[i] += 1;
            full = enc.len() == budget;
        }
    }
    kept
}

/// The length hickory writes a name in: its labels (as [`Name::labels`] reads them) and the root.
fn name_wire_len(n: &Name) -> usize {
    let mut i = 0;
    let mut len = 1;
    while let Some(&l) = n.0.get(i) {
        let end = i + 1 + l as usize;
        if l == 0 || end > n.0.len() {
            break;
        }
        len += 1 + l as usize;
        i = end;
    }
    len
}

/// The exact length of `m` written uncompressed by hickory, when every record is an A or AAAA and the
/// OPT (if any) is the last and only one; `None` otherwise (then it is not predicted, only written).
fn plain_len(m: &Message) -> Option<usize> {
    let mut len = 12;
    for q in &m.questions {
        len += name_wire_len(&q.name) + 4;
    }
    let n_add = m.additional.len();
    for (i, r) in m
        .answers
        .iter()
        .chain(&m.authority)
        .chain(&m.additional)
        .enumerate()
    {
        len += match &r.data {
            RData::A(_) if r.rtype == TYPE_A => name_wire_len(&r.name) + 10 + 4,
            RData::Aaaa(_) if r.rtype == TYPE_AAAA => name_wire_len(&r.name) + 10 + 16,
            RData::Opt(o)
                if r.rtype == TYPE_OPT
                    && n_add > 0
                    && i + 1 == m.answers.len() + m.authority.len() + n_add =>
            {
                o.wire_len()
            }
            _ => return None,
        };
    }
    Some(len)
}

/// CoreDNS's `ScrubWriter` fit, with one conversion to hickory: `m` with `opt` (if any) added last
/// to ADDITIONAL is written uncompressed; if that is over `size` bytes the sections are cut to what
/// fits compressed in `size` minus the OPT (miekg `Msg.Truncate`, TC set if anything was left out) and
/// the result is written compressed; if it fits but is over `compress_over` bytes it is written
/// compressed. `m` ends as sent, OPT included. The bytes are those of [`encode`] and
/// [`fit_compressed`] used in that order on the view.
pub(crate) fn encode_scrubbed(
    m: &mut Message,
    opt: Option<Opt>,
    size: usize,
    compress_over: usize,
) -> Vec<u8> {
    // hickory's message leaves every OPT out of ADDITIONAL, so it stands for the view cut below only
    // when `opt` is the one OPT (always so in a reply the responder builds); else convert each time.
    let other_opt = m.additional.iter().any(|r| r.rtype == TYPE_OPT);
    let opt_len = opt.as_ref().map_or(0, Opt::wire_len);
    if let Some(o) = opt.clone() {
        m.additional.push(opt_record(o));
    }
    let hm = match m.to_hickory() {
        Ok(hm) => hm,
        Err(e) => return finish(m, Err(e)),
    };
    // The uncompressed bytes only matter when they fit; skip writing them when they surely do not.
    let over = plain_len(m).is_some_and(|n| n > size && n <= usize::from(u16::MAX));
    let plain = if over {
        Vec::new()
    } else {
        finish(m, emit(&hm, false, u16::MAX))
    };
    if !over && plain.len() <= size {
        if plain.len() > compress_over {
            return finish(m, emit(&hm, true, u16::MAX));
        }
        return plain;
    }
    if opt.is_some() {
        m.additional.pop();
    }
    let budget = size.saturating_sub(opt_len);
    let kept = if other_opt {
        fit_compressed(m, budget)
    } else {
        fit_hickory(&hm, budget)
    };
    let truncated =
        kept[0] < m.answers.len() || kept[1] < m.authority.len() || kept[2] < m.additional.len();
    m.answers.truncate(kept[0]);
    m.authority.truncate(kept[1]);
    m.additional.truncate(kept[2]);
    if truncated {
        m.header.bits |= FLAG_TC;
    }
    if let Some(o) = opt {
        m.additional.push(opt_record(o));
    }
    if other_opt {
        return encode(m, true);
    }
    let mut hm = hm;
    hm.answers.truncate(kept[0]);
    hm.authorities.truncate(kept[1]);
    hm.additionals.truncate(kept[2]);
    hm.metadata.truncation = m.header.bits & FLAG_TC != 0;
    finish(m, emit(&hm, true, u16::MAX))
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
