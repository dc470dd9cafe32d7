use super::*;

fn mesh4x4() -> Interconnect {
    let cfg = InterconnectConfig {
        topology: TopologyKind::Mesh,
        link_bytes_per_cycle: 32,
        mesh: MeshConfig {
            cols: 4,
            rows: 4,
            hop_latency: 1,
            router_latency: 2,
            ..MeshConfig::default()
        },
        ..InterconnectConfig::default()
    };
    let counts = NodeCounts {
        cores: 16,
        l3_slices: 16,
        mem_ctrls: 4,
    };
    Interconnect::new(&cfg, counts).expect("valid mesh")
}

#[test]
fn mesh_4x4_default_placement() {
    let ic = mesh4x4();
    assert_eq!(ic.mesh_dims(), Some((4, 4)));
    assert_eq!(ic.tile_of(Node::Core(6)), Some((2, 1)));
    assert_eq!(ic.tile_of(Node::L3Slice(6)), Some((2, 1)), "co-located");
    assert_eq!(ic.tile_of(Node::MemCtrl(0)), Some((0, 1)));
    assert_eq!(ic.tile_of(Node::MemCtrl(1)), Some((3, 1)));
    assert_eq!(ic.tile_of(Node::MemCtrl(2)), Some((0, 3)));
    assert_eq!(ic.tile_of(Node::MemCtrl(3)), Some((3, 3)));
}

#[test]
fn mesh_4x4_latencies_follow_xy_hops() {
    let ic = mesh4x4();
    // Same tile: one router.
    assert_eq!(ic.head_latency(Node::Core(5), Node::L3Slice(5)), 2);
    // Neighbours: 2 routers + 1 hop.
    assert_eq!(ic.head_latency(Node::Core(0), Node::L3Slice(1)), 5);
    // Corner to corner: 6 hops, 7 routers.
    assert_eq!(ic.hops(Node::Core(0), Node::Core(15)), 6);
    assert_eq!(ic.head_latency(Node::Core(0), Node::Core(15)), 7 * 2 + 6);
    // Core 5 (1,1) to MC 3 (3,3): 4 hops.
    assert_eq!(ic.head_latency(Node::Core(5), Node::MemCtrl(3)), 5 * 2 + 4);
    // A 72-byte data message is 3 flits: the tail trails by 2 cycles.
    assert_eq!(ic.flits(72), 3);
    assert_eq!(ic.latency(Node::Core(0), Node::Core(15), 72), 20 + 2);
    assert_eq!(ic.latency(Node::Core(0), Node::Core(15), 8), 20);
    assert_eq!(ic.min_latency(), 2);
    assert_eq!(
        ic.head_latency(Node::Core(3), Node::Core(12)),
        ic.head_latency(Node::Core(12), Node::Core(3)),
        "symmetric"
    );
}

#[test]
fn crossbar_has_one_latency() {
    let cfg = InterconnectConfig {
        topology: TopologyKind::Crossbar,
        link_bytes_per_cycle: 16,
        crossbar: CrossbarConfig { latency: 6 },
        ..InterconnectConfig::default()
    };
    let counts = NodeCounts {
        cores: 8,
        l3_slices: 4,
        mem_ctrls: 2,
    };
    let ic = Interconnect::new(&cfg, counts).expect("valid crossbar");
    assert_eq!(ic.head_latency(Node::Core(0), Node::L3Slice(3)), 6);
    assert_eq!(ic.head_latency(Node::L3Slice(1), Node::MemCtrl(1)), 6);
    assert_eq!(ic.latency(Node::Core(7), Node::Core(0), 72), 6 + 4);
    assert_eq!(ic.min_latency(), 6);
    assert_eq!(ic.tile_of(Node::Core(0)), None);
    assert_eq!(ic.hops(Node::Core(0), Node::Core(1)), 0);
}

#[test]
fn injection_port_serializes_back_to_back_messages() {
    let ic = mesh4x4();
    let mut port = InjectionPort::default();
    let (src, dst) = (Node::Core(0), Node::L3Slice(15));
    let a = ic.transfer(&mut port, Cycle(100), src, dst, 72);
    assert_eq!((a.depart, a.arrive, a.extra), (Cycle(100), Cycle(122), 2));
    // The port is busy for 3 cycles; the next message waits for it.
    let b = ic.transfer(&mut port, Cycle(101), src, dst, 8);
    assert_eq!((b.depart, b.arrive, b.extra), (Cycle(103), Cycle(123), 2));
    assert_eq!(port.free_at(), Cycle(104));
    // An idle port adds nothing.
    let c = ic.transfer(&mut port, Cycle(200), src, Node::Core(1), 8);
    assert_eq!((c.depart, c.arrive, c.extra), (Cycle(200), Cycle(205), 0));
}

