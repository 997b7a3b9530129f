//! `pollpush demo`: the live run of [`crate::run::demo`] behind a page for a room. The
//! page, its script and its style are served by this binary (nothing from the network);
//! frames reach it over server-sent events once a second; its controls POST the knobs and
//! the buttons. At the end the frames go to the result folder as they were shown.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::cli::DemoArgs;
use super::progress::Progress;
use super::run::folder_timestamp;
use crate::error::input;
use crate::run::demo::{self, Action, Demo, Knobs};
use crate::run::RunOptions;
use crate::scenario::Plan;

/// The page: markup, style and script in one file, charts drawn on canvas.
const PAGE: &str = include_str!("../../assets/demo.html");

/// What the demo was asked for, checked before anything starts: the scenario, the knobs
/// it opens with, and how long it runs (None: until stopped).
fn checked(args: &DemoArgs) -> anyhow::Result<(Plan, Knobs, Option<Duration>)> {
    let loopback = args
        .bind
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
        || args.bind == "localhost";
    if !loopback && !args.public {
        return Err(input(format!(
            "--bind {}: the page's controls change the run and kill its services, with no login; bind beyond loopback only with --public",
            args.bind
        )));
    }
    let plan = crate::scenario::load(args.scenario.as_deref(), &args.set)?;
    // The lanes sign their users' tokens with POLLPUSH_TOKEN_KEY when set: a bad one is
    // refused here, never replaced by a random key unsaid.
    crate::token::Signer::from_env()?;
    if let Some(why) = demo::plan_refusal(&plan) {
        return Err(input(why));
    }
    let interval = super::cli::duration_flag("--interval", &args.interval, "500ms", "5s")?;
    let knobs = Knobs {
        users: args.users,
        interval_s: interval.as_secs_f64(),
        events_per_user_per_min: args.rate,
        instances: args.instances,
        fanout: args.fanout.clone(),
    };
    // Both lanes' clients live in this one process.
    let budget = crate::procs::file_budget();
    if 2 * args.max_users > budget {
        return Err(input(format!(
            "--max-users {}: both lanes' clients live in this process, {} sockets; it may hold {budget} here: use --max-users {} or fewer",
            args.max_users,
            2 * args.max_users,
            budget / 2
        )));
    }
    if let Some(why) = knobs.refusal(args.max_users) {
        return Err(input(why));
    }
    let duration = args
        .duration
        .as_deref()
        .map(|d| super::cli::duration_flag("--duration", d, "5s", "10m"))
        .transpose()?;
    Ok((plan, knobs, duration))
}

pub async fn command(args: DemoArgs) -> anyhow::Result<()> {
    let (plan, knobs, duration) = checked(&args)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!("demo-{}", folder_timestamp(SystemTime::now())))
    });
    super::run::prepare_out_dir(&out)?;
    let listener = tokio::net::TcpListener::bind((args.bind.as_str(), args.port))
        .await
        .map_err(|e| {
            input(format!(
                "--bind {} --port {}: cannot listen there: {e}; use --port 0 for a free port",
                args.bind, args.port
            ))
        })?;
    let progress = Arc::new(Progress::new(false));
    let opts = RunOptions {
        database_url: None,
        redis_url: None,
        remote: None,
        server_exe: std::env::current_exe()?,
        log_dir: Some(out.join("logs")),
        observer: progress.clone(),
        shard: None,
    };
    let stop = CancellationToken::new();
    let (demo, task) = tokio::select! {
        started = demo::start(plan, &opts, knobs, args.max_users, stop.clone()) => started?,
        _ = crate::procs::shutdown_signal() => {
            return Err(crate::error::environment("interrupted while starting; servers and services were stopped"));
        }
    };
    let url = format!("http://{}/", listener.local_addr()?);
    println!("pollpush demo: open {url}");
    if !args.no_open {
        open_browser(&url);
    }
    let app = router(demo.clone());
    let server_stop = stop.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { server_stop.cancelled().await })
            .await
    });
    let brief = tokio::spawn(print_brief(demo.clone(), stop.clone()));
    tokio::select! {
        _ = crate::procs::shutdown_signal() => {}
        _ = tokio::time::sleep(duration.unwrap_or(Duration::from_secs(86_400 * 365))) => {}
        _ = stop.cancelled() => {}
    }
    stop.cancel();
    let _ = task.await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    brief.abort();
    let frames = demo.history.lock().map(|h| h.clone()).unwrap_or_default();
    std::fs::write(out.join("timeseries.csv"), demo::csv(&frames))?;
    std::fs::write(
        out.join("frames.json"),
        serde_json::to_string(&frames.iter().map(|f| &**f).collect::<Vec<_>>())?,
    )?;
    println!(
        "pollpush demo: {} seconds shown; their figures are in {}",
        frames.len(),
        out.display()
    );
    Ok(())
}

