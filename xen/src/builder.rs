//! The domain builder: lays a loaded guest image out in a fresh domain's
//! pseudo-physical memory and prepares everything a PV64 guest expects at
//! its first instruction (xen-abi.md §1.3, §2.1–§2.4).
//!
//! # Memory and address-space layout
//! `nr_pages = memory_bytes / 4096` pseudo-physical pages, backed by machine
//! frames from the [`FrameAllocator`] in ascending order (PFN *i* → the
//! *i*-th frame handed out; the shared_info frame is allocated after them and
//! is not part of the P2M, as in Xen). The guest runs on real x86-64 page
//! tables: the builder writes bootstrap tables that map, as Xen's PV domain
//! builder does, the bootstrap region 1:1 onto the first pseudo-physical
//! pages (items page aligned, packed in this order):
//!
//! | VA | what |
//! |---|---|
//! | `virt_base` … `image_end` | the ELF segments (image_end = last segment end, page aligned) |
//! | `mod_start` | the ramdisk, if any (`mod_len` bytes) |
//! | next | the P2M list: `nr_pages` × u64 MFNs (`start_info.mfn_list`) |
//! | next page | start_info (RSI at entry) |
//! | next page | the xenstore ring (`store_mfn`, `store_evtchn`) |
//! | next page | the console ring (`console.domU`) |
//! | `pt_base` | the bootstrap page tables, L4 first (`nr_pt_frames`), mapped read-only |
//! | next page | bootstrap stack (RSP at entry = its top) |
//! | … `mapped_end` | slack: at least 512 KiB, to a 4 MiB boundary |
//!
//! The hypervisor then validates the tables, pins the L4 and makes it VCPU
//! 0's CR3 ([`crate::mmu`]); the read-only M2P at `HYPERVISOR_VIRT_START`
//! is Xen's own mapping. The guest maps shared_info itself
//! (`update_va_mapping`), as on Xen.
//!
//! **Built-in guests** (images with an smpsim params block, built against
//! smpsim's guest runtime) get more mapped by the same tables: all of their
//! pseudo-physical memory 1:1 from `virt_base`, shared_info one guard page
//! past the end of memory (`params.shared_info_va`), and their group's
//! shared area at [`SHARED_AREA_VA`] (1 TiB) by default
//! (`params.shared_va`), the same VA in every domain of the group. This is
//! an smpsim extension of the boot protocol that spares the runtime from
//! building its own tables; a guest written for Xen sees Xen's layout.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::abi::shared_info as si;
use crate::frames::{FrameAllocator, OutOfFrames};
use crate::ids::{Mfn, PAGE_SIZE};
use crate::memory::{pieces, FrameStore};
use crate::time::TimeScale;
use smpsim_cores::arch::flags;
use smpsim_cores::arch::reg::{RSI, RSP};
use smpsim_cores::paging::{self, pte};
use smpsim_cores::ArchState;
use std::collections::BTreeMap;

/// One loadable segment of the guest image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Virtual address of the first byte.
    pub vaddr: u64,
    /// File contents (`filesz` bytes).
    pub bytes: Vec<u8>,
    /// Size in memory (≥ `bytes.len()`; the rest is zero).
    pub memsz: u64,
}

/// A loaded guest image, as the workloads crate's ELF loader produces it.
///
/// From `smpsim_workloads::ElfImage`: one [`Segment`] per PT_LOAD
/// (`vaddr.0`, `segment_data(seg)`, `memsz`), `entry().0`,
/// `virt_base().0`, `hypercall_page()?.map(|v| v.0)` and
/// `Some(params_addr()?.0)`. The builder fills the params block itself
/// (bytes 8..128, including `shared_info_va`/`shared_va` of its layout), so
/// the segments may carry the image's own bytes there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestImage {
    /// PT_LOAD segments.
    pub segments: Vec<Segment>,
    /// Entry point (VA).
    pub entry: u64,
    /// VA of pseudo-physical page 0 (`XEN_ELFNOTE_VIRT_BASE`).
    pub virt_base: u64,
    /// VA of the hypercall page (`XEN_ELFNOTE_HYPERCALL_PAGE`), if any.
    pub hypercall_page: Option<u64>,
    /// VA of `smpsim_params` (SMPSIM note 1), if any.
    pub params: Option<u64>,
    /// `XEN_ELFNOTE_GUEST_OS` ("" without the note).
    pub guest_os: String,
    /// `XEN_ELFNOTE_FEATURES`, as written ("" without the note).
    pub features: String,
}

