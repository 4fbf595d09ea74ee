//! Chain-name hashing (pure functions).
//!
//! Layer: naming. Guarantee: the same service-port name, protocol and endpoint always give the
//! same chain name, byte for byte what kube-proxy computes: the first 16 characters of
//! `base32.StdEncoding(sha256(servicePortName + protocol [+ endpoint]))` (reference §3.4).

use sha2::{Digest, Sha256};

/// RFC 4648 base32 ("StdEncoding" in Go), with padding. Only the first 16 characters are ever
/// used, but the full encoding keeps the function honest and testable.
fn base32_std(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let v = buf.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        // Number of output characters carrying data for this chunk length (RFC 4648 §6).
        let chars = match chunk.len() {
            1 => 2,
            2 => 4,
            3 => 5,
            4 => 7,
            _ => 8,
        };
        for i in 0..8 {
            if i < chars {
                let idx = ((v >> (35 - 5 * i)) & 0x1f) as usize;
                out.push(char::from(ALPHABET[idx]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn hash16(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    let mut s = base32_std(&digest);
    s.truncate(16);
    s
}

/// The 16-character hash shared by `KUBE-SVC-`, `KUBE-SVL-`, `KUBE-EXT-` and `KUBE-FW-` chains of
/// one service port. `spn` is `ns/name` or `ns/name:port`; `proto` is lowercase (`tcp`).
pub fn port_proto_hash(spn: &str, proto: &str) -> String {
    hash16(&format!("{spn}{proto}"))
}

/// `KUBE-SEP-` chain name for one endpoint (`endpoint` is `ip:port`).
pub fn endpoint_chain_name(spn: &str, proto: &str, endpoint: &str) -> String {
    format!("KUBE-SEP-{}", hash16(&format!("{spn}{proto}{endpoint}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_rfc4648_vectors() {
        // RFC 4648 §10 test vectors.
        assert_eq!(base32_std(b""), "");
        assert_eq!(base32_std(b"f"), "MY======");
        assert_eq!(base32_std(b"fo"), "MZXQ====");
        assert_eq!(base32_std(b"foo"), "MZXW6===");
        assert_eq!(base32_std(b"foob"), "MZXW6YQ=");
        assert_eq!(base32_std(b"fooba"), "MZXW6YTB");
        assert_eq!(base32_std(b"foobar"), "MZXW6YTBOI======");
    }

    #[test]
    fn reference_3_5_vectors() {
        assert_eq!(port_proto_hash("ns1/svc1:p80", "tcp"), "XPGD46QRK7WJZT7O");
        assert_eq!(
            endpoint_chain_name("ns1/svc1:p80", "tcp", "10.180.0.1:80"),
            "KUBE-SEP-SXIVWICOYRO3J4NJ"
        );
        assert_eq!(
            port_proto_hash("default/kubernetes:https", "tcp"),
            "NPX46M4PTMTKRN6Y"
        );
        assert_eq!(
            port_proto_hash("kube-system/kube-dns:dns", "udp"),
            "TCOU7JCQXEZGVUNU"
        );
        assert_eq!(
            port_proto_hash("kube-system/kube-dns:dns-tcp", "tcp"),
            "ERIFXISQEP7F7OF4"
        );
        assert_eq!(port_proto_hash("default/web", "tcp"), "LOLE4ISW44XBNF3G");
        // §3.22 / §3.23
        assert_eq!(
            port_proto_hash("default/web:http", "tcp"),
            "CDGGSHYLG3RE2FKL"
        );
        assert_eq!(
            port_proto_hash("default/web-np:http", "tcp"),
            "2262UYG6EQJDKK3I"
        );
    }
}
