//! Everything about bytes at rest: the storage keys of an index and the associated data that
//! binds each value to its key (`keys`), the layouts of what is stored (`manifest`: header,
//! config, centroids; `record`; `segment`: packed segments, their directory, tombstones;
//! `summary`; `log`: the bodies of a shared store's change log), the reader and version check
//! they share (`wire`), the catalog of a store's index names under a client key (`catalog`), and the vault through which an index seals and opens them, counting
//! seals against its nonce budget (`vault`).

pub(crate) mod catalog;
pub(crate) mod keys;
pub(crate) mod log;
pub(crate) mod manifest;
pub(crate) mod record;
pub(crate) mod segment;
pub(crate) mod summary;
pub(crate) mod vault;
pub(crate) mod wire;
