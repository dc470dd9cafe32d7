//! Whole-machine tests: one binary, a module per topic.

mod cli;
mod configs;
mod determinism;
mod experiments;
mod latency;
mod support;
mod workloads;