/// Values the builder writes into bytes 8..128 of `struct smpsim_params`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamsFill {
    /// VCPUs to use (0 = count with VCPUOP_is_up).
    pub nr_vcpus: u32,
    /// `SMPSIM_FLAG_*`.
    pub flags: u32,
    /// Index of this domain in its group.
    pub domain_index: u32,
    /// Domid of the peer domain.
    pub peer_domid: u32,
    /// Workload arguments (0 = the workload's default).
    pub args: [u64; 8],
}

/// Default VA of a group's shared area: far above any domain's memory, so
/// every domain of the group maps it at the same address.
pub const SHARED_AREA_VA: u64 = 0x100_0000_0000;

/// Machine frames shared by the domains of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedArea {
    /// Page-aligned VA where every domain of the group maps it.
    pub va: u64,
    /// The frames, mapped contiguously from `va`.
    pub frames: Vec<Mfn>,
}

/// What to build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainConfig {
    /// Pseudo-physical memory in bytes (a multiple of 4096).
    pub memory_bytes: u64,
    /// The most memory the domain may grow to by `memory_op` (Xen's
    /// `max_pages`, the toolstack's `maxmem`), in bytes; 0: `memory_bytes`.
    pub max_memory_bytes: u64,
    /// VCPUs of the domain.
    pub vcpus: u32,
    /// Guest command line (`start_info.cmd_line`, at most 1023 bytes).
    pub cmdline: String,
    /// Wall-clock seconds at system time 0.
    pub wallclock_sec: u64,
    /// The parameter block contents.
    pub params: ParamsFill,
    /// The group's shared area, if any.
    pub shared: Option<SharedArea>,
    /// The initial ramdisk (`start_info.mod_start`/`mod_len`); empty: none.
    pub ramdisk: Vec<u8>,
    /// Whether it is the privileged control domain (domain 0 only):
    /// `SIF_PRIVILEGED | SIF_INITDOMAIN` in `start_info.flags` and the
    /// rights Xen's dummy XSM gives the control domain.
    pub privileged: bool,
}

