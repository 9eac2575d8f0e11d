//! Storage formats (being written).
