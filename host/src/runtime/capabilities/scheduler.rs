//! `warden:extension/scheduler` (grant: `scheduler`).
//!
//! Linked for extensions granted `scheduler`. Each call is converted from
//! the WIT types to the scheduler's domain types and goes to the
//! invocation's [`JobAccess`] (the host's scheduler) with the invocation's
//! [`JobOwner`]: the user the request or job runs for, decided by the host
//! (`runtime::session`). The guest names only jobs, schedules and its own
//! params; it never sees or chooses who a job runs as. An invocation
//! without a scheduler answers a typed `unavailable`.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::{CapView, Covers, Versions, not_granted, to_wit};
use crate::capability::{Capability, ImportClass};
use crate::error::HasKind;
use crate::runtime::bindings::{scheduler, types};
use crate::scheduler::extension_api::{JobAccess, JobAccessError, JobInfo, JobOwner, JobSpec, NoJobOwner};
use crate::scheduler::schedule::{CatchUp, JobOptions, Schedule};

/// The import linked here.
pub const IMPORTS: &[Covers] = &[Covers {
    package: "warden:extension",
    items: &["scheduler"],
    versions: Versions::Ours01,
    class: ImportClass::Needs(Capability::Scheduler),
}];

/// One invocation's scheduler context.
#[derive(Debug, Clone, Default)]
pub enum JobsCtx {
    /// No scheduler (the host runs without one, or the extension is not
    /// granted `scheduler`).
    #[default]
    Unavailable,
    Available {
        access: Arc<dyn JobAccess>,
        /// Who the invocation's jobs belong to, or why nobody can act on
        /// jobs here (an anonymous caller; a token standing in for the user).
        owner: Result<JobOwner, NoJobOwner>,
    },
}

/// What `scheduler` host functions see.
pub type JobsView<'a> = CapView<'a, JobsCtx>;

/// The `HasData` marker of `warden:extension/scheduler`.
#[derive(Debug)]
pub struct Jobs;

impl HasData for Jobs {
    type Data<'a> = JobsView<'a>;
}

pub fn link<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> JobsView<'_>,
) -> wasmtime::Result<()> {
    scheduler::add_to_linker::<T, Jobs>(linker, view)
}

impl JobsView<'_> {
    /// The grant (checked again at call time), the scheduler and the owner.
    fn session(&self) -> Result<(&dyn JobAccess, &JobOwner), types::Error> {
        if !self.granted {
            return Err(not_granted(Capability::Scheduler));
        }
        let JobsCtx::Available { access, owner } = &*self.ctx else {
            return Err(types::Error::Unavailable("no scheduler is configured for this invocation".into()));
        };
        let owner = owner.as_ref().map_err(|e| to_wit(e.kind(), e.to_string()))?;
        Ok((access.as_ref(), owner))
    }
}

impl scheduler::Host for JobsView<'_> {
    async fn register(&mut self, spec: scheduler::JobSpec) -> wasmtime::Result<Result<String, types::Error>> {
        Ok(self.session().and_then(|(access, owner)| {
            access.register(self.extension, owner, self.request_id, spec_from_wit(spec)).map_err(error)
        }))
    }

    async fn register_with(
        &mut self,
        spec: scheduler::JobSpec,
        options: scheduler::JobOptions,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        Ok(self.session().and_then(|(access, owner)| {
            let spec = JobSpec { options: options_from_wit(options), ..spec_from_wit(spec) };
            access.register(self.extension, owner, self.request_id, spec).map_err(error)
        }))
    }

    async fn unregister(&mut self, id: String) -> wasmtime::Result<Result<(), types::Error>> {
        Ok(self.session().and_then(|(access, owner)| {
            access.unregister(self.extension, owner, self.request_id, &id).map_err(error)
        }))
    }

    async fn get(&mut self, id: String) -> wasmtime::Result<Result<scheduler::JobInfo, types::Error>> {
        Ok(self.session().and_then(|(access, owner)| {
            access.get(self.extension, owner, &id).map(info_to_wit).map_err(error)
        }))
    }

    async fn list_jobs(&mut self) -> wasmtime::Result<Result<Vec<scheduler::JobInfo>, types::Error>> {
        Ok(self.session().and_then(|(access, owner)| {
            let jobs = access.list(self.extension, owner).map_err(error)?;
            Ok(jobs.into_iter().map(info_to_wit).collect())
        }))
    }
}

