//! A client's workload: which operation it issues next (drawn from the seed, weighted by the
//! run's [`Workload`](crate::config::Workload)), and the requests each operation is made of.

use zk_core::proto::{
    AddWatchMode, AddWatchRequest, CheckVersionRequest, CreateMode, CreateRequest, DeleteRequest, ExistsRequest,
    GetChildrenRequest, GetDataRequest, MultiOp, OpCode, Request, SetDataRequest, SyncRequest,
};
use zk_core::zab::ServerId;

use crate::history::{History, OpKind};
use crate::rng::SimRng;

use super::{Client, Link, Mode, Purpose, WatchRequest};

/// An operation: what the history records, the requests that carry it (a sync+read is two)
/// and the watch its last request leaves.
type Built = (OpKind, Vec<Request>, Option<WatchRequest>);

impl Client {
    fn key(&self, rng: &mut SimRng) -> String {
        format!("/k{}", rng.below(self.settings.keys as u64))
    }

    fn value(&mut self) -> Vec<u8> {
        self.values_written += 1;
        format!("c{}:{}", self.id, self.values_written).into_bytes()
    }

    pub(super) fn issue(&mut self, now_ms: u64, rng: &mut SimRng, history: &mut History) {
        let Link::Connected { server, .. } = self.link else { unreachable!("checked by may_issue") };
        let session_id = self.session.as_ref().map_or(0, |session| session.id);
        // In the liveness phase a client first makes sure of a write, then of a sync+read.
        let forced = match self.mode {
            Mode::Liveness { write_ms: None, .. } => Some(1),
            Mode::Liveness { read_ms: None, .. } => Some(7),
            _ => None,
        };
        // Half of the turns of a client that runs a recipe go to the recipe, when it has a
        // request to make.
        if forced.is_none()
            && self.recipe.is_some()
            && rng.percent(50)
            && self.issue_recipe(server, session_id, now_ms, rng, history)
        {
            return;
        }
        // create, setData, conditional setData, delete, getData, exists, getChildren,
        // sync+read, ephemeral, sequential, parents, multi, addWatch, closeSession
        let weights = match self.settings.workload {
            crate::config::Workload::Mixed => [8, 20, 8, 4, 10, 5, 4, 16, 6, 5, 2, 5, 2, 1],
            crate::config::Workload::ReadHeavy => [2, 4, 1, 1, 10, 5, 4, 40, 1, 1, 1, 1, 2, 1],
        };
        let choice = forced.unwrap_or_else(|| rng.weighted(&weights).expect("weights are positive"));
        // Reads leave a watch half of the time.
        let watch = matches!(choice, 4..=6) && rng.percent(50);
        let (kind, requests, mut watch_request) = match choice {
            0..=3 | 8..=11 => {
                let (kind, requests) = self.write(choice, rng);
                (kind, requests, None)
            }
            _ => self.read_or_other(choice, watch, rng),
        };
        if watch {
            let path = kind.path().expect("a read names its path").to_owned();
            watch_request = Some(WatchRequest { path, mode: None });
        }
        let index = history.invoke(self.id, session_id, server, kind, now_ms);
        self.open_ops.insert(index);
        let last = requests.len() - 1;
        for (position, request) in requests.into_iter().enumerate() {
            let purpose = if position == last { Purpose::Op(index) } else { Purpose::SyncHalf(index) };
            let watch = if position == last { watch_request.take() } else { None };
            let xid = self.send(request, purpose, watch, now_ms, history);
            history.operations[index].xid = Some(xid);
        }
        if history.operations[index].kind == OpKind::CloseSession {
            self.closing = Some(index);
        }
    }

    /// The recipe's turn: issues its next request, if it has one to make.
    fn issue_recipe(
        &mut self,
        server: ServerId,
        session_id: i64,
        now_ms: u64,
        rng: &mut SimRng,
        history: &mut History,
    ) -> bool {
        let recipe = self.recipe.as_mut().expect("checked by the caller");
        let Some((kind, request)) = recipe.poll_request(session_id, now_ms, rng, history) else { return false };
        let watch = match &request {
            Request::Exists(ExistsRequest { path, watch: true }) => {
                Some(WatchRequest { path: path.clone(), mode: None })
            }
            _ => None,
        };
        let index = history.invoke(self.id, session_id, server, kind, now_ms);
        self.open_ops.insert(index);
        self.recipe_op = Some(index);
        let xid = self.send(request, Purpose::Op(index), watch, now_ms, history);
        history.operations[index].xid = Some(xid);
        true
    }

