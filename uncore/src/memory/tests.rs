use super::*;
use std::sync::Arc;

fn mem(frames: u64) -> MachineMemory {
    MachineMemory::new(frames * FRAME_SIZE).expect("valid size")
}

#[test]
fn bad_sizes_are_refused() {
    assert_eq!(
        MachineMemory::new(0).unwrap_err(),
        MemError::BadSize { size: 0 }
    );
    assert_eq!(
        MachineMemory::new(4097).unwrap_err(),
        MemError::BadSize { size: 4097 }
    );
    assert!(MachineMemory::new(MAX_SIZE).is_ok());
    let e = MachineMemory::new(MAX_SIZE * 2).unwrap_err();
    assert!(e.to_string().contains("at most 4 TiB"), "{e}");
}

#[test]
fn sixty_four_gib_allocates_lazily() {
    let m = MachineMemory::new(64 << 30).expect("valid size");
    assert_eq!(m.frame_count(), 16 << 20);
    assert_eq!(m.read_u64(MachineAddr((64 << 30) - 8)).unwrap(), 0);
    assert!(m.allocated_frames().is_empty(), "reads do not allocate");
    m.write_u8(MachineAddr(40 << 30), 7).unwrap();
    assert_eq!(m.allocated_frames(), vec![Mfn(10 << 20)]);
    assert!(m.is_allocated(Mfn(10 << 20)));
    assert!(!m.is_allocated(Mfn(1)));
}

#[test]
fn aligned_accesses_round_trip_little_endian() {
    let m = mem(2);
    m.write_u64(MachineAddr(0x10), 0x0807_0605_0403_0201)
        .unwrap();
    assert_eq!(m.read_u8(MachineAddr(0x10)).unwrap(), 0x01);
    assert_eq!(m.read_u16(MachineAddr(0x12)).unwrap(), 0x0403);
    assert_eq!(m.read_u32(MachineAddr(0x14)).unwrap(), 0x0807_0605);
    m.write_u16(MachineAddr(0x12), 0xbeef).unwrap();
    assert_eq!(
        m.read_u64(MachineAddr(0x10)).unwrap(),
        0x0807_0605_beef_0201
    );
    m.write_u128(MachineAddr(0x20), 0x1111_2222_3333_4444_5555_6666_7777_8888)
        .unwrap();
    assert_eq!(
        m.read_u128(MachineAddr(0x20)).unwrap(),
        0x1111_2222_3333_4444_5555_6666_7777_8888
    );
    assert_eq!(
        m.read_u64(MachineAddr(0x28)).unwrap(),
        0x1111_2222_3333_4444
    );
}

#[test]
fn unaligned_accesses_cross_words_and_lines() {
    let m = mem(1);
    m.write_u64(MachineAddr(0x3d), 0xa1a2_a3a4_a5a6_a7a8)
        .unwrap(); // crosses line 0/1
    assert_eq!(m.read_u8(MachineAddr(0x3d)).unwrap(), 0xa8);
    assert_eq!(m.read_u8(MachineAddr(0x44)).unwrap(), 0xa1);
    assert_eq!(m.read_u32(MachineAddr(0x3f)).unwrap(), 0xa3a4_a5a6);
    assert_eq!(
        m.read_u64(MachineAddr(0x38)).unwrap(),
        0xa6a7_a800_0000_0000
    );
    assert_eq!(
        m.read_u8(MachineAddr(0x45)).unwrap(),
        0,
        "neighbours untouched"
    );
    assert_eq!(
        m.read_u8(MachineAddr(0x3c)).unwrap(),
        0,
        "neighbours untouched"
    );
}

#[test]
fn accesses_cross_frames() {
    let m = mem(3);
    m.write_u64(MachineAddr(0xffd), 0x8877_6655_4433_2211)
        .unwrap();
    assert_eq!(m.read_u8(MachineAddr(0xfff)).unwrap(), 0x33);
    assert_eq!(m.read_u8(MachineAddr(0x1000)).unwrap(), 0x44);
    assert_eq!(
        m.read_u64(MachineAddr(0xffd)).unwrap(),
        0x8877_6655_4433_2211
    );
    assert_eq!(m.read_u16(MachineAddr(0xfff)).unwrap(), 0x4433);
    m.write_u128(MachineAddr(0x1ff8), u128::MAX - 1).unwrap();
    assert_eq!(m.read_u128(MachineAddr(0x1ff8)).unwrap(), u128::MAX - 1);
    assert_eq!(m.read_u64(MachineAddr(0x2000)).unwrap(), u64::MAX);
    assert_eq!(m.allocated_frames(), vec![Mfn(0), Mfn(1), Mfn(2)]);
}

