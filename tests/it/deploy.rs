//! The deployment files, checked against the binary without Docker or Kubernetes (neither
//! runs here): docker-compose.yml, deploy/nginx.conf, the Dockerfile and deploy/k8s/*.yaml.
//! Every pollpush command in them must parse with the binary's own flags (clap, the same
//! parser `pollpush` runs) and validate as the command would; ports, URLs, service names,
//! secrets, volumes and shard counts must agree between the files. Each problem names the
//! file and the key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::Parser;
use pollpush::app::cli::{Cli, Command, ServeArgs, SwarmArgs};
use pollpush::config::Role;
use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Problems found, each "FILE: KEY: what".
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, file: &str, key: &str, what: impl std::fmt::Display) {
        self.0.push(format!("{file}: {key}: {what}"));
    }
    fn assert_none(&self) {
        assert!(self.0.is_empty(), "\n{}", self.0.join("\n"));
    }
    fn mentions(&self, file: &str, key: &str) -> bool {
        self.0
            .iter()
            .any(|p| p.starts_with(&format!("{file}: {key}")))
    }
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

/// `http://host:port[/path]` or `host:port` into (host, port).
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let rest = rest.split('/').next()?;
    let (host, port) = rest.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

/// `postgres://user:pw@host:port/db` or `redis://host:port/` into (host, port).
fn url_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    host_port(rest)
}

fn parse_cli(args: &[String]) -> Result<Command, String> {
    let argv = std::iter::once("pollpush".to_string()).chain(args.iter().cloned());
    Cli::try_parse_from(argv)
        .map(|c| c.command)
        .map_err(|e| e.to_string().lines().next().unwrap_or("").to_string())
}

/// What a pollpush `serve` listens on, once its flags are checked.
fn check_serve(p: &mut Problems, file: &str, key: &str, a: &ServeArgs) -> Option<u16> {
    if let Err(e) = a.config() {
        p.add(file, key, format!("{e:#}"));
    }
    if a.bind.is_loopback() {
        p.add(
            file,
            key,
            "--bind is loopback: other containers cannot reach it; give --bind 0.0.0.0",
        );
    }
    if a.port == 0 {
        p.add(
            file,
            key,
            "--port 0 picks a random port no other service knows; give a fixed one",
        );
    }
    Some(a.port)
}

/// A scenario path inside the image (`/scenarios/X.toml`) must be a file the Dockerfile
/// copies there, and it must load.
fn check_scenario(p: &mut Problems, file: &str, key: &str, a: &SwarmArgs) {
    let Some(path) = &a.run.scenario else { return };
    let Some(rel) = path.to_str().and_then(|s| s.strip_prefix("/scenarios/")) else {
        p.add(
            file,
            key,
            format!(
                "{}: not under /scenarios/, where the image has its scenarios",
                path.display()
            ),
        );
        return;
    };
    let local = root().join("scenarios").join(rel);
    if let Err(e) = pollpush::scenario::load(Some(&local), &a.run.overrides()) {
        p.add(file, key, format!("{}: {e:#}", path.display()));
    }
}

// ---------------------------------------------------------------------------------------
// docker-compose.yml

/// Compose's interpolation: `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR}`,
/// `$VAR`, `$$`; variables come from `env` (the test's stand-in for the shell).
fn interpolate(text: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let expr = &r[..end];
            rest = &r[end + 1..];
            let (name, op, arg) = match expr.find([':', '-', '?']) {
                Some(j) => {
                    let op_len = if expr[j..].starts_with(':') { 2 } else { 1 };
                    (&expr[..j], &expr[j..j + op_len], &expr[j + op_len..])
                }
                None => (expr, "", ""),
            };
            match (env.get(name), op) {
                (Some(v), _) if !(v.is_empty() && op.starts_with(':')) => out.push_str(v),
                (_, ":-" | "-") => out.push_str(arg),
                (_, ":?" | "?") => return Err(format!("${{{name}}} is required: {arg}")),
                (None, _) => return Err(format!("${{{name}}} has no default")),
                (Some(v), _) => out.push_str(v),
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            out.push_str(
                env.get(name)
                    .ok_or_else(|| format!("${name} has no default"))?,
            );
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A service's command as argv: a string is split like a shell would, a list taken as is.
fn compose_argv(v: &Value, env: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    match v {
        Value::String(text) => {
            let text = interpolate(text, env)?;
            shlex::split(&text).ok_or_else(|| format!("unbalanced quotes in {text:?}"))
        }
        Value::Sequence(items) => items
            .iter()
            .map(|i| match i {
                Value::String(t) => interpolate(t, env),
                other => Ok(serde_norway::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string()),
            })
            .collect(),
        _ => Err("give the command as a string or a list".into()),
    }
}

fn compose_env(v: Option<&Value>, shell: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    match v {
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let value = match v {
                    Value::String(t) => interpolate(t, shell).unwrap_or_default(),
                    Value::Null => String::new(),
                    other => serde_norway::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                env.insert(s(k).unwrap_or_default().to_string(), value);
            }
        }
        Some(Value::Sequence(items)) => {
            for i in items.iter().filter_map(s) {
                let (k, v) = i.split_once('=').unwrap_or((i, ""));
                env.insert(k.to_string(), interpolate(v, shell).unwrap_or_default());
            }
        }
        _ => {}
    }
    env
}

/// The directives of an nginx configuration, with the blocks they are in.
#[derive(Debug)]
struct Directive {
    blocks: Vec<String>,
    name: String,
    args: Vec<String>,
}

fn nginx_directives(text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut blocks: Vec<String> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let uncommented: String = text
        .lines()
        .map(|l| {
            // '#' starts a comment outside quotes (the file quotes no '#').
            let cut = l.find('#').unwrap_or(l.len());
            format!("{} ", &l[..cut])
        })
        .collect();
    let mut word = String::new();
    let mut quote = None;
    for c in uncommented.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                words.push(std::mem::take(&mut word));
            }
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if c.is_whitespace() || c == ';' || c == '{' || c == '}' => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                match c {
                    ';' if !words.is_empty() => {
                        out.push(Directive {
                            blocks: blocks.clone(),
                            name: words.remove(0),
                            args: std::mem::take(&mut words),
                        });
                    }
                    '{' => {
                        blocks.push(words.join(" "));
                        words.clear();
                    }
                    '}' => {
                        blocks.pop();
                    }
                    _ => {}
                }
            }
            (None, c) => word.push(c),
        }
    }
    out
}

