//! smpsim: the command-line program.
fn main() {}
