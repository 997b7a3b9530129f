//! A mode's end: the drain, the clients stopped, and the window's readings reconciled into
//! its figures, with the warnings they call for.

use super::*;

impl ModeRun<'_> {
    /// Drains, stops the clients, and turns the window's readings into the mode's figures.
    pub(super) async fn reconcile(
        &mut self,
        res: &Resources,
        w: Window,
    ) -> anyhow::Result<ModeResult> {
        let (mode, plan) = (self.mode, self.plan);
        let drain_end = Instant::now() + plan.drain_for(mode);
        let observer = self.opts.observer.as_ref();
        wait_phase(observer, mode, Phase::Drain, drain_end, &self.live).await;
        let client_panics = match self.swarm.take() {
            Some(swarm) => swarm.stop(Duration::from_secs(10)).await,
            None => 0,
        };
        if client_panics > 0 {
            self.opts.observer.warn(&format!(
                "{mode}: {client_panics} simulated client(s) panicked; their events count as lost (see the log)"
            ));
        }
        let collector = self.collector.take().expect("reconciled once");
        let collected = collector.await?;
        let (window_start, window_end) = (self.window_start, self.window_start + plan.duration);
        let slow_users = match mode {
            Mode::Push => plan.push.slow_clients,
            Mode::Poll => 0,
        };
        let mut outcome = collected.outcome(window_start, window_end, slow_users);
        outcome.reports_dropped += self.reports_dropped.load(Ordering::Relaxed);
        self.warn_about_api(&outcome);
        let faults = fault_results(&w, &collected, window_start);
        let server = self.server_counters(res, &w);
        let (s0, s1) = (&w.s0, &w.s1);
        let cpu = s1.cpu.since(&s0.cpu);
        let window_s = s1.at.duration_since(s0.at).as_secs_f64();
        self.warn_about_load(&outcome, &w.workload, &cpu, window_s);
        let instances = match mode {
            Mode::Poll => Vec::new(),
            Mode::Push => instance_results(self.servers.len(), &w, &cpu),
        };
        Ok(ModeResult {
            server_counters: s0.counters_known && s1.counters_known && server.is_some(),
            db_known: res.counter.source != crate::metrics::db::Source::None,
            mode,
            users: self.part.users(plan.users).count() as u64,
            window_start: s0.wall,
            window_end: s1.wall,
            window_s,
            outcome,
            db_queries: s1.db.total.saturating_sub(s0.db.total),
            backend_queries: server.map(|s| s.db_queries).unwrap_or(0),
            db_statements: statement_deltas(&s0.db, &s1.db),
            cpu,
            memory: w.memory,
            db_activity: match (s0.db.activity, s1.db.activity) {
                (Some(a), Some(b)) => Some(b.since(&a)),
                _ => None,
            },
            redis: match (s0.redis, s1.redis) {
                (Some(a), Some(b)) => b.since(&a),
                _ => None,
            },
            // Each master's own: unknown (none) when a node restarted within the window.
            redis_nodes: s1
                .redis_nodes
                .iter()
                .zip(&s0.redis_nodes)
                .map(|(b, a)| b.since(a))
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default(),
            bytes_in: s1.bytes.0 - s0.bytes.0,
            bytes_out: s1.bytes.1 - s0.bytes.1,
            connections: w.connections,
            server: server.unwrap_or_default(),
            workload: w.workload,
            samples: w.samples,
            instances,
            faults,
            probe_header_bytes: self.probe_header_bytes,
            client_panics,
            ramp_s: match mode {
                Mode::Push => self.ramp.as_secs_f64(),
                Mode::Poll => 0.0,
            },
            all_connected_s: self.all_connected_s,
        })
    }

    /// Says when the figures may show the tool or the machine rather than the system: the
    /// aggregator could not keep every report, the workload fell behind its schedule, or
    /// the swarm or the whole machine was busy.
    fn warn_about_load(&self, o: &Outcome, wl: &WorkloadStats, cpu: &CpuSeconds, window_s: f64) {
        let (mode, observer) = (self.mode, self.opts.observer.as_ref());
        if o.reports_dropped > 0 {
            observer.warn(&format!(
                "{mode}: {} client reports could not be kept (the aggregator fell behind, or a list reached {MAX_RECORDS}): deliveries and polls are undercounted, and lost may be overcounted",
                o.reports_dropped
            ));
        }
        if wl.late * 100 > wl.emitted {
            observer.warn(&format!(
                "{mode}: the workload fell behind its schedule: {} of {} events went out over {} ms late (at most {} in flight), {:.0} events/s of {} asked; what took the events, or this machine, is the limit here",
                wl.late,
                wl.emitted,
                crate::workload::LATE_US / 1000,
                crate::workload::MAX_IN_FLIGHT,
                wl.emitted as f64 / wl.span_s.max(1e-9),
                self.plan.events_per_s
            ));
        }
        if let Some(warning) = saturation(cpu, window_s, machine_cores()) {
            observer.warn(&format!("{mode}: {warning}"));
        }
    }

    /// The servers' own counters over the window (the mode's servers and the ingest API
    /// together); None when one went backwards.
    fn server_counters(&self, res: &Resources, w: &Window) -> Option<StatsSnapshot> {
        // A server driven by `swarm` may be the ingest API too: its counters count once.
        let ingest = match res.ingest.is_one_of(&self.servers) {
            false => w.s1.ingest.since(&w.s0.ingest)?,
            true => StatsSnapshot::default(),
        };
        w.s0.servers
            .iter()
            .zip(&w.s1.servers)
            .try_fold(ingest, |sum, (a, b)| Some(sum.plus(&b.since(a)?)))
    }

    /// Says plainly when the system under test did not behave as the scenario describes
    /// it: messages the clients could not read, or no notification at all.
    fn warn_about_api(&self, o: &Outcome) {
        let (mode, observer) = (self.mode, &self.opts.observer);
        if o.unreadable > 0 {
            let f = &self.api.fields;
            observer.warn(&format!(
                "{mode}: {} message(s) from the target carried no event number at {:?} or emit time at {:?} (set them in [target.notification]); the first: {}",
                o.unreadable,
                f.event,
                f.emit_us,
                o.unreadable_sample.as_deref().unwrap_or("")
            ));
        }
        if o.sent > 0 && o.delivered == 0 {
            observer.warn(&format!(
                "{mode}: none of the {} events sent reached a client; check where events go ([target.emit], --ingest-url) and that the target forwards them",
                o.sent
            ));
        }
    }
}

