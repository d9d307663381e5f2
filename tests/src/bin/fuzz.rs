//! `fuzz [--inputs N] [--seed S] [TARGET…]`: fuzzes every decoder (or the named ones) and prints a table
//! of targets, inputs, accepted inputs, crashes and non-canonical acceptances. Exits non-zero if any
//! target crashed or accepted a non-canonical input, printing that input in hex.

use std::process::ExitCode;
use std::time::Instant;

use acre_tests::fuzz::{fuzz, targets};

fn main() -> ExitCode {
    let mut inputs: u64 = 1_000_000;
    let mut seed: u64 = 0;
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let number = |value: Option<String>| value.and_then(|value| value.parse().ok());
        match arg.as_str() {
            "--inputs" => match number(args.next()) {
                Some(value) => inputs = value,
                None => return usage("--inputs takes a number"),
            },
            "--seed" => match number(args.next()) {
                Some(value) => seed = value,
                None => return usage("--seed takes a number"),
            },
            "--help" | "-h" => return usage(""),
            name => names.push(name.to_owned()),
        }
    }
    let all = targets();
    let selected: Vec<_> = all
        .iter()
        .filter(|target| names.is_empty() || names.iter().any(|name| name == target.name))
        .collect();
    if selected.is_empty() {
        let known: Vec<_> = all.iter().map(|target| target.name).collect();
        return usage(&format!("no such target; targets: {}", known.join(", ")));
    }
    // Panics are counted, not printed.
    std::panic::set_hook(Box::new(|_| {}));
    println!(
        "{:<26} {:>10} {:>10} {:>8} {:>14} {:>8}",
        "target", "inputs", "accepted", "crashes", "non-canonical", "seconds"
    );
    let mut failed = false;
    for target in selected {
        let started = Instant::now();
        let outcome = fuzz(target, inputs, seed);
        println!(
            "{:<26} {:>10} {:>10} {:>8} {:>14} {:>8.1}",
            outcome.target,
            outcome.inputs,
            outcome.accepted,
            outcome.crashes,
            outcome.non_canonical,
            started.elapsed().as_secs_f64()
        );
        if let Some(input) = &outcome.first_failure {
            failed = true;
            let hex: String = input.iter().map(|byte| format!("{byte:02x}")).collect();
            println!("  first failing input: {hex}");
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("error: {problem}");
    }
    eprintln!("usage: fuzz [--inputs N] [--seed S] [TARGET...]");
    if problem.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
