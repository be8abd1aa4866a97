//! `warden:extension/log` (baseline): guest log records go to the host log,
//! tagged with the extension id, at the guest's level.

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::bindings::{log, types};
use crate::runtime::state::InvocationState;

/// Longest message kept; longer ones are cut (at a char boundary), not refused.
pub const MAX_MESSAGE: usize = 16 * 1024;

pub fn link(linker: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    types::add_to_linker::<_, HasSelf<InvocationState>>(linker, |s| s)?;
    log::add_to_linker::<_, HasSelf<InvocationState>>(linker, |s| s)
}

impl types::Host for InvocationState {}

impl log::Host for InvocationState {
    async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let message = truncate(&message, MAX_MESSAGE);
        let extension = &*self.context.extension_id;
        match level {
            log::Level::Trace => tracing::trace!(target: "warden::guest", extension, "{message}"),
            log::Level::Debug => tracing::debug!(target: "warden::guest", extension, "{message}"),
            log::Level::Info => tracing::info!(target: "warden::guest", extension, "{message}"),
            log::Level::Warn => tracing::warn!(target: "warden::guest", extension, "{message}"),
            log::Level::Error => tracing::error!(target: "warden::guest", extension, "{message}"),
        }
        Ok(())
    }
}

/// `s` cut to at most `max` bytes on a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(super::truncate("héllo", 2), "h");
        assert_eq!(super::truncate("héllo", 3), "hé");
        assert_eq!(super::truncate("hi", 16), "hi");
    }
}
