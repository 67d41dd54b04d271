//! The layered configuration: built-in defaults < TOML file (`--config` /
//! `MEDIADB_CONFIG`) < environment variables < flags.
//!
//! clap already layers defaults, environment and flags, and records where each value came
//! from (`ArgMatches::value_source`). The file slots in underneath: every key of the file
//! whose setting still holds its default becomes a flag appended to the command line,
//! and the command line is parsed again. So a value from the file is checked by the same
//! parser as the flag and environment variable of that setting, and a setting added to
//! [`crate::config::Config`] is a file key at once, with no second list to keep in step.

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The arg id of `--config` (the field `Config::config_file`).
const CONFIG_FILE_ID: &str = "config_file";

#[derive(Debug)]
pub enum LayerError {
    /// A usage error, `--help` or `--version`: clap prints it and exits.
    Clap(clap::Error),
    /// A configuration file that cannot be used; the message names the file and key.
    Config(String),
}

/// The parsed command line with the file layered in.
pub struct Layered<P> {
    pub cli: P,
    /// The command that runs (the deepest subcommand) and its matches.
    pub command: Command,
    pub matches: ArgMatches,
    pub file: Option<PathBuf>,
    /// Settings whose value came from the file.
    pub from_file: BTreeSet<String>,
}

/// Parses `argv` as `P`, with the file named by `--config` / `MEDIADB_CONFIG` under the
/// environment and the flags.
pub fn parse<P: clap::Parser>(argv: Vec<OsString>) -> Result<Layered<P>, LayerError> {
    let root = P::command();
    let first = root.clone().try_get_matches_from(&argv).map_err(LayerError::Clap)?;
    let (command, matched) = leaf(&root, &first);
    let file = matched
        .try_get_one::<PathBuf>(CONFIG_FILE_ID)
        .ok()
        .flatten()
        .filter(|p| !p.as_os_str().is_empty())
        .cloned();
    let mut from_file = BTreeSet::new();
    let mut matches = first.clone();
    if let Some(path) = &file {
        let table = read_table(path)?;
        let known = all_ids(&root);
        let mut extra: Vec<OsString> = Vec::new();
        for (key, value) in &table {
            let id = key.replace('-', "_");
            let at = |m: String| LayerError::Config(format!("{}: key `{key}`: {m}", path.display()));
            if id == CONFIG_FILE_ID || id == "config" {
                return Err(at("a configuration file cannot name another one".into()));
            }
            let Some(arg) = command
                .get_arguments()
                .find(|a| a.get_id().as_str() == id && a.get_long().is_some())
            else {
                // A key another command uses (`no_local_worker` for `worker`) is not an error.
                if known.contains(&id) {
                    continue;
                }
                return Err(LayerError::Config(format!(
                    "{}: unknown key `{key}` (see config/example.toml for the keys)",
                    path.display()
                )));
            };
            if matches!(
                matched.value_source(&id),
                Some(ValueSource::EnvVariable | ValueSource::CommandLine)
            ) {
                continue;
            }
            let long = arg.get_long().unwrap_or_default();
            if push_flag(&mut extra, long, arg, value).map_err(at)? {
                from_file.insert(id);
            }
        }
        if !extra.is_empty() {
            let mut argv = argv;
            argv.extend(extra);
            matches = root
                .clone()
                .try_get_matches_from(&argv)
                .map_err(|e| file_error(path, e))?;
        }
    }
    let cli = P::from_arg_matches(&matches).map_err(LayerError::Clap)?;
    let (command, matched) = leaf(&root, &matches);
    Ok(Layered {
        cli,
        command: command.clone(),
        matches: matched.clone(),
        file,
        from_file,
    })
}

/// The deepest subcommand of `matches` and its matches.
fn leaf<'a>(root: &'a Command, matches: &'a ArgMatches) -> (&'a Command, &'a ArgMatches) {
    let (mut cmd, mut m) = (root, matches);
    while let Some((name, sub)) = m.subcommand() {
        match cmd.find_subcommand(name) {
            Some(c) => {
                cmd = c;
                m = sub;
            }
            None => break,
        }
    }
    (cmd, m)
}

/// Every setting of every command (a file may be shared by `serve` and `worker`).
fn all_ids(cmd: &Command) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> = cmd
        .get_arguments()
        .filter(|a| a.get_long().is_some())
        .map(|a| a.get_id().to_string())
        .collect();
    for sub in cmd.get_subcommands() {
        ids.extend(all_ids(sub));
    }
    ids
}

