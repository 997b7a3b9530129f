//! The summary seen as flat figure names, the way checks and `compare` address them:
//! `<mode>.<path>` for `modes.<mode>.<path>` (e.g. `push.latency_ms.p99`) and
//! `ratios.<name>`; list entries by index (`push.instances.0.received_share`). Only the
//! figures the types declare are listed (not text, settings' words or statements), `None`
//! where one is unknown.

use std::collections::BTreeMap;

use super::figure::Figures;
use super::{Modes, Ratios, Repeat, Summary};

fn figures_of(modes: &Modes, ratios: &Ratios) -> BTreeMap<String, Option<f64>> {
    let mut out = Vec::new();
    for (name, m) in modes.iter() {
        m.values(name, None, &mut out);
    }
    ratios.values("ratios", None, &mut out);
    out.into_iter().collect()
}

impl Summary {
    /// Every figure of the summary by name.
    pub fn figures(&self) -> BTreeMap<String, Option<f64>> {
        figures_of(&self.modes, &self.ratios)
    }
}

impl Repeat {
    /// Every figure of one repeat by name.
    pub fn figures(&self) -> BTreeMap<String, Option<f64>> {
        figures_of(&self.modes, &self.ratios)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn figures_are_named_by_mode_and_path_and_lists_by_index() {
        let s = Summary::from_value(json!({
            "scenario": "x",
            "modes": {"push": {"latency_ms": {"p99": 2.5, "max": null}, "window": {"start": "t"},
                               "instances": [{"received_share": 1.0}, {"received_share": 0.5}]}},
            "ratios": {"db_queries": 200.0}
        }))
        .unwrap();
        let f = s.figures();
        assert_eq!(f.get("push.latency_ms.p99"), Some(&Some(2.5)));
        assert_eq!(f.get("push.latency_ms.max"), Some(&None));
        assert_eq!(f.get("ratios.db_queries"), Some(&Some(200.0)));
        assert!(!f.contains_key("push.window.start"));
        assert!(!f.keys().any(|k| k.starts_with("poll.")));
        assert_eq!(f.get("push.latency_ms.p99").copied().flatten(), Some(2.5));
        assert_eq!(f.get("poll.latency_ms.p99"), None);
        assert_eq!(f.get("push.instances.1.received_share"), Some(&Some(0.5)));
        assert_eq!(f.get("push.instances.2.received_share"), None);
    }
}
