//! Domain save and restore, as Xen's toolstack does it (libxc's
//! `xg_sr_save_x86_pv.c` / `xg_sr_restore_x86_pv.c`): a domain's state with
//! every machine frame number it holds rewritten to a pseudo-physical one
//! (canonicalised), so that it can be rebuilt on other machine frames.
//!
//! What is canonicalised, and how:
//! - each PFN's contents; page-table frames (typed L1..L4) have the MFN of
//!   every present entry rewritten to its PFN (`normalise_pagetable`);
//! - frames the domain may map without owning them have no PFN: its
//!   shared_info frame becomes [`SPECIAL_PFN`] and frame *i* of its group's
//!   shared area `SPECIAL_PFN + 1 + i` (Xen handles shared_info by a record
//!   of its own; the built-in guests' shared area is an smpsim extension).
//!   Their contents are saved with the domain;
//! - the P2M list in guest memory (`start_info.mfn_list`) and start_info's
//!   `shared_info`, `store_mfn` and `console_mfn`;
//! - the hypervisor's records: the builder's P2M and bootstrap L4, frame
//!   types by PFN, the VCPUs' page-table roots, vcpu_info and GDT frames,
//!   the xenstore ring.
//!
//! Restore maps each PFN to the frame the new machine's builder gave it
//! and rewrites the same places back (uncanonicalises). Frame types come
//! back with their counts as saved (they count references inside the
//! domain, which a rewrite preserves).
//!
//! Refused (a [`SaveError`]): a machine with more than one domain (its
//! interdomain event channels cannot survive, as with Xen's save, and the
//! event channel and xenstore state are saved whole), a domain that
//! switched to FIFO events or set up its grant table (their frames are
//! Xen's), one whose memory changed since it was built (ballooning), and
//! page-table entries that map frames outside the domain (or superpages).

use crate::builder::BuiltDomain;
use crate::evtchn::EventChannels;
use crate::hypervisor::{Domain, Hypervisor};
use crate::ids::{DomainId, Mfn, PAGE_SIZE};
use crate::memory::FrameStore;
use crate::mmu::PageInfo;
use crate::xenstore::Xenstored;
use serde::{Deserialize, Serialize};
use smpsim_cores::paging::pte;
use std::collections::BTreeMap;
use std::fmt;

/// The canonical frame number of a domain's shared_info frame; its group
/// shared area's frame *i* is `SPECIAL_PFN + 1 + i`. Above any PFN a
/// domain can have, and within a PTE's frame field.
pub const SPECIAL_PFN: u64 = 1 << 36;

/// Why a domain could not be saved or restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveError(pub String);

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SaveError {}

fn refuse<T>(what: impl Into<String>) -> Result<T, SaveError> {
    Err(SaveError(what.into()))
}

/// One pseudo-physical page of a saved domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPage {
    /// Its PFN (or a [`SPECIAL_PFN`] number).
    pub pfn: u64,
    /// Its type and counts.
    pub info: PageInfo,
    /// Its 4 KiB, canonicalised.
    pub bytes: Vec<u8>,
}

/// A saved domain, canonicalised (no machine frame numbers in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainImage {
    /// Pseudo-physical pages.
    pub nr_pages: u64,
    /// Every page, by PFN, then the special frames.
    pub pages: Vec<SavedPage>,
    /// The hypervisor's record of the domain, frames as PFNs.
    pub domain: Domain,
    /// Event channels (of the only domain).
    pub evtchn: EventChannels,
    /// The xenstore daemon's state, rings as PFNs.
    pub xenstored: Xenstored,
}

/// PFN ↔ MFN for one domain, special frames included.
struct Frames {
    to_canon: BTreeMap<u64, u64>,
    to_machine: BTreeMap<u64, u64>,
}

impl Frames {
    fn of(built: &BuiltDomain, shared: &[Mfn]) -> Self {
        let mut pairs: Vec<(u64, u64)> = built
            .p2m
            .iter()
            .enumerate()
            .map(|(pfn, m)| (m.0, pfn as u64))
            .collect();
        pairs.push((built.shared_info.0, SPECIAL_PFN));
        for (i, m) in shared.iter().enumerate() {
            pairs.push((m.0, SPECIAL_PFN + 1 + i as u64));
        }
        Frames {
            to_canon: pairs.iter().copied().collect(),
            to_machine: pairs.iter().map(|&(m, p)| (p, m)).collect(),
        }
    }
}