    /// A write of the workload: create, setData (conditional or not), delete, ephemeral,
    /// sequential, parents or multi.
    fn write(&mut self, choice: usize, rng: &mut SimRng) -> (OpKind, Vec<Request>) {
        let acl = zk_core::acl::open_acl_unsafe();
        let create = |path: String, data: Vec<u8>, mode: CreateMode| {
            Request::Create(CreateRequest { path, data: Some(data), acl: acl.clone(), flags: mode.code() })
        };
        match choice {
            0 => {
                let (path, data) = (self.key(rng), self.value());
                let request = create(path.clone(), data.clone(), CreateMode::Persistent);
                (OpKind::Create { path, data, mode: CreateMode::Persistent }, vec![request])
            }
            1 | 2 => {
                let (path, data) = (self.key(rng), self.value());
                let version = if choice == 2 { self.known_versions.get(&path).copied().unwrap_or(0) } else { -1 };
                let request =
                    Request::SetData(SetDataRequest { path: path.clone(), data: Some(data.clone()), version });
                (OpKind::SetData { path, data, version }, vec![request])
            }
            3 => {
                let path = self.key(rng);
                let version = if rng.percent(50) { self.known_versions.get(&path).copied().unwrap_or(0) } else { -1 };
                let request = Request::Delete(DeleteRequest { path: path.clone(), version });
                (OpKind::Delete { path, version }, vec![request])
            }
            8 => {
                let path = format!("/e/c{}-{}", self.id, self.values_written);
                let data = self.value();
                let request = create(path.clone(), data.clone(), CreateMode::Ephemeral);
                (OpKind::Create { path, data, mode: CreateMode::Ephemeral }, vec![request])
            }
            9 => {
                let mode =
                    if rng.percent(50) { CreateMode::EphemeralSequential } else { CreateMode::PersistentSequential };
                let (path, data) = (String::from("/s/n-"), self.value());
                let request = create(path.clone(), data.clone(), mode);
                (OpKind::Create { path, data, mode }, vec![request])
            }
            10 => {
                let path = (*rng.pick(&["/e", "/s", "/m"])).to_owned();
                let request = create(path.clone(), Vec::new(), CreateMode::Persistent);
                (OpKind::Create { path, data: Vec::new(), mode: CreateMode::Persistent }, vec![request])
            }
            11 => {
                let created = format!("/m/c{}-{}", self.id, self.values_written);
                let previous = format!("/m/c{}-{}", self.id, self.values_written.saturating_sub(1));
                let data = self.value();
                let ops = vec![
                    MultiOp::Check(CheckVersionRequest { path: "/m".into(), version: -1 }),
                    MultiOp::Create {
                        op: OpCode::Create,
                        request: CreateRequest { path: created.clone(), data: Some(data), acl: acl.clone(), flags: 0 },
                    },
                    MultiOp::Delete(DeleteRequest { path: previous.clone(), version: -1 }),
                ];
                (OpKind::Multi { paths: vec![created, previous] }, vec![Request::Multi(ops)])
            }
            _ => unreachable!("not a write of the workload: {choice}"),
        }
    }

    /// The rest of the workload: getData, exists, getChildren (leaving a watch when `watch`),
    /// sync+read, addWatch (its watch returned) and closeSession.
    fn read_or_other(&mut self, choice: usize, watch: bool, rng: &mut SimRng) -> Built {
        let (kind, request) = match choice {
            4 => {
                let path = self.key(rng);
                let request = Request::GetData(GetDataRequest { path: path.clone(), watch });
                (OpKind::GetData { path }, request)
            }
            5 => {
                let path = self.key(rng);
                let request = Request::Exists(ExistsRequest { path: path.clone(), watch });
                (OpKind::Exists { path }, request)
            }
            6 => {
                let path = (*rng.pick(&["/", "/e", "/s", "/m"])).to_owned();
                let request = Request::GetChildren(GetChildrenRequest { path: path.clone(), watch });
                (OpKind::GetChildren { path }, request)
            }
            7 => {
                let path = self.key(rng);
                let sync = Request::Sync(SyncRequest { path: path.clone() });
                let read = Request::GetData(GetDataRequest { path: path.clone(), watch: false });
                let requests = if self.settings.planted == Some(crate::config::PlantedBug::SyncSkipped) {
                    vec![read]
                } else {
                    vec![sync, read]
                };
                return (OpKind::SyncRead { path }, requests, None);
            }
            12 => {
                let path = match rng.below(3) {
                    0 => self.key(rng),
                    _ => (*rng.pick(&["/", "/e", "/s", "/m"])).to_owned(),
                };
                let mode = if rng.percent(50) { AddWatchMode::Persistent } else { AddWatchMode::PersistentRecursive };
                let watch_request = WatchRequest { path: path.clone(), mode: Some(mode) };
                let request = Request::AddWatch(AddWatchRequest { path: path.clone(), mode: mode.code() });
                return (OpKind::AddWatch { path, mode }, vec![request], Some(watch_request));
            }
            _ => (OpKind::CloseSession, Request::CloseSession),
        };
        (kind, vec![request], None)
    }
}
