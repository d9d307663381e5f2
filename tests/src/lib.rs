//! `acre-tests`: harnesses that cut across the workspace's crates.
//!
//! [`fuzz`] feeds every decoder of untrusted bytes (headers, bodies, segment headers, pieces, solutions,
//! votes, equivocation proofs, transactions, RPC payloads) near-valid inputs: valid encodings of randomly
//! generated values, damaged a little. Random bytes rarely get past a first length prefix or version byte;
//! damaged valid encodings reach the decoders' deep paths. The `fuzz` binary runs any number of inputs
//! per target and prints a table (`scripts/fuzz`, 10^6 per target); the crate's test runs a short version
//! in CI. [`http`] is a loopback GET for the binaries' HTTP servers; [`metrics_docs`] checks a binary's `/metrics` against `docs/metrics.md`; [`port`] picks free loopback ports and [`process`] kills a test's binaries when it ends. The multi-node harnesses
//! of the network issue live in [`cluster`]: real `acre-node` and `acre-farmer` binaries on loopback, or in
//! the network namespaces of [`netns`] where a test partitions them.

pub mod cluster;
pub mod fuzz;
pub mod http;
pub mod metrics_docs;
pub mod netns;
pub mod port;
pub mod process;

pub use http::{http_get, try_http_get};
pub use port::free_port;
pub use process::KillOnDrop;
