//! `--set KEY=VALUE`: the key as a dotted path, the value read as TOML.

use crate::error::input;

/// Splits `a.b=value` and reads the value as TOML; a bare word becomes a string.
pub fn parse_override(ov: &str) -> anyhow::Result<(String, toml::Value)> {
    let (key, value) = ov.split_once('=').ok_or_else(|| {
        input(format!(
            "--set {ov:?}: expected KEY=VALUE, e.g. --set push.instances=2"
        ))
    })?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.trim().is_empty()) {
        return Err(input(format!(
            "--set {ov:?}: the key must be a dotted path such as poll.interval"
        )));
    }
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    Ok((key.to_string(), parsed))
}

pub fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> anyhow::Result<()> {
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    let mut cur = table;
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur.insert(part.to_string(), value);
            return Ok(());
        }
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| {
            input(format!(
                "--set {key}: `{}` is not a table",
                parts[..=i].join(".")
            ))
        })?;
    }
    Ok(())
}
