//! The network between servers: TCP-like links, FIFO while up, broken by crashes,
//! partitions and read timeouts; asymmetric partitions that drop frames one way.

use zk_core::txn::Txn;
use zk_core::zab::message::{self, PeerMessage};
use zk_core::zab::ServerId;

use crate::config::PlantedBug;

use super::{Event, ServerInput, World};

/// A TCP-like connection between two servers. It is FIFO while up; when it breaks, what
/// was in flight is lost (the generation changes) and both ends are told.
#[derive(Clone, Debug, Default)]
pub(super) struct PeerLink {
    pub(super) up: bool,
    pub(super) generation: u64,
    /// Partitions currently cutting this link.
    pub(super) cuts: u32,
    /// The last delivery scheduled in each direction: [low → high, high → low].
    pub(super) last_delivery_ms: [u64; 2],
    /// Asymmetric partitions currently dropping the frames of each direction.
    pub(super) one_way_cuts: [u32; 2],
    /// Whether a direction dropped a frame on this connection: a TCP connection cannot
    /// skip a frame, so nothing more gets through that way until the link breaks.
    pub(super) dead: [bool; 2],
    /// A read timeout broke the link while frames one way were being dropped: it cannot be
    /// re-established (a handshake needs both ways) until no asymmetric partition cuts it.
    pub(super) broken_by_timeout: bool,
}

/// Every link, by (lower id, higher id), in a table indexed by the two ids (servers are
/// numbered 1..=n): looked up several times per message, where a map search showed up.
#[derive(Clone, Debug)]
pub(super) struct Links {
    servers: usize,
    /// `servers × servers` slots; only those of pairs `a < b` are used.
    slots: Vec<PeerLink>,
}

impl Links {
    /// The links between every pair of servers `1..=servers`, all down.
    pub(super) fn new(servers: usize) -> Links {
        Links { servers, slots: vec![PeerLink::default(); servers * servers] }
    }

    fn index(&self, (a, b): (ServerId, ServerId)) -> usize {
        assert!(1 <= a && a < b && b as usize <= self.servers, "known link");
        (a as usize - 1) * self.servers + (b as usize - 1)
    }

    pub(super) fn get_mut(&mut self, key: &(ServerId, ServerId)) -> Option<&mut PeerLink> {
        let index = self.index(*key);
        self.slots.get_mut(index)
    }

    /// Every pair, ascending (as a map keyed by the pair would list them).
    pub(super) fn keys(&self) -> impl Iterator<Item = (ServerId, ServerId)> + '_ {
        let n = self.servers as ServerId;
        (1..=n).flat_map(move |a| (a + 1..=n).map(move |b| (a, b)))
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut PeerLink> {
        let n = self.servers;
        self.slots.iter_mut().enumerate().filter(move |(index, _)| index / n < index % n).map(|(_, link)| link)
    }
}

impl std::ops::Index<&(ServerId, ServerId)> for Links {
    type Output = PeerLink;

    fn index(&self, key: &(ServerId, ServerId)) -> &PeerLink {
        &self.slots[Links::index(self, *key)]
    }
}

pub(super) fn pair(a: ServerId, b: ServerId) -> (ServerId, ServerId) {
    (a.min(b), a.max(b))
}

impl World {
    pub(super) fn link_should_be_up(&self, a: ServerId, b: ServerId) -> bool {
        let link = &self.links[&pair(a, b)];
        self.is_up(a) && self.is_up(b) && link.cuts == 0 && !link.broken_by_timeout
    }

    /// Brings every link to the state that crashes and partitions call for; both ends of a
    /// link that changed are told.
    pub fn refresh_links(&mut self) {
        let pairs: Vec<(ServerId, ServerId)> = self.links.keys().collect();
        for (a, b) in pairs {
            let should = self.link_should_be_up(a, b);
            let link = self.links.get_mut(&(a, b)).expect("known link");
            if link.up == should {
                continue;
            }
            link.up = should;
            link.generation += 1;
            link.dead = [false; 2];
            self.record(|| format!("link s{a}-s{b} {}", if should { "up" } else { "DOWN" }));
            for (end, peer) in [(a, b), (b, a)] {
                if self.is_up(end) {
                    let input = if should { ServerInput::LinkUp { peer } } else { ServerInput::LinkDown { peer } };
                    self.server_input(end, input);
                }
            }
        }
    }

    /// Cuts (or, with `cut` false, restores) the links between every pair.
    pub fn cut_links(&mut self, pairs: &[(ServerId, ServerId)], cut: bool) {
        for &(a, b) in pairs {
            let link = self.links.get_mut(&pair(a, b)).expect("known link");
            if cut {
                link.cuts += 1;
            } else {
                assert!(link.cuts > 0, "a link is restored only after it was cut");
                link.cuts -= 1;
            }
        }
        self.refresh_links();
    }

