//! The built-in workloads: name, description, arguments, domains, and the
//! embedded guest image of each.

use std::fmt;

use crate::elf::ElfImage;
use crate::images;
use crate::params::{GuestParams, NR_ARGS};

/// One workload argument (`params.arg[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgSpec {
    /// Short name, e.g. "iters".
    pub name: &'static str,
    /// Value the guest uses when the builder passes 0.
    pub default: u64,
    /// What it controls, with its unit.
    pub help: &'static str,
    /// Smallest value (0 always means the default).
    pub min: u64,
    /// Largest value.
    pub max: u64,
    /// Whether the value must be a power of two.
    pub pow2: bool,
}

impl ArgSpec {
    /// The same argument allowed `min..=max`.
    const fn range(mut self, min: u64, max: u64) -> Self {
        self.min = min;
        self.max = max;
        self
    }

    /// The same argument, powers of two only.
    const fn pow2(mut self) -> Self {
        self.pow2 = true;
        self
    }

    /// Whether `v` is allowed (0 = the default, always).
    pub fn allows(&self, v: u64) -> bool {
        v == 0 || ((self.min..=self.max).contains(&v) && (!self.pow2 || v.is_power_of_two()))
    }

    /// The allowed values, for messages and listings.
    pub fn allowed(&self) -> String {
        let p = if self.pow2 { "a power of two " } else { "" };
        format!("{p}{}..={}", self.min, self.max)
    }
}

/// A built-in guest program.
#[derive(Clone, Copy)]
pub struct Workload {
    /// Name used by `-w`, e.g. "ipi-pingpong".
    pub name: &'static str,
    /// One line: what it does and what it checks.
    pub description: &'static str,
    /// Domains the builder creates from this image (2 for interdomain).
    pub domains: u32,
    /// True for `fault`, which misbehaves on purpose and always ends with
    /// SHUTDOWN_crash; every other workload must end with PASS.
    pub crashes_on_purpose: bool,
    /// Arguments in `params.arg` order.
    pub args: &'static [ArgSpec],
    /// The static x86-64 ELF image.
    pub image: &'static [u8],
    /// Heap bytes the workload allocates, given VCPUs and resolved args.
    data_bytes: fn(u64, &[u64; NR_ARGS]) -> u64,
    /// Bytes of the area shared between the domains (0 if single-domain).
    shared_bytes: fn(&[u64; NR_ARGS]) -> u64,
    /// Bytes each domain may grow by above its memory (the builder sets
    /// its `max_pages` that far above; 0 for workloads that do not
    /// balloon).
    headroom_bytes: fn(&[u64; NR_ARGS]) -> u64,
}

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workload")
            .field("name", &self.name)
            .field("domains", &self.domains)
            .field("crashes_on_purpose", &self.crashes_on_purpose)
            .field("args", &self.args)
            .field("image_bytes", &self.image.len())
            .finish()
    }
}

/// Per-VCPU runtime memory: a 16 KiB stack aligned to its size (so up to
/// 32 KiB), the owned-ports bitmap, a vcpu_info and the `lat_record` batch
/// (`struct lat_buf`: 8 + 256 × 8 bytes, 64-aligned).
const RUNTIME_BYTES_PER_VCPU: u64 = 32 * 1024 + 512 + 64 + 64 + 2112;
/// Room for what the builder places after the image (start_info, xenstore
/// and console pages, bootstrap page tables and stack, 512 KiB slack).
const BOOT_AREA_BYTES: u64 = 4 << 20;
const MIB4: u64 = 4 << 20;
const LINE: u64 = 64;

