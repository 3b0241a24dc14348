//! Server-side sessions: an opaque id in the cookie, the user it belongs to on the server.

use std::{collections::HashMap, time::SystemTime};

use super::{ShardedMap, StoreFuture};

/// What the server keeps for one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The signed-in user.
    pub user_id: String,
    /// When the session ends.
    pub expires_at: SystemTime,
}

/// Keeps sessions by id.
pub trait SessionStore: Send + Sync + 'static {
    /// Stores `record` under `id`.
    fn insert<'a>(&'a self, id: &'a str, record: SessionRecord) -> StoreFuture<'a, ()>;
    /// The live session with `id` (an expired one is dropped and not returned).
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<SessionRecord>>;
    /// Ends the session with `id`.
    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;
}

/// The in-process session store.
#[derive(Debug)]
pub struct MemorySessionStore {
    sessions: ShardedMap<SessionRecord>,
}

impl Default for MemorySessionStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            sessions: ShardedMap::new(),
        }
    }

    fn shard(&self, id: &str) -> std::sync::MutexGuard<'_, HashMap<String, SessionRecord>> {
        self.sessions.shard(id)
    }

    /// Drops every expired session.
    pub fn evict_expired(&self) {
        let now = SystemTime::now();
        for mut shard in self.sessions.each() {
            shard.retain(|_, record| record.expires_at > now);
        }
    }
}

impl SessionStore for MemorySessionStore {
    fn insert<'a>(&'a self, id: &'a str, record: SessionRecord) -> StoreFuture<'a, ()> {
        let mut shard = self.shard(id);
        // Expired sessions are cleared as new ones arrive, so the map cannot grow without end.
        if shard.len() % 256 == 255 {
            let now = SystemTime::now();
            shard.retain(|_, record| record.expires_at > now);
        }
        shard.insert(id.to_owned(), record);
        Box::pin(std::future::ready(Ok(())))
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        let mut shard = self.shard(id);
        let found = match shard.get(id) {
            Some(record) if record.expires_at > SystemTime::now() => Some(record.clone()),
            Some(_) => {
                shard.remove(id);
                None
            }
            None => None,
        };
        Box::pin(std::future::ready(Ok(found)))
    }

    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        self.shard(id).remove(id);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn sessions_are_kept_until_removed_or_expired() {
        let store = MemorySessionStore::new();
        let live = SessionRecord {
            user_id: "u1".into(),
            expires_at: SystemTime::now() + Duration::from_secs(60),
        };
        store.insert("a", live.clone()).await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), Some(live));
        store.remove("a").await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), None);

        let expired = SessionRecord {
            user_id: "u2".into(),
            expires_at: SystemTime::now() - Duration::from_secs(1),
        };
        store.insert("b", expired).await.unwrap();
        assert_eq!(store.get("b").await.unwrap(), None);
    }
}
