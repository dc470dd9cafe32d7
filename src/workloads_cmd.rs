//! `smpsim workloads [NAME]`: the built-in workloads and their arguments.

use smpsim_workloads::Workload;
use std::process::ExitCode;

/// Arguments of `smpsim workloads`.
#[derive(clap::Args, Debug)]
pub struct WorkloadsArgs {
    /// Describe this workload only.
    pub name: Option<String>,
}

/// Lists every workload with its arguments, or describes one.
pub fn run(a: &WorkloadsArgs) -> Result<ExitCode, String> {
    match &a.name {
        Some(n) => {
            let w = smpsim_workloads::find(n).map_err(|e| e.to_string())?;
            print!("{}", describe(w));
        }
        None => {
            for w in smpsim_workloads::catalogue() {
                println!("{:<16} {}", w.name, w.description);
                println!("{:<16} {}", "", args_line(w));
            }
            println!(
                "\n`smpsim workloads NAME` describes one; pass arguments as --arg NAME=VALUE."
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `args: iters=50 (1..=4294967296)` (defaults and ranges), or that it
/// takes none.
fn args_line(w: &Workload) -> String {
    if w.args.is_empty() {
        return "takes no arguments".into();
    }
    let a: Vec<String> = w
        .args
        .iter()
        .map(|a| format!("{}={} ({})", a.name, a.default, a.allowed()))
        .collect();
    format!("args: {}", a.join(" "))
}

/// One workload: what it does, its domains, each argument with its default
/// and range.
pub fn describe(w: &Workload) -> String {
    let mut s = format!("{}: {}\n", w.name, w.description);
    s += &format!(
        "domains: {}{}\n",
        w.domains,
        if w.crashes_on_purpose {
            " (crashes on purpose)"
        } else {
            ""
        }
    );
    if w.args.is_empty() {
        s += "arguments: none\n";
        return s;
    }
    s += "arguments (--arg NAME=VALUE; a whole number, 0 or left out = the default):\n";
    let width = w.args.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in w.args {
        s += &format!(
            "  {:<width$}  default {:<7} allowed {:<24} {}\n",
            a.name,
            a.default,
            a.allowed(),
            a.help
        );
    }
    s
}