#[test]
fn cross_frame_read_of_unwritten_frame_is_zero() {
    let m = mem(2);
    m.write_u8(MachineAddr(0xfff), 0x5a).unwrap();
    assert_eq!(m.read_u32(MachineAddr(0xffe)).unwrap(), 0x5a00);
    assert_eq!(m.allocated_frames(), vec![Mfn(0)]);
}

#[test]
fn out_of_range_is_an_error_and_writes_nothing() {
    let m = mem(1);
    assert_eq!(
        m.read_u32(MachineAddr(0xffe)).unwrap_err(),
        MemError::OutOfRange {
            addr: MachineAddr(0xffe),
            len: 4,
            size: 4096
        }
    );
    assert!(m.write_u128(MachineAddr(0xff8), 1).is_err());
    assert!(m.write(MachineAddr(0xf00), &[1; 0x101]).is_err());
    assert!(m.read(MachineAddr(u64::MAX), &mut [0; 2]).is_err());
    assert!(
        m.allocated_frames().is_empty(),
        "failed writes wrote nothing"
    );
    let msg = m.read_u8(MachineAddr(0x1000)).unwrap_err().to_string();
    assert!(msg.contains("0x1000") && msg.contains("4096"), "{msg}");
}

#[test]
fn bulk_read_write_and_fill_span_frames() {
    let m = mem(4);
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
    m.write(MachineAddr(0x7f3), &data).unwrap();
    let mut back = vec![0u8; data.len()];
    m.read(MachineAddr(0x7f3), &mut back).unwrap();
    assert_eq!(back, data);
    m.fill(MachineAddr(0x800), 0x1800, 0).unwrap();
    assert_eq!(m.read_u8(MachineAddr(0x7ff)).unwrap(), data[12]);
    assert_eq!(m.read_u64(MachineAddr(0x800)).unwrap(), 0);
    assert_eq!(m.read_u64(MachineAddr(0x1ff8)).unwrap(), 0);
    m.fill(MachineAddr(0x3ffe), 2, 0xab).unwrap();
    assert_eq!(m.read_u16(MachineAddr(0x3ffe)).unwrap(), 0xabab);
    let fresh = mem(4);
    fresh.fill(MachineAddr(0), 4 * FRAME_SIZE, 0).unwrap();
    assert!(fresh.allocated_frames().is_empty(), "zero fill is free");
}

/// Random accesses of every size and alignment against a byte-array model.
#[test]
fn random_accesses_match_a_byte_model() {
    let m = mem(3);
    let mut model = vec![0u8; 3 * FRAME_SIZE as usize];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let len = (next() % 8 + 1) as usize;
        let addr = next() % (model.len() - len + 1) as u64;
        let a = MachineAddr(addr);
        if next() % 2 == 0 {
            let v = next();
            m.store(a, len, v).unwrap();
            model[addr as usize..addr as usize + len].copy_from_slice(&v.to_le_bytes()[..len]);
        } else {
            let mut b = [0u8; 8];
            b[..len].copy_from_slice(&model[addr as usize..addr as usize + len]);
            assert_eq!(m.load(a, len).unwrap(), u64::from_le_bytes(b), "{len}@{a}");
        }
    }
    let mut all = vec![0u8; model.len()];
    m.read(MachineAddr(0), &mut all).unwrap();
    assert_eq!(all, model);
}

/// Threads write disjoint lines of the same frames (racing on the lazy
/// allocation of each frame) and every value survives.
#[test]
fn threads_on_disjoint_lines_do_not_interfere() {
    const THREADS: u64 = 4;
    let m = Arc::new(mem(64));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let m = Arc::clone(&m);
            s.spawn(move || {
                for round in 0..4u64 {
                    for line in (t..64 * 64).step_by(THREADS as usize) {
                        let base = LineAddr(line).base();
                        for w in 0..8u64 {
                            let a = MachineAddr(base.get() + 8 * w);
                            let v = line * 1000 + w + round;
                            m.write_u64(a, v).unwrap();
                            // Sub-word stores exercise load-modify-store.
                            m.write_u8(a, (v & 0xff) as u8).unwrap();
                        }
                    }
                }
            });
        }
    });
    for line in 0..64 * 64u64 {
        for w in 0..8u64 {
            let a = MachineAddr(LineAddr(line).base().get() + 8 * w);
            assert_eq!(m.read_u64(a).unwrap(), line * 1000 + w + 3);
        }
    }
    assert_eq!(m.allocated_frames().len(), 64);
}

#[test]
#[should_panic(expected = "1..=8")]
fn oversized_load_is_a_bug() {
    let _ = mem(1).load(MachineAddr(0), 9);
}

#[test]
fn frames_are_host_cache_line_aligned() {
    assert_eq!(std::mem::align_of::<Frame>(), 64);
    let f = Frame::zeroed();
    assert_eq!(std::ptr::from_ref(&f.words[0]) as usize % 64, 0);
}