/// Rewrites the frame field of every present entry of a page-table page.
fn rewrite_table(
    bytes: &mut [u8],
    level: u32,
    map: &BTreeMap<u64, u64>,
    pfn: u64,
) -> Result<(), SaveError> {
    for (i, e) in bytes.chunks_exact_mut(8).enumerate() {
        let v = u64::from_le_bytes((&*e).try_into().expect("8 bytes"));
        if v & pte::P == 0 {
            continue;
        }
        if level > 1 && v & pte::PS != 0 {
            return refuse(format!(
                "page {pfn:#x} (L{level}) entry {i} is a superpage mapping"
            ));
        }
        let frame = (v & pte::ADDR) >> 12;
        let Some(&to) = map.get(&frame) else {
            return refuse(format!(
                "page {pfn:#x} (L{level}) entry {i} maps frame {frame:#x}, not the domain's"
            ));
        };
        let nv = (v & !pte::ADDR) | (to << 12);
        e.copy_from_slice(&nv.to_le_bytes());
    }
    Ok(())
}

/// Rewrites each u64 of `bytes[range]` that `map` knows (P2M entries,
/// start_info's frame fields); `ma`: the values are machine addresses.
fn rewrite_words(bytes: &mut [u8], offsets: &[usize], map: &BTreeMap<u64, u64>, ma: &[bool]) {
    for (&off, &is_ma) in offsets.iter().zip(ma) {
        let v = u64::from_le_bytes(bytes[off..off + 8].try_into().expect("8 bytes"));
        let (frame, low) = if is_ma { (v >> 12, v & 0xfff) } else { (v, 0) };
        if let Some(&to) = map.get(&frame) {
            let nv = if is_ma { (to << 12) | low } else { to };
            bytes[off..off + 8].copy_from_slice(&nv.to_le_bytes());
        }
    }
}

/// start_info's fields holding frames: shared_info (a machine address),
/// store_mfn, console_mfn.
const START_INFO_FRAMES: [usize; 3] = [40, 56, 72];
const START_INFO_IS_MA: [bool; 3] = [true, false, false];

/// The PFN range holding the P2M list, and the start_info PFN.
fn special_pages(b: &BuiltDomain) -> (std::ops::Range<u64>, u64) {
    let l = &b.layout;
    let first = (l.p2m_va - l.virt_base) / PAGE_SIZE;
    let n = (b.p2m.len() as u64 * 8).div_ceil(PAGE_SIZE);
    (
        first..first + n,
        (l.start_info_va - l.virt_base) / PAGE_SIZE,
    )
}

/// Canonicalises (`map`: MFN → PFN) or uncanonicalises (PFN → MFN) the
/// contents of page `pfn` in place.
fn rewrite_page(
    b: &BuiltDomain,
    pfn: u64,
    info: &PageInfo,
    bytes: &mut [u8],
    map: &BTreeMap<u64, u64>,
) -> Result<(), SaveError> {
    if let Some(level) = info.ty.level() {
        return rewrite_table(bytes, level, map, pfn);
    }
    let (p2m, si) = special_pages(b);
    if p2m.contains(&pfn) {
        let offs: Vec<usize> = (0..512).map(|i| i * 8).collect();
        rewrite_words(bytes, &offs, map, &[false; 512]);
    } else if pfn == si {
        rewrite_words(bytes, &START_INFO_FRAMES, map, &START_INFO_IS_MA);
    }
    Ok(())
}

impl Domain {
    /// Rewrites every frame number the hypervisor keeps for the domain
    /// through `map`.
    fn remap(&mut self, map: &BTreeMap<u64, u64>) -> Result<(), SaveError> {
        let f = |m: Mfn| -> Result<Mfn, SaveError> {
            map.get(&m.0)
                .map(|&x| Mfn(x))
                .ok_or_else(|| SaveError(format!("frame {:#x} is not the domain's", m.0)))
        };
        let ma = |a: u64| f(Mfn(a >> 12)).map(|m| (m.0 << 12) | (a & 0xfff));
        let b = &mut self.built;
        for m in &mut b.p2m {
            *m = f(*m)?;
        }
        b.l4 = f(b.l4)?;
        b.shared_info = f(b.shared_info)?;
        let si = &mut b.start_info;
        si.shared_info_ma = ma(si.shared_info_ma)?;
        si.store_mfn = f(Mfn(si.store_mfn))?.0;
        si.console_mfn = f(Mfn(si.console_mfn))?.0;
        for m in &mut self.foreign_ok {
            *m = f(*m)?;
        }
        for v in &mut self.vcpus {
            if let Some(a) = v.vcpu_info {
                v.vcpu_info = Some(ma(a)?);
            }
            if let Some(r) = v.mmu.kernel_root {
                v.mmu.kernel_root = Some(f(r)?);
            }
            if let Some(r) = v.mmu.user_root {
                v.mmu.user_root = Some(f(r)?);
            }
            for g in &mut v.pv.gdt_frames {
                *g = f(*g)?;
            }
        }
        let pages = std::mem::take(&mut self.mmu.pages);
        for (m, info) in pages {
            self.mmu.pages.insert(f(Mfn(m))?.0, info);
        }
        Ok(())
    }
}