/// Opens the page in the default browser where there is a desktop to show it.
fn open_browser(url: &str) {
    let desktop =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if desktop {
        let _ = std::process::Command::new("xdg-open")
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

/// Every 5 s, one line a projector can show: each lane's database queries, requests and
/// latency.
async fn print_brief(demo: Demo, stop: CancellationToken) {
    let mut rx = demo.frames.subscribe();
    let mut n = 0u64;
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return,
            f = rx.recv() => match f {
                Ok(f) => f,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
        };
        n += 1;
        if !n.is_multiple_of(5) {
            continue;
        }
        let lane = |l: &demo::LaneFrame| {
            let load = match l.sample.requests_per_s {
                r if r > 0.0 => format!("{r:>7.0} requests/s"),
                _ => format!("{:>7} connections", l.sample.connections),
            };
            format!(
                "{:>7.0} DB queries/s {load}  latency p50 {}",
                l.sample.db_queries_per_s.unwrap_or(0.0),
                l.latency_p50_ms
                    .map_or("-".to_string(), |v| format!("{v:.0} ms"))
            )
        };
        println!(
            "{:>5.0} s  {} users  poll: {}  |  push: {}",
            frame.t_s,
            frame.knobs.users,
            lane(&frame.poll),
            lane(&frame.push)
        );
    }
}

fn router(demo: Demo) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/frames", get(frames))
        .route("/state", get(state))
        .route("/knobs", post(set_knobs))
        .route("/action/{name}", post(act))
        .with_state(demo)
}

async fn page() -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            // Nothing but this page's own origin: the page works offline, and shows so.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
            ),
        ],
        Html(PAGE),
    )
        .into_response()
}

async fn state(State(demo): State<Demo>) -> Response {
    let knobs = demo.knobs.lock().map(|k| k.clone()).ok();
    Json(json!({
        "knobs": knobs,
        "max_users": demo.max_users,
        "max_events_per_s": demo::MAX_EVENTS_PER_S,
        "max_instances": demo::MAX_INSTANCES,
    }))
    .into_response()
}

async fn frames(
    State(demo): State<Demo>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let rx = demo.frames.subscribe();
    let stop = demo.stop.clone();
    let stream = futures_util::stream::unfold((rx, stop), |(mut rx, stop)| async move {
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return None,
                next = rx.recv() => next,
            };
            match next {
                Ok(frame) => {
                    let data = serde_json::to_string(&*frame).unwrap_or_default();
                    return Some((Ok(Event::default().event("frame").data(data)), (rx, stop)));
                }
                // A slow page skips the seconds it missed.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

fn answer(result: Result<String, String>) -> Response {
    match result {
        Ok(message) => Json(json!({ "ok": true, "message": message })).into_response(),
        Err(error) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "ok": false, "error": error })),
        )
            .into_response(),
    }
}

async fn set_knobs(State(demo): State<Demo>, body: Result<Json<Knobs>, JsonRejection>) -> Response {
    match body {
        Ok(Json(knobs)) => answer(demo.set(knobs).await),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "ok": false, "error": format!("the knobs are a JSON object with users, interval_s, events_per_user_per_min, instances and fanout: {}", e.body_text()) })),
        )
            .into_response(),
    }
}

async fn act(State(demo): State<Demo>, Path(name): Path<String>) -> Response {
    let action = match name.as_str() {
        "kill-redis" => Action::KillRedis,
        "kill-gateway" => Action::KillGateway,
        "drop-clients" => Action::DropClients,
        "notify-all" => Action::NotifyAll,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({ "ok": false, "error": format!("no action {name:?}: kill-redis, kill-gateway, drop-clients or notify-all") })),
            )
                .into_response()
        }
    };
    answer(demo.act(action).await)
}
