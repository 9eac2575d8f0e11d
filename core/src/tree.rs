//! The znode tree: nodes, their persisted stat, ACLs (interned), ephemeral ownership,
//! containers, TTL nodes, the `/zookeeper` system nodes and quota accounting.
//!
//! The tree changes only through txns (see [`crate::txn`]); every method that changes it
//! takes the txn's zxid and time, so replicas that apply the same txns agree byte for byte.
//! Its update rules follow ZooKeeper's `DataTree`:
//! - the parent's stored `cversion` counts child creations and only grows; the `cversion`
//!   clients see is `2 * stored - numChildren`, so it also moves on deletes (ZooKeeper's
//!   "v3 semantics"), and the root of a fresh tree reports -1;
//! - `pzxid` moves on every child creation and deletion, never backwards;
//! - sequential suffixes come from the stored (creation-count) `cversion`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use equivalent::{Comparable, Equivalent};
use imbl::OrdMap;

use crate::path;
use crate::proto::{perms, Acl, Data, Id, Stat};
use crate::{ErrorCode, ZkResult};

/// The root of ZooKeeper's system subtree.
pub const ZOOKEEPER_PATH: &str = "/zookeeper";
/// Where quota limits and statistics live.
pub const QUOTA_PATH: &str = "/zookeeper/quota";
/// Where the ensemble configuration is published (`getConfig` reads it).
pub const CONFIG_PATH: &str = "/zookeeper/config";
/// The name of the node holding a subtree's quota limits.
pub const QUOTA_LIMITS_NODE: &str = "zookeeper_limits";
/// The name of the node holding a subtree's current usage.
pub const QUOTA_STATS_NODE: &str = "zookeeper_stats";

/// What a znode is, beyond its data: ZooKeeper folds this into `ephemeralOwner`; zkd keeps
/// it apart and derives the client-visible `ephemeralOwner` (the session for ephemerals,
/// 0 for every other kind, as ZooKeeper reports it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum NodeKind {
    Persistent,
    Ephemeral { owner: i64 },
    Container,
    Ttl { ttl_ms: i64 },
}

impl NodeKind {
    /// The `ephemeralOwner` clients see.
    pub fn ephemeral_owner(self) -> i64 {
        match self {
            NodeKind::Ephemeral { owner } => owner,
            _ => 0,
        }
    }

    pub fn is_ephemeral(self) -> bool {
        matches!(self, NodeKind::Ephemeral { .. })
    }
}

/// The stat fields ZooKeeper persists (`StatPersisted`); `cversion` here counts creations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PersistedStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub pzxid: i64,
}

impl PersistedStat {
    /// The stat of a node created by the txn with this zxid and time.
    pub fn created(zxid: i64, time: i64) -> Self {
        PersistedStat { czxid: zxid, mzxid: zxid, ctime: time, mtime: time, pzxid: zxid, ..Default::default() }
    }
}

/// The index of an interned ACL list.
pub type AclRef = u64;

/// ACL lists shared between nodes, as ZooKeeper's `ReferenceCountedACLCache`: most trees
/// hold thousands of nodes and a handful of distinct ACLs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclCache {
    by_ref: BTreeMap<AclRef, (Arc<[Acl]>, u64)>,
    by_list: BTreeMap<Arc<[Acl]>, AclRef>,
    next_ref: AclRef,
}

impl AclCache {
    /// Interns `acl` and counts one more user of it.
    pub fn intern(&mut self, acl: &[Acl]) -> AclRef {
        if let Some(&acl_ref) = self.by_list.get(acl) {
            self.by_ref.get_mut(&acl_ref).expect("interned ACL has an entry").1 += 1;
            return acl_ref;
        }
        let acl_ref = self.next_ref;
        self.next_ref += 1;
        let list: Arc<[Acl]> = acl.into();
        self.by_ref.insert(acl_ref, (Arc::clone(&list), 1));
        self.by_list.insert(list, acl_ref);
        acl_ref
    }

    /// Counts one user fewer; the list is dropped with its last user.
    pub fn release(&mut self, acl_ref: AclRef) {
        let entry = self.by_ref.get_mut(&acl_ref).expect("released ACL is interned");
        entry.1 -= 1;
        if entry.1 == 0 {
            let (list, _) = self.by_ref.remove(&acl_ref).expect("entry exists");
            self.by_list.remove(&list);
        }
    }

    pub fn get(&self, acl_ref: AclRef) -> &[Acl] {
        &self.by_ref.get(&acl_ref).expect("node ACL is interned").0
    }

    /// The interned list itself, shared rather than copied.
    pub fn get_shared(&self, acl_ref: AclRef) -> Arc<[Acl]> {
        Arc::clone(&self.by_ref.get(&acl_ref).expect("node ACL is interned").0)
    }