/// An nginx time (`90`, `60s`, `5m`, `1h`) in seconds.
fn nginx_seconds(text: &str) -> Option<u64> {
    let (num, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    })
}

/// The balancer: listens on one port, passes WebSocket upgrades and unbuffered SSE to the
/// upstream `gateway` at `gateway_port`, and holds idle connections longer than the
/// gateway's ping. Returns the port it listens on.
fn check_nginx(
    p: &mut Problems,
    file: &str,
    text: &str,
    upstream_host: &str,
    gateway_port: Option<u16>,
    ping_s: u64,
) -> Option<u16> {
    let d = nginx_directives(text);
    fn named<'a>(d: &'a [Directive], name: &'a str) -> impl Iterator<Item = &'a Directive> + 'a {
        d.iter().filter(move |x| x.name == name)
    }
    let find = |name: &'static str| named(&d, name);
    let listen: Vec<u16> = find("listen")
        .filter_map(|x| x.args.first()?.rsplit(':').next()?.parse().ok())
        .collect();
    if listen.len() != 1 {
        p.add(
            file,
            "server.listen",
            format!("one listen port expected, found {listen:?}"),
        );
    }
    let pass: Vec<&Directive> = find("proxy_pass").collect();
    let mut upstreams_used = BTreeSet::new();
    for x in &pass {
        let target = x.args.first().map(String::as_str).unwrap_or("");
        match target.strip_prefix("http://") {
            Some(name) => {
                upstreams_used.insert(name.to_string());
            }
            None => p.add(
                file,
                "proxy_pass",
                format!("{target:?}: give http://UPSTREAM"),
            ),
        }
    }
    if pass.is_empty() {
        p.add(
            file,
            "location.proxy_pass",
            "no proxy_pass: the balancer forwards nothing",
        );
    }
    for name in &upstreams_used {
        let block = format!("upstream {name}");
        let servers: Vec<&Directive> = d
            .iter()
            .filter(|x| x.name == "server" && x.blocks.last() == Some(&block))
            .collect();
        if servers.is_empty() {
            p.add(
                file,
                &block,
                "proxy_pass names an upstream that is not defined",
            );
        }
        for x in servers {
            let addr = x.args.first().cloned().unwrap_or_default();
            match host_port(&addr) {
                Some((host, port)) if host == upstream_host && Some(port) == gateway_port => {}
                _ => p.add(
                    file,
                    &format!("{block}.server"),
                    format!(
                        "{addr}: the gateway service is {upstream_host}:{}",
                        gateway_port.map_or("?".into(), |p| p.to_string())
                    ),
                ),
            }
        }
    }
    let has = |name: &'static str, args: &[&str]| {
        find(name).any(|x| x.args.iter().map(String::as_str).eq(args.iter().copied()))
    };
    if !has("proxy_http_version", &["1.1"]) {
        p.add(
            file,
            "proxy_http_version",
            "give 1.1: WebSocket upgrades need HTTP/1.1 upstream",
        );
    }
    if !has("proxy_set_header", &["Upgrade", "$http_upgrade"]) {
        p.add(
            file,
            "proxy_set_header Upgrade",
            "pass the client's Upgrade header on ($http_upgrade)",
        );
    }
    let connection = find("proxy_set_header")
        .find(|x| x.args.first().map(String::as_str) == Some("Connection"))
        .and_then(|x| x.args.get(1).cloned());
    match connection.as_deref() {
        Some("upgrade") => {}
        Some(var) if var.starts_with('$') => {
            if !find("map").any(|x| x.args.get(1).map(String::as_str) == Some(var))
                && !d.iter().any(|x| x.blocks.iter().any(|b| b.ends_with(var)))
            {
                p.add(
                    file,
                    "proxy_set_header Connection",
                    format!("{var} is not defined by a map"),
                );
            }
        }
        _ => p.add(
            file,
            "proxy_set_header Connection",
            "set it to upgrade (or a map of $http_upgrade)",
        ),
    }
    if !has("proxy_buffering", &["off"]) {
        p.add(
            file,
            "proxy_buffering",
            "give off: SSE events must go out as they come",
        );
    }
    let read = find("proxy_read_timeout")
        .filter_map(|x| nginx_seconds(x.args.first()?))
        .next()
        .unwrap_or(60);
    if read <= 2 * ping_s {
        p.add(
            file,
            "proxy_read_timeout",
            format!("{read} s: an idle push connection is silent for up to {ping_s} s between pings; give well over that"),
        );
    }
    listen.first().copied()
}

/// A Compose service that runs pollpush: built from the Dockerfile.
fn is_pollpush(svc: &Value) -> bool {
    svc.get("build").is_some()
        || get(svc, &["image"])
            .and_then(s)
            .is_some_and(|i| i.starts_with("pollpush"))
}

