//! Sessions: timeout negotiation, ids, passwords, and the session table with ZooKeeper's
//! tick-bucketed expiry.
//!
//! ZooKeeper's `SessionTrackerImpl` keeps every live session with its timeout and a closing
//! flag, and an `ExpiryQueue` that files each session under a deadline rounded up to the
//! next multiple of the tick time. A ping or request moves the session to a later bucket;
//! a background thread wakes at each bucket boundary and expires the whole bucket. The
//! [`SessionTable`] here does the same bookkeeping without a thread or a clock: the driver
//! passes `now_ms` in, asks [`SessionTable::next_expiry_ms`] when to wake up, and calls
//! [`SessionTable::expired`] then.
//!
//! All times are milliseconds on the driver's monotonic clock (an `i64`), all timeouts are
//! milliseconds (an `i32`, as on the wire).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::{ErrorCode, ZkResult};

/// The secret ZooKeeper mixes into every session password (`ZooKeeperServer.superSecret`).
/// Using the same value makes zkd hand out the very passwords ZooKeeper would.
pub const ZOOKEEPER_SUPER_SECRET: i64 = 0xB341_5C00;

/// The default bound on the number of sessions one [`SessionTable`] tracks. ZooKeeper has
/// no such bound; a million sessions is far beyond any real ensemble's load, yet keeps the
/// table's memory finite (a few hundred bytes per session).
pub const SESSIONS_MAX_DEFAULT: usize = 1_000_000;

/// The session-timeout settings of zoo.cfg: `tickTime`, `minSessionTimeout` and
/// `maxSessionTimeout`, all in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The basic time unit; session expiry is checked in buckets of this width.
    pub tick_time_ms: i32,
    /// The smallest timeout a client is granted.
    pub min_session_timeout_ms: i32,
    /// The largest timeout a client is granted.
    pub max_session_timeout_ms: i32,
}

impl SessionConfig {
    /// ZooKeeper's default `tickTime`.
    pub const TICK_TIME_DEFAULT_MS: i32 = 2000;

    /// The settings ZooKeeper uses when only `tickTime` is configured: the minimum timeout
    /// is two ticks and the maximum twenty.
    pub fn from_tick_time(tick_time_ms: i32) -> Self {
        SessionConfig {
            tick_time_ms,
            min_session_timeout_ms: tick_time_ms.saturating_mul(2),
            max_session_timeout_ms: tick_time_ms.saturating_mul(20),
        }
    }

    /// The timeout granted to a client that asks for `requested_ms`, as ZooKeeper's
    /// `processConnectRequest` computes it: raised to the minimum, then lowered to the
    /// maximum (so if the minimum exceeds the maximum, the maximum wins).
    pub fn negotiate_timeout(&self, requested_ms: i32) -> i32 {
        let mut timeout_ms = requested_ms;
        if timeout_ms < self.min_session_timeout_ms {
            timeout_ms = self.min_session_timeout_ms;
        }
        if timeout_ms > self.max_session_timeout_ms {
            timeout_ms = self.max_session_timeout_ms;
        }
        timeout_ms
    }
}

impl Default for SessionConfig {
    /// tickTime 2000 ms, sessions between 4000 and 40000 ms.
    fn default() -> Self {
        SessionConfig::from_tick_time(Self::TICK_TIME_DEFAULT_MS)
    }
}

/// Java's `java.util.Random`, bit for bit: a 48-bit linear congruential generator. ZooKeeper
/// derives session passwords from it, so zkd needs the exact sequence, not just any PRNG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JavaRandom {
    state: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const ADDEND: u64 = 0xB;
    const MASK: u64 = (1 << 48) - 1;

    /// A generator seeded as `new Random(seed)`: the seed is scrambled with the multiplier
    /// and only its low 48 bits are kept.
    pub fn new(seed: i64) -> Self {
        JavaRandom { state: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK }
    }

    /// Advances the generator and returns its top `bits` bits (Java's protected `next`).
    fn next(&mut self, bits: u32) -> i32 {
        self.state = self.state.wrapping_mul(Self::MULTIPLIER).wrapping_add(Self::ADDEND) & Self::MASK;
        (self.state >> (48 - bits)) as i32
    }

    /// The next 32-bit value, as `Random.nextInt()`.
    pub fn next_int(&mut self) -> i32 {
        self.next(32)
    }

    /// Fills `bytes` as `Random.nextBytes` does: one `nextInt` per four bytes, its least
    /// significant byte first; a final partial group uses the low bytes of a fresh int.
    pub fn next_bytes(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(4) {
            let value = self.next_int().to_le_bytes();
            chunk.copy_from_slice(&value[..chunk.len()]);
        }
    }
}

