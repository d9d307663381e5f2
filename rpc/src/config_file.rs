//! `--config FILE`: a TOML file with the same keys as a binary's flags, for services (feature `config-file`).
//!
//! `acre-node` and `acre-farmer farm` read their settings from the command line; operators who run them as
//! services would rather keep those settings in a file. Instead of a second, parallel settings struct that
//! could drift from the flags, the file is translated into flags: every key is a flag's long name (or a
//! positional argument's name, such as `farms`), and its value becomes `--key=value` on a command line that
//! clap then parses exactly as if it had been typed. So a config value is checked by the same parser, with
//! the same error, as the flag, and `--help` documents both.
//!
//! Flags win: a key whose flag (or positional argument) is on the command line is ignored, and a list given
//! on the command line replaces the file's list rather than extending it.
//!
//! Values: strings, integers and floats are passed as they are written; `true` turns a switch on (`false`
//! leaves it off); an array gives a repeatable flag (or the positional list) one value per element. A flag
//! with an optional value (such as the node's `--dashboard`) takes `true` for its default or a string.
//! Relative paths are relative to the working directory, as on the command line. Unknown keys, tables and
//! values of the wrong shape are errors that name the file and the key: a typo must not silently leave a
//! setting at its default.
//!
//! This lives here because it is the one crate the node and farmer binaries share for their operator-facing
//! interface; it is a translation of text into argv, with no knowledge of either binary's flags.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, Parser};

/// The name of the flag that names the config file.
pub const CONFIG_FLAG: &str = "config";

/// The largest config file read (a config is a few hundred bytes; anything near this is not one).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Parses the process's arguments into `T`, applying `--config FILE` if the (sub)command being run has that
/// flag; prints the error and exits on failure, like [`Parser::parse`].
pub fn parse<T: Parser>() -> T {
    try_parse_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
}

/// Parses `args` (the first is the binary name) into `T`, applying `--config FILE` (see the module docs).
///
/// # Errors
/// The command line's own errors (including `--help` and `--version`, as clap reports them), and an
/// unreadable or invalid config file, as a clap error that names the file and the key.
pub fn try_parse_from<T, I, A>(args: I) -> Result<T, clap::Error>
where
    T: Parser,
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // A lenient first pass finds which command runs, whether it names a config file and which flags the
    // command line already sets; required arguments may be missing here because the file may supply them.
    let Ok(matches) = T::command().ignore_errors(true).try_get_matches_from(&args) else {
        return T::try_parse_from(&args);
    };
    let mut root = T::command();
    // Building propagates global flags into the subcommands, so the file may set them too.
    root.build();
    let (command, matches) = running_subcommand(&root, &matches);
    let Some(path) = config_path(command, matches) else {
        return T::try_parse_from(&args);
    };
    let table = read_table(&path)?;
    let extra = flags_from_table(command, matches, &table, &path)?;
    let merged = splice(&args, extra);
    T::try_parse_from(&merged).map_err(|error| match T::try_parse_from(&args) {
        // The command line's own mistake (a required argument it lacks may be in the file).
        Err(alone) if alone.kind() != ErrorKind::MissingRequiredArgument => alone,
        _ if error.kind() == ErrorKind::MissingRequiredArgument => error,
        // Otherwise the file's: say so, with clap's own explanation of the value.
        _ => {
            let rendered = error.render().to_string();
            let reason = rendered.lines().next().unwrap_or_default();
            config_error(&path, reason.trim_start_matches("error: ").to_owned())
        }
    })
}

/// The deepest subcommand being run, with its matches (the command itself when it has no subcommands).
fn running_subcommand<'a>(command: &'a Command, matches: &'a ArgMatches) -> (&'a Command, &'a ArgMatches) {
    let mut command = command;
    let mut matches = matches;
    while let Some((name, sub_matches)) = matches.subcommand() {
        match command.find_subcommand(name) {
            Some(sub) => {
                command = sub;
                matches = sub_matches;
            }
            None => break,
        }
    }
    (command, matches)
}

/// The config file named on the command line, if `command` has a `--config` flag and it was given.
fn config_path(command: &Command, matches: &ArgMatches) -> Option<std::path::PathBuf> {
    command.get_arguments().find(|arg| arg.get_id() == CONFIG_FLAG)?;
    matches
        .try_get_raw(CONFIG_FLAG)
        .ok()
        .flatten()
        .and_then(|mut values| values.next())
        .map(std::path::PathBuf::from)
}

