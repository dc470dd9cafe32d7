//! Integration tests of the functional core (one binary, a module per topic).

mod native;
mod support;