fn check_compose(compose_text: &str, nginx_text: &str) -> Problems {
    const FILE: &str = "docker-compose.yml";
    let mut p = Problems::default();
    let mut doc: Value = match serde_norway::from_str(compose_text) {
        Ok(v) => v,
        Err(e) => {
            p.add(FILE, "(file)", e);
            return p;
        }
    };
    doc.apply_merge().expect("merge keys");
    let shell = BTreeMap::new();
    let Some(services) = doc.get("services").and_then(Value::as_mapping) else {
        p.add(FILE, "services", "missing");
        return p;
    };
    let names: BTreeSet<String> = services.keys().filter_map(s).map(String::from).collect();
    // Each serving pollpush service: its role and port.
    let mut serving: BTreeMap<String, (Role, u16, f64)> = BTreeMap::new();
    let mut swarms = Vec::new();
    let mut secrets: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for (name, svc) in services {
        let name = s(name).unwrap_or_default();
        let env = compose_env(svc.get("environment"), &shell);
        if !is_pollpush(svc) {
            continue;
        }
        let key = format!("services.{name}.command");
        if svc.get("build").and_then(s) != Some(".") {
            p.add(
                FILE,
                &format!("services.{name}.build"),
                "pollpush services build the top-level Dockerfile: give build: .",
            );
        }
        let argv = match svc.get("command").map(|c| compose_argv(c, &shell)) {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                p.add(FILE, &key, e);
                continue;
            }
            None => {
                p.add(FILE, &key, "missing: the image's default is --help");
                continue;
            }
        };
        for var in ["POLLPUSH_OPERATOR_TOKEN", "POLLPUSH_TOKEN_KEY"] {
            match env.get(var) {
                Some(v) if !v.is_empty() => {}
                _ => p.add(
                    FILE,
                    &format!("services.{name}.environment.{var}"),
                    "missing or empty",
                ),
            }
        }
        for (var, target) in [("DATABASE_URL", "postgres"), ("REDIS_URL", "redis")] {
            let port = if target == "postgres" { 5432 } else { 6379 };
            match env.get(var).map(|u| url_host_port(u)) {
                Some(Some((host, pt)))
                    if host == target && pt == port && names.contains(target) => {}
                _ => p.add(
                    FILE,
                    &format!("services.{name}.environment.{var}"),
                    format!("must name the {target} service on its port {port}"),
                ),
            }
        }
        secrets.insert(name, env);
        match parse_cli(&argv) {
            Err(e) => p.add(FILE, &key, e),
            Ok(Command::Serve(a)) => {
                let port = check_serve(&mut p, FILE, &key, &a).unwrap_or(0);
                let ping = a
                    .config()
                    .map(|c| c.push.ping_interval.as_secs_f64())
                    .unwrap_or(20.0);
                serving.insert(name.to_string(), (a.role, port, ping));
                let health =
                    serde_norway::to_string(svc.get("healthcheck").unwrap_or(&Value::Null))
                        .unwrap_or_default();
                if !(health.contains(&format!("/dev/tcp/127.0.0.1/{port}"))
                    && health.contains("/healthz"))
                {
                    p.add(
                        FILE,
                        &format!("services.{name}.healthcheck"),
                        format!("must ask GET /healthz on its own port {port}"),
                    );
                }
                if a.role == Role::Push {
                    for k in ["container_name", "ports"] {
                        if svc.get(k).is_some() {
                            p.add(
                                FILE,
                                &format!("services.{name}.{k}"),
                                "a fixed name or host port stops `--scale gateway=N`",
                            );
                        }
                    }
                }
            }
            Ok(Command::Swarm(a)) => swarms.push((name.to_string(), a, svc.clone())),
            Ok(_) => p.add(
                FILE,
                &key,
                "a long-running service should run serve or swarm",
            ),
        }
    }
    // Every pollpush service shares the same secrets, or tokens and operator calls fail.
    for var in ["POLLPUSH_OPERATOR_TOKEN", "POLLPUSH_TOKEN_KEY"] {
        let values: BTreeSet<&String> = secrets.values().filter_map(|e| e.get(var)).collect();
        if values.len() > 1 {
            p.add(
                FILE,
                &format!("services.*.environment.{var}"),
                "differs between services: give them all the same",
            );
        }
    }
    // The balancer.
    let lbs: Vec<(&str, &Value)> = services
        .iter()
        .filter(|(_, v)| {
            get(v, &["image"])
                .and_then(s)
                .is_some_and(|i| i.starts_with("nginx"))
        })
        .map(|(k, v)| (s(k).unwrap_or_default(), v))
        .collect();
    let gateway = serving
        .iter()
        .find(|(_, (r, _, _))| *r == Role::Push)
        .map(|(n, (_, port, ping))| (n.clone(), *port, *ping));
    let mut lb_port = BTreeMap::new();
    for (name, svc) in &lbs {
        let mounts: Vec<String> = svc
            .get("volumes")
            .and_then(Value::as_sequence)
            .map(|v| v.iter().filter_map(s).map(String::from).collect())
            .unwrap_or_default();
        if !mounts
            .iter()
            .any(|m| m.starts_with("./deploy/nginx.conf:/etc/nginx/nginx.conf"))
        {
            p.add(
                FILE,
                &format!("services.{name}.volumes"),
                "mount ./deploy/nginx.conf at /etc/nginx/nginx.conf",
            );
        }
        let (gname, gport, ping) = gateway.clone().unwrap_or_default();
        if get(svc, &["depends_on", gname.as_str()]).is_none() {
            p.add(
                FILE,
                &format!("services.{name}.depends_on"),
                format!("start it after {gname}: nginx resolves the replicas when it starts"),
            );
        }
        if let Some(port) = check_nginx(
            &mut p,
            "deploy/nginx.conf",
            nginx_text,
            &gname,
            Some(gport),
            ping as u64,
        ) {
            lb_port.insert(name.to_string(), port);
        }
    }
    // The swarm: every URL names a service on the port that service listens on.
    if swarms.is_empty() {
        p.add(
            FILE,
            "services",
            "no swarm service: nothing runs the scenario",
        );
    }
    for (name, a, svc) in &swarms {
        let key = format!("services.{name}.command");
        check_scenario(&mut p, FILE, &key, a);
        let mut check = |flag: &str, url: &str, roles: &[Role], balancer_ok: bool| {
            let Some((host, port)) = host_port(url) else {
                p.add(FILE, &key, format!("{flag} {url}: not http://SERVICE:PORT"));
                return;
            };
            let ok = match serving.get(&host) {
                Some((role, pt, _)) => roles.contains(role) && *pt == port,
                None => balancer_ok && lb_port.get(&host) == Some(&port),
            };
            if !ok {
                p.add(
                    FILE,
                    &key,
                    format!("{flag} {url}: no service {host} serves that role on port {port}"),
                );
            }
            if get(svc, &["depends_on", host.as_str()]).is_none() {
                p.add(
                    FILE,
                    &format!("services.{name}.depends_on"),
                    format!("missing {host}, which {flag} uses"),
                );
            }
        };
        // Only the clients' --push-url may name the balancer.
        for (flag, url, roles) in swarm_targets(a) {
            check(flag, url, roles, flag == "--push-url");
        }
        if let (Some(m), Some(u)) = (&a.poll_metrics, &a.poll_url) {
            if *m != format!("{}/metrics", u.trim_end_matches('/')) {
                p.add(
                    FILE,
                    &key,
                    format!("--poll-metrics {m}: the poll server's is {u}/metrics"),
                );
            }
        }
        let out = a.run.out.clone().unwrap_or_default();
        let mounted = svc
            .get("volumes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(s)
            .filter_map(|m| m.split(':').nth(1))
            .any(|target| out.starts_with(target));
        if !mounted {
            p.add(
                FILE,
                &key,
                format!(
                    "--out {}: not on a mounted volume, the result is lost with the container",
                    out.display()
                ),
            );
        }
    }
    p
}

