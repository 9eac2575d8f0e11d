//! Clients and their connections to servers: frames each way with FIFO delivery, closes
//! and refusals, and the clients' timers.

use zk_core::node::ConnectionId;
use zk_core::zab::ServerId;

use crate::client::ClientAction;
use crate::config::PlantedBug;
use crate::history::ClientId;

use super::{Event, ServerInput, World};

/// An input for one client.
#[derive(Clone, Debug)]
pub enum ClientInput {
    Frame { connection: ConnectionId, frame: Vec<u8> },
    Closed { connection: ConnectionId },
    Timer,
}

/// A client's connection to a server.
#[derive(Clone, Debug)]
pub(super) struct Connection {
    pub(super) client: ClientId,
    pub(super) server: ServerId,
    /// The server process the connection was opened to.
    pub(super) incarnation: u64,
    pub(super) c2s_last_ms: u64,
    pub(super) s2c_last_ms: u64,
    /// Either end closed it; nothing more travels.
    pub(super) closed: bool,
}

impl World {
    pub(super) fn client_latency_ms(&mut self, server: ServerId) -> u64 {
        let mut latency = self.rng.range(1, 4);
        let (low, high) = self.servers[&server].spike_ms;
        if high > 0 {
            latency += self.rng.range(low, high);
        }
        latency
    }

    pub(super) fn client_action(&mut self, client: ClientId, action: ClientAction) {
        match action {
            ClientAction::Open { connection, server, frame } => {
                let latency = self.client_latency_ms(server);
                let at = self.now_ms + latency;
                let incarnation = self.servers[&server].incarnation;
                self.connections.insert(
                    connection,
                    Connection { client, server, incarnation, c2s_last_ms: at, s2c_last_ms: 0, closed: false },
                );
                self.record(|| format!("c{client} connects to s{server} (connection {connection:#x})"));
                self.schedule(
                    at,
                    Event::Server { server, incarnation, input: ServerInput::ClientOpen { connection, frame } },
                );
            }
            ClientAction::Send { connection, frame } => {
                let Some(&Connection { server, incarnation, closed: false, .. }) = self.connections.get(&connection)
                else {
                    return;
                };
                let latency = self.client_latency_ms(server);
                let entry = self.connections.get_mut(&connection).expect("checked above");
                let at = entry.c2s_last_ms.max(self.now_ms + latency);
                entry.c2s_last_ms = at;
                self.schedule(
                    at,
                    Event::Server { server, incarnation, input: ServerInput::ClientFrame { connection, frame } },
                );
            }
            ClientAction::Close { connection } => {
                let Some(&Connection { server, incarnation, closed: false, .. }) = self.connections.get(&connection)
                else {
                    return;
                };
                let latency = self.client_latency_ms(server);
                let entry = self.connections.get_mut(&connection).expect("checked above");
                entry.closed = true;
                let at = entry.c2s_last_ms.max(self.now_ms + latency);
                self.schedule(
                    at,
                    Event::Server { server, incarnation, input: ServerInput::ClientClose { connection } },
                );
            }
        }
    }

    pub(super) fn server_sends_frame(&mut self, connection: ConnectionId, frame: Vec<u8>) {
        let Some(&Connection { client, server, closed: false, .. }) = self.connections.get(&connection) else {
            return;
        };
        let latency = self.client_latency_ms(server);
        let reorder = self.config.planted == Some(PlantedBug::ServerFramesReordered);
        let entry = self.connections.get_mut(&connection).expect("checked above");
        // A TCP connection is FIFO: a frame never arrives before one sent earlier (unless
        // the planted bug makes the connection forget that).
        let at = if reorder { self.now_ms + latency } else { entry.s2c_last_ms.max(self.now_ms + latency) };
        entry.s2c_last_ms = entry.s2c_last_ms.max(at);
        self.schedule(at, Event::Client { client, input: ClientInput::Frame { connection, frame } });
    }

    pub(super) fn server_closes_connection(&mut self, connection: ConnectionId) {
        let Some(&Connection { client, server, closed: false, .. }) = self.connections.get(&connection) else {
            return;
        };
        let latency = self.client_latency_ms(server);
        let entry = self.connections.get_mut(&connection).expect("checked above");
        entry.closed = true;
        let at = entry.s2c_last_ms.max(self.now_ms + latency);
        self.schedule(at, Event::Client { client, input: ClientInput::Closed { connection } });
    }

    /// A connection attempt to a server whose process is gone: reset.
    pub(super) fn refuse_connection(&mut self, connection: ConnectionId) {
        self.server_closes_connection(connection);
    }

    pub(super) fn client_input(&mut self, id: ClientId, input: ClientInput) {
        let now_ms = self.now_ms;
        let client = &mut self.clients[id];
        match input {
            ClientInput::Frame { connection, frame } => {
                client.handle_frame(connection, &frame, now_ms, &mut self.rng, &mut self.history)
            }
            ClientInput::Closed { connection } => {
                let was_current = client.connection() == Some(connection);
                client.handle_closed(connection, now_ms, &mut self.rng, &mut self.history);
                if was_current {
                    self.record(|| format!("c{id} lost connection {connection:#x}"));
                }
            }
            ClientInput::Timer => {
                if self.client_timer_at[id] == Some(now_ms) {
                    self.client_timer_at[id] = None;
                }
                if client.poll_timeout() <= now_ms {
                    client.handle_timeout(now_ms, &mut self.rng, &mut self.history);
                }
            }
        }
        while let Some(action) = self.clients[id].poll_action() {
            self.client_action(id, action);
        }
        self.schedule_client_timer(id);
        if self.trace.is_some() {
            self.trace_client_history();
        }
    }

    /// Writes what the clients invoked and observed since the last call into the trace.
    pub(super) fn trace_client_history(&mut self) {
        let operations = self.history.operations.len();
        for index in self.traced_operations..operations {
            let operation = self.history.operations[index].clone();
            self.record(|| {
                format!("c{} invokes op #{index} on s{}: {:?}", operation.client, operation.server, operation.kind)
            });
        }
        self.traced_operations = operations;
        let observations = self.history.observations.len();
        for index in self.traced_observations..observations {
            let observation = self.history.observations[index].clone();
            self.record(|| format!("c{} {:?}", observation.client, observation.kind));
        }
        self.traced_observations = observations;
    }

    pub(super) fn schedule_client_timer(&mut self, id: ClientId) {
        let at = self.clients[id].poll_timeout().max(self.now_ms);
        if self.client_timer_at[id].is_none_or(|scheduled| at < scheduled) {
            self.client_timer_at[id] = Some(at);
            self.schedule(at, Event::Client { client: id, input: ClientInput::Timer });
        }
    }
}
