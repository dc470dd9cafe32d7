//! The workload parameter block (`struct smpsim_params` in
//! `guest/include/params.h`), and the load plan a domain builder copies into
//! guest memory.
//!
//! Layout (128 bytes, little-endian), at the VA given by the SMPSIM note
//! type 1 (= symbol `smpsim_params`), inside the image's writable data:
//!
//! | off | size | field | written by |
//! |---|---|---|---|
//! | 0 | 4 | magic `0x53504d53` ("SMPS") | image |
//! | 4 | 4 | version (1) | image |
//! | 8 | 4 | nr_vcpus (0 = guest counts with VCPUOP_is_up) | builder |
//! | 12 | 4 | flags (bit 0: register vcpu_info for every VCPU) | builder |
//! | 16 | 4 | domain_index in the workload's group | builder |
//! | 20 | 4 | peer_domid (interdomain) | builder |
//! | 24 | 8 | shared_info_va (0 = guest maps it with update_va_mapping) | builder |
//! | 32 | 8 | shared_va: area shared by the group's domains | builder |
//! | 40 | 8 | shared_bytes | builder |
//! | 48 | 64 | arg[8] (0 = the workload's default) | builder |
//! | 112 | 16 | reserved, zero | |

use std::fmt;

use crate::elf::{ElfError, ElfImage, GuestVirtAddr, SegmentFlags};

/// Name of the params block symbol in every guest image.
pub const PARAMS_SYMBOL: &str = "smpsim_params";
/// `magic` as stored in the image.
pub const PARAMS_MAGIC: u32 = 0x5350_4d53;
/// `version` of this layout.
pub const PARAMS_VERSION: u32 = 1;
/// Size of the block in bytes.
pub const PARAMS_SIZE: usize = 128;
/// Number of workload arguments.
pub const NR_ARGS: usize = 8;
/// Flag: register a vcpu_info (VCPUOP_register_vcpu_info) for every VCPU,
/// not only those ≥ 32.
pub const FLAG_REGISTER_ALL_VCPU_INFO: u32 = 1;

/// What the domain builder tells a guest. Zero means "not provided".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestParams {
    /// VCPUs the guest brings up; 0 = count them with VCPUOP_is_up.
    pub nr_vcpus: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Index of this domain in its workload's group (0, 1).
    pub domain_index: u32,
    /// Domain id of the peer domain (interdomain workloads).
    pub peer_domid: u32,
    /// VA where the builder mapped shared_info; 0 = the guest maps it.
    pub shared_info_va: u64,
    /// VA of the area mapped into every domain of the group (zeroed).
    pub shared_va: u64,
    /// Size of that area in bytes.
    pub shared_bytes: u64,
    /// Workload arguments; 0 = the workload's default.
    pub args: [u64; NR_ARGS],
}

/// A params block that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsError {
    /// Fewer than [`PARAMS_SIZE`] bytes.
    TooShort(usize),
    /// The magic is not [`PARAMS_MAGIC`].
    BadMagic(u32),
    /// The version is not [`PARAMS_VERSION`].
    BadVersion(u32),
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamsError::TooShort(n) => {
                write!(f, "params block has {n} bytes, expected {PARAMS_SIZE}")
            }
            ParamsError::BadMagic(m) => {
                write!(
                    f,
                    "params block magic is {m:#x}, expected {PARAMS_MAGIC:#x}"
                )
            }
            ParamsError::BadVersion(v) => {
                write!(f, "params block version is {v}, expected {PARAMS_VERSION}")
            }
        }
    }
}

impl std::error::Error for ParamsError {}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