impl Workload {
    /// The image, parsed. Built-in images are checked by this crate's tests.
    pub fn elf(&self) -> ElfImage<'static> {
        ElfImage::parse(self.image).expect("built-in images parse (tested)")
    }

    /// Default value of every argument.
    pub fn defaults(&self) -> [u64; NR_ARGS] {
        let mut d = [0u64; NR_ARGS];
        for (slot, a) in d.iter_mut().zip(self.args) {
            *slot = a.default;
        }
        d
    }

    /// `args` with every 0 replaced by the default, as the guest sees them.
    pub fn resolve_args(&self, args: &[u64; NR_ARGS]) -> [u64; NR_ARGS] {
        let d = self.defaults();
        let mut r = *args;
        for (v, dv) in r.iter_mut().zip(d) {
            if *v == 0 {
                *v = dv;
            }
        }
        r
    }

    /// Index of the argument called `name`.
    pub fn arg_index(&self, name: &str) -> Option<usize> {
        self.args.iter().position(|a| a.name == name)
    }

    /// Bytes of shared area the builder must map into every domain of the
    /// group (0 for single-domain workloads).
    pub fn shared_area_bytes(&self, args: &[u64; NR_ARGS]) -> u64 {
        (self.shared_bytes)(&self.resolve_args(args))
    }

    /// Memory to give each domain (bytes, a multiple of 4 MiB): image,
    /// builder boot area, per-VCPU runtime data and the workload's heap.
    pub fn memory_bytes(&self, nr_vcpus: u32, args: &[u64; NR_ARGS]) -> u64 {
        let elf = self.elf();
        let image = elf.image_end().0 - elf.virt_base().0;
        let n = u64::from(nr_vcpus.max(1));
        let data = (self.data_bytes)(n, &self.resolve_args(args));
        let total = image + BOOT_AREA_BYTES + n * RUNTIME_BYTES_PER_VCPU + data + 16 * 4096;
        let p2m = total / 512; // 8 bytes per 4 KiB page
        (total + p2m).div_ceil(MIB4) * MIB4
    }

    /// The most memory each domain may own (bytes; Xen's `max_pages`, the
    /// toolstack's `maxmem`): 0 (the same as its memory) unless the
    /// workload grows a domain.
    ///
    /// ```
    /// let w = smpsim_workloads::find("balloon").expect("built in");
    /// let args = w.defaults();
    /// let extra = w.max_memory_bytes(2, &args) - w.memory_bytes(2, &args);
    /// assert_eq!(extra, 18 * 4096, "16 pages grown, 1 transferred, 1 over-asked");
    /// assert_eq!(smpsim_workloads::find("hello").expect("built in").max_memory_bytes(2, &args), 0);
    /// ```
    pub fn max_memory_bytes(&self, nr_vcpus: u32, args: &[u64; NR_ARGS]) -> u64 {
        match (self.headroom_bytes)(&self.resolve_args(args)) {
            0 => 0,
            extra => self.memory_bytes(nr_vcpus, args) + extra,
        }
    }

    /// One params block per domain. `domids[i]` is the id the builder gave
    /// domain `i`; `shared_va` is where it mapped the shared area (ignored
    /// for single-domain workloads).
    pub fn domain_params(
        &self,
        nr_vcpus: u32,
        args: &[u64; NR_ARGS],
        domids: &[u32],
        shared_va: u64,
    ) -> Vec<GuestParams> {
        let shared = self.shared_area_bytes(args);
        (0..self.domains)
            .map(|i| {
                let peer = if self.domains > 1 {
                    domids
                        .get(((i + 1) % self.domains) as usize)
                        .copied()
                        .unwrap_or(0)
                } else {
                    0
                };
                GuestParams {
                    nr_vcpus,
                    domain_index: i,
                    peer_domid: peer,
                    shared_va: if shared > 0 { shared_va } else { 0 },
                    shared_bytes: shared,
                    args: *args,
                    ..Default::default()
                }
            })
            .collect()
    }
}

/// A name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWorkload {
    /// The name asked for.
    pub name: String,
}

impl fmt::Display for UnknownWorkload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = CATALOGUE.iter().map(|w| w.name).collect();
        write!(
            f,
            "unknown workload `{}`; valid names: {}",
            self.name,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownWorkload {}

/// Every built-in workload.
pub fn catalogue() -> &'static [Workload] {
    CATALOGUE
}

/// The workload called `name`.
///
/// ```
/// let w = smpsim_workloads::find("spinlock").expect("built in");
/// assert_eq!(w.domains, 1);
/// let err = smpsim_workloads::find("nope").unwrap_err();
/// assert!(err.to_string().contains("hello, ipi-pingpong"));
/// ```
pub fn find(name: &str) -> Result<&'static Workload, UnknownWorkload> {
    CATALOGUE
        .iter()
        .find(|w| w.name == name)
        .ok_or_else(|| UnknownWorkload {
            name: name.to_string(),
        })
}

