//! Whole-machine checkpoints: the file format and what goes in it.
//!
//! A checkpoint is taken at a barrier, where the machine is quiescent: the
//! engine's time and messages in flight ([`EngineSnapshot`]), every
//! partition's state (cores with their contexts, models, predictors and
//! private caches; L3 slices with their directories; memory channels),
//! every allocated frame of machine memory, and the hypervisor service
//! (domains, VCPUs, event channels, timers, grants, console, switching).
//! Translation caches and TLBs are caches and are rebuilt. The shared
//! handles (machine memory, fabric, address maps) are re-attached by the
//! restoring machine, which is first built from the saved config and
//! build recipe exactly as the original was.
//!
//! File layout (all integers little-endian):
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `SMPSIMCK` |
//! | 4 | format version ([`VERSION`]) |
//! | 4 | CRC-32 (IEEE) of the compressed payload |
//! | 8 | payload length before compression |
//! | rest | the payload: [`Payload`] in postcard, LZ4-compressed |
//!
//! Reading checks each in turn, so a truncated file, another program's
//! file, a newer format and a corrupted payload each get one error naming
//! the file and what was wrong.

use crate::machine::config::MachineConfig;
use crate::machine::hyper::ServiceState;
use serde::{Deserialize, Serialize};
use smpsim_engine::EngineSnapshot;
use smpsim_uncore::MemMsg;
use std::fmt;
use std::path::Path;

/// First bytes of every checkpoint file.
pub const MAGIC: &[u8; 8] = b"SMPSIMCK";
/// The format this build writes and reads.
pub const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 4 + 8;

/// Everything a checkpoint holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Payload {
    /// The machine config the run used (after command-line overrides), as
    /// JSON (its serde form has shapes only a self-describing format
    /// reads back).
    pub cfg: String,
    /// How the machine was built (workload and arguments, or kernels), as
    /// JSON.
    pub build: String,
    /// The workload's name, or the kernel file(s).
    pub guest: String,
    /// Domains and the most VCPUs of any.
    pub domains: u32,
    /// VCPUs of the largest domain.
    pub vcpus: u32,
    /// The engine: time, messages in flight, sequence numbers.
    pub engine: EngineSnapshot<MemMsg>,
    /// Each partition's state in postcard, by partition id.
    pub parts: Vec<Vec<u8>>,
    /// Every allocated frame of machine memory: (frame number, 4 KiB).
    pub frames: Vec<(u64, Vec<u8>)>,
    /// The hypervisor and its service.
    pub service: ServiceState,
}

/// Why a checkpoint could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointError {
    /// The file.
    pub path: String,
    /// What was wrong.
    pub what: String,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "checkpoint {}: {}", self.path, self.what)
    }
}

impl std::error::Error for CheckpointError {}

/// Encodes `payload` as a checkpoint file's bytes.
pub fn encode(payload: &Payload) -> Vec<u8> {
    let raw = postcard::to_stdvec(payload).expect("machine state serializes");
    frame(MAGIC, VERSION, &raw)
}

/// The framing shared by smpsim's state files (checkpoints, domain saves):
/// `magic`, `version`, the CRC-32 of the LZ4-compressed `raw`, its length
/// before compression, then the compressed bytes.
pub(crate) fn frame(magic: &[u8; 8], version: u32, raw: &[u8]) -> Vec<u8> {
    let packed = lz4_flex::compress(raw);
    let mut out = Vec::with_capacity(HEADER + packed.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&packed).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
    out.extend_from_slice(&packed);
    out
}

/// Checks and unpacks a file framed by [`frame`]; `noun` names the kind
/// of file in the error ("checkpoint").
pub(crate) fn unframe(
    bytes: &[u8],
    magic: &[u8; 8],
    version: u32,
    noun: &str,
) -> Result<Vec<u8>, String> {
    if bytes.len() < 8 || &bytes[..8] != magic {
        return Err(format!(
            "not an smpsim {noun} (it does not start with {})",
            String::from_utf8_lossy(magic)
        ));
    }
    if bytes.len() < HEADER {
        return Err(format!(
            "truncated: {} bytes, shorter than the {HEADER}-byte header",
            bytes.len()
        ));
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let found = word(8);
    if found != version {
        return Err(format!(
            "format version {found}; this smpsim reads version {version} only"
        ));
    }
    let crc = word(12);
    let raw_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let packed = &bytes[HEADER..];
    if crc32fast::hash(packed) != crc {
        return Err(format!(
            "checksum mismatch: the file is truncated or corrupted ({} payload bytes)",
            packed.len()
        ));
    }
    let raw_len =
        usize::try_from(raw_len).map_err(|_| format!("payload of {raw_len} bytes is too large"))?;
    lz4_flex::decompress(packed, raw_len).map_err(|e| format!("payload does not decompress: {e}"))
}

/// Decodes a checkpoint file's bytes (`path` names it in errors).
pub fn decode(bytes: &[u8], path: &Path) -> Result<Payload, CheckpointError> {
    let err = |what: String| CheckpointError {
        path: path.display().to_string(),
        what,
    };
    let raw = unframe(bytes, MAGIC, VERSION, "checkpoint").map_err(err)?;
    postcard::from_bytes(&raw).map_err(|e| err(format!("payload does not decode: {e}")))
}

/// Reads and decodes the checkpoint at `path`.
pub fn read(path: &Path) -> Result<Payload, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| CheckpointError {
        path: path.display().to_string(),
        what: format!("cannot read: {e}"),
    })?;
    decode(&bytes, path)
}

impl Payload {
    /// The saved machine config.
    ///
    /// # Errors
    /// When the JSON does not decode (a damaged or foreign payload).
    pub fn config(&self) -> Result<MachineConfig, String> {
        serde_json::from_str(&self.cfg)
            .map_err(|e| format!("its machine config does not decode: {e}"))
    }
}

/// A summary of a checkpoint, for `smpsim checkpoint info`.
pub fn describe(p: &Payload, file_bytes: u64) -> Vec<String> {
    let Ok(cfg) = p.config() else {
        return vec!["the machine config does not decode".into()];
    };
    let cores = cfg.cores;
    let mib = p.frames.len() as f64 * 4096.0 / (1 << 20) as f64;
    let state: usize = p.parts.iter().map(Vec::len).sum();
    vec![
        format!("format       version {VERSION}"),
        format!("cycle        {}", p.engine.now.get()),
        format!("guest        {}", p.guest),
        format!(
            "machine      {}: {} cores × {} SMT, model {}",
            cfg.name,
            cores,
            cfg.smt,
            cfg.model.name()
        ),
        format!("domains      {} (up to {} VCPUs each)", p.domains, p.vcpus),
        format!(
            "memory       {} frames written ({mib:.1} MiB of {} MiB)",
            p.frames.len(),
            cfg.memory_mib
        ),
        format!(
            "partitions   {} ({:.1} KiB of state, {:.1} KiB per core partition on average)",
            p.parts.len(),
            state as f64 / 1024.0,
            p.parts
                .iter()
                .take(cores as usize)
                .map(Vec::len)
                .sum::<usize>() as f64
                / 1024.0
                / f64::from(cores.max(1))
        ),
        format!("in flight    {} messages", p.engine.messages.len()),
        format!("file         {file_bytes} bytes (compressed)"),
    ]
}