/// The password of a session, derived as ZooKeeper derives it:
/// `new Random(session_id ^ secret).nextBytes(new byte[16])`. With
/// [`ZOOKEEPER_SUPER_SECRET`] it equals what a ZooKeeper server would hand out.
///
/// Java's generator keeps only the low 48 bits of its seed, so two session ids that differ
/// only in their top 16 bits (for example the same counter on servers 1 and 2) share a
/// password. That is ZooKeeper's behaviour and zkd keeps it for compatibility.
pub fn session_password(secret: i64, session_id: i64) -> [u8; 16] {
    let mut password = [0u8; 16];
    JavaRandom::new(session_id ^ secret).next_bytes(&mut password);
    password
}

/// The first session id a server hands out, by ZooKeeper's
/// `SessionTrackerImpl.initializeNextSessionId`: the server id's low byte in the top byte,
/// the low 40 bits of the time in the next five bytes, and zero in the low two bytes.
/// The one value it avoids is `i64::MIN`, the ephemeral owner that marks container nodes.
///
/// ZooKeeper feeds this its elapsed-time clock (`System.nanoTime` in ms, whose origin is
/// arbitrary); zkd drivers should pass wall-clock milliseconds, so ids stay distinct
/// across restarts. The result can be 0 (server 0 at time 0), which clients read as "no
/// session"; [`SessionTable::next_session_id`] skips it.
pub fn initial_session_id(server_id: i64, now_wall_ms: i64) -> i64 {
    let time_bits = (now_wall_ms.wrapping_shl(24) as u64 >> 8) as i64;
    let id = time_bits | server_id.wrapping_shl(56);
    if id == i64::MIN {
        id + 1
    } else {
        id
    }
}

/// One session as the table tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The session id clients present on reconnect.
    pub session_id: i64,
    /// The timeout negotiated when the session was created, in milliseconds.
    pub timeout_ms: i32,
    /// The bucket deadline: the session expires when the driver's clock reaches this time
    /// (milliseconds, a multiple of the tick time) without a touch in between.
    pub expires_at_ms: i64,
    /// Set once the session is being closed (a closeSession request was accepted or it
    /// expired); a closing session can no longer be touched or used.
    pub closing: bool,
}

/// The table refused a new session because it already holds `sessions_max` sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimitReached {
    /// The limit the table was built with.
    pub sessions_max: usize,
}

impl fmt::Display for SessionLimitReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session table is full: it already tracks sessions_max = {} sessions", self.sessions_max)
    }
}

impl std::error::Error for SessionLimitReached {}

/// The sessions a server tracks, with ZooKeeper's `SessionTrackerImpl` and `ExpiryQueue`
/// semantics and a bound on their number.
///
/// Every live session sits in exactly one expiry bucket, keyed by a deadline that is a
/// multiple of the tick time. [`expired`](Self::expired) hands out whole buckets whose
/// deadline the clock has reached, in deadline order and, within a bucket, in id order, so
/// the same inputs always give the same expiries.
#[derive(Clone, Debug)]
pub struct SessionTable {
    sessions: BTreeMap<i64, Session>,
    buckets: BTreeMap<i64, BTreeSet<i64>>,
    expiration_interval_ms: i64,
    next_session_id: i64,
    password_secret: i64,
    sessions_max: usize,
}

impl SessionTable {
    /// An empty table whose buckets are `tick_time_ms` wide, whose first allocated id is
    /// `first_session_id` (normally [`initial_session_id`]), and which holds at most
    /// `sessions_max` sessions. Passwords use [`ZOOKEEPER_SUPER_SECRET`].
    ///
    /// # Panics
    ///
    /// If `tick_time_ms` is not positive; ZooKeeper refuses such a configuration too.
    pub fn new(tick_time_ms: i32, first_session_id: i64, sessions_max: usize) -> Self {
        assert!(tick_time_ms > 0, "tickTime must be positive, got {tick_time_ms} ms");
        SessionTable {
            sessions: BTreeMap::new(),
            buckets: BTreeMap::new(),
            expiration_interval_ms: i64::from(tick_time_ms),
            next_session_id: first_session_id,
            password_secret: ZOOKEEPER_SUPER_SECRET,
            sessions_max,
        }
    }