/// The cores this machine gives the run.
fn machine_cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// Says when the swarm took half the machine or more (then it, not the system under test, may
/// be what limits the figures), or when every core was busy.
/// What each fault of the window did, and the load peaks in the seconds after it.
fn fault_results(w: &Window, collected: &Collected, window_start: Instant) -> Vec<FaultResult> {
    w.fired
        .iter()
        .map(|f| {
            let at_s = f.at.duration_since(window_start).as_secs_f64();
            FaultResult {
                at_s,
                outcome: collected.fault(f.clients.as_ref(), f.at, f.back),
                fault: f.fault.clone(),
                db_queries_peak_per_s: peak_after(&w.samples, at_s, |s| s.db_queries_per_s),
                server_cores_peak: peak_after(&w.samples, at_s, |s| s.servers_and_ingest_cores()),
                failed: f.failed.clone(),
            }
        })
        .collect()
}

/// Each gateway instance's counters, CPU and memory over the window.
fn instance_results(count: usize, w: &Window, cpu: &CpuSeconds) -> Vec<InstanceResult> {
    let (s0, s1) = (&w.s0, &w.s1);
    (0..count)
        .map(|index| InstanceResult {
            index,
            stats: s1.servers[index]
                .since(&s0.servers[index])
                .unwrap_or_default(),
            connections: s0.servers[index].connections,
            cpu_s: cpu.instances.get(index).copied().flatten(),
            cpu_system_s: cpu.instances_system.get(index).copied().flatten(),
            rss_mb: w.rss.get(index).copied().flatten(),
        })
        .collect()
}

pub(super) fn saturation(cpu: &CpuSeconds, window_s: f64, cores: f64) -> Option<String> {
    if window_s <= 0.0 {
        return None;
    }
    let swarm = cpu.swarm.map(|s| s / window_s);
    let all = [cpu.server, cpu.ingest, cpu.db, cpu.redis, cpu.swarm]
        .iter()
        .flatten()
        .sum::<f64>()
        / window_s;
    match swarm {
        Some(s) if s >= 0.5 * cores => Some(format!(
            "the swarm itself (its clients and the workload) used {s:.2} of this machine's {cores} cores: it may be what limits these figures; use fewer users or events, or a bigger machine"
        )),
        _ if all >= 0.9 * cores => Some(format!(
            "every core was busy ({all:.2} of {cores} cores over the window, all components together): figures measured on a saturated machine include waiting for a core"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(swarm: f64, others: f64) -> CpuSeconds {
        CpuSeconds {
            server: Some(others),
            instances: vec![Some(others)],
            instances_system: vec![],
            ingest: None,
            db: Some(0.0),
            redis: None,
            swarm: Some(swarm),
        }
    }

    #[test]
    fn a_busy_swarm_or_a_full_machine_is_said_and_a_quiet_run_is_not() {
        // CPU seconds over a 10 s window, on 2 cores.
        assert_eq!(saturation(&cpu(2.0, 5.0), 10.0, 2.0), None);
        let swarm = saturation(&cpu(12.0, 2.0), 10.0, 2.0).unwrap();
        assert!(
            swarm.contains("used 1.20 of this machine's 2 cores"),
            "{swarm}"
        );
        let full = saturation(&cpu(8.0, 11.0), 10.0, 2.0).unwrap();
        assert!(full.contains("every core was busy (1.90 of 2"), "{full}");
    }
}
