//! zk-scenarios: chaos scenarios for zkd, one readable script per file, each run over many
//! seeds in the deterministic simulator (`zk-sim`).
//!
//! A scenario names the ensemble's shape, the clients, the seeds, a timeline of faults at
//! exact virtual times and the properties to check:
//!
//! ```text
//! # Leader loss under write load
//! ensemble 5 voters 0 observers
//! clients 8
//! seeds 20
//! at 2s crash leader
//! at 6s restart crashed
//! at 10s partition {1,2} from rest for 8s
//! check all
//! ```
//!
//! The other lines a scenario may hold: `run 20s` (how long the fault phase lasts; by
//! default until 2 s after the last step ends), `faults crash,pause=2` (random faults on
//! top of the timeline, as `zk-sim --faults` takes them; `none` by default), `workload
//! read-heavy` (mostly sync+reads, few writes, no recipes; `mixed` by default). The steps:
//!
//! - `partition TARGET from rest|TARGET for D` and `isolate TARGET for D`
//! - `flap TARGET [with TARGET] N times every D`
//! - `crash TARGET [torn|clean] [for D [restart] [forward|reverse] [every D]]`
//! - `restart TARGET [forward|reverse] [every D]`
//! - `pause TARGET for D`
//! - `slow-fsync TARGET for D [fsync D..D]`
//! - `latency-spike TARGET for D [delay D..D]`
//! - `one-way TARGET to rest|TARGET for D`: frames from TARGET are dropped, the other way
//!   still delivers (an asymmetric partition)
//! - `clock-skew TARGET for D [jump +D|-D] [rate N%]`: the wall clock jumps, the monotonic
//!   clock runs at N% of real time (by default a 30 s jump forward at 100%)
//! - `corrupt-read TARGET [for D]`: the server crashes, and its restart D later (500ms by
//!   default) reads a flipped bit that recovery must refuse; a later restart reads clean bytes
//! - `disk-full TARGET for D`
//!
//! A TARGET is a server id (`2`, `server 2`), a set (`{1,2}`), `leader`, `[a] follower`,
//! `[a] quorum`, `all`, or `crashed` (what scripted crashes took down). A duration is
//! `250ms`, `2s` or `1.5s`. The properties to `check` are `all`, `zab`, `linearizable`,
//! `sessions`, `client-order`, `liveness`, `watches`, `lock` and `election`, each one of the
//! simulator's checkers.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use zk_sim::timeline::{FaultStep, RestartOrder, Target, Tear, TimedFault};
use zk_sim::{FaultConfig, SimConfig, Violation};

/// The properties a scenario may check, with the simulator checker that guards each.
pub const PROPERTIES: [(&str, &str); 8] = [
    ("zab", "zab"),
    ("linearizable", "linearizability"),
    ("sessions", "sessions"),
    ("client-order", "client-order"),
    ("liveness", "liveness"),
    ("watches", "watches"),
    ("lock", "lock"),
    ("election", "election"),
];

/// Checkers whose objections always count: a crash of the simulator or of a node, a disk
/// that cannot be recovered, a message that cannot be decoded, a run that never ends.
pub const ALWAYS_CHECKED: [&str; 5] = ["panic", "storage", "recovery", "protocol", "livelock"];

/// A parsed scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// The file's stem, e.g. `leader-loss-under-write-load`.
    pub name: String,
    /// The first comment line, e.g. `Leader loss under write load`.
    pub title: String,
    pub voters: u64,
    pub observers: u64,
    pub clients: usize,
    /// The seeds run when no other range is asked for.
    pub seeds: Range<u64>,
    /// How long the fault phase lasts, in virtual milliseconds.
    pub run_ms: u64,
    pub faults: FaultConfig,
    pub workload: zk_sim::config::Workload,
    pub timeline: Vec<TimedFault>,
    /// Simulator checker names whose violations count (besides [`ALWAYS_CHECKED`]).
    pub checkers: Vec<&'static str>,
    /// A deliberate bug to plant in every run (never set by a file: tests of the checkers
    /// set it, to show the scenario catches the bug it was written for).
    pub planted: Option<zk_sim::config::PlantedBug>,
}