// ---------------------------------------------------------------------------------------
// Dockerfile

fn check_dockerfile(text: &str, compose_ports: &BTreeSet<u16>) -> Problems {
    const FILE: &str = "Dockerfile";
    let mut p = Problems::default();
    // Instructions, continuation lines joined.
    let joined = text.replace("\\\n", " ");
    let lines: Vec<(String, String)> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(i, r)| (i.to_uppercase(), r.trim().to_string()))
        })
        .collect();
    let mut stages: Vec<String> = Vec::new();
    let mut last_stage = Vec::new();
    for (i, (op, rest)) in lines.iter().enumerate() {
        if op == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let image = words.first().copied().unwrap_or("");
            if !image.contains(':') || image.ends_with(":latest") {
                p.add(FILE, &format!("FROM {image}"), "pin the image's version");
            }
            match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => stages.push(name.to_string()),
                _ => stages.push(String::new()),
            }
            last_stage.clear();
        }
        last_stage.push(i);
    }
    if stages.len() < 2 {
        p.add(
            FILE,
            "FROM",
            "a multi-stage build: build with cargo, run from a small image",
        );
    }
    let builds = lines
        .iter()
        .any(|(op, r)| op == "RUN" && r.contains("cargo build --release --locked"));
    if !builds {
        p.add(
            FILE,
            "RUN",
            "the build stage must run cargo build --release --locked",
        );
    }
    let final_lines: Vec<&(String, String)> = last_stage.iter().map(|&i| &lines[i]).collect();
    let user = final_lines
        .iter()
        .rev()
        .find(|(op, _)| op == "USER")
        .map(|(_, r)| r.clone());
    match user.as_deref() {
        None => p.add(
            FILE,
            "USER",
            "the runtime stage must not run as root: add USER",
        ),
        Some(u) if u == "root" || u.split(':').next() == Some("0") => {
            p.add(FILE, "USER", "root: give a non-root user")
        }
        _ => {}
    }
    let entry = final_lines
        .iter()
        .find(|(op, _)| op == "ENTRYPOINT")
        .map(|(_, r)| r.clone());
    let entry: Option<Vec<String>> = entry.and_then(|e| serde_json::from_str(&e).ok());
    let exe = entry
        .as_ref()
        .and_then(|e| e.first().cloned())
        .unwrap_or_default();
    let copied = final_lines.iter().any(|(op, r)| {
        op == "COPY"
            && r.split_whitespace()
                .next()
                .and_then(|f| f.strip_prefix("--from="))
                .is_some_and(|stage| {
                    stages[..stages.len().saturating_sub(1)]
                        .iter()
                        .any(|s| s == stage)
                })
            && r.split_whitespace().last() == Some(exe.as_str())
    });
    if exe.is_empty() || !copied || !exe.ends_with("/pollpush") {
        p.add(FILE, "ENTRYPOINT", format!("{exe:?}: give the JSON form naming the pollpush binary copied from the build stage"));
    }
    if !final_lines
        .iter()
        .any(|(op, r)| op == "COPY" && r.split_whitespace().eq(["scenarios", "/scenarios"]))
    {
        p.add(FILE, "COPY scenarios", "the image must carry the scenarios at /scenarios, where the deployment files name them");
    }
    let exposed: BTreeSet<u16> = final_lines
        .iter()
        .filter(|(op, _)| op == "EXPOSE")
        .flat_map(|(_, r)| {
            r.split_whitespace()
                .filter_map(|w| w.split('/').next()?.parse().ok())
        })
        .collect();
    for port in compose_ports.difference(&exposed) {
        p.add(
            FILE,
            "EXPOSE",
            format!("{port} is served in docker-compose.yml but not exposed"),
        );
    }
    let ignore = read(".dockerignore");
    for must in ["target", ".git"] {
        if !ignore.lines().any(|l| l.trim() == must) {
            p.add(".dockerignore", must, "leave it out of the build context");
        }
    }
    p
}