    /// The same table with another password secret, for deployments that do not need
    /// passwords identical to ZooKeeper's.
    pub fn with_password_secret(mut self, secret: i64) -> Self {
        self.password_secret = secret;
        self
    }

    /// The width of an expiry bucket, in milliseconds (the tick time).
    pub fn tick_time_ms(&self) -> i64 {
        self.expiration_interval_ms
    }

    /// The most sessions this table accepts.
    pub fn sessions_max(&self) -> usize {
        self.sessions_max
    }

    /// How many sessions the table holds, closing ones included.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether the table holds no session at all.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Allocates the next session id, as ZooKeeper's `createSession` does with its counter:
    /// the current value, then the counter moves up by one (wrapping). Unlike ZooKeeper it
    /// skips 0 (the "new session" marker on the wire), `i64::MIN` (the container marker)
    /// and ids the table already holds, so an allocated id is always usable.
    pub fn next_session_id(&mut self) -> i64 {
        loop {
            let id = self.next_session_id;
            self.next_session_id = self.next_session_id.wrapping_add(1);
            if id != 0 && id != i64::MIN && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// Allocates an id with [`next_session_id`](Self::next_session_id) and tracks a new
    /// session under it with `timeout_ms`, its first deadline computed from `now_ms`.
    /// Refused when the table is full; no id is used up then.
    pub fn create(&mut self, timeout_ms: i32, now_ms: i64) -> Result<i64, SessionLimitReached> {
        self.ensure_room()?;
        let session_id = self.next_session_id();
        self.add(session_id, timeout_ms, now_ms)?;
        Ok(session_id)
    }

    /// Tracks session `session_id` with `timeout_ms`, as ZooKeeper's `trackSession` does
    /// when a createSession txn is applied or a snapshot is loaded. Returns true when the
    /// session is new. For a session already present the stored timeout stays, but its
    /// deadline is pushed out to `now_ms + timeout_ms` if that is later (never earlier).
    /// Refused, changing nothing, when a new session would exceed `sessions_max`.
    pub fn add(&mut self, session_id: i64, timeout_ms: i32, now_ms: i64) -> Result<bool, SessionLimitReached> {
        let deadline_ms = self.deadline_ms(now_ms, timeout_ms);
        if let Some(session) = self.sessions.get(&session_id) {
            let later_ms = deadline_ms.max(session.expires_at_ms);
            self.schedule(session_id, later_ms);
            return Ok(false);
        }
        self.ensure_room()?;
        self.sessions
            .insert(session_id, Session { session_id, timeout_ms, expires_at_ms: deadline_ms, closing: false });
        self.buckets.entry(deadline_ms).or_default().insert(session_id);
        Ok(true)
    }

    /// Records activity on a session (a ping or any request) at `now_ms`: its deadline
    /// becomes `now_ms + timeout_ms` rounded up to the next tick boundary, using the stored
    /// timeout, unless it already is later. Returns false, changing nothing, for an unknown
    /// or closing session, as ZooKeeper's `touchSession` does.
    pub fn touch(&mut self, session_id: i64, now_ms: i64) -> bool {
        match self.sessions.get(&session_id) {
            Some(session) => {
                let timeout_ms = session.timeout_ms;
                self.touch_with_timeout(session_id, timeout_ms, now_ms)
            }
            None => false,
        }
    }

    /// Like [`touch`](Self::touch) but with an explicit timeout, as ZooKeeper's
    /// `touchSession(id, timeout)` is called with a reconnected connection's newly
    /// negotiated timeout. The stored timeout does not change (ZooKeeper's does not
    /// either), and the deadline still never moves earlier: a shorter renegotiated timeout
    /// takes effect once the old deadline has been passed by later touches.
    pub fn touch_with_timeout(&mut self, session_id: i64, timeout_ms: i32, now_ms: i64) -> bool {
        let deadline_ms = self.deadline_ms(now_ms, timeout_ms);
        match self.sessions.get(&session_id) {
            Some(session) if !session.closing => {
                if deadline_ms > session.expires_at_ms {
                    self.schedule(session_id, deadline_ms);
                }
                true
            }
            _ => false,
        }
    }

    /// Marks a session as closing (ZooKeeper's `setSessionClosing`), once a closeSession
    /// request has been accepted for it or it expired. The session stays in the table and
    /// in its bucket until [`remove`](Self::remove). Returns false for an unknown session.
    pub fn set_closing(&mut self, session_id: i64) -> bool {
        match self.sessions.get_mut(&session_id) {
            Some(session) => {
                session.closing = true;
                true
            }
            None => false,
        }
    }

    /// Forgets a session entirely, as when its closeSession txn is applied, and returns it.
    pub fn remove(&mut self, session_id: i64) -> Option<Session> {
        let session = self.sessions.remove(&session_id)?;
        self.unbucket(session_id, session.expires_at_ms);
        Some(session)
    }

    /// Whether the table holds `session_id`, closing or not.
    /// The expiry buckets in deadline order: each deadline with its sessions, by id.
    pub fn buckets(&self) -> impl Iterator<Item = (i64, &BTreeSet<i64>)> + '_ {
        self.buckets.iter().map(|(&deadline_ms, sessions)| (deadline_ms, sessions))
    }

    pub fn contains(&self, session_id: i64) -> bool {
        self.sessions.contains_key(&session_id)
    }

    /// The session with this id, if the table holds it.
    pub fn get(&self, session_id: i64) -> Option<&Session> {
        self.sessions.get(&session_id)
    }

    /// ZooKeeper's `checkSession` without the owner part: UnknownSession for an id the
    /// table does not hold, SessionExpired for a closing session, Ok otherwise.
    pub fn check_session(&self, session_id: i64) -> ZkResult<()> {
        match self.sessions.get(&session_id) {
            None => Err(ErrorCode::UnknownSession),
            Some(session) if session.closing => Err(ErrorCode::SessionExpired),
            Some(_) => Ok(()),
        }
    }

    /// The password of `session_id` under this table's secret (see [`session_password`]).
    pub fn password(&self, session_id: i64) -> [u8; 16] {
        session_password(self.password_secret, session_id)
    }

    /// Whether `password` is the right one for `session_id`, as ZooKeeper's `checkPasswd`:
    /// session 0 never matches, and otherwise the password is derived from the id alone, so
    /// this does not consult the table (whether the session still exists is a separate
    /// question, answered by [`check_session`](Self::check_session)).
    pub fn check_password(&self, session_id: i64, password: &[u8]) -> bool {
        session_id != 0 && password == self.password(session_id)
    }

    /// Removes every bucket whose deadline is at or before `now_ms` and returns its
    /// sessions, in deadline order and then id order. Like ZooKeeper's session tracker, a
    /// session is due exactly when the clock reaches its deadline (`now_ms >= deadline`),
    /// and each returned session is marked closing at once, so it can no longer be touched
    /// while its closeSession is on the way. Sessions that were already closing are
    /// returned too, as in ZooKeeper, which expires them again if still present. A returned
    /// session stays in the table, in no bucket, until [`remove`](Self::remove).
    pub fn expired(&mut self, now_ms: i64) -> Vec<i64> {
        let mut due = Vec::new();
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() > now_ms {
                break;
            }
            due.extend(entry.remove());
        }
        for session_id in &due {
            if let Some(session) = self.sessions.get_mut(session_id) {
                session.closing = true;
            }
        }
        due
    }

