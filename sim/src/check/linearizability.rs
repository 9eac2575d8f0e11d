//! Linearizability of single-znode registers: the znodes `/k0..` are read and written only
//! by create, setData (with or without a version), delete and sync+read, each on one path,
//! so every path is checked on its own (P-compositionality) against a sequential model of
//! one znode: absent, or present with data and a version.
//!
//! The search is Wing and Gong's, with Lowe's memoization of (linearized set, state)
//! (Lowe, "Testing for linearizability", 2017), as in Porcupine and Knossos: an operation
//! whose outcome is unknown (the connection dropped before the reply) returns at infinity
//! and may take effect at any point after its invocation, or never, since nothing after
//! infinity observes it. Plain reads are not in the check: ZooKeeper serves them from the
//! connected server's possibly stale state (sequential consistency, not linearizability);
//! a read that follows a `sync` is.
//!
//! An unanswered write is looked up in the committed log by its session and xid (the txn's
//! `cxid`): found, it took effect with the result its txn implies, no later than when the
//! txn was first seen committed; found as an error txn, or not found in a committed log
//! known to be whole (at the end of a run every txn in a log is committed), it changed
//! nothing. Few writes stay unknown, which keeps the search small.
//!
//! The search is bounded: a path whose search exceeds `STEPS_MAX` is reported as
//! inconclusive, not as a violation.

use std::collections::BTreeMap;

use zk_core::proto::CreateMode;
use zk_core::ErrorCode;

use zk_core::txn::Txn;

use crate::check::zab::ZabChecker;
use crate::client::is_state_error;
use crate::history::{OpKind, Operation, Outcome, Value};
use crate::trace;

/// Search steps per path before giving up.
pub const STEPS_MAX: u64 = 500_000;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Input {
    Create { data: Vec<u8> },
    Set { data: Vec<u8>, version: i32 },
    Delete { version: i32 },
    Read,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Output {
    Unknown,
    Ok(Value),
    Err(ErrorCode),
}

#[derive(Clone, Debug)]
struct RegisterOp {
    input: Input,
    output: Output,
    call_ms: u64,
    /// `u64::MAX` when the outcome is unknown.
    return_ms: u64,
    /// The operation's index in the history, for messages.
    operation: usize,
}

/// What the check covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub paths: usize,
    pub operations_checked: usize,
    /// Paths whose search hit the step bound.
    pub inconclusive: usize,
    /// Writes whose outcome stayed unknown (no reply, not found in the committed log).
    pub unknown_writes: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub summary: Summary,
    pub violations: Vec<String>,
}

/// One znode's state in the search: absent, or present with its data (interned: equal ids
/// for equal bytes, see [`Compact`]) and its version.
type Register = Option<(u32, i32)>;

/// An [`Input`] as the search sees it: its data interned, so a step neither clones nor
/// compares bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CompactInput {
    Create { data: u32 },
    Set { data: u32, version: i32 },
    Delete { version: i32 },
    Read,
}

/// An [`Output`] with its data interned; `OkOther` is any other successful value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CompactOutput {
    Unknown,
    OkNone,
    OkVersion(i32),
    OkData { data: u32, version: i32 },
    OkOther,
    Err(ErrorCode),
}

/// Interns one path's data: equal bytes get equal ids.
struct Compact<'a> {
    ids: BTreeMap<&'a [u8], u32>,
}

impl<'a> Compact<'a> {
    fn id(&mut self, data: &'a [u8]) -> u32 {
        let next = self.ids.len() as u32;
        *self.ids.entry(data).or_insert(next)
    }

    fn op(&mut self, op: &'a RegisterOp) -> (CompactInput, CompactOutput) {
        let input = match &op.input {
            Input::Create { data } => CompactInput::Create { data: self.id(data) },
            Input::Set { data, version } => CompactInput::Set { data: self.id(data), version: *version },
            Input::Delete { version } => CompactInput::Delete { version: *version },
            Input::Read => CompactInput::Read,
        };
        let output = match &op.output {
            Output::Unknown => CompactOutput::Unknown,
            Output::Err(err) => CompactOutput::Err(*err),
            Output::Ok(Value::None) => CompactOutput::OkNone,
            Output::Ok(Value::Version(version)) => CompactOutput::OkVersion(*version),
            Output::Ok(Value::Data { data, version }) => {
                CompactOutput::OkData { data: self.id(data), version: *version }
            }
            Output::Ok(_) => CompactOutput::OkOther,
        };
        (input, output)
    }
}

