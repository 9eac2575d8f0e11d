//! Request preparation: turns a client's write request into the txn to propose, doing every
//! check ZooKeeper's `PrepRequestProcessor` does first (path, ACL, existence, version,
//! ephemeral parent, quota, TTL and container rules) in ZooKeeper's order, so that the
//! same request fails with the same error.
//!
//! The leader prepares txns ahead of their commit. A [`Preparer`] therefore keeps the
//! outstanding changes (ZooKeeper's `ChangeRecord`s): the state each touched path will have
//! once every prepared txn is applied. A sequential create, a version check or an
//! existence check sees the effect of writes that are prepared but not yet committed.
//! [`Preparer::committed`] drops the records a commit has made redundant.
//!
//! A request that fails its checks still becomes a txn, [`Txn::Error`], so that its reply
//! keeps its place in the session's order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::acl;
use crate::path;
use crate::proto::{perms, Acl, CreateMode, CreateRequest, CreateTtlRequest, Id, MultiOp, OpCode, Request};
use crate::tree::{DataTree, NodeKind, PersistedStat};
use crate::txn::{CreateKind, Txn};
use crate::{ErrorCode, ZkResult};

/// The largest TTL ZooKeeper accepts (`EphemeralType.TTL.maxValue()`): the low 40 bits.
pub const TTL_MS_MAX: i64 = 0x0000_00ff_ffff_ffff;

/// Settings that change how requests are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareConfig {
    /// `extendedTypesEnabled`: TTL nodes are refused with Unimplemented without it.
    pub extended_types_enabled: bool,
    /// `zookeeper.enforceQuota`: hard quotas refuse writes only when it is on.
    pub enforce_quota: bool,
    /// `reconfigEnabled`: reconfig is refused with ReconfigDisabled without it.
    pub reconfig_enabled: bool,
    /// The largest node data accepted, in bytes (jute.maxbuffer); larger is BadArguments.
    pub data_len_max: usize,
    /// The most outstanding change records kept (prepared, uncommitted paths); a request
    /// that would exceed it is refused with ThrottledOp rather than buffered.
    pub outstanding_changes_max: usize,
    /// The authentication providers whose schemes ACLs may name.
    pub providers: acl::Providers,
}

impl Default for PrepareConfig {
    fn default() -> Self {
        PrepareConfig {
            extended_types_enabled: false,
            enforce_quota: false,
            reconfig_enabled: false,
            data_len_max: crate::proto::JUTE_MAXBUFFER_DEFAULT,
            outstanding_changes_max: 100_000,
            providers: acl::Providers::default(),
        }
    }
}

/// Who sent a request and where it will stand in the order.
#[derive(Clone, Copy, Debug)]
pub struct RequestContext<'a> {
    pub session_id: i64,
    /// The identities the connection has authenticated as (ip, digest, super...).
    pub auth_ids: &'a [Id],
    /// The zxid the txn will carry.
    pub zxid: i64,
}

/// The state a path will have after every prepared txn: `None` means deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ChangeRecord {
    zxid: i64,
    node: Option<PendingNode>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PendingNode {
    stat: PersistedStat,
    kind: NodeKind,
    child_count: usize,
    /// Shared with the tree's ACL cache (or the txn that sets it): never copied per record.
    acl: Arc<[Acl]>,
    data_len: usize,
}

/// Prepares write requests into txns against the committed tree plus outstanding changes.
#[derive(Clone, Debug, Default)]
pub struct Preparer {
    config: PrepareConfig,
    outstanding: BTreeMap<String, ChangeRecord>,
    /// (zxid, path) in preparation order, to drop records as their txns commit.
    order: VecDeque<(i64, String)>,
    /// While a multi is prepared: what each of its changes replaced, to roll them back if
    /// a later op fails.
    undo: Option<Vec<(String, Option<ChangeRecord>)>>,
}

impl Preparer {
    pub fn new(config: PrepareConfig) -> Self {
        Preparer { config, outstanding: BTreeMap::new(), order: VecDeque::new(), undo: None }
    }

