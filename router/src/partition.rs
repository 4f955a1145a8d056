//! Which shard a primary key belongs to.
//!
//! A key is first hashed to a **stable** u64: xxh3-64 of `0x00` + the integer key as u64
//! little-endian, or of `0x01` + the string key's UTF-8 bytes. That u64 is placed on a
//! consistent-hash ring of the collection's shards (`consistent_hash::StaticHashRing`, with
//! virtual nodes). The ring's own hashing goes through [`StableHasher`] (xxh3 over
//! little-endian integers), never through `std`'s `DefaultHasher`, so placement is the same
//! on every platform and Rust version. Golden vectors in the tests pin it.

use std::hash::{Hash, Hasher};

use consistent_hash::{Node, RingHash, StaticHashRing};
use vecshard_proto::v1::{Key, key};
use xxhash_rust::xxh3::{Xxh3Default, xxh3_64};

/// Virtual nodes per shard on the ring. Part of the placement: changing it moves keys.
const VNODES_PER_SHARD: usize = 1024;

/// The stable 64-bit hash of a key (see the module documentation). `None` for a key with
/// no kind set.
pub fn key_hash(k: &Key) -> Option<u64> {
    Some(match k.kind.as_ref()? {
        key::Kind::Int(v) => {
            let mut b = [0u8; 9];
            b[1..].copy_from_slice(&v.to_le_bytes());
            xxh3_64(&b)
        }
        key::Kind::Str(s) => {
            let mut h = Xxh3Default::new();
            h.update(&[1]);
            h.update(s.as_bytes());
            h.digest()
        }
    })
}

/// Maps keys to shard numbers for a collection with a fixed shard count.
pub struct Partitioner {
    ring: StaticHashRing<'static, u32, (), StableRingHash>,
    shards: u32,
}

impl std::fmt::Debug for Partitioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Partitioner({} shards)", self.shards)
    }
}