/// An argument with the usual range: 1 to 2^32 (counts and sizes; what
/// fits in the domain's memory is the builder's to say).
const fn arg(name: &'static str, default: u64, help: &'static str) -> ArgSpec {
    ArgSpec {
        name,
        default,
        help,
        min: 1,
        max: 1 << 32,
        pow2: false,
    }
}

fn no_shared(_: &[u64; NR_ARGS]) -> u64 {
    0
}

fn no_headroom(_: &[u64; NR_ARGS]) -> u64 {
    0
}

fn ring_bytes(slots: u64) -> u64 {
    192 + slots * 8 + LINE
}

static CATALOGUE: &[Workload] = &[
    Workload {
        name: "hello",
        description: "every VCPU prints a line and IPIs its neighbour; checks all checked in and every IPI arrived once",
        domains: 1,
        crashes_on_purpose: false,
        args: &[],
        image: images::IMAGE_HELLO,
        data_bytes: |n, _| n * 8 + LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "ipi-pingpong",
        description: "VCPU pairs bounce event-channel IPIs, timing round trips with rdtsc; checks every IPI count",
        domains: 1,
        crashes_on_purpose: false,
        args: &[arg("iters", 50, "round trips per pair")],
        image: images::IMAGE_IPI_PINGPONG,
        data_bytes: |n, _| n * LINE + LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "spinlock",
        description: "contended counter under an xchg spinlock; checks mutual exclusion and the final count",
        domains: 1,
        crashes_on_purpose: false,
        args: &[arg("iters", 200, "increments per VCPU")],
        image: images::IMAGE_SPINLOCK,
        data_bytes: |n, _| n * LINE + LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "ticketlock",
        description: "contended counter under a FIFO ticket lock; checks mutual exclusion, the count and the tickets served",
        domains: 1,
        crashes_on_purpose: false,
        args: &[arg("iters", 200, "increments per VCPU")],
        image: images::IMAGE_TICKETLOCK,
        data_bytes: |n, _| n * LINE + LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "atomics",
        description: "lock cmpxchg of every width, cmpxchg8b and cmpxchg16b on shared counters, plus unlocked compares that fail and succeed; checks every total and result",
        domains: 1,
        crashes_on_purpose: false,
        args: &[arg("iters", 100, "increments per VCPU per width")],
        image: images::IMAGE_ATOMICS,
        data_bytes: |n, _| n * LINE + LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "barrier",
        description: "rounds of a sense-reversing barrier; checks nobody passes early and one last arrival per episode",
        domains: 1,
        crashes_on_purpose: false,
        args: &[arg("rounds", 50, "barrier rounds (two episodes each)")],
        image: images::IMAGE_BARRIER,
        data_bytes: |n, _| 2 * n * LINE + 2 * LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "false-sharing",
        description: "per-VCPU counters packed in shared lines, then padded; checks every count, reports cycles",
        domains: 1,
        crashes_on_purpose: false,
        args: &[arg("iters", 2000, "increments per VCPU per layout")],
        image: images::IMAGE_FALSE_SHARING,
        data_bytes: |n, _| n * 8 + 2 * n * LINE + 3 * LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "reduction",
        description: "parallel sum of a[i] = 3i+1; checks the closed form every round",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("elements", 65536, "array elements (8 bytes each)"),
            arg("rounds", 2, "times the array is summed"),
        ],
        image: images::IMAGE_REDUCTION,
        data_bytes: |n, a| a[0] * 8 + 4096 + n * LINE + a[1] * 8 + 2 * LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "stream",
        description: "STREAM copy/scale/add/triad on u64 arrays; checks every element, reports bytes per cycle",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("elements", 16384, "elements per array (8 bytes each, three arrays)"),
            arg("iters", 2, "iterations of the four kernels"),
        ],
        image: images::IMAGE_STREAM,
        data_bytes: |_, a| 3 * (a[0] * 8 + 4096),
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "pointer-chase",
        description: "walks a random cyclic permutation of cache-line nodes per VCPU; checks the cycle length, reports load latency",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("nodes", 4096, "nodes per VCPU (64 bytes each)"),
            arg("laps", 2, "walks around the cycle"),
        ],
        image: images::IMAGE_POINTER_CHASE,
        data_bytes: |n, a| n * (8 + LINE + a[0] * LINE + 4096) + 2 * LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "ring",
        description: "producer/consumer VCPU pairs over shared-memory rings with event notifications; checks order and checksums",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("items", 1000, "values per producer"),
            arg("batch", 16, "values per notification").range(1, 4096),
            arg("slots", 64, "ring slots (a power of two)").range(1, 4096).pow2(),
        ],
        image: images::IMAGE_RING,
        data_bytes: |n, a| n * 8 + n * LINE + n.div_ceil(2) * ring_bytes(a[2]) + 2 * LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "timer",
        description: "single-shot, set_timer_op, poll timeout and periodic VIRQ_TIMER on every VCPU; checks no early fire and tick counts",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("period_us", 1000, "periodic timer period in microseconds (>= 1000)").range(1000, 1 << 32),
            arg("ticks", 5, "periodic ticks to count"),
            arg("delay_us", 500, "single-shot delay in microseconds"),
        ],
        image: images::IMAGE_TIMER,
        data_bytes: |n, _| n * LINE + LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "evtchn",
        description: "event-channel semantics on a loopback channel: bind raises, masked ports pend, poll, bind_vcpu, close",
        domains: 1,
        crashes_on_purpose: false,
        args: &[],
        image: images::IMAGE_EVTCHN,
        data_bytes: |_, _| 0,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "stress",
        description: "many-VCPU stress: rounds of a rotating IPI, a ticket-locked counter and a barrier; checks IPI counts and the counter",
        domains: 1,
        crashes_on_purpose: false,
        args: &[arg("rounds", 8, "rounds")],
        image: images::IMAGE_STRESS,
        data_bytes: |_, _| 0,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "fault",
        description: "misbehaves on purpose (1 unmapped load, 2 ud2, 3 divide by zero, 4 bad hypercall argument, 5 x87, 6 hlt); always ends with SHUTDOWN_crash",
        domains: 1,
        crashes_on_purpose: true,
        args: &[arg("mode", 1, "1 #PF, 2 #UD, 3 #DE, 4 bad hypercall argument, 5 x87 instruction, 6 hlt (#GP)").range(1, 6)],
        image: images::IMAGE_FAULT,
        data_bytes: |_, _| 0,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "interdomain",
        description: "two domains: an interdomain event channel and a ring in a builder-shared area; checks order and checksum",
        domains: 2,
        crashes_on_purpose: false,
        args: &[
            arg("items", 1000, "values sent from domain 0 to domain 1"),
            arg("batch", 16, "values per notification").range(1, 4096),
            arg("slots", 64, "ring slots (a power of two)").range(1, 4096).pow2(),
        ],
        image: images::IMAGE_INTERDOMAIN,
        data_bytes: |_, _| 0,
        shared_bytes: |a| (128 + ring_bytes(a[2])).div_ceil(4096) * 4096,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "ubench-alu-indep",
        description: "microbenchmark: 8 independent add/xor chains, 32 ALU ops per asm iteration, inside the ROI; checks every chain, reports cycles/iteration and IPC",
        domains: 1,
        crashes_on_purpose: false,
        args: &[arg("iters", 6000, "loop iterations on VCPU 0 (34 instructions each)")],
        image: images::IMAGE_UBENCH_ALU_INDEP,
        data_bytes: |_, _| 0,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "ubench-alu-chain",
        description: "microbenchmark: one dependent imul chain (30 per asm iteration) inside the ROI; checks the closed form x0*m^k, reports cycles/imul",
        domains: 1,
        crashes_on_purpose: false,
        args: &[arg("iters", 5000, "loop iterations on VCPU 0 (30 imuls, 32 instructions each)")],
        image: images::IMAGE_UBENCH_ALU_CHAIN,
        data_bytes: |_, _| 0,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "ubench-branch",
        description: "microbenchmark: a branch on an xorshift bit (random) or a constant (predictable) inside the ROI; checks the count against C, reports cycles/iteration",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("iters", 16384, "loop iterations on VCPU 0 (13-14 instructions each)"),
            arg("mode", 0, "0 = unpredictable (random bit), 1 = predictable (always the same way)").range(0, 1),
        ],
        image: images::IMAGE_UBENCH_BRANCH,
        data_bytes: |_, _| 0,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "ubench-mlp",
        description: "microbenchmark: one load per cache line that misses to DRAM, independent addresses vs a pointer chase, inside the ROI; checks the sum and the cycle, reports cycles/load",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("nodes", 16384, "loads = cache lines visited (a power of two, 64 bytes each)").pow2(),
            arg("mode", 0, "0 = independent loads (addresses computed), 1 = pointer chase").range(0, 1),
            arg("evict_kib", 16384, "KiB read after setup to evict the nodes from every cache (default: twice the default L3)"),
        ],
        image: images::IMAGE_UBENCH_MLP,
        data_bytes: |_, a| a[0] * LINE + a[2] * 1024 + 2 * 4096,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "ubench-stlf",
        description: "microbenchmark: store, reload and add through one stack slot (8 per asm iteration) inside the ROI; checks the final value, reports cycles/step",
        domains: 1,
        crashes_on_purpose: false,
        args: &[arg("iters", 8192, "loop iterations on VCPU 0 (8 forwarded loads, 26 instructions each)")],
        image: images::IMAGE_UBENCH_STLF,
        data_bytes: |_, _| 0,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "ubench-smt",
        description: "microbenchmark: a latency-bound imul chain whose total work is split between all VCPUs (compare 1 VCPU with 2 SMT contexts of one core) inside the ROI; checks each VCPU's closed form, reports cycles",
        domains: 1,
        crashes_on_purpose: false,
        args: &[arg("iters", 16000, "total loop iterations, split evenly (10 imuls, 12 instructions each)")],
        image: images::IMAGE_UBENCH_SMT,
        data_bytes: |n, _| n * LINE + LINE,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "ubench-tlb",
        description: "microbenchmark: a pointer chase over one line per page, more pages than the TLB holds (mode 0) vs 16 pages (mode 1), inside the ROI; checks the sum and the end of the chase, reports cycles/load",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("pages", 256, "pages visited in mode 0 (16..65536); loads = pages × (laps - 1) in both modes").range(16, 65536),
            arg("mode", 0, "0 = TLB misses (every load walks), 1 = TLB hits (16 pages)").range(0, 1),
            arg("laps", 16, "laps over the pages (the first warms the caches)").range(2, 1 << 32),
        ],
        image: images::IMAGE_UBENCH_TLB,
        data_bytes: |_, a| a[0] * 4096 + 2 * 4096,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "matmul",
        description: "double-precision blocked matrix product C = A B, rows split over the VCPUs; checks every element against a naive product and the sum against colsum(A) rowsum(B), within tolerances",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("n", 64, "matrix order N (three N x N double matrices)").range(1, 2048),
            arg("tile", 16, "tile size of the blocked product (at most N)").range(1, 2048),
            arg("reps", 1, "times the product is computed"),
        ],
        image: images::IMAGE_MATMUL,
        data_bytes: |_, a| 3 * (a[0] * a[0] * 8 + 64),
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "nbody",
        description: "single-precision softened N-body, leapfrog, packed-float force loop, bodies split over the VCPUs; checks energy and momentum conservation within tolerances",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("bodies", 64, "bodies (padded to a multiple of 4)").range(1, 16384),
            arg("steps", 4, "leapfrog steps"),
        ],
        image: images::IMAGE_NBODY,
        data_bytes: |_, a| 10 * (a[0].div_ceil(4) * 16 + 64),
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "memcpy",
        description: "glibc-style SSE2 memcpy and memset (movups/movaps/movntdq, overlapping head and tail) over every size to 128 and powers of two around 256..arg0, several alignments; verifies every byte and the guards",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("max", 4096, "largest power-of-two size (sizes reach 1.5 max + 5)").range(256, 1 << 24).pow2(),
            arg("nt_bytes", 2048, "copies and sets this large use non-temporal stores"),
        ],
        image: images::IMAGE_MEMCPY,
        data_bytes: |n, a| n * 2 * (2 * a[0] + 96 + 4096),
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "ubench-fp",
        description: "microbenchmark: scalar double FP add or mul, one dependent chain (30 per asm iteration) or 8 independent streams (32), inside the ROI; checks every accumulator bit-exactly against C, reports cycles/op",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("iters", 5000, "loop iterations on VCPU 0 (30 or 32 FP ops, 32 or 34 instructions each)"),
            arg("mode", 0, "0 add chain, 1 mul chain, 2 add streams, 3 mul streams").range(0, 3),
        ],
        image: images::IMAGE_UBENCH_FP,
        data_bytes: |_, _| 0,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "xs-handshake",
        description: "two domains: the xenbus frontend/backend state machine through xenstore (watches, permissions, a transaction conflict retried on EAGAIN); checks every state seen and EACCES on the backend's private node",
        domains: 2,
        crashes_on_purpose: false,
        args: &[arg("rounds", 2, "handshakes, one device each").range(1, 64)],
        image: images::IMAGE_XS_HANDSHAKE,
        data_bytes: |_, _| 0,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "balloon",
        description: "two domains: domain 1 balloons out pages, domain 0 grows into them up to its max (a request beyond it gets the partial count), one page moves by grant transfer, then the pages go back; checks every reservation, the M2P and the pages' contents",
        domains: 2,
        crashes_on_purpose: false,
        args: &[arg("pages", 16, "pages domain 1 gives back and domain 0 grows by").range(1, 256)],
        image: images::IMAGE_BALLOON,
        data_bytes: |_, a| (a[0] + 2) * 4096 + 4096,
        shared_bytes: |a| (64 + 8 * a[0]).div_ceil(4096) * 4096,
        headroom_bytes: |a| (a[0] + 2) * 4096,
    },
    Workload {
        name: "splitdrv",
        description: "two domains: a blkfront/blkback-style split driver moving data zero-copy through v1 grants (setup_table, map/unmap_grant_ref at host addresses) and an event channel, refs in xenstore; checks every byte, the checksums and that a writable map of a read-only grant is refused; reports bytes/kcycle and the request round trip",
        domains: 2,
        crashes_on_purpose: false,
        args: &[
            arg("requests", 32, "requests the frontend sends").range(1, 1 << 20),
            arg("pages", 2, "granted data pages per request (blkif's limit: 11)").range(1, 11),
            arg("depth", 4, "requests in flight").range(1, 32),
        ],
        image: images::IMAGE_SPLITDRV,
        // Frontend: grant frame, ring, read-only page, depth x pages data
        // pages; backend: 11 + 1 mapping pages; alignment slack.
        data_bytes: |_, a| (a[1] * a[2] + 16) * 4096,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "evstorm",
        description: "an event storm on the FIFO ABI: init_control per VCPU, expand_array as ports grow past 4096, loopback pairs bound over the VCPUs at priorities 2/7/12, coalescing repeat sends; the guest's own FIFO consumer; checks every port's count, priority order and FIFO order",
        domains: 1,
        crashes_on_purpose: false,
        args: &[
            arg("ports", 8192, "event-channel ports stormed (loopback pairs; a power of two)").range(2, 65536).pow2(),
            arg("rounds", 2, "rounds: every port gets exactly one event per round").range(1, 1000),
            arg("repeat", 2, "sends per port per round in mode 0 (the extra ones coalesce)").range(1, 16),
            arg("mode", 0, "0 = phased (receivers masked while the round is sent, priority order checked), 1 = concurrent (queues drained as they fill, one send per port)").range(0, 1),
        ],
        image: images::IMAGE_EVSTORM,
        data_bytes: |n, a| a[0] * 48 + (a[0] + n + 64) / 1024 * 4096 + n * (12 * n + 512) + 6 * 4096,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
    Workload {
        name: "dom0",
        description: "the built-in control domain of `run --kernel FILE --domu`: as a privileged domain 0 it waits (VIRQ_DOM_EXC, domctl getdomaininfo) until every other domain has shut down, then powers off; alone and unprivileged it has nothing to wait for",
        domains: 1,
        crashes_on_purpose: false,
        args: &[],
        image: images::IMAGE_DOM0,
        data_bytes: |_, _| 0,
        shared_bytes: no_shared,
        headroom_bytes: no_headroom,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &str = "hello, ipi-pingpong, spinlock, ticketlock, atomics, barrier, false-sharing, \
                       reduction, stream, pointer-chase, ring, timer, evtchn, stress, fault, interdomain, \
                       ubench-alu-indep, ubench-alu-chain, ubench-branch, ubench-mlp, ubench-stlf, \
                       ubench-smt, ubench-tlb, matmul, nbody, memcpy, ubench-fp, xs-handshake, balloon, \
                       splitdrv, evstorm, dom0";

    #[test]
    fn find_error_lists_every_valid_name() {
        let e = find("pingpong").unwrap_err();
        assert_eq!(e.name, "pingpong");
        assert_eq!(
            e.to_string(),
            format!("unknown workload `pingpong`; valid names: {ALL}")
        );
        assert_eq!(find("timer").expect("exists").name, "timer");
    }

    #[test]
    fn every_image_has_one_catalogue_entry_and_back() {
        let mut images: Vec<&str> = crate::image_names().collect();
        let mut names: Vec<&str> = catalogue().iter().map(|w| w.name).collect();
        assert_eq!(names.join(", "), ALL);
        images.sort_unstable();
        names.sort_unstable();
        assert_eq!(images, names);
        for (name, bytes) in crate::images::IMAGES {
            assert!(find(name).expect("entry").image == *bytes, "{name}");
        }
    }

    #[test]
    fn every_guest_source_was_built() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("guest/workloads");
        let mut stems: Vec<String> = std::fs::read_dir(dir)
            .expect("guest/workloads exists")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "c"))
            .map(|p| {
                p.file_stem()
                    .expect("stem")
                    .to_string_lossy()
                    .replace('_', "-")
            })
            .collect();
        stems.sort();
        let mut names: Vec<&str> = crate::image_names().collect();
        names.sort_unstable();
        assert_eq!(stems, names);
    }

    #[test]
    fn memory_is_whole_4mib_and_grows_with_vcpus_and_data() {
        for w in catalogue() {
            let zero = [0u64; NR_ARGS];
            let m1 = w.memory_bytes(1, &zero);
            assert_eq!(m1 % (4 << 20), 0, "{}", w.name);
            assert!(m1 >= 8 << 20, "{}: image + boot area", w.name);
            assert!(
                w.memory_bytes(1024, &zero) >= m1 + 1024 * 32 * 1024,
                "{}",
                w.name
            );
        }
        let r = find("reduction").expect("exists");
        let big = [1 << 24, 0, 0, 0, 0, 0, 0, 0];
        assert!(r.memory_bytes(4, &big) >= (1 << 27) + (4 << 20));
    }

    #[test]
    fn args_resolve_zero_to_default() {
        let w = find("timer").expect("exists");
        assert_eq!(w.defaults(), [1000, 5, 500, 0, 0, 0, 0, 0]);
        assert_eq!(
            w.resolve_args(&[0, 9, 0, 0, 0, 0, 0, 0]),
            [1000, 9, 500, 0, 0, 0, 0, 0]
        );
        assert_eq!(w.arg_index("ticks"), Some(1));
        assert_eq!(w.arg_index("nope"), None);
    }

    #[test]
    fn interdomain_params_cross_link_the_two_domains() {
        let w = find("interdomain").expect("exists");
        assert_eq!(w.domains, 2);
        let args = w.defaults();
        let p = w.domain_params(1, &args, &[1, 2], 0x4000_0000);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].domain_index, p[0].peer_domid), (0, 2));
        assert_eq!((p[1].domain_index, p[1].peer_domid), (1, 1));
        assert_eq!(p[0].shared_bytes, 4096);
        assert!(p
            .iter()
            .all(|q| q.shared_va == 0x4000_0000 && q.nr_vcpus == 1));
        let single = find("hello")
            .expect("exists")
            .domain_params(4, &[0; NR_ARGS], &[1], 0x1000);
        assert_eq!(single.len(), 1);
        assert_eq!(
            (
                single[0].shared_va,
                single[0].shared_bytes,
                single[0].peer_domid
            ),
            (0, 0, 0)
        );
    }
}