/// Why a domain could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// `memory_bytes` is 0 or not a multiple of 4096.
    BadMemorySize(u64),
    /// No VCPUs.
    NoVcpus,
    /// `virt_base` is not page aligned.
    BadVirtBase(u64),
    /// A segment's file size exceeds its memory size.
    SegmentFileTooLarge {
        /// Segment VA.
        vaddr: u64,
        /// File bytes.
        filesz: u64,
        /// Memory bytes.
        memsz: u64,
    },
    /// A segment lies (partly) outside `[virt_base, virt_base + memory)`.
    SegmentOutsideMemory {
        /// Segment VA.
        vaddr: u64,
        /// Its end VA.
        end: u64,
        /// First VA past memory.
        memory_end: u64,
    },
    /// Two segments overlap.
    SegmentsOverlap {
        /// First segment VA.
        a: u64,
        /// Second segment VA.
        b: u64,
    },
    /// Image plus boot data need more pages than the domain has.
    ImageTooBig {
        /// Pages needed.
        needed: u64,
        /// Pages available.
        have: u64,
    },
    /// The entry point is outside the image.
    EntryOutsideImage(u64),
    /// The hypercall page is not a page-aligned page inside the image.
    BadHypercallPage(u64),
    /// The params block is not inside a loaded segment.
    ParamsOutsideImage(u64),
    /// The params block's magic or version is wrong.
    BadParams {
        /// Magic found.
        magic: u32,
        /// Version found.
        version: u32,
    },
    /// The command line does not fit in 1023 bytes.
    CmdlineTooLong(usize),
    /// The shared area is not page aligned or overlaps the domain's memory
    /// or shared_info page.
    BadSharedArea {
        /// Its VA.
        va: u64,
        /// Its size in bytes.
        bytes: u64,
    },
    /// Not enough machine memory.
    OutOfFrames(OutOfFrames),
    /// The bootstrap page tables did not validate (a builder bug).
    BadPageTables(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BuildError::*;
        match self {
            BadMemorySize(b) => write!(f, "domain memory {b} bytes is not a positive multiple of 4096"),
            NoVcpus => write!(f, "a domain needs at least one VCPU"),
            BadVirtBase(v) => write!(f, "virt_base {v:#x} is not page aligned"),
            SegmentFileTooLarge { vaddr, filesz, memsz } => write!(
                f,
                "segment at {vaddr:#x}: file size {filesz:#x} exceeds memory size {memsz:#x}"
            ),
            SegmentOutsideMemory { vaddr, end, memory_end } => write!(
                f,
                "segment {vaddr:#x}..{end:#x} lies outside guest memory (ends at {memory_end:#x}); give the domain more memory"
            ),
            SegmentsOverlap { a, b } => write!(f, "segments at {a:#x} and {b:#x} overlap"),
            ImageTooBig { needed, have } => write!(
                f,
                "image and boot data need {needed} pages but the domain has {have}; give it more memory"
            ),
            EntryOutsideImage(e) => write!(f, "entry point {e:#x} is outside the image"),
            BadHypercallPage(v) => write!(
                f,
                "hypercall page {v:#x} is not a page-aligned page inside the image"
            ),
            ParamsOutsideImage(v) => write!(
                f,
                "params block at {v:#x} is not inside a loaded segment"
            ),
            BadParams { magic, version } => write!(
                f,
                "params block has magic {magic:#x} version {version}, expected {PARAMS_MAGIC:#x} version {PARAMS_VERSION}"
            ),
            CmdlineTooLong(n) => write!(f, "command line of {n} bytes exceeds 1023"),
            BadSharedArea { va, bytes } => write!(
                f,
                "shared area at {va:#x} ({bytes} bytes) is not page aligned or overlaps the domain's memory or shared_info"
            ),
            OutOfFrames(e) => write!(f, "building the domain: {e}"),
            BadPageTables(e) => write!(f, "building the domain's page tables: {e}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// `SMPSIM_PARAMS_MAGIC` ("SMPS").
pub const PARAMS_MAGIC: u32 = 0x5350_4D53;
/// `SMPSIM_PARAMS_VERSION`.
pub const PARAMS_VERSION: u32 = 1;
/// Size of `struct smpsim_params`.
pub const PARAMS_SIZE: u64 = 128;
/// `start_info.magic`.
pub const START_INFO_MAGIC: &str = "xen-3.0-x86_64";

/// Where the builder put things (VAs unless named otherwise).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// VA of PFN 0.
    pub virt_base: u64,
    /// First VA past the image (page aligned).
    pub image_end: u64,
    /// The ramdisk (`mod_start`; its length is `mod_len`).
    pub mod_start: u64,
    /// Ramdisk bytes (0: none).
    pub mod_len: u64,
    /// The P2M list.
    pub p2m_va: u64,
    /// start_info.
    pub start_info_va: u64,
    /// The xenstore ring page.
    pub xenstore_va: u64,
    /// The console ring page.
    pub console_va: u64,
    /// The bootstrap page tables (the L4 first: `pt_base`).
    pub pt_va: u64,
    /// How many frames they take (`nr_pt_frames`).
    pub nr_pt_frames: u64,
    /// Initial RSP (top of the bootstrap stack page).
    pub stack_top: u64,
    /// First VA past the bootstrap mapping (on a 4 MiB boundary, at least
    /// 512 KiB past the stack; all of memory for a built-in guest).
    pub mapped_end: u64,
    /// First VA past pseudo-physical memory.
    pub memory_end: u64,
    /// shared_info's mapping (built-in guests; 0: the guest maps it).
    pub shared_info_va: u64,
    /// The group's shared area (0 if none).
    pub shared_va: u64,
    /// Its size in bytes.
    pub shared_bytes: u64,
    /// The hypercall page, if the image has one.
    pub hypercall_page: Option<u64>,
}

/// `start_info` as written (§2.4); fields not listed are 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartInfo {
    /// Pages of the domain.
    pub nr_pages: u64,
    /// Machine address of shared_info.
    pub shared_info_ma: u64,
    /// `SIF_*` flags (0: an unprivileged domU).
    pub flags: u32,
    /// The xenstore ring's frame.
    pub store_mfn: u64,
    /// Its event channel.
    pub store_evtchn: u32,
    /// The console ring's frame.
    pub console_mfn: u64,
    /// Its event channel.
    pub console_evtchn: u32,
    /// VA of the bootstrap L4.
    pub pt_base: u64,
    /// Bootstrap page-table frames.
    pub nr_pt_frames: u64,
    /// VA of the P2M list.
    pub mfn_list: u64,
    /// VA of the ramdisk.
    pub mod_start: u64,
    /// Its length.
    pub mod_len: u64,
    /// Command line.
    pub cmd_line: String,
}

impl StartInfo {
    /// The 1168-byte structure.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; 1168];
        b[..START_INFO_MAGIC.len()].copy_from_slice(START_INFO_MAGIC.as_bytes());
        put64(&mut b, 32, self.nr_pages);
        put64(&mut b, 40, self.shared_info_ma);
        b[48..52].copy_from_slice(&self.flags.to_le_bytes());
        put64(&mut b, 56, self.store_mfn);
        b[64..68].copy_from_slice(&self.store_evtchn.to_le_bytes());
        put64(&mut b, 72, self.console_mfn);
        b[80..84].copy_from_slice(&self.console_evtchn.to_le_bytes());
        put64(&mut b, 88, self.pt_base);
        put64(&mut b, 96, self.nr_pt_frames);
        put64(&mut b, 104, self.mfn_list);
        put64(&mut b, 112, self.mod_start);
        put64(&mut b, 120, self.mod_len);
        let c = self.cmd_line.as_bytes();
        b[128..128 + c.len()].copy_from_slice(c);
        b
    }
}

fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// A built domain: memory written, ready to start VCPU 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltDomain {
    /// PFN → MFN.
    pub p2m: Vec<Mfn>,
    /// The bootstrap L4 (VCPU 0's CR3; the hypervisor pins and validates it).
    pub l4: Mfn,
    /// The shared_info frame.
    pub shared_info: Mfn,
    /// Where things are.
    pub layout: Layout,
    /// start_info as written (the hypervisor adds the ring ports).
    pub start_info: StartInfo,
    /// VCPU 0's registers at its first instruction.
    pub regs: ArchState,
}

fn page_up(v: u64) -> u64 {
    v.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// Checks segments; returns the page-aligned end of the image.
fn check_segments(img: &GuestImage, memory_end: u64) -> Result<u64, BuildError> {
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for s in &img.segments {
        let filesz = s.bytes.len() as u64;
        if filesz > s.memsz {
            return Err(BuildError::SegmentFileTooLarge {
                vaddr: s.vaddr,
                filesz,
                memsz: s.memsz,
            });
        }
        let end = s.vaddr.saturating_add(s.memsz);
        if s.vaddr < img.virt_base || end > memory_end {
            return Err(BuildError::SegmentOutsideMemory {
                vaddr: s.vaddr,
                end,
                memory_end,
            });
        }
        if let Some(&(a, _)) = spans.iter().find(|&&(a, e)| s.vaddr < e && a < end) {
            return Err(BuildError::SegmentsOverlap { a, b: s.vaddr });
        }
        spans.push((s.vaddr, end));
    }
    let end = spans.iter().map(|&(_, e)| e).max().unwrap_or(img.virt_base);
    Ok(page_up(end))
}

fn inside_segment(img: &GuestImage, va: u64, len: u64) -> bool {
    img.segments
        .iter()
        .any(|s| va >= s.vaddr && va.saturating_add(len) <= s.vaddr.saturating_add(s.memsz))
}

fn check_image(img: &GuestImage, cfg: &DomainConfig) -> Result<(u64, u64), BuildError> {
    if cfg.memory_bytes == 0 || !cfg.memory_bytes.is_multiple_of(PAGE_SIZE) {
        return Err(BuildError::BadMemorySize(cfg.memory_bytes));
    }
    if cfg.vcpus == 0 {
        return Err(BuildError::NoVcpus);
    }
    if !img.virt_base.is_multiple_of(PAGE_SIZE) {
        return Err(BuildError::BadVirtBase(img.virt_base));
    }
    if cfg.cmdline.len() > 1023 {
        return Err(BuildError::CmdlineTooLong(cfg.cmdline.len()));
    }
    let memory_end = img.virt_base + cfg.memory_bytes;
    let image_end = check_segments(img, memory_end)?;
    if !inside_segment(img, img.entry, 1) {
        return Err(BuildError::EntryOutsideImage(img.entry));
    }
    if let Some(h) = img.hypercall_page {
        if !h.is_multiple_of(PAGE_SIZE) || !inside_segment(img, h, PAGE_SIZE) {
            return Err(BuildError::BadHypercallPage(h));
        }
    }
    if let Some(p) = img.params {
        if !inside_segment(img, p, PARAMS_SIZE) {
            return Err(BuildError::ParamsOutsideImage(p));
        }
    }
    Ok((image_end, memory_end))
}

/// 4 MiB: the bootstrap mapping ends on such a boundary.
const FOUR_MIB: u64 = 4 << 20;
/// Slack mapped past the last bootstrap item.
const SLACK: u64 = 512 << 10;

/// The page-table frames that map `ranges` (VA ranges): one L4, one L3
/// per 512 GiB, one L2 per 1 GiB, one L1 per 2 MiB touched.
fn count_tables(ranges: &[(u64, u64)]) -> u64 {
    let mut n = 1;
    for shift in [39u32, 30, 21] {
        let mut seen: Vec<u64> = ranges
            .iter()
            .filter(|r| r.1 > r.0)
            .flat_map(|&(a, e)| (a >> shift)..=((e - 1) >> shift))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        n += seen.len() as u64;
    }
    n
}

/// The VA ranges the bootstrap tables map for layout `l`.
fn mapped_ranges(l: &Layout, built_in: bool) -> Vec<(u64, u64)> {
    let mut r = vec![(l.virt_base, l.mapped_end)];
    if built_in {
        r.push((l.shared_info_va, l.shared_info_va + PAGE_SIZE));
        r.push((l.shared_va, l.shared_va + l.shared_bytes));
    }
    r
}

/// Lays the domain out as Xen's PV builder does (§2.4): image, ramdisk,
/// P2M list, start_info, xenstore and console rings, bootstrap page
/// tables, boot stack, each page aligned, then slack to a 4 MiB boundary.
/// A built-in guest (one with an smpsim params block) has all of its
/// memory mapped, plus shared_info and its group's shared area.
fn plan(img: &GuestImage, cfg: &DomainConfig) -> Result<Layout, BuildError> {
    let (image_end, memory_end) = check_image(img, cfg)?;
    let nr_pages = cfg.memory_bytes / PAGE_SIZE;
    let built_in = img.params.is_some();
    let mod_start = image_end;
    let mod_len = cfg.ramdisk.len() as u64;
    let p2m_va = mod_start + page_up(mod_len);
    let start_info_va = p2m_va + page_up(nr_pages * 8);
    let xenstore_va = start_info_va + PAGE_SIZE;
    let console_va = xenstore_va + PAGE_SIZE;
    let pt_va = console_va + PAGE_SIZE;
    let shared_info_va = if built_in { memory_end + PAGE_SIZE } else { 0 };
    let (shared_va, shared_bytes) = cfg
        .shared
        .as_ref()
        .map_or((0, 0), |s| (s.va, s.frames.len() as u64 * PAGE_SIZE));
    let mut l = Layout {
        virt_base: img.virt_base,
        image_end,
        mod_start: if mod_len > 0 { mod_start } else { 0 },
        mod_len,
        p2m_va,
        start_info_va,
        xenstore_va,
        console_va,
        pt_va,
        nr_pt_frames: 1,
        stack_top: 0,
        mapped_end: 0,
        memory_end,
        shared_info_va,
        shared_va,
        shared_bytes,
        hypercall_page: img.hypercall_page,
    };
    loop {
        l.stack_top = l.pt_va + (l.nr_pt_frames + 1) * PAGE_SIZE;
        l.mapped_end = if built_in {
            memory_end
        } else {
            (l.stack_top + SLACK).div_ceil(FOUR_MIB) * FOUR_MIB
        };
        let need = count_tables(&mapped_ranges(&l, built_in));
        if need <= l.nr_pt_frames {
            break;
        }
        l.nr_pt_frames = need;
    }
    let needed = (l.mapped_end.max(l.stack_top) - img.virt_base) / PAGE_SIZE;
    if needed > nr_pages {
        return Err(BuildError::ImageTooBig {
            needed,
            have: nr_pages,
        });
    }
    let clash = shared_va < shared_info_va + PAGE_SIZE
        && shared_va.saturating_add(shared_bytes) > img.virt_base;
    if shared_bytes > 0 && (!shared_va.is_multiple_of(PAGE_SIZE) || clash) {
        return Err(BuildError::BadSharedArea {
            va: shared_va,
            bytes: shared_bytes,
        });
    }
    Ok(l)
}

/// Xen's PV64 hypercall page (§1.3): 0xCC fill, one 32-byte stub per slot.
pub fn hypercall_page() -> Vec<u8> {
    let mut p = vec![0xCCu8; PAGE_SIZE as usize];
    for n in 0..128u32 {
        let at = n as usize * 32;
        let stub: Vec<u8> = if n == crate::abi::hypercall::IRET as u32 {
            let mut s = vec![0x51, 0x41, 0x53, 0x50, 0xB8];
            s.extend_from_slice(&n.to_le_bytes());
            s.extend_from_slice(&[0x0F, 0x05]);
            s
        } else {
            let mut s = vec![0x51, 0x41, 0x53, 0xB8];
            s.extend_from_slice(&n.to_le_bytes());
            s.extend_from_slice(&[0x0F, 0x05, 0x41, 0x5B, 0x59, 0xC3]);
            s
        };
        p[at..at + stub.len()].copy_from_slice(&stub);
    }
    p
}

/// The shared_info page at start of day (§2.3, §2.4): every upcall mask
/// set, VCPU time records, wallclock.
pub fn shared_info_page(vcpus: u32, scale: TimeScale, wallclock_sec: u64) -> Vec<u8> {
    let mut p = vec![0u8; PAGE_SIZE as usize];
    for v in 0..si::LEGACY_MAX_VCPUS {
        let at = (u64::from(v) * si::VCPU_INFO_SIZE) as usize;
        p[at + crate::abi::vcpu_info::UPCALL_MASK as usize] = 1;
        if v < vcpus {
            let t = at + crate::abi::vcpu_info::TIME as usize;
            p[t..t + 32].copy_from_slice(&scale.encode(2, 0, 0));
        }
    }
    let wc = si::WC_VERSION as usize;
    p[wc..wc + 4].copy_from_slice(&2u32.to_le_bytes());
    p[wc + 4..wc + 8].copy_from_slice(&(wallclock_sec as u32).to_le_bytes());
    p[wc + 12..wc + 16].copy_from_slice(&((wallclock_sec >> 32) as u32).to_le_bytes());
    p
}

fn params_bytes(cfg: &DomainConfig, l: &Layout) -> Vec<u8> {
    let p = &cfg.params;
    let mut b = Vec::with_capacity(120);
    for w in [p.nr_vcpus, p.flags, p.domain_index, p.peer_domid] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    for w in [l.shared_info_va, l.shared_va, l.shared_bytes] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    for a in p.args {
        b.extend_from_slice(&a.to_le_bytes());
    }
    b.resize(120, 0);
    b
}

/// Writes into pseudo-physical memory by VA (the 1:1 region from
/// `virt_base`; the builder only writes there).
struct Pseudo<'a> {
    virt_base: u64,
    p2m: &'a [Mfn],
}