impl Partitioner {
    /// A ring of shards `0..shards` (at least one).
    pub fn new(shards: u32) -> Self {
        let shards = shards.max(1);
        let nodes = (0..shards).map(|s| Node::new(s).quantity(VNODES_PER_SHARD));
        Partitioner {
            ring: StaticHashRing::new(StableRingHash, nodes),
            shards,
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The shard of a key's stable hash.
    pub fn shard_of_hash(&self, hash: u64) -> u32 {
        self.ring
            .calc_candidates(&hash)
            .next()
            .map(|n| n.key)
            .unwrap_or(0)
    }

    /// The shard of a key; `None` for a key with no kind set.
    pub fn shard_of(&self, k: &Key) -> Option<u32> {
        key_hash(k).map(|h| self.shard_of_hash(h))
    }
}

/// The ring's hash: every value goes through [`StableHasher`].
#[derive(Debug, Clone, Copy)]
struct StableRingHash;

impl RingHash for StableRingHash {
    fn hash_item<T: Hash>(&self, item: &T) -> u64 {
        let mut h = StableHasher::default();
        item.hash(&mut h);
        h.finish()
    }
}

/// A `Hasher` whose output depends only on the values written: integers are fed to xxh3
/// as little-endian bytes, `usize`/`isize` widened to 64 bits.
#[derive(Default)]
pub struct StableHasher(Xxh3Default);

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.0.digest()
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn write_u8(&mut self, v: u8) {
        self.write(&[v]);
    }
    fn write_u16(&mut self, v: u16) {
        self.write(&v.to_le_bytes());
    }
    fn write_u32(&mut self, v: u32) {
        self.write(&v.to_le_bytes());
    }
    fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }
    fn write_u128(&mut self, v: u128) {
        self.write(&v.to_le_bytes());
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn write_i8(&mut self, v: i8) {
        self.write_u8(v as u8);
    }
    fn write_i16(&mut self, v: i16) {
        self.write_u16(v as u16);
    }
    fn write_i32(&mut self, v: i32) {
        self.write_u32(v as u32);
    }
    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }
    fn write_i128(&mut self, v: i128) {
        self.write_u128(v as u128);
    }
    fn write_isize(&mut self, v: isize) {
        self.write_u64(v as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: u64) -> Key {
        Key {
            kind: Some(key::Kind::Int(v)),
        }
    }
    fn s(v: &str) -> Key {
        Key {
            kind: Some(key::Kind::Str(v.to_string())),
        }
    }

    #[test]
    fn key_hash_is_xxh3_of_tagged_bytes() {
        let mut b = vec![0u8];
        b.extend_from_slice(&42u64.to_le_bytes());
        assert_eq!(key_hash(&int(42)), Some(xxh3_64(&b)));
        assert_eq!(key_hash(&s("héllo")), Some(xxh3_64("\x01héllo".as_bytes())));
        assert_eq!(key_hash(&Key { kind: None }), None);
        // An integer key and the string of its digits are different keys.
        assert_ne!(key_hash(&int(7)), key_hash(&s("7")));
    }

    /// Placement must never change across versions or platforms: these keys stay on
    /// these shards (for 1, 2, 3, 4, 8 and 16 shards).
    #[test]
    fn golden_vectors() {
        // XXH3-64 with seed 0 of the empty input, the reference test vector.
        assert_eq!(xxh3_64(b""), 0x2d06_8005_38d3_94c2);
        let golden: [(Key, u64, [u32; 6]); 10] = [
            (int(0), 0x34499569f0391857, [0, 1, 2, 2, 4, 4]),
            (int(1), 0x4ac0e8d997f93b82, [0, 1, 1, 1, 7, 7]),
            (int(42), 0x6317a72c21854a9c, [0, 0, 0, 0, 6, 11]),
            (int(1_000_000), 0x499974b95f215239, [0, 1, 1, 1, 6, 12]),
            (int(u64::MAX), 0x4ca76e617dc4177b, [0, 0, 2, 3, 5, 15]),
            (s(""), 0xe12ef9d2eb86ceeb, [0, 1, 1, 1, 1, 1]),
            (s("a"), 0x21c8324543049a44, [0, 0, 0, 0, 5, 5]),
            (s("hello"), 0xa82bfa4e5f4eecc9, [0, 1, 1, 1, 6, 6]),
            (s("user:42"), 0xe88cea04e391f8f1, [0, 1, 2, 2, 4, 9]),
            (s("ünïcödé"), 0xcbda75433d6db334, [0, 0, 0, 0, 6, 6]),
        ];
        let rings: Vec<Partitioner> = [1u32, 2, 3, 4, 8, 16]
            .iter()
            .map(|n| Partitioner::new(*n))
            .collect();
        for (k, hash, shards) in golden {
            assert_eq!(key_hash(&k), Some(hash), "{k:?}");
            let got: Vec<u32> = rings.iter().map(|r| r.shard_of(&k).unwrap()).collect();
            assert_eq!(got, shards, "{k:?}");
        }
    }

    #[test]
    fn balance_is_within_a_few_percent() {
        for shards in [2u32, 3, 4, 8, 16] {
            let p = Partitioner::new(shards);
            let n = 200_000u64;
            let mut counts = vec![0u64; shards as usize];
            for i in 0..n {
                counts[p.shard_of(&int(i)).unwrap() as usize] += 1;
            }
            let ideal = n as f64 / shards as f64;
            for (shard, c) in counts.iter().enumerate() {
                let dev = (*c as f64 - ideal).abs() / ideal;
                assert!(
                    dev < 0.10,
                    "{shards} shards: shard {shard} holds {c}, ideal {ideal}"
                );
            }
        }
    }

    #[test]
    fn adding_a_shard_moves_about_its_share() {
        let (a, b) = (Partitioner::new(4), Partitioner::new(5));
        let n = 100_000u64;
        let moved = (0..n)
            .filter(|i| a.shard_of(&int(*i)) != b.shard_of(&int(*i)))
            .count() as f64;
        let frac = moved / n as f64;
        assert!((0.15..0.26).contains(&frac), "moved {frac}");
    }
}