impl Hypervisor {
    /// Saves domain `d` (at a barrier, its VCPUs at instruction boundaries
    /// and their stores drained into `store`), canonicalised.
    ///
    /// # Errors
    /// What the module doc lists as refused.
    pub fn save_domain(
        &self,
        d: DomainId,
        store: &mut dyn FrameStore,
    ) -> Result<DomainImage, SaveError> {
        if self.domains.len() != 1 {
            return refuse(format!(
                "the machine has {} domains: only a single-domain machine can be saved \
                 (interdomain event channels cannot survive a save)",
                self.domains.len()
            ));
        }
        let dom = self
            .domain(d)
            .ok_or_else(|| SaveError(format!("there is no domain {}", d.0)))?;
        if dom.fifo.is_some() {
            return refuse("the domain uses FIFO event channels (not supported by domain save)");
        }
        if dom.grant != crate::grant::GrantTable::default() {
            return refuse("the domain set up its grant table (not supported by domain save)");
        }
        if dom.shutdown.is_some() {
            return refuse("the domain has already shut down");
        }
        let b = &dom.built;
        if dom.mmu.pages.len() != b.p2m.len()
            || b.p2m.iter().any(|m| !dom.mmu.pages.contains_key(&m.0))
        {
            return refuse(
                "the domain's memory changed since it was built (ballooning is not supported)",
            );
        }
        let shared = self.shared_frames(dom);
        let frames = Frames::of(b, &shared);
        let mut pages = Vec::with_capacity(b.p2m.len() + 1 + shared.len());
        let mut add = |pfn: u64, m: Mfn, info: PageInfo| -> Result<(), SaveError> {
            let mut bytes = vec![0u8; PAGE_SIZE as usize];
            store.read(m.addr(0).get(), &mut bytes);
            rewrite_page(b, pfn, &info, &mut bytes, &frames.to_canon)?;
            pages.push(SavedPage { pfn, info, bytes });
            Ok(())
        };
        for (pfn, m) in b.p2m.iter().enumerate() {
            add(pfn as u64, *m, dom.mmu.pages[&m.0])?;
        }
        add(SPECIAL_PFN, b.shared_info, PageInfo::default())?;
        for (i, m) in shared.iter().enumerate() {
            add(SPECIAL_PFN + 1 + i as u64, *m, PageInfo::default())?;
        }
        let mut domain = dom.clone();
        domain.remap(&frames.to_canon)?;
        let mut xenstored = self.xenstored.clone();
        xenstored.remap_rings(&frames.to_canon);
        Ok(DomainImage {
            nr_pages: b.p2m.len() as u64,
            pages,
            domain,
            evtchn: self.evtchn.clone(),
            xenstored,
        })
    }

    /// The group shared area's frames the domain may map.
    fn shared_frames(&self, dom: &Domain) -> Vec<Mfn> {
        dom.foreign_ok
            .iter()
            .copied()
            .filter(|&m| m != dom.built.shared_info)
            .collect()
    }

