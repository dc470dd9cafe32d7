//! Whole-machine tests: one binary, a module per topic.

mod balloon;
mod checkpoint;
mod cli;
mod configs;
mod determinism;
mod docs;
mod domain_save;
mod domu;
mod evstorm;
mod experiments;
mod fast;
mod golden;
mod kernel;
mod latency;
mod ooo;
mod smt;
mod splitdrv;
mod sse;
mod support;
mod tlb;
mod ux;
mod workloads;
mod xenstore;
mod xtf;
