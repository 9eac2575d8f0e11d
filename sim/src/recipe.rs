//! The coordination recipes of ZooKeeper's documentation ("ZooKeeper Recipes and
//! Solutions"), run by clients beside their workload, so that the guarantees applications
//! build on are checked end to end:
//!
//! - **lock**: create `/lock/<prefix>n-` EPHEMERAL_SEQUENTIAL; list `/lock`; the lowest
//!   sequence number holds the lock; anyone else sets a watch (exists) on the node just below
//!   its own and lists again when that watch fires. The holder lets go by deleting its node.
//! - **leader election**: the same construction under `/election`; the lowest node leads,
//!   and as it takes office it claims the next term by a conditional setData of
//!   `/election` ("term N <node>" at the version it read), so terms count leaders.
//!
//! The node's name carries a prefix naming the client and its session (Curator's
//! "protected" mode): when a create's reply is lost, listing the directory finds the node
//! if the create took effect, and nodes of an earlier session never pass for the client's
//! own. A create retried after a lost reply may leave two nodes of one session; the higher
//! one is deleted.
//!
//! A recipe is a state machine with no I/O: the client asks it for its next request
//! ([`Recipe::poll_request`]) and feeds it the outcome, the watch events and the end of the
//! session. What it holds, and when it lets go, goes into the history, where
//! [`crate::check::recipes`] reads it.

use zk_core::proto::{CreateMode, CreateRequest, DeleteRequest, EventType, ExistsRequest, GetChildrenRequest};
use zk_core::proto::{GetDataRequest, Request, SetDataRequest};
use zk_core::ErrorCode;

use crate::history::{ClientId, History, ObservationKind, OpKind, Outcome, RecipeKind, Value};
use crate::rng::SimRng;

/// How long a holder keeps the lock or its office, at most.
pub const HOLD_MS_MAX: u64 = 600;
/// How long a client stays out between two attempts, at most.
pub const IDLE_MS_MAX: u64 = 800;

/// Where a recipe stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Not taking part; joins at `next_ms`.
    Idle,
    /// Creating the recipe's directory.
    EnsureDirectory,
    /// Creating this attempt's node.
    Create,
    /// Listing the directory to find out where the client stands.
    List,
    /// Setting a watch on the node just below the client's own.
    WatchPredecessor { predecessor: String },
    /// Waiting for the predecessor's watch to fire.
    Waiting { predecessor: String },
    /// Election: reading the current term from `/election`.
    ReadTerm,
    /// Election: claiming `term` by a setData of `/election` at `version`.
    ClaimTerm { term: u64, version: i32 },
    /// Holding the lock (or the office) until `next_ms`.
    Holding,
    /// Deleting the client's own node: letting go.
    Release,
    /// Deleting a second node of this session, left by a create retried after a lost reply.
    DeleteExtra { path: String },
}

/// One client's run of a recipe.
#[derive(Clone, Debug)]
pub struct Recipe {
    pub kind: RecipeKind,
    client: ClientId,
    state: State,
    /// The session the current attempt belongs to (0 before the first).
    session_id: i64,
    /// This attempt's node, once known.
    node: Option<String>,
    /// Whether a request of the recipe is outstanding.
    waiting_for_reply: bool,
    next_ms: u64,
    /// Whether the client believes it holds (told the history so, not yet let go).
    held: bool,
    /// The planted bug `RecipeOrderByName`.
    order_by_name: bool,
}

/// The sequence number ZooKeeper appended to a sequential node's name.
fn sequence_of(name: &str) -> Option<u64> {
    let digits = name.get(name.len().checked_sub(10)?..)?;
    digits.parse().ok()
}

impl Recipe {
    pub fn new(kind: RecipeKind, client: ClientId, now_ms: u64, rng: &mut SimRng, order_by_name: bool) -> Recipe {
        Recipe {
            kind,
            client,
            state: State::Idle,
            session_id: 0,
            node: None,
            waiting_for_reply: false,
            next_ms: now_ms + rng.range(0, IDLE_MS_MAX),
            held: false,
            order_by_name,
        }
    }

