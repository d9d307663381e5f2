//! The node's integration tests, in one test binary (one link instead of one per file; CI builds them
//! cold on two cores). `archiving_fault.rs` stays a binary of its own: its fault points are
//! process-global and would fire in the other tests' archivers.

#[path = "../common/mod.rs"]
mod common;

mod binary;
mod branch_rules;
mod bundles;
mod chain;
mod crash;
mod domains;
mod reorg;
