//! The summary seen as flat figure names, the way checks and `compare` address them:
//! `<mode>.<path>` for `modes.<mode>.<path>` (e.g. `push.latency_ms.p99`) and
//! `ratios.<name>`; list entries by index (`push.instances.0.received_share`). Only numbers
//! (and nulls, for unknown) are figures.

use std::collections::BTreeMap;

use serde_json::Value;

/// Every figure of a summary; `None` where the summary has `null`.
pub fn figures(summary: &Value) -> BTreeMap<String, Option<f64>> {
    let mut out = BTreeMap::new();
    if let Some(modes) = summary["modes"].as_object() {
        for (mode, v) in modes {
            walk(v, mode, &mut out);
        }
    }
    walk(&summary["ratios"], "ratios", &mut out);
    out
}

fn walk(v: &Value, prefix: &str, out: &mut BTreeMap<String, Option<f64>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                walk(child, &format!("{prefix}.{k}"), out);
            }
        }
        Value::Number(n) => {
            out.insert(prefix.to_string(), n.as_f64());
        }
        Value::Null => {
            out.insert(prefix.to_string(), None);
        }
        // Lists of records (gateway instances, faults); not lists of statements, whose
        // order means nothing.
        Value::Array(items) if !prefix.ends_with(".statements") => {
            for (i, child) in items.iter().enumerate() {
                if child.is_object() {
                    walk(child, &format!("{prefix}.{i}"), out);
                }
            }
        }
        // Strings, booleans and timestamps are not figures.
        _ => {}
    }
}

/// One figure of a summary by name.
pub fn figure(summary: &Value, name: &str) -> Option<f64> {
    let (head, rest) = name.split_once('.')?;
    let root = if head == "ratios" {
        &summary["ratios"]
    } else {
        &summary["modes"][head]
    };
    rest.split('.')
        .fold(root, |v, k| match (v, k.parse::<usize>()) {
            (Value::Array(items), Ok(i)) => items.get(i).unwrap_or(&Value::Null),
            _ => &v[k],
        })
        .as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_modes_and_ratios_but_not_text() {
        let s = json!({
            "scenario": "x",
            "modes": {"push": {"latency_ms": {"p99": 2.5, "max": null}, "window": {"start": "t"}}},
            "ratios": {"db_queries": 200.0}
        });
        let f = figures(&s);
        assert_eq!(f.get("push.latency_ms.p99"), Some(&Some(2.5)));
        assert_eq!(f.get("push.latency_ms.max"), Some(&None));
        assert_eq!(f.get("ratios.db_queries"), Some(&Some(200.0)));
        assert!(!f.contains_key("push.window.start"));
        assert_eq!(figure(&s, "push.latency_ms.p99"), Some(2.5));
        assert_eq!(figure(&s, "ratios.db_queries"), Some(200.0));
        assert_eq!(figure(&s, "poll.latency_ms.p99"), None);
        let s = json!({"modes": {"push": {"instances": [{"received_share": 1.0}, {"received_share": 0.5}]}}});
        assert_eq!(
            figures(&s).get("push.instances.1.received_share"),
            Some(&Some(0.5))
        );
        assert_eq!(figure(&s, "push.instances.1.received_share"), Some(0.5));
        assert_eq!(figure(&s, "push.instances.2.received_share"), None);
    }
}
