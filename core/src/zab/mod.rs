//! ZooKeeper Atomic Broadcast: how an ensemble of servers agrees on one order of txns.
//!
//! The phases follow the Zab paper (Junqueira, Reed, Serafini, DSN 2011) and ZooKeeper's
//! implementation: Fast Leader Election ([`election`]), then Discovery, Synchronization and
//! Broadcast, which live in the [`crate::node`] module because they drive the database.
//! [`message`] holds the messages servers exchange.

pub mod election;
pub mod message;

/// A server's id in the ensemble (`myid`, the N of `server.N`).
pub type ServerId = u64;

/// The epoch part of a zxid: the high 32 bits.
pub fn epoch_of(zxid: i64) -> u32 {
    ((zxid as u64) >> 32) as u32
}

/// The counter part of a zxid: the low 32 bits.
pub fn counter_of(zxid: i64) -> u32 {
    zxid as u64 as u32
}

/// The zxid `epoch << 32 | counter`.
pub fn make_zxid(epoch: u32, counter: u32) -> i64 {
    ((u64::from(epoch) << 32) | u64::from(counter)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxid_parts() {
        let zxid = make_zxid(7, 42);
        assert_eq!(zxid, 0x0000_0007_0000_002a);
        assert_eq!((epoch_of(zxid), counter_of(zxid)), (7, 42));
        assert_eq!(epoch_of(make_zxid(u32::MAX, u32::MAX)), u32::MAX);
        assert_eq!(counter_of(make_zxid(u32::MAX, u32::MAX)), u32::MAX);
    }
}
