//! Kubeconfig files, in the order data flows through them: the typed
//! [`model`] read through [`yaml`], [`load`]ed with kubectl's KUBECONFIG
//! rules, a context [`select`]ed, file references [`flatten`]ed, entries
//! [`emit`]ted, then written ([`mod@write`]) or upserted into a file kubectl
//! shares ([`upsert`]).

pub mod emit;
pub mod flatten;
pub mod load;
pub mod model;
pub mod plan;
pub mod provenance;
pub mod select;
pub mod upsert;
pub mod write;
pub mod yaml;