// ---------------------------------------------------------------------------------------
// deploy/k8s

struct K8s {
    docs: Vec<(String, Value)>,
}

impl K8s {
    fn load(files: &[(String, String)], p: &mut Problems) -> K8s {
        let mut docs = Vec::new();
        for (file, text) in files {
            for d in serde_norway::Deserializer::from_str(text) {
                match serde::Deserialize::deserialize(d) {
                    Ok(Value::Null) => {}
                    Ok(v) => docs.push((file.clone(), v)),
                    Err(e) => p.add(file, "(file)", e),
                }
            }
        }
        K8s { docs }
    }
    fn of_kind<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str, &'a Value)> + 'a {
        self.docs
            .iter()
            .filter(move |(_, d)| get(d, &["kind"]).and_then(s) == Some(kind))
            .map(|(f, d)| {
                (
                    f.as_str(),
                    get(d, &["metadata", "name"]).and_then(s).unwrap_or(""),
                    d,
                )
            })
    }
    /// The keys and values of a Secret's stringData or a ConfigMap's data.
    fn keys(&self, kind: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let (_, _, d) = self.of_kind(kind).find(|(_, n, _)| *n == name)?;
        let data = d
            .get(if kind == "Secret" {
                "stringData"
            } else {
                "data"
            })?
            .as_mapping()?;
        Some(
            data.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(t) => t.clone(),
                        other => serde_norway::to_string(other)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    };
                    (s(k).unwrap_or_default().to_string(), v)
                })
                .collect(),
        )
    }
}

/// A container's environment: literal values, keys of the Secrets and ConfigMaps it takes,
/// and the Job's completion index as `index`.
fn container_env(
    k: &K8s,
    c: &Value,
    file: &str,
    key: &str,
    index: u64,
    p: &mut Problems,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for from in c
        .get("envFrom")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        for (field, kind) in [("secretRef", "Secret"), ("configMapRef", "ConfigMap")] {
            if let Some(name) = get(from, &[field, "name"]).and_then(s) {
                match k.keys(kind, name) {
                    Some(keys) => env.extend(keys),
                    None => p.add(
                        file,
                        &format!("{key}.envFrom"),
                        format!("no {kind} {name} in deploy/k8s"),
                    ),
                }
            }
        }
    }
    for e in c
        .get("env")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let name = get(e, &["name"]).and_then(s).unwrap_or("").to_string();
        if let Some(v) = get(e, &["value"]).and_then(s) {
            env.insert(name, v.to_string());
        } else if let Some(path) = get(e, &["valueFrom", "fieldRef", "fieldPath"]).and_then(s) {
            if path == "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
                env.insert(name, index.to_string());
            } else {
                env.insert(name, format!("<{path}>"));
            }
        } else {
            for (field, kind) in [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")] {
                let Some(r) = get(e, &["valueFrom", field]) else {
                    continue;
                };
                let (n, kk) = (
                    get(r, &["name"]).and_then(s).unwrap_or(""),
                    get(r, &["key"]).and_then(s).unwrap_or(""),
                );
                match k.keys(kind, n).and_then(|m| m.get(kk).cloned()) {
                    Some(v) => {
                        env.insert(name.clone(), v);
                    }
                    None => p.add(
                        file,
                        &format!("{key}.env.{name}"),
                        format!("no key {kk} in {kind} {n}"),
                    ),
                }
            }
        }
    }
    env
}

/// `$(VAR)` expanded as the kubelet does (an unknown variable stays as written).
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

fn pod_spec(d: &Value) -> Option<&Value> {
    get(d, &["spec", "template", "spec"])
}

fn containers(d: &Value) -> Vec<&Value> {
    pod_spec(d)
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_sequence)
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

fn labels(d: &Value) -> BTreeMap<String, String> {
    get(d, &["spec", "template", "metadata", "labels"])
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (s(k).unwrap_or("").into(), s(v).unwrap_or("").into()))
                .collect()
        })
        .unwrap_or_default()
}

fn port_numbers(v: Option<&Value>, field: &str) -> Vec<u16> {
    v.and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get(field)?.as_u64())
        .map(|n| n as u16)
        .collect()
}

/// A Service: port, targetPort, headless, selector, and the file it is in.
type Svc = (u16, u16, bool, BTreeMap<String, String>, String);

fn check_k8s(files: &[(String, String)]) -> Problems {
    let mut p = Problems::default();
    let k = K8s::load(files, &mut p);
    let services = k8s_services(&k);
    let serving = check_deployments(&k, &services, &mut p);
    check_jobs(&k, &services, &serving, &mut p);
    p
}

/// Services: name -> (port, targetPort, headless, selector, file).
fn k8s_services(k: &K8s) -> BTreeMap<String, Svc> {
    let mut services: BTreeMap<String, Svc> = BTreeMap::new();
    for (file, name, d) in k.of_kind("Service") {
        let port = port_numbers(get(d, &["spec", "ports"]), "port")
            .first()
            .copied()
            .unwrap_or(0);
        let target = port_numbers(get(d, &["spec", "ports"]), "targetPort")
            .first()
            .copied()
            .unwrap_or(port);
        let headless = get(d, &["spec", "clusterIP"]).and_then(s) == Some("None");
        let selector = get(d, &["spec", "selector"])
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (s(k).unwrap_or("").into(), s(v).unwrap_or("").into()))
                    .collect()
            })
            .unwrap_or_default();
        services.insert(name.into(), (port, target, headless, selector, file.into()));
    }
    services
}

