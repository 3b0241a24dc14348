//! Sessions and rate-limit counters in Redis, so every instance of an app sees the same ones:
//! a login on one machine is a session on all, and a limit counts requests on all of them.
//!
//! One multiplexed connection per app (redis' `ConnectionManager`, which reconnects by itself),
//! over TLS for a `rediss://` URL (rustls, the bundled webpki roots);
//! every key starts with a prefix (`waypost:` by default) so apps can share a server. Sessions
//! are stored under a SHA-256 of their id — whoever reads the Redis keys does not get
//! usable session cookies — with the session's own end as the key's expiry, which a use moves
//! on by one Lua script that never moves it past the session's lifetime and never brings back a
//! session that is gone. Ends are sent relative to now, so Redis counts them on its own clock.
//! Rate limits run the same fixed windows as the in-process store, as one Lua script on Redis'
//! clock (the key's own expiry is the window), so the check and the update are one atomic step
//! whichever instance asks and however the instances' clocks drift.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use waypost::{security::{Security, SecuritySettings}, store::RedisStores};
//!
//! let stores = RedisStores::connect("redis://127.0.0.1:6379").await?;
//! let security = stores.install(Security::new(SecuritySettings::default())?);
//! # Ok(()) }
//! ```

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    AsyncCommands, Script,
};
use sha2::{Digest, Sha256};

use super::{
    Claim, Decision, IdempotencyStore, RateKey, RateLimitStore, SessionRecord, SessionStore,
    StoreError, StoreFuture, StoredResponse,
};
use crate::{security::Security, RateLimit};

/// The prefix of every key, unless [`RedisStores::with_prefix`] sets another.
pub const DEFAULT_PREFIX: &str = "waypost:";

/// One request counted in its key's fixed window, atomically, on Redis' clock. KEYS[1]: the
/// counter; ARGV: the limit, the window (ms). The first request of a window creates the key with
/// the window as its expiry; a refused request is not counted. Returns {allowed (0/1), requests
/// counted, ms until the window ends}.
const WINDOW_SCRIPT: &str = r"
local limit = tonumber(ARGV[1])
local counted = tonumber(redis.call('GET', KEYS[1]) or '0')
local left = redis.call('PTTL', KEYS[1])
if counted == 0 or left < 0 then
  counted = 0
  left = tonumber(ARGV[2])
  redis.call('SET', KEYS[1], '0', 'PX', left)
end
if counted >= limit then
  return {0, counted, left}
end
redis.call('INCR', KEYS[1])
return {1, counted + 1, left}
";

/// Moves a live session's idle end, atomically. KEYS[1]: the session; ARGV[1]: the wanted idle
/// end, in ms from now. The key's expiry becomes that, or the session's own expiry (the ms
/// since the epoch its stored value starts with, read against Redis' clock) if that comes
/// first. Times go in relative to now, so an instance whose clock is off does not move the end
/// by its error. A key that is gone — ended, logged out — stays gone.
const TOUCH_SCRIPT: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then
  return 0
end
local wanted = tonumber(ARGV[1])
local expires = tonumber(string.match(value, '^(%d+):'))
if expires then
  local time = redis.call('TIME')
  local left = expires - (tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))
  if left < wanted then
    wanted = left
  end
end
if wanted <= 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], wanted)
end
return 1
";

/// The multiplexed, self-reconnecting connection every store shares (redis' manager has no
/// `Debug` of its own).
#[derive(Clone)]
struct Connection(ConnectionManager);

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionManager")
    }
}

/// A connection to Redis and the key prefix: makes the session and rate-limit stores.
#[derive(Clone, Debug)]
pub struct RedisStores {
    connection: Connection,
    prefix: Arc<str>,
}

