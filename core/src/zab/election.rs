//! Fast Leader Election (being written).
