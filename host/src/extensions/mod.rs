//! Extensions as an operator installs them, in two layers:
//!
//! - what an extension asks for, pure and below security's users: the
//!   manifest (`extension.toml`), the action vocabulary it may name, the
//!   security roles it brings ([`policy`]), the permission review in plain
//!   words and the delta between what is granted and a new manifest;
//! - the installed extensions, above the runtime: their store
//!   ([`installed`]) and the lifecycle that changes it ([`lifecycle`]:
//!   install → pending → approve → serving, removal, query) and the
//!   missing-permission report ([`check`]: what it declares it does against
//!   what its policy and its callers' roles allow).

pub mod actions;
pub mod check;
pub mod delta;
pub mod installed;
pub mod lifecycle;
pub mod manifest;
pub mod policy;
pub mod review;