impl RedisStores {
    /// Connects to `url` (`redis://host:port/db`, `rediss://…` is not supported by this build).
    ///
    /// # Errors
    /// The URL does not parse, or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        // Every request may wait on Redis (rate limits): a server that is gone or stuck must
        // turn into a quick 503, not a hanging request. Reconnects are tried in the background.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            connection: Connection(connection),
            prefix: Arc::from(DEFAULT_PREFIX),
        })
    }

    /// Puts every key under `prefix` instead of `waypost:` (several apps on one server, tests).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into());
        self
    }

    /// The session store.
    pub fn sessions(&self) -> RedisSessionStore {
        RedisSessionStore {
            connection: self.connection.clone(),
            prefix: format!("{}session:", self.prefix),
            touch: Script::new(TOUCH_SCRIPT),
        }
    }

    /// The rate-limit store.
    pub fn rate_limits(&self) -> RedisRateLimitStore {
        RedisRateLimitStore {
            connection: self.connection.clone(),
            // `rlw:` (rate limit, window): a key space of its own, so counters of the earlier
            // GCRA scheme (`rl:`, a time) are never read as counts during a rolling deploy.
            prefix: format!("{}rlw:", self.prefix),
            script: Script::new(WINDOW_SCRIPT),
        }
    }

    /// The idempotency-key store.
    pub fn idempotency(&self) -> RedisIdempotencyStore {
        RedisIdempotencyStore {
            connection: self.connection.clone(),
            prefix: format!("{}idem:", self.prefix),
            claim: Script::new(CLAIM_SCRIPT),
            complete: Script::new(COMPLETE_SCRIPT),
            release: Script::new(RELEASE_SCRIPT),
        }
    }

    /// `security` with its sessions, rate limits and idempotency keys kept here.
    pub fn install(&self, security: Security) -> Security {
        security
            .with_session_store(Arc::new(self.sessions()))
            .with_rate_limit_store(Arc::new(self.rate_limits()))
            .with_idempotency_store(Arc::new(self.idempotency()))
    }
}

fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {error}"))
}

/// The longest a store call waits for Redis, connecting included: past it the request gets its
/// 503 at once. The connection manager's own response timeout covers a command on a live
/// connection only; while a server that is gone is being reconnected to (three tries of up to
/// 2 s each), every command would wait for that.
const STORE_CALL_DEADLINE: Duration = Duration::from_millis(1500);

/// `call`'s outcome, or unavailable once [`STORE_CALL_DEADLINE`] has passed.
async fn within_deadline<T>(
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(STORE_CALL_DEADLINE, call)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "redis: no answer within {} ms",
                STORE_CALL_DEADLINE.as_millis()
            )))
        })
}

/// Sessions in Redis (see the module documentation).
#[derive(Clone, Debug)]
pub struct RedisSessionStore {
    connection: Connection,
    prefix: String,
    touch: Script,
}

impl RedisSessionStore {
    fn key(&self, id: &str) -> String {
        hashed_key(&self.prefix, id)
    }
}

/// The Redis key for `name` under `prefix`: the prefix and the SHA-256 of the name, in hex — a
/// session id or a client's idempotency key is never written out as it is.
fn hashed_key(prefix: &str, name: &str) -> String {
    format!("{prefix}{}", hex::encode(Sha256::digest(name.as_bytes())))
}

/// A session as stored: `<expiry in ms since the epoch>:<user id>`. Its idle end is the key's
/// own expiry.
fn encode_session(record: &SessionRecord) -> String {
    format!("{}:{}", epoch_ms(record.expires_at), record.user_id)
}

/// `time` in whole milliseconds since the Unix epoch (0 before it).
fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// The whole milliseconds from now until `time` (0 once it has passed).
fn ms_from_now(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::now()).map_or(0, |left| {
        u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
    })
}

/// The stored session `value`, read at `now`, whose key had `left_ms` to live (`PTTL`: -1 for
/// no expiry, -2 for a key that is gone).
fn decode_session(value: &str, left_ms: i64, now: SystemTime) -> Option<SessionRecord> {
    let (expires_ms, user_id) = value.split_once(':')?;
    let expires_at = UNIX_EPOCH + Duration::from_millis(expires_ms.parse().ok()?);
    let idle_until = match u64::try_from(left_ms) {
        Ok(left) => now
            .checked_add(Duration::from_millis(left))
            .map_or(expires_at, |idle_until| idle_until.min(expires_at)),
        Err(_) if left_ms == -1 => expires_at,
        Err(_) => return None,
    };
    Some(SessionRecord {
        user_id: user_id.to_owned(),
        expires_at,
        idle_until,
    })
}

