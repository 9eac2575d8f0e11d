//! `zk-sim`: runs the simulator over a range of seeds and prints what it found.
//!
//! ```text
//! cargo run -p zk-sim --release -- --seeds 0..1000 --servers 5 --observers 1 --clients 8 --faults all
//! ```

use std::process::ExitCode;
use std::time::Instant;

use zk_sim::{FaultConfig, RunReport, SimConfig};

/// jemalloc rather than glibc's malloc, as zkd itself: allocation is a large share of a
/// run's work (every step builds and drops messages, entries and events).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str = "usage: zk-sim [--seeds A..B | --seeds N] [--servers N] [--observers N] [--clients N]
              [--faults all|none|kind[=weight],...] [--safety-ms N] [--liveness-ms N]
              [--workload mixed|read-heavy] [--trace PATH] [--jobs N] [--verbose]
  --jobs N      runs N seeds at once (default 1, so the sim/wall ratio is one core's); each
                seed's run is the same whatever N is, and results are reported in seed order
  --trace PATH  writes the trace of every failing seed (of every seed, with one seed) to PATH;
                `{seed}` in PATH is replaced by the seed";

struct Options {
    seeds: std::ops::Range<u64>,
    template: SimConfig,
    trace: Option<String>,
    verbose: bool,
    jobs: usize,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options { seeds: 0..100, template: SimConfig::new(0), trace: None, verbose: false, jobs: 1 };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--verbose" {
            options.verbose = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|error| format!("{flag} {value}: {error}"));
        match flag.as_str() {
            "--seeds" => {
                options.seeds = match value.split_once("..") {
                    Some((start, end)) => {
                        let start = start.parse::<u64>().map_err(|error| format!("--seeds {value}: {error}"))?;
                        let end = end.parse::<u64>().map_err(|error| format!("--seeds {value}: {error}"))?;
                        start..end
                    }
                    None => {
                        let seed = number()?;
                        seed..seed + 1
                    }
                }
            }
            "--servers" => options.template.voters = number()?,
            "--observers" => options.template.observers = number()?,
            "--clients" => options.template.clients = number()? as usize,
            "--safety-ms" => options.template.safety_ms = number()?,
            "--liveness-ms" => options.template.liveness_ms_max = number()?,
            "--faults" => options.template.faults = FaultConfig::parse(value)?,
            "--trace" => options.trace = Some(value.clone()),
            "--jobs" => options.jobs = (number()? as usize).max(1),
            "--workload" => options.template.workload = zk_sim::config::Workload::parse(value)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if options.template.voters == 0 {
        return Err(String::from("--servers must be at least 1"));
    }
    Ok(options)
}

fn write_trace(path_template: &str, report: &RunReport) {
    let Some(text) = report.trace_text() else { return };
    let path = path_template.replace("{seed}", &report.config.seed.to_string());
    // The runner is the one place outside the simulated world that touches files.
    match std::fs::write(&path, text) {
        Ok(()) => println!("  trace written to {path}"),
        Err(error) => eprintln!("  cannot write the trace to {path}: {error}"),
    }
}

/// Runs every seed, `jobs` at once, and hands each report to `each` in seed order. Seeds are
/// independent worlds, so running them side by side changes no run.
fn run_seeds(
    seeds: std::ops::Range<u64>,
    jobs: usize,
    config_of: &(dyn Fn(u64) -> SimConfig + Sync),
    mut each: impl FnMut(u64, RunReport),
) {
    if jobs <= 1 {
        for seed in seeds {
            each(seed, zk_sim::run(config_of(seed)));
        }
        return;
    }
    let next = std::sync::atomic::AtomicU64::new(seeds.start);
    let (sender, receiver) = std::sync::mpsc::channel::<(u64, RunReport)>();
    // The runner is a driver, not the core: it may own threads (one world per thread).
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let (sender, next) = (sender.clone(), &next);
            scope.spawn(move || loop {
                let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seed >= seeds.end || sender.send((seed, zk_sim::run(config_of(seed)))).is_err() {
                    return;
                }
            });
        }
        drop(sender);
        // Reports arrive in any order; they are handed on in seed order.
        let mut waiting = std::collections::BTreeMap::new();
        let mut expected = seeds.start;
        for (seed, report) in receiver {
            waiting.insert(seed, report);
            while let Some(report) = waiting.remove(&expected) {
                each(expected, report);
                expected += 1;
            }
        }
    });
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("{problem}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Wall time is measured only to report the simulator's speed; it never reaches a run.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let single = options.seeds.end - options.seeds.start == 1;
    let (mut runs, mut sim_ms, mut operations, mut completed, mut checked, mut inconclusive, mut events) =
        (0u64, 0u64, 0usize, 0usize, 0usize, 0usize, 0u64);
    let mut failures: Vec<(u64, String)> = Vec::new();
    let mut clients = zk_sim::ClientFigures::default();
    let (mut corrupt_reads_caught, mut persists_failed, mut frames_dropped) = (0u64, 0u64, 0u64);
    let config_of = |seed| SimConfig { seed, trace: single && options.trace.is_some(), ..options.template.clone() };
    run_seeds(options.seeds.clone(), options.jobs, &config_of, |seed, report| {
        let config = config_of(seed);
        runs += 1;
        sim_ms += report.sim_ms;
        operations += report.operations;
        completed += report.operations_completed;
        checked += report.linearizability.operations_checked;
        inconclusive += report.linearizability.inconclusive;
        events += report.stats.events;
        clients.watches_registered += report.clients.watches_registered;
        clients.watch_events += report.clients.watch_events;
        clients.watches_reset += report.clients.watches_reset;
        clients.lock_tenures += report.clients.lock_tenures;
        clients.leader_terms += report.clients.leader_terms;
        corrupt_reads_caught += report.stats.corrupt_reads_caught;
        persists_failed += report.stats.persists_failed;
        frames_dropped += report.stats.frames_dropped;
        if options.verbose {
            println!(
                "seed {seed}: {} virtual, {} events, {} ops ({} completed, {} checked, {} unknown, {} inconclusive), faults: {}",
                zk_sim::trace::time(report.sim_ms),
                report.stats.events,
                report.operations,
                report.operations_completed,
                report.linearizability.operations_checked,
                report.linearizability.unknown_writes,
                report.linearizability.inconclusive,
                report.faults
            );
        }
        if report.failed() {
            print!("{}", report.describe_failure());
            let first = report.violations.first().map(|violation| violation.to_string()).unwrap_or_default();
            failures.push((seed, first.lines().next().unwrap_or_default().to_owned()));
            if let Some(path) = &options.trace {
                let traced =
                    if report.trace.is_some() { report } else { zk_sim::run(SimConfig { trace: true, ..config }) };
                write_trace(path, &traced);
            }
        } else if let (true, Some(path)) = (single, &options.trace) {
            write_trace(path, &report);
        }
    });
    let wall = started.elapsed();
    let wall_ms = wall.as_millis().max(1) as u64;
    println!("seeds run:             {runs} ({}..{})", options.seeds.start, options.seeds.end);
    println!(
        "ensemble:              {} voters, {} observers, {} clients, faults {}",
        options.template.voters, options.template.observers, options.template.clients, options.template.faults
    );
    println!("simulated time:        {}", zk_sim::trace::time(sim_ms));
    println!("wall time:             {}", zk_sim::trace::time(wall_ms));
    println!("sim/wall ratio:        {:.0}x ({} at once)", sim_ms as f64 / wall_ms as f64, options.jobs);
    println!("seeds per second:      {:.1}", runs as f64 * 1000.0 / wall_ms as f64);
    println!("events:                {events}");
    println!("operations:            {operations} ({completed} with a reply)");
    println!("linearizability:       {checked} operations checked, {inconclusive} paths inconclusive");
    println!(
        "watches:               {} registered, {} events, {} setWatches on reconnect",
        clients.watches_registered, clients.watch_events, clients.watches_reset
    );
    println!("recipes:               {} lock tenures, {} leader terms", clients.lock_tenures, clients.leader_terms);
    println!(
        "disk and links:        {corrupt_reads_caught} corrupt reads caught, {persists_failed} persist requests \
         refused (disk full), {frames_dropped} frames dropped one way"
    );
    println!("violations:            {}", failures.len());
    for (seed, first) in &failures {
        println!("  seed {seed}: {first}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
