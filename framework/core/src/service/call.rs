//! The client side of a call: what a generated `<Trait>Client` holds and
//! the future its methods return.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::registry::CURRENT_DEADLINE;
use super::{BoxFuture, CallError, MethodInfo, ServiceInterface, ServiceRef};
use crate::codec;
use crate::platform::Platform;

/// A client's connection to one service instance: where it is and how long
/// calls may take. Cheap to clone.
#[derive(Clone)]
pub struct ServiceHandle {
    platform: Platform,
    target: ServiceRef,
    methods: &'static [MethodInfo],
    timeout: Option<Duration>,
}

impl fmt::Debug for ServiceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceHandle")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ServiceHandle {
    pub(crate) fn new<C: ServiceInterface>(platform: Platform, target: ServiceRef) -> Self {
        Self {
            platform,
            target,
            methods: C::METHODS,
            timeout: None,
        }
    }

    /// The service instance calls go to.
    pub fn target(&self) -> &ServiceRef {
        &self.target
    }

    /// The same handle with another deadline for each call (default:
    /// `Limits::call_timeout`). A call made while serving another never
    /// outlives the deadline of the call it serves.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// Calls method `method` (an index into the interface's methods) with
    /// `arguments`, a tuple of the method's arguments. Used by generated
    /// clients; the arguments are encoded before this returns.
    pub fn call<A, R>(&self, method: usize, arguments: &A) -> Call<R>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + Send + 'static,
    {
        let Some(info) = self.methods.get(method) else {
            let error = CallError::NoSuchMethod {
                service: self.target.service.to_string(),
                method: format!("#{method}"),
            };
            return Call::ready(Err(error));
        };
        let encoded = match codec::encode(arguments) {
            Ok(encoded) => encoded,
            Err(error) => {
                return Call::ready(Err(CallError::Malformed {
                    detail: error.to_string(),
                }));
            }
        };
        let inner = Arc::clone(self.platform.inner());
        let target = self.target.clone();
        let timeout = self.timeout.unwrap_or(inner.services.call_timeout);
        let mut deadline = Instant::now() + timeout;
        if let Ok(inherited) = CURRENT_DEADLINE.try_with(|deadline| *deadline) {
            deadline = deadline.min(inherited);
        }
        let name = info.name;
        Call {
            future: Box::pin(async move {
                let services = &inner.services;
                let reply = if services.is_local(target.platform) {
                    services
                        .call_local(&target, name, encoded, deadline)
                        .await?
                } else {
                    services
                        .call_remote(&inner, &target, name, encoded, deadline)
                        .await?
                };
                codec::decode(&reply).map_err(|error| CallError::Malformed {
                    detail: error.to_string(),
                })
            }),
        }
    }
}

/// A call in progress. Dropping it cancels the call: the remote side stops
/// the method at its next await.
#[must_use = "a call does nothing unless awaited, and is cancelled when dropped"]
pub struct Call<R> {
    future: BoxFuture<Result<R, CallError>>,
}

impl<R: Send + 'static> Call<R> {
    fn ready(result: Result<R, CallError>) -> Self {
        Self {
            future: Box::pin(std::future::ready(result)),
        }
    }
}

impl<R> Future for Call<R> {
    type Output = Result<R, CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<R> fmt::Debug for Call<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").finish_non_exhaustive()
    }
}