impl SessionStore for RedisSessionStore {
    fn insert<'a>(&'a self, id: &'a str, record: SessionRecord) -> StoreFuture<'a, ()> {
        Box::pin(within_deadline(async move {
            // A session that has already ended is not stored at all.
            if record.ends_at() <= SystemTime::now() {
                return Ok(());
            }
            let value = encode_session(&record);
            let mut connection = self.connection.0.clone();
            // Relative, as every end this store sets: Redis counts it on its own clock.
            redis::cmd("SET")
                .arg(self.key(id))
                .arg(value)
                .arg("PX")
                .arg(ms_from_now(record.ends_at()).max(1))
                .query_async::<()>(&mut connection)
                .await
                .map_err(unavailable)
        }))
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        Box::pin(within_deadline(async move {
            let mut connection = self.connection.0.clone();
            let key = self.key(id);
            // The value and the time the key has left, in one round trip. No transaction: a
            // key that ends between the two reads has PTTL -2, which reads as gone.
            let (value, left_ms): (Option<String>, i64) = redis::pipe()
                .get(&key)
                .cmd("PTTL")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let now = SystemTime::now();
            // Redis drops the key at its end; the check covers the last millisecond.
            Ok(value
                .as_deref()
                .and_then(|value| decode_session(value, left_ms, now))
                .filter(|record| record.ends_at() > now))
        }))
    }

    fn touch<'a>(&'a self, id: &'a str, idle_until: SystemTime) -> StoreFuture<'a, ()> {
        Box::pin(within_deadline(async move {
            let mut connection = self.connection.0.clone();
            self.touch
                .key(self.key(id))
                .arg(ms_from_now(idle_until))
                .invoke_async::<i64>(&mut connection)
                .await
                .map(drop)
                .map_err(unavailable)
        }))
    }

    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(within_deadline(async move {
            let mut connection = self.connection.0.clone();
            connection
                .del::<_, ()>(self.key(id))
                .await
                .map_err(unavailable)
        }))
    }
}

/// Rate-limit counters in Redis (see the module documentation).
#[derive(Clone, Debug)]
pub struct RedisRateLimitStore {
    connection: Connection,
    prefix: String,
    script: Script,
}