    pub fn config(&self) -> &PrepareConfig {
        &self.config
    }

    /// Outstanding change records (paths touched by prepared, uncommitted txns).
    pub fn outstanding_len(&self) -> usize {
        self.outstanding.len()
    }

    /// Forgets every outstanding change (a leader that steps down, say).
    pub fn clear(&mut self) {
        self.outstanding.clear();
        self.order.clear();
    }

    /// Drops change records made by txns up to and including `zxid`, which the tree now
    /// reflects (ZooKeeper's `FinalRequestProcessor` does this as it applies).
    pub fn committed(&mut self, zxid: i64) {
        while let Some((record_zxid, _)) = self.order.front() {
            if *record_zxid > zxid {
                break;
            }
            let (record_zxid, record_path) = self.order.pop_front().expect("front exists");
            if self.outstanding.get(&record_path).is_some_and(|record| record.zxid == record_zxid) {
                self.outstanding.remove(&record_path);
            }
        }
    }

    /// Whether a request is a write, i.e. goes through preparation and the txn order.
    pub fn is_write(request: &Request) -> bool {
        matches!(
            request,
            Request::Create(_)
                | Request::Create2(_)
                | Request::CreateContainer(_)
                | Request::CreateTtl(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::CloseSession
        )
    }

    /// Prepares a write request. Always yields a txn: the change, or the error it failed
    /// with as [`Txn::Error`]. A non-write request is a caller bug and yields
    /// `Txn::Error(Unimplemented)`.
    pub fn prepare(&mut self, tree: &DataTree, context: &RequestContext<'_>, request: Request) -> Txn {
        if self.outstanding.len() >= self.config.outstanding_changes_max {
            return Txn::Error(ErrorCode::ThrottledOp);
        }
        match request {
            Request::Multi(ops) => self.prepare_multi(tree, context, ops),
            Request::CloseSession => self.prepare_close_session(tree, context),
            _ => self.prepare_one(tree, context, request).unwrap_or_else(Txn::Error),
        }
    }

    /// Prepares a txn that deletes an empty container or an expired TTL node, as
    /// ZooKeeper's `ContainerManager` asks for with deleteContainer. Fails (and the
    /// caller proposes nothing) when the node is gone, has children, or is a normal
    /// ephemeral.
    pub fn prepare_delete_container(&mut self, tree: &DataTree, node_path: &str, zxid: i64) -> ZkResult<Txn> {
        let parent_path = parent_of_deletable(node_path)?;
        let node = self.record(tree, node_path).ok_or(ErrorCode::NoNode)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if node.kind.is_ephemeral() {
            return Err(ErrorCode::BadVersion);
        }
        let parent = self.record(tree, parent_path).ok_or(ErrorCode::NoNode)?;
        self.record_removal(parent_path, parent, node_path, zxid);
        Ok(Txn::Delete { op: OpCode::DeleteContainer, path: node_path.to_owned() })
    }

    /// Takes the request by value: its data moves into the txn rather than being copied.
    fn prepare_one(&mut self, tree: &DataTree, context: &RequestContext<'_>, request: Request) -> ZkResult<Txn> {
        match request {
            Request::Create(create) => self.prepare_create(tree, context, OpCode::Create, CreateSpec::plain(create)),
            Request::Create2(create) => self.prepare_create(tree, context, OpCode::Create2, CreateSpec::plain(create)),
            Request::CreateContainer(create) => {
                self.prepare_create(tree, context, OpCode::CreateContainer, CreateSpec::plain(create))
            }
            Request::CreateTtl(create) => {
                self.prepare_create(tree, context, OpCode::CreateTtl, CreateSpec::ttl(create))
            }
            Request::Delete(delete) => self.prepare_delete(tree, context, &delete.path, delete.version),
            Request::SetData(set) => self.prepare_set_data(tree, context, &set.path, set.data, set.version),
            Request::SetAcl(set) => self.prepare_set_acl(tree, context, &set.path, &set.acl, set.version),
            Request::Check(check) => self.prepare_check(tree, context, &check.path, check.version),
            Request::Reconfig(_) => {
                // Dynamic reconfiguration is not built yet: with reconfigEnabled=false this
                // is exactly ZooKeeper's answer; with it on, zkd says it is missing.
                if self.config.reconfig_enabled {
                    Err(ErrorCode::Unimplemented)
                } else {
                    Err(ErrorCode::ReconfigDisabled)
                }
            }
            _ => Err(ErrorCode::Unimplemented),
        }
    }

    fn prepare_create(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        op: OpCode,
        spec: CreateSpec,
    ) -> ZkResult<Txn> {
        let mode = CreateMode::from_code(spec.flags).ok_or(ErrorCode::BadArguments)?;
        if mode.is_ttl() && !self.config.extended_types_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        validate_ttl(mode, spec.ttl_ms)?;
        let last_slash = spec.path.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if spec.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = if last_slash == 0 { "/" } else { &spec.path[..last_slash] };
        let acl = acl::fixup_acl(self.config.providers, context.auth_ids, &spec.acl)?;
        let mut parent = self.record(tree, parent_path).ok_or(ErrorCode::NoNode)?;
        acl::check_acl(&parent.acl, perms::CREATE, context.auth_ids)?;
        let mut node_path = spec.path.to_owned();
        if mode.is_sequential() {
            node_path.push_str(&format!("{:010}", parent.stat.cversion));
        }
        path::validate_path(&node_path).map_err(|_| ErrorCode::BadArguments)?;
        if spec.data.as_ref().is_some_and(|data| data.len() > self.config.data_len_max) {
            return Err(ErrorCode::BadArguments);
        }
        if self.record(tree, &node_path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if parent.kind.is_ephemeral() {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let data_len = spec.data.as_ref().map_or(0, Vec::len);
        if self.config.enforce_quota {
            tree.check_quota(&node_path, data_len as i64, 1)?;
        }
        let kind = match op {
            OpCode::CreateContainer => CreateKind::Container,
            OpCode::CreateTtl => CreateKind::Ttl { ttl_ms: spec.ttl_ms },
            _ if mode.is_ephemeral() => CreateKind::Ephemeral,
            _ => CreateKind::Persistent,
        };
        let node_kind = kind.node_kind(context.session_id);
        let parent_cversion = parent.stat.cversion + 1;
        parent.child_count += 1;
        parent.stat.cversion = parent_cversion;
        parent.stat.pzxid = context.zxid;
        self.add_change(parent_path, context.zxid, Some(parent));
        let node = PendingNode {
            stat: PersistedStat::created(context.zxid, 0),
            kind: node_kind,
            child_count: 0,
            acl: acl.as_slice().into(),
            data_len,
        };
        self.add_change(&node_path, context.zxid, Some(node));
        Ok(Txn::Create { op, path: node_path, data: spec.data, acl, kind, parent_cversion })
    }

    fn prepare_delete(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        node_path: &str,
        version: i32,
    ) -> ZkResult<Txn> {
        let parent_path = parent_of_deletable(node_path)?;
        let parent = self.record(tree, parent_path).ok_or(ErrorCode::NoNode)?;
        acl::check_acl(&parent.acl, perms::DELETE, context.auth_ids)?;
        let node = self.record(tree, node_path).ok_or(ErrorCode::NoNode)?;
        check_and_increment_version(node.stat.version, version)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.record_removal(parent_path, parent, node_path, context.zxid);
        Ok(Txn::Delete { op: OpCode::Delete, path: node_path.to_owned() })
    }

    fn prepare_set_data(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        node_path: &str,
        data: crate::proto::Data,
        version: i32,
    ) -> ZkResult<Txn> {
        path::validate_path(node_path).map_err(|_| ErrorCode::BadArguments)?;
        let mut node = self.record(tree, node_path).ok_or(ErrorCode::NoNode)?;
        acl::check_acl(&node.acl, perms::WRITE, context.auth_ids)?;
        let data_len = data.as_ref().map_or(0, Vec::len);
        if data_len > self.config.data_len_max {
            return Err(ErrorCode::BadArguments);
        }
        if self.config.enforce_quota {
            tree.check_quota(node_path, data_len as i64 - node.data_len as i64, 0)?;
        }
        let new_version = check_and_increment_version(node.stat.version, version)?;
        node.stat.version = new_version;
        node.stat.mzxid = context.zxid;
        node.data_len = data_len;
        self.add_change(node_path, context.zxid, Some(node));
        Ok(Txn::SetData { path: node_path.to_owned(), data, version: new_version })
    }

    fn prepare_set_acl(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        node_path: &str,
        requested_acl: &[Acl],
        version: i32,
    ) -> ZkResult<Txn> {
        path::validate_path(node_path).map_err(|_| ErrorCode::BadArguments)?;
        let new_acl = acl::fixup_acl(self.config.providers, context.auth_ids, requested_acl)?;
        let mut node = self.record(tree, node_path).ok_or(ErrorCode::NoNode)?;
        acl::check_acl(&node.acl, perms::ADMIN, context.auth_ids)?;
        let new_version = check_and_increment_version(node.stat.aversion, version)?;
        node.stat.aversion = new_version;
        node.acl = new_acl.as_slice().into();
        self.add_change(node_path, context.zxid, Some(node));
        Ok(Txn::SetAcl { path: node_path.to_owned(), acl: new_acl, version: new_version })
    }

    fn prepare_check(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        node_path: &str,
        version: i32,
    ) -> ZkResult<Txn> {
        path::validate_path(node_path).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.record(tree, node_path).ok_or(ErrorCode::NoNode)?;
        acl::check_acl(&node.acl, perms::READ, context.auth_ids)?;
        let new_version = check_and_increment_version(node.stat.version, version)?;
        Ok(Txn::Check { path: node_path.to_owned(), version: new_version })
    }

    /// Prepares a multi: each op against the changes of the ops before it, all with the
    /// multi's zxid. At the first failure the multi's own change records are rolled back,
    /// the failing op becomes an error txn and every later op a RuntimeInconsistency
    /// error txn, as ZooKeeper does.
    fn prepare_multi(&mut self, tree: &DataTree, context: &RequestContext<'_>, ops: Vec<MultiOp>) -> Txn {
        let saved_order_len = self.order.len();
        self.undo = Some(Vec::new());
        let mut txns = Vec::with_capacity(ops.len());
        let mut failed = false;
        for op in ops {
            if failed {
                txns.push(Txn::Error(ErrorCode::RuntimeInconsistency));
                continue;
            }
            let prepared = match op {
                MultiOp::Create { op, request } => self.prepare_create(tree, context, op, CreateSpec::plain(request)),
                MultiOp::CreateTtl(request) => {
                    self.prepare_create(tree, context, OpCode::CreateTtl, CreateSpec::ttl(request))
                }
                MultiOp::Delete(request) => self.prepare_delete(tree, context, &request.path, request.version),
                MultiOp::SetData(request) => {
                    self.prepare_set_data(tree, context, &request.path, request.data, request.version)
                }
                MultiOp::Check(request) => self.prepare_check(tree, context, &request.path, request.version),
                MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::BadArguments),
            };
            match prepared {
                Ok(txn) => txns.push(txn),
                Err(err) => {
                    failed = true;
                    for (record_path, replaced) in self.undo.take().unwrap_or_default().into_iter().rev() {
                        match replaced {
                            Some(record) => self.outstanding.insert(record_path, record),
                            None => self.outstanding.remove(&record_path),
                        };
                    }
                    self.order.truncate(saved_order_len);
                    txns.push(Txn::Error(err));
                }
            }
        }
        self.undo = None;
        Txn::Multi(txns)
    }

    /// Closes a session: the ephemerals to delete are the committed ones plus those a
    /// prepared create will add, minus those a prepared delete will remove.
    fn prepare_close_session(&mut self, tree: &DataTree, context: &RequestContext<'_>) -> Txn {
        let mut paths: BTreeSet<String> = tree.ephemerals(context.session_id);
        for (record_path, record) in &self.outstanding {
            match &record.node {
                None => {
                    paths.remove(record_path);
                }
                Some(node) if node.kind == (NodeKind::Ephemeral { owner: context.session_id }) => {
                    paths.insert(record_path.clone());
                }
                Some(_) => {}
            }
        }
        for node_path in &paths {
            match path::parent(node_path).and_then(|parent_path| Some((parent_path, self.record(tree, parent_path)?))) {
                Some((parent_path, parent)) => self.record_removal(parent_path, parent, node_path, context.zxid),
                None => self.add_change(node_path, context.zxid, None),
            }
        }
        Txn::CloseSession { paths_to_delete: paths.into_iter().collect() }
    }

    /// The state of `node_path` after every prepared txn: the outstanding record if there
    /// is one, else the committed node.
    fn record(&self, tree: &DataTree, node_path: &str) -> Option<PendingNode> {
        if let Some(record) = self.outstanding.get(node_path) {
            return record.node.clone();
        }
        let node = tree.get(node_path)?;
        Some(PendingNode {
            stat: node.stat,
            kind: node.kind,
            child_count: node.num_children as usize,
            acl: tree.acl_shared(node),
            data_len: node.data_length(),
        })
    }

    /// Records that `node_path` goes away: its parent has one child fewer and a new pzxid.
    fn record_removal(&mut self, parent_path: &str, mut parent: PendingNode, node_path: &str, zxid: i64) {
        parent.child_count = parent.child_count.saturating_sub(1);
        parent.stat.pzxid = zxid;
        self.add_change(parent_path, zxid, Some(parent));
        self.add_change(node_path, zxid, None);
    }

    fn add_change(&mut self, node_path: &str, zxid: i64, node: Option<PendingNode>) {
        let replaced = self.outstanding.insert(node_path.to_owned(), ChangeRecord { zxid, node });
        if let Some(undo) = &mut self.undo {
            undo.push((node_path.to_owned(), replaced));
        }
        self.order.push_back((zxid, node_path.to_owned()));
    }
}

/// The fields of create and createTTL requests.
struct CreateSpec {
    path: String,
    data: crate::proto::Data,
    acl: Vec<Acl>,
    flags: i32,
    /// -1 when the request carries no TTL.
    ttl_ms: i64,
}

impl CreateSpec {
    fn plain(request: CreateRequest) -> Self {
        CreateSpec { path: request.path, data: request.data, acl: request.acl, flags: request.flags, ttl_ms: -1 }
    }

    fn ttl(request: CreateTtlRequest) -> Self {
        CreateSpec {
            path: request.path,
            data: request.data,
            acl: request.acl,
            flags: request.flags,
            ttl_ms: request.ttl,
        }
    }
}

/// ZooKeeper's `EphemeralType.validateTTL`: a TTL mode needs 0 < ttl <= max; any other
/// mode must not carry a TTL.
fn validate_ttl(mode: CreateMode, ttl_ms: i64) -> ZkResult<()> {
    if mode.is_ttl() {
        if ttl_ms <= 0 || ttl_ms > TTL_MS_MAX {
            return Err(ErrorCode::BadArguments);
        }
    } else if ttl_ms >= 0 {
        return Err(ErrorCode::BadArguments);
    }
    Ok(())
}

/// ZooKeeper's `getParentPathAndValidate`: the system nodes and paths without a slash or
/// with a NUL cannot be deleted.
fn parent_of_deletable(node_path: &str) -> ZkResult<&str> {
    let last_slash = node_path.rfind('/').ok_or(ErrorCode::BadArguments)?;
    if node_path.contains('\0') || DataTree::is_special_path(node_path) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(if last_slash == 0 { "/" } else { &node_path[..last_slash] })
}

/// ZooKeeper's `checkAndIncVersion`: -1 matches any version; the next version skips -1
/// when it wraps (ZOOKEEPER-4743), since -1 would then mean "any".
pub fn check_and_increment_version(current: i32, expected: i32) -> ZkResult<i32> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    let next = current.wrapping_add(1);
    Ok(if next == -1 { 0 } else { next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{CheckVersionRequest, DeleteRequest, SetAclRequest, SetDataRequest};
    use crate::txn::{apply, TxnHeader};

    fn open() -> Vec<Acl> {
        acl::open_acl_unsafe()
    }

    fn create_request(node_path: &str, flags: i32) -> CreateRequest {
        CreateRequest { path: node_path.into(), data: Some(b"v".to_vec()), acl: open(), flags }
    }

    struct Harness {
        tree: DataTree,
        preparer: Preparer,
        zxid: i64,
        ids: Vec<Id>,
    }

    impl Harness {
        fn new() -> Self {
            Harness {
                tree: DataTree::new(),
                preparer: Preparer::new(PrepareConfig::default()),
                zxid: 0,
                ids: Vec::new(),
            }
        }

        fn prepare(&mut self, request: &Request) -> Txn {
            self.zxid += 1;
            let context = RequestContext { session_id: 0x55, auth_ids: &self.ids, zxid: self.zxid };
            self.preparer.prepare(&self.tree, &context, request.clone())
        }

        fn run(&mut self, request: &Request) -> Txn {
            let txn = self.prepare(request);
            let header = TxnHeader { session_id: 0x55, cxid: 1, zxid: self.zxid, time_ms: 10 };
            apply(&mut self.tree, &header, &txn);
            self.preparer.committed(self.zxid);
            txn
        }
    }

    #[test]
    fn version_wraps_past_minus_one() {
        assert_eq!(check_and_increment_version(3, -1), Ok(4));
        assert_eq!(check_and_increment_version(3, 3), Ok(4));
        assert_eq!(check_and_increment_version(3, 2), Err(ErrorCode::BadVersion));
        assert_eq!(check_and_increment_version(-2, -1), Ok(0));
        assert_eq!(check_and_increment_version(i32::MAX, -1), Ok(i32::MIN));
    }

    #[test]
    fn sequential_names_see_prepared_but_uncommitted_creates() {
        let mut harness = Harness::new();
        harness.run(&Request::Create(create_request("/q", 0)));
        let first = harness.prepare(&Request::Create(create_request("/q/n-", 2)));
        let second = harness.prepare(&Request::Create(create_request("/q/n-", 2)));
        let Txn::Create { path: first, parent_cversion: first_cversion, .. } = first else { panic!("{first:?}") };
        let Txn::Create { path: second, parent_cversion: second_cversion, .. } = second else { panic!("{second:?}") };
        assert_eq!(first, "/q/n-0000000000");
        assert_eq!(second, "/q/n-0000000001");
        assert_eq!((first_cversion, second_cversion), (1, 2));
    }

    #[test]
    fn create_checks_run_in_zookeepers_order() {
        let mut harness = Harness::new();
        harness.run(&Request::Create(create_request("/e", 1)));
        let cases = [
            (create_request("/x", 9), ErrorCode::BadArguments),
            (create_request("/t", 5), ErrorCode::Unimplemented),
            (create_request("no-slash", 0), ErrorCode::BadArguments),
            (CreateRequest { acl: Vec::new(), ..create_request("/a", 0) }, ErrorCode::InvalidAcl),
            (create_request("/missing/a", 0), ErrorCode::NoNode),
            (create_request("/missing/", 0), ErrorCode::NoNode),
            (create_request("/e/", 0), ErrorCode::BadArguments),
            (create_request("/e", 0), ErrorCode::NodeExists),
            (create_request("/e/child", 0), ErrorCode::NoChildrenForEphemerals),
        ];
        for (request, expected) in cases {
            let txn = harness.prepare(&Request::Create(request.clone()));
            assert_eq!(txn, Txn::Error(expected), "{request:?}");
        }
    }

    #[test]
    fn ttl_nodes_need_extended_types_and_a_valid_ttl() {
        let mut harness = Harness::new();
        harness.preparer = Preparer::new(PrepareConfig { extended_types_enabled: true, ..PrepareConfig::default() });
        let ttl = |ttl, flags| {
            Request::CreateTtl(CreateTtlRequest { path: "/t".into(), data: None, acl: open(), flags, ttl })
        };
        assert_eq!(harness.prepare(&ttl(0, 5)), Txn::Error(ErrorCode::BadArguments));
        assert_eq!(harness.prepare(&ttl(TTL_MS_MAX + 1, 5)), Txn::Error(ErrorCode::BadArguments));
        assert_eq!(harness.prepare(&ttl(100, 0)), Txn::Error(ErrorCode::BadArguments));
        let txn = harness.run(&ttl(100, 5));
        assert!(matches!(txn, Txn::Create { kind: CreateKind::Ttl { ttl_ms: 100 }, .. }), "{txn:?}");
    }

    #[test]
    fn delete_checks_version_children_and_special_paths() {
        let mut harness = Harness::new();
        harness.run(&Request::Create(create_request("/a", 0)));
        harness.run(&Request::Create(create_request("/a/b", 0)));
        let delete = |node_path: &str, version| Request::Delete(DeleteRequest { path: node_path.into(), version });
        assert_eq!(harness.prepare(&delete("/a", -1)), Txn::Error(ErrorCode::NotEmpty));
        assert_eq!(harness.prepare(&delete("/a/b", 3)), Txn::Error(ErrorCode::BadVersion));
        assert_eq!(harness.prepare(&delete("/zookeeper", -1)), Txn::Error(ErrorCode::BadArguments));
        assert_eq!(harness.prepare(&delete("/", -1)), Txn::Error(ErrorCode::BadArguments));
        assert_eq!(harness.prepare(&delete("/nope", -1)), Txn::Error(ErrorCode::NoNode));
        // Once /a/b's delete is prepared, /a counts as empty before either commits.
        assert!(matches!(harness.prepare(&delete("/a/b", 0)), Txn::Delete { .. }));
        assert!(matches!(harness.prepare(&delete("/a", 0)), Txn::Delete { .. }));
    }

    #[test]
    fn set_data_and_set_acl_and_check_versions() {
        let mut harness = Harness::new();
        harness.run(&Request::Create(create_request("/a", 0)));
        let set = |version| Request::SetData(SetDataRequest { path: "/a".into(), data: None, version });
        assert_eq!(harness.prepare(&set(5)), Txn::Error(ErrorCode::BadVersion));
        assert_eq!(harness.run(&set(0)), Txn::SetData { path: "/a".into(), data: None, version: 1 });
        let check = |version| Request::Check(CheckVersionRequest { path: "/a".into(), version });
        assert_eq!(harness.prepare(&check(0)), Txn::Error(ErrorCode::BadVersion));
        assert!(matches!(harness.prepare(&check(1)), Txn::Check { .. }));
        let set_acl = |version| Request::SetAcl(SetAclRequest { path: "/a".into(), acl: open(), version });
        assert_eq!(harness.prepare(&set_acl(1)), Txn::Error(ErrorCode::BadVersion));
        assert_eq!(harness.run(&set_acl(0)), Txn::SetAcl { path: "/a".into(), acl: open(), version: 1 });
        let too_big = Request::SetData(SetDataRequest {
            path: "/a".into(),
            data: Some(vec![0; crate::proto::JUTE_MAXBUFFER_DEFAULT + 1]),
            version: -1,
        });
        assert_eq!(harness.prepare(&too_big), Txn::Error(ErrorCode::BadArguments));
    }

    #[test]
    fn failed_multi_rolls_back_its_own_changes() {
        let mut harness = Harness::new();
        let ops = vec![
            MultiOp::Create { op: OpCode::Create, request: create_request("/m", 0) },
            MultiOp::Check(CheckVersionRequest { path: "/m".into(), version: 7 }),
            MultiOp::Delete(DeleteRequest { path: "/m".into(), version: -1 }),
        ];
        let txn = harness.prepare(&Request::Multi(ops));
        let Txn::Multi(txns) = txn else { panic!("multi") };
        assert!(matches!(txns[0], Txn::Create { .. }));
        assert_eq!(txns[1], Txn::Error(ErrorCode::BadVersion));
        assert_eq!(txns[2], Txn::Error(ErrorCode::RuntimeInconsistency));
        assert_eq!(harness.preparer.outstanding_len(), 0);
        // The rolled-back create left nothing behind: /m can be created afresh.
        assert!(matches!(harness.prepare(&Request::Create(create_request("/m", 0))), Txn::Create { .. }));
    }

    #[test]
    fn failed_multi_restores_the_records_it_replaced() {
        let mut harness = Harness::new();
        harness.run(&Request::Create(create_request("/m", 0)));
        let set = |version| SetDataRequest { path: "/m".into(), data: Some(b"x".to_vec()), version };
        // Prepared, not committed: the outstanding record says version 1.
        assert!(matches!(harness.prepare(&Request::SetData(set(0))), Txn::SetData { version: 1, .. }));
        let ops = vec![
            MultiOp::SetData(set(1)),
            MultiOp::Create { op: OpCode::Create, request: create_request("/m/c", 0) },
            MultiOp::Check(CheckVersionRequest { path: "/m".into(), version: 9 }),
        ];
        let Txn::Multi(txns) = harness.prepare(&Request::Multi(ops)) else { panic!("multi") };
        assert_eq!(txns[2], Txn::Error(ErrorCode::BadVersion));
        // Back to the record before the multi: neither the multi's version 2 nor the tree's 0.
        assert_eq!(harness.prepare(&Request::SetData(set(2))), Txn::Error(ErrorCode::BadVersion));
        assert_eq!(harness.prepare(&Request::SetData(set(0))), Txn::Error(ErrorCode::BadVersion));
        assert!(matches!(harness.prepare(&Request::SetData(set(1))), Txn::SetData { version: 2, .. }));
        // And the rolled-back create of /m/c left the parent's child count as it was.
        assert_eq!(
            harness.prepare(&Request::Delete(DeleteRequest { path: "/m".into(), version: -1 })),
            Txn::Delete { op: OpCode::Delete, path: "/m".into() }
        );
    }

    #[test]
    fn close_session_deletes_committed_and_prepared_ephemerals() {
        let mut harness = Harness::new();
        harness.run(&Request::Create(create_request("/e1", 1)));
        harness.run(&Request::Create(create_request("/e2", 1)));
        harness.prepare(&Request::Create(create_request("/e3", 1)));
        harness.prepare(&Request::Delete(DeleteRequest { path: "/e2".into(), version: -1 }));
        let txn = harness.prepare(&Request::CloseSession);
        assert_eq!(txn, Txn::CloseSession { paths_to_delete: vec!["/e1".into(), "/e3".into()] });
    }

    #[test]
    fn committed_drops_records_up_to_the_zxid() {
        let mut harness = Harness::new();
        harness.prepare(&Request::Create(create_request("/a", 0)));
        harness.prepare(&Request::Create(create_request("/b", 0)));
        assert_eq!(harness.preparer.outstanding_len(), 3);
        harness.preparer.committed(1);
        // "/" was rewritten by the second create, so only "/a" goes.
        assert_eq!(harness.preparer.outstanding_len(), 2);
        harness.preparer.committed(2);
        assert_eq!(harness.preparer.outstanding_len(), 0);
    }

    #[test]
    fn acl_denial_is_no_auth() {
        let mut harness = Harness::new();
        harness.run(&Request::Create(CreateRequest { acl: acl::read_acl_unsafe(), ..create_request("/r", 0) }));
        assert_eq!(harness.prepare(&Request::Create(create_request("/r/c", 0))), Txn::Error(ErrorCode::NoAuth));
        let set = Request::SetData(SetDataRequest { path: "/r".into(), data: None, version: -1 });
        assert_eq!(harness.prepare(&set), Txn::Error(ErrorCode::NoAuth));
        let delete_container = harness.preparer.prepare_delete_container(&harness.tree, "/r", 99);
        assert!(delete_container.is_ok());
    }
}
