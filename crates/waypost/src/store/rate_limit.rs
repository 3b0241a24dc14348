//! Rate-limit counters: a fixed window per key, as the contract words it — exactly the configured
//! number of requests pass within a window, then none until it ends.
//!
//! A key's state is when its window ends and how many requests it has counted. The first request
//! after a window ended opens the next one, `window` long. The check and the update happen under
//! one lock (or one Lua script in Redis), so exactly the configured number pass, also under
//! concurrency. A key whose window has ended holds no information and is evicted, which bounds
//! memory by the number of clients active within one window.

use std::{
    collections::HashMap,
    fmt,
    hash::{BuildHasher, BuildHasherDefault, Hasher},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{StoreFuture, SHARDS};
use crate::RateLimit;

/// Who is counted.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Subject<'a> {
    /// An anonymous caller, by client IP.
    Ip(IpAddr),
    /// A signed-in caller, by user id.
    User(&'a str),
}

/// One counter: a route's bucket for one subject.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct RateKey<'a> {
    /// The route's pattern (each route counts separately).
    pub route: &'a str,
    /// Who is counted.
    pub subject: Subject<'a>,
}

impl fmt::Display for RateKey<'_> {
    /// The key as a shared store names it: `/api/hello|ip:127.0.0.1`, `/api/generate|u:42`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subject {
            Subject::Ip(ip) => write!(f, "{}|ip:{ip}", self.route),
            Subject::User(id) => write!(f, "{}|u:{id}", self.route),
        }
    }
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may pass.
    pub allowed: bool,
    /// Requests left right now.
    pub remaining: u32,
    /// When the quota is back in full.
    pub reset_after: Duration,
    /// When a refused request may try again (zero when allowed).
    pub retry_after: Duration,
}

/// Counts requests per key.
pub trait RateLimitStore: Send + Sync + 'static {
    /// Counts one request for `key` against `limit` and says whether it passes.
    fn check<'a>(&'a self, key: RateKey<'a>, limit: RateLimit) -> StoreFuture<'a, Decision>;

    /// The same, answered on the spot by stores that need no I/O (the in-process one), so the
    /// hot path allocates no future; `None` means "call [`check`](Self::check)".
    fn check_inline(&self, key: RateKey<'_>, limit: RateLimit) -> Option<Decision> {
        let _ = (key, limit);
        None
    }
}

/// The in-process store: sharded maps of key hash → window.
///
/// Keys are kept as 64-bit seeded hashes (foldhash's quality variant, seeded per store): a
/// lookup never allocates, and a collision — about one in 2^64 per pair — would at worst make
/// two callers share a window. Nobody can aim for one: clients do not choose their key (the
/// route is fixed, the address is the socket's, the user id the server's) and never see a
/// hash. SipHash would do the same at several times the cost, on every request.
#[derive(Debug)]
pub struct MemoryRateLimitStore {
    shards: Vec<Mutex<Shard>>,
    epoch: Instant,
    hasher: foldhash::quality::RandomState,
}

#[derive(Debug, Default)]
struct Shard {
    /// Key hash → its current window.
    windows: HashMap<u64, Window, BuildHasherDefault<KeyedHash>>,
    inserts_since_sweep: usize,
}

/// One key's current window.
#[derive(Clone, Copy, Debug)]
struct Window {
    /// When it ends, in nanoseconds since the store's epoch.
    ends_at: u64,
    /// Requests counted in it (passed ones; a refused request is not counted).
    counted: u32,
}

/// The map's hasher for keys that already are seeded hash values: it passes them through
/// instead of hashing them a second time.
#[derive(Debug, Default)]
struct KeyedHash(u64);

impl Hasher for KeyedHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are ever hashed; fold anything else in rather than lose it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// After this many new keys a shard drops its idle keys.
const SWEEP_EVERY: usize = 1024;