impl Pseudo<'_> {
    fn ma(&self, va: u64) -> u64 {
        let pfn = (va - self.virt_base) / PAGE_SIZE;
        self.p2m[pfn as usize].addr(va % PAGE_SIZE).get()
    }

    fn write(&self, store: &mut dyn FrameStore, va: u64, bytes: &[u8]) {
        for (a, at, n) in pieces(va, bytes.len()) {
            store.write(self.ma(a), &bytes[at..at + n]);
        }
    }

    fn read(&self, store: &mut dyn FrameStore, va: u64, buf: &mut [u8]) {
        for (a, at, n) in pieces(va, buf.len()) {
            store.read(self.ma(a), &mut buf[at..at + n]);
        }
    }
}

fn write_image(img: &GuestImage, mem: &Pseudo<'_>, store: &mut dyn FrameStore) {
    for s in &img.segments {
        let mut bytes = s.bytes.clone();
        bytes.resize(s.memsz as usize, 0);
        mem.write(store, s.vaddr, &bytes);
    }
}

fn fill_params(
    img: &GuestImage,
    cfg: &DomainConfig,
    l: &Layout,
    mem: &Pseudo<'_>,
    store: &mut dyn FrameStore,
) -> Result<(), BuildError> {
    let Some(pva) = img.params else { return Ok(()) };
    let mut head = [0u8; 8];
    mem.read(store, pva, &mut head);
    let magic = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
    let version = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    if magic != PARAMS_MAGIC || version != PARAMS_VERSION {
        return Err(BuildError::BadParams { magic, version });
    }
    mem.write(store, pva + 8, &params_bytes(cfg, l));
    Ok(())
}