/// Deployments: each pollpush container's command and ports, the Services in front of it;
/// returns what each Service serves (its role and port).
fn check_deployments(
    k: &K8s,
    services: &BTreeMap<String, Svc>,
    p: &mut Problems,
) -> BTreeMap<String, (Role, u16)> {
    let mut serving: BTreeMap<String, (Role, u16)> = BTreeMap::new(); // service name -> role, port
    for (file, name, d) in k.of_kind("Deployment") {
        let key = format!("Deployment {name}");
        let pod = labels(d);
        let selector: BTreeMap<String, String> = get(d, &["spec", "selector", "matchLabels"])
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (s(k).unwrap_or("").into(), s(v).unwrap_or("").into()))
                    .collect()
            })
            .unwrap_or_default();
        if selector.is_empty() || selector.iter().any(|(k, v)| pod.get(k) != Some(v)) {
            p.add(
                file,
                &format!("{key}.spec.selector"),
                "does not select the template's labels",
            );
        }
        let fronts: Vec<(&String, &Svc)> = services
            .iter()
            .filter(|(_, (_, _, _, sel, _))| {
                !sel.is_empty() && sel.iter().all(|(k, v)| pod.get(k) == Some(v))
            })
            .collect();
        for c in containers(d) {
            let cport = port_numbers(c.get("ports"), "containerPort");
            for (sname, (_, target, _, _, sfile)) in &fronts {
                if !cport.contains(target) {
                    p.add(
                        sfile,
                        &format!("Service {sname}.spec.ports.targetPort"),
                        format!("{target}: {name}'s container listens on {cport:?}"),
                    );
                }
            }
            if !get(c, &["image"])
                .and_then(s)
                .is_some_and(|i| i.starts_with("pollpush"))
            {
                continue;
            }
            let ckey = format!(
                "{key}.containers.{}.args",
                get(c, &["name"]).and_then(s).unwrap_or("?")
            );
            if c.get("command").is_some() {
                p.add(
                    file,
                    &ckey,
                    "leave command to the image's ENTRYPOINT and give args",
                );
            }
            let env = container_env(k, c, file, &ckey, 0, p);
            let argv: Vec<String> = c
                .get("args")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(s)
                .map(|a| expand(a, &env))
                .collect();
            match parse_cli(&argv) {
                Err(e) => p.add(file, &ckey, e),
                Ok(Command::Serve(a)) => {
                    let port = check_serve(p, file, &ckey, &a).unwrap_or(0);
                    if !cport.contains(&port) {
                        p.add(
                            file,
                            &format!("{key}.containers.ports"),
                            format!("{cport:?}: the server listens on --port {port}"),
                        );
                    }
                    let probe = get(c, &["readinessProbe", "httpGet"]);
                    let path = probe.and_then(|h| h.get("path")).and_then(s).unwrap_or("");
                    let pport = probe
                        .and_then(|h| h.get("port"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    if !["/healthz", "/stats"].contains(&path) || pport != u64::from(port) {
                        p.add(
                            file,
                            &format!("{key}.readinessProbe"),
                            format!(
                                "httpGet {path}:{pport}: give /healthz on the server's port {port}"
                            ),
                        );
                    }
                    for var in [
                        "POLLPUSH_OPERATOR_TOKEN",
                        "POLLPUSH_TOKEN_KEY",
                        "DATABASE_URL",
                        "REDIS_URL",
                    ] {
                        if env.get(var).is_none_or(|v| v.is_empty()) {
                            p.add(file, &format!("{key}.env.{var}"), "missing");
                        }
                    }
                    for (sname, _) in &fronts {
                        serving.insert((*sname).clone(), (a.role, port));
                    }
                }
                Ok(_) => p.add(file, &ckey, "a Deployment should run serve"),
            }
            for (var, want) in [("DATABASE_URL", "postgres"), ("REDIS_URL", "redis")] {
                let Some((host, port)) = env.get(var).and_then(|u| url_host_port(u)) else {
                    continue;
                };
                match services.get(&host) {
                    Some((sp, ..)) if *sp == port && host == want => {}
                    _ => p.add(
                        file,
                        &format!("{key}.env.{var}"),
                        format!("{host}:{port}: no Service {want} on that port"),
                    ),
                }
            }
        }
    }
    serving
}

