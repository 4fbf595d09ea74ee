//! The two sources of non-determinism a cluster has, made deterministic: one virtual clock
//! and one seeded RNG. Everything that reaches output takes time and chance from here,
//! never from the OS (clippy.toml bans the OS clock).

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// The default epoch: the seed lab's day (2020-10-27T10:00:00Z).
pub const DEFAULT_EPOCH_MS: i64 = 1_603_792_800_000;

/// Virtual wall clock in milliseconds since the Unix epoch. Shared handle; only the cluster
/// driver advances it.
#[derive(Clone, Debug)]
pub struct Clock(Arc<Mutex<ClockState>>);

#[derive(Debug)]
struct ClockState {
    ms: i64,
    /// The last second formatted by [`Clock::now_rfc3339`]: every object and Event written
    /// carries a timestamp, most of them in a second already formatted.
    formatted: Option<(i64, String)>,
}

impl Clock {
    pub fn new(epoch_ms: i64) -> Self {
        Clock(Arc::new(Mutex::new(ClockState {
            ms: epoch_ms,
            formatted: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, ClockState> {
        match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.lock().ms
    }

    /// Moves time forward (never backward).
    pub fn advance_to(&self, ms: i64) {
        let mut g = self.lock();
        if ms > g.ms {
            g.ms = ms;
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        to_datetime(self.now_ms())
    }

    /// RFC 3339 with second precision, as metadata timestamps are written.
    pub fn now_rfc3339(&self) -> String {
        let mut g = self.lock();
        let second = g.ms.div_euclid(1000);
        match &g.formatted {
            Some((s, text)) if *s == second => text.clone(),
            _ => {
                let text = rfc3339(g.ms);
                g.formatted = Some((second, text.clone()));
                text
            }
        }
    }
}

pub fn to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub fn rfc3339(ms: i64) -> String {
    to_datetime(ms).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses an RFC 3339 timestamp to milliseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// The cluster's seeded RNG (ChaCha8). Shared handle; draws happen in a deterministic order
/// because the cluster is driven by one task.
#[derive(Clone, Debug)]
pub struct SimRng(Arc<Mutex<ChaCha8Rng>>);

impl SimRng {
    /// A stream for one component: the same seed and name always give the same stream, so
    /// adding draws in one component does not shift another's.
    pub fn new(seed: u64, stream: &str) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        // FNV-1a of the stream name spreads names over the rest of the key.
        key[8..16].copy_from_slice(&fnv1a(stream).to_le_bytes());
        SimRng(Arc::new(Mutex::new(ChaCha8Rng::from_seed(key))))
    }

    /// A sub-stream of this stream's seed, for one purpose (`uid`, say), drawing nothing
    /// from this one: draws for that purpose no longer shift this stream's other draws.
    pub fn derive(&self, purpose: &str) -> Self {
        let mut key = self.lock().get_seed();
        let h = fnv1a(purpose).to_le_bytes();
        for (k, b) in key[16..24].iter_mut().zip(h) {
            *k ^= b;
        }
        SimRng(Arc::new(Mutex::new(ChaCha8Rng::from_seed(key))))
    }

    fn lock(&self) -> MutexGuard<'_, ChaCha8Rng> {
        match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn next_u64(&self) -> u64 {
        self.lock().next_u64()
    }

    /// Uniform in `0..n` (n > 0), without modulo bias.
    pub fn below(&self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Uniform float in [0, 1).
    pub fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` characters from Kubernetes' name-suffix alphabet (apimachinery `rand.String`).
    pub fn k8s_suffix(&self, n: usize) -> String {
        const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..n)
            .map(|_| ALPHANUMS[self.below(ALPHANUMS.len() as u64) as usize] as char)
            .collect()
    }

    /// A random UUID v4 string.
    pub fn uuid(&self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_be_bytes());
        bytes[8..].copy_from_slice(&b.to_be_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        // 8-4-4-4-12 hex digits, written into one buffer (a `format!` per byte made this
        // a visible cost: every created object gets a uid).
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(36);
        for (i, b) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }

    /// `n` lowercase hex characters (container IDs and the like).
    /// Each draw gives 16 digits, most significant first (as `{:016x}` writes them),
    /// written straight into the buffer: a `format!` per draw was most of a container
    /// start's cost here.
    pub fn hex(&self, n: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(n.next_multiple_of(16));
        while s.len() < n {
            let v = self.next_u64();
            for shift in (0..16).rev() {
                s.push(char::from(HEX[((v >> (4 * shift)) & 0xf) as usize]));
            }
        }
        s.truncate(n);
        s
    }
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_formats_each_second_afresh() {
        let c = Clock::new(DEFAULT_EPOCH_MS);
        assert_eq!(c.now_rfc3339(), "2020-10-27T10:00:00Z");
        c.advance_to(DEFAULT_EPOCH_MS + 999);
        assert_eq!(c.now_rfc3339(), "2020-10-27T10:00:00Z");
        c.advance_to(DEFAULT_EPOCH_MS + 1000);
        assert_eq!(c.now_rfc3339(), "2020-10-27T10:00:01Z");
        c.advance_to(DEFAULT_EPOCH_MS + 62 * 60_000);
        assert_eq!(c.now_rfc3339(), rfc3339(DEFAULT_EPOCH_MS + 62 * 60_000));
        // Before 1970 a second still starts at its whole-second mark.
        let early = Clock::new(-1);
        assert_eq!(early.now_rfc3339(), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn derived_streams_leave_the_parent_alone() {
        let a = SimRng::new(7, "apiserver");
        let b = SimRng::new(7, "apiserver");
        let ua = a.derive("uid");
        let ub = b.derive("uid");
        let (xa, xb) = (ua.next_u64(), ub.next_u64());
        assert_eq!(
            xa, xb,
            "the same purpose of the same stream is the same stream"
        );
        assert_ne!(xa, a.derive("other").next_u64());
        // Drawing from the derived stream did not move the parents.
        assert_eq!(a.next_u64(), SimRng::new(7, "apiserver").next_u64());
        assert_ne!(a.next_u64(), xa);
    }

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a = SimRng::new(7, "names");
        let b = SimRng::new(7, "names");
        let c = SimRng::new(7, "ips");
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn hex_spells_each_draw_most_significant_digit_first() {
        let (r, draws) = (SimRng::new(3, "hex"), SimRng::new(3, "hex"));
        let (a, b) = (draws.next_u64(), draws.next_u64());
        // A container ID: 64 digits; a partial last draw keeps its leading digits.
        assert_eq!(r.hex(20), format!("{a:016x}{:04x}", b >> 48));
        let id = r.hex(64);
        assert_eq!(id.len(), 64);
        assert!(id
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(SimRng::new(3, "hex").hex(0), "");
    }

    #[test]
    fn suffix_uses_the_kubernetes_alphabet() {
        let r = SimRng::new(1, "x");
        for _ in 0..100 {
            let s = r.k8s_suffix(5);
            assert_eq!(s.len(), 5);
            assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        }
    }

    #[test]
    fn uuid_is_a_version_4_uuid_from_two_draws() {
        let r = SimRng::new(3, "uuid");
        let u = r.uuid();
        let s = SimRng::new(3, "uuid");
        let (a, b) = (s.next_u64(), s.next_u64());
        let mut bytes = [a.to_be_bytes(), b.to_be_bytes()].concat();
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let want = format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        assert_eq!(u, want);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn default_epoch_is_the_lab_day() {
        assert_eq!(rfc3339(DEFAULT_EPOCH_MS), "2020-10-27T10:00:00Z");
    }
}
