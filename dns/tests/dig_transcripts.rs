//! The seed's two dig transcripts and the reference §6.D example, reproduced byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::*;
use dns::wire::TYPE_A;
use dns::{build_query, format_dig, DigTransport, Outcome, Transport};

/// dig 9.11 advertises a 4096-byte buffer; patch the OPT class of a built query.
fn with_udp_size(mut q: Vec<u8>, size: u16) -> Vec<u8> {
    let at = q.len() - 20; // class field: before ttl(4), rdlen(2), option hdr(4), cookie(8)
    q[at..at + 2].copy_from_slice(&size.to_be_bytes());
    q
}

fn reply(q: &[u8]) -> Vec<u8> {
    match cluster().answer(q, Transport::Udp { ipv6: false }) {
        Outcome::Reply(b) => b,
        o => panic!("{o:?}"),
    }
}

#[test]
fn reference_6d_example_is_byte_exact() {
    let q = build_query(
        "web.default.svc.cluster.local",
        TYPE_A,
        45538,
        true,
        Some(COOKIE),
    )
    .unwrap();
    let r = reply(&q);
    assert_eq!(r.len(), 115, "12 hdr + 35 question + 45 answer + 23 OPT");
    let server: SocketAddr = "10.96.0.10:53".parse().unwrap();
    let out = format_dig(
        "dig web.default.svc.cluster.local",
        &r,
        server,
        DigTransport::Udp,
        0,
        "Sat Apr 26 18:44:31 CST 2025",
        "9.18.30",
    );
    let expected = "
; <<>> DiG 9.18.30 <<>> web.default.svc.cluster.local
;; global options: +cmd
;; Got answer:
;; WARNING: .local is reserved for Multicast DNS
;; You are currently testing what happens when an mDNS query is leaked to DNS
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 45538
;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1
;; WARNING: recursion requested but not available

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
; COOKIE: fd1fdbe4c0177389 (echoed)
;; QUESTION SECTION:
;web.default.svc.cluster.local.\tIN\tA

;; ANSWER SECTION:
web.default.svc.cluster.local. 30 IN\tA\t10.96.45.12

;; Query time: 0 msec
;; SERVER: 10.96.0.10#53(10.96.0.10) (UDP)
;; WHEN: Sat Apr 26 18:44:31 CST 2025
;; MSG SIZE  rcvd: 115

";
    assert_eq!(out, expected);
}

#[test]
fn seed_headless_transcript_line_for_line() {
    let cookie = [0xa2, 0x53, 0xbf, 0x35, 0xc4, 0x37, 0x5e, 0xaf];
    let q = build_query(
        "myapp-headless.shiqi-lu.svc.cluster.local.",
        TYPE_A,
        54521,
        true,
        Some(cookie),
    )
    .unwrap();
    let r = reply(&with_udp_size(q, 4096));
    let out = format_dig(
        "dig -t A myapp-headless.shiqi-lu.svc.cluster.local. @10.244.8.16",
        &r,
        "10.244.8.16:53".parse().unwrap(),
        DigTransport::Udp,
        0,
        "Tue Oct 27 20:05:35 CST 2020",
        "9.11.3-1ubuntu1.13-Ubuntu",
    );
    let expected = "
; <<>> DiG 9.11.3-1ubuntu1.13-Ubuntu <<>> -t A myapp-headless.shiqi-lu.svc.cluster.local. @10.244.8.16
;; global options: +cmd
;; Got answer:
;; WARNING: .local is reserved for Multicast DNS
;; You are currently testing what happens when an mDNS query is leaked to DNS
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 54521
;; flags: qr aa rd; QUERY: 1, ANSWER: 3, AUTHORITY: 0, ADDITIONAL: 1
;; WARNING: recursion requested but not available

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 4096
; COOKIE: a253bf35c4375eaf (echoed)
;; QUESTION SECTION:
;myapp-headless.shiqi-lu.svc.cluster.local. IN A

;; ANSWER SECTION:
myapp-headless.shiqi-lu.svc.cluster.local. 30 IN A 10.244.4.51
myapp-headless.shiqi-lu.svc.cluster.local. 30 IN A 10.244.6.101
myapp-headless.shiqi-lu.svc.cluster.local. 30 IN A 10.244.8.108

;; Query time: 0 msec
;; SERVER: 10.244.8.16#53(10.244.8.16)
;; WHEN: Tue Oct 27 20:05:35 CST 2020
;; MSG SIZE  rcvd: 253

";
    assert_eq!(out, expected);
}

