//! Levelled logging into the host log, tagged with this extension's id.
//! Always available (no grant needed).

use crate::bindings::warden::extension::log::{Level, write};

pub fn trace(message: &str) {
    write(Level::Trace, message);
}

pub fn debug(message: &str) {
    write(Level::Debug, message);
}

pub fn info(message: &str) {
    write(Level::Info, message);
}

pub fn warn(message: &str) {
    write(Level::Warn, message);
}

pub fn error(message: &str) {
    write(Level::Error, message);
}