/// The swarm's Indexed Job and the merge Job.
fn check_jobs(
    k: &K8s,
    services: &BTreeMap<String, Svc>,
    serving: &BTreeMap<String, (Role, u16)>,
    p: &mut Problems,
) {
    let mut swarm_outs: Option<(Vec<PathBuf>, String)> = None;
    let mut jobs: Vec<(&str, &str, &Value)> = k.of_kind("Job").collect();
    // The shards first: the merge is checked against the folders they write.
    jobs.sort_by_key(|(_, _, d)| {
        get(d, &["spec", "completionMode"]).and_then(s) != Some("Indexed")
    });
    let pvcs: BTreeMap<&str, &Value> = k
        .of_kind("PersistentVolumeClaim")
        .map(|(_, n, d)| (n, d))
        .collect();
    for (file, name, d) in &jobs {
        let key = format!("Job {name}");
        let indexed = get(d, &["spec", "completionMode"]).and_then(s) == Some("Indexed");
        let completions = get(d, &["spec", "completions"])
            .and_then(Value::as_u64)
            .unwrap_or(1);
        if get(
            d,
            &[
                "spec",
                "template",
                "spec",
                "securityContext",
                "runAsNonRoot",
            ],
        )
        .and_then(Value::as_bool)
            != Some(true)
        {
            p.add(
                file,
                &format!("{key}.securityContext.runAsNonRoot"),
                "give true",
            );
        }
        for c in containers(d) {
            let ckey = format!(
                "{key}.containers.{}.args",
                get(c, &["name"]).and_then(s).unwrap_or("?")
            );
            let mounts: Vec<(String, String)> = c
                .get("volumeMounts")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .map(|m| {
                    (
                        get(m, &["name"]).and_then(s).unwrap_or("").into(),
                        get(m, &["mountPath"]).and_then(s).unwrap_or("").into(),
                    )
                })
                .collect();
            for (vol, _) in &mounts {
                let claim = pod_spec(d)
                    .and_then(|s| s.get("volumes"))
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .find(|v| get(v, &["name"]).and_then(s) == Some(vol))
                    .and_then(|v| get(v, &["persistentVolumeClaim", "claimName"]))
                    .and_then(s);
                match claim.and_then(|c| pvcs.get(c)) {
                    Some(pvc) => {
                        let modes =
                            serde_norway::to_string(pvc.get("spec").unwrap_or(&Value::Null))
                                .unwrap_or_default();
                        if !modes.contains("ReadWriteMany") {
                            p.add(file, &format!("{key}.volumes.{vol}"), "the shards and the merge share it: its claim must be ReadWriteMany");
                        }
                    }
                    None => p.add(
                        file,
                        &format!("{key}.volumes.{vol}"),
                        "no PersistentVolumeClaim of deploy/k8s backs it",
                    ),
                }
            }
            let on_volume = |path: &Path| mounts.iter().any(|(_, m)| path.starts_with(m));
            let runs: Vec<u64> = if indexed {
                (0..completions).collect()
            } else {
                vec![0]
            };
            for index in runs {
                let env = container_env(k, c, file, &ckey, index, p);
                let argv: Vec<String> = c
                    .get("args")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .filter_map(s)
                    .map(|a| expand(a, &env))
                    .collect();
                match parse_cli(&argv) {
                    Err(e) => {
                        p.add(file, &ckey, e);
                        break;
                    }
                    Ok(Command::Swarm(a)) => {
                        if index == 0 {
                            check_scenario(p, file, &ckey, &a);
                            check_k8s_swarm(p, file, &ckey, &a, services, serving);
                        }
                        match (indexed, a.shard) {
                            (true, Some((i, n))) if i == index && n == completions => {}
                            (true, got) => p.add(file, &ckey, format!("pod {index} of {completions} runs --shard {got:?}: give --shard $(SHARD)/{completions}, SHARD from the completion index")),
                            (false, Some(_)) => p.add(file, &format!("{key}.spec.completionMode"), "shards need an Indexed Job"),
                            (false, None) => {}
                        }
                        let out = a.run.out.clone().unwrap_or_default();
                        if !on_volume(&out) {
                            p.add(
                                file,
                                &ckey,
                                format!("--out {}: not on the shared volume", out.display()),
                            );
                        }
                        let outs = swarm_outs.get_or_insert_with(|| (Vec::new(), file.to_string()));
                        if outs.0.contains(&out) {
                            p.add(
                                file,
                                &ckey,
                                format!(
                                    "--out {}: two shards write the same folder",
                                    out.display()
                                ),
                            );
                        }
                        outs.0.push(out);
                    }
                    Ok(Command::Merge(m)) => {
                        for f in m.shards.iter().chain([&m.out]) {
                            if !on_volume(f) {
                                p.add(
                                    file,
                                    &ckey,
                                    format!("{}: not on the shared volume", f.display()),
                                );
                            }
                        }
                        let want = swarm_outs.as_ref().map(|o| o.0.clone()).unwrap_or_default();
                        if m.shards != want {
                            p.add(
                                file,
                                &ckey,
                                format!(
                                    "merges {:?}; the swarm Job's shards write {want:?}",
                                    m.shards
                                ),
                            );
                        }
                    }
                    Ok(_) => p.add(file, &ckey, "a Job here runs swarm or merge"),
                }
            }
        }
    }
    if swarm_outs.is_none() {
        p.add("deploy/k8s", "Job", "no swarm Job");
    }
    if !jobs.iter().any(|(_, _, d)| {
        containers(d).iter().any(|c| {
            serde_norway::to_string(c)
                .unwrap_or_default()
                .contains("merge")
        })
    }) {
        p.add("deploy/k8s", "Job", "no merge Job");
    }
}

/// The servers a swarm command names: (flag, URL or HOST:PORT, the roles that may serve it).
fn swarm_targets(a: &SwarmArgs) -> Vec<(&'static str, &str, &'static [Role])> {
    const POLL: &[Role] = &[Role::Poll, Role::All];
    const INGEST: &[Role] = &[Role::Ingest, Role::All];
    const PUSH: &[Role] = &[Role::Push, Role::All];
    let mut out = Vec::new();
    out.extend(a.poll_url.as_deref().map(|u| ("--poll-url", u, POLL)));
    out.extend(a.ingest_url.as_deref().map(|u| ("--ingest-url", u, INGEST)));
    out.extend(a.push_url.iter().map(|u| ("--push-url", u.as_str(), PUSH)));
    out.extend(
        a.push_replicas
            .as_deref()
            .map(|u| ("--push-replicas", u, PUSH)),
    );
    out
}

fn check_k8s_swarm(
    p: &mut Problems,
    file: &str,
    key: &str,
    a: &SwarmArgs,
    services: &BTreeMap<String, Svc>,
    serving: &BTreeMap<String, (Role, u16)>,
) {
    let mut check = |flag: &str, url: &str, roles: &[Role], headless: Option<bool>| {
        let ok = host_port(url).is_some_and(|(host, port)| {
            services
                .get(&host)
                .is_some_and(|(sp, _, h, ..)| *sp == port && headless.is_none_or(|want| *h == want))
                && serving.get(&host).is_some_and(|(r, _)| roles.contains(r))
        });
        if !ok {
            p.add(file, key, format!("{flag} {url}: no Service of that name and port in front of a server of that role"));
        }
    };
    // The replicas' name must be a headless Service, one address per pod.
    for (flag, url, roles) in swarm_targets(a) {
        check(
            flag,
            url,
            roles,
            (flag == "--push-replicas").then_some(true),
        );
    }
    if a.shard.is_some() && a.start_at.is_none() {
        p.add(
            file,
            key,
            "give --start-at: the shards' clients must start together",
        );
    }
}

