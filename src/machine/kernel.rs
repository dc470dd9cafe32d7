//! Turning guest images into what the domain builder consumes: the one
//! path from an ELF file (a built-in workload's, or `--kernel`'s) through
//! Xen's placement rule ([`smpsim_workloads::PvImage`]) to a
//! [`GuestImage`] and its [`DomainConfig`].

use super::config::KernelSpec;
use smpsim_workloads::{ElfError, PvImage};
use smpsim_xen::builder::{DomainConfig, GuestImage, ParamsFill, Segment};
use std::path::Path;

/// The builder's image of a placed kernel: each loaded segment at its
/// placed VA, the entry, VIRT_BASE, the hypercall page, smpsim's params
/// block (`None` for kernels not built against smpsim's runtime), and the
/// GUEST_OS and FEATURES notes as written.
pub fn guest_image(pv: &PvImage<'_>) -> Result<GuestImage, ElfError> {
    let segments = pv
        .segments()
        .iter()
        .map(|s| Segment {
            vaddr: s.va,
            bytes: pv.segment_data(s).to_vec(),
            memsz: s.segment.memsz,
        })
        .collect();
    let notes = pv.xen_notes();
    Ok(GuestImage {
        segments,
        entry: pv.entry(),
        virt_base: pv.virt_base(),
        hypercall_page: pv.hypercall_page(),
        params: pv.params()?,
        guest_os: notes.guest_os.clone().unwrap_or_default(),
        features: notes.features.clone().unwrap_or_default(),
    })
}

/// Why a kernel's domain could not be prepared. Every message names the
/// file.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The kernel or ramdisk file could not be read.
    #[error("{what} {}: cannot read the file: {source}", path.display())]
    Read {
        /// "kernel" or "ramdisk".
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// The file is not a loadable Xen PV64 kernel.
    #[error("kernel {}: {source}", path.display())]
    Image {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        source: ElfError,
    },
}

/// A domain to create: its image and config.
#[derive(Debug)]
pub struct DomainPlan {
    /// What the builder loads.
    pub image: GuestImage,
    /// How the domain is built.
    pub config: DomainConfig,
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, KernelError> {
    std::fs::read(path).map_err(|source| KernelError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Reads and places `spec`'s kernel (and ramdisk) for a domain of `vcpus`
/// VCPUs.
pub fn plan(spec: &KernelSpec, vcpus: u32) -> Result<DomainPlan, KernelError> {
    let bytes = read("kernel", &spec.kernel)?;
    let image = PvImage::parse(&bytes)
        .and_then(|pv| guest_image(&pv))
        .map_err(|source| KernelError::Image {
            path: spec.kernel.clone(),
            source,
        })?;
    let ramdisk = match &spec.ramdisk {
        Some(p) => read("ramdisk", p)?,
        None => Vec::new(),
    };
    Ok(DomainPlan {
        image,
        config: DomainConfig {
            memory_bytes: spec.memory_mib << 20,
            vcpus,
            cmdline: spec.cmdline.clone(),
            wallclock_sec: 0,
            params: ParamsFill::default(),
            shared: None,
            ramdisk,
        },
    })
}