/// An error about the config file at `path`.
fn config_error(path: &Path, message: String) -> clap::Error {
    clap::Error::raw(
        ErrorKind::InvalidValue,
        format!("config file {}: {message}\n", path.display()),
    )
}

/// Reads and parses the TOML file, bounded.
fn read_table(path: &Path) -> Result<toml::Table, clap::Error> {
    let file =
        std::fs::File::open(path).map_err(|error| config_error(path, format!("cannot open it: {error}")))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|error| config_error(path, format!("cannot read it as UTF-8 text: {error}")))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(config_error(
            path,
            format!("larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    text.parse::<toml::Table>()
        .map_err(|error| config_error(path, format!("not valid TOML: {}", error.to_string().trim())))
}

/// The keys a config file may use for `command`: every flag's long name and every positional argument's
/// name, except help, version and the config flag itself.
fn settable(command: &Command) -> impl Iterator<Item = (String, &Arg)> {
    command.get_arguments().filter_map(|arg| {
        let key = match arg.get_long() {
            Some(long) => long.to_owned(),
            None if arg.is_positional() => arg.get_id().as_str().replace('_', "-"),
            None => return None,
        };
        let action = arg.get_action();
        let special = matches!(
            action,
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
        );
        (!special && key != CONFIG_FLAG).then_some((key, arg))
    })
}

/// The command-line words the table adds: flags before a `--`, positional values after it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Extra {
    flags: Vec<OsString>,
    positionals: Vec<OsString>,
}

/// Translates the table into command-line words, skipping what the command line already sets.
fn flags_from_table(
    command: &Command,
    matches: &ArgMatches,
    table: &toml::Table,
    path: &Path,
) -> Result<Extra, clap::Error> {
    let keys: Vec<(String, &Arg)> = settable(command).collect();
    let mut extra = Extra::default();
    for (key, value) in table {
        let Some((_, arg)) = keys.iter().find(|(name, _)| name == key) else {
            let known: Vec<&str> = keys.iter().map(|(name, _)| name.as_str()).collect();
            return Err(config_error(
                path,
                format!("unknown key `{key}` (the keys are: {})", known.join(", ")),
            ));
        };
        if matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine) {
            continue;
        }
        let wrong = |expected: &str| config_error(path, format!("`{key}` must be {expected}"));
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            match value {
                toml::Value::Boolean(true) => extra.flags.push(format!("--{key}").into()),
                toml::Value::Boolean(false) => {}
                _ => return Err(wrong("true or false")),
            }
            continue;
        }
        if !arg.get_action().takes_values() {
            return Err(config_error(
                path,
                format!("`{key}` cannot be set from a config file"),
            ));
        }
        let repeatable = matches!(arg.get_action(), ArgAction::Append);
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) if repeatable => items.iter().collect(),
            toml::Value::Array(_) => return Err(wrong("a single value, not a list")),
            single => vec![single],
        };
        let optional_value = arg.get_num_args().is_some_and(|range| range.min_values() == 0);
        for value in values {
            let text = match value {
                toml::Value::String(text) => text.clone(),
                toml::Value::Integer(number) => number.to_string(),
                toml::Value::Float(number) => number.to_string(),
                toml::Value::Boolean(true) if optional_value => {
                    extra.flags.push(format!("--{key}").into());
                    continue;
                }
                toml::Value::Boolean(false) if optional_value => continue,
                _ => return Err(wrong("a string or a number (or a list of them)")),
            };
            if arg.is_positional() {
                extra.positionals.push(text.into());
            } else {
                extra.flags.push(format!("--{key}={text}").into());
            }
        }
    }
    Ok(extra)
}

/// The command line with the file's words added: its flags just before any `--` (so they belong to the
/// running subcommand, which is the last one named), its positional values after one.
fn splice(args: &[OsString], extra: Extra) -> Vec<OsString> {
    let separator = args.iter().position(|word| word == "--");
    let (before, after) = args.split_at(separator.unwrap_or(args.len()));
    let mut merged: Vec<OsString> = before.to_vec();
    merged.extend(extra.flags);
    match separator {
        Some(_) => merged.extend_from_slice(after),
        None if !extra.positionals.is_empty() => merged.push("--".into()),
        None => {}
    }
    merged.extend(extra.positionals);
    merged
}

#[cfg(test)]
#[path = "config_file_tests.rs"]
mod tests;