    /// The number of distinct ACL lists in use.
    pub fn len(&self) -> usize {
        self.by_ref.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ref.is_empty()
    }
}

/// One znode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub data: Data,
    pub acl: AclRef,
    pub stat: PersistedStat,
    pub kind: NodeKind,
    /// How many children the node has (their names are the tree's: see
    /// [`DataTree::children`]).
    pub num_children: u32,
}

impl Node {
    /// The length of the data (null counts as 0, as in ZooKeeper).
    pub fn data_length(&self) -> usize {
        self.data.as_ref().map_or(0, Vec::len)
    }

    /// The eleven-field Stat clients see.
    pub fn client_stat(&self) -> Stat {
        let num_children = self.num_children as i32;
        Stat {
            czxid: self.stat.czxid,
            mzxid: self.stat.mzxid,
            ctime: self.stat.ctime,
            mtime: self.stat.mtime,
            version: self.stat.version,
            cversion: self.stat.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.stat.aversion,
            ephemeral_owner: self.kind.ephemeral_owner(),
            data_length: self.data_length() as i32,
            num_children,
            pzxid: self.stat.pzxid,
        }
    }
}

/// A subtree's quota limits or usage (`StatsTrack`): `count=N,bytes=M` with optional hard
/// limits after them. -1 means "not set".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaTrack {
    pub count: i64,
    pub bytes: i64,
    pub count_hard_limit: i64,
    pub byte_hard_limit: i64,
}

impl QuotaTrack {
    pub const UNSET: QuotaTrack = QuotaTrack { count: -1, bytes: -1, count_hard_limit: -1, byte_hard_limit: -1 };

    /// Parses ZooKeeper's text form; pairs are split on `,` and `;`, keys it does not know
    /// are ignored and a malformed value reads as -1 (unset) rather than failing the txn.
    pub fn parse(data: Option<&[u8]>) -> QuotaTrack {
        let mut track = QuotaTrack::UNSET;
        let Some(text) = data.and_then(|bytes| std::str::from_utf8(bytes).ok()) else {
            return track;
        };
        for pair in text.split([',', ';']).filter(|pair| !pair.is_empty()) {
            let mut parts = pair.split('=');
            let (Some(key), Some(value)) = (parts.next(), parts.next()) else { continue };
            let value = value.parse::<i64>().unwrap_or(-1);
            match key {
                "count" => track.count = value,
                "bytes" => track.bytes = value,
                "countHardLimit" => track.count_hard_limit = value,
                "byteHardLimit" => track.byte_hard_limit = value,
                _ => {}
            }
        }
        track
    }

    /// ZooKeeper's text form: count and bytes first, then any hard limits after an extra `=`
    /// so that old parsers ignore them.
    pub fn render(&self) -> String {
        let mut text = format!("count={},bytes={}", self.count, self.bytes);
        let mut extras = Vec::new();
        if self.byte_hard_limit != -1 {
            extras.push(format!("byteHardLimit={}", self.byte_hard_limit));
        }
        if self.count_hard_limit != -1 {
            extras.push(format!("countHardLimit={}", self.count_hard_limit));
        }
        if !extras.is_empty() {
            text.push('=');
            for extra in extras {
                text.push(';');
                text.push_str(&extra);
            }
        }
        text
    }
}

