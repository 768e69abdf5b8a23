//! Clients built from connections, shared by the provider crates.
//!
//! A provider's client holds what is costly to make or must live as long as a connection's
//! configuration does (an HTTP connection pool, an installation token, the upstream's rate-limit
//! budget). [`ClientCache`] builds one per connection name and builds it again when the
//! connection's revision or its content ([`Connection::fingerprint`]) changes: connections built in
//! code all have revision 0, and two resolvers may hand out different connections under one name.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::connection::Connection;
use crate::error::IntegrationError;

/// Built clients by connection name. See the [module documentation](self).
pub struct ClientCache<C> {
    /// name -> (revision, fingerprint, client)
    clients: Mutex<HashMap<String, (u64, u64, C)>>,
}

impl<C> Default for ClientCache<C> {
    fn default() -> Self {
        Self { clients: Mutex::default() }
    }
}

impl<C> std::fmt::Debug for ClientCache<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("ClientCache").field("connections", &clients.keys().collect::<Vec<_>>()).finish()
    }
}

impl<C: Clone> ClientCache<C> {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The client of `connection`, made with `build` the first time and whenever the connection's
    /// revision or content changed since. A failed build leaves the cache as it was.
    pub fn get_or_build(
        &self,
        connection: &Connection,
        build: impl FnOnce(&Connection) -> Result<C, IntegrationError>,
    ) -> Result<C, IntegrationError> {
        let print = connection.fingerprint();
        // Built under the lock: concurrent first calls make one client, not one each.
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((revision, known, client)) = clients.get(&connection.name)
            && *revision == connection.revision
            && *known == print
        {
            return Ok(client.clone());
        }
        let client = build(connection)?;
        clients.insert(connection.name.clone(), (connection.revision, print, client.clone()));
        Ok(client)
    }

    /// The client last built for a connection name, if any.
    pub fn existing(&self, name: &str) -> Option<C> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).get(name).map(|(_, _, c)| c.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde_json::json;

    use super::*;

    #[test]
    fn a_client_is_rebuilt_when_revision_or_content_changes_and_only_then() {
        let cache: ClientCache<u32> = ClientCache::new();
        let builds = AtomicU32::new(0);
        let build = |_: &Connection| Ok(builds.fetch_add(1, Ordering::SeqCst) + 1);
        let conn = |url: &str| Connection::new("jira", "jira", json!({"base_url": url}));
        assert_eq!(cache.get_or_build(&conn("http://a"), build).ok(), Some(1));
        assert_eq!(cache.get_or_build(&conn("http://a"), build).ok(), Some(1), "same connection: cached");
        assert_eq!(
            cache.get_or_build(&conn("http://b"), build).ok(),
            Some(2),
            "same name and revision, new content"
        );
        let mut next = conn("http://b");
        next.revision = 1;
        assert_eq!(cache.get_or_build(&next, build).ok(), Some(3), "new revision");
        assert_eq!(cache.existing("jira"), Some(3));
        assert_eq!(cache.existing("other"), None);

        let failing = |_: &Connection| Err(IntegrationError::configuration("jira", "no base_url"));
        let mut broken = conn("http://c");
        broken.revision = 2;
        assert!(cache.get_or_build(&broken, failing).is_err());
        assert_eq!(cache.existing("jira"), Some(3), "a failed build keeps the last client");
        assert_eq!(builds.load(Ordering::SeqCst), 3);
    }
}
