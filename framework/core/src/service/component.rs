//! Components: the actors of a platform. A component is a value with state
//! behind `&self`, a mailbox, and lifecycle hooks; it provides services.
//!
//! Execution model: each component has one task. Calls start in the order
//! they arrive in its mailbox and run one at a time on that task; when a
//! call awaits (another service call, a timer, I/O) the task runs the next
//! ready call, so a method that calls out - even back into its own
//! component - never deadlocks it. Between two awaits a method runs alone,
//! as in Jadex: state needs a lock only to be shared across an await, and
//! that lock is never contended by another thread.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::registry::{Dispatcher, Job, LocalComponent, LocalService};
use super::{BoxFuture, CallContext, ComponentId, ServiceDispatch, ServiceInterface};
use crate::codec::CodecError;
use crate::platform::Platform;

/// Calls waiting in one component's mailbox; beyond it remote calls are
/// answered `Busy` and local ones wait.
const MAILBOX: usize = 1024;
/// Calls of one component in progress at once (waiting at an await).
const MAX_RUNNING_CALLS: usize = 1024;

/// A component's life. Both hooks run on the component's task: `started`
/// before any call, `stopping` after the last.
pub trait Component: Send + Sync + 'static {
    fn started(&self, context: &ComponentContext) -> impl Future<Output = ()> + Send {
        let _ = context;
        async {}
    }

    fn stopping(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// What a component learns about itself when it starts.
#[derive(Debug, Clone)]
pub struct ComponentContext {
    platform: Platform,
    id: ComponentId,
    name: Arc<str>,
}

impl ComponentContext {
    /// The platform it runs on: to find and call other services.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    pub fn id(&self) -> ComponentId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ComponentError {
    #[error("component {0} panicked in its started hook")]
    StartPanicked(String),
    #[error("component {component} provides service {service} twice")]
    DuplicateService {
        component: String,
        service: &'static str,
    },
    #[error("the platform is shut down")]
    Shutdown,
}

/// Builds a component: its name and the services it provides.
pub struct ComponentBuilder<C> {
    platform: Platform,
    component: Arc<C>,
    name: Option<String>,
    services: Vec<LocalService>,
}

impl<C> fmt::Debug for ComponentBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentBuilder")
            .field("name", &self.name)
            .field(
                "services",
                &self.services.iter().map(|s| s.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<C: Component> ComponentBuilder<C> {
    pub(crate) fn new(platform: Platform, component: C) -> Self {
        Self {
            platform,
            component: Arc::new(component),
            name: None,
            services: Vec::new(),
        }
    }

    /// A name for logs and lookups; default: the component type's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Offers the service `S` (a generated `<Trait>Server`) implemented by
    /// this component.
    pub fn provide<S: ServiceDispatch<C>>(mut self) -> Self {
        self.services.push(LocalService {
            name: S::Interface::NAME,
            methods: <S::Interface as ServiceInterface>::METHODS,
            dispatcher: Arc::new(Bound::<S, C> {
                component: Arc::clone(&self.component),
                service: PhantomData,
            }),
        });
        self
    }

    /// Starts the component's task, runs its `started` hook, then makes its
    /// services callable and announces them to every peer.
    pub async fn start(self) -> Result<ComponentHandle, ComponentError> {
        let name: Arc<str> = Arc::from(
            self.name
                .unwrap_or_else(|| short_type_name(std::any::type_name::<C>()).to_owned()),
        );
        for (i, service) in self.services.iter().enumerate() {
            if self.services[..i].iter().any(|s| s.name == service.name) {
                return Err(ComponentError::DuplicateService {
                    component: name.to_string(),
                    service: service.name,
                });
            }
        }
        let inner = Arc::clone(self.platform.inner());
        if *inner.shutdown.borrow() {
            return Err(ComponentError::Shutdown);
        }
        let id = inner.services.next_component_id();
        let (mailbox, jobs) = mpsc::channel(MAILBOX);
        let (stop, stopped) = watch::channel(false);
        let (kill, killed) = oneshot::channel();
        let (started, ready) = oneshot::channel();
        let context = ComponentContext {
            platform: self.platform.clone(),
            id,
            name: Arc::clone(&name),
        };
        let task = tokio::spawn(run(
            self.component,
            context,
            Lifeline {
                jobs,
                stop,
                killed,
                started,
                shutdown: inner.shutdown.clone(),
            },
        ));
        if ready.await != Ok(true) {
            return Err(ComponentError::StartPanicked(name.to_string()));
        }
        inner.services.register(
            &inner,
            id,
            LocalComponent {
                mailbox,
                stopped,
                services: self.services,
            },
        );
        tracing::info!(platform = %inner.name, component = %name, %id, "component started");
        Ok(ComponentHandle {
            platform: self.platform,
            id,
            name,
            kill: Some(kill),
            task: Some(task),
        })
    }
}

/// A running component. Dropping the handle leaves it running; `kill` ends it.
pub struct ComponentHandle {
    platform: Platform,
    id: ComponentId,
    name: Arc<str>,
    kill: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for ComponentHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentHandle")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ComponentHandle {
    pub fn id(&self) -> ComponentId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Withdraws its services (peers are told), stops calls in progress
    /// (their callers get `RemoteFailure::Stopped`), runs `stopping` and
    /// waits for the component's task to end.
    pub async fn kill(mut self) {
        let inner = Arc::clone(self.platform.inner());
        inner.services.unregister(&inner, self.id);
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        tracing::info!(platform = %inner.name, component = %self.name, id = %self.id, "component killed");
    }
}

/// The component task's ends of its channels.
struct Lifeline {
    jobs: mpsc::Receiver<Job>,
    stop: watch::Sender<bool>,
    killed: oneshot::Receiver<()>,
    started: oneshot::Sender<bool>,
    shutdown: watch::Receiver<bool>,
}

async fn run<C: Component>(component: Arc<C>, context: ComponentContext, lifeline: Lifeline) {
    let Lifeline {
        mut jobs,
        stop,
        mut killed,
        started,
        mut shutdown,
    } = lifeline;
    let ok = AssertUnwindSafe(component.started(&context))
        .catch_unwind()
        .await
        .is_ok();
    let _ = started.send(ok);
    if !ok {
        tracing::warn!(component = %context.name, "started hook panicked; component not started");
        return;
    }
    let mut running = FuturesUnordered::new();
    let mut detached = false;
    loop {
        tokio::select! {
            biased;
            Some(()) = running.next(), if !running.is_empty() => {}
            job = jobs.recv(), if running.len() < MAX_RUNNING_CALLS => match job {
                Some(job) => running.push(job),
                None => break,
            },
            kill = &mut killed, if !detached => match kill {
                Ok(()) => break,
                // The handle was dropped: run on until the platform stops.
                Err(_) => detached = true,
            },
            _ = shutdown.wait_for(|down| *down) => break,
        }
    }
    // Calls still running or queued see the stop and answer `Stopped`.
    let _ = stop.send(true);
    jobs.close();
    while let Some(job) = jobs.recv().await {
        running.push(job);
    }
    while running.next().await.is_some() {}
    if AssertUnwindSafe(component.stopping())
        .catch_unwind()
        .await
        .is_err()
    {
        tracing::warn!(component = %context.name, "stopping hook panicked");
    }
}

/// `S`'s dispatch bound to one component instance.
struct Bound<S, C> {
    component: Arc<C>,
    service: PhantomData<fn() -> S>,
}

impl<S: ServiceDispatch<C>, C: Send + Sync + 'static> Dispatcher for Bound<S, C> {
    fn dispatch(
        &self,
        method: usize,
        context: CallContext,
        arguments: &[u8],
    ) -> Result<BoxFuture<Result<Vec<u8>, CodecError>>, CodecError> {
        S::dispatch(&self.component, method, context, arguments)
    }
}

/// `shop::Warehouse` -> `Warehouse`, `Vec<a::B>` -> `Vec<a::B>` left alone.
fn short_type_name(full: &str) -> &str {
    if full.contains('<') {
        return full;
    }
    full.rsplit("::").next().unwrap_or(full)
}
