use super::*;
use smpsim_cores::debug::dr6;

fn pv_with_de(de: bool) -> PvCpu {
    let mut pv = PvCpu::default();
    pv.write_cr4(if de { pvcpu::CR4_DE } else { 0 });
    pv
}

/// DR7 with breakpoint `i` globally enabled, R/W `rw`, LEN field `len`.
fn g(i: usize, rw: u64, len: u64) -> u64 {
    2 << (2 * i) | rw << (16 + 4 * i) | len << (18 + 4 * i)
}

#[test]
fn dr0_to_dr3_refuse_xen_and_non_canonical_addresses_with_eperm() {
    let mut pv = pv_with_de(false);
    for bad in [1 << 47, 0xffff_8000_0000_0000, 0xffff_87ff_ffff_fff8] {
        assert_eq!(set_debugreg(&mut pv, 1, bad), Err(Errno::Perm), "{bad:#x}");
    }
    assert_eq!(pv.dr[1], 0, "refused writes change nothing");
    for good in [0x40_1000, (1 << 47) - 1, 0xffff_8800_0000_0000, u64::MAX] {
        assert_eq!(set_debugreg(&mut pv, 2, good), Ok(()));
        assert_eq!(pv.dr[2], good);
    }
}

#[test]
fn dr6_keeps_its_fixed_bits_and_refuses_the_upper_half() {
    let mut pv = pv_with_de(false);
    assert_eq!(set_debugreg(&mut pv, 6, 1 << 32), Err(Errno::Inval));
    assert_eq!(set_debugreg(&mut pv, 6, 0x1000 | 0x4001), Ok(()));
    assert_eq!(pv.dr[6], 0xffff_4ff1, "bit 12 reads 0, reserved bits 1");
    // DR4 aliases DR6 without CR4.DE, and is -ENODEV with it.
    assert_eq!(set_debugreg(&mut pv, 4, 0), Ok(()));
    assert_eq!(pv.dr[6], 0xffff_0ff0);
    let mut de = pv_with_de(true);
    assert_eq!(set_debugreg(&mut de, 4, 0), Err(Errno::NoDev));
    assert_eq!(set_debugreg(&mut de, 5, 0), Err(Errno::NoDev));
    assert_eq!(set_debugreg(&mut de, 8, 0), Err(Errno::NoDev));
}

#[test]
fn dr7_rules_reserved_bits_gd_and_io_breakpoints() {
    let mut pv = pv_with_de(false);
    assert_eq!(set_debugreg(&mut pv, 7, 1 << 32), Err(Errno::Inval));
    assert_eq!(set_debugreg(&mut pv, 7, pvcpu::DR7_GD), Err(Errno::Perm));
    // Reserved bits 11, 12, 14, 15 read 0; bit 10 reads 1.
    assert_eq!(set_debugreg(&mut pv, 7, 0xd800 | 1), Ok(()));
    assert_eq!(pv.dr[7], 0x401);
    // Any R/W field = I/O while an enable is set needs CR4.DE, even in a
    // disabled slot (Xen checks every field)...
    let io_in_slot_1 = dr7::RW_IO << 20 | g(0, dr7::RW_WRITE, 3);
    assert_eq!(set_debugreg(&mut pv, 7, io_in_slot_1), Err(Errno::Perm));
    assert_eq!(pv.dr[7], 0x401, "kept");
    // ... but not with no enable at all.
    assert_eq!(set_debugreg(&mut pv, 7, dr7::RW_IO << 20), Ok(()));
    let mut de = pv_with_de(true);
    let io0 = g(0, dr7::RW_IO, 3) | 1 << 9 | 0x400;
    assert_eq!(set_debugreg(&mut de, 7, io0), Ok(()));
    assert_eq!(de.dr[7], io0, "read back whole, I/O enables included");
}

#[test]
fn dr7_reaches_the_core_view_and_sync_keeps_the_shadow() {
    let mut pv = pv_with_de(false);
    set_debugreg(&mut pv, 0, 0x5000).expect("guest address");
    set_debugreg(&mut pv, 7, g(0, dr7::RW_WRITE, 3)).expect("data breakpoint");
    let mut regs = ArchState::default();
    regs.debug.shadow = true;
    regs.debug.pending = dr6::B0;
    sync_core(&pv, &mut regs);
    assert_eq!(regs.debug.addr[0], 0x5000);
    assert_eq!(regs.debug.dr7, pv.dr[7]);
    assert_eq!((regs.debug.shadow, regs.debug.pending), (true, dr6::B0));
    assert_eq!(regs.debug.data_match(0x5002, 1, true), dr6::B0);
}

#[test]
fn dr6_merge_replaces_breakpoint_bits_and_keeps_bs() {
    let d = pvcpu::DR6_DEFAULT;
    assert_eq!(merge_dr6(d, dr6::B0), 0xffff_0ff1);
    assert_eq!(merge_dr6(0xffff_0ff1, 4), 0xffff_0ff4, "B0 replaced by B2");
    let stepped = merge_dr6(d, dr6::BS);
    assert_eq!(stepped, 0xffff_4ff0);
    assert_eq!(merge_dr6(stepped, 2), 0xffff_4ff2, "BS sticky");
}
