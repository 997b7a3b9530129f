//! `modes.<mode>` of summary.json: one mode's figures, each declared with its unit, its
//! direction, its merge rule, its owner and its gate (docs/results.md says what each
//! measures).

use super::figure::{part, Better, Figure, Gate, Merge, Owner, Unit};

use Better::{Higher, Lower, Neither};
use Owner::{LoadGenerator, Prediction, Run, System, Workload};

const fn f(unit: Unit, better: Better, merge: Merge, owner: Owner, gate: Gate) -> Figure {
    Figure::new(unit, better, merge, owner, gate)
}

/// What the run was: a user count, a duration, a setting.
const SETTING: Figure = f(Unit::Count, Neither, Merge::Same, Run, Gate::None);
const SECONDS: Figure = f(Unit::S, Neither, Merge::Median, Run, Gate::None);
const INDEX: Figure = f(Unit::Index, Neither, Merge::Same, Run, Gate::None);
/// Work done, counted: neither way is worse by itself.
const COUNT: Figure = f(Unit::Count, Neither, Merge::Median, System, Gate::None);
const SHARE: Figure = f(Unit::Ratio, Neither, Merge::Median, System, Gate::None);
/// Losses and errors: the worst repeat's; any rise is a regression.
const LOSS: Figure = f(Unit::Count, Lower, Merge::Worst, System, Gate::MustNotRise);
const LOSS_SHARE: Figure = f(Unit::Ratio, Lower, Merge::Worst, System, Gate::MustNotRise);
const DELIVERED: Figure = f(Unit::Count, Higher, Merge::Median, System, Gate::Delivered);
const LATENCY: Figure = f(Unit::Ms, Lower, Merge::Histogram, System, Gate::None);
const LATENCY_CENTRAL: Figure = LATENCY.gated(Gate::LatencyCentral);
const LATENCY_TAIL: Figure = LATENCY.gated(Gate::LatencyTail);
const RESPONSE: Figure = f(Unit::Ms, Lower, Merge::Median, System, Gate::None);
const QUERIES: Figure = f(Unit::PerMin, Lower, Merge::Median, System, Gate::Rate);
const PER_S: Figure = f(Unit::PerS, Lower, Merge::Median, System, Gate::None);
const BYTES: Figure = f(Unit::Bytes, Neither, Merge::Median, System, Gate::None);
const BYTE_RATE: Figure = f(Unit::BytesPerS, Lower, Merge::Median, System, Gate::Rate);
const BYTES_EACH: Figure = f(Unit::Bytes, Lower, Merge::Median, System, Gate::Rate);
const CORES: Figure = f(Unit::Cores, Lower, Merge::Median, System, Gate::Cpu);
const MB: Figure = f(Unit::Mb, Lower, Merge::Median, System, Gate::Memory);
const PREDICTED: Figure = f(Unit::Count, Neither, Merge::Same, Prediction, Gate::None);

part! {
    /// `modes.<mode>`.
    pub struct ModeSummary {
        users: u64 = SETTING,
        duration_s: f64 = SECONDS,
        window: Window,
        connections: i64 = SETTING.of(System),
        /// Push only: the clients' first connections over the ramp.
        connect: Option<Connect>,
        client_panics: u64 = LOSS.of(LoadGenerator),
        reports_dropped: u64 = LOSS.of(LoadGenerator),
        events: Events,
        latency_ms: Latency,
        db: Db,
        http: Http,
        bandwidth: Bandwidth,
        cpu: Cpu,
        memory: Memory,
        redis: Redis,
        server: Server,
        workload: WorkloadFigures,
        /// Poll: the polling model's figures; push with fanout none: the loss it predicts.
        #[serde(skip_serializing_if = "Option::is_none")]
        predicted: Option<Predicted>,
        #[serde(skip_serializing_if = "Option::is_none")]
        gateway: Option<Gateway>,
        #[serde(skip_serializing_if = "Option::is_none")]
        instances: Option<Vec<Instance>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reconnects: Option<Reconnects>,
        #[serde(skip_serializing_if = "Option::is_none")]
        slow_clients: Option<SlowClients>,
        faults: Vec<Fault>,
    }
}

part! {
    pub struct Window {
        start: String,
        end: String,
    }
}