/// Flags of the bootstrap tables' upper-level entries (libxc's L2_PROT).
const UPPER: u64 = pte::P | pte::RW | pte::US | pte::A | pte::D;
/// Flags of a bootstrap L1 entry (read-only for page-table frames).
const LEAF: u64 = pte::P | pte::US | pte::A;

/// Builds the bootstrap tables for `maps` (page VA, frame, writable) in
/// the frames `pt` (the L4 first) and writes them.
pub(crate) fn write_tables(maps: &[(u64, Mfn, bool)], pt: &[Mfn], store: &mut dyn FrameStore) {
    let mut tables: Vec<Vec<u64>> = vec![vec![0; 512]; pt.len()];
    // (level, VA prefix) → index into `pt`.
    let mut index: BTreeMap<(u32, u64), usize> = BTreeMap::new();
    let mut next = 1usize;
    for &(va, mfn, rw) in maps {
        let mut table = 0usize;
        for level in (2..=4u32).rev() {
            let slot = paging::index(va, level) as usize;
            let key = (level - 1, va >> (12 + 9 * (level - 1)));
            let child = *index.entry(key).or_insert_with(|| {
                next += 1;
                next - 1
            });
            tables[table][slot] = pt[child].addr(0).get() | UPPER;
            table = child;
        }
        let leaf = LEAF | if rw { pte::RW } else { 0 };
        tables[table][paging::index(va, 1) as usize] = mfn.addr(0).get() | leaf;
    }
    assert!(
        next <= pt.len(),
        "the plan counted {} tables, {next} needed",
        pt.len()
    );
    for (t, m) in tables.iter().zip(pt) {
        let bytes: Vec<u8> = t.iter().flat_map(|e| e.to_le_bytes()).collect();
        store.write(m.addr(0).get(), &bytes);
    }
}

