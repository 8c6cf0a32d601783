//! The read path: the routing [`Table`] a deployer swaps atomically, the [`Route`] a
//! request gets from it, and the stable key hash that makes routing sticky.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::health::HealthWindow;
use crate::version::VersionId;

/// Traffic shares are kept in parts per million: fine enough for a rolling update's
/// 1-of-300-instances step, and exact in integer arithmetic.
pub(crate) const PPM: u64 = 1_000_000;

/// Where one request goes: the version that serves it and, while a new version shadows,
/// the version that gets a copy of it.
#[derive(Debug)]
pub struct Route<T> {
    /// The version whose answer the caller gets.
    pub version: VersionId,
    /// Its value.
    pub target: Arc<T>,
    /// The version to send a copy of the call to, if one shadows. Its answer is only
    /// compared ([`Deployer::record_shadow`](crate::Deployer::record_shadow)), never
    /// returned.
    pub shadow: Option<ShadowRoute<T>>,
}

/// The shadow side of a [`Route`].
#[derive(Debug)]
pub struct ShadowRoute<T> {
    /// The shadowing version.
    pub version: VersionId,
    /// Its value.
    pub target: Arc<T>,
}

/// One version's share of the traffic, as [`Deployer::traffic`](crate::Deployer::traffic)
/// reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficShare {
    /// The version.
    pub version: VersionId,
    /// Its share of the requests, in percent.
    pub percent: f64,
    /// True for a shadow: it gets a copy of every request, outside the shares.
    pub shadow: bool,
}

/// A version in the table.
pub(crate) struct Lane<T> {
    pub version: VersionId,
    pub target: Arc<T>,
}

/// What the read path sees; replaced whole, never changed in place.
pub(crate) struct Table<T> {
    /// The active version: every request whose point is below `threshold`.
    pub primary: Option<Lane<T>>,
    /// The version being rolled out and the point from which requests go to it.
    pub candidate: Option<(Lane<T>, u64)>,
    /// The version shadowing the primary.
    pub shadow: Option<Lane<T>>,
    /// Mixed into every key's hash: each rollout draws its own slice of keys.
    pub seed: u64,
    /// Every known version's health window, for `record`.
    pub health: Box<[(VersionId, Arc<HealthWindow>)]>,
}

impl<T> Table<T> {
    pub(crate) fn empty() -> Table<T> {
        Table {
            primary: None,
            candidate: None,
            shadow: None,
            seed: 0,
            health: Box::new([]),
        }
    }

    /// The route of a request whose key hashed to `point`.
    pub(crate) fn route_point(&self, point: u64) -> Option<Route<T>> {
        let lane = match &self.candidate {
            Some((lane, from)) if point >= *from => lane,
            _ => self.primary.as_ref()?,
        };
        Some(Route {
            version: lane.version.clone(),
            target: lane.target.clone(),
            shadow: self.shadow.as_ref().map(|s| ShadowRoute {
                version: s.version.clone(),
                target: s.target.clone(),
            }),
        })
    }

    pub(crate) fn health_of(&self, version: &str) -> Option<&HealthWindow> {
        self.health
            .iter()
            .find(|(v, _)| v.as_str() == version)
            .map(|(_, h)| &**h)
    }

    pub(crate) fn shares(&self) -> Vec<TrafficShare> {
        let mut out = Vec::new();
        let candidate_ppm = self
            .candidate
            .as_ref()
            .map(|(_, from)| threshold_to_ppm(*from))
            .unwrap_or(0);
        if let Some(p) = &self.primary {
            if candidate_ppm < PPM {
                out.push(TrafficShare {
                    version: p.version.clone(),
                    percent: (PPM - candidate_ppm) as f64 / 10_000.0,
                    shadow: false,
                });
            }
        }
        if let Some((c, _)) = &self.candidate {
            out.push(TrafficShare {
                version: c.version.clone(),
                percent: candidate_ppm as f64 / 10_000.0,
                shadow: false,
            });
        }
        if let Some(s) = &self.shadow {
            out.push(TrafficShare {
                version: s.version.clone(),
                percent: 0.0,
                shadow: true,
            });
        }
        out
    }
}