/// The whole znode tree of one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataTree {
    /// A persistent map: cloning it is O(1) and later changes copy only what they touch,
    /// so a snapshot can be taken without stopping writes (see [`DataTree::image`]). Keyed
    /// by (parent, name), so each node's children are one run of it; the nodes sit behind
    /// `Arc`s, so the map's slots stay small and a change copies only the node it changes.
    nodes: OrdMap<MapKey, Arc<Node>>,
    acls: AclCache,
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    /// Subtrees with a `zookeeper_limits` node (ZooKeeper's `pTrie`).
    quota_roots: BTreeSet<String>,
    /// Bytes of data plus path lengths, as ZooKeeper's `approximateDataSize`.
    data_size_approximate: u64,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` (open ACLs) and
    /// `/zookeeper/config` (read-only ACL, aversion -1), all with empty data and zero stats,
    /// as ZooKeeper builds it.
    pub fn new() -> Self {
        let mut tree = DataTree {
            nodes: OrdMap::new(),
            acls: AclCache::default(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            quota_roots: BTreeSet::new(),
            data_size_approximate: 0,
        };
        let open = tree.acls.intern(&crate::acl::open_acl_unsafe());
        let system_node = |acl| Node {
            data: Some(Vec::new()),
            acl,
            stat: PersistedStat::default(),
            kind: NodeKind::Persistent,
            num_children: 0,
        };
        tree.insert_raw("/", system_node(open));
        let open = tree.acls.intern(&crate::acl::open_acl_unsafe());
        tree.insert_raw(ZOOKEEPER_PATH, system_node(open));
        let open = tree.acls.intern(&crate::acl::open_acl_unsafe());
        tree.insert_raw(QUOTA_PATH, system_node(open));
        let read_only = tree.acls.intern(&crate::acl::read_acl_unsafe());
        let mut config = system_node(read_only);
        config.stat.aversion = -1;
        tree.insert_raw(CONFIG_PATH, config);
        tree
    }

    fn insert_raw(&mut self, node_path: &str, node: Node) {
        if let Some(parent) = path::parent(node_path) {
            self.node_mut(parent).expect("parent exists").num_children += 1;
        }
        self.data_size_approximate += (node_path.len() + node.data_length()) as u64;
        self.nodes.insert(MapKey::of(node_path), Arc::new(node));
    }

    /// The node at `node_path`, to change: copied first if a snapshot image still shares it.
    fn node_mut(&mut self, node_path: &str) -> Option<&mut Node> {
        self.nodes.get_mut(&PathQuery::of(node_path)).map(Arc::make_mut)
    }

    /// The children of the node at `parent`: one run of the map, in name order.
    fn child_entries(&self, parent: &str) -> impl Iterator<Item = (&MapKey, &Node)> + '_ {
        use std::ops::Bound;
        let prefix = MapKey::children_prefix(parent);
        self.nodes
            .range((Bound::Included(prefix.clone()), Bound::Unbounded))
            .take_while(move |(key, _)| key.0.starts_with(&*prefix.0))
            .filter(|(key, _)| !key.name().is_empty())
            .map(|(key, node)| (key, &**node))
    }

    /// Whether a path is one of the nodes ZooKeeper never lets clients delete.
    pub fn is_special_path(node_path: &str) -> bool {
        matches!(node_path, "/" | ZOOKEEPER_PATH | QUOTA_PATH | CONFIG_PATH)
    }

    pub fn get(&self, node_path: &str) -> Option<&Node> {
        self.nodes.get(&PathQuery::of(node_path)).map(|node| &**node)
    }

    pub fn contains(&self, node_path: &str) -> bool {
        self.nodes.contains_key(&PathQuery::of(node_path))
    }

    /// The Stat clients see for a node.
    pub fn stat(&self, node_path: &str) -> Option<Stat> {
        self.get(node_path).map(Node::client_stat)
    }

    /// The node's ACL list.
    pub fn acl(&self, node: &Node) -> &[Acl] {
        self.acls.get(node.acl)
    }

    /// The node's ACL list, shared with the tree's cache.
    pub fn acl_shared(&self, node: &Node) -> Arc<[Acl]> {
        self.acls.get_shared(node.acl)
    }

    /// The ACL list of the node at `node_path`.
    pub fn acl_of(&self, node_path: &str) -> Option<&[Acl]> {
        self.get(node_path).map(|node| self.acls.get(node.acl))
    }

    /// [`DataTree::acl_of`], shared with the tree's interned copy (no copy of the list).
    pub fn acl_of_shared(&self, node_path: &str) -> Option<Arc<[Acl]>> {
        self.get(node_path).map(|node| self.acls.get_shared(node.acl))
    }

    /// Number of znodes, the system nodes included (ZooKeeper's "Node count").
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Approximate bytes held: paths plus data (ZooKeeper's `approximateDataSize`).
    pub fn data_size_approximate(&self) -> u64 {
        self.data_size_approximate
    }

    /// Distinct interned ACL lists.
    pub fn acl_count(&self) -> usize {
        self.acls.len()
    }

    /// The children of a node, sorted by name.
    pub fn children(&self, node_path: &str) -> Option<Vec<String>> {
        self.get(node_path)?;
        Some(self.child_entries(node_path).map(|(child, _)| child.name().to_owned()).collect())
    }

    /// Every node below `node_path` (not counting itself), as `getAllChildrenNumber`.
    pub fn all_children_number(&self, node_path: &str) -> Option<usize> {
        self.get(node_path)?;
        Some(self.descendants(node_path).count())
    }

    /// Every node strictly below `root`, depth first.
    pub fn descendants(&self, root: &str) -> impl Iterator<Item = &Node> + '_ {
        let mut found = Vec::new();
        let mut pending = vec![root.to_owned()];
        while let Some(parent) = pending.pop() {
            for (child, node) in self.child_entries(&parent) {
                found.push(node);
                if node.num_children > 0 {
                    pending.push(child.path());
                }
            }
        }
        found.into_iter()
    }

    /// The paths of a session's ephemeral nodes, sorted.
    pub fn ephemerals(&self, session_id: i64) -> BTreeSet<String> {
        self.ephemerals.get(&session_id).cloned().unwrap_or_default()
    }

    /// Every session that owns ephemerals, with its paths.
    pub fn all_ephemerals(&self) -> &BTreeMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    /// Container nodes, sorted.
    pub fn containers(&self) -> &BTreeSet<String> {
        &self.containers
    }

    /// TTL nodes, sorted.
    pub fn ttls(&self) -> &BTreeSet<String> {
        &self.ttls
    }

    /// Every node with its path, parents before children.
    pub fn iter(&self) -> impl Iterator<Item = (String, &Node)> {
        self.nodes.iter().map(|(key, node)| (key.path(), &**node))
    }

    /// Lists a new node in the index its kind has: containers, TTL nodes, a session's
    /// ephemerals (persistent nodes have none).
    fn index_kind(&mut self, kind: NodeKind, node_path: String) {
        match kind {
            NodeKind::Container => {
                self.containers.insert(node_path);
            }
            NodeKind::Ttl { .. } => {
                self.ttls.insert(node_path);
            }
            NodeKind::Ephemeral { owner } => {
                self.ephemerals.entry(owner).or_default().insert(node_path);
            }
            NodeKind::Persistent => {}
        }
    }

    /// Creates a node. `parent_cversion` is the parent's stored cversion after this
    /// creation, as the leader computed it (-1: one more than now); the parent's cversion
    /// and pzxid only move forward, so replaying a create over a snapshot that already
    /// holds its effects changes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn create_node(
        &mut self,
        node_path: &str,
        data: Data,
        acl: &[Acl],
        kind: NodeKind,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> ZkResult<Stat> {
        let parent_path = path::parent(node_path).ok_or(ErrorCode::NodeExists)?;
        let name = path::last_segment(node_path);
        if !self.contains(parent_path) {
            return Err(ErrorCode::NoNode);
        }
        if self.contains(node_path) {
            return Err(ErrorCode::NodeExists);
        }
        let parent = self.node_mut(parent_path).expect("parent checked");
        let parent_cversion = if parent_cversion == -1 { parent.stat.cversion + 1 } else { parent_cversion };
        if parent_cversion > parent.stat.cversion {
            parent.stat.cversion = parent_cversion;
            parent.stat.pzxid = zxid;
        }
        parent.num_children += 1;
        let acl_ref = self.acls.intern(acl);
        let node = Node { data, acl: acl_ref, stat: PersistedStat::created(zxid, time), kind, num_children: 0 };
        let bytes = node.data_length() as i64;
        self.data_size_approximate += (node_path.len() + node.data_length()) as u64;
        let stat = node.client_stat();
        self.nodes.insert(MapKey::of(node_path), Arc::new(node));
        self.index_kind(kind, node_path.to_owned());
        self.after_quota_node_created(parent_path, name);
        if let Some(prefix) = self.quota_prefix(node_path) {
            self.update_quota_stats(&prefix, bytes, 1);
        }
        Ok(stat)
    }

    /// Deletes a node (which must have no children: the caller checked that when it
    /// prepared the txn). The parent's pzxid moves forward; its stored cversion stays.
    pub fn delete_node(&mut self, node_path: &str, zxid: i64) -> ZkResult<()> {
        let parent_path = path::parent(node_path).ok_or(ErrorCode::BadArguments)?;
        let name = path::last_segment(node_path);
        if !self.contains(node_path) {
            return Err(ErrorCode::NoNode);
        }
        let parent = self.node_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        parent.num_children -= 1;
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let node = self.nodes.remove(&PathQuery::of(node_path)).expect("node checked");
        debug_assert_eq!(node.num_children, 0, "deleted node {node_path} still has children");
        self.acls.release(node.acl);
        self.data_size_approximate -= (node_path.len() + node.data_length()) as u64;
        match node.kind {
            NodeKind::Container => {
                self.containers.remove(node_path);
            }
            NodeKind::Ttl { .. } => {
                self.ttls.remove(node_path);
            }
            NodeKind::Ephemeral { owner } => {
                if let Some(paths) = self.ephemerals.get_mut(&owner) {
                    paths.remove(node_path);
                    if paths.is_empty() {
                        self.ephemerals.remove(&owner);
                    }
                }
            }
            NodeKind::Persistent => {}
        }
        if parent_path.starts_with(QUOTA_PATH) && name == QUOTA_LIMITS_NODE {
            self.quota_roots.remove(&quota_subject(parent_path));
        }
        if let Some(prefix) = self.quota_prefix(node_path) {
            self.update_quota_stats(&prefix, -(node.data_length() as i64), -1);
        }
        Ok(())
    }

    /// Replaces a node's data; `version` is the new data version the leader computed.
    pub fn set_data(&mut self, node_path: &str, data: Data, version: i32, zxid: i64, time: i64) -> ZkResult<Stat> {
        let node = self.node_mut(node_path).ok_or(ErrorCode::NoNode)?;
        let old_length = node.data_length();
        node.data = data;
        node.stat.mtime = time;
        node.stat.mzxid = zxid;
        node.stat.version = version;
        let new_length = node.data_length();
        let stat = node.client_stat();
        self.data_size_approximate = self.data_size_approximate + new_length as u64 - old_length as u64;
        if let Some(prefix) = self.quota_prefix(node_path) {
            self.update_quota_stats(&prefix, new_length as i64 - old_length as i64, 0);
        }
        Ok(stat)
    }

    /// Replaces a node's ACL; `aversion` is the new ACL version the leader computed.
    pub fn set_acl(&mut self, node_path: &str, acl: &[Acl], aversion: i32) -> ZkResult<Stat> {
        let new_ref = self.acls.intern(acl);
        let Some(node) = self.node_mut(node_path) else {
            self.acls.release(new_ref);
            return Err(ErrorCode::NoNode);
        };
        let old_ref = std::mem::replace(&mut node.acl, new_ref);
        node.stat.aversion = aversion;
        let stat = node.client_stat();
        self.acls.release(old_ref);
        Ok(stat)
    }

    /// Sets a parent's cversion and pzxid when replaying a create whose node already exists
    /// (ZooKeeper's `setCversionPzxid`, needed after a fuzzy snapshot).
    pub fn set_cversion_pzxid(&mut self, node_path: &str, cversion: i32, zxid: i64) -> ZkResult<()> {
        let node = self.node_mut(node_path).ok_or(ErrorCode::NoNode)?;
        let cversion = if cversion == -1 { node.stat.cversion + 1 } else { cversion };
        if cversion > node.stat.cversion {
            node.stat.cversion = cversion;
            node.stat.pzxid = zxid;
        }
        Ok(())
    }

    /// The deepest subtree with a quota that contains `node_path`, if any (never `/`).
    pub fn quota_prefix(&self, node_path: &str) -> Option<String> {
        if self.quota_roots.is_empty() {
            return None;
        }
        path::self_and_ancestors(node_path)
            .find(|candidate| self.quota_roots.contains(*candidate))
            .filter(|prefix| *prefix != "/")
            .map(str::to_owned)
    }

    /// The limits and current usage of the quota covering `node_path`, if any.
    pub fn quota_of(&self, node_path: &str) -> Option<(String, QuotaTrack, QuotaTrack)> {
        let prefix = self.quota_prefix(node_path)?;
        let limits = self.get(&quota_node_path(&prefix, QUOTA_LIMITS_NODE))?;
        let stats = self.get(&quota_node_path(&prefix, QUOTA_STATS_NODE))?;
        Some((prefix, QuotaTrack::parse(limits.data.as_deref()), QuotaTrack::parse(stats.data.as_deref())))
    }

    /// ZooKeeper's hard-quota check (done only when quota enforcement is on): refuses a
    /// change that would take a subtree past a hard limit. Soft limits are only reported.
    pub fn check_quota(&self, node_path: &str, bytes_diff: i64, count_diff: i64) -> ZkResult<()> {
        let Some((_, limits, usage)) = self.quota_of(node_path) else { return Ok(()) };
        if count_diff != 0 && limits.count_hard_limit > -1 && usage.count + count_diff > limits.count_hard_limit {
            return Err(ErrorCode::QuotaExceeded);
        }
        if bytes_diff != 0 && limits.byte_hard_limit > -1 && usage.bytes + bytes_diff > limits.byte_hard_limit {
            return Err(ErrorCode::QuotaExceeded);
        }
        Ok(())
    }

    fn after_quota_node_created(&mut self, parent_path: &str, name: &str) {
        if !parent_path.starts_with(QUOTA_PATH) {
            return;
        }
        if name == QUOTA_LIMITS_NODE {
            self.quota_roots.insert(quota_subject(parent_path));
        }
        if name == QUOTA_STATS_NODE {
            // A new stats node starts from the subtree's real usage, whatever the client wrote.
            let subject = quota_subject(parent_path);
            let (count, bytes) = self.subtree_usage(&subject);
            let stats_path = quota_node_path(&subject, QUOTA_STATS_NODE);
            let track = QuotaTrack { count, bytes, ..QuotaTrack::UNSET };
            self.rewrite_data(&stats_path, |_| Some(track.render().into_bytes()));
        }
    }

    /// Replaces the data of a node zkd maintains itself (quota stats), keeping the
    /// approximate data size right; stat fields stay as they are, as in ZooKeeper.
    fn rewrite_data(&mut self, node_path: &str, rewrite: impl FnOnce(&Data) -> Data) {
        let Some(node) = self.node_mut(node_path) else { return };
        let old_length = node.data_length();
        node.data = rewrite(&node.data);
        let new_length = node.data_length();
        self.data_size_approximate = self.data_size_approximate + new_length as u64 - old_length as u64;
    }

    /// Nodes and data bytes in the subtree at `root`, itself included.
    fn subtree_usage(&self, root: &str) -> (i64, i64) {
        let Some(node) = self.get(root) else { return (0, 0) };
        let mut count = 1;
        let mut bytes = node.data_length() as i64;
        for node in self.descendants(root) {
            count += 1;
            bytes += node.data_length() as i64;
        }
        (count, bytes)
    }

    fn update_quota_stats(&mut self, prefix: &str, bytes_diff: i64, count_diff: i64) {
        let stats_path = quota_node_path(prefix, QUOTA_STATS_NODE);
        self.rewrite_data(&stats_path, |data| {
            let mut track = QuotaTrack::parse(data.as_deref());
            track.count += count_diff;
            track.bytes += bytes_diff;
            Some(track.render().into_bytes())
        });
    }

    /// The tree as it is now, for a snapshot: O(1) in the number of znodes (the node map is
    /// shared, and later changes to this tree copy only the parts they touch), plus a copy
    /// of the interned ACL table, which holds a handful of lists. The image can be encoded
    /// later, on another thread, while this tree keeps changing.
    pub fn image(&self) -> TreeImage {
        let acls = self.acls.by_ref.iter().map(|(&acl_ref, (list, _))| (acl_ref, list.to_vec())).collect();
        TreeImage { nodes: self.nodes.clone(), acls, acl_ref_next: self.acls.next_ref }
    }

    /// Checks the tree's internal consistency (every child listed exists and vice versa,
    /// ephemeral, container and TTL indexes match the nodes). Called after every event in
    /// debug builds by the drivers; returns the first problem found.
    pub fn check_invariants(&self) -> Result<(), String> {
        let nodes: Vec<(String, &Node)> = self.iter().collect();
        let mut children_found: BTreeMap<&str, u32> = BTreeMap::new();
        for (node_path, node) in &nodes {
            let node_path = node_path.as_str();
            if let Some(parent) = path::parent(node_path) {
                if !self.contains(parent) {
                    return Err(format!("{node_path} has no parent"));
                }
                *children_found.entry(parent).or_default() += 1;
            }
            let indexed = match node.kind {
                NodeKind::Ephemeral { owner } => self.ephemerals.get(&owner).is_some_and(|s| s.contains(node_path)),
                NodeKind::Container => self.containers.contains(node_path),
                NodeKind::Ttl { .. } => self.ttls.contains(node_path),
                NodeKind::Persistent => true,
            };
            if !indexed {
                return Err(format!("{node_path} is missing from its kind's index"));
            }
            if node.kind.is_ephemeral() && node.num_children != 0 {
                return Err(format!("ephemeral {node_path} has children"));
            }
        }
        for (node_path, node) in &nodes {
            let found = children_found.get(node_path.as_str()).copied().unwrap_or_default();
            if node.num_children != found {
                return Err(format!("{node_path} counts {} children but has {found}", node.num_children));
            }
        }
        let indexed_count: usize =
            self.ephemerals.values().map(BTreeSet::len).sum::<usize>() + self.containers.len() + self.ttls.len();
        let kind_count = self.nodes.values().filter(|node| node.kind != NodeKind::Persistent).count();
        if indexed_count != kind_count {
            return Err(format!("{indexed_count} indexed special nodes but {kind_count} exist"));
        }
        Ok(())
    }
}

/// A [`DataTree`] frozen at one moment (see [`DataTree::image`]): what a snapshot encodes.
#[derive(Clone, PartialEq, Eq)]
pub struct TreeImage {
    nodes: OrdMap<MapKey, Arc<Node>>,
    acls: Vec<(AclRef, Vec<Acl>)>,
    acl_ref_next: AclRef,
}

impl TreeImage {
    /// Calls `visit` with every node and its path, parents before children (one buffer
    /// for all the paths).
    pub fn for_each(&self, mut visit: impl FnMut(&str, &Node)) {
        let mut node_path = String::new();
        for (key, node) in self.nodes.iter() {
            key.write_path(&mut node_path);
            visit(&node_path, node);
        }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The interned ACL lists in use, by ref, and the next ref the cache hands out: what
    /// [`TreeRestorer`] needs to rebuild an identical cache.
    pub fn acl_table(&self) -> (&[(AclRef, Vec<Acl>)], AclRef) {
        (&self.acls, self.acl_ref_next)
    }
}

/// A summary: an image holds the whole tree, far too much to print.
impl std::fmt::Debug for TreeImage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "TreeImage({} znodes, {} ACL lists)", self.nodes.len(), self.acls.len())
    }
}

/// A znode's path as the node map stores it: with its last `/` replaced by `\0` (`/app/n1`
/// is `/app\0n1`, `/app` is `\0app`, `/` is `\0`). ZooKeeper paths never hold `\0`, and
/// plain byte order on these keys is (parent, name) order: a node's children are one run
/// of the map, in name order, and every node sorts after its parent. Comparing two keys is
/// a `memcmp`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct MapKey(Box<str>);

impl MapKey {
    fn of(node_path: &str) -> MapKey {
        let at = last_slash(node_path);
        let mut key = String::with_capacity(node_path.len());
        key.push_str(&node_path[..at]);
        key.push('\0');
        key.push_str(&node_path[at + 1..]);
        MapKey(key.into_boxed_str())
    }

    /// [`MapKey::of`], reusing the path's own allocation.
    fn from_path(node_path: String) -> MapKey {
        let at = last_slash(&node_path);
        let mut bytes = node_path.into_bytes();
        bytes[at] = 0;
        // '/' and '\0' are both one-byte characters: the bytes are still UTF-8.
        MapKey(String::from_utf8(bytes).expect("a path with one ASCII byte swapped").into_boxed_str())
    }

    /// The keys of `parent`'s children all start with this (and nothing else does, but
    /// the root's own key `\0`, which is the children prefix of `/`).
    fn children_prefix(parent: &str) -> MapKey {
        let parent = if parent == "/" { "" } else { parent };
        MapKey(format!("{parent}\0").into_boxed_str())
    }

    fn path(&self) -> String {
        let mut node_path = String::with_capacity(self.0.len());
        self.write_path(&mut node_path);
        node_path
    }

    /// Writes the key's path into `out` (replacing what it held).
    fn write_path(&self, out: &mut String) {
        out.clear();
        out.push_str(&self.0);
        if let Some(at) = out.find('\0') {
            out.replace_range(at..=at, "/");
        }
    }

    fn name(&self) -> &str {
        self.0.rsplit('\0').next().unwrap_or_default()
    }
}

/// Where a path's last `/` is (0 for the root and its children).
#[inline]
fn last_slash(node_path: &str) -> usize {
    node_path.as_bytes().iter().rposition(|&byte| byte == b'/').unwrap_or(0)
}

/// A lookup by path, compared with the stored keys as if it were one, without building it.
#[derive(Clone, Copy)]
struct PathQuery<'a> {
    path: &'a [u8],
    last_slash: usize,
}

impl<'a> PathQuery<'a> {
    fn of(node_path: &'a str) -> Self {
        PathQuery { path: node_path.as_bytes(), last_slash: last_slash(node_path) }
    }
}

impl Comparable<MapKey> for PathQuery<'_> {
    fn compare(&self, key: &MapKey) -> Ordering {
        let key = key.0.as_bytes();
        let at = self.last_slash;
        if key.len() <= at {
            // The key ends before (or at) where this path's `\0` would be.
            return self.path[..key.len()].cmp(key).then(Ordering::Greater);
        }
        self.path[..at]
            .cmp(&key[..at])
            .then(0.cmp(&key[at]))
            .then_with(|| self.path.get(at + 1..).unwrap_or_default().cmp(&key[at + 1..]))
    }
}

impl Equivalent<MapKey> for PathQuery<'_> {
    fn equivalent(&self, key: &MapKey) -> bool {
        self.compare(key) == Ordering::Equal
    }
}

/// The subtree a `/zookeeper/quota/...` node speaks for.
fn quota_subject(quota_parent: &str) -> String {
    let subject = &quota_parent[QUOTA_PATH.len()..];
    if subject.is_empty() {
        "/".to_owned()
    } else {
        subject.to_owned()
    }
}

/// The path of a quota limits or stats node for a subtree.
pub fn quota_node_path(subject: &str, node_name: &str) -> String {
    format!("{QUOTA_PATH}{subject}/{node_name}")
}

/// Whether an ACL list grants `perm` to anyone at all (used in tests and for clarity).
pub fn grants_world(acl: &[Acl], perm: i32) -> bool {
    acl.iter().any(|entry| entry.perms & perm != 0 && entry.id == Id { scheme: "world".into(), id: "anyone".into() })
}

/// Every permission bit, for callers that want to say "any".
pub const PERMS_ALL: i32 = perms::ALL;

/// Rebuilds a [`DataTree`] from a snapshot one node at a time, so a snapshot of millions of
/// znodes is decoded straight into the tree with no list of them in between. Nodes come
/// parents first; children counts, ACL use counts, the ephemeral, container, TTL and quota
/// indexes and the approximate data size are derived (the `num_children` the nodes carry
/// is ignored). Refuses anything a live tree could not hold: a bad or repeated path, a
/// missing root or parent, a child of an ephemeral, an ACL ref outside the table, an unused
/// or repeated table entry.
pub struct TreeRestorer {
    tree: DataTree,
    /// The parent of the run of siblings being added and how many there are so far: a
    /// snapshot lists siblings together, so a parent's count is written once per run rather
    /// than once per child (a restart loads millions of nodes).
    run: Option<(String, u32)>,
}

impl TreeRestorer {
    /// Starts from the interned ACL table.
    pub fn new(acls: Vec<(AclRef, Vec<Acl>)>, acl_ref_next: AclRef) -> Result<TreeRestorer, String> {
        let mut cache = AclCache { next_ref: acl_ref_next, ..AclCache::default() };
        for (acl_ref, list) in acls {
            if acl_ref >= acl_ref_next {
                return Err(format!("ACL ref {acl_ref} is not below the next ref {acl_ref_next}"));
            }
            let list: Arc<[Acl]> = list.into();
            if cache.by_list.insert(Arc::clone(&list), acl_ref).is_some() {
                return Err(format!("ACL ref {acl_ref} repeats an interned list"));
            }
            if cache.by_ref.insert(acl_ref, (list, 0)).is_some() {
                return Err(format!("ACL ref {acl_ref} is listed twice"));
            }
        }
        let tree = DataTree {
            nodes: OrdMap::new(),
            acls: cache,
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            quota_roots: BTreeSet::new(),
            data_size_approximate: 0,
        };
        Ok(TreeRestorer { tree, run: None })
    }

    /// Adds the next node.
    pub fn add(&mut self, node_path: String, mut node: Node) -> Result<(), String> {
        path::validate_path(&node_path).map_err(|error| error.to_string())?;
        let parent_path = path::parent(&node_path);
        if let Some(parent_path) = parent_path {
            let same_run = self.run.as_ref().is_some_and(|(run_parent, _)| run_parent == parent_path);
            if !same_run {
                self.end_run();
                let Some(parent) = self.tree.get(parent_path) else {
                    return Err(format!("{node_path} comes before its parent {parent_path}"));
                };
                if parent.kind.is_ephemeral() {
                    return Err(format!("{node_path} is the child of ephemeral {parent_path}"));
                }
                self.run = Some((parent_path.to_owned(), 0));
            }
            if let Some((_, count)) = &mut self.run {
                *count += 1;
            }
        }
        let tree = &mut self.tree;
        let Some(entry) = tree.acls.by_ref.get_mut(&node.acl) else {
            return Err(format!("{node_path} uses ACL ref {} that is not interned", node.acl));
        };
        entry.1 += 1;
        tree.index_kind(node.kind, node_path.clone());
        if let Some(parent_path) = parent_path {
            if parent_path.starts_with(QUOTA_PATH) && path::last_segment(&node_path) == QUOTA_LIMITS_NODE {
                tree.quota_roots.insert(quota_subject(parent_path));
            }
        }
        node.num_children = 0;
        tree.data_size_approximate += (node_path.len() + node.data_length()) as u64;
        let node = Arc::new(node);
        if tree.nodes.insert(MapKey::from_path(node_path), node.clone()).is_some() {
            // The path moved into the key; find it there to name it.
            let repeated = tree.nodes.iter().find(|(_, held)| Arc::ptr_eq(held, &node)).map(|(key, _)| key.path());
            return Err(format!("{} appears twice", repeated.unwrap_or_default()));
        }
        Ok(())
    }

    /// Writes the current run's count into its parent.
    fn end_run(&mut self) {
        if let Some((parent_path, count)) = self.run.take() {
            let parent = self.tree.node_mut(&parent_path).expect("a run's parent was checked when it began");
            parent.num_children += count;
        }
    }

    /// The tree, once every node is in.
    pub fn finish(mut self) -> Result<DataTree, String> {
        self.end_run();
        let tree = self.tree;
        if !tree.contains("/") {
            return Err("the tree has no root".to_owned());
        }
        if let Some((acl_ref, _)) = tree.acls.by_ref.iter().find(|(_, (_, users))| *users == 0) {
            return Err(format!("ACL ref {acl_ref} is interned but no node uses it"));
        }
        // Everything check_invariants looks at was checked or built above.
        debug_assert_eq!(tree.check_invariants(), Ok(()));
        Ok(tree)
    }
}

#[cfg(test)]
mod tests;