    pub fn directory(&self) -> &'static str {
        match self.kind {
            RecipeKind::Lock => "/lock",
            RecipeKind::Election => "/election",
        }
    }

    /// The prefix of this client's nodes in the current session.
    fn prefix(&self) -> String {
        format!("c{}-{:x}-n-", self.client, self.session_id)
    }

    /// Whether the client believes it holds the lock or leads.
    pub fn holds(&self) -> bool {
        self.held
    }

    /// The next request, if the recipe has one to make now.
    pub fn poll_request(
        &mut self,
        session_id: i64,
        now_ms: u64,
        rng: &mut SimRng,
        history: &mut History,
    ) -> Option<(OpKind, Request)> {
        if self.waiting_for_reply || session_id == 0 {
            return None;
        }
        if self.session_id != session_id {
            // A new session: whatever the old one held went with it.
            self.session_ended(now_ms, rng, history);
            self.session_id = session_id;
        }
        match self.state {
            State::Idle if now_ms >= self.next_ms => self.state = State::EnsureDirectory,
            State::Holding if now_ms >= self.next_ms => self.state = State::Release,
            _ => {}
        }
        let directory = self.directory();
        let acl = zk_core::acl::open_acl_unsafe();
        let create = |path: String, mode: CreateMode| {
            let request = Request::Create(CreateRequest {
                path: path.clone(),
                data: Some(Vec::new()),
                acl: acl.clone(),
                flags: mode.code(),
            });
            (OpKind::Create { path, data: Vec::new(), mode }, request)
        };
        let delete = |path: &str| {
            let request = Request::Delete(DeleteRequest { path: path.to_owned(), version: -1 });
            (OpKind::Delete { path: path.to_owned(), version: -1 }, request)
        };
        let request = match &self.state {
            State::Idle | State::Waiting { .. } | State::Holding => return None,
            State::EnsureDirectory => create(directory.to_owned(), CreateMode::Persistent),
            State::Create => create(format!("{directory}/{}", self.prefix()), CreateMode::EphemeralSequential),
            State::List => {
                let request = Request::GetChildren(GetChildrenRequest { path: directory.to_owned(), watch: false });
                (OpKind::GetChildren { path: directory.to_owned() }, request)
            }
            State::WatchPredecessor { predecessor } => {
                let request = Request::Exists(ExistsRequest { path: predecessor.clone(), watch: true });
                (OpKind::Exists { path: predecessor.clone() }, request)
            }
            State::ReadTerm => {
                let request = Request::GetData(GetDataRequest { path: directory.to_owned(), watch: false });
                (OpKind::GetData { path: directory.to_owned() }, request)
            }
            State::ClaimTerm { term, version } => {
                let node = self.node.clone().unwrap_or_default();
                let data = format!("term {term} {node}").into_bytes();
                let request = Request::SetData(SetDataRequest {
                    path: directory.to_owned(),
                    data: Some(data.clone()),
                    version: *version,
                });
                (OpKind::SetData { path: directory.to_owned(), data, version: *version }, request)
            }
            State::Release => {
                let node = self.node.clone().unwrap_or_default();
                if self.held {
                    self.held = false;
                    let kind = ObservationKind::RecipeReleased { recipe: self.kind, session_id, node: node.clone() };
                    history.observe(now_ms, self.client, kind);
                }
                delete(&node)
            }
            State::DeleteExtra { path } => delete(path),
        };
        self.waiting_for_reply = true;
        Some(request)
    }

    /// The reply to the recipe's request came.
    pub fn handle_reply(&mut self, outcome: &Outcome, now_ms: u64, rng: &mut SimRng, history: &mut History) {
        if !self.waiting_for_reply {
            // A reply to a request of a session that has ended since.
            return;
        }
        self.waiting_for_reply = false;
        let err = match outcome {
            Outcome::Ok(_) => ErrorCode::Ok,
            Outcome::Err(err) => *err,
            Outcome::Pending | Outcome::Unknown => return self.handle_lost_reply(),
        };
        match (&self.state, err) {
            (State::EnsureDirectory, ErrorCode::Ok | ErrorCode::NodeExists) => self.state = State::Create,
            (State::Create, ErrorCode::Ok) => {
                if let Outcome::Ok(Value::Path(path)) = outcome {
                    self.node = Some(path.clone());
                }
                self.state = State::List;
            }
            (State::Create, ErrorCode::NoNode) => self.state = State::EnsureDirectory,
            (State::List, ErrorCode::Ok) => {
                if let Outcome::Ok(Value::Children(children)) = outcome {
                    self.stand(children, now_ms, rng, history);
                }
            }
            (State::List, ErrorCode::NoNode) => self.state = State::EnsureDirectory,
            (State::WatchPredecessor { predecessor }, ErrorCode::Ok) => {
                self.state = State::Waiting { predecessor: predecessor.clone() }
            }
            (State::WatchPredecessor { .. }, ErrorCode::NoNode) => self.state = State::List,
            (State::ReadTerm, ErrorCode::Ok) => {
                let Outcome::Ok(Value::Data { data, version }) = outcome else { return };
                let text = String::from_utf8_lossy(data);
                let mut words = text.split_whitespace();
                let term = match (words.next(), words.next()) {
                    (Some("term"), Some(term)) => term.parse::<u64>().unwrap_or(0),
                    _ => 0,
                };
                if words.next().is_some_and(|holder| Some(holder) == self.node.as_deref()) {
                    // A claim whose reply was lost took effect: this client leads that term.
                    self.take_office(Some(term), now_ms, rng, history);
                } else {
                    self.state = State::ClaimTerm { term: term + 1, version: *version };
                }
            }
            (State::ClaimTerm { term, .. }, ErrorCode::Ok) => {
                let term = *term;
                self.take_office(Some(term), now_ms, rng, history);
            }
            (State::ReadTerm | State::ClaimTerm { .. }, _) => self.state = State::List,
            (State::Release, ErrorCode::Ok | ErrorCode::NoNode) => {
                self.node = None;
                self.state = State::Idle;
                self.next_ms = now_ms + rng.range(1, IDLE_MS_MAX);
            }
            (State::DeleteExtra { .. }, _) => self.state = State::List,
            // Any other error (a throttled request, a session that expired meanwhile): try
            // the same step again.
            _ => {}
        }
    }

    /// The connection dropped before the reply: the request may or may not have taken
    /// effect.
    pub fn handle_lost_reply(&mut self) {
        self.waiting_for_reply = false;
        match self.state {
            // Listing finds the node if the create took effect (by its prefix), and the term
            // if the claim did.
            State::Create | State::ClaimTerm { .. } => self.state = State::List,
            _ => {}
        }
    }

    /// A watch event arrived.
    pub fn handle_event(&mut self, event_type: EventType, path: &str) {
        if let State::Waiting { predecessor } = &self.state {
            if predecessor == path && event_type != EventType::None {
                self.state = State::List;
            }
        }
    }

    /// The session ended (expired, or closed): its node is gone, and whatever it held.
    pub fn session_ended(&mut self, now_ms: u64, rng: &mut SimRng, history: &mut History) {
        if self.held {
            self.held = false;
            let node = self.node.clone().unwrap_or_default();
            let kind = ObservationKind::RecipeReleased { recipe: self.kind, session_id: self.session_id, node };
            history.observe(now_ms, self.client, kind);
        }
        self.node = None;
        self.waiting_for_reply = false;
        if self.state != State::Idle {
            self.state = State::Idle;
            self.next_ms = now_ms + rng.range(1, IDLE_MS_MAX);
        }
    }

    /// Decides from a listing of the directory where this client stands.
    fn stand(&mut self, children: &[String], now_ms: u64, rng: &mut SimRng, history: &mut History) {
        let directory = self.directory();
        let prefix = self.prefix();
        let mut ordered: Vec<(u64, &String)> =
            children.iter().filter_map(|name| sequence_of(name).map(|sequence| (sequence, name))).collect();
        if self.order_by_name {
            ordered.sort_by(|a, b| a.1.cmp(b.1));
        } else {
            ordered.sort();
        }
        let mine: Vec<&String> =
            ordered.iter().filter(|(_, name)| name.starts_with(&prefix)).map(|(_, name)| *name).collect();
        let Some(&own) = mine.first() else {
            // The create did not take effect (or the node is gone): create one.
            self.node = None;
            self.state = State::Create;
            return;
        };
        let own_path = format!("{directory}/{own}");
        self.node = Some(own_path);
        if let Some(extra) = mine.get(1) {
            self.state = State::DeleteExtra { path: format!("{directory}/{extra}") };
            return;
        }
        let position = ordered.iter().position(|(_, name)| *name == own).expect("own node is listed");
        if position == 0 {
            match self.kind {
                RecipeKind::Lock => self.take_office(None, now_ms, rng, history),
                RecipeKind::Election => self.state = State::ReadTerm,
            }
        } else {
            let predecessor = format!("{directory}/{}", ordered[position - 1].1);
            self.state = State::WatchPredecessor { predecessor };
        }
    }

    fn take_office(&mut self, term: Option<u64>, now_ms: u64, rng: &mut SimRng, history: &mut History) {
        let node = self.node.clone().unwrap_or_default();
        if !self.held {
            self.held = true;
            let kind = ObservationKind::RecipeHeld { recipe: self.kind, session_id: self.session_id, node, term };
            history.observe(now_ms, self.client, kind);
        }
        self.state = State::Holding;
        self.next_ms = now_ms + rng.range(1, HOLD_MS_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(recipe: &mut Recipe, outcome: Outcome, history: &mut History, rng: &mut SimRng) {
        recipe.handle_reply(&outcome, 1000, rng, history);
    }

    #[test]
    fn a_lone_client_takes_the_lock_and_lets_it_go() {
        let (mut rng, mut history) = (SimRng::new(1), History::default());
        let mut recipe = Recipe::new(RecipeKind::Lock, 3, 0, &mut rng, false);
        let (kind, _) = recipe.poll_request(0x77, 1000, &mut rng, &mut history).expect("joins");
        assert_eq!(kind, OpKind::Create { path: "/lock".into(), data: vec![], mode: CreateMode::Persistent });
        reply(&mut recipe, Outcome::Err(ErrorCode::NodeExists), &mut history, &mut rng);
        let (kind, _) = recipe.poll_request(0x77, 1000, &mut rng, &mut history).unwrap();
        assert!(
            matches!(kind, OpKind::Create { ref path, mode: CreateMode::EphemeralSequential, .. } if path == "/lock/c3-77-n-")
        );
        reply(&mut recipe, Outcome::Ok(Value::Path("/lock/c3-77-n-0000000004".into())), &mut history, &mut rng);
        recipe.poll_request(0x77, 1000, &mut rng, &mut history).unwrap();
        let children = vec!["c3-77-n-0000000004".to_owned(), "c1-55-n-0000000005".to_owned()];
        reply(&mut recipe, Outcome::Ok(Value::Children(children)), &mut history, &mut rng);
        assert!(recipe.holds());
        assert!(recipe.poll_request(0x77, 1001, &mut rng, &mut history).is_none(), "holds for a while");
        let (kind, _) = recipe.poll_request(0x77, 10_000, &mut rng, &mut history).unwrap();
        assert_eq!(kind, OpKind::Delete { path: "/lock/c3-77-n-0000000004".into(), version: -1 });
        assert!(!recipe.holds());
        let kinds: Vec<&ObservationKind> = history.observations.iter().map(|observation| &observation.kind).collect();
        assert!(matches!(kinds[..], [ObservationKind::RecipeHeld { .. }, ObservationKind::RecipeReleased { .. }]));
    }

    #[test]
    fn a_waiter_watches_its_predecessor_and_a_lost_create_is_found_by_its_prefix() {
        let (mut rng, mut history) = (SimRng::new(2), History::default());
        let mut recipe = Recipe::new(RecipeKind::Election, 1, 0, &mut rng, false);
        recipe.poll_request(0xa, 1000, &mut rng, &mut history).unwrap();
        reply(&mut recipe, Outcome::Ok(Value::Path("/election".into())), &mut history, &mut rng);
        recipe.poll_request(0xa, 1000, &mut rng, &mut history).unwrap();
        recipe.handle_lost_reply();
        let (kind, _) = recipe.poll_request(0xa, 1000, &mut rng, &mut history).unwrap();
        assert_eq!(kind, OpKind::GetChildren { path: "/election".into() });
        let children =
            vec!["c2-b-n-0000000001".to_owned(), "c1-a-n-0000000003".to_owned(), "c1-a-n-0000000002".to_owned()];
        reply(&mut recipe, Outcome::Ok(Value::Children(children)), &mut history, &mut rng);
        let (kind, _) = recipe.poll_request(0xa, 1000, &mut rng, &mut history).unwrap();
        assert_eq!(kind, OpKind::Delete { path: "/election/c1-a-n-0000000003".into(), version: -1 }, "the extra");
        reply(&mut recipe, Outcome::Ok(Value::None), &mut history, &mut rng);
        recipe.poll_request(0xa, 1000, &mut rng, &mut history).unwrap();
        let children = vec!["c2-b-n-0000000001".to_owned(), "c1-a-n-0000000002".to_owned()];
        reply(&mut recipe, Outcome::Ok(Value::Children(children)), &mut history, &mut rng);
        let (kind, _) = recipe.poll_request(0xa, 1000, &mut rng, &mut history).unwrap();
        assert_eq!(kind, OpKind::Exists { path: "/election/c2-b-n-0000000001".into() });
        reply(&mut recipe, Outcome::Ok(Value::Exists { version: 0 }), &mut history, &mut rng);
        assert!(recipe.poll_request(0xa, 1000, &mut rng, &mut history).is_none(), "waits for the watch");
        recipe.handle_event(EventType::NodeDeleted, "/election/c2-b-n-0000000001");
        recipe.poll_request(0xa, 1000, &mut rng, &mut history).unwrap();
        reply(&mut recipe, Outcome::Ok(Value::Children(vec!["c1-a-n-0000000002".into()])), &mut history, &mut rng);
        let (kind, _) = recipe.poll_request(0xa, 1000, &mut rng, &mut history).unwrap();
        assert_eq!(kind, OpKind::GetData { path: "/election".into() });
        reply(
            &mut recipe,
            Outcome::Ok(Value::Data { data: b"term 6 /x".to_vec(), version: 9 }),
            &mut history,
            &mut rng,
        );
        let (kind, _) = recipe.poll_request(0xa, 1000, &mut rng, &mut history).unwrap();
        assert_eq!(
            kind,
            OpKind::SetData {
                path: "/election".into(),
                data: b"term 7 /election/c1-a-n-0000000002".to_vec(),
                version: 9
            }
        );
        reply(&mut recipe, Outcome::Ok(Value::Version(10)), &mut history, &mut rng);
        assert!(recipe.holds());
        assert!(matches!(history.observations.last().unwrap().kind, ObservationKind::RecipeHeld { term: Some(7), .. }));
        recipe.session_ended(2000, &mut rng, &mut history);
        assert!(!recipe.holds());
        assert!(matches!(history.observations.last().unwrap().kind, ObservationKind::RecipeReleased { .. }));
    }
}
