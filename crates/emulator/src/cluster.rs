//! The core every other part of the emulator builds on: [`App`], the handle to the running
//! cluster's shared state, and the request context the HTTP layer hands to the parts that
//! answer requests ([`UserInfo`], [`Params`], [`SubRequest`]).
//!
//! It sits just above the store and below everything that serves or changes the cluster
//! (`server`, `subresources`, `auth`, `kubelet`), so none of those needs to import another
//! to reach the state: the module graph stays acyclic. It holds no behaviour of its own;
//! services with their own state (the authenticator's issued tokens, the kubelet's node) stay
//! with their modules and are handed to the HTTP layer next to the [`App`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::{Scope, State};

/// The running cluster, shared by request handlers, the kubelet and the reconciler task.
#[derive(Clone)]
pub struct App {
    /// Every object; one lock keeps resourceVersions and watch events totally ordered.
    pub state: Arc<Mutex<State>>,
    /// Woken after every write so the controllers settle the new state.
    pub reconcile: Arc<Notify>,
    /// Cancelled on shutdown; ends watches, log streams and the background tasks.
    pub cancel: CancellationToken,
    /// Where the API is served (plain HTTP): discovery and in-cluster clients name it.
    pub addr: SocketAddr,
}

impl App {
    /// The state, recovering from a poisoned lock (a panic elsewhere must not wedge the server).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Query parameters of a request.
pub type Params = HashMap<String, String>;

/// Who a request acts as, after authentication and impersonation: k8s.io/apiserver's
/// user.Info, which RBAC and the reviews decide on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// A request the generic store path does not serve (a subresource such as `pods/log`, or a
/// create-only virtual resource), as the HTTP layer hands it on.
pub struct SubRequest<'a> {
    /// The resource and namespace the path names, at the requested version.
    pub scope: &'a Scope,
    /// Object name ("" for collection requests).
    pub name: &'a str,
    pub subresource: Option<&'a str>,
    pub method: &'a Method,
    pub params: &'a Params,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    /// The authenticated (possibly impersonated) requester.
    pub user: &'a UserInfo,
}
