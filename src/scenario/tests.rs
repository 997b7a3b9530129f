mod unit {
    use super::super::*;
    use crate::config::*;
    use std::time::Duration;

    fn plan(text: &str, overrides: &[&str]) -> anyhow::Result<Plan> {
        let ov: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        parse(
            &Source {
                label: "t.toml",
                text,
            },
            &ov,
        )
    }

    fn err(text: &str, overrides: &[&str]) -> String {
        plan(text, overrides).unwrap_err().to_string()
    }

    #[test]
    fn seed_scenario_is_the_blog_post_case() {
        let p = plan(SEED_TOML, &[]).unwrap();
        assert_eq!(p.users, 10_000);
        assert_eq!(p.poll_interval, Duration::from_secs(5));
        assert_eq!(p.events_per_s, 20.0);
        assert_eq!(p.duration, Duration::from_secs(30));
        assert_eq!(p.modes, vec![Mode::Poll, Mode::Push]);
    }

    #[test]
    fn the_event_rate_goes_to_a_million_a_second_and_no_further() {
        let p = plan(SEED_TOML, &["workload.events_per_s=250000"]).unwrap();
        assert_eq!(p.events_per_s, 250_000.0);
        let e = err(SEED_TOML, &["workload.events_per_s=2000000"]);
        assert!(
            e.contains("workload.events_per_s") && e.contains("at most 1000000"),
            "{e}"
        );
    }

    #[test]
    fn a_per_user_event_rate_is_kept_when_the_users_change() {
        let text = "[users]\ncount = 10000\n[workload]\nevents_per_user_per_min = 0.12\n";
        let p = plan(text, &[]).unwrap();
        assert!((p.events_per_s - 20.0).abs() < 1e-9, "{}", p.events_per_s);
        let p = plan(text, &["users.count=500"]).unwrap();
        assert!((p.events_per_s - 1.0).abs() < 1e-9, "{}", p.events_per_s);
        assert_eq!(p.events_per_user_per_min, Some(0.12));
        // The result's scenario.toml keeps the rate per user, not the total.
        let again = plan(&p.to_toml(), &["users.count=1000"]).unwrap();
        assert!((again.events_per_s - 2.0).abs() < 1e-9);
        let e = err(text, &["workload.events_per_s=50"]);
        assert!(
            e.contains("workload.events_per_user_per_min") && e.contains("not both"),
            "{e}"
        );
        let e = err(text, &["workload.events_per_user_per_min=-1"]);
        assert!(e.contains("out of range"), "{e}");
        let workshop = include_str!("../../scenarios/workshop.toml");
        let p = plan(workshop, &["users.count=500"]).unwrap();
        assert!((p.events_per_s - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_fair_scenario_runs_each_alternative_alone_with_its_keys() {
        let text = include_str!("../../scenarios/fair.toml");
        let p = plan(text, &["users.count=300"]).unwrap();
        let sweep = p.sweep.as_ref().unwrap();
        assert_eq!(sweep.param, ALTERNATIVE);
        let point = |name: &str| {
            &sweep
                .points
                .iter()
                .find(|pt| pt.value.as_str() == Some(name))
                .unwrap()
                .plan
        };
        assert_eq!(point("plain").modes, vec![Mode::Poll]);
        assert_eq!(point("plain").poll_backend, PollBackend::Db);
        assert_eq!(point("cached").poll_backend, PollBackend::RedisCache);
        assert!(point("conditional").poll_conditional);
        assert_eq!(point("http2").poll_http, PollHttp::H2);
        assert!(point("long-poll").poll_long.is_some());
        assert_eq!(point("sse").modes, vec![Mode::Push]);
        assert_eq!(point("sse").push.transport, Transport::Sse);
        assert_eq!(
            point("websocket").users,
            300,
            "overrides reach every alternative"
        );
        // The result folder's scenario.toml runs the same alternatives again.
        let again = plan(&p.to_toml(), &[]).unwrap();
        assert_eq!(again.sweep.unwrap().points.len(), sweep.points.len());
    }

    #[test]
    fn alternatives_that_make_no_sense_are_refused_with_the_key_and_line() {
        let base = "name = \"x\"\n[[alternatives]]\n";
        let e = err(
            &format!("{base}name = \"Big Name\"\nmode = \"poll\"\n"),
            &[],
        );
        assert!(e.contains("t.toml:3: key `alternatives.0.name`"), "{e}");
        let e = err(&format!("{base}name = \"a\"\nmode = \"fax\"\n"), &[]);
        assert!(
            e.contains("alternatives.0.mode") && e.contains("\"poll\" or \"push\""),
            "{e}"
        );
        let twice = format!("{base}name = \"a\"\nmode = \"poll\"\n[[alternatives]]\nname = \"a\"\nmode = \"push\"\n");
        assert!(err(&twice, &[]).contains("named twice"));
        let e = err(
            &format!("{base}name = \"a\"\nmode = \"poll\"\nset = {{ \"poll.bakend\" = \"x\" }}\n"),
            &[],
        );
        assert!(
            e.contains("alternatives.0.set") && e.contains("\"a\"") && e.contains("bakend"),
            "{e}"
        );
        let e = err(
            &format!("{base}name = \"a\"\nmode = \"poll\"\nset = {{ \"poll.backend\" = \"memcached\" }}\n"),
            &[],
        );
        assert!(
            e.contains("poll.backend") && e.contains("redis-cache"),
            "{e}"
        );
        let e = err(
            &format!("users.sweep = [1, 2]\n{base}name = \"a\"\nmode = \"poll\"\n"),
            &[],
        );
        assert!(e.contains("either a sweep or [[alternatives]]"), "{e}");
    }

    #[test]
    fn poll_kinds_that_cannot_work_together_are_refused() {
        let e = err(
            "name = \"x\"\n[poll]\nlong = true\nconditional = true\n",
            &[],
        );
        assert!(e.contains("t.toml:4: key `poll.conditional`"), "{e}");
        let e = err(
            "name = \"x\"\n[poll]\nbackend = \"redis-cache\"\n[push]\nfanout = \"none\"\n",
            &[],
        );
        assert!(
            e.contains("t.toml:3: key `poll.backend`") && e.contains("\"none\""),
            "{e}"
        );
        let target = "[target.poll]\nurl = \"http://127.0.0.1:9\"\n";
        let e = err(
            &format!("name = \"x\"\n[poll]\nhttp = \"h2\"\n{target}"),
            &[],
        );
        assert!(
            e.contains("t.toml:3: key `poll.http`") && e.contains("h2c = true"),
            "{e}"
        );
        let ok = plan(
            &format!("name = \"x\"\n[poll]\nhttp = \"h2\"\n{target}h2c = true\n"),
            &[],
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
        let e = err(
            &format!("name = \"x\"\n[poll]\nbackend = \"redis-cache\"\n{target}"),
            &[],
        );
        assert!(e.contains("poll.backend") && e.contains("[target]"), "{e}");
        let e = err(SEED_TOML, &["poll.http=h3"]);
        assert!(e.contains("--set poll.http") && e.contains("h2"), "{e}");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = err("name = \"x\"\n\n[poll]\nintervall = \"5s\"\n", &[]);
        assert!(e.contains("t.toml"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(e.contains("intervall"), "{e}");
    }

    #[test]
    fn bad_duration_names_key_and_line() {
        let e = err("name = \"x\"\n[poll]\ninterval = \"5 parsecs\"\n", &[]);
        assert!(
            e.starts_with("bad input: t.toml:3: key `poll.interval`"),
            "{e}"
        );
        assert!(e.contains("e.g. \"30s\""), "{e}");
    }

    #[test]
    fn wrong_type_and_negative_count_are_errors_with_lines() {
        let e = err("[users]\ncount = \"ten\"\n", &[]);
        assert!(e.contains("line 2") && e.contains("count"), "{e}");
        let e = err("[users]\ncount = -5\n", &[]);
        assert!(e.contains("line 2"), "{e}");
        let e = err("[users]\ncount = 0\n", &[]);
        assert!(e.contains("t.toml:2: key `users.count`"), "{e}");
    }

    #[test]
    fn overrides_apply_and_are_validated_like_the_file() {
        let p = plan(
            SEED_TOML,
            &[
                "users.count=200",
                "poll.interval=\"1s\"",
                "modes=[\"push\"]",
            ],
        )
        .unwrap();
        assert_eq!(p.users, 200);
        assert_eq!(p.poll_interval, Duration::from_secs(1));
        assert_eq!(p.modes, vec![Mode::Push]);
        // A bare word is read as a string.
        let p = plan(SEED_TOML, &["poll.auth=none"]).unwrap();
        assert_eq!(p.poll_auth, PollAuth::None);
        let e = err(SEED_TOML, &["poll.interval=fast"]);
        assert!(e.contains("--set poll.interval"), "{e}");
        let e = err(SEED_TOML, &["poll.intervall=1s"]);
        assert!(e.contains("intervall"), "{e}");
        let e = err(SEED_TOML, &["nonsense"]);
        assert!(e.contains("KEY=VALUE"), "{e}");
    }

    #[test]
    fn target_tables_parse_round_trip_and_name_bad_keys() {
        let text = r#"
modes = ["push"]
[push]
transport = "socketio"
catch_up = false
[target.push]
urls = ["http://10.0.0.5:3000"]
namespace = "/live"
query = "room=u{user}"
event = "inbox"
auth = { via = "query", name = "token", value = "{token}" }
[target.notification]
event = "/data/n"
emit_us = "/data/t"
[target.emit]
via = "redis"
channel = "user:{user}"
message = '{"n":{event},"t":{emit_us}}'
"#;
        let p = plan(text, &[]).unwrap();
        let t = p.target.clone().unwrap();
        assert!(t.described);
        assert_eq!(t.namespace, "/live");
        assert_eq!(t.event.as_deref(), Some("inbox"));
        assert_eq!(t.push_urls, vec!["http://10.0.0.5:3000".to_string()]);
        assert!(matches!(t.push_auth, target::Auth::Query { ref name, .. } if name == "token"));
        assert!(matches!(t.emit, target::Emit::Redis { .. }));
        let again = plan(&p.to_toml(), &[]).unwrap();
        assert_eq!(again.target, p.target);

        let cases: &[(&str, &str, &str)] = &[
            (
                "[target.notification]\nevent = \"payload.event\"\n",
                "key `target.notification.event`",
                "not a JSON pointer",
            ),
            (
                "[target.poll]\npath = \"/inbox?since={last}\"\n",
                ":3: key `target.poll.path`",
                "{last} is not a placeholder here; use {after}, {user}, {token}",
            ),
            (
                "[target.push]\nnamespace = \"/n\"\n",
                "key `target.push.namespace`",
                "applies only to push.transport = \"socketio\"",
            ),
            (
                "[target.push]\nauth = { via = \"socketio\" }\n",
                "key `target.push.auth.via`",
                "applies only to push.transport = \"socketio\"",
            ),
            (
                "[target.emit]\nvia = \"http\"\nbody = '{\"user\":{user}}'\n",
                "key `target.emit.body`",
                "must carry {payload}",
            ),
            (
                "[target.emit]\nvia = \"kafka\"\n",
                "key `target.emit.via`",
                "not one of pollpush, http, redis",
            ),
            (
                "[target.poll]\nurl = \"http://h:1/api\"\n",
                "key `target.poll.url`",
                "not a base URL",
            ),
            (
                "[target.push]\nurl = \"x\"\n",
                "unknown field `url`",
                "urls",
            ),
        ];
        for (body, at, what) in cases {
            let e = err(&format!("modes = [\"push\"]\n{body}"), &[]);
            assert!(e.contains(at) && e.contains(what), "{body}: {e}");
        }
    }

    #[test]
    fn long_polling_keys() {
        let p = plan("[poll]\nlong = true\nwait = \"10s\"\n", &[]).unwrap();
        assert_eq!(p.poll_long, Some(Duration::from_secs(10)));
        assert_eq!(plan(&p.to_toml(), &[]).unwrap().poll_long, p.poll_long);
        assert_eq!(plan("", &[]).unwrap().poll_long, None);
        let e = err("[poll]\nwait = \"10s\"\n", &[]);
        assert!(
            e.contains(":2: key `poll.wait`") && e.contains("poll.long = true"),
            "{e}"
        );
        let e = err("[poll]\nlong = true\nwait = \"10m\"\n", &[]);
        assert!(
            e.contains("key `poll.wait`") && e.contains("between 1s and 5m"),
            "{e}"
        );
        let e = err("[poll]\nlong = true\n[push]\nfanout = \"none\"\n", &[]);
        assert!(
            e.contains("key `poll.long`") && e.contains("\"broadcast\""),
            "{e}"
        );
    }

    #[test]
    fn resolved_toml_round_trips() {
        let p = plan(SEED_TOML, &["users.count=300"]).unwrap();
        let again = plan(&p.to_toml(), &[]).unwrap();
        assert_eq!(again.users, 300);
        assert_eq!(again.poll_interval, p.poll_interval);
        assert_eq!(again.duration, p.duration);
        assert_eq!(again.events_per_s, p.events_per_s);
    }

    #[test]
    fn checks_and_compare_thresholds_parse_with_locations() {
        let text = "name = \"c\"\n[checks]\n\"push.latency_ms.p99\" = \"< 50\"\n\"poll.events.lost\" = \"== 0\"\n[compare]\n\"push.latency_ms.p99\" = 30\n";
        let p = plan(text, &[]).unwrap();
        assert_eq!(p.checks.len(), 2);
        let c = p
            .checks
            .iter()
            .find(|c| c.metric == "push.latency_ms.p99")
            .unwrap();
        assert_eq!((c.op, c.limit), (Op::Lt, 50.0));
        assert_eq!(c.at, "t.toml:3: key `checks.push.latency_ms.p99`");
        assert_eq!(p.compare, vec![("push.latency_ms.p99".to_string(), 30.0)]);
        let again = plan(&p.to_toml(), &[]).unwrap();
        assert_eq!(again.checks.len(), 2);
        assert_eq!(again.compare, p.compare);
        let e = err("[checks]\n\"push.latency_ms.p99\" = \"about 50\"\n", &[]);
        assert!(
            e.contains("t.toml:2") && e.contains("not a condition"),
            "{e}"
        );
        let e = err("[checks]\n\"push.latency_ms.p99\" = 50\n", &[]);
        assert!(e.contains("as a string"), "{e}");
        let e = err("[compare]\n\"x\" = -3\n", &[]);
        assert!(e.contains("t.toml:2"), "{e}");
    }

    #[test]
    fn conditions() {
        assert_eq!(parse_condition("<50"), Some((Op::Lt, 50.0)));
        assert_eq!(parse_condition(" >= 1_000 "), Some((Op::Ge, 1000.0)));
        assert_eq!(parse_condition("== 0"), Some((Op::Eq, 0.0)));
        assert_eq!(parse_condition("50"), None);
        assert_eq!(parse_condition("< fast"), None);
        assert!(Op::Le.holds(5.0, 5.0) && !Op::Lt.holds(5.0, 5.0));
    }

    #[test]
    fn push_keys_parse_and_round_trip() {
        let text = "[push]\ntransport = \"sse\"\ninstances = 4\nfanout = \"per-user\"\ncatch_up = true\nreconnect = \"fixed\"\nsend_queue = 32\nslow_policy = \"drop\"\nslow_clients = 2\n\n[[faults]]\nat = \"3s\"\naction = \"disconnect-clients\"\nclients = 10\noffline = \"5s\"\n";
        let p = plan(text, &[]).unwrap();
        assert_eq!(p.push.transport, Transport::Sse);
        assert_eq!(p.push.instances, 4);
        assert_eq!(p.push.fanout, Fanout::PerUser);
        assert!(p.push.catch_up);
        assert_eq!(p.push.reconnect, Reconnect::Fixed);
        assert_eq!(p.push.send_queue, 32);
        assert_eq!(p.push.slow_policy, SlowPolicy::Drop);
        assert_eq!((p.push.slow_clients, p.push.slow_events_per_s), (2, 100.0));
        assert_eq!(
            p.faults,
            vec![Fault {
                at: Duration::from_secs(3),
                action: FaultAction::DisconnectClients {
                    clients: 10,
                    offline: Duration::from_secs(5)
                }
            }]
        );
        let again = plan(&p.to_toml(), &[]).unwrap();
        assert_eq!(again.push, p.push);
        assert_eq!(again.faults, p.faults);
        let p = plan(SEED_TOML, &["push.instances=2", "push.fanout=none"]).unwrap();
        assert_eq!((p.push.instances, p.push.fanout), (2, Fanout::None));
    }

    #[test]
    fn bad_push_and_fault_keys_name_key_and_line() {
        let e = err("[push]\ninstances = 0\n", &[]);
        assert!(e.contains("t.toml:2: key `push.instances`"), "{e}");
        let e = err("[push]\nfanout = \"multicast\"\n", &[]);
        assert!(e.contains("t.toml:2") && e.contains("per-user"), "{e}");
        let e = err(
            "[push]\nreconnect_base = \"1m\"\nreconnect_max = \"2s\"\n",
            &[],
        );
        assert!(e.contains("t.toml:3"), "{e}");
        let e = err(
            "duration = \"10s\"\n[[faults]]\nat = \"3s\"\naction = \"explode\"\n",
            &[],
        );
        assert!(e.contains("t.toml:4: key `faults.0.action`"), "{e}");
        let e = err(
            "duration = \"10s\"\n[[faults]]\nat = \"30s\"\naction = \"disconnect-clients\"\n",
            &[],
        );
        assert!(
            e.contains("t.toml:3: key `faults.0.at`") && e.contains("window"),
            "{e}"
        );
        // kill-gateway: an instance that exists, push in the modes, `instance` only there.
        let gw = |extra: &str| {
            format!("modes = [\"push\"]\n[push]\ninstances = 3\n[[faults]]\nat = \"3s\"\naction = \"kill-gateway\"\n{extra}")
        };
        let p = plan(&gw("instance = \"random\"\ndown = \"2s\"\n"), &[]).unwrap();
        assert_eq!(
            p.faults[0].action,
            FaultAction::KillGateway {
                instance: None,
                down: Some(Duration::from_secs(2))
            }
        );
        let e = err(&gw("instance = 3\n"), &[]);
        assert!(
            e.contains("t.toml:7: key `faults.0.instance`") && e.contains("0 to 2"),
            "{e}"
        );
        let e = err(&gw("instance = \"any\"\n"), &[]);
        assert!(e.contains("\"random\""), "{e}");
        let e = err(
            "modes = [\"poll\"]\n[[faults]]\nat = \"3s\"\naction = \"kill-gateway\"\n",
            &[],
        );
        assert!(e.contains("add \"push\" to modes"), "{e}");
        let e = err(
            "[[faults]]\nat = \"3s\"\naction = \"kill-redis\"\ninstance = 1\n",
            &[],
        );
        assert!(e.contains("only kill-gateway takes `instance`"), "{e}");
        // The default window is 30 s: Redis down from 28 s for 5 s would outlast it.
        let e = err("[[faults]]\nat = \"28s\"\naction = \"kill-redis\"\n", &[]);
        assert!(
            e.contains("t.toml:1: key `faults.0.down`") || e.contains("faults.0.down"),
            "{e}"
        );
        let e = err(
            "[[faults]]\nat = \"3s\"\naction = \"pause-redis\"\noffline = \"2s\"\n",
            &[],
        );
        assert!(e.contains("t.toml:4: key `faults.0.offline`"), "{e}");
        let p = plan(
            "[[faults]]\nat = \"3s\"\naction = \"kill-redis\"\ndown = \"2s\"\n[[faults]]\nat = \"9s\"\naction = \"restart-redis\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            p.faults.iter().map(|f| f.action).collect::<Vec<_>>(),
            [
                FaultAction::KillRedis {
                    down: Duration::from_secs(2),
                    restart: false
                },
                FaultAction::KillRedis {
                    down: Duration::ZERO,
                    restart: true
                },
            ]
        );
        assert!(p
            .faults
            .iter()
            .all(|f| f.action.needs_own() == Some("Redis")));
        let e = err(
            "[[faults]]\nat = \"3s\"\naction = \"disconnect-clients\"\nclients = 5000\n",
            &[],
        );
        assert!(e.contains("t.toml:4: key `faults.0.clients`"), "{e}");
        let e = err("[[faults]]\nat = \"3s\"\nactoin = \"x\"\n", &[]);
        assert!(e.contains("actoin"), "{e}");
    }
}

/// The parser against generated input: random text, and random documents built from the
/// real keys with values of every type. It may refuse; it may never panic, and a refusal
/// names the file.
mod fuzz {
    use super::super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "name",
        "description",
        "duration",
        "warmup",
        "drain",
        "modes",
        "seed",
        "users.count",
        "users.sweep",
        "poll.interval",
        "poll.auth",
        "push.transport",
        "push.instances",
        "push.fanout",
        "push.catch_up",
        "push.reconnect",
        "push.reconnect_base",
        "push.reconnect_max",
        "push.send_queue",
        "push.slow_policy",
        "push.ping_interval",
        "push.slow_clients",
        "push.slow_events_per_s",
        "workload.events_per_s",
        "workload.events_per_user_per_min",
        "workload.targets",
        "workload.payload_bytes",
        "swarm.headers",
        "swarm.cookie_bytes",
        "sweep.param",
        "sweep.values",
        "sweep.series",
        "sweep.series_values",
        "checks.\"push.latency_ms.p99\"",
        "compare.\"push.latency_ms.p50\"",
        "unknown_key",
    ];

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|i| i.to_string()),
            (-1e12f64..1e12).prop_map(|f| format!("{f:?}")),
            any::<bool>().prop_map(|b| b.to_string()),
            "[a-z0-9 .<=>!-]{0,12}".prop_map(|s| format!("{s:?}")),
            prop::sample::select(vec![
                "\"0s\"",
                "\"1ms\"",
                "\"5s\"",
                "\"1h\"",
                "\"99999h\"",
                "\"-5s\"",
                "\"ws\"",
                "\"sse\"",
                "\"per-user\"",
                "\"none\"",
                "\"browser\"",
                "\"poll\"",
                "[\"poll\", \"push\"]",
                "[\"push\", \"push\"]",
                "[]",
                "[0]",
                "[1, 2, 3]",
                "[\"a\", 1]",
                "\"users.count\"",
                "\"push.instances\"",
                "\"< 50\"",
                "{}",
            ])
            .prop_map(str::to_string),
            prop::collection::vec(any::<i32>(), 0..4).prop_map(|v| format!("{v:?}")),
        ]
    }

    fn fault() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "disconnect-clients",
                "kill-redis",
                "restart-redis",
                "pause-redis",
                "kill-gateway",
                "restart-postgres",
                "explode",
            ]),
            value(),
            prop::option::of(value()),
            prop::option::of(value()),
        )
            .prop_map(|(action, at, down, clients)| {
                let mut t = format!("\n[[faults]]\naction = {action:?}\nat = {at}\n");
                if let Some(d) = down {
                    t += &format!("down = {d}\n");
                }
                if let Some(c) = clients {
                    t += &format!("clients = {c}\n");
                }
                t
            })
    }

    fn document() -> impl Strategy<Value = String> {
        (
            prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), value(), 0..12),
            prop::collection::vec(fault(), 0..3),
        )
            .prop_map(|(pairs, faults)| {
                let mut text: String = pairs.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
                text.extend(faults);
                text
            })
    }

    fn check(text: &str) -> Result<(), TestCaseError> {
        let src = Source {
            label: "t.toml",
            text,
        };
        if let Err(e) = parse(&src, &[]) {
            let msg = e.to_string();
            prop_assert!(msg.contains("t.toml"), "{msg}\n--- for ---\n{text}");
        }
        Ok(())
    }

    proptest! {
        // 3,000 cases each per `cargo test`; POLLPUSH_FUZZ_CASES for a longer run.
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("POLLPUSH_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
        ))]

        #[test]
        fn generated_scenarios_are_accepted_or_refused_by_name(text in document()) {
            check(&text)?;
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            check(&text)?;
        }
    }
}
