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

use std::collections::{BTreeMap, BTreeSet};

use imbl::{OrdMap, OrdSet};

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
    by_ref: BTreeMap<AclRef, (Vec<Acl>, u64)>,
    by_list: BTreeMap<Vec<Acl>, AclRef>,
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
        self.by_ref.insert(acl_ref, (acl.to_vec(), 1));
        self.by_list.insert(acl.to_vec(), acl_ref);
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
    /// The children's names. Persistent (shared on clone), like the tree's node map.
    pub children: OrdSet<Box<str>>,
}

impl Node {
    /// The length of the data (null counts as 0, as in ZooKeeper).
    pub fn data_length(&self) -> usize {
        self.data.as_ref().map_or(0, Vec::len)
    }

    /// The eleven-field Stat clients see.
    pub fn client_stat(&self) -> Stat {
        let num_children = self.children.len() as i32;
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
    /// so a snapshot can be taken without stopping writes (see [`DataTree::image`]).
    nodes: OrdMap<Box<str>, Node>,
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
            children: OrdSet::new(),
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
            let name = path::last_segment(node_path);
            self.nodes.get_mut(parent).expect("parent exists").children.insert(name.into());
        }
        self.data_size_approximate += (node_path.len() + node.data_length()) as u64;
        self.nodes.insert(node_path.into(), node);
    }

    /// Whether a path is one of the nodes ZooKeeper never lets clients delete.
    pub fn is_special_path(node_path: &str) -> bool {
        matches!(node_path, "/" | ZOOKEEPER_PATH | QUOTA_PATH | CONFIG_PATH)
    }

    pub fn get(&self, node_path: &str) -> Option<&Node> {
        self.nodes.get(node_path)
    }

    pub fn contains(&self, node_path: &str) -> bool {
        self.nodes.contains_key(node_path)
    }

    /// The Stat clients see for a node.
    pub fn stat(&self, node_path: &str) -> Option<Stat> {
        self.get(node_path).map(Node::client_stat)
    }

    /// The node's ACL list.
    pub fn acl(&self, node: &Node) -> &[Acl] {
        self.acls.get(node.acl)
    }

    /// The ACL list of the node at `node_path`.
    pub fn acl_of(&self, node_path: &str) -> Option<&[Acl]> {
        self.get(node_path).map(|node| self.acls.get(node.acl))
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
        self.get(node_path).map(|node| node.children.iter().map(|name| name.to_string()).collect())
    }

    /// Every node below `node_path` (not counting itself), as `getAllChildrenNumber`.
    pub fn all_children_number(&self, node_path: &str) -> Option<usize> {
        self.get(node_path)?;
        Some(self.descendants(node_path).count())
    }

    /// Every node strictly below `root`, in path order: a range scan, since paths below a
    /// node sort right after `root/`.
    pub fn descendants<'a>(&'a self, root: &str) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
        use std::ops::Bound;
        let prefix = if root == "/" { "/".to_owned() } else { format!("{root}/") };
        let start: Box<str> = prefix.clone().into();
        self.nodes
            .range::<_, str>((Bound::Included(&*start), Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(&prefix))
            .filter(|(key, _)| &***key != "/")
            .map(|(key, node)| (&**key, node))
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

    /// Every node, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(node_path, node)| (&**node_path, node))
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
        if !self.nodes.contains_key(parent_path) {
            return Err(ErrorCode::NoNode);
        }
        if self.nodes.contains_key(node_path) {
            return Err(ErrorCode::NodeExists);
        }
        let parent = self.nodes.get_mut(parent_path).expect("parent checked");
        let parent_cversion = if parent_cversion == -1 { parent.stat.cversion + 1 } else { parent_cversion };
        if parent_cversion > parent.stat.cversion {
            parent.stat.cversion = parent_cversion;
            parent.stat.pzxid = zxid;
        }
        parent.children.insert(name.into());
        let acl_ref = self.acls.intern(acl);
        let node = Node { data, acl: acl_ref, stat: PersistedStat::created(zxid, time), kind, children: OrdSet::new() };
        let bytes = node.data_length() as i64;
        self.data_size_approximate += (node_path.len() + node.data_length()) as u64;
        let stat = node.client_stat();
        self.nodes.insert(node_path.into(), node);
        match kind {
            NodeKind::Container => {
                self.containers.insert(node_path.to_owned());
            }
            NodeKind::Ttl { .. } => {
                self.ttls.insert(node_path.to_owned());
            }
            NodeKind::Ephemeral { owner } => {
                self.ephemerals.entry(owner).or_default().insert(node_path.to_owned());
            }
            NodeKind::Persistent => {}
        }
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
        let parent = self.nodes.get_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        parent.children.remove(name);
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let node = self.nodes.remove(node_path).ok_or(ErrorCode::NoNode)?;
        debug_assert!(node.children.is_empty(), "deleted node {node_path} still has children");
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
        let node = self.nodes.get_mut(node_path).ok_or(ErrorCode::NoNode)?;
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
        let Some(node) = self.nodes.get_mut(node_path) else {
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
        let node = self.nodes.get_mut(node_path).ok_or(ErrorCode::NoNode)?;
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
            if let Some(node) = self.nodes.get_mut(stats_path.as_str()) {
                let track = QuotaTrack { count, bytes, ..QuotaTrack::UNSET };
                let old_length = node.data_length();
                node.data = Some(track.render().into_bytes());
                self.data_size_approximate = self.data_size_approximate + node.data_length() as u64 - old_length as u64;
            }
        }
    }

    /// Nodes and data bytes in the subtree at `root`, itself included.
    fn subtree_usage(&self, root: &str) -> (i64, i64) {
        let Some(node) = self.get(root) else { return (0, 0) };
        let mut count = 1;
        let mut bytes = node.data_length() as i64;
        for (_, node) in self.descendants(root) {
            count += 1;
            bytes += node.data_length() as i64;
        }
        (count, bytes)
    }

    fn update_quota_stats(&mut self, prefix: &str, bytes_diff: i64, count_diff: i64) {
        let stats_path = quota_node_path(prefix, QUOTA_STATS_NODE);
        let Some(node) = self.nodes.get_mut(stats_path.as_str()) else { return };
        let mut track = QuotaTrack::parse(node.data.as_deref());
        track.count += count_diff;
        track.bytes += bytes_diff;
        let old_length = node.data_length();
        node.data = Some(track.render().into_bytes());
        self.data_size_approximate = self.data_size_approximate + node.data_length() as u64 - old_length as u64;
    }

    /// The tree as it is now, for a snapshot: O(1) in the number of znodes (the node map is
    /// shared, and later changes to this tree copy only the parts they touch), plus a copy
    /// of the interned ACL table, which holds a handful of lists. The image can be encoded
    /// later, on another thread, while this tree keeps changing.
    pub fn image(&self) -> TreeImage {
        let acls = self.acls.by_ref.iter().map(|(&acl_ref, (list, _))| (acl_ref, list.clone())).collect();
        TreeImage { nodes: self.nodes.clone(), acls, acl_ref_next: self.acls.next_ref }
    }

    /// Rebuilds a tree from a snapshot: the interned ACL table (as a [`TreeImage`]
    /// holds it) and every node with its path, parents before children. Children sets, the
    /// ACL use counts, the ephemeral, container, TTL and quota indexes and the approximate
    /// data size are derived from the nodes; the `children` the given nodes carry are
    /// ignored. Refuses anything a live tree could not hold: a bad or repeated path, a
    /// missing root or parent, an ACL ref outside the table, an unused or repeated table
    /// entry, or a tree that fails [`DataTree::check_invariants`].
    pub fn restore(
        acls: Vec<(AclRef, Vec<Acl>)>,
        acl_ref_next: AclRef,
        nodes: impl IntoIterator<Item = (String, Node)>,
    ) -> Result<DataTree, String> {
        let mut cache = AclCache { next_ref: acl_ref_next, ..AclCache::default() };
        for (acl_ref, list) in acls {
            if acl_ref >= acl_ref_next {
                return Err(format!("ACL ref {acl_ref} is not below the next ref {acl_ref_next}"));
            }
            if cache.by_list.insert(list.clone(), acl_ref).is_some() {
                return Err(format!("ACL ref {acl_ref} repeats an interned list"));
            }
            if cache.by_ref.insert(acl_ref, (list, 0)).is_some() {
                return Err(format!("ACL ref {acl_ref} is listed twice"));
            }
        }
        let mut tree = DataTree {
            nodes: OrdMap::new(),
            acls: cache,
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            quota_roots: BTreeSet::new(),
            data_size_approximate: 0,
        };
        for (node_path, mut node) in nodes {
            path::validate_path(&node_path).map_err(|error| error.to_string())?;
            if tree.nodes.contains_key(node_path.as_str()) {
                return Err(format!("{node_path} appears twice"));
            }
            if let Some(parent) = path::parent(&node_path).filter(|parent| !tree.nodes.contains_key(*parent)) {
                return Err(format!("{node_path} comes before its parent {parent}"));
            }
            let Some(entry) = tree.acls.by_ref.get_mut(&node.acl) else {
                return Err(format!("{node_path} uses ACL ref {} that is not interned", node.acl));
            };
            entry.1 += 1;
            match node.kind {
                NodeKind::Container => {
                    tree.containers.insert(node_path.clone());
                }
                NodeKind::Ttl { .. } => {
                    tree.ttls.insert(node_path.clone());
                }
                NodeKind::Ephemeral { owner } => {
                    tree.ephemerals.entry(owner).or_default().insert(node_path.clone());
                }
                NodeKind::Persistent => {}
            }
            if let Some(parent_path) = path::parent(&node_path) {
                if parent_path.starts_with(QUOTA_PATH) && path::last_segment(&node_path) == QUOTA_LIMITS_NODE {
                    tree.quota_roots.insert(quota_subject(parent_path));
                }
            }
            node.children.clear();
            tree.insert_raw(&node_path, node);
        }
        if !tree.nodes.contains_key("/") {
            return Err("the tree has no root".to_owned());
        }
        if let Some((acl_ref, _)) = tree.acls.by_ref.iter().find(|(_, (_, users))| *users == 0) {
            return Err(format!("ACL ref {acl_ref} is interned but no node uses it"));
        }
        tree.check_invariants()?;
        Ok(tree)
    }

    /// Checks the tree's internal consistency (every child listed exists and vice versa,
    /// ephemeral, container and TTL indexes match the nodes). Called after every event in
    /// debug builds by the drivers; returns the first problem found.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (node_path, node) in &self.nodes {
            for child in &node.children {
                let child_path = path::join(node_path, child);
                if !self.nodes.contains_key(child_path.as_str()) {
                    return Err(format!("{node_path} lists missing child {child}"));
                }
            }
            if let Some(parent) = path::parent(node_path) {
                let listed = self.nodes.get(parent).is_some_and(|p| p.children.contains(path::last_segment(node_path)));
                if !listed {
                    return Err(format!("{node_path} is not listed by its parent"));
                }
            }
            let indexed = match node.kind {
                NodeKind::Ephemeral { owner } => self.ephemerals.get(&owner).is_some_and(|s| s.contains(&**node_path)),
                NodeKind::Container => self.containers.contains(&**node_path),
                NodeKind::Ttl { .. } => self.ttls.contains(&**node_path),
                NodeKind::Persistent => true,
            };
            if !indexed {
                return Err(format!("{node_path} is missing from its kind's index"));
            }
            if node.kind.is_ephemeral() && !node.children.is_empty() {
                return Err(format!("ephemeral {node_path} has children"));
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
    nodes: OrdMap<Box<str>, Node>,
    acls: Vec<(AclRef, Vec<Acl>)>,
    acl_ref_next: AclRef,
}

