//! Integration tests of the functional core (one binary, a module per topic).

mod families;
mod faults;
mod golden;
#[cfg(target_arch = "x86_64")]
mod native;
mod support;
