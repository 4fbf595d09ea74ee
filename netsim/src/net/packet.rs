//! Reading and rewriting real IPv4 packets (smoltcp's wire layer): the 5-tuple netfilter
//! matches on, NAT rewrites with checksums recomputed, and ICMP errors built as Linux does.

use std::net::Ipv4Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket,
    UdpPacket,
};

/// Transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }
}

/// A flow's identity as conntrack sees it (ICMP echo: the identifier in both port slots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tuple {
    pub proto: Proto,
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dst: Ipv4Addr,
    pub dport: u16,
}

impl Tuple {
    pub fn reversed(&self) -> Tuple {
        Tuple {
            proto: self.proto,
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }
}

/// What the fabric needs to know about a packet.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub tuple: Tuple,
    /// TCP SYN without ACK: a new connection attempt.
    pub syn: bool,
    /// TCP SYN+ACK: the first reply of a connection.
    pub synack: bool,
    pub rst: bool,
    /// ICMP echo request (new ping flow) vs reply / error.
    pub icmp_type: Option<u8>,
}

/// Parses an IPv4 packet's flow summary; `None` for anything we do not route.
pub fn summarize(buf: &[u8]) -> Option<Summary> {
    let ip = Ipv4Packet::new_checked(buf).ok()?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let payload = ip.payload();
    match ip.next_header() {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(payload).ok()?;
            Some(Summary {
                tuple: Tuple {
                    proto: Proto::Tcp,
                    src,
                    sport: t.src_port(),
                    dst,
                    dport: t.dst_port(),
                },
                syn: t.syn() && !t.ack(),
                synack: t.syn() && t.ack(),
                rst: t.rst(),
                icmp_type: None,
            })
        }
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(payload).ok()?;
            Some(Summary {
                tuple: Tuple {
                    proto: Proto::Udp,
                    src,
                    sport: u.src_port(),
                    dst,
                    dport: u.dst_port(),
                },
                syn: false,
                synack: false,
                rst: false,
                icmp_type: None,
            })
        }
        IpProtocol::Icmp => {
            let i = Icmpv4Packet::new_checked(payload).ok()?;
            let ty: u8 = i.msg_type().into();
            let ident = if ty == 8 || ty == 0 {
                i.echo_ident()
            } else {
                0
            };
            Some(Summary {
                tuple: Tuple {
                    proto: Proto::Icmp,
                    src,
                    sport: ident,
                    dst,
                    dport: ident,
                },
                syn: false,
                synack: false,
                rst: false,
                icmp_type: Some(ty),
            })
        }
        _ => None,
    }
}

/// Rewrites addresses and ports (NAT), fixing the IP and transport checksums.
pub fn rewrite(buf: &mut [u8], to: &Tuple) {
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut buf[..]) else {
        return;
    };
    ip.set_src_addr(to.src);
    ip.set_dst_addr(to.dst);
    let proto = ip.next_header();
    ip.fill_checksum();
    let (src, dst) = (to.src.into(), to.dst.into());
    let payload = ip.payload_mut();
    match proto {
        IpProtocol::Tcp => {
            if let Ok(mut t) = TcpPacket::new_checked(payload) {
                t.set_src_port(to.sport);
                t.set_dst_port(to.dport);
                t.fill_checksum(&src, &dst);
            }
        }
        IpProtocol::Udp => {
            if let Ok(mut u) = UdpPacket::new_checked(payload) {
                u.set_src_port(to.sport);
                u.set_dst_port(to.dport);
                u.fill_checksum(&src, &dst);
            }
        }
        _ => {}
    }
}