impl RateLimitStore for RedisRateLimitStore {
    fn check<'a>(&'a self, key: RateKey<'a>, limit: RateLimit) -> StoreFuture<'a, Decision> {
        Box::pin(within_deadline(async move {
            let requests = limit.requests.max(1);
            let window_ms = u64::try_from(limit.window.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            let mut connection = self.connection.0.clone();
            let (allowed, counted, left_ms): (u8, u64, u64) = self
                .script
                .key(format!("{}{key}", self.prefix))
                .arg(requests)
                .arg(window_ms)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let reset_after = Duration::from_millis(left_ms);
            let allowed = allowed == 1;
            Ok(Decision {
                allowed,
                remaining: u32::try_from(u64::from(requests).saturating_sub(counted)).unwrap_or(0),
                reset_after,
                retry_after: if allowed { Duration::ZERO } else { reset_after },
            })
        }))
    }
}

/// Claims an idempotency key (a hash: `fp`, `owner`, and `answer` once completed) in one step:
/// sets it when free (`started`), else says whether it names another request (`mismatch`), is
/// still running (`running`), or was answered (`done` and the answer).
///
/// KEYS[1] the key; ARGV[1] the request's fingerprint; ARGV[2] how long a running claim holds,
/// ms; ARGV[3] the claim's owner.
const CLAIM_SCRIPT: &str = r"
if redis.call('HSETNX', KEYS[1], 'fp', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'owner', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'started'}
end
local found = redis.call('HMGET', KEYS[1], 'fp', 'answer')
if found[1] ~= ARGV[1] then
  return {'mismatch'}
end
if not found[2] then
  return {'running'}
end
return {'done', found[2]}
";

/// Keeps the answer of a claim (`HSET answer`, kept for ARGV[3] ms) if ARGV[1] still owns it.
///
/// KEYS[1] the key; ARGV[1] the owner; ARGV[2] the answer; ARGV[3] how long it is kept, ms.
const COMPLETE_SCRIPT: &str = r"
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'answer', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 0
";

/// Frees a claim if ARGV[1] still owns it.
///
/// KEYS[1] the key; ARGV[1] the owner.
const RELEASE_SCRIPT: &str = r"
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
";

/// Idempotency keys in Redis: one hash per key, under the SHA-256 of the key, claimed by one
/// Lua script (check and claim in one step); the answer is kept as JSON.
#[derive(Clone, Debug)]
pub struct RedisIdempotencyStore {
    connection: Connection,
    prefix: String,
    claim: Script,
    complete: Script,
    release: Script,
}

impl RedisIdempotencyStore {
    fn key(&self, key: &str) -> String {
        hashed_key(&self.prefix, key)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl IdempotencyStore for RedisIdempotencyStore {
    fn claim<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a str,
        owner: &'a str,
        hold: Duration,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(within_deadline(async move {
            let mut connection = self.connection.0.clone();
            let found: Vec<String> = self
                .claim
                .key(self.key(key))
                .arg(fingerprint)
                .arg(millis(hold))
                .arg(owner)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            match found.first().map(String::as_str) {
                Some("started") => Ok(Claim::Started),
                Some("running") => Ok(Claim::InFlight),
                Some("mismatch") => Ok(Claim::Mismatch),
                Some("done") => found
                    .get(1)
                    .and_then(|answer| serde_json::from_str(answer).ok())
                    .map(Claim::Replay)
                    .ok_or_else(|| StoreError::Unavailable("redis: an unreadable answer".into())),
                _ => Err(StoreError::Unavailable("redis: an unexpected reply".into())),
            }
        }))
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        response: StoredResponse,
        keep: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(within_deadline(async move {
            let answer = serde_json::to_string(&response).map_err(|error| {
                StoreError::Unavailable(format!("encoding the answer: {error}"))
            })?;
            let mut connection = self.connection.0.clone();
            self.complete
                .key(self.key(key))
                .arg(owner)
                .arg(answer)
                .arg(millis(keep))
                .invoke_async::<()>(&mut connection)
                .await
                .map_err(unavailable)
        }))
    }

    fn release<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(within_deadline(async move {
            let mut connection = self.connection.0.clone();
            self.release
                .key(self.key(key))
                .arg(owner)
                .invoke_async::<()>(&mut connection)
                .await
                .map_err(unavailable)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_store_call_that_gets_no_answer_is_unavailable_at_its_deadline() {
        // As while a server that is gone is reconnected to: the call waits, and is let go.
        let waited = within_deadline(std::future::pending::<Result<(), StoreError>>()).await;
        assert!(
            matches!(waited, Err(StoreError::Unavailable(_))),
            "{waited:?}"
        );
        let answered = within_deadline(async { Ok::<_, StoreError>(7) }).await;
        assert_eq!(answered.unwrap(), 7);
    }

    #[test]
    fn sessions_round_trip_through_their_stored_form() {
        let now = UNIX_EPOCH + Duration::from_millis(1_800_000_000_000);
        let record = SessionRecord {
            user_id: "user:with:colons".to_owned(),
            expires_at: UNIX_EPOCH + Duration::from_millis(1_900_000_000_123),
            idle_until: now + Duration::from_millis(5_000),
        };
        let value = encode_session(&record);
        assert_eq!(value, "1900000000123:user:with:colons");
        // The idle end is what the key has left.
        assert_eq!(decode_session(&value, 5_000, now), Some(record.clone()));
        // A key without an expiry ends with the session's lifetime; one that is gone, never.
        let lasting = decode_session(&value, -1, now).unwrap();
        assert_eq!(lasting.idle_until, record.expires_at);
        assert_eq!(decode_session(&value, -2, now), None);
        // An idle end past the lifetime is the lifetime.
        let long = decode_session(&value, i64::MAX / 2, now).unwrap();
        assert_eq!(long.ends_at(), record.expires_at);
        assert_eq!(decode_session("not a session", 5_000, now), None);
    }
}