#[test]
fn mesh_auto_sizes_and_places_edges() {
    let counts = NodeCounts {
        cores: 6,
        l3_slices: 3,
        mem_ctrls: 1,
    };
    let ic = Interconnect::new(&InterconnectConfig::default(), counts).expect("valid");
    assert_eq!(ic.mesh_dims(), Some((3, 2)));
    assert_eq!(ic.tile_of(Node::L3Slice(1)), Some((2, 0)), "tile 1*6/3 = 2");
    assert_eq!(ic.tile_of(Node::MemCtrl(0)), Some((0, 1)));
    assert_eq!(ic.min_latency(), 2, "slice 0 shares core 0's tile");
}

#[test]
fn explicit_placement_and_min_latency_without_sharing() {
    let cfg = InterconnectConfig {
        mesh: MeshConfig {
            cols: 4,
            rows: 1,
            core_tiles: vec![0, 3],
            slice_tiles: vec![1],
            mc_tiles: vec![2],
            ..MeshConfig::default()
        },
        ..InterconnectConfig::default()
    };
    let counts = NodeCounts {
        cores: 2,
        l3_slices: 1,
        mem_ctrls: 1,
    };
    let ic = Interconnect::new(&cfg, counts).expect("valid");
    assert_eq!(ic.tile_of(Node::Core(1)), Some((3, 0)));
    assert_eq!(
        ic.min_latency(),
        2 * 2 + 1,
        "nearest nodes are one hop apart"
    );
}

#[test]
fn bad_configs_name_the_key() {
    let counts = NodeCounts {
        cores: 4,
        l3_slices: 4,
        mem_ctrls: 1,
    };
    let mut cfg = InterconnectConfig::default();
    cfg.mesh.router_latency = 0;
    let e = Interconnect::new(&cfg, counts).unwrap_err();
    assert!(e.to_string().contains("mesh.router_latency"), "{e}");
    cfg = InterconnectConfig::default();
    cfg.mesh.cols = 2;
    assert_eq!(
        Interconnect::new(&cfg, counts).unwrap_err(),
        InterconnectError::BadMeshSize { cols: 2, rows: 0 }
    );
    cfg = InterconnectConfig::default();
    cfg.mesh.core_tiles = vec![0, 1, 2, 9];
    let e = Interconnect::new(&cfg, counts).unwrap_err();
    assert!(e.to_string().contains("core_tiles[3] = 9"), "{e}");
    cfg.mesh.core_tiles = vec![0];
    assert!(matches!(
        Interconnect::new(&cfg, counts),
        Err(InterconnectError::PlacementLength {
            got: 1,
            want: 4,
            ..
        })
    ));
    cfg = InterconnectConfig {
        link_bytes_per_cycle: 0,
        ..InterconnectConfig::default()
    };
    assert_eq!(
        Interconnect::new(&cfg, counts).unwrap_err(),
        InterconnectError::ZeroBandwidth
    );
}

#[test]
fn config_reads_from_toml_and_rejects_unknown_keys() {
    let cfg: InterconnectConfig = toml::from_str(
        "topology = \"crossbar\"\n[crossbar]\nlatency = 3\n[mesh]\nhop_latency = 2\n",
    )
    .expect("valid toml");
    assert_eq!(cfg.topology, TopologyKind::Crossbar);
    assert_eq!(cfg.crossbar.latency, 3);
    assert_eq!(cfg.mesh.hop_latency, 2);
    assert_eq!(cfg.mesh.router_latency, 2, "default filled in");
    assert_eq!(cfg.link_bytes_per_cycle, 32, "default filled in");
    let bad = toml::from_str::<InterconnectConfig>("[mesh]\nhops = 2\n");
    assert!(bad.unwrap_err().to_string().contains("hops"));
    let round: InterconnectConfig =
        toml::from_str(&toml::to_string(&cfg).expect("serializes")).expect("parses");
    assert_eq!(round, cfg);
}
