//! The `warden` binary's commands, one module each (`main.rs` parses the
//! arguments and calls one of these).

pub mod consent;
pub mod ext;
pub mod hash;
pub mod inspect;
pub mod logging;
pub mod manage;
pub mod reset_password;
pub mod serve;
