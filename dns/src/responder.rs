//! The responder (the "server" layer): one query's bytes + a [`Snapshot`] → an [`Outcome`], with the
//! semantics of CoreDNS's kubernetes plugin behind kubeadm's Corefile (§6 of the reference).
//!
//! Guarantee: pure and total. No I/O, no clock, no randomness; the same snapshot and bytes always give the
//! same outcome, and no input bytes can make it panic. Malformed queries get FORMERR, other opcodes
//! NOTIMP, responses and header-less garbage are dropped — the choices miekg/dns makes for CoreDNS.

use std::net::IpAddr;

use crate::snapshot::{Port, Snapshot, SvcKind};
use crate::wire::{self, Header, Message, Name, Opt, Question, RData, Record};

/// How the query arrived; decides the reply size limit (CoreDNS `request.Size`/`Scrub`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: the limit is the client's EDNS buffer size (at least 512); a reply over 1480 bytes (IPv4)
    /// or 1220 bytes (IPv6) is compressed to avoid fragmentation.
    Udp { ipv6: bool },
    /// TCP: up to 65535 bytes.
    Tcp,
}

/// What the server does with a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours (outside the cluster zone, or a reverse name the plugin falls through on): hand the
    /// query to the next plugin — kubeadm's Corefile forwards to the node's resolv.conf.
    Forward,
    /// Send nothing (a response, or fewer than 12 bytes): miekg/dns lets such clients hang.
    Drop,
}

/// CoreDNS's answer for the name: records, or which negative answer.
enum Resolution {
    Records {
        answer: Vec<Record>,
        extra: Vec<Record>,
    },
    NoData,
    NxDomain,
    Refused,
    Forward,
}

/// A "name error" in the plugin (errNoItems / errNsNotExposed / errInvalidRequest).
#[derive(Debug)]
struct NameError;

enum Host {
    Ip(IpAddr),
    Cname(String),
}

/// CoreDNS's `msg.Service`: a host, a port and the key the SRV target is derived from.
struct Entry {
    host: Host,
    port: i32,
    /// Target name for SRV (`msg.Domain(key)`).
    key: Name,
}

/// The zone the query fell in, with the query's case kept.
struct Zone<'q> {
    /// Zone labels as written in the query.
    labels: Vec<&'q [u8]>,
    reverse: bool,
}

const DNS_SCHEMA_VERSION: &str = "1.1.0";
const SUPPORTED_OPTIONS: [u16; 5] = [3, 9, 10, 11, 12]; // NSID, EXPIRE, COOKIE, TCP-KEEPALIVE, PADDING

fn lower(l: &[u8]) -> Vec<u8> {
    l.to_ascii_lowercase()
}