impl TreeImage {
    /// Every node, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(node_path, node)| (&**node_path, node))
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The interned ACL lists in use, by ref, and the next ref the cache hands out: what
    /// [`DataTree::restore`] needs to rebuild an identical cache.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> Vec<Acl> {
        crate::acl::open_acl_unsafe()
    }

    fn create(tree: &mut DataTree, node_path: &str, zxid: i64) -> Stat {
        tree.create_node(node_path, Some(b"x".to_vec()), &open(), NodeKind::Persistent, -1, zxid, 1000 + zxid)
            .expect("create")
    }

    #[test]
    fn fresh_tree_matches_zookeeper() {
        let tree = DataTree::new();
        assert_eq!(tree.node_count(), 4);
        let root = tree.stat("/").unwrap();
        // Stored cversion 0 with one child: ZooKeeper reports cversion -1 for a fresh root.
        assert_eq!(root.cversion, -1);
        assert_eq!(root.num_children, 1);
        assert_eq!(tree.children("/zookeeper").unwrap(), vec!["config", "quota"]);
        assert_eq!(tree.stat(CONFIG_PATH).unwrap().aversion, -1);
        assert_eq!(tree.acl_of(CONFIG_PATH).unwrap(), &crate::acl::read_acl_unsafe()[..]);
        assert_eq!(tree.get("/").unwrap().data, Some(Vec::new()));
        tree.check_invariants().unwrap();
    }

    #[test]
    fn create_sets_stat_and_moves_parent_cversion_and_pzxid() {
        let mut tree = DataTree::new();
        let stat = create(&mut tree, "/a", 5);
        assert_eq!(
            stat,
            Stat {
                czxid: 5,
                mzxid: 5,
                ctime: 1005,
                mtime: 1005,
                version: 0,
                cversion: 0,
                aversion: 0,
                ephemeral_owner: 0,
                data_length: 1,
                num_children: 0,
                pzxid: 5
            }
        );
        let root = tree.get("/").unwrap();
        assert_eq!(root.stat.cversion, 1);
        assert_eq!(root.stat.pzxid, 5);
        assert_eq!(tree.create_node("/a", None, &open(), NodeKind::Persistent, -1, 6, 0), Err(ErrorCode::NodeExists));
        assert_eq!(tree.create_node("/b/c", None, &open(), NodeKind::Persistent, -1, 6, 0), Err(ErrorCode::NoNode));
    }

    #[test]
    fn client_cversion_counts_deletes_too() {
        let mut tree = DataTree::new();
        create(&mut tree, "/p", 1);
        create(&mut tree, "/p/a", 2);
        create(&mut tree, "/p/b", 3);
        assert_eq!(tree.stat("/p").unwrap().cversion, 2);
        tree.delete_node("/p/a", 4).unwrap();
        let stat = tree.stat("/p").unwrap();
        assert_eq!(stat.cversion, 3);
        assert_eq!(stat.pzxid, 4);
        // The stored count of creations is what sequential names come from.
        assert_eq!(tree.get("/p").unwrap().stat.cversion, 2);
    }

    #[test]
    fn replayed_create_does_not_move_cversion_backwards() {
        let mut tree = DataTree::new();
        create(&mut tree, "/p", 1);
        tree.create_node("/p/a", None, &open(), NodeKind::Persistent, 5, 2, 0).unwrap();
        tree.create_node("/p/b", None, &open(), NodeKind::Persistent, 3, 3, 0).unwrap();
        let parent = tree.get("/p").unwrap();
        assert_eq!(parent.stat.cversion, 5);
        assert_eq!(parent.stat.pzxid, 2);
    }

    #[test]
    fn set_data_and_set_acl_update_versions() {
        let mut tree = DataTree::new();
        create(&mut tree, "/a", 1);
        let stat = tree.set_data("/a", None, 1, 7, 2000).unwrap();
        assert_eq!((stat.version, stat.mzxid, stat.mtime, stat.data_length), (1, 7, 2000, 0));
        assert_eq!(tree.get("/a").unwrap().data, None);
        let stat = tree.set_acl("/a", &crate::acl::read_acl_unsafe(), 1).unwrap();
        assert_eq!(stat.aversion, 1);
        assert_eq!(tree.acl_of("/a").unwrap(), &crate::acl::read_acl_unsafe()[..]);
        assert_eq!(tree.set_data("/nope", None, 1, 8, 0), Err(ErrorCode::NoNode));
        assert_eq!(tree.set_acl("/nope", &open(), 1), Err(ErrorCode::NoNode));
    }

    #[test]
    fn acls_are_interned_and_released() {
        let mut tree = DataTree::new();
        let before = tree.acl_count();
        create(&mut tree, "/a", 1);
        create(&mut tree, "/b", 2);
        assert_eq!(tree.acl_count(), before);
        tree.set_acl("/a", &[Acl { perms: 1, id: Id { scheme: "digest".into(), id: "u:h".into() } }], 1).unwrap();
        assert_eq!(tree.acl_count(), before + 1);
        tree.delete_node("/a", 3).unwrap();
        assert_eq!(tree.acl_count(), before);
    }

    #[test]
    fn ephemerals_containers_and_ttls_are_indexed() {
        let mut tree = DataTree::new();
        tree.create_node("/e", None, &open(), NodeKind::Ephemeral { owner: 42 }, -1, 1, 0).unwrap();
        tree.create_node("/c", None, &open(), NodeKind::Container, -1, 2, 0).unwrap();
        tree.create_node("/t", None, &open(), NodeKind::Ttl { ttl_ms: 100 }, -1, 3, 0).unwrap();
        assert_eq!(tree.ephemerals(42).into_iter().collect::<Vec<_>>(), vec!["/e"]);
        assert_eq!(tree.stat("/e").unwrap().ephemeral_owner, 42);
        assert_eq!(tree.stat("/c").unwrap().ephemeral_owner, 0);
        assert_eq!(tree.stat("/t").unwrap().ephemeral_owner, 0);
        assert!(tree.containers().contains("/c"));
        assert!(tree.ttls().contains("/t"));
        tree.check_invariants().unwrap();
        tree.delete_node("/e", 4).unwrap();
        tree.delete_node("/c", 5).unwrap();
        tree.delete_node("/t", 6).unwrap();
        assert!(tree.all_ephemerals().is_empty());
        assert!(tree.containers().is_empty() && tree.ttls().is_empty());
        tree.check_invariants().unwrap();
    }

    #[test]
    fn all_children_number_counts_descendants() {
        let mut tree = DataTree::new();
        create(&mut tree, "/a", 1);
        create(&mut tree, "/a/b", 2);
        create(&mut tree, "/a/b/c", 3);
        create(&mut tree, "/ab", 4);
        assert_eq!(tree.all_children_number("/a"), Some(2));
        assert_eq!(tree.all_children_number("/"), Some(tree.node_count() - 1));
        assert_eq!(tree.all_children_number("/x"), None);
    }

    #[test]
    fn quota_stats_follow_the_subtree() {
        let mut tree = DataTree::new();
        create(&mut tree, "/q", 1);
        create(&mut tree, "/q/a", 2);
        create(&mut tree, "/zookeeper/quota/q", 3);
        tree.create_node(
            "/zookeeper/quota/q/zookeeper_limits",
            Some(b"count=3,bytes=-1".to_vec()),
            &open(),
            NodeKind::Persistent,
            -1,
            4,
            0,
        )
        .unwrap();
        tree.create_node(
            "/zookeeper/quota/q/zookeeper_stats",
            Some(b"count=0,bytes=0".to_vec()),
            &open(),
            NodeKind::Persistent,
            -1,
            5,
            0,
        )
        .unwrap();
        let (prefix, limits, usage) = tree.quota_of("/q/a").unwrap();
        assert_eq!(prefix, "/q");
        assert_eq!((limits.count, limits.bytes), (3, -1));
        assert_eq!((usage.count, usage.bytes), (2, 2));
        create(&mut tree, "/q/b", 6);
        tree.set_data("/q/b", Some(b"hello".to_vec()), 1, 7, 0).unwrap();
        let (_, _, usage) = tree.quota_of("/q").unwrap();
        assert_eq!((usage.count, usage.bytes), (3, 7));
        assert_eq!(
            tree.get("/zookeeper/quota/q/zookeeper_stats").unwrap().data.as_deref(),
            Some(&b"count=3,bytes=7"[..])
        );
        // A soft limit never refuses.
        assert_eq!(tree.check_quota("/q/c", 0, 1), Ok(()));
        tree.delete_node("/q/b", 8).unwrap();
        let (_, _, usage) = tree.quota_of("/q").unwrap();
        assert_eq!((usage.count, usage.bytes), (2, 2));
    }

    #[test]
    fn hard_quota_refuses_with_quota_exceeded() {
        let mut tree = DataTree::new();
        create(&mut tree, "/q", 1);
        create(&mut tree, "/zookeeper/quota/q", 2);
        let limits = QuotaTrack { count: -1, bytes: -1, count_hard_limit: 2, byte_hard_limit: 4 };
        tree.create_node(
            "/zookeeper/quota/q/zookeeper_limits",
            Some(limits.render().into_bytes()),
            &open(),
            NodeKind::Persistent,
            -1,
            3,
            0,
        )
        .unwrap();
        tree.create_node("/zookeeper/quota/q/zookeeper_stats", None, &open(), NodeKind::Persistent, -1, 4, 0).unwrap();
        assert_eq!(tree.check_quota("/q/a", 1, 1), Ok(()));
        create(&mut tree, "/q/a", 5);
        assert_eq!(tree.check_quota("/q/b", 0, 1), Err(ErrorCode::QuotaExceeded));
        assert_eq!(tree.check_quota("/q/a", 3, 0), Err(ErrorCode::QuotaExceeded));
        assert_eq!(tree.check_quota("/q/a", 2, 0), Ok(()));
        // Deleting the limits node lifts the quota.
        tree.delete_node("/zookeeper/quota/q/zookeeper_limits", 6).unwrap();
        assert_eq!(tree.check_quota("/q/b", 0, 1), Ok(()));
    }

    #[test]
    fn quota_track_text_round_trips() {
        let track = QuotaTrack { count: 5, bytes: 10, count_hard_limit: 7, byte_hard_limit: -1 };
        assert_eq!(track.render(), "count=5,bytes=10=;countHardLimit=7");
        assert_eq!(QuotaTrack::parse(Some(track.render().as_bytes())), track);
        assert_eq!(QuotaTrack::parse(Some(b"count=,bytes=3")).count, -1);
        assert_eq!(QuotaTrack::parse(None), QuotaTrack::UNSET);
    }
}
