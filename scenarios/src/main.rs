//! `zk-scenarios`: runs chaos scenario files over their seeds and prints what they found.
//!
//! ```text
//! cargo run -p zk-scenarios --release -- scenarios/leader-loss-under-write-load.scn [--seeds N|A..B]
//! cargo run -p zk-scenarios --release -- scenarios/*.scn
//! cargo run -p zk-scenarios --release -- scenarios/rolling-restart.scn --seed 3 --trace trace.txt
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: zk-scenarios FILE.scn... [--seeds N|A..B] [--seed N --trace PATH]
  --seeds  runs these seeds instead of the ones the file names
  --seed   runs one seed; with --trace, writes its trace (events in virtual time) to PATH";

struct Options {
    files: Vec<PathBuf>,
    seeds: Option<std::ops::Range<u64>>,
    trace: Option<String>,
}

fn parse_range(value: &str) -> Result<std::ops::Range<u64>, String> {
    let number = |text: &str| text.parse::<u64>().map_err(|error| format!("--seeds {value}: {error}"));
    match value.split_once("..") {
        Some((start, end)) => Ok(number(start)?..number(end)?),
        None => Ok(0..number(value)?),
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options { files: Vec::new(), seeds: None, trace: None };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Err(String::new()),
            "--seeds" | "--seed" | "--trace" => {
                let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
                match arg.as_str() {
                    "--seeds" => options.seeds = Some(parse_range(value)?),
                    "--seed" => {
                        let seed = value.parse::<u64>().map_err(|error| format!("--seed {value}: {error}"))?;
                        options.seeds = Some(seed..seed + 1);
                    }
                    _ => options.trace = Some(value.clone()),
                }
            }
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            file => options.files.push(PathBuf::from(file)),
        }
    }
    if options.files.is_empty() {
        return Err(String::from("name at least one scenario file"));
    }
    Ok(options)
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
    let mut failed = false;
    for file in &options.files {
        let scenario = match zk_scenarios::load(file) {
            Ok(scenario) => scenario,
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::from(2);
            }
        };
        let seeds = options.seeds.clone().unwrap_or_else(|| scenario.seeds.clone());
        if let (Some(path), 1) = (&options.trace, seeds.end - seeds.start) {
            let config = zk_sim::SimConfig { trace: true, ..scenario.config(seeds.start) };
            let report = zk_sim::run(config);
            if let Some(text) = report.trace_text() {
                // The runner is the one place outside the simulated world that touches files.
                match std::fs::write(path, text) {
                    Ok(()) => println!("trace written to {path}"),
                    Err(error) => eprintln!("cannot write the trace to {path}: {error}"),
                }
            }
        }
        let outcome = scenario.run(seeds);
        print!("{outcome}");
        for (seed, _) in &outcome.failures {
            println!("  replay: {}", scenario.replay_command(&file.display().to_string(), *seed));
        }
        println!();
        failed |= outcome.failed();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