/// ICMP destination unreachable (port) from `from` about `offending`, as iptables' REJECT
/// `--reject-with icmp-port-unreachable` sends it.
pub fn port_unreachable(from: Ipv4Addr, offending: &[u8]) -> Option<Vec<u8>> {
    let orig = Ipv4Packet::new_checked(offending).ok()?;
    let orig_repr = Ipv4Repr::parse(&orig, &ChecksumCapabilities::default()).ok()?;
    let data_len = orig.payload().len().min(8);
    let icmp = Icmpv4Repr::DstUnreachable {
        reason: Icmpv4DstUnreachable::PortUnreachable,
        header: orig_repr,
        data: &orig.payload()[..data_len],
    };
    let ip = Ipv4Repr {
        src_addr: from,
        dst_addr: orig.src_addr(),
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + icmp.buffer_len()];
    let mut pkt = Ipv4Packet::new_unchecked(&mut buf[..]);
    ip.emit(&mut pkt, &ChecksumCapabilities::default());
    let mut ic = Icmpv4Packet::new_unchecked(pkt.payload_mut());
    icmp.emit(&mut ic, &ChecksumCapabilities::default());
    Some(buf)
}

/// Decrements the TTL as a router does; `false` when it reaches zero (the packet dies).
pub fn decrement_ttl(buf: &mut [u8]) -> bool {
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut buf[..]) else {
        return false;
    };
    let ttl = ip.hop_limit();
    if ttl <= 1 {
        return false;
    }
    ip.set_hop_limit(ttl - 1);
    ip.fill_checksum();
    true
}

pub fn ttl(buf: &[u8]) -> u8 {
    Ipv4Packet::new_checked(buf)
        .map(|p| p.hop_limit())
        .unwrap_or(0)
}

/// The echo reply a host's kernel sends for an echo request (addresses swapped, TTL 64).
pub fn echo_reply(request: &[u8]) -> Option<Vec<u8>> {
    let ip = Ipv4Packet::new_checked(request).ok()?;
    let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
    let repr = Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).ok()?;
    let Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    } = repr
    else {
        return None;
    };
    let reply = Icmpv4Repr::EchoReply {
        ident,
        seq_no,
        data,
    };
    let ip_repr = Ipv4Repr {
        src_addr: ip.dst_addr(),
        dst_addr: ip.src_addr(),
        next_header: IpProtocol::Icmp,
        payload_len: reply.buffer_len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip_repr.buffer_len() + reply.buffer_len()];
    let mut pkt = Ipv4Packet::new_unchecked(&mut buf[..]);
    ip_repr.emit(&mut pkt, &ChecksumCapabilities::default());
    reply.emit(
        &mut Icmpv4Packet::new_unchecked(pkt.payload_mut()),
        &ChecksumCapabilities::default(),
    );
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{TcpControl, TcpRepr, TcpSeqNumber};

    fn syn(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(1),
            ack_number: None,
            window_len: 64240,
            window_scale: None,
            max_seg_size: Some(1460),
            sack_permitted: false,
            sack_ranges: [None, None, None],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let mut buf = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p, &ChecksumCapabilities::default());
        let mut t = TcpPacket::new_unchecked(p.payload_mut());
        tcp.emit(
            &mut t,
            &src.into(),
            &dst.into(),
            &ChecksumCapabilities::default(),
        );
        buf
    }

    #[test]
    fn nat_rewrite_keeps_checksums_valid() {
        let a = Ipv4Addr::new(10, 244, 1, 2);
        let vip = Ipv4Addr::new(10, 96, 1, 1);
        let mut p = syn(a, vip);
        let s = summarize(&p).unwrap();
        assert!(s.syn && s.tuple.dport == 80 && s.tuple.dst == vip);
        let pod = Ipv4Addr::new(10, 244, 2, 3);
        rewrite(
            &mut p,
            &Tuple {
                dst: pod,
                dport: 8080,
                ..s.tuple
            },
        );
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.dst_addr(), pod);
        let t = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(t.verify_checksum(&a.into(), &pod.into()));
        assert_eq!(t.dst_port(), 8080);
    }

    #[test]
    fn reject_builds_a_port_unreachable_back_to_the_sender() {
        let a = Ipv4Addr::new(10, 244, 1, 2);
        let p = syn(a, Ipv4Addr::new(10, 96, 5, 5));
        let icmp = port_unreachable(Ipv4Addr::new(10, 96, 5, 5), &p).unwrap();
        let s = summarize(&icmp).unwrap();
        assert_eq!((s.tuple.dst, s.icmp_type), (a, Some(3)));
    }
}
