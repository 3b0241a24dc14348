//! Server-side sessions: an opaque id in the cookie, the user it belongs to on the server.
//!
//! A session has two ends: its absolute lifetime (`SESSION_TTL`), and an idle end
//! (`SESSION_IDLE_TIMEOUT`) that each use moves on, so a session nobody uses stops working long
//! before a stolen or forgotten cookie's lifetime is over.

use std::{collections::HashMap, time::SystemTime};

use super::{ShardedMap, StoreFuture};

/// What the server keeps for one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The signed-in user.
    pub user_id: String,
    /// When the session ends however much it is used.
    pub expires_at: SystemTime,
    /// When it ends unless it is used before: [`SessionStore::touch`] moves it on, never past
    /// `expires_at`. Equal to `expires_at` when sessions have no idle timeout.
    pub idle_until: SystemTime,
}

impl SessionRecord {
    /// When the session ends if nothing moves its idle end on: the earlier of its two ends.
    pub fn ends_at(&self) -> SystemTime {
        self.expires_at.min(self.idle_until)
    }
}

/// Keeps sessions by id.
pub trait SessionStore: Send + Sync + 'static {
    /// Stores `record` under `id`.
    fn insert<'a>(&'a self, id: &'a str, record: SessionRecord) -> StoreFuture<'a, ()>;
    /// The live session with `id` (one that has ended is dropped and not returned).
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<SessionRecord>>;
    /// Moves the idle end of the live session `id` to `idle_until`, or to its `expires_at` if
    /// that comes first. A session that has ended or was removed stays gone: a touch racing a
    /// logout never brings the session back.
    fn touch<'a>(&'a self, id: &'a str, idle_until: SystemTime) -> StoreFuture<'a, ()>;
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

    /// Drops every session that has ended.
    pub fn evict_expired(&self) {
        let now = SystemTime::now();
        for mut shard in self.sessions.each() {
            shard.retain(|_, record| record.ends_at() > now);
        }
    }
}

impl SessionStore for MemorySessionStore {
    fn insert<'a>(&'a self, id: &'a str, record: SessionRecord) -> StoreFuture<'a, ()> {
        let mut shard = self.shard(id);
        // Expired sessions are cleared as new ones arrive, so the map cannot grow without end.
        if shard.len() % 256 == 255 {
            let now = SystemTime::now();
            shard.retain(|_, record| record.ends_at() > now);
        }
        shard.insert(id.to_owned(), record);
        Box::pin(std::future::ready(Ok(())))
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        let mut shard = self.shard(id);
        let found = match shard.get(id) {
            Some(record) if record.ends_at() > SystemTime::now() => Some(record.clone()),
            Some(_) => {
                shard.remove(id);
                None
            }
            None => None,
        };
        Box::pin(std::future::ready(Ok(found)))
    }

    fn touch<'a>(&'a self, id: &'a str, idle_until: SystemTime) -> StoreFuture<'a, ()> {
        let mut shard = self.shard(id);
        if let Some(record) = shard.get_mut(id) {
            if record.ends_at() > SystemTime::now() {
                record.idle_until = idle_until.min(record.expires_at);
            }
        }
        Box::pin(std::future::ready(Ok(())))
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

    fn record(user_id: &str, expires_in: Duration, idle_for: Duration) -> SessionRecord {
        let now = SystemTime::now();
        SessionRecord {
            user_id: user_id.into(),
            expires_at: now + expires_in,
            idle_until: now + idle_for,
        }
    }

    #[tokio::test]
    async fn sessions_are_kept_until_removed_or_expired() {
        let store = MemorySessionStore::new();
        let live = record("u1", Duration::from_secs(60), Duration::from_secs(60));
        store.insert("a", live.clone()).await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), Some(live));
        store.remove("a").await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), None);

        let mut expired = record("u2", Duration::ZERO, Duration::from_secs(60));
        expired.expires_at -= Duration::from_secs(1);
        store.insert("b", expired).await.unwrap();
        assert_eq!(store.get("b").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_idle_session_ends_and_a_touch_moves_its_idle_end_but_never_past_its_expiry() {
        let store = MemorySessionStore::new();
        let mut idle = record("u1", Duration::from_secs(60), Duration::ZERO);
        idle.idle_until -= Duration::from_secs(1);
        store.insert("idle", idle).await.unwrap();
        // Ended but still in the map (nothing has read it yet): a late touch does not bring it
        // back.
        store
            .touch("idle", SystemTime::now() + Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(store.get("idle").await.unwrap(), None, "idle past its end");

        let used = record("u2", Duration::from_secs(60), Duration::from_secs(5));
        store.insert("used", used.clone()).await.unwrap();
        let later = SystemTime::now() + Duration::from_secs(30);
        store.touch("used", later).await.unwrap();
        assert_eq!(store.get("used").await.unwrap().unwrap().idle_until, later);
        store
            .touch("used", SystemTime::now() + Duration::from_secs(3600))
            .await
            .unwrap();
        let touched = store.get("used").await.unwrap().unwrap();
        assert_eq!(touched.idle_until, used.expires_at, "capped at the expiry");
        assert_eq!(touched.ends_at(), used.expires_at);

        store.remove("used").await.unwrap();
        store.touch("used", later).await.unwrap();
        assert_eq!(
            store.get("used").await.unwrap(),
            None,
            "a logout stays a logout"
        );
    }
}