    /// Restores `img` over domain `d`, which this machine's builder built
    /// from the same image and config (on other machine frames): its
    /// memory, types, records, event channels and xenstore state are
    /// replaced by the saved ones, uncanonicalised to this domain's frames.
    ///
    /// # Errors
    /// An image whose shape differs from the domain built here.
    pub fn restore_domain(
        &mut self,
        d: DomainId,
        img: DomainImage,
        store: &mut dyn FrameStore,
    ) -> Result<(), SaveError> {
        if self.domains.len() != 1 {
            return refuse("the restoring machine must hold exactly one domain");
        }
        let dom = self
            .domain(d)
            .ok_or_else(|| SaveError(format!("there is no domain {}", d.0)))?;
        let shared = self.shared_frames(dom);
        if img.nr_pages != dom.built.p2m.len() as u64
            || img.pages.len() != dom.built.p2m.len() + 1 + shared.len()
        {
            return refuse(format!(
                "the saved domain has {} pages ({} frames in all); the one built here {} ({})",
                img.nr_pages,
                img.pages.len(),
                dom.built.p2m.len(),
                dom.built.p2m.len() + 1 + shared.len()
            ));
        }
        let frames = Frames::of(&dom.built, &shared);
        let mut domain = img.domain;
        domain.remap(&frames.to_machine)?;
        for p in img.pages {
            let mut bytes = p.bytes;
            rewrite_page(
                &domain.built,
                p.pfn,
                &p.info,
                &mut bytes,
                &frames.to_machine,
            )?;
            let m = frames.to_machine[&p.pfn];
            store.write(Mfn(m).addr(0).get(), &bytes);
        }
        domain.id = d;
        self.domains[usize::from(d.0)] = domain;
        self.evtchn = img.evtchn;
        let mut xenstored = img.xenstored;
        xenstored.remap_rings(&frames.to_machine);
        self.xenstored = xenstored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::tests::{test_config, test_image};
    use crate::hypervisor::HypervisorConfig;
    use crate::ids::VcpuId;
    use crate::memory::{GuestMemory, PagedMemory, SparseFrames};

    fn built(ballast: u64) -> (Hypervisor, SparseFrames) {
        let mut hv = Hypervisor::new(HypervisorConfig::new(2_000_000_000, Mfn(0x1000), 1 << 16));
        hv.reserve_frames(ballast).expect("frames left");
        let mut store = SparseFrames::new();
        hv.create_domain(&test_image(), &test_config(), &mut store)
            .expect("test domain builds");
        (hv, store)
    }

    fn read_va(hv: &Hypervisor, store: &mut SparseFrames, va: u64) -> u64 {
        let space = hv.vcpu_space(DomainId(0), VcpuId(0));
        let mut m = PagedMemory {
            space: &space,
            store,
        };
        let mut b = [0u8; 8];
        m.read_virt(va, &mut b).expect("mapped");
        u64::from_le_bytes(b)
    }

    #[test]
    fn saved_page_tables_hold_pfns_and_restore_onto_other_frames() {
        let (a, sa) = built(0);
        let d = DomainId(0);
        // The bootstrap stack's top word: a plain page mapped 1:1.
        let l = a.domain(d).expect("built").layout().clone();
        let va = l.stack_top - 8;
        let pfn = (va - l.virt_base) / PAGE_SIZE;
        let mut sm = sa.clone();
        let ma = a.domain(d).expect("built").p2m()[pfn as usize].addr(va % PAGE_SIZE);
        sm.write(ma.get(), &42u64.to_le_bytes());
        let img = a.save_domain(d, &mut sm).expect("saves");
        // Canonical: the saved root's entries name PFNs, below nr_pages or
        // special.
        let root = img.domain.vcpus[0].mmu.kernel_root.expect("a root");
        let l4 = &img.pages[root.0 as usize];
        assert_eq!(l4.info.ty, crate::mmu::PageType::L4);
        for e in l4.bytes.chunks_exact(8) {
            let v = u64::from_le_bytes(e.try_into().expect("8"));
            if v & pte::P != 0 {
                let f = (v & pte::ADDR) >> 12;
                assert!(f < img.nr_pages || f >= SPECIAL_PFN, "{f:#x}");
            }
        }
        let (mut b, mut sb) = built(300);
        let before = a.domain(d).expect("built").p2m().to_vec();
        b.restore_domain(d, img, &mut sb).expect("restores");
        let after = b.domain(d).expect("restored").p2m().to_vec();
        assert!(before.iter().zip(&after).all(|(x, y)| x != y));
        assert_eq!(read_va(&b, &mut sb, va), 42, "the page moved with its PFN");
        let (root_b, _) = b.active_root(d, VcpuId(0));
        assert!(after.contains(&root_b.expect("a root")));
    }

    #[test]
    fn a_table_entry_to_a_foreign_frame_is_refused() {
        let mut page = vec![0u8; 4096];
        page[..8].copy_from_slice(&(0x0999_9000 | pte::P).to_le_bytes());
        let e = rewrite_table(&mut page, 1, &BTreeMap::new(), 3).expect_err("refused");
        assert!(e.0.contains("not the domain's"), "{e}");
    }
}
