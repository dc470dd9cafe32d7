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
    /// `builtin` names no built-in image.
    #[error("builtin = \"{name}\": no such built-in image")]
    Builtin {
        /// The name given.
        name: String,
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

/// The built-in workload image `name` (a `[[domain]] builtin`).
fn builtin_image(name: &str) -> Result<GuestImage, KernelError> {
    let w = smpsim_workloads::find(name).map_err(|_| KernelError::Builtin {
        name: name.to_owned(),
    })?;
    PvImage::from_elf(w.elf())
        .and_then(|pv| guest_image(&pv))
        .map_err(|source| KernelError::Image {
            path: format!("(built-in {name})").into(),
            source,
        })
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
    let image = match &spec.builtin {
        Some(name) => builtin_image(name)?,
        None => {
            let bytes = read("kernel", &spec.kernel)?;
            PvImage::parse(&bytes)
                .and_then(|pv| guest_image(&pv))
                .map_err(|source| KernelError::Image {
                    path: spec.kernel.clone(),
                    source,
                })?
        }
    };
    let ramdisk = match &spec.ramdisk {
        Some(p) => read("ramdisk", p)?,
        None => Vec::new(),
    };
    Ok(DomainPlan {
        image,
        config: DomainConfig {
            memory_bytes: spec.memory_mib << 20,
            max_memory_bytes: spec.max_memory_mib.unwrap_or(0) << 20,
            vcpus,
            cmdline: spec.cmdline.clone(),
            wallclock_sec: 0,
            params: ParamsFill::default(),
            shared: None,
            ramdisk,
            privileged: spec.privileged,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_in_image_converts_as_it_is_linked() {
        for w in smpsim_workloads::catalogue() {
            let elf = w.elf();
            let pv = PvImage::from_elf(elf.clone()).expect("places");
            let img = guest_image(&pv).expect("converts");
            assert_eq!(img.entry, elf.entry().0, "{}", w.name);
            assert_eq!(img.virt_base, elf.virt_base().0, "{}", w.name);
            assert_eq!(
                img.hypercall_page,
                elf.hypercall_page().expect("notes").map(|v| v.0)
            );
            assert_eq!(img.params, Some(elf.params_addr().expect("params").0));
            assert_eq!(img.guest_os, "smpsim-guest");
            for (s, e) in img.segments.iter().zip(elf.segments()) {
                assert_eq!((s.vaddr, s.memsz), (e.vaddr.0, e.memsz), "{}", w.name);
                assert_eq!(s.bytes, elf.segment_data(e), "{}", w.name);
            }
        }
    }

    #[test]
    fn a_plan_carries_the_command_line_ramdisk_and_memory() {
        let dir = std::env::temp_dir().join(format!("smpsim-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (k, r) = (dir.join("k.elf"), dir.join("initrd"));
        let hello = smpsim_workloads::find("hello").expect("built in");
        std::fs::write(&k, hello.image).expect("write");
        std::fs::write(&r, b"ramdisk bytes").expect("write");
        let spec = KernelSpec {
            cmdline: "root=/dev/ram0".into(),
            ramdisk: Some(r.clone()),
            memory_mib: 16,
            ..KernelSpec::new(&k)
        };
        let p = plan(&spec, 3).expect("plans");
        assert_eq!(p.config.cmdline, "root=/dev/ram0");
        assert_eq!(p.config.ramdisk, b"ramdisk bytes");
        assert_eq!((p.config.memory_bytes, p.config.vcpus), (16 << 20, 3));
        assert_eq!(p.config.params, ParamsFill::default());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