fn error(e: JobAccessError) -> types::Error {
    to_wit(e.kind(), e.to_string())
}

/// The prefix that names a cron's time zone in the WIT `cron` string, as
/// cronie and other crons read it: `CRON_TZ=Europe/Berlin 0 3 * * *`.
const CRON_TZ: &str = "CRON_TZ=";

fn schedule_from_wit(schedule: scheduler::Schedule) -> Schedule {
    match schedule {
        scheduler::Schedule::Once(at) => Schedule::Once(at),
        scheduler::Schedule::Interval(secs) => Schedule::Interval(secs),
        scheduler::Schedule::Cron(expr) => match expr.trim_start().strip_prefix(CRON_TZ) {
            Some(rest) => {
                let (zone, expr) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                Schedule::Cron { expr: expr.trim_start().to_owned(), timezone: Some(zone.to_owned()) }
            }
            None => Schedule::cron(expr),
        },
    }
}

fn schedule_to_wit(schedule: Schedule) -> scheduler::Schedule {
    match schedule {
        Schedule::Once(at) => scheduler::Schedule::Once(at),
        Schedule::Interval(secs) => scheduler::Schedule::Interval(secs),
        Schedule::Cron { expr, timezone: None } => scheduler::Schedule::Cron(expr),
        Schedule::Cron { expr, timezone: Some(zone) } => {
            scheduler::Schedule::Cron(format!("{CRON_TZ}{zone} {expr}"))
        }
    }
}

fn spec_from_wit(spec: scheduler::JobSpec) -> JobSpec {
    JobSpec {
        name: spec.name,
        schedule: schedule_from_wit(spec.schedule),
        params: spec.params,
        options: JobOptions::default(),
    }
}

fn options_from_wit(options: scheduler::JobOptions) -> JobOptions {
    JobOptions {
        jitter: options.jitter,
        catch_up: match options.catch_up {
            scheduler::CatchUp::Skip => CatchUp::Skip,
            scheduler::CatchUp::Once => CatchUp::Once,
        },
    }
}

fn info_to_wit(info: JobInfo) -> scheduler::JobInfo {
    scheduler::JobInfo {
        id: info.id,
        name: info.name,
        schedule: schedule_to_wit(info.schedule),
        params: info.params,
        enabled: info.enabled,
        next_run: info.next_run,
        last_run: info.last_run,
    }
}

