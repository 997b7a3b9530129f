//! The summary of `pollpush capacity` (`summary.json` under `capacity`): the objectives,
//! the search's settings, and for each mode every step judged and the verdict.

use serde::{Deserialize, Serialize};

use super::figure::Leaf;
use super::mode::Latency;

/// A capacity search's `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapacityDocument {
    pub schema_version: u64,
    pub pollpush_version: String,
    pub capacity: Capacity,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capacity {
    pub scenario: String,
    #[serde(deserialize_with = "Leaf::read")]
    pub machine_cores: f64,
    pub poll_interval_s: f64,
    pub events_per_user_per_s: f64,
    pub objectives: Objectives,
    pub search: SearchSettings,
    pub modes: CapacityModes,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Objectives {
    pub poll: PollObjectives,
    pub push: PushObjectives,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PollObjectives {
    pub lateness_p99_below_share_of_interval: f64,
    pub latency_max_below_interval_plus_s: f64,
    pub errors: u64,
    pub lost: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PushObjectives {
    pub latency_p99_ms_at_most: f64,
    pub lost: u64,
    pub every_client_connected: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchSettings {
    pub start: u64,
    pub max: u64,
    pub factor: f64,
    pub refine: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapacityModes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll: Option<ModeSearch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<ModeSearch>,
}

impl CapacityModes {
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &ModeSearch)> {
        [("poll", &self.poll), ("push", &self.push)]
            .into_iter()
            .filter_map(|(name, m)| Some((name, m.as_ref()?)))
    }
}

/// One mode's search: the largest load held, the first that broke, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModeSearch {
    pub held_users: Option<u64>,
    pub broke_at_users: Option<u64>,
    pub limit: Option<String>,
    pub swarm_limited: bool,
    /// Why the search stopped before a step broke (the machine could not try the next).
    pub stopped: Option<String>,
    pub verdict: String,
    pub steps: Vec<Step>,
}

/// One step of the search: its load, whether it held each objective, and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    pub users: u64,
    pub held: bool,
    /// The objectives it broke, in words.
    pub broken: Vec<String>,
    /// What limited it: the busiest component, or the load generator.
    pub limit: Option<String>,
    pub swarm_limited: bool,
    pub events_per_s: Option<f64>,
    pub push_instances: Option<u64>,
    pub latency_ms: Latency,
    pub lateness_p99_ms: Option<f64>,
    pub lost: Option<u64>,
    pub connections: Option<i64>,
    pub requests_per_min: Option<f64>,
    pub db_queries_per_min: Option<f64>,
    pub cpu_cores: StepCpu,
    pub cpu_total_cores: Option<f64>,
}

/// A step's CPU by component, in cores: the system under test's parts, then the swarm.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepCpu {
    pub servers: Option<f64>,
    #[serde(rename = "Postgres")]
    pub postgres: Option<f64>,
    #[serde(rename = "Redis")]
    pub redis: Option<f64>,
    pub swarm: Option<f64>,
}

impl StepCpu {
    /// The system under test: the servers, Postgres and Redis.
    pub fn system(&self) -> f64 {
        [self.servers, self.postgres, self.redis]
            .into_iter()
            .flatten()
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed searches read typed and write back every key and value.
    #[test]
    fn committed_capacity_searches_read_typed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        let mut read = 0;
        for dir in ["capacity", "capacity-cached"] {
            let text = std::fs::read_to_string(root.join(dir).join("summary.json")).unwrap();
            let original: serde_json::Value = serde_json::from_str(&text).unwrap();
            let typed: CapacityDocument = serde_json::from_str(&text).unwrap();
            let again = serde_json::to_value(&typed).unwrap();
            for mode in ["poll", "push"] {
                let steps = original["capacity"]["modes"][mode]["steps"].as_array();
                for (i, s) in steps.into_iter().flatten().enumerate() {
                    let back = &again["capacity"]["modes"][mode]["steps"][i];
                    for (k, v) in s.as_object().unwrap() {
                        match (v.as_f64(), back[k].as_f64()) {
                            (Some(a), Some(b)) => assert_eq!(a, b, "{dir} {mode} step {i} {k}"),
                            _ if v.is_object() => {
                                for (kk, vv) in v.as_object().unwrap() {
                                    assert_eq!(
                                        vv.as_f64(),
                                        back[k][kk].as_f64(),
                                        "{dir} {mode} step {i} {k}.{kk}"
                                    );
                                }
                            }
                            _ => assert_eq!(*v, back[k], "{dir} {mode} step {i} {k}"),
                        }
                    }
                    read += 1;
                }
            }
            assert_eq!(
                original["capacity"]["modes"]["poll"]["verdict"],
                again["capacity"]["modes"]["poll"]["verdict"]
            );
        }
        assert!(read >= 5, "{read} steps read");
    }
}
