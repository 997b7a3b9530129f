//! Where a value came from, for messages: `file:line: key` for the file, `--set KEY` for an
//! override; and the typed readers of durations and choices that say so when they fail.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::Choice;
use crate::error::input;

/// Where the scenario text came from, for error messages.
pub struct Source<'a> {
    pub label: &'a str,
    pub text: &'a str,
}

pub struct Ctx<'a> {
    pub src: &'a Source<'a>,
    pub overridden: BTreeSet<String>,
}

impl Ctx<'_> {
    /// `file:line: key` or `--set key`, for the message of a bad value.
    pub fn at(&self, key: &str) -> String {
        let path: Vec<&str> = key.split('.').collect();
        self.at_path(key, &path)
    }

    /// Like [`Ctx::at`] for a key whose last part may itself contain dots (checks).
    pub fn at_path(&self, key: &str, path: &[&str]) -> String {
        if self
            .overridden
            .iter()
            .any(|o| o == key || key.starts_with(&format!("{o}.")))
        {
            return format!("--set {key}");
        }
        match line_of_path(self.src.text, path) {
            Some(line) => format!("{}:{line}: key `{key}`", self.src.label),
            None => format!("{}: key `{key}` (default)", self.src.label),
        }
    }

    pub fn err(&self, key: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        input(format!("{}: {msg}", self.at(key)))
    }

    pub fn duration(
        &self,
        key: &str,
        value: Option<&str>,
        default: &str,
    ) -> anyhow::Result<Duration> {
        let text = value.unwrap_or(default);
        humantime::parse_duration(text.trim()).map_err(|e| {
            self.err(
                key,
                format!("{text:?} is not a duration ({e}); write a number and a unit, e.g. \"30s\", \"500ms\", \"2m\""),
            )
        })
    }

    /// One of a [`Choice`]'s names, `default` when the key is not given.
    pub fn choose<T: Choice>(
        &self,
        key: &str,
        value: Option<&str>,
        default: T,
    ) -> anyhow::Result<T> {
        let names: Vec<&str> = T::ALL.iter().map(|c| c.1).collect();
        let name = self.choice(key, value, default.name(), &names, &[])?;
        Ok(T::from_name(name).expect("a listed name"))
    }

    pub fn choice<'v>(
        &self,
        key: &str,
        value: Option<&'v str>,
        default: &'v str,
        supported: &[&str],
        known_later: &[&str],
    ) -> anyhow::Result<&'v str> {
        let v = value.unwrap_or(default);
        if supported.contains(&v) {
            return Ok(v);
        }
        if known_later.contains(&v) {
            return Err(self.err(
                key,
                format!(
                    "{v:?} is not implemented in this version; use {}",
                    supported.join(" or ")
                ),
            ));
        }
        Err(self.err(key, format!("{v:?} is not one of {}", supported.join(", "))))
    }
}

/// The 1-based line of a key given as its path of table names (an array of tables is
/// entered by index: `faults.0.at`).
pub fn line_of_path(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut span = None;
    let mut parts = path.iter().peekable();
    while let Some(&part) = parts.next() {
        if let Some(array) = item.as_array_of_tables() {
            let table = array.get(part.parse::<usize>().ok()?)?;
            span = table.span().or(span);
            let Some(&next) = parts.next() else { break };
            let (k, it) = table.get_key_value(next)?;
            span = k.span().or_else(|| it.span()).or(span);
            item = it;
            continue;
        }
        let table = item.as_table_like()?;
        let (k, it) = table.get_key_value(part)?;
        span = k.span().or_else(|| it.span());
        item = it;
    }
    let offset = span?.start;
    Some(text[..offset.min(text.len())].matches('\n').count() + 1)
}
