//! The translation cache: decoded basic blocks keyed by (address space, RIP).
//!
//! Lookup goes through a direct-mapped table in front of a hash map (the map
//! is only probed, never iterated, so host hashing cannot reach results).
//! Every block records the code pages it was decoded from; a store to such a
//! page invalidates the page's blocks (self-modifying code). Invalidation
//! is by guest-virtual page and applies to every address space.
//!
//! Both the lookup table and the page filter start small and grow (by 4x,
//! up to their full sizes) as the cache fills: every core has a cache, an
//! out-of-order core three, and most of them hold a few hundred blocks or
//! none, while the full tables are 112 KB each. Growing only drops cached
//! lookups (refilled from the map) and recounts the filter, so what the
//! cache returns never changes.
//!
//! Checkpoints: a cache serializes only its counters ([`CacheStats`]); a
//! deserialized cache is empty and retranslates on demand. Translation is a
//! pure function of the guest's code bytes and nothing times it, so results
//! and timing are those of the saved cache; only `translations` goes on to
//! count the retranslations.

use crate::hash::{spread, AddrMap};
use crate::translate::Block;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address-space identifier (a page-table root, a domain's vCPU space…).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct AddressSpaceId(pub u64);

/// Slots in the direct-mapped lookup table, at most.
const FAST_SLOTS: usize = 4096;
/// Buckets of the code-page filter, at most.
const FILTER_BITS: usize = 4096;
/// Slots and buckets of a new cache (a power of two; grown by 4x while
/// the blocks, or the code pages, outnumber them).
const FIRST_SLOTS: usize = 64;
/// An empty lookup slot.
const NO_SLOT: (u64, AddressSpaceId, u32) = (u64::MAX, AddressSpaceId(0), 0);
/// Blocks kept before the whole cache is flushed.
const MAX_BLOCKS: usize = 1 << 16;

/// The set of pages holding translated code, with a cheap pre-filter.
#[derive(Clone, Debug)]
pub struct CodePages {
    /// Per filter bucket: how many code pages hash there (a power of two
    /// of buckets, `FIRST_SLOTS` to `FILTER_BITS`).
    counts: Vec<u32>,
    /// Code page → blocks decoded from it.
    pages: AddrMap<u64, Vec<u32>>,
}

impl CodePages {
    fn new() -> Self {
        Self {
            counts: vec![0; FIRST_SLOTS],
            pages: AddrMap::default(),
        }
    }

    #[inline(always)]
    fn bucket(&self, page: u64) -> usize {
        // Hashed, not the low bits: code and data pages 2 MiB apart (the
        // usual ELF layout) share their low page-number bits, and every
        // store to the data then missed the filter into the map.
        spread(page, self.counts.len().trailing_zeros())
    }

    /// Whether `page` may hold code (no false negatives).
    #[inline(always)]
    pub fn maybe(&self, page: u64) -> bool {
        self.counts[self.bucket(page)] != 0
    }

    /// Grows the filter once the code pages outnumber its buckets,
    /// recounting them (a sum per bucket: the map's order cannot matter).
    fn grow(&mut self) {
        if self.pages.len() <= self.counts.len() || self.counts.len() >= FILTER_BITS {
            return;
        }
        self.counts = vec![0; self.counts.len() * 4];
        for &page in self.pages.keys() {
            let b = self.bucket(page);
            self.counts[b] += 1;
        }
    }

    /// Whether `page` holds code.
    pub fn contains(&self, page: u64) -> bool {
        self.pages.contains_key(&page)
    }

    fn add(&mut self, page: u64, idx: u32) {
        let list = self.pages.entry(page).or_default();
        list.push(idx);
        if list.len() == 1 {
            let b = self.bucket(page);
            self.counts[b] += 1;
            self.grow();
        }
    }

    fn remove_block(&mut self, page: u64, idx: u32) {
        if let Some(list) = self.pages.get_mut(&page) {
            list.retain(|&i| i != idx);
            if list.is_empty() {
                self.pages.remove(&page);
                let b = self.bucket(page);
                self.counts[b] -= 1;
            }
        }
    }
}

/// Counters of the translation cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Blocks translated.
    pub translations: u64,
    /// Blocks dropped because their code page was written.
    pub invalidations: u64,
    /// Whole-cache flushes (capacity).
    pub flushes: u64,
}

/// Decoded blocks by (address space, RIP).
#[derive(Clone, Debug)]
pub struct TransCache {
    blocks: Vec<Option<(AddressSpaceId, Block)>>,
    free: Vec<u32>,
    map: AddrMap<(AddressSpaceId, u64), u32>,
    /// Direct-mapped lookups in front of `map` (a power of two of slots,
    /// `FIRST_SLOTS` to `FAST_SLOTS`).
    fast: Vec<(u64, AddressSpaceId, u32)>,
    code: CodePages,
    stats: CacheStats,
}

impl Default for TransCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Only the counters are saved (see the module docs: a restored cache
/// retranslates).
impl Serialize for TransCache {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.stats.serialize(s)
    }
}

/// An empty cache with the saved counters.
impl<'de> Deserialize<'de> for TransCache {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stats = CacheStats::deserialize(d)?;
        Ok(Self {
            stats,
            ..Self::new()
        })
    }
}