part! {
    pub struct Connect {
        ramp_s: f64 = SECONDS,
        all_connected_s: Option<f64> = f(Unit::S, Lower, Merge::Median, System, Gate::None),
        per_s: Option<f64> = f(Unit::PerS, Higher, Merge::Median, System, Gate::None),
    }
}

part! {
    pub struct Events {
        sent: u64 = COUNT.of(Workload),
        delivered: u64 = DELIVERED,
        lost: u64 = LOSS,
        duplicated: u64 = LOSS,
        misrouted: u64 = LOSS,
        send_failed: u64 = LOSS,
        send_failed_delivered: u64 = COUNT,
        /// `[event, user]` pairs: where to start looking; not figures.
        lost_first: Vec<(u64, u64)>,
        unreadable: u64 = LOSS,
        lost_ratio: Option<f64> = LOSS_SHARE,
    }
}

part! {
    /// Notification latency, emit to parse; from the histogram (merged by adding them).
    pub struct Latency {
        mean: Option<f64> = LATENCY_CENTRAL,
        p50: Option<f64> = LATENCY_CENTRAL,
        p90: Option<f64> = LATENCY_TAIL,
        p99: Option<f64> = LATENCY_TAIL,
        p999: Option<f64> = LATENCY,
        max: Option<f64> = LATENCY,
        count: u64 = LATENCY.gated(Gate::None),
    }
}

part! {
    pub struct Db {
        queries_total: Option<u64> = COUNT,
        queries_per_min: Option<f64> = QUERIES,
        backend_queries_total: Option<u64> = COUNT,
        backend_queries_per_min: Option<f64> = QUERIES,
        /// The same as `cpu.db_cores`; judged there.
        cpu_cores: Option<f64> = CORES.gated(Gate::None),
        statements: Vec<Statement>,
        commits: Option<u64> = COUNT,
        tuples_returned: Option<u64> = COUNT,
        tuples_fetched: Option<u64> = COUNT,
        tuples_read_per_s: Option<f64> = PER_S,
        blocks_hit: Option<u64> = COUNT,
        blocks_read: Option<u64> = COUNT,
        blocks_per_s: Option<f64> = PER_S,
    }
}

/// One statement Postgres ran (pg_stat_statements); their order means nothing, so they
/// are not figures, and repeats keep the first's.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Statement {
    pub query: String,
    pub calls: u64,
    pub total_ms: f64,
    pub mean_ms: f64,
}

impl super::figure::Figures for Statement {
    fn describe(_: &str, _: Option<Figure>, _: &mut Vec<(String, Figure)>) {}
    fn merge(items: &[&Self], _: Option<Figure>) -> Self {
        items[0].clone()
    }
    fn values(&self, _: &str, _: Option<Figure>, _: &mut Vec<(String, Option<f64>)>) {}
}

part! {
    pub struct Http {
        requests_total: u64 = COUNT,
        /// Fewer polls than scheduled: the system (or the swarm) fell behind.
        requests_per_min: Option<f64> = f(Unit::PerMin, Higher, Merge::Median, System, Gate::Rate),
        empty_ratio: Option<f64> = SHARE,
        errors: u64 = LOSS,
        connect_errors: u64 = LOSS,
        response_ms: Response,
        schedule_lateness_ms: Lateness,
    }
}

part! {
    pub struct Response {
        mean: Option<f64> = RESPONSE.gated(Gate::LatencyCentral),
        p50: Option<f64> = RESPONSE.gated(Gate::LatencyCentral),
        p99: Option<f64> = RESPONSE.gated(Gate::LatencyTail),
        max: Option<f64> = RESPONSE,
    }
}

part! {
    /// How late the swarm sent its polls: the load generator's, not the system's.
    pub struct Lateness {
        p99: Option<f64> = RESPONSE.of(LoadGenerator),
        max: Option<f64> = RESPONSE.of(LoadGenerator),
    }
}