    /// Starts (or, with `cut` false, stops) dropping the frames from the first server of
    /// each pair to the second, while the other way still delivers.
    pub fn cut_one_way(&mut self, directed: &[(ServerId, ServerId)], cut: bool) {
        for &(from, to) in directed {
            let link = self.links.get_mut(&pair(from, to)).expect("known link");
            let direction = usize::from(from > to);
            if cut {
                link.one_way_cuts[direction] += 1;
            } else {
                assert!(link.one_way_cuts[direction] > 0, "a direction is restored only after it was cut");
                link.one_way_cuts[direction] -= 1;
                if link.one_way_cuts == [0; 2] {
                    link.broken_by_timeout = false;
                }
            }
        }
        self.refresh_links();
    }

    /// Restores every link.
    pub fn heal_links(&mut self) {
        for link in self.links.values_mut() {
            link.cuts = 0;
            link.one_way_cuts = [0; 2];
            link.broken_by_timeout = false;
        }
        self.refresh_links();
    }

    pub(super) fn latency_ms(&mut self, a: ServerId, b: ServerId) -> u64 {
        let mut latency = self.rng.range(1, 5);
        if self.rng.percent(2) {
            latency += self.rng.range(10, 100);
        }
        for end in [a, b] {
            let (low, high) = self.servers[&end].spike_ms;
            if high > 0 {
                latency += self.rng.range(low, high);
            }
        }
        latency
    }

    pub(super) fn send_peer(&mut self, from: ServerId, to: ServerId, message: &PeerMessage) {
        let key = pair(from, to);
        if !self.links[&key].up {
            return;
        }
        let planted = self.config.planted;
        let rewritten;
        let message = match (planted, message) {
            (Some(PlantedBug::EphemeralsKept), PeerMessage::Proposal(entry))
                if matches!(entry.txn, Txn::CloseSession { .. }) =>
            {
                // The planted bug: the follower is told to close the session but to delete
                // none of its ephemerals.
                let mut entry = zk_core::txn::LogEntry::clone(entry);
                entry.txn = Txn::CloseSession { paths_to_delete: Vec::new() };
                rewritten = PeerMessage::Proposal(entry.into());
                &rewritten
            }
            _ => message,
        };
        let direction = usize::from(from > to);
        let link = &self.links[&key];
        if link.one_way_cuts[direction] > 0 || link.dead[direction] {
            // An asymmetric partition: the frame is lost, and with it everything after it on
            // this connection, until the reading end's timeout breaks the link.
            self.stats.frames_dropped += 1;
            if !link.dead[direction] {
                let generation = link.generation;
                self.links.get_mut(&key).expect("known link").dead[direction] = true;
                // The reading end's socket read timeout: ZooKeeper sets syncLimit × tickTime
                // on quorum sockets. It runs from the last frame that end received, some
                // time before this first lost one.
                let config = &self.servers[&to].config;
                let read_timeout_ms = config.sync_limit_ticks * config.session.tick_time_ms.max(1) as u64;
                let timeout_ms = self.rng.range(read_timeout_ms / 2, read_timeout_ms);
                let (a, b) = key;
                self.schedule(self.now_ms + timeout_ms, Event::LinkReadTimeout { a, b, generation });
            }
            return;
        }
        let latency = self.latency_ms(from, to);
        let link = self.links.get_mut(&key).expect("known link");
        let at = link.last_delivery_ms[direction].max(self.now_ms + latency);
        link.last_delivery_ms[direction] = at;
        let generation = link.generation;
        self.stats.peer_messages += 1;
        let bytes = message::encode(message);
        let incarnation = self.servers[&to].incarnation;
        self.schedule(
            at,
            Event::Server { server: to, incarnation, input: ServerInput::Peer { from, generation, bytes } },
        );
        if let (Some(PlantedBug::AcksForged), PeerMessage::Proposal(entry)) = (planted, message) {
            // The planted bug: an ACK the follower never sent, as if its log were durable.
            self.send_peer(to, from, &PeerMessage::Ack { zxid: entry.zxid() });
        }
    }

    /// The reading end of link (`a`, `b`) timed out while frames one way were dropped: the
    /// link breaks, unless it broke (a new generation) meanwhile.
    pub(super) fn link_read_timeout(&mut self, a: ServerId, b: ServerId, generation: u64) {
        let link = self.links.get_mut(&(a, b)).expect("known link");
        if link.up && link.generation == generation {
            link.broken_by_timeout = true;
            let healed = link.one_way_cuts == [0; 2];
            self.record(|| format!("link s{a}-s{b} read timeout: the silent direction breaks it"));
            self.refresh_links();
            if healed {
                // The partition ended before the timeout: the link reconnects at once.
                self.links.get_mut(&(a, b)).expect("known link").broken_by_timeout = false;
                self.refresh_links();
            }
        }
    }
}
