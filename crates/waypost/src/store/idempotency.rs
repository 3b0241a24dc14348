//! Idempotency keys: the first answer to a request sent with an `Idempotency-Key`, kept so that
//! a retry with the same key gets that answer again instead of doing the work twice.
//!
//! A key is claimed before the handler runs (so two concurrent requests with one key cannot both
//! run it), then completed with the answer, or released when there is nothing to keep (a server
//! error, a streamed answer) so a retry runs again. A key names one request: the claim carries a
//! fingerprint of it, and the key used again for a different request is a mismatch. The guard
//! that uses this store is in `layers/route.rs` (`RouteConfig::idempotent`).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use super::{ShardedMap, StoreFuture};

/// An answer as kept for replay.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredResponse {
    /// The status code.
    pub status: u16,
    /// The headers to send again (never `Set-Cookie`: a replay hands out no session).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// What claiming a key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key was free and is now held for this request: complete or release it.
    Started,
    /// A request with this key is still being answered.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
    /// The key's request was answered: this is the answer.
    Replay(StoredResponse),
}

/// Keeps idempotency keys and their answers.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for the request with `fingerprint`, held for at most `hold` while it runs.
    fn claim<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a str,
        hold: Duration,
    ) -> StoreFuture<'a, Claim>;
    /// Keeps `response` as the answer for `key`, for `keep`.
    fn complete<'a>(
        &'a self,
        key: &'a str,
        response: StoredResponse,
        keep: Duration,
    ) -> StoreFuture<'a, ()>;
    /// Frees `key`: a retry with it runs again.
    fn release<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;
}

/// One key in the in-process store.
#[derive(Debug)]
struct Entry {
    fingerprint: String,
    /// `None` while the request runs.
    answer: Option<StoredResponse>,
    expires_at: Instant,
}

/// The in-process idempotency store.
#[derive(Debug)]
pub struct MemoryIdempotencyStore {
    keys: ShardedMap<Entry>,
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryIdempotencyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            keys: ShardedMap::new(),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.keys.shard(key)
    }
}

impl IdempotencyStore for MemoryIdempotencyStore {
    fn claim<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a str,
        hold: Duration,
    ) -> StoreFuture<'a, Claim> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        // Expired keys are cleared as new ones arrive, so the map cannot grow without end.
        if shard.len() % 256 == 255 {
            shard.retain(|_, entry| entry.expires_at > now);
        }
        let claim = match shard.get(key) {
            Some(entry) if entry.expires_at > now => {
                if entry.fingerprint != fingerprint {
                    Claim::Mismatch
                } else if let Some(answer) = &entry.answer {
                    Claim::Replay(answer.clone())
                } else {
                    Claim::InFlight
                }
            }
            _ => {
                shard.insert(
                    key.to_owned(),
                    Entry {
                        fingerprint: fingerprint.to_owned(),
                        answer: None,
                        expires_at: now + hold,
                    },
                );
                Claim::Started
            }
        };
        Box::pin(std::future::ready(Ok(claim)))
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        response: StoredResponse,
        keep: Duration,
    ) -> StoreFuture<'a, ()> {
        if let Some(entry) = self.shard(key).get_mut(key) {
            entry.answer = Some(response);
            entry.expires_at = Instant::now() + keep;
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn release<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        self.shard(key).remove(key);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> StoredResponse {
        StoredResponse {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn a_key_is_claimed_once_then_replayed_and_names_one_request() {
        let store = MemoryIdempotencyStore::new();
        let hold = Duration::from_secs(60);
        assert_eq!(store.claim("k", "fp1", hold).await.unwrap(), Claim::Started);
        assert_eq!(
            store.claim("k", "fp1", hold).await.unwrap(),
            Claim::InFlight
        );
        assert_eq!(
            store.claim("k", "fp2", hold).await.unwrap(),
            Claim::Mismatch
        );
        store.complete("k", answer("{}"), hold).await.unwrap();
        assert_eq!(
            store.claim("k", "fp1", hold).await.unwrap(),
            Claim::Replay(answer("{}"))
        );
        assert_eq!(
            store.claim("k", "fp2", hold).await.unwrap(),
            Claim::Mismatch
        );
        // Released: the next claim runs again.
        store.release("k").await.unwrap();
        assert_eq!(store.claim("k", "fp2", hold).await.unwrap(), Claim::Started);
        // Expired: free again.
        assert_eq!(
            store.claim("e", "fp", Duration::ZERO).await.unwrap(),
            Claim::Started
        );
        assert_eq!(
            store.claim("e", "other", hold).await.unwrap(),
            Claim::Started
        );
    }
}
