use super::*;
use serde_json::json;

fn typed(v: &Value) -> Summary {
    Summary::from_value(v.clone()).unwrap()
}

fn summary() -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "scenario": "ci",
        "started_at": "t0",
        "plan": {"users": 1000},
        "modes": {
            "poll": {"latency_ms": {"p99": 990.0}, "events": {"delivered": 200, "lost": 0}, "db": {"queries_per_min": 120000.0}, "users": 1000},
            "push": {"latency_ms": {"p99": 4.0}, "events": {"delivered": 200, "lost": 0}, "db": {"queries_per_min": 1200.0}, "users": 1000}
        },
        "ratios": {"db_queries": 100.0}
    })
}

fn verdict(c: &Comparison, m: &str) -> Verdict {
    c.rows.iter().find(|r| r.metric == m).unwrap().verdict
}

#[test]
fn a_run_compared_with_itself_passes() {
    let c = compare(&typed(&summary()), &typed(&summary()), &[]).unwrap();
    assert!(c.regressions.is_empty());
    assert_eq!(verdict(&c, "push.users"), Verdict::Info);
}

#[test]
fn higher_latency_and_fewer_deliveries_regress_lower_latency_does_not() {
    let mut base = summary();
    base["modes"]["push"]["latency_ms"]["p99"] = json!(40.0);
    let mut cur = base.clone();
    cur["modes"]["push"]["latency_ms"]["p99"] = json!(60.0);
    cur["modes"]["poll"]["events"]["delivered"] = json!(150);
    cur["modes"]["poll"]["latency_ms"]["p99"] = json!(500.0);
    let c = compare(&typed(&base), &typed(&cur), &[]).unwrap();
    assert_eq!(
        c.regressions,
        vec!["poll.events.delivered", "push.latency_ms.p99"]
    );
    assert_eq!(verdict(&c, "poll.latency_ms.p99"), Verdict::Improved);
    // Between single runs, under the 3 ms floor a p99 change is machine noise, whatever
    // its percentage...
    let mut cur = summary();
    cur["modes"]["push"]["latency_ms"]["p99"] = json!(6.0);
    assert!(compare(&typed(&summary()), &typed(&cur), &[])
        .unwrap()
        .regressions
        .is_empty());
    // ...unless the user sets its threshold, which drops the floor.
    let tight = [("push.latency_ms.p99".to_string(), 20.0)];
    let c = compare(&typed(&summary()), &typed(&cur), &tight).unwrap();
    assert_eq!(c.regressions, vec!["push.latency_ms.p99"]);
}

#[test]
fn any_lost_event_regresses_and_overrides_apply() {
    let mut cur = summary();
    cur["modes"]["push"]["events"]["lost"] = json!(1);
    cur["modes"]["push"]["db"]["queries_per_min"] = json!(1500.0);
    let c = compare(&typed(&summary()), &typed(&cur), &[]).unwrap();
    assert_eq!(
        c.regressions,
        vec!["push.db.queries_per_min", "push.events.lost"]
    );
    let c = compare(
        &typed(&summary()),
        &typed(&cur),
        &[("*.queries_per_min".into(), 50.0)],
    )
    .unwrap();
    assert_eq!(c.regressions, vec!["push.events.lost"]);
    assert!(compare(
        &typed(&summary()),
        &typed(&cur),
        &[("nonsense".into(), 5.0)]
    )
    .is_err());
}

#[test]
fn different_scenarios_or_plans_are_bad_input() {
    let mut other = summary();
    other["scenario"] = json!("seed");
    let e = compare(&typed(&summary()), &typed(&other), &[]).unwrap_err();
    assert!(e.to_string().contains("different scenarios"), "{e}");
    let mut other = summary();
    other["plan"]["users"] = json!(2000);
    let e = compare(&typed(&summary()), &typed(&other), &[]).unwrap_err();
    assert!(e.to_string().contains("users: 1000 -> 2000"), "{e}");
}

#[test]
fn with_repeats_a_change_inside_the_noise_is_noise() {
    let with_repeats = |p99s: &[f64]| {
        let mut s = summary();
        let reps: Vec<Value> = p99s
            .iter()
            .map(|p| json!({"modes": {"push": {"latency_ms": {"p99": p}}}, "ratios": {}}))
            .collect();
        s["modes"]["push"]["latency_ms"]["p99"] = json!(crate::report::median(p99s).unwrap());
        s["repeats"] = Value::Array(reps);
        s
    };
    let base = with_repeats(&[40.0, 90.0, 50.0]);
    let cur = with_repeats(&[80.0, 40.0, 75.0]);
    let c = compare(&typed(&base), &typed(&cur), &[]).unwrap();
    assert_eq!(
        verdict(&c, "push.latency_ms.p99"),
        Verdict::Noise,
        "{}",
        render_text(&c)
    );
    assert!(c.regressions.is_empty());
    // A change far beyond the noise is still a regression.
    let cur = with_repeats(&[300.0, 310.0, 320.0]);
    assert_eq!(
        compare(&typed(&base), &typed(&cur), &[])
            .unwrap()
            .regressions,
        vec!["push.latency_ms.p99"]
    );
    // With repeats there is no floor: p99s of a few ms measured on a quiet machine
    // (ci.toml, 3 repeats) catch a 50 % rise of the median, even though it is only
    // 0.8 ms...
    let base = with_repeats(&[1.46, 1.61, 2.38]);
    let mut cur = base.clone();
    cur["modes"]["push"]["latency_ms"]["p99"] = json!(1.61 * 1.5);
    let c = compare(&typed(&base), &typed(&cur), &[]).unwrap();
    assert_eq!(
        c.regressions,
        vec!["push.latency_ms.p99"],
        "{}",
        render_text(&c)
    );
    // ...while the same median compared between single runs is under the floor.
    let single = |s: &Value| {
        let mut s = s.clone();
        s.as_object_mut().unwrap().remove("repeats");
        s
    };
    assert!(compare(&typed(&single(&base)), &typed(&single(&cur)), &[])
        .unwrap()
        .regressions
        .is_empty());
}

#[test]
fn markdown_is_a_clean_table_with_regressions_first() {
    let mut cur = summary();
    cur["modes"]["push"]["latency_ms"]["p99"] = json!(60.0);
    let md = render_markdown(&compare(&typed(&summary()), &typed(&cur), &[]).unwrap());
    // 4 -> 60 ms is over both the percentage and the floor.
    let lines: Vec<&str> = md.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("| figure"))
        .unwrap();
    assert!(lines[header + 1].starts_with("|---|"));
    assert!(
        lines[header + 2].contains("push.latency_ms.p99")
            && lines[header + 2].contains("**REGRESSION**")
    );
    let cols = lines[header].matches('|').count();
    assert!(lines[header..]
        .iter()
        .take_while(|l| l.starts_with('|'))
        .all(|l| l.matches('|').count() == cols));
    assert!(md.contains("**FAIL**"));
}

#[test]
fn patterns() {
    assert!(matches("*.latency_ms.p99", "push.latency_ms.p99"));
    assert!(matches("push.*", "push.cpu.db_cores"));
    assert!(matches("push.latency_ms.p99", "push.latency_ms.p99"));
    assert!(!matches("poll.*", "push.latency_ms.p99"));
    assert!(matches("*lat*p9*", "push.latency_ms.p99"));
}