    /// The earliest bucket deadline (milliseconds), when the driver should next call
    /// [`expired`](Self::expired); `None` when no session is waiting to expire.
    pub fn next_expiry_ms(&self) -> Option<i64> {
        self.buckets.keys().next().copied()
    }

    /// Every session, in ascending id order.
    pub fn iter(&self) -> impl Iterator<Item = &Session> + '_ {
        self.sessions.values()
    }

    /// Checks the table's internal consistency; the simulator calls it after every event.
    /// Every bucket is non-empty and lies on a tick boundary, every bucketed session exists
    /// with that deadline and sits in no other bucket, every session that is not closing is
    /// in its bucket, and the table respects `sessions_max`.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.sessions.len() > self.sessions_max {
            return Err(format!("{} sessions exceed sessions_max {}", self.sessions.len(), self.sessions_max));
        }
        let mut bucketed = BTreeSet::new();
        for (&deadline_ms, ids) in &self.buckets {
            if ids.is_empty() {
                return Err(format!("empty bucket at {deadline_ms} ms"));
            }
            if deadline_ms % self.expiration_interval_ms != 0 {
                return Err(format!("bucket at {deadline_ms} ms is off the tick grid"));
            }
            for &session_id in ids {
                let Some(session) = self.sessions.get(&session_id) else {
                    return Err(format!("bucket at {deadline_ms} ms holds unknown session {session_id:#x}"));
                };
                if session.expires_at_ms != deadline_ms {
                    return Err(format!(
                        "session {session_id:#x} is in bucket {deadline_ms} ms but expires at {} ms",
                        session.expires_at_ms
                    ));
                }
                if !bucketed.insert(session_id) {
                    return Err(format!("session {session_id:#x} is in two buckets"));
                }
            }
        }
        for session in self.sessions.values() {
            if !session.closing && !bucketed.contains(&session.session_id) {
                return Err(format!("live session {:#x} is in no expiry bucket", session.session_id));
            }
        }
        Ok(())
    }

    /// The bucket deadline for activity at `now_ms` with `timeout_ms`: ZooKeeper's
    /// `roundToNextInterval(now + timeout)`, the next multiple of the tick strictly after
    /// `now + timeout` (a time on a boundary goes to the following one). Near `i64::MAX`,
    /// where that multiple does not exist, it is the last multiple that does.
    fn deadline_ms(&self, now_ms: i64, timeout_ms: i32) -> i64 {
        let interval_ms = self.expiration_interval_ms;
        let time_ms = now_ms.saturating_add(i64::from(timeout_ms));
        (time_ms / interval_ms)
            .checked_add(1)
            .and_then(|ticks| ticks.checked_mul(interval_ms))
            .unwrap_or(i64::MAX / interval_ms * interval_ms)
    }

    /// Moves a tracked session to the bucket of `deadline_ms`.
    fn schedule(&mut self, session_id: i64, deadline_ms: i64) {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        let previous_ms = std::mem::replace(&mut session.expires_at_ms, deadline_ms);
        self.unbucket(session_id, previous_ms);
        self.buckets.entry(deadline_ms).or_default().insert(session_id);
    }

    /// Takes a session out of the bucket of `deadline_ms`, if it is there, dropping the
    /// bucket once empty so the bucket map never outgrows the session map.
    fn unbucket(&mut self, session_id: i64, deadline_ms: i64) {
        if let Some(ids) = self.buckets.get_mut(&deadline_ms) {
            ids.remove(&session_id);
            if ids.is_empty() {
                self.buckets.remove(&deadline_ms);
            }
        }
    }

    /// Fails when one more session would exceed `sessions_max`.
    fn ensure_room(&self) -> Result<(), SessionLimitReached> {
        if self.sessions.len() >= self.sessions_max {
            Err(SessionLimitReached { sessions_max: self.sessions_max })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> SessionTable {
        SessionTable::new(2000, 0x0100_0000_0000_0000, 16)
    }

    fn checked(table: &SessionTable) {
        table.check_invariants().unwrap();
    }

    #[test]
    fn default_config_is_tick_2000_min_4000_max_40000() {
        assert_eq!(
            SessionConfig::default(),
            SessionConfig { tick_time_ms: 2000, min_session_timeout_ms: 4000, max_session_timeout_ms: 40000 }
        );
        assert_eq!(
            SessionConfig::from_tick_time(500),
            SessionConfig { tick_time_ms: 500, min_session_timeout_ms: 1000, max_session_timeout_ms: 10000 }
        );
    }

    #[test]
    fn negotiate_timeout_clamps_like_process_connect_request() {
        let config = SessionConfig::default();
        assert_eq!(config.negotiate_timeout(0), 4000);
        assert_eq!(config.negotiate_timeout(-5), 4000);
        assert_eq!(config.negotiate_timeout(1000), 4000);
        assert_eq!(config.negotiate_timeout(4000), 4000);
        assert_eq!(config.negotiate_timeout(30000), 30000);
        assert_eq!(config.negotiate_timeout(40000), 40000);
        assert_eq!(config.negotiate_timeout(i32::MAX), 40000);
        // ZooKeeper applies the minimum first and the maximum last.
        let inverted =
            SessionConfig { tick_time_ms: 2000, min_session_timeout_ms: 10000, max_session_timeout_ms: 5000 };
        assert_eq!(inverted.negotiate_timeout(1000), 5000);
        assert_eq!(inverted.negotiate_timeout(7000), 5000);
    }

    #[test]
    fn java_random_matches_openjdk() {
        // `new Random(42).nextInt()` twice, as OpenJDK prints them.
        let mut random = JavaRandom::new(42);
        assert_eq!(random.next_int(), -1_170_105_035);
        assert_eq!(random.next_int(), 234_785_527);
        // A partial last group takes the low bytes of a fresh int: new Random(7), 5 bytes.
        let mut bytes = [0u8; 5];
        JavaRandom::new(7).next_bytes(&mut bytes);
        assert_eq!(bytes, [0x99, 0x17, 0x0f, 0xbb, 0x18]);
    }

    #[test]
    fn java_random_seed_scrambling_and_first_step_by_hand() {
        // Seed 0: state = 0x5DEECE66D; one step = (0x5DEECE66D^2 + 0xB) mod 2^48, whose top
        // 32 bits are the first nextInt. Worked out independently of the implementation.
        let state0: u128 = 0x5_DEEC_E66D;
        let state1 = (state0 * 0x5_DEEC_E66D + 0xB) % (1u128 << 48);
        let expected = (state1 >> 16) as u32 as i32;
        assert_eq!(JavaRandom::new(0).next_int(), expected);
        assert_eq!(expected, -1_155_484_576); // `new Random(0).nextInt()` in OpenJDK.
    }

    #[test]
    fn session_passwords_match_zookeeper() {
        // `new Random(id ^ 0xB3415C00L).nextBytes(new byte[16])`, printed by OpenJDK 17.
        assert_eq!(
            session_password(ZOOKEEPER_SUPER_SECRET, 1),
            [0x05, 0x4c, 0xc7, 0x4a, 0x37, 0x32, 0x7d, 0xb2, 0x15, 0xe7, 0x02, 0xe2, 0x0c, 0x73, 0xf0, 0x05]
        );
        assert_eq!(
            session_password(ZOOKEEPER_SUPER_SECRET, 0x0100_0a2b_3c4d_0000),
            [0xa9, 0x26, 0x40, 0xf4, 0x82, 0x7d, 0x6d, 0xa0, 0x2f, 0x08, 0x3a, 0xc5, 0x9b, 0xfe, 0x05, 0x00]
        );
        assert_eq!(
            session_password(ZOOKEEPER_SUPER_SECRET, -1),
            [0x20, 0xf6, 0x2c, 0xb5, 0x64, 0x8d, 0xc2, 0xd7, 0x71, 0x47, 0x1c, 0x8a, 0x24, 0x86, 0xa9, 0xee]
        );
        // Only the low 48 bits of the seed matter: server 1's first id shares a password
        // with session 0.
        assert_eq!(
            session_password(ZOOKEEPER_SUPER_SECRET, 0x0100_0000_0000_0000),
            session_password(ZOOKEEPER_SUPER_SECRET, 0)
        );
        assert_ne!(session_password(ZOOKEEPER_SUPER_SECRET, 1), session_password(ZOOKEEPER_SUPER_SECRET + 1, 1));
    }

    #[test]
    fn check_password_accepts_only_the_derived_password() {
        let table = table();
        let id = 0x0100_0a2b_3c4d_0000;
        let password = table.password(id);
        assert_eq!(password, session_password(ZOOKEEPER_SUPER_SECRET, id));
        // The session need not be in the table: checkPasswd looks at the id only.
        assert!(table.check_password(id, &password));
        assert!(!table.check_password(id + 1, &password));
        assert!(!table.check_password(id, &password[..15]));
        assert!(!table.check_password(id, &[0u8; 16]));
        // Session 0 never has a valid password.
        assert!(!table.check_password(0, &table.password(0)));
        let other = table.clone().with_password_secret(7);
        assert!(!other.check_password(id, &password));
        assert!(other.check_password(id, &session_password(7, id)));
    }

    #[test]
    fn initial_session_id_follows_initialize_next_session_id() {
        // (t << 24) >>> 8 | sid << 56, checked against OpenJDK's long arithmetic.
        assert_eq!(initial_session_id(3, 1_700_000_000_123), 0x038b_cfe5_687b_0000);
        // Negative time and a server id above 255: only the low bits survive.
        assert_eq!(initial_session_id(300, -5), 0x2cff_ffff_fffb_0000);
        assert_eq!(initial_session_id(1, 0), 0x0100_0000_0000_0000);
        // The container marker is stepped over.
        assert_eq!(initial_session_id(0x80, 0), i64::MIN + 1);
        assert_eq!(initial_session_id(0, 0), 0);
    }

    #[test]
    fn next_session_id_increments_and_skips_unusable_ids() {
        let mut table = table();
        assert_eq!(table.next_session_id(), 0x0100_0000_0000_0000);
        assert_eq!(table.next_session_id(), 0x0100_0000_0000_0001);
        let mut from_zero = SessionTable::new(2000, 0, 16);
        assert_eq!(from_zero.next_session_id(), 1);
        let mut near_min = SessionTable::new(2000, i64::MAX, 16);
        assert_eq!(near_min.next_session_id(), i64::MAX);
        assert_eq!(near_min.next_session_id(), i64::MIN + 1);
        let mut busy = SessionTable::new(2000, 10, 16);
        busy.add(10, 4000, 0).unwrap();
        busy.add(11, 4000, 0).unwrap();
        assert_eq!(busy.next_session_id(), 12);
        assert_eq!(busy.create(4000, 0).unwrap(), 13);
        assert!(busy.contains(13));
        checked(&busy);
    }

    #[test]
    fn deadlines_round_up_to_the_next_tick_strictly() {
        let mut table = table();
        // 1000 + 4000 = 5000 rounds up to 6000.
        table.add(1, 4000, 1000).unwrap();
        assert_eq!(table.get(1).unwrap().expires_at_ms, 6000);
        // 0 + 4000 = 4000 is on a boundary and still goes to the next one, 6000.
        table.add(2, 4000, 0).unwrap();
        assert_eq!(table.get(2).unwrap().expires_at_ms, 6000);
        // 1999 + 4000 = 5999 also lands in 6000.
        table.add(3, 4000, 1999).unwrap();
        assert_eq!(table.get(3).unwrap().expires_at_ms, 6000);
        table.add(4, 4000, 2000).unwrap();
        assert_eq!(table.get(4).unwrap().expires_at_ms, 8000);
        assert_eq!(table.next_expiry_ms(), Some(6000));
        checked(&table);
    }

    #[test]
    fn add_reports_new_sessions_and_keeps_the_old_timeout() {
        let mut table = table();
        assert_eq!(table.add(1, 4000, 0), Ok(true));
        assert_eq!(table.add(1, 10000, 0), Ok(false));
        let session = table.get(1).unwrap();
        assert_eq!(session.timeout_ms, 4000);
        assert_eq!(session.expires_at_ms, 12000);
        // A shorter re-add does not pull the deadline in.
        assert_eq!(table.add(1, 4000, 0), Ok(false));
        assert_eq!(table.get(1).unwrap().expires_at_ms, 12000);
        checked(&table);
    }

    #[test]
    fn touch_moves_sessions_later_never_earlier() {
        let mut table = table();
        table.add(1, 4000, 0).unwrap();
        assert_eq!(table.get(1).unwrap().expires_at_ms, 6000);
        // 1999 + 4000 still rounds to 6000: same bucket.
        assert!(table.touch(1, 1999));
        assert_eq!(table.get(1).unwrap().expires_at_ms, 6000);
        assert!(table.touch(1, 2000));
        assert_eq!(table.get(1).unwrap().expires_at_ms, 8000);
        assert_eq!(table.next_expiry_ms(), Some(8000));
        // A touch stamped earlier (or with a shorter renegotiated timeout) keeps 8000.
        assert!(table.touch(1, 0));
        assert!(table.touch_with_timeout(1, 100, 3000));
        assert_eq!(table.get(1).unwrap().expires_at_ms, 8000);
        assert!(table.touch_with_timeout(1, 10000, 3000));
        assert_eq!(table.get(1).unwrap().expires_at_ms, 14000);
        assert_eq!(table.get(1).unwrap().timeout_ms, 4000);
        checked(&table);
    }

    #[test]
    fn expiry_fires_exactly_at_the_deadline() {
        let mut table = table();
        table.add(1, 4000, 0).unwrap();
        // ExpiryQueue.poll returns nothing while now < expirationTime.
        assert_eq!(table.expired(5999), Vec::<i64>::new());
        assert!(!table.get(1).unwrap().closing);
        assert_eq!(table.expired(6000), vec![1]);
        let session = table.get(1).unwrap();
        assert!(session.closing);
        assert_eq!(table.next_expiry_ms(), None);
        assert_eq!(table.expired(100_000), Vec::<i64>::new());
        checked(&table);
        assert_eq!(table.remove(1).map(|s| s.session_id), Some(1));
        assert!(table.is_empty());
        checked(&table);
    }

    #[test]
    fn expired_drains_due_buckets_in_deadline_then_id_order() {
        let mut table = table();
        table.add(30, 4000, 2000).unwrap(); // 8000
        table.add(20, 4000, 0).unwrap(); // 6000
        table.add(10, 4000, 2000).unwrap(); // 8000
        table.add(40, 10000, 0).unwrap(); // 12000
        assert_eq!(table.expired(9000), vec![20, 10, 30]);
        assert_eq!(table.next_expiry_ms(), Some(12000));
        assert!(table.touch(40, 9000));
        assert!(!table.touch(10, 9000));
        checked(&table);
    }

    #[test]
    fn closing_and_unknown_sessions_cannot_be_touched() {
        let mut table = table();
        assert!(!table.touch(1, 0));
        table.add(1, 4000, 0).unwrap();
        assert!(table.set_closing(1));
        assert!(!table.touch(1, 3000));
        assert!(!table.touch_with_timeout(1, 40000, 3000));
        assert_eq!(table.get(1).unwrap().expires_at_ms, 6000);
        assert!(!table.set_closing(2));
        // A closing session still sits in its bucket and is reported when it comes due.
        assert_eq!(table.next_expiry_ms(), Some(6000));
        checked(&table);
        assert_eq!(table.expired(6000), vec![1]);
        checked(&table);
    }

    #[test]
    fn check_session_reports_unknown_and_closing() {
        let mut table = table();
        assert_eq!(table.check_session(1), Err(ErrorCode::UnknownSession));
        table.add(1, 4000, 0).unwrap();
        assert_eq!(table.check_session(1), Ok(()));
        table.set_closing(1);
        assert_eq!(table.check_session(1), Err(ErrorCode::SessionExpired));
    }

    #[test]
    fn remove_drops_the_session_and_its_bucket() {
        let mut table = table();
        table.add(1, 4000, 0).unwrap();
        table.add(2, 6000, 0).unwrap();
        let removed = table.remove(1).unwrap();
        assert_eq!(removed, Session { session_id: 1, timeout_ms: 4000, expires_at_ms: 6000, closing: false });
        assert!(!table.contains(1));
        assert_eq!(table.remove(1), None);
        assert_eq!(table.next_expiry_ms(), Some(8000));
        assert_eq!(table.expired(6000), Vec::<i64>::new());
        checked(&table);
    }

    #[test]
    fn the_table_refuses_sessions_beyond_sessions_max() {
        let mut table = SessionTable::new(2000, 100, 2);
        assert_eq!(table.sessions_max(), 2);
        assert_eq!(table.create(4000, 0), Ok(100));
        assert_eq!(table.add(7, 4000, 0), Ok(true));
        let full = SessionLimitReached { sessions_max: 2 };
        assert_eq!(table.create(4000, 0), Err(full));
        assert_eq!(table.add(8, 4000, 0), Err(full));
        // Existing sessions can still be re-added, and a refused create used up no id.
        assert_eq!(table.add(7, 4000, 0), Ok(false));
        table.remove(7);
        assert_eq!(table.create(4000, 0), Ok(101));
        assert_eq!(table.len(), 2);
        checked(&table);
    }

    #[test]
    fn iteration_is_in_id_order() {
        let mut table = table();
        for id in [5, -3, 9, 1] {
            table.add(id, 4000, 0).unwrap();
        }
        let ids: Vec<i64> = table.iter().map(|s| s.session_id).collect();
        assert_eq!(ids, vec![-3, 1, 5, 9]);
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn extreme_times_saturate_instead_of_overflowing() {
        let mut table = table();
        let last_tick_ms = i64::MAX / 2000 * 2000;
        table.add(1, i32::MAX, i64::MAX - 10).unwrap();
        assert_eq!(table.get(1).unwrap().expires_at_ms, last_tick_ms);
        assert!(table.touch(1, i64::MAX));
        checked(&table);
        assert_eq!(table.expired(last_tick_ms - 1), Vec::<i64>::new());
        assert_eq!(table.expired(last_tick_ms), vec![1]);
    }

    #[test]
    #[should_panic(expected = "tickTime must be positive")]
    fn a_zero_tick_time_is_refused() {
        let _ = SessionTable::new(0, 1, 1);
    }
}
