//! `warden:extension/scheduler` (grant: `scheduler`).
//!
//! Linked for extensions granted `scheduler`. The job store owned by
//! security arrives with its own issue; until then every function answers a
//! typed `unavailable` error and nothing is scheduled.

use wasmtime::component::{HasSelf, Linker};

use super::not_granted;
use crate::capability::Capability;
use crate::runtime::bindings::{scheduler, types};
use crate::runtime::state::InvocationState;

pub fn link(linker: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    scheduler::add_to_linker::<_, HasSelf<InvocationState>>(linker, |s| s)
}

impl InvocationState {
    fn scheduler_unavailable<T>(&self) -> Result<T, types::Error> {
        if !self.context.is_granted(Capability::Scheduler) {
            return Err(not_granted(Capability::Scheduler));
        }
        Err(types::Error::Unavailable(
            "this Warden host has no job store yet; jobs cannot be scheduled".into(),
        ))
    }
}

impl scheduler::Host for InvocationState {
    async fn register(
        &mut self,
        _spec: scheduler::JobSpec,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        Ok(self.scheduler_unavailable())
    }

    async fn unregister(&mut self, _id: String) -> wasmtime::Result<Result<(), types::Error>> {
        Ok(self.scheduler_unavailable())
    }

    async fn get(&mut self, _id: String) -> wasmtime::Result<Result<scheduler::JobInfo, types::Error>> {
        Ok(self.scheduler_unavailable())
    }

    async fn list_jobs(&mut self) -> wasmtime::Result<Result<Vec<scheduler::JobInfo>, types::Error>> {
        Ok(self.scheduler_unavailable())
    }
}