impl Default for MemoryRateLimitStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRateLimitStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            epoch: Instant::now(),
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    /// How many keys are held (idle ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().map(|s| s.windows.len()).unwrap_or(0))
            .sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every key whose quota is back in full.
    pub fn evict_idle(&self) {
        let now = nanos(self.epoch.elapsed());
        for shard in &self.shards {
            if let Ok(mut shard) = shard.lock() {
                shard.windows.retain(|_, window| window.ends_at > now);
                shard.inserts_since_sweep = 0;
            }
        }
    }

    /// The seeded hash of `key`, fed to the hasher in one piece: the route, a separator that UTF-8
    /// never contains, the subject's kind and its bytes (a fixed size for addresses, the rest
    /// for a user id). One write instead of one per field halves the hashing on every request.
    fn key_hash(&self, key: RateKey<'_>) -> u64 {
        let mut buffer = [0u8; 128];
        let route = key.route.as_bytes();
        let subject: (u8, &[u8], [u8; 16]) = match key.subject {
            Subject::Ip(IpAddr::V4(ip)) => (4, &[], ip.to_ipv6_mapped().octets()),
            Subject::Ip(IpAddr::V6(ip)) => (6, &[], ip.octets()),
            Subject::User(id) => (b'u', id.as_bytes(), [0; 16]),
        };
        let (kind, id, address) = subject;
        let length = route.len() + 2 + if id.is_empty() { 16 } else { id.len() };
        if length > buffer.len() {
            return self.hasher.hash_one(key);
        }
        buffer[..route.len()].copy_from_slice(route);
        buffer[route.len()] = 0xff;
        buffer[route.len() + 1] = kind;
        let rest = &mut buffer[route.len() + 2..length];
        if id.is_empty() {
            rest.copy_from_slice(&address);
        } else {
            rest.copy_from_slice(id);
        }
        let mut hasher = self.hasher.build_hasher();
        hasher.write(&buffer[..length]);
        hasher.finish()
    }

    /// One request at `now` (time since the store's epoch), counted synchronously. Times are
    /// kept as nanoseconds in a `u64` (585 years from the epoch), so each step is 64-bit
    /// arithmetic.
    pub fn check_at(&self, key: RateKey<'_>, limit: RateLimit, now: Duration) -> Decision {
        let requests = limit.requests.max(1);
        let length = nanos(limit.window).max(1);
        let now = nanos(now);
        let key = self.key_hash(key);
        let mut shard = self.shards[(key % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let shard = &mut *shard;
        let opened = Window {
            ends_at: now.saturating_add(length),
            counted: 0,
        };
        let known = shard.windows.len();
        let window = shard.windows.entry(key).or_insert(opened);
        if window.ends_at <= now {
            *window = opened;
        }
        let reset_after = Duration::from_nanos(window.ends_at - now);
        let decision = if window.counted >= requests {
            Decision {
                allowed: false,
                remaining: 0,
                reset_after,
                retry_after: reset_after,
            }
        } else {
            window.counted += 1;
            Decision {
                allowed: true,
                remaining: requests - window.counted,
                reset_after,
                retry_after: Duration::ZERO,
            }
        };
        if shard.windows.len() > known {
            shard.inserts_since_sweep += 1;
            if shard.inserts_since_sweep >= SWEEP_EVERY {
                shard.windows.retain(|_, window| window.ends_at > now);
                shard.inserts_since_sweep = 0;
            }
        }
        decision
    }
}

/// `duration` in nanoseconds, saturating at `u64::MAX`.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl RateLimitStore for MemoryRateLimitStore {
    fn check<'a>(&'a self, key: RateKey<'a>, limit: RateLimit) -> StoreFuture<'a, Decision> {
        let decision = self.check_at(key, limit, self.epoch.elapsed());
        Box::pin(std::future::ready(Ok(decision)))
    }

    fn check_inline(&self, key: RateKey<'_>, limit: RateLimit) -> Option<Decision> {
        Some(self.check_at(key, limit, self.epoch.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_PER_MINUTE: RateLimit = RateLimit::new(10, Duration::from_secs(60));

    fn key(name: &str) -> RateKey<'_> {
        RateKey {
            route: "/api/test",
            subject: Subject::User(name),
        }
    }

    #[test]
    fn exactly_the_limit_passes_within_a_window_then_the_next_one_opens() {
        let store = MemoryRateLimitStore::new();
        let start = Duration::from_secs(100);
        let passed = (0..30)
            .filter(|_| store.check_at(key("k"), TEN_PER_MINUTE, start).allowed)
            .count();
        assert_eq!(passed, 10);
        let refused = store.check_at(key("k"), TEN_PER_MINUTE, start);
        assert_eq!(refused.retry_after, Duration::from_secs(60));
        assert_eq!(refused.remaining, 0);
        // Nothing passes for the rest of the window, however it is spread out.
        for second in [6, 30, 59] {
            let later = store.check_at(
                key("k"),
                TEN_PER_MINUTE,
                start + Duration::from_secs(second),
            );
            assert!(!later.allowed, "at +{second}s");
            assert_eq!(later.retry_after, Duration::from_secs(60 - second));
        }
        // The next window starts in full.
        let next = start + Duration::from_secs(60);
        let passed = (0..30)
            .filter(|_| store.check_at(key("k"), TEN_PER_MINUTE, next).allowed)
            .count();
        assert_eq!(passed, 10);
    }

    #[test]
    fn a_window_opens_at_the_first_request_after_the_last_one_ended() {
        let store = MemoryRateLimitStore::new();
        let first = store.check_at(key("k"), TEN_PER_MINUTE, Duration::from_secs(10));
        assert_eq!(first.reset_after, Duration::from_secs(60));
        // Long idle: the next request opens a fresh window of its own.
        let later = store.check_at(key("k"), TEN_PER_MINUTE, Duration::from_secs(500));
        assert_eq!(
            (later.remaining, later.reset_after),
            (9, Duration::from_secs(60))
        );
    }

    #[test]
    fn remaining_counts_down() {
        let store = MemoryRateLimitStore::new();
        let now = Duration::from_secs(1);
        let remaining: Vec<u32> = (0..3)
            .map(|_| store.check_at(key("k"), TEN_PER_MINUTE, now).remaining)
            .collect();
        assert_eq!(remaining, [9, 8, 7]);
    }

    #[test]
    fn keys_print_as_shared_stores_name_them() {
        let ip = RateKey {
            route: "/api/hello",
            subject: Subject::Ip("127.0.0.2".parse().unwrap()),
        };
        assert_eq!(ip.to_string(), "/api/hello|ip:127.0.0.2");
        assert_eq!(key("42").to_string(), "/api/test|u:42");
    }

    #[test]
    fn keys_are_independent() {
        let store = MemoryRateLimitStore::new();
        let now = Duration::from_secs(1);
        for _ in 0..10 {
            assert!(store.check_at(key("a"), TEN_PER_MINUTE, now).allowed);
        }
        assert!(!store.check_at(key("a"), TEN_PER_MINUTE, now).allowed);
        assert!(store.check_at(key("b"), TEN_PER_MINUTE, now).allowed);
    }

    #[test]
    fn every_part_of_a_key_tells_keys_apart() {
        let store = MemoryRateLimitStore::new();
        let long_id = "u".repeat(300);
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let keys = [
            RateKey {
                route: "/a",
                subject: Subject::Ip(v4),
            },
            RateKey {
                route: "/b",
                subject: Subject::Ip(v4),
            },
            RateKey {
                route: "/a",
                subject: Subject::Ip(mapped),
            },
            RateKey {
                route: "/a",
                subject: Subject::Ip("10.0.0.2".parse().unwrap()),
            },
            RateKey {
                route: "/a",
                subject: Subject::User("42"),
            },
            RateKey {
                route: "/a",
                subject: Subject::User(""),
            },
            RateKey {
                route: "/a4",
                subject: Subject::User("2"),
            },
            RateKey {
                route: "/a",
                subject: Subject::User(&long_id),
            },
        ];
        let hashes: std::collections::HashSet<u64> =
            keys.iter().map(|key| store.key_hash(*key)).collect();
        assert_eq!(hashes.len(), keys.len());
        for key in keys {
            assert_eq!(store.key_hash(key), store.key_hash(key));
        }
    }

    #[test]
    fn idle_keys_are_evicted() {
        let store = MemoryRateLimitStore::new();
        for i in 0..5000 {
            store.check_at(
                key(&format!("client-{i}")),
                TEN_PER_MINUTE,
                Duration::from_secs(1),
            );
        }
        assert_eq!(store.len(), 5000);
        // Long after the window, new traffic sweeps the old keys away.
        let later = Duration::from_secs(1000);
        for i in 0..(SHARDS * SWEEP_EVERY) {
            store.check_at(key(&format!("new-{i}")), TEN_PER_MINUTE, later);
        }
        assert!(
            store.len() <= SHARDS * SWEEP_EVERY + SHARDS,
            "{}",
            store.len()
        );
        store.evict_idle();
        assert_eq!(
            store.len(),
            SHARDS * SWEEP_EVERY,
            "only keys active in the window remain"
        );
    }
}
