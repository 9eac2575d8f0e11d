//! The event queue: every event of a run, ordered by (virtual time, sequence number), so two
//! events at the same instant run in the order they were scheduled.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use zk_core::node::PersistToken;
use zk_core::zab::ServerId;

use crate::faults::FaultEvent;
use crate::history::ClientId;

use super::{ClientInput, ServerInput, World};

#[derive(Clone, Debug)]
pub enum Event {
    Server {
        server: ServerId,
        incarnation: u64,
        input: ServerInput,
    },
    /// An fsync completed: the writes are durable now, whether or not the process hears
    /// of it yet.
    FsyncDone {
        server: ServerId,
        incarnation: u64,
        token: PersistToken,
    },
    Client {
        client: ClientId,
        input: ClientInput,
    },
    Fault(FaultEvent),
    /// The reading end of a link that has been silently dropping frames gives up on it (its
    /// socket read timeout), unless the link broke meanwhile (`generation` changed).
    LinkReadTimeout {
        a: ServerId,
        b: ServerId,
        generation: u64,
    },
    /// Checks the liveness phase's progress.
    LivenessCheck,
    /// The end of the quiet period: final checks.
    QuiesceCheck,
}

/// The run's events, earliest first; two events at the same instant in the order they
/// were scheduled. The heap orders small keys only (time, sequence, slot); the events wait
/// in a slab of slots reused as they run, so sifting never moves an event.
#[derive(Default)]
pub(super) struct EventQueue {
    /// (time in milliseconds, sequence number, slot), the earliest on top.
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    /// The events, by slot; `None` in a free slot.
    slots: Vec<Option<Event>>,
    /// Slots whose event has run.
    free: Vec<u32>,
    next_sequence: u64,
}

impl EventQueue {
    pub(super) fn push(&mut self, time_ms: u64, event: Event) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                debug_assert!(self.slots[slot as usize].is_none(), "a free slot holds no event");
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 events wait at once")
            }
        };
        self.heap.push(Reverse((time_ms, sequence, slot)));
    }

    /// The earliest event and its time.
    pub(super) fn pop(&mut self) -> Option<(u64, Event)> {
        let Reverse((time_ms, _, slot)) = self.heap.pop()?;
        let event = self.slots[slot as usize].take().expect("a queued slot holds its event");
        self.free.push(slot);
        Some((time_ms, event))
    }
}

impl World {
    pub(crate) fn schedule(&mut self, time_ms: u64, event: Event) {
        debug_assert!(time_ms >= self.now_ms, "events are never scheduled in the past");
        self.queue.push(time_ms, event);
    }
}
