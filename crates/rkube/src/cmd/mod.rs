//! One file per CLI verb.

pub mod bench;
pub mod server;
