//! Compiles the freestanding C guests in `guest/` with the system C compiler
//! (`$CC`, else `cc`) into static x86-64 ELF images under `OUT_DIR/guest/`,
//! and writes `OUT_DIR/images.rs`, the table the catalogue embeds with
//! `include_bytes!`. Fails with a message naming the compiler and flags if
//! the compiler cannot build them.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Flags for every guest translation unit (see README-guest.md).
const CFLAGS: &[&str] = &[
    "-m64",
    "-std=gnu11",
    "-O2",
    "-ffreestanding",
    "-nostdlib",
    "-nostdinc",
    "-static",
    "-mgeneral-regs-only",
    "-mno-red-zone",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-fcf-protection=none",
    "-fno-common",
    "-mcmodel=small",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
];

/// The flags for workload `stem`: plain `-O2` for x86-64 (SSE2, loops
/// vectorized by gcc's cheap cost model), [`CFLAGS`] without
/// `-mgeneral-regs-only`, which only the runtime keeps (its entry code and
/// upcall paths save only the integer registers).
fn workload_flags(_stem: &str) -> Vec<&'static str> {
    CFLAGS
        .iter()
        .copied()
        .filter(|&f| f != "-mgeneral-regs-only")
        .collect()
}

/// Flags for linking one guest image.
const LDFLAGS: &[&str] = &[
    "-m64",
    "-nostdlib",
    "-static",
    "-no-pie",
    "-Wl,--build-id=none",
    "-Wl,-z,noexecstack",
    "-Wl,-z,max-page-size=4096",
];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it"));
    let guest = manifest.join("guest");
    println!("cargo:rerun-if-changed=guest");
    println!("cargo:rerun-if-env-changed=CC");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let b = Builder {
        cc,
        include: guest.join("include"),
        obj_dir: out.join("guest"),
    };
    fs::create_dir_all(&b.obj_dir).expect("create OUT_DIR/guest");
    let runtime: Vec<PathBuf> = sources(&guest.join("runtime"))
        .iter()
        .map(|src| b.compile(src, "rt-", CFLAGS))
        .collect();
    let mut consts = String::new();
    let mut table = String::from("/// (name, ELF image) of every guest, sorted by name.\n");
    table.push_str("pub(crate) static IMAGES: &[(&str, &[u8])] = &[\n");
    for src in sources(&guest.join("workloads")) {
        let stem = src
            .file_stem()
            .expect("a file")
            .to_string_lossy()
            .to_string();
        let obj = b.compile(&src, "wl-", &workload_flags(&stem));
        let elf = b.obj_dir.join(format!("{stem}.elf"));
        b.link(&runtime, &obj, &guest.join("guest.ld"), &elf);
        let name = stem.replace('_', "-");
        let konst = format!("IMAGE_{}", stem.to_uppercase());
        writeln!(
            consts,
            "/// The `{name}` guest image (guest/workloads/{stem}.c)."
        )
        .expect("write to a String");
        writeln!(
            consts,
            "pub(crate) static {konst}: &[u8] = include_bytes!({:?});",
            elf.display().to_string()
        )
        .expect("write to a String");
        writeln!(table, "    ({name:?}, {konst}),").expect("write to a String");
    }
    table.push_str("];\n");
    consts.push_str(&table);
    fs::write(out.join("images.rs"), consts).expect("write OUT_DIR/images.rs");
}

/// `.c` and `.S` files of a directory, sorted (deterministic link order).
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("c" | "S")))
        .collect();
    v.sort();
    v
}

struct Builder {
    cc: String,
    include: PathBuf,
    obj_dir: PathBuf,
}

impl Builder {
    fn compile(&self, src: &Path, prefix: &str, flags: &[&str]) -> PathBuf {
        let stem = src.file_name().expect("a file").to_string_lossy();
        let obj = self.obj_dir.join(format!("{prefix}{stem}.o"));
        let mut cmd = Command::new(&self.cc);
        cmd.args(flags)
            .arg("-I")
            .arg(&self.include)
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(&obj);
        self.run(cmd, &format!("compile {}", src.display()), flags);
        obj
    }

    fn link(&self, runtime: &[PathBuf], obj: &Path, script: &Path, elf: &Path) {
        let mut cmd = Command::new(&self.cc);
        cmd.args(LDFLAGS)
            .arg(format!("-Wl,-T,{}", script.display()))
            .arg("-o")
            .arg(elf)
            .arg(obj)
            .args(runtime);
        self.run(cmd, &format!("link {}", elf.display()), LDFLAGS);
    }

    fn run(&self, mut cmd: Command, what: &str, flags: &[&str]) {
        let hint = "smpsim-workloads needs a C compiler that targets x86-64 ELF \
                    (gcc or clang with GNU ld); set $CC to choose one";
        let output = cmd.output().unwrap_or_else(|e| {
            panic!(
                "{hint}.\nCould not run the C compiler `{}` to {what}: {e}",
                self.cc
            )
        });
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            panic!(
                "{hint}.\n`{}` failed to {what} ({}), with flags: {}\n{stderr}",
                self.cc,
                output.status,
                flags.join(" ")
            );
        }
        for line in stderr.lines() {
            println!("cargo:warning={what}: {line}");
        }
    }
}