#[test]
fn seed_externalname_transcript_line_for_line() {
    let cookie = [0xed, 0x3b, 0x24, 0xef, 0xd3, 0x96, 0x12, 0xa1];
    let q = build_query(
        "my-service-1.shiqi-lu.svc.cluster.local.",
        TYPE_A,
        60219,
        true,
        Some(cookie),
    )
    .unwrap();
    let r = reply(&with_udp_size(q, 4096));
    let out = format_dig(
        "dig -t A my-service-1.shiqi-lu.svc.cluster.local. @10.244.8.16",
        &r,
        "10.244.8.16:53".parse().unwrap(),
        DigTransport::Udp,
        39,
        "Tue Oct 27 20:45:03 CST 2020",
        "9.11.3-1ubuntu1.13-Ubuntu",
    );
    let expected = "
; <<>> DiG 9.11.3-1ubuntu1.13-Ubuntu <<>> -t A my-service-1.shiqi-lu.svc.cluster.local. @10.244.8.16
;; global options: +cmd
;; Got answer:
;; WARNING: .local is reserved for Multicast DNS
;; You are currently testing what happens when an mDNS query is leaked to DNS
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 60219
;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1
;; WARNING: recursion requested but not available

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 4096
; COOKIE: ed3b24efd39612a1 (echoed)
;; QUESTION SECTION:
;my-service-1.shiqi-lu.svc.cluster.local. IN A

;; ANSWER SECTION:
my-service-1.shiqi-lu.svc.cluster.local. 30 IN CNAME hub.atguigu.com.

;; Query time: 39 msec
;; SERVER: 10.244.8.16#53(10.244.8.16)
;; WHEN: Tue Oct 27 20:45:03 CST 2020
;; MSG SIZE  rcvd: 148

";
    assert_eq!(out, expected);
}

#[test]
fn nxdomain_prints_authority_soa_and_server_found_line() {
    let q = build_query(
        "nope.default.svc.cluster.local",
        TYPE_A,
        1,
        true,
        Some(COOKIE),
    )
    .unwrap();
    let r = reply(&q);
    let out = format_dig(
        "dig @10.96.0.10 nope.default.svc.cluster.local",
        &r,
        "10.96.0.10:53".parse().unwrap(),
        DigTransport::Udp,
        1,
        "Sat Apr 26 18:44:31 CST 2025",
        "9.18.30",
    );
    assert!(out.contains("\n; <<>> DiG 9.18.30 <<>> @10.96.0.10 nope.default.svc.cluster.local\n; (1 server found)\n"));
    assert!(out.contains(";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n"));
    assert!(out.contains(";; flags: qr aa rd; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 1\n"));
    assert!(out.contains(&format!(
        ";; AUTHORITY SECTION:\ncluster.local.\t\t30\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. {SERIAL} 7200 1800 86400 30\n\n"
    )));
    assert!(!out.contains("ANSWER SECTION"));
}

#[test]
fn srv_prints_additional_section() {
    let q = build_query(
        "_http._tcp.web.default.svc.cluster.local",
        dns::wire::TYPE_SRV,
        7,
        true,
        Some(COOKIE),
    )
    .unwrap();
    let r = reply(&q);
    let out = format_dig(
        "dig -t SRV _http._tcp.web.default.svc.cluster.local",
        &r,
        "10.96.0.10:53".parse().unwrap(),
        DigTransport::Udp,
        0,
        "x",
        "9.18.30",
    );
    assert!(out.contains(
        ";; ANSWER SECTION:\n_http._tcp.web.default.svc.cluster.local. 30 IN\tSRV 0 100 80 web.default.svc.cluster.local.\n\n"
    ));
    assert!(out.contains(
        ";; ADDITIONAL SECTION:\nweb.default.svc.cluster.local. 30 IN\tA\t10.96.45.12\n\n"
    ));
}

#[test]
fn short_and_truncated() {
    let q = build_query(
        "web-headless.default.svc.cluster.local",
        TYPE_A,
        7,
        true,
        None,
    )
    .unwrap();
    let r = reply(&q);
    let out = format_dig(
        "dig +short web-headless.default.svc.cluster.local",
        &r,
        "10.96.0.10:53".parse().unwrap(),
        DigTransport::Udp,
        0,
        "x",
        "9.18.30",
    );
    assert_eq!(out, "10.244.1.5\n10.244.2.6\n");
    let mut tc = r.clone();
    tc[2] |= 0x02;
    let out = format_dig(
        "dig x",
        &tc,
        "10.96.0.10:53".parse().unwrap(),
        DigTransport::Udp,
        0,
        "x",
        "9.18.30",
    );
    assert_eq!(out, ";; Truncated, retrying in TCP mode.\n");
}

#[test]
fn nslookup_layouts() {
    let q = build_query("web.default.svc.cluster.local", TYPE_A, 7, true, None).unwrap();
    let a = reply(&q);
    let q6 = build_query(
        "web.default.svc.cluster.local",
        dns::wire::TYPE_AAAA,
        8,
        true,
        None,
    )
    .unwrap();
    let aaaa = reply(&q6);
    let (out, code) = dns::format_nslookup(
        "10.96.0.10",
        "10.96.0.10:53".parse().unwrap(),
        "web",
        &a,
        Some(&aaaa),
    );
    assert_eq!(
        out,
        "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nName:\tweb.default.svc.cluster.local\nAddress: 10.96.45.12\n\n"
    );
    assert_eq!(code, 0);
    let nx = reply(&build_query("nope.default.svc.cluster.local", TYPE_A, 9, true, None).unwrap());
    let (out, code) = dns::format_nslookup(
        "10.96.0.10",
        "10.96.0.10:53".parse().unwrap(),
        "nope",
        &nx,
        None,
    );
    assert_eq!(
        out,
        "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n** server can't find nope: NXDOMAIN\n\n"
    );
    assert_eq!(code, 1);
}
