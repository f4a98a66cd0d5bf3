//! What every request of the proxy is served with: the upstream (swapped
//! when a minted credential is renewed) and the hosts the proxy answers.
//! Its own file, since the server and the watches it resumes both use it.

use std::sync::RwLock;

use super::filter::AcceptHosts;
use crate::cluster::upstream::Upstream;
use crate::redact;
use crate::trace;

/// What every request is served with.
pub struct Context {
    /// Swapped whole when the proxy renews a credential it minted: a request
    /// takes the one current when it arrives.
    upstream: RwLock<Upstream>,
    pub accept_hosts: AcceptHosts,
}

impl Context {
    pub fn new(upstream: Upstream, accept_hosts: AcceptHosts) -> Context {
        Context { upstream: RwLock::new(upstream), accept_hosts }
    }

    /// The upstream for a new request.
    pub fn upstream(&self) -> Upstream {
        self.upstream.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `upstream` in place for the requests that follow.
    pub fn replace_upstream(&self, upstream: Upstream) {
        *self.upstream.write().unwrap_or_else(|e| e.into_inner()) = upstream;
    }

    /// A `-v` line, without the proxy's credentials (a path or an error may quote one).
    pub fn trace(&self, line: impl FnOnce() -> String) {
        trace::line(|| redact::text(&line(), &self.upstream().credentials()).into_owned());
    }
}
