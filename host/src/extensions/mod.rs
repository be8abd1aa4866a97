//! Extensions as an operator installs them: the manifest (`extension.toml`)
//! and the pure parts of the lifecycle built on it — the security roles an
//! extension brings, the permission review in plain words, the permission
//! delta between what is granted and what a new manifest asks for. Nothing
//! here touches the store, the runtime or HTTP.

pub mod actions;
pub mod delta;
pub mod manifest;
pub mod policy;
pub mod review;