fn k8s_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(root().join("deploy/k8s"))
        .expect("deploy/k8s")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let rel = p.strip_prefix(root()).unwrap().display().to_string();
            let text = std::fs::read_to_string(&p).unwrap();
            (rel, text)
        })
        .collect();
    files.sort();
    files
}

fn compose_ports(text: &str) -> BTreeSet<u16> {
    let mut doc: Value = serde_norway::from_str(text).unwrap();
    doc.apply_merge().unwrap();
    let mut ports = BTreeSet::new();
    for (_, svc) in doc["services"].as_mapping().unwrap() {
        if let Some(Ok(argv)) = svc
            .get("command")
            .map(|c| compose_argv(c, &BTreeMap::new()))
        {
            if let Ok(Command::Serve(a)) = parse_cli(&argv) {
                ports.insert(a.port);
            }
        }
    }
    ports
}

#[test]
fn the_compose_stack_agrees_with_the_binary_and_the_balancer() {
    check_compose(&read("docker-compose.yml"), &read("deploy/nginx.conf")).assert_none();
}

#[test]
fn the_dockerfile_builds_a_small_non_root_image_of_the_binary() {
    let compose = read("docker-compose.yml");
    check_dockerfile(&read("Dockerfile"), &compose_ports(&compose)).assert_none();
}

#[test]
fn the_kubernetes_manifests_agree_with_the_binary_and_each_other() {
    check_k8s(&k8s_files()).assert_none();
}

/// The checks can fail: a renamed flag, a port that disagrees, a shard count that does not
/// match the Job, each reported with its file and key.
#[test]
fn a_wrong_flag_port_or_shard_count_is_reported_with_file_and_key() {
    let compose = read("docker-compose.yml");
    let nginx = read("deploy/nginx.conf");
    let renamed = compose.replace("--ping-interval 20s", "--ping-intervall 20s");
    assert_ne!(renamed, compose);
    let p = check_compose(&renamed, &nginx);
    assert!(
        p.mentions("docker-compose.yml", "services.gateway.command"),
        "{:?}",
        p.0
    );

    let moved = compose.replace(
        "--port 8080 --instance-id poll",
        "--port 8090 --instance-id poll",
    );
    assert_ne!(moved, compose);
    let p = check_compose(&moved, &nginx);
    assert!(
        p.mentions("docker-compose.yml", "services.swarm.command"),
        "{:?}",
        p.0
    );
    assert!(
        p.mentions("docker-compose.yml", "services.poll.healthcheck"),
        "{:?}",
        p.0
    );

    let upstream = nginx.replace("server gateway:8081;", "server gateway:8080;");
    assert_ne!(upstream, nginx);
    let p = check_compose(&compose, &upstream);
    assert!(
        p.mentions("deploy/nginx.conf", "upstream gateway.server"),
        "{:?}",
        p.0
    );
    let buffered = nginx.replace("proxy_buffering off;", "");
    assert!(check_compose(&compose, &buffered).mentions("deploy/nginx.conf", "proxy_buffering"));

    let secret = compose.replace(
        "POLLPUSH_TOKEN_KEY: ${POLLPUSH_TOKEN_KEY:-",
        "POLLPUSH_TOKEN_KEYS: ${POLLPUSH_TOKEN_KEY:-",
    );
    assert!(check_compose(&secret, &nginx).mentions(
        "docker-compose.yml",
        "services.poll.environment.POLLPUSH_TOKEN_KEY"
    ));

    let files = k8s_files();
    let edit = |from: &str, to: &str| -> Vec<(String, String)> {
        let out: Vec<(String, String)> = files
            .iter()
            .map(|(f, t)| (f.clone(), t.replace(from, to)))
            .collect();
        assert_ne!(out, files, "{from:?} is not in deploy/k8s");
        out
    };
    let p = check_k8s(&edit(
        "\"--fanout\", \"broadcast\"",
        "\"--fan-out\", \"broadcast\"",
    ));
    assert!(
        p.mentions(
            "deploy/k8s/stack.yaml",
            "Deployment gateway.containers.gateway.args"
        ),
        "{:?}",
        p.0
    );
    let p = check_k8s(&edit("completions: 2", "completions: 3"));
    assert!(
        p.mentions("deploy/k8s/swarm.yaml", "Job swarm.containers.swarm.args"),
        "{:?}",
        p.0
    );
    let p = check_k8s(&edit(
        "path: /healthz, port: 8081",
        "path: /healthz, port: 8080",
    ));
    assert!(
        p.mentions("deploy/k8s/stack.yaml", "Deployment gateway.readinessProbe"),
        "{:?}",
        p.0
    );
    let p = check_k8s(&edit("clusterIP: None", "clusterIP: 10.0.0.9"));
    assert!(
        p.mentions("deploy/k8s/swarm.yaml", "Job swarm.containers.swarm.args"),
        "{:?}",
        p.0
    );

    let dockerfile = read("Dockerfile");
    let ports = compose_ports(&compose);
    let root_user = dockerfile.replace("USER 10001:10001", "USER root");
    assert!(check_dockerfile(&root_user, &ports).mentions("Dockerfile", "USER"));
    let latest = dockerfile.replace("debian:bookworm-slim", "debian:latest");
    assert!(check_dockerfile(&latest, &ports).mentions("Dockerfile", "FROM debian:latest"));
}
