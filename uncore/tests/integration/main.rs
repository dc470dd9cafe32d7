//! Integration tests of the memory hierarchy: one binary, a module per topic.

mod coherence;
mod latency;
mod stats;
