//! The oracles, one file per property. Each takes plain data (node getters, the committed
//! ledger, the clients' history) so a test can hand it a doctored input and see it object.

pub mod client_order;
pub mod linearizability;
pub mod recipes;
pub mod sessions;
pub mod watches;
pub mod zab;

use std::fmt;

/// A property that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time when it was found.
    pub time_ms: u64,
    /// Which checker found it.
    pub checker: &'static str,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] at {}: {}", self.checker, crate::trace::time(self.time_ms), self.message)
    }
}
