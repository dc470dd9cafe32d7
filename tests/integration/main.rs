//! Whole-machine tests: one binary, a module per topic.

mod cli;
mod determinism;
mod latency;
mod support;
mod workloads;