/// The point from which keys go to a candidate holding `ppm` parts per million of them:
/// the candidate owns the top of the hash space, `[2^64 - share, 2^64)`, so a growing share
/// only ever takes keys from the primary, and a shrinking one only gives them back.
pub(crate) fn ppm_to_threshold(ppm: u64) -> u64 {
    let ppm = ppm.min(PPM);
    if ppm == 0 {
        return u64::MAX;
    }
    let keep = (PPM - ppm) as u128;
    ((keep << 64) / PPM as u128) as u64
}

fn threshold_to_ppm(threshold: u64) -> u64 {
    let keep = ((threshold as u128 * PPM as u128) + (1u128 << 63)) >> 64;
    PPM - keep as u64
}

/// The point of a key in `[0, 2^64)`: a 64-bit hash of its bytes mixed with `seed`.
///
/// Stable across processes, platforms and releases of this crate (it is written here, not
/// borrowed from `std`), so a key keeps its version across a restart: each 8-byte word is
/// folded in through the MurmurHash3 finaliser, and the length last.
pub fn key_point(key: &[u8], seed: u64) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = fmix64(h ^ w);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = fmix64(h ^ u64::from_le_bytes(w));
    }
    fmix64(h ^ key.len() as u64)
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ppm: u64) -> Table<&'static str> {
        let lane = |v: &str, t| Lane {
            version: VersionId::new(v).unwrap(),
            target: Arc::new(t),
        };
        Table {
            primary: Some(lane("a", "A")),
            candidate: (ppm > 0).then(|| (lane("b", "B"), ppm_to_threshold(ppm))),
            shadow: None,
            seed: 7,
            health: Box::new([]),
        }
    }

    fn route(t: &Table<&'static str>, key: &str) -> &'static str {
        *t.route_point(key_point(key.as_bytes(), t.seed))
            .unwrap()
            .target
    }

    /// `key_point(b"user-42", 0)`, computed once and pinned.
    const PINNED_USER_42: u64 = 0x3ccd_b7e8_8173_2e5a;

    #[test]
    fn the_hash_is_stable() {
        // Pinned: changing these changes which version every sticky key lands on.
        assert_eq!(key_point(b"user-42", 0), PINNED_USER_42);
        let a = key_point(b"user-42", 0);
        assert_eq!(a, key_point(b"user-42", 0));
        assert_ne!(a, key_point(b"user-43", 0));
        assert_ne!(a, key_point(b"user-42", 1));
        assert_ne!(
            key_point(b"ab", 0),
            key_point(b"ab\0", 0),
            "length is mixed in"
        );
    }

    #[test]
    fn thresholds_round_trip() {
        for ppm in [0, 1, 50_000, 250_000, 333_333, 999_999, PPM] {
            assert_eq!(threshold_to_ppm(ppm_to_threshold(ppm)), ppm, "{ppm}");
        }
        assert_eq!(ppm_to_threshold(PPM), 0);
    }

    #[test]
    fn shares_are_close_to_their_percent() {
        let t = table(250_000);
        let n = 20_000;
        let b = (0..n)
            .filter(|i| route(&t, &format!("user-{i}")) == "B")
            .count();
        let share = b as f64 / n as f64;
        assert!((0.23..0.27).contains(&share), "{share}");
    }

    #[test]
    fn the_same_key_always_gets_the_same_version() {
        let t = table(500_000);
        for i in 0..1000 {
            let k = format!("k{i}");
            assert_eq!(route(&t, &k), route(&t, &k));
        }
    }

    #[test]
    fn growing_a_share_moves_only_the_keys_it_must() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("session-{i}")).collect();
        let (small, large) = (table(100_000), table(300_000));
        let mut moved = 0;
        for k in &keys {
            match (route(&small, k), route(&large, k)) {
                ("B", "A") => panic!("{k} went back from B to A when B grew"),
                ("A", "B") => moved += 1,
                _ => {}
            }
        }
        // Exactly the keys in the band between the thresholds move: about 20%.
        let share = moved as f64 / keys.len() as f64;
        assert!((0.18..0.22).contains(&share), "{share}");
    }
}
