//! Idempotency keys: the first answer to a request sent with an `Idempotency-Key`, kept so that
//! a retry with the same key gets that answer again instead of doing the work twice.
//!
//! A key is claimed before the handler runs (so two concurrent requests with one key cannot both
//! run it), then completed with the answer, or released when the request did nothing that a
//! retry could do twice (a refusal, a server error) so a retry runs again. An answer that did
//! something but cannot be kept (streamed, too large, no room left) is completed with a mark
//! saying so ([`StoredResponse::not_kept`]): its retry is told, and nothing runs twice. A key
//! names one request: the claim carries a fingerprint of it, and the key used again for a
//! different request is a mismatch. The guard that uses this store is in
//! `layers/idempotency.rs` (`RouteConfig::idempotent`).

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
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
    /// Whether this is the answer itself; `false` for the mark of one that was sent but could
    /// not be kept (see [`StoredResponse::not_kept`]).
    #[serde(default = "an_answer_is_kept")]
    pub kept: bool,
}

fn an_answer_is_kept() -> bool {
    true
}

impl StoredResponse {
    /// An answer to keep.
    pub fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        Self {
            status,
            headers,
            body,
            kept: true,
        }
    }

    /// The mark of an answer with `status` that did its work and went out, but is not kept —
    /// streamed, too large, or past the store's room: a retry is told so instead of running
    /// the work again.
    pub fn not_kept(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            kept: false,
        }
    }
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
    /// The key's request was answered: this is the answer (or the mark of one not kept).
    Replay(StoredResponse),
    /// The store has no room to keep another key: the request must not run, as its answer
    /// could not be kept for its retry. Room is expected back after `retry_after`.
    NoRoom {
        /// When the first key held now expires.
        retry_after: Duration,
    },
}

/// Keeps idempotency keys and their answers.
///
/// A claim is made by an `owner` (an id unique to the request), and only that owner completes or
/// releases it: a request that outlived its hold, whose key a retry has claimed since, cannot
/// overwrite or free the retry's claim.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for the request with `fingerprint`, made by `owner`, held for at most `hold`
    /// while it runs.
    fn claim<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a str,
        owner: &'a str,
        hold: Duration,
    ) -> StoreFuture<'a, Claim>;
    /// Keeps `response` as the answer for `key`, for `keep`, if `owner` still holds its claim —
    /// or, when the store has no room for it, the mark of an answer not kept
    /// ([`StoredResponse::not_kept`]) with its status.
    fn complete<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        response: StoredResponse,
        keep: Duration,
    ) -> StoreFuture<'a, ()>;
    /// Frees `key`, if `owner` still holds its claim: a retry with it runs again.
    fn release<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()>;
}

/// One key in the in-process store.
#[derive(Debug)]
struct Entry {
    fingerprint: String,
    /// The request whose claim this is.
    owner: String,
    /// `None` while the request runs.
    answer: Option<StoredResponse>,
    /// The answer's size, counted against the store's budget (0 while the request runs).
    kept: usize,
    expires_at: Instant,
}

/// How many bytes of answers (bodies and headers) the in-process store keeps by default.
pub const IDEMPOTENCY_MEMORY_BUDGET: usize = 64 * 1024 * 1024;

