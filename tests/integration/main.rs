//! Whole-machine tests: one binary, a module per topic.

mod cli;
mod determinism;
mod support;
mod workloads;