/// The capability alone, with a fake scheduler: WIT specs reach the domain
/// call converted, domain jobs and errors come back as WIT types, and the
/// grant, the missing scheduler and the missing owner are answered before
/// any call is made.
#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::error::{Denial, Gate};
    use crate::scheduler::jobs::JobError;

    /// Records every call (extension, user, request id, what) and answers
    /// canned domain replies.
    #[derive(Debug, Default)]
    struct FakeJobs {
        seen: Mutex<Vec<String>>,
        specs: Mutex<Vec<JobSpec>>,
        /// Every call fails with this, when set.
        fail: Option<Failure>,
    }

    impl FakeJobs {
        fn record(&self, what: String) -> Result<(), JobAccessError> {
            if let Ok(mut seen) = self.seen.lock() {
                seen.push(what);
            }
            self.fail.map_or(Ok(()), |fail| Err(fail()))
        }

        fn seen(&self) -> Vec<String> {
            self.seen.lock().map(|s| s.clone()).unwrap_or_default()
        }
    }

    fn job() -> JobInfo {
        JobInfo {
            id: "j1".into(),
            name: "nightly".into(),
            schedule: Schedule::cron("0 3 * * *"),
            params: "{}".into(),
            enabled: true,
            next_run: Some(42),
            last_run: None,
        }
    }

    impl JobAccess for FakeJobs {
        fn register(
            &self,
            extension: &str,
            owner: &JobOwner,
            request_id: &str,
            spec: JobSpec,
        ) -> Result<String, JobAccessError> {
            self.record(format!("register {extension} {} {request_id}", owner.user))?;
            if let Ok(mut specs) = self.specs.lock() {
                specs.push(spec);
            }
            Ok("j1".into())
        }

        fn unregister(
            &self,
            extension: &str,
            owner: &JobOwner,
            request_id: &str,
            id: &str,
        ) -> Result<(), JobAccessError> {
            self.record(format!("unregister {extension} {} {request_id} {id}", owner.user))
        }

        fn get(&self, extension: &str, owner: &JobOwner, id: &str) -> Result<JobInfo, JobAccessError> {
            self.record(format!("get {extension} {} {id}", owner.user))?;
            Ok(job())
        }

        fn list(&self, extension: &str, owner: &JobOwner) -> Result<Vec<JobInfo>, JobAccessError> {
            self.record(format!("list {extension} {}", owner.user))?;
            Ok(vec![job()])
        }
    }

    type R = Result<(), Box<dyn std::error::Error>>;

    /// Makes the error a fake call fails with.
    type Failure = fn() -> JobAccessError;

    fn owner() -> JobOwner {
        JobOwner {
            user: "ana".into(),
            auth_source: crate::security::IdentitySource::Internal,
            backend_roles: vec![],
            consent: Ok(()),
        }
    }

    fn spec() -> scheduler::JobSpec {
        scheduler::JobSpec {
            name: "nightly".into(),
            schedule: scheduler::Schedule::Interval(60),
            params: r#"{"index":"logs"}"#.into(),
        }
    }

    fn view<'a>(ctx: &'a mut JobsCtx, extension: &'a Arc<str>, granted: bool) -> JobsView<'a> {
        JobsView { ctx, extension, request_id: "req-1", granted }
    }

    #[tokio::test]
    async fn calls_are_converted_both_ways() -> R {
        let fake = Arc::new(FakeJobs::default());
        let mut ctx = JobsCtx::Available { access: fake.clone(), owner: Ok(owner()) };
        let extension: Arc<str> = "reporter".into();
        let mut view = view(&mut ctx, &extension, true);

        assert_eq!(scheduler::Host::register(&mut view, spec()).await??, "j1");
        let specs = fake.specs.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            specs,
            vec![JobSpec {
                name: "nightly".into(),
                schedule: Schedule::Interval(60),
                params: r#"{"index":"logs"}"#.into(),
                options: JobOptions::default(),
            }]
        );
        let info = scheduler::Host::get(&mut view, "j1".into()).await??;
        assert_eq!((info.id.as_str(), info.name.as_str(), info.params.as_str()), ("j1", "nightly", "{}"));
        assert!(matches!(&info.schedule, scheduler::Schedule::Cron(c) if c == "0 3 * * *"));
        assert_eq!((info.enabled, info.next_run, info.last_run), (true, Some(42), None));
        assert_eq!(scheduler::Host::list_jobs(&mut view).await??.len(), 1);
        scheduler::Host::unregister(&mut view, "j1".into()).await??;
        assert_eq!(
            fake.seen(),
            vec![
                "register reporter ana req-1",
                "get reporter ana j1",
                "list reporter ana",
                "unregister reporter ana req-1 j1"
            ]
        );
        Ok(())
    }

    #[tokio::test]
    async fn domain_errors_become_wit_errors() -> R {
        let extension: Arc<str> = "reporter".into();
        let cases: [(Failure, &str); 4] = [
            (|| Denial::new(Gate::Consent, "no consent").into(), "Denied(\"no consent\")"),
            (|| JobAccessError::NotFound("j9".into()), "NotFound(\"no job `j9`\")"),
            (|| JobError::Contended("j1".into()).into(), "Conflict("),
            (|| JobError::Limit("at most 100".into()).into(), "Denied(\"at most 100\")"),
        ];
        for (fail, expected) in cases {
            let fake = Arc::new(FakeJobs { fail: Some(fail), ..FakeJobs::default() });
            let mut ctx = JobsCtx::Available { access: fake, owner: Ok(owner()) };
            let got = scheduler::Host::register(&mut view(&mut ctx, &extension, true), spec()).await?;
            let got = format!("{:?}", got.err());
            assert!(got.contains(expected), "{got} should hold {expected}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_withdrawn_grant_is_denied_even_when_linked() -> R {
        let fake = Arc::new(FakeJobs::default());
        let mut ctx = JobsCtx::Available { access: fake.clone(), owner: Ok(owner()) };
        let extension: Arc<str> = "reporter".into();
        let got = scheduler::Host::list_jobs(&mut view(&mut ctx, &extension, false)).await?;
        assert!(
            matches!(&got, Err(types::Error::Denied(m)) if m.contains("`scheduler` capability is not granted")),
            "{got:?}"
        );
        assert!(fake.seen().is_empty(), "no call reached the scheduler");
        Ok(())
    }

    #[tokio::test]
    async fn no_scheduler_is_unavailable_and_no_owner_is_denied() -> R {
        let extension: Arc<str> = "reporter".into();
        let got =
            scheduler::Host::register(&mut view(&mut JobsCtx::default(), &extension, true), spec()).await?;
        assert!(
            matches!(&got, Err(types::Error::Unavailable(m)) if m == "no scheduler is configured for this invocation"),
            "{got:?}"
        );
        let fake = Arc::new(FakeJobs::default());
        let mut ctx = JobsCtx::Available { access: fake.clone(), owner: Err(NoJobOwner::Anonymous) };
        let got = scheduler::Host::register(&mut view(&mut ctx, &extension, true), spec()).await?;
        assert!(
            matches!(&got, Err(types::Error::Denied(m)) if m.contains("this request has none (anonymous)")),
            "{got:?}"
        );
        assert!(fake.seen().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn zones_and_options_cross_the_boundary() -> R {
        let fake = Arc::new(FakeJobs::default());
        let mut ctx = JobsCtx::Available { access: fake.clone(), owner: Ok(owner()) };
        let extension: Arc<str> = "reporter".into();
        let mut view = view(&mut ctx, &extension, true);
        let zoned = scheduler::JobSpec {
            schedule: scheduler::Schedule::Cron("CRON_TZ=Europe/Berlin  0 3 * * *".into()),
            ..spec()
        };
        let options = scheduler::JobOptions { jitter: 0.25, catch_up: scheduler::CatchUp::Once };
        scheduler::Host::register_with(&mut view, zoned, options).await??;
        scheduler::Host::register(&mut view, spec()).await??;
        let specs = fake.specs.lock().map(|s| s.clone()).unwrap_or_default();
        let expected = Schedule::Cron { expr: "0 3 * * *".into(), timezone: Some("Europe/Berlin".into()) };
        assert_eq!(specs[0].schedule, expected);
        assert_eq!(specs[0].options, JobOptions { jitter: 0.25, catch_up: CatchUp::Once });
        assert_eq!(specs[1].options, JobOptions::default(), "plain `register`: no jitter, skip");
        // And back: the zone is named as it was given.
        assert!(matches!(
            schedule_to_wit(expected),
            scheduler::Schedule::Cron(c) if c == "CRON_TZ=Europe/Berlin 0 3 * * *"
        ));
        // A prefix without an expression leaves an empty one (refused by validation).
        let bare = schedule_from_wit(scheduler::Schedule::Cron("CRON_TZ=UTC".into()));
        assert_eq!(bare, Schedule::Cron { expr: String::new(), timezone: Some("UTC".into()) });
        assert!(bare.validate().is_err());
        Ok(())
    }
}