/// The in-process idempotency store.
///
/// Its keys and answers share a budget of bytes ([`IDEMPOTENCY_MEMORY_BUDGET`] unless
/// [`with_budget`](Self::with_budget) says otherwise), so retried requests can never fill the
/// process's memory. When it is spent, expired keys are dropped, then the older half of the
/// kept answers become marks of answers not kept ([`StoredResponse::not_kept`], a few hundred
/// bytes each): a retry of those is told so instead of running the work again, while the
/// recent answers — the ones retries come for — stay. Only when marks and claims alone fill the
/// budget is a new key refused ([`Claim::NoRoom`]: its request does not run); an answer that
/// still does not fit is kept as a mark. A key is never freed for want of room, which would
/// let its retry run the work again.
#[derive(Debug)]
pub struct MemoryIdempotencyStore {
    keys: ShardedMap<Entry>,
    kept_bytes: AtomicUsize,
    budget: usize,
    /// When the last full sweep ran, in milliseconds after `epoch`: a store full of live
    /// answers is swept at most once a second, not on every answer that does not fit.
    last_full_sweep: AtomicU64,
    /// When the first key held at the last full sweep expires, in milliseconds after `epoch`:
    /// when a refused key may find room.
    first_expiry: AtomicU64,
    /// Whether the last full sweep left answers that the next one could turn into marks: a
    /// refused key then finds room within a second.
    answers_left: AtomicBool,
    epoch: Instant,
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryIdempotencyStore {
    /// An empty store with the default budget.
    pub fn new() -> Self {
        Self::with_budget(IDEMPOTENCY_MEMORY_BUDGET)
    }

    /// An empty store keeping at most `bytes` of answers.
    pub fn with_budget(bytes: usize) -> Self {
        Self {
            keys: ShardedMap::new(),
            kept_bytes: AtomicUsize::new(0),
            budget: bytes,
            last_full_sweep: AtomicU64::new(0),
            first_expiry: AtomicU64::new(0),
            answers_left: AtomicBool::new(true),
            epoch: Instant::now(),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.keys.shard(key)
    }

    /// Drops `shard`'s expired keys, giving their answers' bytes back to the budget.
    fn sweep(&self, shard: &mut HashMap<String, Entry>, now: Instant) {
        shard.retain(|_, entry| {
            let live = entry.expires_at > now;
            if !live {
                self.kept_bytes.fetch_sub(entry.kept, Ordering::Relaxed);
            }
            live
        });
    }

    /// Whether `size` more bytes fit the budget, after dropping expired answers if they do not
    /// at first.
    fn has_room_for(&self, size: usize) -> bool {
        let fits = || self.kept_bytes.load(Ordering::Relaxed).saturating_add(size) <= self.budget;
        if fits() {
            return true;
        }
        let now = Instant::now();
        let now_ms = u64::try_from(now.duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
        let last = self.last_full_sweep.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= 1000 || last == 0;
        if !due
            || self
                .last_full_sweep
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            // Swept within the last second, or being swept right now.
            return false;
        }
        // One pass drops the expired keys and notes what the rest hold: when the first of them
        // expires, and when each kept answer would.
        let mut first_expiry = None::<Instant>;
        let mut answer_expiries = Vec::new();
        for mut shard in self.keys.each() {
            self.sweep(&mut shard, now);
            for entry in shard.values() {
                first_expiry =
                    Some(first_expiry.map_or(entry.expires_at, |at| at.min(entry.expires_at)));
                if entry.answer.as_ref().is_some_and(|answer| answer.kept) {
                    answer_expiries.push(entry.expires_at);
                }
            }
        }
        let answers = answer_expiries.len();
        let demoted = if fits() {
            0
        } else {
            self.demote_older_answers(answer_expiries)
        };
        let first_expiry = first_expiry.map_or(0, |at| self.millis_at(at));
        self.first_expiry.store(first_expiry, Ordering::Relaxed);
        self.answers_left
            .store(demoted < answers, Ordering::Relaxed);
        fits()
    }

    /// Milliseconds from the store's epoch to `at`.
    fn millis_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Turns the older half of the kept answers — `expiries` says when each expires — into
    /// marks of answers not kept, giving their bodies' bytes back to the budget; how many.
    fn demote_older_answers(&self, mut expiries: Vec<Instant>) -> usize {
        if expiries.is_empty() {
            return 0;
        }
        // The older half, rounded up: one of one, one of two, two of three.
        let middle = (expiries.len() - 1) / 2;
        let (_, &mut cutoff, _) = expiries.select_nth_unstable(middle);
        let mut demoted = 0usize;
        for mut shard in self.keys.each() {
            for (key, entry) in shard.iter_mut() {
                let Some(answer) = entry.answer.as_mut().filter(|answer| answer.kept) else {
                    continue;
                };
                if entry.expires_at > cutoff {
                    continue;
                }
                *answer = StoredResponse::not_kept(answer.status);
                let size = entry_size(key, [&entry.fingerprint, &entry.owner]);
                self.kept_bytes
                    .fetch_sub(entry.kept - size, Ordering::Relaxed);
                entry.kept = size;
                demoted += 1;
            }
        }
        tracing::warn!(
            demoted,
            budget = self.budget,
            "the idempotency store is full: its older answers are kept as marks only"
        );
        demoted
    }

    /// How long a refused key should wait: a second while kept answers are left to turn into
    /// marks (the next full sweep is at most that far), else until the first key held now
    /// expires.
    fn wait_for_room(&self) -> Duration {
        let second = Duration::from_secs(1);
        if self.answers_left.load(Ordering::Relaxed) {
            return second;
        }
        let now = self.millis_at(Instant::now());
        match self.first_expiry.load(Ordering::Relaxed) {
            0 => second,
            at => Duration::from_millis(at.saturating_sub(now)).max(second),
        }
    }
}

/// What an entry costs beside its answer: its key, fingerprint and owner and the map's own
/// overhead (a rough figure for the strings' and the table's bookkeeping).
fn entry_size(key: &str, entry_fields: [&str; 2]) -> usize {
    key.len() + entry_fields.iter().map(|field| field.len()).sum::<usize>() + 128
}

/// What an answer counts against the budget (nothing for the mark of one not kept: the entry
/// already counts).
fn size_of(response: &StoredResponse) -> usize {
    if !response.kept {
        return 0;
    }
    response.body.len()
        + response
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len() + 64)
            .sum::<usize>()
}

/// What a claim of `key` for the request with `fingerprint` finds in `shard` at `now`: `None`
/// when the key is free (never used, or expired).
fn found(
    shard: &HashMap<String, Entry>,
    key: &str,
    fingerprint: &str,
    now: Instant,
) -> Option<Claim> {
    let entry = shard.get(key).filter(|entry| entry.expires_at > now)?;
    Some(if entry.fingerprint != fingerprint {
        Claim::Mismatch
    } else if let Some(answer) = &entry.answer {
        Claim::Replay(answer.clone())
    } else {
        Claim::InFlight
    })
}

impl IdempotencyStore for MemoryIdempotencyStore {
    fn claim<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a str,
        owner: &'a str,
        hold: Duration,
    ) -> StoreFuture<'a, Claim> {
        let now = Instant::now();
        {
            let mut shard = self.shard(key);
            // Expired keys are cleared as new ones arrive, so the map cannot grow without end.
            if shard.len() % 256 == 255 {
                self.sweep(&mut shard, now);
            }
            if let Some(found) = found(&shard, key, fingerprint, now) {
                return Box::pin(std::future::ready(Ok(found)));
            }
        }
        // A new key. The room is judged with no shard locked, as a full sweep locks each.
        let kept = entry_size(key, [fingerprint, owner]);
        if !self.has_room_for(kept) {
            tracing::warn!(
                budget = self.budget,
                "the idempotency store is full: a request with a new key is refused"
            );
            let retry_after = self.wait_for_room();
            return Box::pin(std::future::ready(Ok(Claim::NoRoom { retry_after })));
        }
        let mut shard = self.shard(key);
        // Looked at again: a concurrent request may have claimed it meanwhile.
        let claim = match found(&shard, key, fingerprint, now) {
            Some(found) => found,
            None => {
                // The entry itself counts from the claim on (its answer once kept).
                self.kept_bytes.fetch_add(kept, Ordering::Relaxed);
                let replaced = shard.insert(
                    key.to_owned(),
                    Entry {
                        fingerprint: fingerprint.to_owned(),
                        owner: owner.to_owned(),
                        answer: None,
                        kept,
                        expires_at: now + hold,
                    },
                );
                if let Some(expired) = replaced {
                    self.kept_bytes.fetch_sub(expired.kept, Ordering::Relaxed);
                }
                Claim::Started
            }
        };
        Box::pin(std::future::ready(Ok(claim)))
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        response: StoredResponse,
        keep: Duration,
    ) -> StoreFuture<'a, ()> {
        let mut answer_size = size_of(&response);
        let mut response = response;
        if answer_size > 0 && !self.has_room_for(answer_size) {
            tracing::warn!(
                budget = self.budget,
                "the idempotency store is full: a retry of this answer is told it was not kept"
            );
            response = StoredResponse::not_kept(response.status);
            answer_size = 0;
        }
        let mut shard = self.shard(key);
        if let Some(entry) = shard.get_mut(key).filter(|entry| entry.owner == owner) {
            let size = entry_size(key, [&entry.fingerprint, &entry.owner]) + answer_size;
            self.kept_bytes.fetch_add(size, Ordering::Relaxed);
            self.kept_bytes.fetch_sub(entry.kept, Ordering::Relaxed);
            entry.answer = Some(response);
            entry.kept = size;
            entry.expires_at = Instant::now() + keep;
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn release<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()> {
        let mut shard = self.shard(key);
        if shard.get(key).is_some_and(|entry| entry.owner == owner) {
            if let Some(entry) = shard.remove(key) {
                self.kept_bytes.fetch_sub(entry.kept, Ordering::Relaxed);
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> StoredResponse {
        StoredResponse::new(
            201,
            vec![("content-type".into(), "application/json".into())],
            body.as_bytes().to_vec(),
        )
    }

    #[tokio::test]
    async fn a_key_is_claimed_once_then_replayed_and_names_one_request() {
        let store = MemoryIdempotencyStore::new();
        let hold = Duration::from_secs(60);
        let claim = |key, fingerprint, owner, hold| store.claim(key, fingerprint, owner, hold);
        assert_eq!(claim("k", "fp1", "r1", hold).await.unwrap(), Claim::Started);
        assert_eq!(
            claim("k", "fp1", "r2", hold).await.unwrap(),
            Claim::InFlight
        );
        assert_eq!(
            claim("k", "fp2", "r3", hold).await.unwrap(),
            Claim::Mismatch
        );
        store.complete("k", "r1", answer("{}"), hold).await.unwrap();
        assert_eq!(
            claim("k", "fp1", "r4", hold).await.unwrap(),
            Claim::Replay(answer("{}"))
        );
        assert_eq!(
            claim("k", "fp2", "r5", hold).await.unwrap(),
            Claim::Mismatch
        );
        // Released by its owner: the next claim runs again.
        store.release("k", "r1").await.unwrap();
        assert_eq!(claim("k", "fp2", "r6", hold).await.unwrap(), Claim::Started);
        // Expired: free again.
        assert_eq!(
            claim("e", "fp", "r7", Duration::ZERO).await.unwrap(),
            Claim::Started
        );
        assert_eq!(
            claim("e", "other", "r8", hold).await.unwrap(),
            Claim::Started
        );
    }

    #[tokio::test]
    async fn only_the_claims_owner_completes_or_frees_it() {
        let store = MemoryIdempotencyStore::new();
        let hold = Duration::from_secs(60);
        // The first request runs past its hold, and a retry claims the key again.
        let first = store
            .claim("k", "fp", "first", Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(first, Claim::Started);
        let retry = store.claim("k", "fp", "retry", hold).await.unwrap();
        assert_eq!(retry, Claim::Started);
        // The first finishes late: neither its answer nor its release touches the retry's claim.
        store
            .complete("k", "first", answer("late"), hold)
            .await
            .unwrap();
        store.release("k", "first").await.unwrap();
        let third = store.claim("k", "fp", "third", hold).await.unwrap();
        assert_eq!(third, Claim::InFlight);
        store
            .complete("k", "retry", answer("retry"), hold)
            .await
            .unwrap();
        let fourth = store.claim("k", "fp", "fourth", hold).await.unwrap();
        assert_eq!(fourth, Claim::Replay(answer("retry")));
    }

    #[tokio::test]
    async fn only_the_older_half_becomes_marks_and_a_refused_key_waits_a_second() {
        let body = "x".repeat(40);
        // Three answered keys cost 795 bytes (see the test below): one too many for 700.
        let store = MemoryIdempotencyStore::with_budget(700);
        for (key, keep) in [("a", 60), ("b", 120)] {
            assert_eq!(
                store
                    .claim(key, "fp", "r", Duration::from_secs(60))
                    .await
                    .unwrap(),
                Claim::Started
            );
            store
                .complete(key, "r", answer(&body), Duration::from_secs(keep))
                .await
                .unwrap();
        }
        let hold = Duration::from_secs(60);
        assert_eq!(
            store.claim("c", "fp", "r", hold).await.unwrap(),
            Claim::Started
        );
        store.complete("c", "r", answer(&body), hold).await.unwrap();
        // `a`, the older of the two kept then, became a mark; `b` and `c` are kept.
        let replay = |key| store.claim(key, "fp", "again", hold);
        assert_eq!(
            replay("a").await.unwrap(),
            Claim::Replay(StoredResponse::not_kept(201))
        );
        assert_eq!(replay("b").await.unwrap(), Claim::Replay(answer(&body)));
        assert_eq!(replay("c").await.unwrap(), Claim::Replay(answer(&body)));
        // No room for `d` within the second after a sweep, but answers are left to make some.
        assert_eq!(
            store.claim("d", "fp", "r", hold).await.unwrap(),
            Claim::NoRoom {
                retry_after: Duration::from_secs(1)
            }
        );
    }

    #[tokio::test]
    async fn past_the_budget_older_answers_become_marks_then_new_keys_wait() {
        let hold = Duration::from_secs(60);
        let body = "x".repeat(40);
        // An entry of a one-letter key and a two-letter fingerprint and owner costs 133 bytes,
        // its answer 132 more (40 of body, 28 of header, their overhead): a budget of 400 holds
        // one answered key and one claim.
        let store = MemoryIdempotencyStore::with_budget(400);
        let claim = |key, owner| store.claim(key, "fp", owner, hold);
        assert_eq!(claim("a", "r1").await.unwrap(), Claim::Started);
        let short = Duration::from_millis(1200);
        store
            .complete("a", "r1", answer(&body), short)
            .await
            .unwrap();
        assert_eq!(
            claim("a", "r2").await.unwrap(),
            Claim::Replay(answer(&body))
        );
        assert_eq!(claim("b", "r3").await.unwrap(), Claim::Started);
        // No room for `b`'s answer: the older answer, `a`'s, becomes a mark to make it.
        store
            .complete("b", "r3", answer(&body), hold)
            .await
            .unwrap();
        assert_eq!(
            claim("b", "r4").await.unwrap(),
            Claim::Replay(answer(&body))
        );
        assert_eq!(
            claim("a", "r5").await.unwrap(),
            Claim::Replay(StoredResponse::not_kept(201)),
            "a's retry is told, and does not run again"
        );
        assert_eq!(store.kept_bytes.load(Ordering::Relaxed), 398);
        // Marks and claims fill it: a new key waits until the first key held expires.
        let Claim::NoRoom { retry_after } = claim("c", "r6").await.unwrap() else {
            panic!("no room for c");
        };
        assert!(
            (Duration::from_secs(1)..=short).contains(&retry_after),
            "{retry_after:?}"
        );
        // Past `a`'s time, and past the second in which a full store is swept once: room for
        // the key; its answer, with no sweep due, is kept as a mark.
        tokio::time::sleep(short + Duration::from_millis(100)).await;
        assert_eq!(claim("c", "r7").await.unwrap(), Claim::Started);
        store
            .complete("c", "r7", answer(&body), hold)
            .await
            .unwrap();
        assert_eq!(
            claim("c", "r8").await.unwrap(),
            Claim::Replay(StoredResponse::not_kept(201))
        );
        assert_eq!(store.kept_bytes.load(Ordering::Relaxed), 398);
        // Released, its bytes are given back; the other keys stay.
        store.release("c", "r7").await.unwrap();
        assert_eq!(store.kept_bytes.load(Ordering::Relaxed), 265);
        assert_eq!(
            claim("b", "r9").await.unwrap(),
            Claim::Replay(answer(&body))
        );
    }
}