fn read_table(path: &Path) -> Result<toml::Table, LayerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LayerError::Config(format!("cannot read the configuration file {}: {e}", path.display())))?;
    text.parse::<toml::Table>()
        .map_err(|e| LayerError::Config(format!("{}: {}", path.display(), e.to_string().trim_end())))
}

/// Appends the flag that sets `value`; false when the value leaves the default alone
/// (a `false` switch, an empty list).
fn push_flag(out: &mut Vec<OsString>, long: &str, arg: &clap::Arg, value: &toml::Value) -> Result<bool, String> {
    let flag = format!("--{long}");
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return match value {
            toml::Value::Boolean(true) => {
                out.push(flag.into());
                Ok(true)
            }
            toml::Value::Boolean(false) => Ok(false),
            _ => Err("expected true or false".into()),
        };
    }
    let text = match value {
        toml::Value::Array(items) => {
            let Some(delimiter) = arg.get_value_delimiter() else {
                return Err("expected a single value, not a list".into());
            };
            if items.is_empty() {
                return Ok(false);
            }
            let parts = items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?;
            parts.join(&delimiter.to_string())
        }
        other => scalar(other)?,
    };
    out.push(format!("{flag}={text}").into());
    Ok(true)
}

fn scalar(v: &toml::Value) -> Result<String, String> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Datetime(d) => Ok(d.to_string()),
        toml::Value::Array(_) => Err("expected a value, not a nested list".into()),
        toml::Value::Table(_) => Err("expected a value, not a table (the file is flat: `key = value`)".into()),
    }
}

/// A value from the file that its setting's parser refused: named by its key.
fn file_error(path: &Path, e: clap::Error) -> LayerError {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return LayerError::Config(format!("{}: {}", path.display(), first_line(&e)));
    };
    let key = arg
        .trim_start_matches('-')
        .split([' ', '='])
        .next()
        .unwrap_or("")
        .replace('-', "_");
    LayerError::Config(format!("{}: key `{key}`: {}", path.display(), first_line(&e)))
}

fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    text.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string()
}

/// The effective configuration as TOML (loadable again with `--config`), each line
/// saying where its value came from; secrets (settings whose environment values clap
/// hides) are redacted.
pub fn render<P>(l: &Layered<P>) -> String {
    let mut out = String::new();
    if let Some(f) = &l.file {
        out.push_str(&format!("# configuration file: {}\n", f.display()));
    }
    for arg in l.command.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.get_long().is_none() || matches!(id, "help" | "version" | CONFIG_FILE_ID) {
            continue;
        }
        let env = arg
            .get_env()
            .map(|e| format!(", env {}", e.to_string_lossy()))
            .unwrap_or_default();
        let raw: Vec<String> = l
            .matches
            .try_get_raw(id)
            .ok()
            .flatten()
            .map(|vals| vals.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let source = if l.from_file.contains(id) {
            "file"
        } else {
            match l.matches.value_source(id) {
                Some(ValueSource::DefaultValue) => "default",
                Some(ValueSource::EnvVariable) => "environment",
                Some(ValueSource::CommandLine) => "flag",
                _ => "unset",
            }
        };
        if raw.is_empty() {
            out.push_str(&format!("# {id} =  (unset{env})\n"));
            continue;
        }
        if arg.is_hide_env_values_set() {
            // Commented out: the output stays a loadable file that invents no secret.
            out.push_str(&format!("# {id} = <redacted>  # {source}{env}\n"));
            continue;
        }
        out.push_str(&format!("{id} = {}  # {source}{env}\n", typed(arg, &raw)));
    }
    out
}

/// A raw value written as the TOML type its setting takes.
fn typed(arg: &clap::Arg, raw: &[String]) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    if let Some(d) = arg.get_value_delimiter() {
        let items: Vec<String> = raw
            .iter()
            .flat_map(|r| r.split(d))
            .filter(|s| !s.is_empty())
            .map(quote)
            .collect();
        return format!("[{}]", items.join(", "));
    }
    let value = &raw[raw.len() - 1];
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return value.clone();
    }
    // Numeric settings all have numeric defaults; anything else is text.
    let numeric_default = arg
        .get_default_values()
        .first()
        .and_then(|d| d.to_str())
        .is_some_and(|d| d.parse::<f64>().is_ok());
    if numeric_default && value.parse::<f64>().is_ok_and(f64::is_finite) {
        return value.clone();
    }
    quote(value)
}