/// Builds a domain: allocates its frames, writes the image, hypercall page,
/// params block, ramdisk, P2M list, start_info, the bootstrap page tables
/// and shared_info (VCPU time records with `scale`) into `store`, and
/// returns the layout and VCPU 0's start-of-day registers (§2.4). The
/// hypervisor validates and pins the tables and adds the ring ports.
pub fn build(
    img: &GuestImage,
    cfg: &DomainConfig,
    scale: TimeScale,
    frames: &mut FrameAllocator,
    store: &mut dyn FrameStore,
) -> Result<BuiltDomain, BuildError> {
    let l = plan(img, cfg)?;
    let nr_pages = cfg.memory_bytes / PAGE_SIZE;
    let p2m = frames.alloc(nr_pages).map_err(BuildError::OutOfFrames)?;
    let shared_info = frames.alloc_one().map_err(BuildError::OutOfFrames)?;
    let mem = Pseudo {
        virt_base: l.virt_base,
        p2m: &p2m,
    };
    write_image(img, &mem, store);
    fill_params(img, cfg, &l, &mem, store)?;
    if let Some(h) = l.hypercall_page {
        mem.write(store, h, &hypercall_page());
    }
    if l.mod_len > 0 {
        mem.write(store, l.mod_start, &cfg.ramdisk);
    }
    let list: Vec<u8> = p2m.iter().flat_map(|m| m.0.to_le_bytes()).collect();
    mem.write(store, l.p2m_va, &list);
    let zero = vec![0u8; PAGE_SIZE as usize];
    for va in [l.xenstore_va, l.console_va] {
        mem.write(store, va, &zero);
    }
    // The tables: the bootstrap region 1:1, page-table frames read-only.
    let pfn_of = |va: u64| ((va - l.virt_base) / PAGE_SIZE) as usize;
    let pt_pfns = pfn_of(l.pt_va)..pfn_of(l.pt_va) + l.nr_pt_frames as usize;
    let mut maps: Vec<(u64, Mfn, bool)> = (pfn_of(l.virt_base)..pfn_of(l.mapped_end))
        .map(|pfn| {
            let va = l.virt_base + pfn as u64 * PAGE_SIZE;
            (va, p2m[pfn], !pt_pfns.contains(&pfn))
        })
        .collect();
    if img.params.is_some() {
        maps.push((l.shared_info_va, shared_info, true));
        if let Some(s) = &cfg.shared {
            for (i, &m) in s.frames.iter().enumerate() {
                maps.push((l.shared_va + i as u64 * PAGE_SIZE, m, true));
            }
        }
    }
    write_tables(&maps, &p2m[pt_pfns], store);
    let start_info = StartInfo {
        nr_pages,
        shared_info_ma: shared_info.addr(0).get(),
        flags: if cfg.privileged {
            crate::abi::sif::PRIVILEGED | crate::abi::sif::INITDOMAIN
        } else {
            0
        },
        store_mfn: p2m[pfn_of(l.xenstore_va)].0,
        store_evtchn: 0,
        console_mfn: p2m[pfn_of(l.console_va)].0,
        console_evtchn: 0,
        pt_base: l.pt_va,
        nr_pt_frames: l.nr_pt_frames,
        mfn_list: l.p2m_va,
        mod_start: l.mod_start,
        mod_len: l.mod_len,
        cmd_line: cfg.cmdline.clone(),
    };
    mem.write(store, l.start_info_va, &start_info.encode());
    store.write(
        shared_info.addr(0).get(),
        &shared_info_page(cfg.vcpus, scale, cfg.wallclock_sec),
    );
    let mut regs = ArchState {
        rip: img.entry,
        rflags: flags::IF | flags::FIXED1,
        // CR4.FSGSBASE starts clear (Xen's PV CR4).
        fsgsbase: false,
        // The toolstack's context has no VGCF_i387_valid.
        fpu: Box::new(crate::pvcpu::reset_fpu()),
        ..ArchState::default()
    };
    regs.gpr[RSI] = l.start_info_va;
    regs.gpr[RSP] = l.stack_top;
    Ok(BuiltDomain {
        l4: p2m[pfn_of(l.pt_va)],
        p2m,
        shared_info,
        layout: l,
        start_info,
        regs,
    })
}

/// Rewrites start_info (the hypervisor filled in the ring ports).
pub fn rewrite_start_info(b: &BuiltDomain, store: &mut dyn FrameStore) {
    let mem = Pseudo {
        virt_base: b.layout.virt_base,
        p2m: &b.p2m,
    };
    mem.write(store, b.layout.start_info_va, &b.start_info.encode());
}

#[cfg(test)]
#[path = "builder/tests.rs"]
pub(crate) mod tests;
