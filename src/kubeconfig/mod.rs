//! Kubeconfig files: the typed model, loading (with kubectl's merge rules),
//! context selection, embedding of file references, emitting and writing.

pub mod decode;
pub mod emit;
pub mod flatten;
pub mod load;
pub mod merge;
pub mod model;
pub mod parse;
pub mod provenance;
pub mod select;
pub mod write;
pub mod yaml;
