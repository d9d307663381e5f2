use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::*;

/// A command shaped like the farmer's: a global flag, a subcommand with a required flag, a switch, a
/// repeatable flag, an optional-value flag and a required positional list.
#[derive(Debug, Parser, PartialEq)]
struct Cli {
    #[arg(long, default_value = "text", global = true)]
    log_format: String,
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand, PartialEq)]
enum Sub {
    Farm {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        reward_address: String,
        #[arg(long, default_value_t = 9)]
        port: u16,
        #[arg(long)]
        no_metrics: bool,
        #[arg(long = "allow-host")]
        allow_hosts: Vec<String>,
        #[arg(long, num_args = 0..=1, default_missing_value = "127.0.0.1:1")]
        dashboard: Option<SocketAddr>,
        #[arg(long, default_value_t = 1.5)]
        timeout: f64,
        #[arg(required = true)]
        farms: Vec<String>,
    },
    Info {
        farms: Vec<String>,
    },
}

fn config(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    file
}

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    try_parse_from(std::iter::once("farmer").chain(args.iter().copied()))
}

fn farm(
    cli: Cli,
) -> (
    String,
    u16,
    bool,
    Vec<String>,
    Option<SocketAddr>,
    f64,
    Vec<String>,
) {
    match cli.command {
        Sub::Farm {
            reward_address,
            port,
            no_metrics,
            allow_hosts,
            dashboard,
            timeout,
            farms,
            ..
        } => (
            reward_address,
            port,
            no_metrics,
            allow_hosts,
            dashboard,
            timeout,
            farms,
        ),
        Sub::Info { .. } => panic!("not farm"),
    }
}

const FULL: &str = r#"
reward-address = "ab"
port = 7
no-metrics = true
allow-host = ["a.example", "b.example"]
dashboard = true
timeout = 2.5
farms = ["/x", "/y"]
log-format = "json"
"#;

#[test]
fn every_kind_of_value_is_applied() {
    let file = config(FULL);
    let path = file.path().to_str().expect("utf-8");
    let cli = parse(&["farm", "--config", path]).expect("parses");
    assert_eq!(cli.log_format, "json");
    let (reward, port, no_metrics, hosts, dashboard, timeout, farms) = farm(cli);
    assert_eq!(reward, "ab");
    assert_eq!(port, 7);
    assert!(no_metrics);
    assert_eq!(hosts, ["a.example", "b.example"]);
    assert_eq!(dashboard, Some("127.0.0.1:1".parse().expect("address")));
    assert!((timeout - 2.5).abs() < f64::EPSILON);
    assert_eq!(farms, ["/x", "/y"]);
}

#[test]
fn flags_win_and_command_line_lists_replace_the_files() {
    let file = config(FULL);
    let path = file.path().to_str().expect("utf-8");
    let cli = parse(&[
        "--log-format",
        "text",
        "farm",
        "--port=8",
        "--allow-host",
        "c.example",
        "--config",
        path,
        "--dashboard",
        "127.0.0.1:2",
        "/z",
    ])
    .expect("parses");
    assert_eq!(cli.log_format, "text");
    let (reward, port, _, hosts, dashboard, _, farms) = farm(cli);
    assert_eq!(
        reward, "ab",
        "what the command line lacks still comes from the file"
    );
    assert_eq!(port, 8);
    assert_eq!(hosts, ["c.example"]);
    assert_eq!(dashboard, Some("127.0.0.1:2".parse().expect("address")));
    assert_eq!(farms, ["/z"]);
}

#[test]
fn false_switches_and_values_after_a_separator() {
    let file = config("reward-address = \"-ab\"\nno-metrics = false\ndashboard = false\n");
    let path = file.path().to_str().expect("utf-8");
    let (reward, _, no_metrics, _, dashboard, _, farms) =
        farm(parse(&["farm", "--config", path, "--", "--odd-farm"]).expect("parses"));
    assert_eq!(
        reward, "-ab",
        "values are passed with `=`, so a leading dash is a value"
    );
    assert!(!no_metrics);
    assert_eq!(dashboard, None);
    assert_eq!(farms, ["--odd-farm"]);
}

#[test]
fn without_a_config_the_command_line_is_parsed_as_usual() {
    let (_, port, ..) = farm(parse(&["farm", "--reward-address", "ab", "/x"]).expect("parses"));
    assert_eq!(port, 9);
    let missing = parse(&["farm", "/x"]).expect_err("reward address missing");
    assert_eq!(missing.kind(), ErrorKind::MissingRequiredArgument);
    assert_eq!(
        parse(&["--help"]).expect_err("help").kind(),
        ErrorKind::DisplayHelp
    );
    assert!(matches!(
        parse(&["info", "/x"]).expect("parses").command,
        Sub::Info { .. }
    ));
}

#[test]
fn a_required_value_missing_from_both_is_clap_s_own_error() {
    let file = config("port = 3\n");
    let path = file.path().to_str().expect("utf-8");
    let error = parse(&["farm", "--config", path, "/x"]).expect_err("reward address missing");
    assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
    assert!(error.to_string().contains("--reward-address"), "{error}");
}

fn config_error_text(toml: &str) -> String {
    let file = config(toml);
    let path = file.path().to_str().expect("utf-8");
    let error = parse(&["farm", "--config", path, "--reward-address=ab", "/x"]).expect_err("refused");
    let text = error.to_string();
    assert!(text.contains(&format!("config file {path}: ")), "{text}");
    text
}

#[test]
fn invalid_files_are_refused_naming_file_and_key() {
    let text = config_error_text("prot = 3\n");
    assert!(
        text.contains("unknown key `prot`") && text.contains("port"),
        "{text}"
    );
    let text = config_error_text("config = \"other.toml\"\n");
    assert!(text.contains("unknown key `config`"), "{text}");
    let text = config_error_text("help = true\n");
    assert!(text.contains("unknown key `help`"), "{text}");
    let text = config_error_text("port = \"many\"\n");
    assert!(text.contains("invalid value 'many' for '--port"), "{text}");
    let text = config_error_text("port = [1, 2]\n");
    assert!(text.contains("`port` must be a single value"), "{text}");
    let text = config_error_text("no-metrics = \"yes\"\n");
    assert!(text.contains("`no-metrics` must be true or false"), "{text}");
    let text = config_error_text("[port]\nx = 1\n");
    assert!(text.contains("`port` must be a string or a number"), "{text}");
    let text = config_error_text("port = \n");
    assert!(text.contains("not valid TOML"), "{text}");
}

#[test]
fn a_missing_or_oversized_file_is_refused() {
    let error = parse(&[
        "farm",
        "--config",
        "/nonexistent/acre.toml",
        "--reward-address=ab",
        "/x",
    ])
    .expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("config file /nonexistent/acre.toml: cannot open it"),
        "{error}"
    );
    let big = config(&format!(
        "# {}\n",
        "x".repeat(usize::try_from(MAX_CONFIG_BYTES).expect("fits"))
    ));
    let path = big.path().to_str().expect("utf-8");
    let error = parse(&["farm", "--config", path]).expect_err("refused");
    assert!(error.to_string().contains("larger than"), "{error}");
}

#[test]
fn the_command_line_s_own_errors_are_not_blamed_on_the_file() {
    let file = config("reward-address = \"ab\"\n");
    let path = file.path().to_str().expect("utf-8");
    let error = parse(&["farm", "--config", path, "--port", "many", "/x"]).expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::ValueValidation);
    assert!(!error.to_string().contains("config file"), "{error}");
}
