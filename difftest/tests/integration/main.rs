//! Integration tests of native execution against the functional core (one
//! binary, a module per topic).

#[cfg(target_arch = "x86_64")]
mod groups;
#[cfg(target_arch = "x86_64")]
mod native;
