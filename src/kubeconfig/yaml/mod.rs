//! YAML as kubectl reads and writes it: [`decode`] builds the value go-yaml v2
//! and sigs.k8s.io/yaml build (YAML 1.1), [`mod@typed`] reads typed models from
//! that value as encoding/json would, and [`writer`] emits YAML that reads back
//! byte for byte under YAML 1.1 and 1.2 alike.

pub mod decode;
pub mod typed;
pub mod writer;

pub use self::decode::text;
pub use self::typed::{from_value, into_typed, typed, value};
pub use self::writer::to_yaml;