part! {
    pub struct Bandwidth {
        bytes_total: u64 = BYTES,
        bytes_in: u64 = BYTES,
        bytes_out: u64 = BYTES,
        bytes_per_s: Option<f64> = BYTE_RATE,
        bytes_per_user_per_min: Option<f64> = BYTES_EACH,
        bytes_per_delivered: Option<f64> = BYTES_EACH,
        /// Poll only: response bodies, and everything else on the wire.
        #[serde(skip_serializing_if = "Option::is_none")]
        body_bytes_per_s: Option<f64> = BYTE_RATE,
        #[serde(skip_serializing_if = "Option::is_none")]
        header_bytes_per_s: Option<f64> = BYTE_RATE,
        #[serde(skip_serializing_if = "Option::is_none")]
        header_bytes_per_poll: Option<f64> = BYTES_EACH,
    }
}

part! {
    /// CPU in cores over the window. `system_cores` is the system under test (servers,
    /// ingest, Postgres, Redis); `total_cores` adds the load generator (the swarm).
    pub struct Cpu {
        server_cores: Option<f64> = CORES,
        ingest_cores: Option<f64> = CORES,
        db_cores: Option<f64> = CORES,
        /// With db.cpu_limit: Postgres's budget, and the share of it used.
        db_budget_cores: Option<f64> = f(Unit::Cores, Neither, Merge::Same, Run, Gate::None),
        db_budget_share: Option<f64> = CORES,
        redis_cores: Option<f64> = CORES,
        swarm_cores: Option<f64> = CORES.of(LoadGenerator),
        system_cores: Option<f64> = CORES.gated(Gate::CpuTotal),
        /// Both sides together: owned by neither.
        total_cores: Option<f64> = CORES.gated(Gate::CpuTotal).of(Owner::Both),
    }
}

part! {
    pub struct Memory {
        server_rss_mb: Option<f64> = MB,
        ingest_rss_mb: Option<f64> = MB,
        db_pss_mb: Option<f64> = MB,
        redis_rss_mb: Option<f64> = MB,
        swarm_rss_mb: Option<f64> = MB.of(LoadGenerator),
    }
}

part! {
    pub struct Redis {
        commands_total: Option<u64> = COUNT,
        commands_per_s: Option<f64> = PER_S,
        publishes_total: Option<u64> = COUNT,
        /// A cluster's masters one by one; null for one Redis.
        nodes: Option<Vec<RedisNode>>,
        net_in_bytes_per_s: Option<f64> = PER_S,
        net_out_bytes_per_s: Option<f64> = PER_S,
        pubsub_channels: Option<u64> = COUNT,
        /// The same as `cpu.redis_cores` where /proc sees Redis; judged there.
        cpu_cores: Option<f64> = CORES.gated(Gate::None),
    }
}

part! {
    pub struct RedisNode {
        node: usize = INDEX,
        publishes_total: u64 = COUNT,
        publishes_share: Option<f64> = SHARE,
        commands_per_s: Option<f64> = PER_S,
        cpu_cores: Option<f64> = CORES.gated(Gate::None),
    }
}

/// The servers' own counters (`/stats`): shown, never judged; null for a server that has
/// none.
const STAT: Figure = COUNT;

part! {
    pub struct Server {
        poll_requests: Option<u64> = STAT,
        connections: Option<i64> = STAT,
        redis_received: Option<u64> = STAT,
        redis_duplicates: Option<u64> = STAT,
        routed: Option<u64> = STAT,
        delivered: Option<u64> = STAT,
        discarded: Option<u64> = STAT,
        discarded_ratio: Option<f64> = SHARE,
        slow_disconnects: Option<u64> = STAT,
        dropped_frames: Option<u64> = STAT,
        catch_up_frames: Option<u64> = STAT,
        subscribe_commands: Option<u64> = STAT,
        redis_resets: Option<u64> = STAT,
        publish_errors: Option<u64> = STAT,
        republished: Option<u64> = STAT,
        publish_dropped: Option<u64> = LOSS.gated(Gate::None),
    }
}

part! {
    pub struct WorkloadFigures {
        events_per_s_target: f64 = SETTING.of(Workload),
        emitted: u64 = COUNT.of(Workload),
        max_lateness_ms: f64 = RESPONSE.of(Workload),
        emitted_per_s: Option<f64> = PER_S.of(Workload),
        late_ratio: Option<f64> = SHARE.of(Workload),
        in_flight_peak: u64 = COUNT.of(Workload),
    }
}