/// The sequential model: the state after `input` with result `output`, or `None` when that
/// result is impossible in `state`.
fn step(state: Register, input: CompactInput, output: CompactOutput) -> Option<Register> {
    let allowed = |expected: CompactOutput| output == CompactOutput::Unknown || output == expected;
    match (input, state) {
        (CompactInput::Create { data }, None) => {
            let ok = !matches!(output, CompactOutput::Err(_));
            ok.then_some(Some((data, 0)))
        }
        (CompactInput::Create { .. }, Some(_)) => allowed(CompactOutput::Err(ErrorCode::NodeExists)).then_some(state),
        (CompactInput::Set { .. }, None) | (CompactInput::Delete { .. }, None) => {
            allowed(CompactOutput::Err(ErrorCode::NoNode)).then_some(state)
        }
        (CompactInput::Set { data, version }, Some((_, current))) => {
            if version == -1 || version == current {
                allowed(CompactOutput::OkVersion(current + 1)).then_some(Some((data, current + 1)))
            } else {
                allowed(CompactOutput::Err(ErrorCode::BadVersion)).then_some(state)
            }
        }
        (CompactInput::Delete { version }, Some((_, current))) => {
            if version == -1 || version == current {
                allowed(CompactOutput::OkNone).then_some(None)
            } else {
                allowed(CompactOutput::Err(ErrorCode::BadVersion)).then_some(state)
            }
        }
        (CompactInput::Read, None) => allowed(CompactOutput::Err(ErrorCode::NoNode)).then_some(state),
        (CompactInput::Read, Some((data, version))) => {
            allowed(CompactOutput::OkData { data, version }).then_some(state)
        }
    }
}

/// What the committed log says about an operation whose reply never came: the txn that
/// carried it, found by session and xid, and when it was first seen committed.
struct Ledger<'a> {
    zab: &'a ZabChecker,
    by_request: BTreeMap<(i64, i32), i64>,
    /// Whether the committed log is known whole, so a write missing from it never took
    /// effect.
    complete: bool,
}