impl TransCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            blocks: Vec::new(),
            free: Vec::new(),
            map: AddrMap::default(),
            fast: vec![NO_SLOT; FIRST_SLOTS],
            code: CodePages::new(),
            stats: CacheStats::default(),
        }
    }

    #[inline(always)]
    fn slot(&self, rip: u64) -> usize {
        // Truncation is the point: low RIP bits pick the slot.
        (rip as usize ^ (rip >> 12) as usize) & (self.fast.len() - 1)
    }

    /// The block at (`asid`, `rip`), if translated.
    #[inline(always)]
    pub fn lookup(&mut self, asid: AddressSpaceId, rip: u64) -> Option<u32> {
        let s = self.slot(rip);
        let (r, a, idx) = self.fast[s];
        if r == rip && a == asid {
            return Some(idx);
        }
        let idx = *self.map.get(&(asid, rip))?;
        self.fast[s] = (rip, asid, idx);
        Some(idx)
    }

    /// Adds a block; returns its handle.
    pub fn insert(&mut self, asid: AddressSpaceId, mut block: Block) -> u32 {
        // A kept block lives until invalidated: give back the capacity
        // `translate_block` reserves for decoding (most blocks are far
        // shorter), which was most of a core's memory in small guests.
        block.uops.shrink_to_fit();
        block.insns.shrink_to_fit();
        block.details.shrink_to_fit();
        if self.map.len() >= MAX_BLOCKS {
            self.flush();
        }
        self.stats.translations += 1;
        let pages = block.pages;
        let rip = block.rip;
        let idx = match self.free.pop() {
            Some(i) => {
                self.blocks[i as usize] = Some((asid, block));
                i
            }
            None => {
                self.blocks.push(Some((asid, block)));
                u32::try_from(self.blocks.len() - 1).expect("block count fits u32")
            }
        };
        self.code.add(pages[0], idx);
        if pages[1] != pages[0] {
            self.code.add(pages[1], idx);
        }
        self.map.insert((asid, rip), idx);
        if self.map.len() > self.fast.len() && self.fast.len() < FAST_SLOTS {
            // Dropping the cached lookups is all a resize needs.
            self.fast = vec![NO_SLOT; self.fast.len() * 4];
        }
        let s = self.slot(rip);
        self.fast[s] = (rip, asid, idx);
        idx
    }

    /// The block behind a handle from [`Self::lookup`] or [`Self::insert`].
    #[inline(always)]
    pub fn block(&self, idx: u32) -> &Block {
        &self.blocks[idx as usize]
            .as_ref()
            .expect("handles point at live blocks")
            .1
    }

    /// The code-page set (for store checks).
    pub fn code_pages(&self) -> &CodePages {
        &self.code
    }

    /// Drops every block decoded from guest-virtual page number `page`.
    /// Returns how many were dropped.
    pub fn invalidate_page(&mut self, page: u64) -> usize {
        let Some(list) = self.code.pages.get(&page).cloned() else {
            return 0;
        };
        for idx in &list {
            self.remove(*idx);
        }
        self.stats.invalidations += list.len() as u64;
        list.len()
    }

    fn remove(&mut self, idx: u32) {
        let Some((asid, b)) = self.blocks[idx as usize].take() else {
            return;
        };
        self.map.remove(&(asid, b.rip));
        let s = self.slot(b.rip);
        if self.fast[s].2 == idx {
            self.fast[s] = NO_SLOT;
        }
        self.code.remove_block(b.pages[0], idx);
        self.code.remove_block(b.pages[1], idx);
        self.free.push(idx);
    }

    /// Drops every block.
    pub fn flush(&mut self) {
        *self = Self {
            stats: CacheStats {
                flushes: self.stats.flushes + 1,
                ..self.stats
            },
            ..Self::new()
        };
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(rip: u64) -> Block {
        Block {
            rip,
            uops: Vec::new(),
            insns: Vec::new(),
            end_rip: rip + 1,
            pages: [rip / 4096; 2],
            details: Vec::new(),
            has_rep: false,
        }
    }

    #[test]
    fn tables_grow_with_the_blocks_and_lookups_survive() {
        let mut c = TransCache::new();
        assert_eq!(
            (c.fast.len(), c.code.counts.len()),
            (FIRST_SLOTS, FIRST_SLOTS)
        );
        let rips: Vec<u64> = (0..10_000u64).map(|i| i * 4096 + (i % 7) * 16).collect();
        let handles: Vec<u32> = rips
            .iter()
            .map(|&r| c.insert(AddressSpaceId(r % 3), block(r)))
            .collect();
        assert_eq!(
            (c.fast.len(), c.code.counts.len()),
            (FAST_SLOTS, FILTER_BITS)
        );
        for (&r, &h) in rips.iter().zip(&handles) {
            assert_eq!(c.lookup(AddressSpaceId(r % 3), r), Some(h));
            assert_eq!(c.lookup(AddressSpaceId(r % 3 + 1), r), None);
            assert!(c.code_pages().maybe(r / 4096));
        }
        let per_bucket = |c: &TransCache| {
            let mut n = vec![0u32; c.code.counts.len()];
            for &p in c.code.pages.keys() {
                n[c.code.bucket(p)] += 1;
            }
            n
        };
        assert_eq!(c.code.counts, per_bucket(&c), "filter recounted exactly");
        assert_eq!(c.invalidate_page(rips[5] / 4096), 1);
        assert_eq!(c.lookup(AddressSpaceId(rips[5] % 3), rips[5]), None);
        assert_eq!(c.code.counts, per_bucket(&c));
        c.flush();
        assert_eq!(c.fast.len(), FIRST_SLOTS, "a flush starts small again");
    }
}
