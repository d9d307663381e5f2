//! The command-line reference in `docs/cli/` is the `--help` of every command of `acre`, `acre-node` and
//! `acre-farmer`, so it can never drift from the binaries: this test renders it again from the real
//! binaries and fails on any difference. After changing a flag, regenerate it with
//! `ACRE_BLESS=1 cargo test -p acre-cli --test cli_reference` (or `scripts/cli-reference`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ACRE, sibling};

/// The `--help` of `binary` with `path` (subcommand names) after it; no environment, so `[env: …]`
/// annotations never show a value from the machine running the test.
fn help(binary: &Path, path: &[String]) -> String {
    let output = Command::new(binary)
        .env_clear()
        .args(path)
        .arg("--help")
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{} {} --help failed: {}",
        binary.display(),
        path.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// The subcommands a help text lists under `Commands:` (clap's layout), without `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.strip_prefix("  "))
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The Markdown reference of one binary: its help, then every subcommand's, depth first.
fn reference(name: &str, binary: &Path) -> String {
    let mut out = format!(
        "# `{name}` command-line reference\n\n\
         Generated from `--help` by `scripts/cli-reference`; `cargo test -p acre-cli --test cli_reference` \
         fails when it differs from the binary.\n"
    );
    let mut stack = vec![Vec::<String>::new()];
    while let Some(path) = stack.pop() {
        let text = help(binary, &path);
        let title = std::iter::once(name.to_owned())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&format!("\n## `{title}`\n\n```text\n{}```\n", text));
        for sub in subcommands(&text).into_iter().rev() {
            let mut child = path.clone();
            child.push(sub);
            stack.push(child);
        }
    }
    out
}

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cli")
}

#[test]
fn the_reference_in_docs_matches_every_binarys_help() {
    let bless = std::env::var_os("ACRE_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, binary) in [
        ("acre", PathBuf::from(ACRE)),
        ("acre-node", sibling("acre-node")),
        ("acre-farmer", sibling("acre-farmer")),
    ] {
        let rendered = reference(name, &binary);
        let path = docs().join(format!("{name}.md"));
        if bless {
            std::fs::create_dir_all(docs()).expect("docs/cli");
            std::fs::write(&path, &rendered).expect("writing the reference");
            continue;
        }
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        if written != rendered {
            let line = written
                .lines()
                .zip(rendered.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| written.lines().count().min(rendered.lines().count()))
                + 1;
            stale.push(format!("{} (first difference at line {line})", path.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "the CLI reference is out of date: {}; run scripts/cli-reference",
        stale.join(", ")
    );
}

#[test]
fn subcommands_are_read_from_clap_help() {
    let text = "Usage: x\n\nCommands:\n  key     Keys\n  chain   Chain\n          more text\n  help    Print\n\nOptions:\n  -h\n";
    assert_eq!(subcommands(text), ["key", "chain"]);
    assert!(subcommands("Usage: x\n\nOptions:\n  -h\n").is_empty());
}
