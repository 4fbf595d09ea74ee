//! Seeded fuzzing in `cargo test`: random, truncated and bit-flipped messages must never panic the
//! responder or the formatters, and every reply must parse back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dns::wire::{self, TYPE_A, TYPE_SRV};
use dns::{format_dig, format_nslookup, DigTransport, Outcome, Transport};

/// xorshift64*: a tiny deterministic generator (no OS randomness in tests either).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn check(snap: &dns::Snapshot, bytes: &[u8]) {
    for t in [
        Transport::Udp { ipv6: false },
        Transport::Udp { ipv6: true },
        Transport::Tcp,
    ] {
        if let Outcome::Reply(r) = snap.answer(bytes, t) {
            assert!(
                wire::parse_message(&r).is_ok(),
                "reply to {bytes:02x?} does not parse"
            );
            if let Transport::Udp { .. } = t {
                assert!(r.len() <= 65535);
            }
            let _ = format_dig(
                "dig x",
                &r,
                "10.96.0.10:53".parse().unwrap(),
                DigTransport::Tcp,
                0,
                "w",
                "9.18.30",
            );
        }
    }
    let _ = format_dig(
        "dig +short x",
        bytes,
        "10.96.0.10:53".parse().unwrap(),
        DigTransport::Udp,
        0,
        "w",
        "9.18.30",
    );
    let _ = format_dig(
        "dig x",
        bytes,
        "[fd00::a]:53".parse().unwrap(),
        DigTransport::Tcp,
        0,
        "w",
        "9.11",
    );
    let _ = format_nslookup(
        "10.96.0.10",
        "10.96.0.10:53".parse().unwrap(),
        "x",
        bytes,
        Some(bytes),
    );
}

#[test]
fn seeded_random_and_mutated_messages_never_panic() {
    let snap = cluster();
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let seeds: Vec<Vec<u8>> = [
        ("web.default.svc.cluster.local.", TYPE_A),
        ("_http._tcp.quad.default.svc.cluster.local.", TYPE_SRV),
        ("ext-in.default.svc.cluster.local.", TYPE_A),
        ("5.1.244.10.in-addr.arpa.", 12),
        ("10-244-1-9.default.pod.cluster.local.", 28),
    ]
    .iter()
    .map(|(n, t)| query(n, *t))
    .collect();
    // Replies are seeds too, so the formatter's parser sees compressed names and every rdata kind.
    let mut corpus = seeds.clone();
    for s in &seeds {
        if let Outcome::Reply(r) = snap.answer(s, Transport::Udp { ipv6: false }) {
            corpus.push(r);
        }
    }
    // `DNS_FUZZ_CASES` raises the budget (scripts/test runs a larger one; longer runs by hand,
    // or the cargo-fuzz target in dns/fuzz with a nightly toolchain).
    let cases: usize = std::env::var("DNS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6000);
    for i in 0..cases {
        let bytes: Vec<u8> = match i % 4 {
            0 => (0..rng.below(80)).map(|_| rng.next() as u8).collect(),
            1 => {
                let s = &corpus[rng.below(corpus.len())];
                s[..rng.below(s.len() + 1)].to_vec()
            }
            2 => {
                let mut s = corpus[rng.below(corpus.len())].clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(s.len());
                    s[at] ^= 1 << rng.below(8);
                }
                s
            }
            _ => {
                // A plausible header (QUERY, 1 question) followed by random bytes: reaches the name parser.
                let mut s = vec![
                    0x12,
                    0x34,
                    0x01,
                    0x00,
                    0,
                    1,
                    0,
                    rng.below(2) as u8,
                    0,
                    rng.below(2) as u8,
                    0,
                    rng.below(3) as u8,
                ];
                s.extend((0..rng.below(120)).map(|_| match rng.below(4) {
                    0 => 0xc0 | (rng.next() as u8 & 0x3f),
                    1 => rng.below(64) as u8,
                    _ => rng.next() as u8,
                }));
                s
            }
        };
        check(&snap, &bytes);
    }
}

#[test]
fn pointer_loops_and_oversized_names_are_formerr() {
    let snap = cluster();
    // Question name that points at itself.
    let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
    let Outcome::Reply(r) = snap.answer(&q, Transport::Tcp) else {
        panic!()
    };
    assert_eq!(
        wire::parse_message(&r).unwrap().0.header.rcode(),
        wire::RCODE_FORMERR
    );
    // A 300-byte name.
    q.truncate(12);
    for _ in 0..5 {
        q.push(60);
        q.extend([b'a'; 60]);
    }
    q.extend([0, 0, 1, 0, 1]);
    let Outcome::Reply(r) = snap.answer(&q, Transport::Tcp) else {
        panic!()
    };
    assert_eq!(
        wire::parse_message(&r).unwrap().0.header.rcode(),
        wire::RCODE_FORMERR
    );
}
