//! State that outlives a request — sessions, rate-limit counters and idempotency keys — behind
//! small async traits.
//!
//! The in-process implementations serve one machine; a multi-machine deployment swaps in the
//! shared ones in `store::redis` (cargo feature `redis`) without touching app code, because the
//! framework only ever talks to the traits.

mod idempotency;
mod rate_limit;
#[cfg(feature = "redis")]
pub mod redis;
mod session;

use std::{future::Future, pin::Pin};

#[cfg(feature = "redis")]
pub use self::redis::{RedisIdempotencyStore, RedisRateLimitStore, RedisSessionStore, RedisStores};
pub use idempotency::{
    Claim, IdempotencyStore, MemoryIdempotencyStore, StoredResponse, IDEMPOTENCY_MEMORY_BUDGET,
};
pub use rate_limit::{Decision, MemoryRateLimitStore, RateKey, RateLimitStore, Subject};
pub use session::{MemorySessionStore, SessionRecord, SessionStore};

/// The boxed future the store traits return (they are used as trait objects).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backing service failed.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for crate::ApiError {
    fn from(error: StoreError) -> Self {
        crate::ApiError::unavailable("store_unavailable", "A backing store is unavailable.")
            .with_source(error)
    }
}

/// How many shards the in-process stores split their maps into, so concurrent requests on
/// different keys rarely wait on one lock.
const SHARDS: usize = 16;

fn shard_of<K: std::hash::Hash + ?Sized>(key: &K) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
    (hash as usize) % SHARDS
}

/// A map by string key split into [`SHARDS`] locked parts: what the in-process stores keep.
#[derive(Debug)]
struct ShardedMap<V> {
    shards: Vec<std::sync::Mutex<std::collections::HashMap<String, V>>>,
}

impl<V> ShardedMap<V> {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| std::sync::Mutex::new(std::collections::HashMap::new()))
                .collect(),
        }
    }

    /// The locked part holding `key`.
    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, V>> {
        self.shards[shard_of(key)]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every part in turn, locked.
    fn each(
        &self,
    ) -> impl Iterator<Item = std::sync::MutexGuard<'_, std::collections::HashMap<String, V>>> {
        self.shards.iter().map(|shard| {
            shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        })
    }
}
