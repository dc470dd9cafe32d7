//! Integration tests of the functional core (one binary, a module per topic).

mod families;
mod faults;
mod golden;
mod partition;
mod support;