fn eq_ic(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn strip_underscore(s: &[u8]) -> &[u8] {
    s.strip_prefix(b"_").unwrap_or(s)
}

fn match_port(req_port: &[u8], req_proto: &[u8], p: &Port) -> bool {
    (req_port.is_empty() || eq_ic(req_port, p.name.as_bytes()))
        && (req_proto.is_empty() || eq_ic(req_proto, p.protocol.as_bytes()))
}

/// `Name::from_labels` of the prefix then the zone, in a buffer of the final size.
fn name_with_zone(prefix: &[&[u8]], zone: &Zone<'_>) -> Name {
    let labels = prefix.iter().chain(zone.labels.iter());
    let len = 1 + labels.clone().map(|l| 1 + l.len().min(63)).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    for l in labels {
        let l = &l[..l.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
    Name(out)
}

fn reply_header(q: &Header, rcode: u16, aa: bool) -> Header {
    // miekg SetReply: id, QR, opcode; RD and CD copied for QUERY.
    let mut bits = wire::FLAG_QR | (q.bits & (0xf << 11)) | (rcode & 0xf);
    if q.opcode() == 0 {
        bits |= q.bits & (wire::FLAG_RD | wire::FLAG_CD);
    }
    if aa {
        bits |= wire::FLAG_AA;
    }
    Header {
        id: q.id,
        bits,
        ..Header::default()
    }
}

impl Snapshot {
    /// Answers one query (the bytes of a DNS message) as the cluster DNS would.
    pub fn answer(&self, query: &[u8], transport: Transport) -> Outcome {
        let Some(h) = Header::parse(query) else {
            return Outcome::Drop;
        };
        if h.bits & wire::FLAG_QR != 0 {
            return Outcome::Drop;
        }
        if h.opcode() != 0 {
            let mut hh = reply_header(&h, wire::RCODE_NOTIMP, false);
            hh.bits &= !(wire::FLAG_RD | wire::FLAG_CD);
            return Outcome::Reply(wire::encode(
                &Message {
                    header: hh,
                    ..Message::default()
                },
                false,
            ));
        }
        if h.qdcount != 1 || h.ancount > 1 || h.nscount > 1 || h.arcount > 2 {
            let hh = reply_header(&h, wire::RCODE_FORMERR, false);
            return Outcome::Reply(wire::encode(
                &Message {
                    header: hh,
                    ..Message::default()
                },
                false,
            ));
        }
        let msg = match wire::parse_message(query) {
            Ok((m, _)) => m,
            Err(_) => {
                let questions = wire::read_question(query, 12)
                    .map(|(q, _)| vec![q])
                    .unwrap_or_default();
                let hh = reply_header(&h, wire::RCODE_FORMERR, false);
                return Outcome::Reply(wire::encode(
                    &Message {
                        header: hh,
                        questions,
                        ..Message::default()
                    },
                    false,
                ));
            }
        };
        let Some(q) = msg.questions.first() else {
            return Outcome::Drop;
        };
        let req_opt = msg.opt();
        if let Some(o) = req_opt {
            if o.version() != 0 {
                let reply = Message {
                    header: reply_header(&h, wire::RCODE_BADVERS, false),
                    questions: vec![q.clone()],
                    additional: vec![wire::opt_record(Opt {
                        udp_size: o.udp_size,
                        ttl: (1 << 24) | (o.ttl & 0x8000),
                        options: Vec::new(),
                    })],
                    ..Message::default()
                };
                return Outcome::Reply(wire::encode(&reply, false));
            }
        }
        let (rcode, aa, answer, authority, extra) = match self.resolve(q) {
            Resolution::Forward => return Outcome::Forward,
            Resolution::Refused => (wire::RCODE_REFUSED, false, vec![], vec![], vec![]),
            Resolution::Records { answer, extra } => {
                (wire::RCODE_NOERROR, true, answer, vec![], extra)
            }
            Resolution::NoData => (wire::RCODE_NOERROR, true, vec![], self.soa(q), vec![]),
            Resolution::NxDomain => (wire::RCODE_NXDOMAIN, true, vec![], self.soa(q), vec![]),
        };
        let mut reply = Message {
            header: reply_header(&h, rcode, aa),
            questions: vec![q.clone()],
            answers: answer,
            authority,
            additional: extra,
        };
        // SizeAndDo: reuse the client's OPT: version 0, flags but DO (and the top Z bits) cleared,
        // only the options CoreDNS supports, in the order sent.
        let opt = req_opt.map(|o| Opt {
            udp_size: o.udp_size,
            ttl: o.ttl & 0xff00,
            options: o
                .options
                .iter()
                .filter(|(c, _)| SUPPORTED_OPTIONS.contains(c))
                .cloned()
                .collect(),
        });
        Outcome::Reply(scrub(&mut reply, opt, transport))
    }

    /// The negative-answer SOA for the zone the question fell in (§6.13).
    fn soa(&self, q: &Question) -> Vec<Record> {
        let Some(zone) = self.zone_of(q) else {
            return vec![];
        };
        vec![self.soa_record(&zone)]
    }

    fn soa_record(&self, zone: &Zone<'_>) -> Record {
        let ttl = self.cfg.ttl;
        Record {
            name: name_with_zone(&[], zone),
            rtype: wire::TYPE_SOA,
            class: wire::CLASS_IN,
            ttl: ttl.min(300),
            data: RData::Soa {
                mname: name_with_zone(&[b"ns", b"dns"], zone),
                rname: name_with_zone(&[b"hostmaster"], zone),
                serial: self.cfg.serial,
                refresh: 7200,
                retry: 1800,
                expire: 86400,
                minimum: ttl,
            },
        }
    }

    /// The server-block zone (cluster zone, in-addr.arpa, ip6.arpa) the name is in, longest first.
    fn zone_of<'q>(&self, q: &'q Question) -> Option<Zone<'q>> {
        let labels = q.name.labels();
        let candidates: [(Vec<&[u8]>, bool); 3] = [
            (self.zone_labels.iter().map(Vec::as_slice).collect(), false),
            (vec![b"in-addr", b"arpa"], true),
            (vec![b"ip6", b"arpa"], true),
        ];
        let mut best: Option<Zone<'q>> = None;
        for (z, reverse) in candidates {
            if z.len() > labels.len() {
                continue;
            }
            let tail = &labels[labels.len() - z.len()..];
            if tail.iter().zip(&z).all(|(a, b)| eq_ic(a, b))
                && best.as_ref().is_none_or(|b| b.labels.len() < z.len())
            {
                best = Some(Zone {
                    labels: tail.to_vec(),
                    reverse,
                });
            }
        }
        best
    }

    fn resolve(&self, q: &Question) -> Resolution {
        let Some(zone) = self.zone_of(q) else {
            return Resolution::Forward;
        };
        let all = q.name.labels();
        let base: Vec<Vec<u8>> = all[..all.len() - zone.labels.len()]
            .iter()
            .map(|l| lower(l))
            .collect();
        let owner = &q.name;
        let apex = base.is_empty();
        let result: Result<(Vec<Record>, Vec<Record>), NameError> = match q.qtype {
            wire::TYPE_A | wire::TYPE_AAAA => {
                let mut chain = Vec::new();
                self.addr_lookup(owner, &base, &zone, q.qtype == wire::TYPE_AAAA, &mut chain)
                    .map(|r| (r, vec![]))
            }
            wire::TYPE_TXT => self.txt(owner, &base, &zone).map(|r| (r, vec![])),
            wire::TYPE_CNAME => self.cname(owner, &base, &zone).map(|r| (r, vec![])),
            wire::TYPE_PTR => self.ptr(owner, &base, &zone).map(|r| (r, vec![])),
            wire::TYPE_MX => self
                .services(&base, &zone, q.qtype)
                .map(|_| (vec![], vec![])),
            wire::TYPE_SRV => self.srv(owner, &base, &zone),
            wire::TYPE_SOA => Ok((
                if apex {
                    vec![self.soa_record(&zone)]
                } else {
                    vec![]
                },
                vec![],
            )),
            wire::TYPE_AXFR | wire::TYPE_IXFR => return Resolution::Refused,
            wire::TYPE_NS if apex => Ok(self.ns(&zone)),
            _ => {
                // A fake A lookup tells NODATA from NXDOMAIN.
                let mut chain = Vec::new();
                self.addr_lookup(owner, &base, &zone, false, &mut chain)
                    .map(|_| (vec![], vec![]))
            }
        };
        match result {
            // `fallthrough in-addr.arpa ip6.arpa`: name errors there go to the next plugin.
            Err(NameError) if zone.reverse => Resolution::Forward,
            Err(NameError) => Resolution::NxDomain,
            Ok((answer, _)) if answer.is_empty() => Resolution::NoData,
            Ok((answer, extra)) => Resolution::Records { answer, extra },
        }
    }

    /// kubernetes `Services()`: the entries a name stands for, for a given query type.
    fn services(
        &self,
        base: &[Vec<u8>],
        zone: &Zone<'_>,
        qtype: u16,
    ) -> Result<Vec<Entry>, NameError> {
        if qtype == wire::TYPE_TXT {
            if base.len() == 1 && base[0] == b"dns-version" {
                return Ok(vec![]); // handled by txt()
            }
            return match self.records(base, zone, false) {
                Ok(v) if !v.is_empty() => Ok(vec![]),
                _ => Err(NameError),
            };
        }
        if base.len() == 2 && base[0] == b"ns" && base[1] == b"dns" {
            let key = name_with_zone(&[b"ns", b"dns"], zone);
            return Ok(self
                .dns_ips
                .iter()
                .filter(|ip| ip.is_ipv4() == (qtype != wire::TYPE_AAAA) || qtype == wire::TYPE_NS)
                .map(|ip| Entry {
                    host: Host::Ip(*ip),
                    port: 0,
                    key: key.clone(),
                })
                .collect());
        }
        let mut v = self.records(base, zone, qtype == wire::TYPE_SRV)?;
        if qtype == wire::TYPE_SRV {
            v.retain(|e| matches!(e.host, Host::Ip(_)));
        }
        Ok(v)
    }

    /// kubernetes `Records()`: parse the name (parse.go) and find services or pods. Only SRV answers
    /// read an endpoint's key, so without `endpoint_keys` endpoints get the empty name instead.
    fn records(
        &self,
        base: &[Vec<u8>],
        zone: &Zone<'_>,
        endpoint_keys: bool,
    ) -> Result<Vec<Entry>, NameError> {
        if base.is_empty() || (base.len() == 1 && (base[0] == b"svc" || base[0] == b"pod")) {
            return Ok(vec![]);
        }
        let mut segs = base.iter().rev();
        let pod_or_svc = segs.next().ok_or(NameError)?;
        let is_pod = pod_or_svc.as_slice() == b"pod";
        if !is_pod && pod_or_svc.as_slice() != b"svc" {
            return Err(NameError);
        }
        let namespace = segs.next().map(Vec::as_slice).unwrap_or(b"");
        let service = segs.next().map(Vec::as_slice).unwrap_or(b"");
        let rest: Vec<&[u8]> = segs.map(Vec::as_slice).collect(); // reversed
        let (endpoint, port, proto): (&[u8], &[u8], &[u8]) = match rest.as_slice() {
            [] => (b"", b"", b""),
            [ep] => (ep, b"", b""),
            [proto, port] => (b"", strip_underscore(port), strip_underscore(proto)),
            _ => return Err(NameError),
        };
        if zone.reverse {
            return Err(NameError);
        }
        let ns = std::str::from_utf8(namespace).map_err(|_| NameError)?;
        if !self.namespaces.contains(ns) {
            return Err(NameError);
        }
        if is_pod {
            return self.find_pods(ns, service, zone);
        }
        if service.is_empty() {
            return Ok(vec![]);
        }
        let svc_name = std::str::from_utf8(service).map_err(|_| NameError)?;
        let key = format!("{ns}/{svc_name}");
        let svc = self.services.get(&key).ok_or(NameError)?;
        let svc_key = name_with_zone(
            &[svc.name.as_bytes(), svc.namespace.as_bytes(), b"svc"],
            zone,
        );
        let mut found = false;
        let mut out = Vec::new();
        match &svc.kind {
            SvcKind::ExternalName(target) => {
                if !endpoint.is_empty() || !port.is_empty() || !proto.is_empty() {
                    return Err(NameError);
                }
                if !target.is_empty() && target.parse::<IpAddr>().is_err() {
                    out.push(Entry {
                        host: Host::Cname(target.clone()),
                        port: 0,
                        key: svc_key,
                    });
                    found = true;
                }
            }
            kind if matches!(kind, SvcKind::Headless) || !endpoint.is_empty() => {
                for sl in self.endpoints.get(&key).map(Vec::as_slice).unwrap_or(&[]) {
                    for a in &sl.addrs {
                        if !endpoint.is_empty() && !eq_ic(endpoint, a.hostname.as_bytes()) {
                            continue;
                        }
                        for p in &sl.ports {
                            if !match_port(port, proto, p) {
                                continue;
                            }
                            found = true;
                            out.push(Entry {
                                host: Host::Ip(a.ip),
                                port: p.port,
                                key: if endpoint_keys {
                                    name_with_zone(
                                        &[
                                            a.hostname.as_bytes(),
                                            svc.name.as_bytes(),
                                            svc.namespace.as_bytes(),
                                            b"svc",
                                        ],
                                        zone,
                                    )
                                } else {
                                    Name::default()
                                },
                            });
                        }
                    }
                }
            }
            SvcKind::ClusterIp(ips) => {
                for p in &svc.ports {
                    if !match_port(port, proto, p) {
                        continue;
                    }
                    found = true;
                    for ip in ips {
                        out.push(Entry {
                            host: Host::Ip(*ip),
                            port: p.port,
                            key: svc_key.clone(),
                        });
                    }
                }
            }
            SvcKind::Headless => {}
        }
        if found {
            Ok(out)
        } else {
            Err(NameError)
        }
    }

    /// kubernetes `findPods`.
    fn find_pods(
        &self,
        ns: &str,
        podname: &[u8],
        zone: &Zone<'_>,
    ) -> Result<Vec<Entry>, NameError> {
        use crate::snapshot::PodsMode;
        if self.cfg.pods_mode == PodsMode::Disabled {
            return Err(NameError);
        }
        if podname.is_empty() {
            return Ok(vec![]);
        }
        let name = std::str::from_utf8(podname).map_err(|_| NameError)?;
        let ip_text = if name.matches('-').count() == 3 && !name.contains("--") {
            name.replace('-', ".")
        } else {
            name.replace('-', ":")
        };
        let ip: IpAddr = ip_text.parse().map_err(|_| NameError)?;
        if self.cfg.pods_mode == PodsMode::Verified
            && !self.pod_ips.get(&ip).is_some_and(|s| s.contains(ns))
        {
            return Err(NameError);
        }
        Ok(vec![Entry {
            host: Host::Ip(ip),
            port: 0,
            key: name_with_zone(&[podname, ns.as_bytes(), b"pod"], zone),
        }])
    }

    /// backend_lookup `A`/`AAAA` with CoreDNS's CNAME chase inside the zone (`checkForApex` included).
    fn addr_lookup(
        &self,
        owner: &Name,
        base: &[Vec<u8>],
        zone: &Zone<'_>,
        v6: bool,
        chain: &mut Vec<Record>,
    ) -> Result<Vec<Record>, NameError> {
        let qtype = if v6 { wire::TYPE_AAAA } else { wire::TYPE_A };
        let entries = if base.is_empty() {
            self.services(&[b"ns".to_vec(), b"dns".to_vec()], zone, qtype)?
        } else {
            self.services(base, zone, qtype)?
        };
        let ttl = self.cfg.ttl;
        let mut out: Vec<Record> = Vec::new();
        let mut seen: Vec<IpAddr> = Vec::new();
        for e in entries {
            match e.host {
                Host::Cname(target) => {
                    let Some(tname) = Name::from_text(&target) else {
                        continue;
                    };
                    if eq_ic(&tname.0, &owner.0) || chain.len() > 7 {
                        continue;
                    }
                    let rec = Record {
                        name: owner.clone(),
                        rtype: wire::TYPE_CNAME,
                        class: wire::CLASS_IN,
                        ttl,
                        data: RData::Cname(tname.clone()),
                    };
                    if chain
                        .iter()
                        .any(|r| r.data == rec.data && eq_ic(&r.name.0, &rec.name.0))
                    {
                        continue;
                    }
                    let tl = tname.labels();
                    let in_zone = tl.len() >= zone.labels.len()
                        && tl[tl.len() - zone.labels.len()..]
                            .iter()
                            .zip(&zone.labels)
                            .all(|(a, b)| eq_ic(a, b));
                    if in_zone {
                        let tbase: Vec<Vec<u8>> = tl[..tl.len() - zone.labels.len()]
                            .iter()
                            .map(|l| lower(l))
                            .collect();
                        chain.push(rec.clone());
                        if let Ok(next) = self.addr_lookup(&tname, &tbase, zone, v6, chain) {
                            if !next.is_empty() {
                                out.push(rec);
                                out.extend(next);
                            }
                        }
                    } else {
                        // Outside the cluster: CoreDNS asks its upstream for the target; sans-IO we
                        // return the CNAME alone and the caller may chase it.
                        out.push(rec);
                    }
                }
                Host::Ip(ip) => {
                    if ip.is_ipv6() != v6 || seen.contains(&ip) {
                        continue;
                    }
                    seen.push(ip);
                    out.push(addr_record(owner.clone(), ip, ttl));
                }
            }
        }
        Ok(out)
    }

    fn txt(
        &self,
        owner: &Name,
        base: &[Vec<u8>],
        zone: &Zone<'_>,
    ) -> Result<Vec<Record>, NameError> {
        if base.len() == 1 && base[0] == b"dns-version" {
            return Ok(vec![Record {
                name: owner.clone(),
                rtype: wire::TYPE_TXT,
                class: wire::CLASS_IN,
                ttl: 28800,
                data: RData::Txt(vec![DNS_SCHEMA_VERSION.as_bytes().to_vec()]),
            }]);
        }
        self.services(base, zone, wire::TYPE_TXT).map(|_| vec![])
    }

    fn cname(
        &self,
        owner: &Name,
        base: &[Vec<u8>],
        zone: &Zone<'_>,
    ) -> Result<Vec<Record>, NameError> {
        let entries = self.services(base, zone, wire::TYPE_CNAME)?;
        Ok(match entries.first() {
            Some(Entry {
                host: Host::Cname(t),
                ..
            }) => Name::from_text(t)
                .map(|n| {
                    vec![Record {
                        name: owner.clone(),
                        rtype: wire::TYPE_CNAME,
                        class: wire::CLASS_IN,
                        ttl: self.cfg.ttl,
                        data: RData::Cname(n),
                    }]
                })
                .unwrap_or_default(),
            _ => vec![],
        })
    }

    fn ptr(
        &self,
        owner: &Name,
        base: &[Vec<u8>],
        zone: &Zone<'_>,
    ) -> Result<Vec<Record>, NameError> {
        let ip = if zone.reverse {
            reverse_ip(base, zone)
        } else {
            None
        };
        let Some(ip) = ip else {
            return self.records(base, zone, false).map(|_| vec![]);
        };
        let targets = self.reverse.get(&ip).ok_or(NameError)?;
        let mut out: Vec<Record> = Vec::new();
        for t in targets {
            let Some(n) = Name::from_text(&format!("{t}.{}", self.cfg.zone.trim_end_matches('.')))
            else {
                continue;
            };
            if out.iter().any(|r| r.data == RData::Ptr(n.clone())) {
                continue;
            }
            out.push(Record {
                name: owner.clone(),
                rtype: wire::TYPE_PTR,
                class: wire::CLASS_IN,
                ttl: self.cfg.ttl,
                data: RData::Ptr(n),
            });
        }
        if out.is_empty() {
            return Err(NameError);
        }
        Ok(out)
    }

    /// backend_lookup `SRV`: priority 0, weight floor(100/N) (min 1), A/AAAA of targets in ADDITIONAL.
    fn srv(
        &self,
        owner: &Name,
        base: &[Vec<u8>],
        zone: &Zone<'_>,
    ) -> Result<(Vec<Record>, Vec<Record>), NameError> {
        let entries = self.services(base, zone, wire::TYPE_SRV)?;
        let n = entries.len().max(1);
        let weight = ((100 / n) as u16).max(1);
        let ttl = self.cfg.ttl;
        let mut answer: Vec<Record> = Vec::new();
        let mut extra: Vec<Record> = Vec::new();
        let mut dup_srv: Vec<(Name, u16)> = Vec::new();
        let mut dup_addr: Vec<(Name, IpAddr)> = Vec::new();
        for e in entries {
            if e.port == -1 {
                continue;
            }
            let Host::Ip(ip) = e.host else { continue };
            let port = e.port as u16;
            if !dup_srv.contains(&(e.key.clone(), port)) {
                dup_srv.push((e.key.clone(), port));
                answer.push(Record {
                    name: owner.clone(),
                    rtype: wire::TYPE_SRV,
                    class: wire::CLASS_IN,
                    ttl,
                    data: RData::Srv {
                        priority: 0,
                        weight,
                        port,
                        target: e.key.clone(),
                    },
                });
            }
            if !dup_addr.contains(&(e.key.clone(), ip)) {
                dup_addr.push((e.key.clone(), ip));
                extra.push(addr_record(e.key, ip, ttl));
            }
        }
        Ok((answer, extra))
    }

    /// NS at the apex: `ns.dns.<zone>` with its addresses in ADDITIONAL.
    fn ns(&self, zone: &Zone<'_>) -> (Vec<Record>, Vec<Record>) {
        let ns_name = name_with_zone(&[b"ns", b"dns"], zone);
        let mut answer = Vec::new();
        let mut extra = Vec::new();
        for ip in &self.dns_ips {
            extra.push(addr_record(ns_name.clone(), *ip, self.cfg.ttl));
            if answer.is_empty() {
                answer.push(Record {
                    name: name_with_zone(&[], zone),
                    rtype: wire::TYPE_NS,
                    class: wire::CLASS_IN,
                    ttl: self.cfg.ttl,
                    data: RData::Ns(ns_name.clone()),
                });
            }
        }
        (answer, extra)
    }
}

fn addr_record(name: Name, ip: IpAddr, ttl: u32) -> Record {
    match ip {
        IpAddr::V4(a) => Record {
            name,
            rtype: wire::TYPE_A,
            class: wire::CLASS_IN,
            ttl,
            data: RData::A(a),
        },
        IpAddr::V6(a) => Record {
            name,
            rtype: wire::TYPE_AAAA,
            class: wire::CLASS_IN,
            ttl,
            data: RData::Aaaa(a),
        },
    }
}

/// `dnsutil.ExtractAddressFromReverse`: 4 decimal labels under in-addr.arpa, 32 nibbles under ip6.arpa.
fn reverse_ip(base: &[Vec<u8>], zone: &Zone<'_>) -> Option<IpAddr> {
    let v6 = zone.labels.first().is_some_and(|l| eq_ic(l, b"ip6"));
    let parts: Vec<&str> = base
        .iter()
        .rev()
        .map(|l| std::str::from_utf8(l).ok())
        .collect::<Option<_>>()?;
    if v6 {
        if parts.len() != 32 || parts.iter().any(|p| p.len() != 1) {
            return None;
        }
        let groups: Vec<String> = parts.chunks(4).map(|c| c.concat()).collect();
        groups
            .join(":")
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(IpAddr::V6)
    } else {
        parts
            .join(".")
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .map(IpAddr::V4)
    }
}

/// CoreDNS `ScrubWriter`: add the OPT, then fit the reply to the client (miekg `Msg.Truncate`): if the
/// uncompressed reply is too big, compress and keep the records that fit, setting TC if any were left out.
fn scrub(reply: &mut Message, opt: Option<Opt>, transport: Transport) -> Vec<u8> {
    let size = match transport {
        Transport::Tcp => 65535usize,
        Transport::Udp { .. } => opt.as_ref().map_or(512, |o| (o.udp_size as usize).max(512)),
    };
    let limit = match transport {
        Transport::Udp { ipv6: false } => 1480,
        Transport::Udp { ipv6: true } => 1220,
        Transport::Tcp => usize::MAX,
    };
    wire::encode_scrubbed(reply, opt, size, limit)
}