impl<'a> Ledger<'a> {
    fn new(zab: &'a ZabChecker) -> Ledger<'a> {
        let by_request =
            zab.committed().iter().map(|(zxid, entry)| ((entry.header.session_id, entry.header.cxid), *zxid)).collect();
        Ledger { zab, by_request, complete: zab.ledger_is_complete() && !zab.committed().is_empty() }
    }

    /// The outcome the committed txn of an unanswered write implies, and the time it was
    /// known committed (the write took effect no later). `Some(None)`: the txn is an error
    /// that changed nothing, so the write never took effect.
    fn resolve(&self, operation: &Operation) -> Option<Option<(Output, u64)>> {
        let Some(&zxid) = self.by_request.get(&(operation.session_id, operation.xid?)) else {
            return self.complete.then_some(None);
        };
        let entry = &self.zab.committed()[&zxid];
        let at_ms = self.zab.committed_at_ms(zxid)?.max(operation.invoke_ms);
        let output = match (&operation.kind, &entry.txn) {
            (_, Txn::Error(err)) if is_state_error(*err) => Output::Err(*err),
            (_, Txn::Error(_)) => return Some(None),
            (OpKind::Create { path, .. }, Txn::Create { .. }) => Output::Ok(Value::Path(path.clone())),
            (OpKind::SetData { .. }, Txn::SetData { version, .. }) => Output::Ok(Value::Version(*version)),
            (OpKind::Delete { .. }, Txn::Delete { .. }) => Output::Ok(Value::None),
            _ => return None,
        };
        Some(Some((output, at_ms)))
    }
}

/// The register operation an operation of the history is, if it is one.
fn register_op(index: usize, operation: &Operation, ledger: &Ledger<'_>) -> Option<(String, RegisterOp)> {
    let path = operation.kind.path()?;
    if !path.starts_with("/k") {
        return None;
    }
    let input = match &operation.kind {
        OpKind::Create { data, mode: CreateMode::Persistent, .. } => Input::Create { data: data.clone() },
        OpKind::SetData { data, version, .. } => Input::Set { data: data.clone(), version: *version },
        OpKind::Delete { version, .. } => Input::Delete { version: *version },
        OpKind::SyncRead { .. } => Input::Read,
        _ => return None,
    };
    let output = match &operation.outcome {
        Outcome::Ok(value) => Output::Ok(value.clone()),
        Outcome::Err(err) if is_state_error(*err) => Output::Err(*err),
        // Another error (session expired, throttled, ...) says nothing definite: a write may
        // still have taken effect, a read tells nothing.
        Outcome::Err(_) | Outcome::Pending | Outcome::Unknown => Output::Unknown,
    };
    if input == Input::Read && output == Output::Unknown {
        return None;
    }
    let (output, return_ms) = match output {
        Output::Unknown => match ledger.resolve(operation) {
            Some(Some((output, at_ms))) => (output, at_ms),
            Some(None) => return None,
            None => (Output::Unknown, u64::MAX),
        },
        known => (known, operation.complete_ms.expect("a completed operation has a completion time")),
    };
    Some((path.to_owned(), RegisterOp { input, output, call_ms: operation.invoke_ms, return_ms, operation: index }))
}

/// Checks every register path of the history. `zab` holds the committed log, which
/// settles most operations whose reply was lost.
pub fn check(operations: &[Operation], zab: &ZabChecker) -> Report {
    let ledger = Ledger::new(zab);
    let mut by_path: BTreeMap<String, Vec<RegisterOp>> = BTreeMap::new();
    for (index, operation) in operations.iter().enumerate() {
        if let Some((path, op)) = register_op(index, operation, &ledger) {
            by_path.entry(path).or_default().push(op);
        }
    }
    let mut report = Report::default();
    for (path, ops) in &by_path {
        report.summary.paths += 1;
        report.summary.operations_checked += ops.len();
        report.summary.unknown_writes += ops.iter().filter(|op| op.output == Output::Unknown).count();
        match search(ops, STEPS_MAX) {
            Search::Linearizable => {}
            Search::Inconclusive => report.summary.inconclusive += 1,
            Search::NotLinearizable { stuck } => {
                report.violations.push(describe(path, ops, stuck, operations));
            }
        }
    }
    report
}

fn describe(path: &str, ops: &[RegisterOp], stuck: usize, operations: &[Operation]) -> String {
    let op = &ops[stuck];
    let line = |op: &RegisterOp| {
        let operation = &operations[op.operation];
        let end = if op.return_ms == u64::MAX { String::from("?") } else { trace::time(op.return_ms) };
        format!(
            "  client {} {:?} [{} .. {}] -> {:?} (zxid {})",
            operation.client,
            operation.kind,
            trace::time(op.call_ms),
            end,
            operation.outcome,
            operation.zxid.map_or(String::from("-"), trace::zxid)
        )
    };
    let mut text = format!(
        "{path}: no linearization explains the result of\n{}\nthe operations on {path} before and during it:",
        line(op)
    );
    let mut context: Vec<&RegisterOp> = ops.iter().filter(|other| other.call_ms <= op.return_ms).collect();
    context.sort_by_key(|other| (other.call_ms, other.operation));
    let skip = context.len().saturating_sub(12);
    for other in &context[skip..] {
        text.push('\n');
        text.push_str(&line(other));
    }
    text
}

enum Search {
    Linearizable,
    Inconclusive,
    /// The operation whose return the deepest attempt could not get past.
    NotLinearizable {
        stuck: usize,
    },
}

/// Wing–Gong–Lowe search over one path's operations.
fn search(ops: &[RegisterOp], steps_max: u64) -> Search {
    const NIL: usize = usize::MAX;
    // Entries 1..=2n: each op's call and return, by time; calls before returns at the same
    // instant, so operations that touch in time count as concurrent. Entry 0 is the head.
    let mut entries: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
    for (index, op) in ops.iter().enumerate() {
        entries.push((op.call_ms, false, index));
        entries.push((op.return_ms, true, index));
    }
    entries.sort();
    let count = entries.len();
    let mut next: Vec<usize> = (0..=count).map(|position| if position == count { NIL } else { position + 1 }).collect();
    let mut prev: Vec<usize> = (0..=count).map(|position| position.wrapping_sub(1)).collect();
    let mut return_of = vec![0usize; ops.len()];
    for (position, &(_, is_return, op)) in entries.iter().enumerate() {
        if is_return {
            return_of[op] = position + 1;
        }
    }
    let entry = |position: usize| entries[position - 1];
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, position: usize| {
        let (before, after) = (prev[position], next[position]);
        next[before] = after;
        if after != NIL {
            prev[after] = before;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, position: usize| {
        let (before, after) = (prev[position], next[position]);
        next[before] = position;
        if after != NIL {
            prev[after] = position;
        }
    };

    // The memo of (linearized set, state) pairs already explored holds the set as two
    // independent 64-bit Zobrist hashes, updated in O(1) per step: a false match needs a
    // 128-bit collision.
    let zobrist: Vec<(u64, u64)> =
        (0..ops.len() as u64).map(|index| (splitmix64(index * 2 + 1), splitmix64(index * 2 + 2))).collect();
    let mut compact = Compact { ids: BTreeMap::new() };
    let compact: Vec<(CompactInput, CompactOutput)> = ops.iter().map(|op| compact.op(op)).collect();
    let mut linearized = (0u64, 0u64);
    let mut state: Register = None;
    let mut cache = Memo::default();
    let mut stack: Vec<(usize, Register)> = Vec::new();
    let mut deepest = (0usize, 0usize);
    let mut position = next[0];
    let mut steps = 0u64;
    while next[0] != NIL {
        steps += 1;
        if steps > steps_max {
            return Search::Inconclusive;
        }
        assert_ne!(position, NIL, "the list ends with a return, which stops the scan");
        let (_, is_return, op) = entry(position);
        if !is_return {
            let (input, output) = compact[op];
            if let Some(after) = step(state, input, output) {
                let bits = (linearized.0 ^ zobrist[op].0, linearized.1 ^ zobrist[op].1);
                if cache.insert((bits.0, bits.1, after)) {
                    stack.push((position, std::mem::replace(&mut state, after)));
                    linearized = bits;
                    unlink(&mut next, &mut prev, position);
                    unlink(&mut next, &mut prev, return_of[op]);
                    position = next[0];
                    continue;
                }
            }
            position = next[position];
        } else {
            if stack.len() >= deepest.0 {
                deepest = (stack.len(), op);
            }
            let Some((call, before)) = stack.pop() else {
                return Search::NotLinearizable { stuck: deepest.1 };
            };
            let (_, _, undone) = entry(call);
            linearized = (linearized.0 ^ zobrist[undone].0, linearized.1 ^ zobrist[undone].1);
            state = before;
            relink(&mut next, &mut prev, return_of[undone]);
            relink(&mut next, &mut prev, call);
            position = next[call];
        }
    }
    Search::Linearizable
}

/// The memo of explored (linearized set, state) pairs: an open-addressing hash set (linear
/// probing, at most half full) keyed by the Zobrist hashes, which are already well mixed. Only
/// membership is asked, so nothing depends on an iteration order.
#[derive(Default)]
struct Memo {
    slots: Vec<Option<(u64, u64, Register)>>,
    len: usize,
}

impl Memo {
    /// Adds the pair; false if it was already there.
    fn insert(&mut self, key: (u64, u64, Register)) -> bool {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let (data, version) = key.2.map_or((u32::MAX, -1), |(data, version)| (data, version));
        let register =
            splitmix64((u64::from(data) << 32) | u64::from(version as u32) | u64::from(key.2.is_some()) << 63);
        let mut index = (key.0 ^ register) as usize & mask;
        loop {
            match &self.slots[index] {
                Some(slot) if *slot == key => return false,
                Some(_) => index = (index + 1) & mask,
                None => {
                    self.slots[index] = Some(key);
                    self.len += 1;
                    return true;
                }
            }
        }
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![None; capacity]);
        self.len = 0;
        for key in old.into_iter().flatten() {
            self.insert(key);
        }
    }
}

/// SplitMix64: a fixed, well-mixed function of the index (Zobrist keys).
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::zab::ZabChecker;

    fn op(client: usize, kind: OpKind, call_ms: u64, return_ms: Option<u64>, outcome: Outcome) -> Operation {
        Operation {
            client,
            session_id: 1,
            server: 1,
            kind,
            invoke_ms: call_ms,
            complete_ms: return_ms,
            outcome,
            zxid: None,
            xid: None,
        }
    }

    fn create(data: &str, call: u64, ret: u64) -> Operation {
        let kind = OpKind::Create { path: "/k0".into(), data: data.into(), mode: CreateMode::Persistent };
        op(0, kind, call, Some(ret), Outcome::Ok(Value::Path("/k0".into())))
    }

    fn set(client: usize, data: &str, call: u64, ret: Option<u64>, outcome: Outcome) -> Operation {
        op(client, OpKind::SetData { path: "/k0".into(), data: data.into(), version: -1 }, call, ret, outcome)
    }

    fn read(client: usize, data: &str, version: i32, call: u64, ret: u64) -> Operation {
        let value = Value::Data { data: data.into(), version };
        op(client, OpKind::SyncRead { path: "/k0".into() }, call, Some(ret), Outcome::Ok(value))
    }

    #[test]
    fn concurrent_writes_may_be_read_in_either_order() {
        let history = vec![
            create("a", 0, 1),
            set(1, "b", 2, Some(10), Outcome::Ok(Value::Version(1))),
            set(2, "c", 3, Some(11), Outcome::Ok(Value::Version(2))),
            read(3, "c", 2, 12, 13),
        ];
        let report = check(&history, &ZabChecker::default());
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert_eq!(report.summary, Summary { paths: 1, operations_checked: 4, inconclusive: 0, unknown_writes: 0 });
    }

    #[test]
    fn planted_bug_a_sync_read_returns_a_value_overwritten_before_the_sync() {
        // A follower answering sync+read without waiting for the leader: it serves "a"
        // after "b" was acknowledged to another client.
        let history =
            vec![create("a", 0, 1), set(1, "b", 2, Some(3), Outcome::Ok(Value::Version(1))), read(2, "a", 0, 4, 5)];
        let report = check(&history, &ZabChecker::default());
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        assert!(report.violations[0].contains("no linearization"), "{}", report.violations[0]);
    }

    #[test]
    fn a_write_of_unknown_outcome_may_or_may_not_take_effect() {
        let lost = set(1, "b", 2, None, Outcome::Unknown);
        let took_effect = vec![create("a", 0, 1), lost.clone(), read(2, "b", 1, 10, 11)];
        assert!(check(&took_effect, &ZabChecker::default()).violations.is_empty());
        let did_not = vec![create("a", 0, 1), lost, read(2, "a", 0, 10, 11)];
        assert!(check(&did_not, &ZabChecker::default()).violations.is_empty());
        // But not before it was invoked.
        let too_early = vec![create("a", 0, 1), read(2, "b", 1, 3, 4), set(1, "b", 5, None, Outcome::Unknown)];
        assert_eq!(check(&too_early, &ZabChecker::default()).violations.len(), 1);
    }

    #[test]
    fn planted_bug_a_lost_acknowledged_write() {
        // Acknowledged, yet a later sync+read sees the value before it and then the version
        // count continues as though it never happened.
        let history = vec![
            create("a", 0, 1),
            set(1, "b", 2, Some(3), Outcome::Ok(Value::Version(1))),
            set(1, "c", 4, Some(5), Outcome::Ok(Value::Version(1))),
        ];
        assert_eq!(check(&history, &ZabChecker::default()).violations.len(), 1);
    }

    #[test]
    fn versions_and_errors_follow_the_model() {
        let history = vec![
            op(0, OpKind::Delete { path: "/k0".into(), version: -1 }, 0, Some(1), Outcome::Err(ErrorCode::NoNode)),
            create("a", 2, 3),
            op(
                1,
                OpKind::SetData { path: "/k0".into(), data: b"x".to_vec(), version: 5 },
                4,
                Some(5),
                Outcome::Err(ErrorCode::BadVersion),
            ),
            op(2, OpKind::Delete { path: "/k0".into(), version: 0 }, 6, Some(7), Outcome::Ok(Value::None)),
            op(3, OpKind::SyncRead { path: "/k0".into() }, 8, Some(9), Outcome::Err(ErrorCode::NoNode)),
        ];
        assert!(check(&history, &ZabChecker::default()).violations.is_empty());
    }
}
