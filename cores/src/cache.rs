//! The translation cache: decoded basic blocks keyed by (address space, RIP).
//!
//! Lookup goes through a direct-mapped table in front of a hash map (the map
//! is only probed, never iterated, so host hashing cannot reach results).
//! Every block records the code pages it was decoded from; a store to such a
//! page invalidates the page's blocks (self-modifying code). Invalidation
//! is by guest-virtual page and applies to every address space.
//!
//! Checkpoints: a cache serializes only its counters ([`CacheStats`]); a
//! deserialized cache is empty and retranslates on demand. Translation is a
//! pure function of the guest's code bytes and nothing times it, so results
//! and timing are those of the saved cache; only `translations` goes on to
//! count the retranslations.

use crate::translate::Block;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;

/// An address-space identifier (a page-table root, a domain's vCPU space…).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct AddressSpaceId(pub u64);

/// Slots in the direct-mapped lookup table.
const FAST_SLOTS: usize = 4096;
/// Bits of the code-page filter.
const FILTER_BITS: usize = 4096;
/// Blocks kept before the whole cache is flushed.
const MAX_BLOCKS: usize = 1 << 16;

/// The set of pages holding translated code, with a cheap pre-filter.
#[derive(Clone, Debug)]
pub struct CodePages {
    /// Per filter bucket: how many code pages hash there.
    counts: Vec<u32>,
    /// Code page → blocks decoded from it.
    pages: HashMap<u64, Vec<u32>>,
}

impl CodePages {
    fn new() -> Self {
        Self {
            counts: vec![0; FILTER_BITS],
            pages: HashMap::new(),
        }
    }

    fn bucket(page: u64) -> usize {
        // Truncation is the point: low page-number bits pick the bucket.
        (page as usize) % FILTER_BITS
    }

    /// Whether `page` may hold code (no false negatives).
    #[inline(always)]
    pub fn maybe(&self, page: u64) -> bool {
        self.counts[Self::bucket(page)] != 0
    }

    /// Whether `page` holds code.
    pub fn contains(&self, page: u64) -> bool {
        self.pages.contains_key(&page)
    }

    fn add(&mut self, page: u64, idx: u32) {
        let list = self.pages.entry(page).or_default();
        if list.is_empty() {
            self.counts[Self::bucket(page)] += 1;
        }
        list.push(idx);
    }

    fn remove_block(&mut self, page: u64, idx: u32) {
        if let Some(list) = self.pages.get_mut(&page) {
            list.retain(|&i| i != idx);
            if list.is_empty() {
                self.pages.remove(&page);
                self.counts[Self::bucket(page)] -= 1;
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
    map: HashMap<(AddressSpaceId, u64), u32>,
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
            map: HashMap::new(),
            fast: vec![(u64::MAX, AddressSpaceId(0), 0); FAST_SLOTS],
            code: CodePages::new(),
            stats: CacheStats::default(),
        }
    }

    #[inline(always)]
    fn slot(rip: u64) -> usize {
        // Truncation is the point: low RIP bits pick the slot.
        (rip as usize ^ (rip >> 12) as usize) % FAST_SLOTS
    }

    /// The block at (`asid`, `rip`), if translated.
    #[inline(always)]
    pub fn lookup(&mut self, asid: AddressSpaceId, rip: u64) -> Option<u32> {
        let s = Self::slot(rip);
        let (r, a, idx) = self.fast[s];
        if r == rip && a == asid {
            return Some(idx);
        }
        let idx = *self.map.get(&(asid, rip))?;
        self.fast[s] = (rip, asid, idx);
        Some(idx)
    }

    /// Adds a block; returns its handle.
    pub fn insert(&mut self, asid: AddressSpaceId, block: Block) -> u32 {
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
        self.fast[Self::slot(rip)] = (rip, asid, idx);
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
        let s = Self::slot(b.rip);
        if self.fast[s].2 == idx {
            self.fast[s] = (u64::MAX, AddressSpaceId(0), 0);
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
