//! What a scheduled run receives and reports.

pub use crate::bindings::exports::warden::extension::job_runner::{JobContext, Outcome};

impl JobContext {
    /// The registration parameters, parsed as JSON.
    pub fn params_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.params)
    }
}