impl GuestParams {
    /// The 128-byte block, magic and version included.
    pub fn encode(&self) -> [u8; PARAMS_SIZE] {
        let mut b = [0u8; PARAMS_SIZE];
        let words32 = [
            PARAMS_MAGIC,
            PARAMS_VERSION,
            self.nr_vcpus,
            self.flags,
            self.domain_index,
            self.peer_domid,
        ];
        for (i, w) in words32.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        let words64 = [self.shared_info_va, self.shared_va, self.shared_bytes];
        for (i, w) in words64.iter().chain(self.args.iter()).enumerate() {
            b[24 + i * 8..32 + i * 8].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// Reads a block back (checks magic and version).
    pub fn decode(b: &[u8]) -> Result<Self, ParamsError> {
        if b.len() < PARAMS_SIZE {
            return Err(ParamsError::TooShort(b.len()));
        }
        if le32(b, 0) != PARAMS_MAGIC {
            return Err(ParamsError::BadMagic(le32(b, 0)));
        }
        if le32(b, 4) != PARAMS_VERSION {
            return Err(ParamsError::BadVersion(le32(b, 4)));
        }
        let mut args = [0u64; NR_ARGS];
        for (i, a) in args.iter_mut().enumerate() {
            *a = le64(b, 48 + i * 8);
        }
        Ok(GuestParams {
            nr_vcpus: le32(b, 8),
            flags: le32(b, 12),
            domain_index: le32(b, 16),
            peer_domid: le32(b, 20),
            shared_info_va: le64(b, 24),
            shared_va: le64(b, 32),
            shared_bytes: le64(b, 40),
            args,
        })
    }
}

/// One segment ready to copy into guest memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadChunk {
    /// Guest virtual address of `bytes[0]`.
    pub vaddr: GuestVirtAddr,
    /// Pseudo-physical address of `bytes[0]` (`vaddr - VIRT_BASE`).
    pub pseudo_phys: u64,
    /// `memsz` bytes: file data, then zeros (the bss).
    pub bytes: Vec<u8>,
    /// Page permissions.
    pub flags: SegmentFlags,
}

/// The image's segments as memory contents, with `params` written into the
/// params block (which must hold the right magic and version in the image).
///
/// ```
/// use smpsim_workloads::{find, load_plan, ElfImage, GuestParams};
/// let w = find("hello").expect("built in");
/// let elf = ElfImage::parse(w.image).expect("valid image");
/// let plan = load_plan(&elf, &GuestParams { nr_vcpus: 4, ..Default::default() }).expect("loads");
/// assert_eq!(plan[0].pseudo_phys, 0);
/// ```
pub fn load_plan(elf: &ElfImage<'_>, params: &GuestParams) -> Result<Vec<LoadChunk>, ElfError> {
    let base = elf.virt_base().0;
    let at = elf.params_addr()?.0;
    let mut plan = Vec::with_capacity(elf.segments().len());
    let mut patched = false;
    for seg in elf.segments() {
        let pseudo_phys = seg
            .vaddr
            .0
            .checked_sub(base)
            .ok_or_else(|| ElfError::Malformed {
                what: "segment",
                offset: seg.offset,
                why: format!("address {} is below VIRT_BASE {base:#x}", seg.vaddr),
            })?;
        let mut bytes = elf.segment_data(seg).to_vec();
        bytes.resize(
            usize::try_from(seg.memsz).expect("segment size fits in memory"),
            0,
        );
        let off = at.wrapping_sub(seg.vaddr.0);
        if seg.contains(at) && seg.flags.write && off + PARAMS_SIZE as u64 <= seg.filesz {
            let o = usize::try_from(off).expect("inside the segment");
            GuestParams::decode(&bytes[o..o + PARAMS_SIZE]).map_err(|e| ElfError::Malformed {
                what: "params block",
                offset: seg.offset + off,
                why: e.to_string(),
            })?;
            bytes[o..o + PARAMS_SIZE].copy_from_slice(&params.encode());
            patched = true;
        }
        plan.push(LoadChunk {
            vaddr: seg.vaddr,
            pseudo_phys,
            bytes,
            flags: seg.flags,
        });
    }
    if !patched {
        return Err(ElfError::ParamsOutsideData(at));
    }
    Ok(plan)
}
