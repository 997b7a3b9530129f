//! `[checks]`: pass/fail gates on figures of the summary, validated before a run starts
//! (a check on a figure that does not exist is a scenario error) and evaluated at its end.

use crate::error::input;
use crate::result::RunResult;
use crate::scenario::Plan;
use crate::summary::Summary;

pub use crate::summary::CheckResult;

/// Fails with a scenario error naming the check when a check names no figure this plan's
/// summary will have.
pub fn validate(plan: &Plan) -> anyhow::Result<()> {
    if let Some(sweep) = &plan.sweep {
        // Each point has its own shape (instances, modes): each must have every figure.
        for p in &sweep.points {
            validate(&p.plan)?;
        }
        return Ok(());
    }
    if plan.checks.is_empty() {
        return Ok(());
    }
    let template = super::summary::build(&RunResult::template(plan));
    let known = template.figures();
    for c in &plan.checks {
        if !known.contains_key(&c.metric) {
            let mode = c.metric.split('.').next().unwrap_or("");
            let runs = template.modes.iter().any(|(name, _)| name == mode);
            let hint = if ["poll", "push"].contains(&mode) && !runs {
                format!("this scenario does not run mode {mode}")
            } else {
                let near: Vec<&String> = known
                    .keys()
                    .filter(|k| k.ends_with(c.metric.rsplit('.').next().unwrap_or("")))
                    .take(4)
                    .collect();
                format!(
                    "no such figure; names look like push.latency_ms.p99 or ratios.db_queries{}",
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (similar: {})",
                            near.iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                )
            };
            return Err(input(format!("{}: check on `{}`: {hint}", c.at, c.metric)));
        }
    }
    Ok(())
}

/// Evaluates every check of `plan` against a summary, then one check per fault that it
/// really happened: a run whose fault did not fire did not test what it says it did.
pub fn evaluate(plan: &Plan, summary: &Summary) -> Vec<CheckResult> {
    let figures = summary.figures();
    let mut results: Vec<CheckResult> = plan
        .checks
        .iter()
        .map(|c| {
            let value = figures.get(&c.metric).copied().flatten();
            CheckResult {
                metric: c.metric.clone(),
                condition: c.condition.clone(),
                value,
                passed: value.is_some_and(|v| c.op.holds(v, c.limit)),
            }
        })
        .collect();
    for (mode, m) in summary.modes.iter() {
        // Reports the aggregator could not keep make every count of the mode incomplete:
        // such a run fails, though it has no check of its own on them.
        if m.reports_dropped != 0 {
            results.push(CheckResult {
                metric: format!("{mode}.reports_dropped"),
                condition: "== 0".into(),
                value: Some(m.reports_dropped as f64),
                passed: false,
            });
        }
        for (i, f) in m.faults.iter().enumerate() {
            results.push(CheckResult {
                metric: format!("{mode}.faults.{i}.fired"),
                condition: "== 1".into(),
                value: Some(f64::from(u8::from(f.fired))),
                passed: f.fired,
            });
        }
    }
    results
}

/// "push.latency_ms.p99 = 62.1, wanted < 50" for each failed check.
pub fn failures(results: &[CheckResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| match r.value {
            Some(v) => format!("{} = {v}, wanted {}", r.metric, r.condition),
            None => format!("{} was not measured, wanted {}", r.metric, r.condition),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{parse, Source};

    fn plan(checks: &str) -> Plan {
        let text = format!("name = \"c\"\nmodes = [\"poll\", \"push\"]\n[checks]\n{checks}");
        parse(
            &Source {
                label: "c.toml",
                text: &text,
            },
            &[],
        )
        .unwrap()
    }

    #[test]
    fn checks_on_real_figures_validate_and_others_do_not() {
        validate(&plan("\"push.latency_ms.p99\" = \"< 50\"\n\"ratios.db_queries\" = \"> 10\"\n\"poll.events.lost\" = \"== 0\"\n")).unwrap();
        let e = validate(&plan("\"push.latency_ms.p98\" = \"< 50\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.toml:4")
                && e.contains("push.latency_ms.p98")
                && e.contains("no such figure"),
            "{e}"
        );
        let text =
            "name = \"c\"\nmodes = [\"poll\"]\n[checks]\n\"push.latency_ms.p99\" = \"< 50\"\n";
        let p = parse(
            &Source {
                label: "c.toml",
                text,
            },
            &[],
        )
        .unwrap();
        let e = validate(&p).unwrap_err().to_string();
        assert!(e.contains("does not run mode push"), "{e}");
    }

    #[test]
    fn evaluation_fails_unmeasured_figures() {
        let p = plan("\"push.latency_ms.p99\" = \"< 50\"\n\"poll.events.lost\" = \"== 0\"\n\"ratios.db_queries\" = \"> 10\"\n");
        let s = Summary::from_value(serde_json::json!({"modes": {"push": {"latency_ms": {"p99": 62.5}}, "poll": {"events": {"lost": 0}}}, "ratios": {"db_queries": null}})).unwrap();
        let r = evaluate(&p, &s);
        let passed = |m: &str| r.iter().find(|r| r.metric == m).unwrap().passed;
        assert!(!passed("push.latency_ms.p99"));
        assert!(passed("poll.events.lost"));
        assert!(
            !passed("ratios.db_queries"),
            "an unmeasured figure fails its check"
        );
        let f = failures(&r);
        assert!(
            f.contains(&"push.latency_ms.p99 = 62.5, wanted < 50".to_string()),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|x| x == "ratios.db_queries was not measured, wanted > 10"),
            "{f:?}"
        );
    }

    #[test]
    fn a_fault_that_did_not_fire_fails_the_run() {
        let p = plan("\"push.events.lost\" = \"== 0\"");
        let summary = Summary::from_value(serde_json::json!({"modes": {"push": {
            "events": {"lost": 0},
            "reports_dropped": 0,
            "faults": [
                {"action": "kill-redis", "fired": true},
                {"action": "kill-gateway", "fired": false, "not_fired_because": "no process"},
            ]
        }}}))
        .unwrap();
        let results = evaluate(&p, &summary);
        let failed = failures(&results);
        assert_eq!(results.len(), 3);
        assert_eq!(failed, vec!["push.faults.1.fired = 0, wanted == 1"]);
    }

    #[test]
    fn a_mode_whose_reports_were_dropped_fails_the_run() {
        let p = plan("\"push.events.lost\" = \"== 0\"");
        let summary = Summary::from_value(serde_json::json!({"modes": {
            "poll": {"reports_dropped": 0},
            "push": {"events": {"lost": 0}, "reports_dropped": 5},
        }}))
        .unwrap();
        let failed = failures(&evaluate(&p, &summary));
        assert_eq!(failed, vec!["push.reports_dropped = 5, wanted == 0"]);
    }
}