/// A problem in a scenario file, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    /// 1-based; 0 for a problem with the file as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads and parses a scenario file.
pub fn load(path: &std::path::Path) -> Result<Scenario, ParseError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ParseError {
        file: file.clone(),
        line: 0,
        message: format!("cannot read: {error}"),
    })?;
    let name = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    parse(&file, &name, &text)
}

/// Parses a scenario's text; `file` names it in errors.
pub fn parse(file: &str, name: &str, text: &str) -> Result<Scenario, ParseError> {
    let mut parser = Parser { file, line: 0 };
    let mut scenario = Scenario {
        name: name.to_owned(),
        title: String::new(),
        voters: 3,
        observers: 0,
        clients: 4,
        seeds: 0..10,
        run_ms: 0,
        faults: FaultConfig::none(),
        workload: zk_sim::config::Workload::Mixed,
        timeline: Vec::new(),
        checkers: Vec::new(),
        planted: None,
    };
    let mut run_ms = None;
    let mut run_line = 0;
    let mut step_lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        parser.line = index + 1;
        let line = raw.trim();
        if let Some(comment) = line.strip_prefix('#') {
            if scenario.title.is_empty() && !comment.trim().is_empty() {
                scenario.title = comment.trim().to_owned();
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let words = tokens(line);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words[0] {
            "ensemble" => {
                let (voters, observers) = parser.ensemble(&words[1..])?;
                scenario.voters = voters;
                scenario.observers = observers;
            }
            "clients" => scenario.clients = parser.one_number(&words, "clients")? as usize,
            "seeds" => scenario.seeds = parser.seeds(&words)?,
            "run" => {
                if words.len() != 2 {
                    return parser.fail("expected `run DURATION`, e.g. `run 20s`");
                }
                run_ms = Some(parser.duration(words[1])?);
                run_line = parser.line;
            }
            "faults" => {
                let spec = words[1..].join("");
                scenario.faults = FaultConfig::parse(&spec).or_else(|problem| parser.fail(&problem))?;
            }
            "workload" => {
                if words.len() != 2 {
                    return parser.fail("expected `workload mixed|read-heavy`");
                }
                scenario.workload =
                    zk_sim::config::Workload::parse(words[1]).or_else(|problem| parser.fail(&problem))?;
            }
            "at" => {
                if words.len() < 3 {
                    return parser.fail("expected `at TIME STEP`, e.g. `at 2s crash leader`");
                }
                let at_ms = parser.duration(words[1])?;
                let step = parser.step(&words[2..])?;
                scenario.timeline.push(TimedFault { at_ms, step });
                step_lines.push(parser.line);
            }
            "check" => {
                if words.len() < 2 {
                    return parser.fail("expected `check PROPERTY...`, e.g. `check all`");
                }
                for &word in &words[1..] {
                    if word == "all" {
                        scenario.checkers.extend(PROPERTIES.iter().map(|(_, checker)| *checker));
                        continue;
                    }
                    let Some((_, checker)) = PROPERTIES.iter().find(|(property, _)| *property == word) else {
                        return parser.fail(&format!(
                            "unknown property {word:?}; known: all, {}",
                            PROPERTIES.map(|(property, _)| property).join(", ")
                        ));
                    };
                    scenario.checkers.push(checker);
                }
            }
            other => {
                return parser.fail(&format!(
                    "unknown directive {other:?}; expected ensemble, clients, seeds, run, faults, workload, at or check"
                ))
            }
        }
    }
    scenario.checkers.sort_unstable();
    scenario.checkers.dedup();
    parser.line = 0;
    if scenario.checkers.is_empty() {
        return parser.fail("no `check` line: name the properties to check, e.g. `check all`");
    }
    // Every server a step names must exist.
    let servers = scenario.voters + scenario.observers;
    for (timed, &line) in scenario.timeline.iter().zip(&step_lines) {
        for target in targets_of(&timed.step) {
            if let Target::Servers(ids) = target {
                if let Some(id) = ids.iter().find(|&&id| id == 0 || id > servers) {
                    parser.line = line;
                    return parser.fail(&format!("server {id} does not exist: the ensemble has servers 1..={servers}"));
                }
            }
        }
    }
    let last_end_ms = scenario.timeline.iter().map(|timed| timed.at_ms + span_ms(&timed.step)).max().unwrap_or(0);
    scenario.run_ms = match run_ms {
        Some(run_ms) => {
            if let Some((timed, &line)) =
                scenario.timeline.iter().zip(&step_lines).find(|(timed, _)| timed.at_ms >= run_ms)
            {
                parser.line = line;
                return parser.fail(&format!(
                    "this step at {} ms comes after the fault phase ends (`run` at line {run_line} says {run_ms} ms)",
                    timed.at_ms
                ));
            }
            run_ms
        }
        None => (last_end_ms + 2_000).max(4_000),
    };
    if scenario.title.is_empty() {
        scenario.title = scenario.name.clone();
    }
    Ok(scenario)
}

/// Splits a line into words, keeping `{1, 2}` as one word `{1,2}` and dropping a trailing
/// comment.
fn tokens(line: &str) -> Vec<String> {
    let line = line.split('#').next().unwrap_or_default();
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_braces = false;
    for character in line.chars() {
        match character {
            '{' => {
                in_braces = true;
                current.push(character);
            }
            '}' => {
                in_braces = false;
                current.push(character);
            }
            character if character.is_whitespace() && !in_braces => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            character if character.is_whitespace() => {}
            character => current.push(character),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn targets_of(step: &FaultStep) -> Vec<&Target> {
    match step {
        FaultStep::Partition { group, from, .. } => std::iter::once(group).chain(from.as_ref()).collect(),
        FaultStep::Flap { a, b, .. } => std::iter::once(a).chain(b.as_ref()).collect(),
        FaultStep::AsymmetricPartition { group, to, .. } => std::iter::once(group).chain(to.as_ref()).collect(),
        FaultStep::Crash { target, .. }
        | FaultStep::Restart { target, .. }
        | FaultStep::Pause { target, .. }
        | FaultStep::SlowFsync { target, .. }
        | FaultStep::LatencySpike { target, .. }
        | FaultStep::ClockSkew { target, .. }
        | FaultStep::CorruptRead { target, .. }
        | FaultStep::DiskFull { target, .. } => vec![target],
    }
}

/// How long after its start a step's effects last (for the default fault-phase length).
fn span_ms(step: &FaultStep) -> u64 {
    match step {
        FaultStep::Partition { duration_ms, .. }
        | FaultStep::Pause { duration_ms, .. }
        | FaultStep::SlowFsync { duration_ms, .. }
        | FaultStep::LatencySpike { duration_ms, .. }
        | FaultStep::AsymmetricPartition { duration_ms, .. }
        | FaultStep::ClockSkew { duration_ms, .. }
        | FaultStep::DiskFull { duration_ms, .. } => *duration_ms,
        // The refused restart, then a retry within half a second.
        FaultStep::CorruptRead { restart_after_ms, .. } => restart_after_ms + 500,
        FaultStep::Flap { times, period_ms, .. } => u64::from(*times) * 2 * period_ms,
        FaultStep::Crash { restart_after_ms, restart_gap_ms, .. } => {
            restart_after_ms.map_or(0, |after| after + 4 * restart_gap_ms)
        }
        FaultStep::Restart { gap_ms, .. } => 4 * gap_ms,
    }
}

struct Parser<'a> {
    file: &'a str,
    line: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, message: &str) -> Result<T, ParseError> {
        Err(ParseError { file: self.file.to_owned(), line: self.line, message: message.to_owned() })
    }

    fn number(&self, word: &str) -> Result<u64, ParseError> {
        word.parse::<u64>().or_else(|_| self.fail(&format!("expected a number, found {word:?}")))
    }

    fn one_number(&self, words: &[&str], directive: &str) -> Result<u64, ParseError> {
        if words.len() != 2 {
            return self.fail(&format!("expected `{directive} N`"));
        }
        self.number(words[1])
    }

    fn ensemble(&self, words: &[&str]) -> Result<(u64, u64), ParseError> {
        let usage = "expected `ensemble N voters [M observers]`";
        let (voters, observers) = match words {
            [voters, "voter" | "voters"] => (self.number(voters)?, 0),
            [voters, "voter" | "voters", observers, "observer" | "observers"] => {
                (self.number(voters)?, self.number(observers)?)
            }
            _ => return self.fail(usage),
        };
        if voters == 0 {
            return self.fail("an ensemble needs at least one voter");
        }
        Ok((voters, observers))
    }

    fn seeds(&self, words: &[&str]) -> Result<Range<u64>, ParseError> {
        if words.len() != 2 {
            return self.fail("expected `seeds N` or `seeds A..B`");
        }
        let range = match words[1].split_once("..") {
            Some((start, end)) => self.number(start)?..self.number(end)?,
            None => 0..self.number(words[1])?,
        };
        if range.is_empty() {
            return self.fail("the seed range is empty");
        }
        Ok(range)
    }

    /// `250ms`, `2s`, `1.5s`.
    fn duration(&self, word: &str) -> Result<u64, ParseError> {
        let bad = || self.fail(&format!("expected a duration such as 250ms, 2s or 1.5s, found {word:?}"));
        if let Some(millis) = word.strip_suffix("ms") {
            return millis.parse::<u64>().or_else(|_| bad());
        }
        let Some(seconds) = word.strip_suffix('s') else { return bad() };
        let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
        if fraction.len() > 3 || !fraction.chars().all(|digit| digit.is_ascii_digit()) {
            return bad();
        }
        let whole = whole.parse::<u64>().or_else(|_| bad())?;
        let fraction_ms = if fraction.is_empty() { 0 } else { format!("{fraction:0<3}").parse::<u64>().unwrap_or(0) };
        Ok(whole * 1000 + fraction_ms)
    }

    /// `D..D`, for a latency range.
    fn duration_range(&self, word: &str) -> Result<(u64, u64), ParseError> {
        let Some((low, high)) = word.split_once("..") else {
            return self.fail(&format!("expected a range such as 50ms..800ms, found {word:?}"));
        };
        let (low, high) = (self.duration(low)?, self.duration(high)?);
        if low > high {
            return self.fail(&format!("the range {word} is empty"));
        }
        Ok((low, high))
    }

    /// A target at the start of `words`, and how many words it took.
    fn target(&self, words: &[&str]) -> Result<(Target, usize), ParseError> {
        let Some(&first) = words.first() else {
            return self.fail("expected a target: a server id, {1,2}, leader, follower, quorum, all or crashed");
        };
        let (word, skipped) = match first {
            "a" | "the" | "server" if words.len() > 1 => (words[1], 1),
            _ => (first, 0),
        };
        let target = match word {
            "leader" => Target::Leader,
            "follower" => Target::Follower,
            "quorum" => Target::Quorum,
            "all" => Target::All,
            "crashed" => Target::Crashed,
            set if set.starts_with('{') && set.ends_with('}') => {
                let inner = &set[1..set.len() - 1];
                let ids = inner.split(',').map(|id| self.number(id.trim())).collect::<Result<Vec<_>, _>>()?;
                if ids.is_empty() {
                    return self.fail("an empty set of servers");
                }
                Target::Servers(ids)
            }
            id if id.chars().all(|digit| digit.is_ascii_digit()) => Target::Servers(vec![self.number(id)?]),
            other => {
                return self.fail(&format!(
                    "unknown target {other:?}; expected a server id, {{1,2}}, leader, follower, quorum, all or crashed"
                ))
            }
        };
        Ok((target, skipped + 1))
    }

    /// `for D` at the start of `words`.
    fn for_duration(&self, words: &[&str], step: &str) -> Result<u64, ParseError> {
        match words {
            ["for", duration, ..] => self.duration(duration),
            _ => self.fail(&format!("expected `for DURATION` after the target of `{step}`")),
        }
    }

    fn no_more(&self, words: &[&str]) -> Result<(), ParseError> {
        match words.first() {
            None => Ok(()),
            Some(word) => self.fail(&format!("unexpected {word:?} at the end of the step")),
        }
    }

    /// `[forward|reverse] [every D]`.
    fn restart_tail(&self, mut words: &[&str]) -> Result<(RestartOrder, u64), ParseError> {
        let mut order = RestartOrder::Forward;
        let mut gap_ms = 0;
        if let Some(&word) = words.first() {
            if word == "forward" || word == "reverse" {
                order = if word == "reverse" { RestartOrder::Reverse } else { RestartOrder::Forward };
                words = &words[1..];
            }
        }
        if let ["every", duration, rest @ ..] = words {
            gap_ms = self.duration(duration)?;
            words = rest;
        }
        self.no_more(words)?;
        Ok((order, gap_ms))
    }

    fn step(&self, words: &[&str]) -> Result<FaultStep, ParseError> {
        let verb = words[0];
        let rest = &words[1..];
        match verb {
            "partition" => {
                let (group, used) = self.target(rest)?;
                let rest = &rest[used..];
                let (from, rest) = match rest {
                    ["from", "rest", rest @ ..] => (None, rest),
                    ["from", more @ ..] => {
                        let (from, used) = self.target(more)?;
                        (Some(from), &more[used..])
                    }
                    _ => return self.fail("expected `partition TARGET from rest|TARGET for DURATION`"),
                };
                let duration_ms = self.for_duration(rest, verb)?;
                self.no_more(&rest[2..])?;
                Ok(FaultStep::Partition { group, from, duration_ms })
            }
            "isolate" => {
                let (group, used) = self.target(rest)?;
                let duration_ms = self.for_duration(&rest[used..], verb)?;
                self.no_more(&rest[used + 2..])?;
                Ok(FaultStep::Partition { group, from: None, duration_ms })
            }
            "flap" => {
                let (a, used) = self.target(rest)?;
                let mut rest = &rest[used..];
                let mut b = None;
                if let Some(&("with" | "<->" | "and")) = rest.first() {
                    let (target, used) = self.target(&rest[1..])?;
                    b = Some(target);
                    rest = &rest[1 + used..];
                }
                let ([times, "times", "every", period, more @ ..] | [times, "time", "every", period, more @ ..]) = rest
                else {
                    return self.fail("expected `flap TARGET [with TARGET] N times every DURATION`");
                };
                let times = self.number(times)? as u32;
                if times == 0 {
                    return self.fail("a link flaps at least once");
                }
                let period_ms = self.duration(period)?;
                self.no_more(more)?;
                Ok(FaultStep::Flap { a, b, times, period_ms })
            }
            "crash" => {
                let (target, used) = self.target(rest)?;
                let mut rest = &rest[used..];
                let mut tear = Tear::Random;
                if let Some(&word @ ("torn" | "clean")) = rest.first() {
                    tear = if word == "torn" { Tear::Torn } else { Tear::Clean };
                    rest = &rest[1..];
                }
                let mut restart_after_ms = None;
                let (mut order, mut restart_gap_ms) = (RestartOrder::Forward, 0);
                if !rest.is_empty() {
                    restart_after_ms = Some(self.for_duration(rest, verb)?);
                    let mut tail = &rest[2..];
                    if tail.first() == Some(&"restart") {
                        tail = &tail[1..];
                    }
                    (order, restart_gap_ms) = self.restart_tail(tail)?;
                }
                Ok(FaultStep::Crash { target, tear, restart_after_ms, order, restart_gap_ms })
            }
            "restart" => {
                let (target, used) = self.target(rest)?;
                let (order, gap_ms) = self.restart_tail(&rest[used..])?;
                Ok(FaultStep::Restart { target, order, gap_ms })
            }
            "pause" => {
                let (target, used) = self.target(rest)?;
                let duration_ms = self.for_duration(&rest[used..], verb)?;
                self.no_more(&rest[used + 2..])?;
                Ok(FaultStep::Pause { target, duration_ms })
            }
            "slow-fsync" | "latency-spike" => {
                let (target, used) = self.target(rest)?;
                let duration_ms = self.for_duration(&rest[used..], verb)?;
                let more = &rest[used + 2..];
                let keyword = if verb == "slow-fsync" { "fsync" } else { "delay" };
                let range = match more {
                    [] => None,
                    [word, range] if *word == keyword => Some(self.duration_range(range)?),
                    _ => return self.fail(&format!("expected `{verb} TARGET for DURATION [{keyword} LOW..HIGH]`")),
                };
                Ok(if verb == "slow-fsync" {
                    FaultStep::SlowFsync { target, duration_ms, fsync_ms: range.unwrap_or((50, 1200)) }
                } else {
                    FaultStep::LatencySpike { target, duration_ms, spike_ms: range.unwrap_or((50, 800)) }
                })
            }
            "one-way" => {
                let (group, used) = self.target(rest)?;
                let rest = &rest[used..];
                let (to, rest) = match rest {
                    ["to", "rest", rest @ ..] => (None, rest),
                    ["to", more @ ..] => {
                        let (to, used) = self.target(more)?;
                        (Some(to), &more[used..])
                    }
                    _ => return self.fail("expected `one-way TARGET to rest|TARGET for DURATION`"),
                };
                let duration_ms = self.for_duration(rest, verb)?;
                self.no_more(&rest[2..])?;
                Ok(FaultStep::AsymmetricPartition { group, to, duration_ms })
            }
            "clock-skew" => {
                let (target, used) = self.target(rest)?;
                let duration_ms = self.for_duration(&rest[used..], verb)?;
                let mut more = &rest[used + 2..];
                let (mut jump_ms, mut rate_permille) = (30_000i64, 1000u64);
                loop {
                    match more {
                        ["jump", amount, tail @ ..] => {
                            let (sign, magnitude) = match amount.strip_prefix('-') {
                                Some(magnitude) => (-1, magnitude),
                                None => (1, amount.strip_prefix('+').unwrap_or(amount)),
                            };
                            jump_ms = sign * self.duration(magnitude)? as i64;
                            more = tail;
                        }
                        ["rate", percent, tail @ ..] => {
                            let Some(number) = percent.strip_suffix('%') else {
                                return self.fail(&format!("expected a rate such as 110%, found {percent:?}"));
                            };
                            let number = self.number(number)?;
                            if !(50..=200).contains(&number) {
                                return self.fail("a clock rate lies between 50% and 200%");
                            }
                            rate_permille = number * 10;
                            more = tail;
                        }
                        [] => break,
                        _ => return self.fail("expected `clock-skew TARGET for DURATION [jump +D|-D] [rate N%]`"),
                    }
                }
                Ok(FaultStep::ClockSkew { target, duration_ms, jump_ms, rate_permille })
            }
            "corrupt-read" => {
                let (target, used) = self.target(rest)?;
                let more = &rest[used..];
                let restart_after_ms = if more.is_empty() { 500 } else { self.for_duration(more, verb)? };
                self.no_more(more.get(2..).unwrap_or_default())?;
                Ok(FaultStep::CorruptRead { target, restart_after_ms })
            }
            "disk-full" => {
                let (target, used) = self.target(rest)?;
                let duration_ms = self.for_duration(&rest[used..], verb)?;
                self.no_more(&rest[used + 2..])?;
                Ok(FaultStep::DiskFull { target, duration_ms })
            }
            other => self.fail(&format!(
                "unknown step {other:?}; expected partition, isolate, flap, crash, restart, pause, slow-fsync, \
                 latency-spike, one-way, clock-skew, corrupt-read or disk-full"
            )),
        }
    }
}

impl Scenario {
    /// The simulator configuration for one seed of this scenario.
    pub fn config(&self, seed: u64) -> SimConfig {
        SimConfig {
            voters: self.voters,
            observers: self.observers,
            clients: self.clients,
            safety_ms: self.run_ms,
            faults: self.faults,
            timeline: self.timeline.clone(),
            planted: self.planted,
            workload: self.workload,
            ..SimConfig::new(seed)
        }
    }

    /// Whether a violation found by `checker` counts in this scenario.
    pub fn counts(&self, checker: &str) -> bool {
        ALWAYS_CHECKED.contains(&checker) || self.checkers.contains(&checker)
    }

    /// Runs the scenario over `seeds`.
    pub fn run(&self, seeds: Range<u64>) -> Outcome {
        let mut outcome = Outcome {
            title: self.title.clone(),
            shape: format!(
                "{} voters, {} observers, {} clients, fault phase {} ms, random faults {}{}",
                self.voters,
                self.observers,
                self.clients,
                self.run_ms,
                self.faults,
                match self.workload {
                    zk_sim::config::Workload::Mixed => String::new(),
                    other => format!(", {} workload", other.name()),
                }
            ),
            checkers: self.checkers.clone(),
            seeds: seeds.clone(),
            ..Outcome::default()
        };
        for seed in seeds {
            let report = zk_sim::run(self.config(seed));
            outcome.operations += report.operations;
            outcome.operations_completed += report.operations_completed;
            outcome.operations_checked += report.linearizability.operations_checked;
            outcome.steps_applied += report.timeline.applied;
            outcome.watch_events += report.clients.watch_events;
            outcome.watches_reset += report.clients.watches_reset;
            outcome.lock_tenures += report.clients.lock_tenures;
            outcome.leader_terms += report.clients.leader_terms;
            outcome.corrupt_reads_caught += report.stats.corrupt_reads_caught;
            outcome.persists_failed += report.stats.persists_failed;
            outcome.frames_dropped += report.stats.frames_dropped;
            outcome.steps_skipped += report.timeline.skipped;
            for item in report.faults.split_whitespace() {
                if let Some((kind, count)) = item.split_once('=') {
                    *outcome.faults.entry(kind.to_owned()).or_default() += count.parse::<u64>().unwrap_or(0);
                }
            }
            let (counted, ignored): (Vec<Violation>, Vec<Violation>) =
                report.violations.into_iter().partition(|violation| self.counts(violation.checker));
            outcome.ignored += ignored.len();
            if !counted.is_empty() {
                outcome.failures.push((seed, counted));
            }
        }
        outcome
    }

    /// The command that replays one seed of this scenario with a trace.
    pub fn replay_command(&self, path: &str, seed: u64) -> String {
        format!("cargo run -p zk-scenarios --release -- {path} --seed {seed} --trace trace-{}-{seed}.txt", self.name)
    }
}

/// What a scenario did over its seeds: deterministic figures only (no wall time), so that
/// the text can be kept as a snapshot.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub title: String,
    pub shape: String,
    pub checkers: Vec<&'static str>,
    pub seeds: Range<u64>,
    pub operations: usize,
    pub operations_completed: usize,
    pub operations_checked: usize,
    pub steps_applied: u64,
    pub steps_skipped: u64,
    /// Faults injected (scripted and random), by kind.
    pub faults: BTreeMap<String, u64>,
    pub watch_events: usize,
    /// setWatches sent by clients reconnecting with their session.
    pub watches_reset: usize,
    pub lock_tenures: usize,
    pub leader_terms: usize,
    /// Restarts refused because recovery caught a corrupt read.
    pub corrupt_reads_caught: u64,
    /// Persist requests refused by a full disk.
    pub persists_failed: u64,
    /// Frames dropped by asymmetric partitions.
    pub frames_dropped: u64,
    /// Seeds with violations that count, and those violations.
    pub failures: Vec<(u64, Vec<Violation>)>,
    /// Violations from checkers the scenario does not check.
    pub ignored: usize,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faults: Vec<String> = self.faults.iter().map(|(kind, count)| format!("{kind}={count}")).collect();
        writeln!(f, "scenario:        {}", self.title)?;
        writeln!(f, "ensemble:        {}", self.shape)?;
        writeln!(f, "checks:          {}", self.checkers.join(", "))?;
        writeln!(
            f,
            "seeds run:       {} ({}..{})",
            self.seeds.end - self.seeds.start,
            self.seeds.start,
            self.seeds.end
        )?;
        writeln!(f, "timeline steps:  {} applied, {} skipped", self.steps_applied, self.steps_skipped)?;
        writeln!(f, "faults injected: {}", if faults.is_empty() { String::from("none") } else { faults.join(" ") })?;
        writeln!(f, "operations:      {} ({} with a reply)", self.operations, self.operations_completed)?;
        writeln!(f, "linearizability: {} operations checked", self.operations_checked)?;
        writeln!(f, "watches:         {} events, {} setWatches on reconnect", self.watch_events, self.watches_reset)?;
        writeln!(f, "recipes:         {} lock tenures, {} leader terms", self.lock_tenures, self.leader_terms)?;
        if self.corrupt_reads_caught + self.persists_failed + self.frames_dropped > 0 {
            writeln!(
                f,
                "disk and links:  {} corrupt reads caught, {} persist requests refused, {} frames dropped one way",
                self.corrupt_reads_caught, self.persists_failed, self.frames_dropped
            )?;
        }
        writeln!(f, "violations:      {} seeds", self.failures.len())?;
        for (seed, violations) in &self.failures {
            for violation in violations {
                writeln!(f, "  seed {seed}: {}", violation.to_string().lines().next().unwrap_or_default())?;
            }
        }
        if self.ignored > 0 {
            writeln!(f, "not checked:     {} violations from checkers this scenario does not name", self.ignored)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