part! {
    /// What a model predicts, beside what was measured.
    pub struct Predicted {
        requests_per_min: Option<f64> = PREDICTED,
        db_queries_per_min: Option<f64> = PREDICTED,
        latency_mean_ms: Option<f64> = PREDICTED,
        latency_max_ms: Option<f64> = PREDICTED,
        empty_ratio: Option<f64> = PREDICTED,
        header_bytes_per_poll: Option<u64> = PREDICTED,
        header_bytes_per_s: Option<f64> = PREDICTED,
        /// Push with fanout none: an event reaches its user 1 time in n instances.
        #[serde(skip_serializing_if = "Option::is_none")]
        lost_ratio: Option<f64> = PREDICTED,
    }
}

part! {
    pub struct Gateway {
        instances: usize = SETTING,
        published: Option<u64> = STAT,
        received_share_mean: Option<f64> = SHARE,
        discarded_ratio_mean: Option<f64> = SHARE,
    }
}

part! {
    /// `modes.push.instances[i]`: one gateway instance.
    pub struct Instance {
        index: usize = INDEX,
        connections: Option<i64> = STAT,
        received_total: Option<u64> = STAT,
        received_per_s: Option<f64> = PER_S.gated(Gate::None),
        received_share: Option<f64> = SHARE,
        routed: Option<u64> = STAT,
        delivered: Option<u64> = DELIVERED,
        discarded: Option<u64> = STAT,
        discarded_ratio: Option<f64> = SHARE,
        ingested: Option<u64> = STAT,
        slow_disconnects: Option<u64> = STAT,
        catch_up_frames: Option<u64> = STAT,
        subscribe_commands: Option<u64> = STAT,
        /// One instance's CPU and memory: shown, not judged (the mode's totals are).
        cpu_cores: Option<f64> = CORES.gated(Gate::None),
        cpu_system_cores: Option<f64> = CORES.gated(Gate::None),
        rss_mb: Option<f64> = MB.gated(Gate::None),
    }
}

part! {
    pub struct Reconnects {
        count: u64 = COUNT,
        downtime_ms: Downtime,
    }
}

part! {
    pub struct Downtime {
        p50: Option<f64> = RESPONSE,
        p99: Option<f64> = RESPONSE,
        max: Option<f64> = RESPONSE,
    }
}

part! {
    pub struct SlowClients {
        clients: u64 = SETTING,
        events_sent: u64 = COUNT,
        events_delivered: u64 = COUNT,
        disconnected: Option<u64> = STAT,
        dropped_frames: Option<u64> = STAT,
    }
}

part! {
    /// One fault and what it did. `detail` is the fault's own setting (how long Redis was
    /// down, which instance was killed).
    pub struct Fault {
        at_s: f64 = SECONDS,
        action: String,
        fired: bool,
        not_fired_because: Option<String>,
        clients_dropped: u64 = COUNT,
        clients_back: u64 = COUNT,
        reconnect_s: Option<f64> = f(Unit::S, Lower, Merge::Median, System, Gate::None),
        lost: u64 = LOSS,
        duplicated: u64 = LOSS,
        poll_errors: u64 = COUNT,
        poll_recovered_s: Option<f64> = f(Unit::S, Lower, Merge::Median, System, Gate::None),
        reconnects_peak_per_s: u64 = PER_S,
        db_queries_peak_per_s: Option<f64> = PER_S,
        server_cores_peak: Option<f64> = CORES.gated(Gate::None),
        #[serde(flatten)]
        detail: FaultDetail,
    }
}

/// A fault's own keys, by kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum FaultDetail {
    Offline {
        offline_s: f64,
    },
    Gateway {
        instance: InstanceSlot,
        down_s: Option<f64>,
    },
    Down {
        down_s: f64,
    },
    None {},
}

/// The instance a kill-gateway fault names (null: one of them). Written always, and
/// required when read, so that a gateway fault is never read as another kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceSlot(pub Option<usize>);

impl Default for FaultDetail {
    fn default() -> Self {
        FaultDetail::None {}
    }
}

impl super::figure::Figures for FaultDetail {
    fn describe(_: &str, _: Option<Figure>, _: &mut Vec<(String, Figure)>) {}
    fn merge(items: &[&Self], _: Option<Figure>) -> Self {
        items[0].clone()
    }
    fn values(&self, _: &str, _: Option<Figure>, _: &mut Vec<(String, Option<f64>)>) {}
}
