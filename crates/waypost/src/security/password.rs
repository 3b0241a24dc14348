//! Password hashing with Argon2id, always off the async threads.
//!
//! Hashing is deliberately slow and memory-hungry; running it on a tokio worker would stall
//! every other request on that worker. It runs on the blocking pool, and a semaphore bounds how
//! many hashes run at once, so a burst of logins queues instead of taking every core.
//!
//! Each hash needs ~19 MiB of working memory. Allocated afresh per hash (what
//! `PasswordHasher::hash_password` does), that memory lands in whichever malloc arena the
//! blocking thread uses and is kept there after it is freed: a hundred sign-ups left the process
//! at ~440 MiB. So the working memory is allocated once per permit and reused
//! (`HASH_MEMORY`): the process holds at most one buffer per hash that may run at once.

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use argon2::{
    password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};
use axum::http::{header, HeaderValue};
use tokio::sync::Semaphore;

use crate::ApiError;

/// How many hashes may run at once: one a core, but for a core left to serve everything else.
fn permit_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.saturating_sub(1).max(1)
}

fn permits() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(Semaphore::new(permit_count())))
}

/// How long a hash may wait for a permit. A hash takes tens of milliseconds, so this is a queue
/// of hundreds: past it the server is swamped, and the caller hears so at once (503
/// `server_busy`) instead of waiting ever longer in a queue that only grows.
const PERMIT_WAIT: Duration = Duration::from_secs(10);

async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    bounded_on_blocking_pool(permits(), PERMIT_WAIT, work).await
}

/// Runs `work` on the blocking pool once `permits` grants a permit, which the work itself holds:
/// a caller that goes away (a client that disconnects mid-login) cannot free it while the hash
/// still runs, so disconnecting in a loop never gets more hashes running than there are permits.
/// No permit within `wait` → 503 `server_busy` with `Retry-After`.
async fn bounded_on_blocking_pool<T: Send + 'static>(
    permits: &Arc<Semaphore>,
    wait: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let permit = tokio::time::timeout(wait, permits.clone().acquire_owned())
        .await
        .map_err(|_| {
            ApiError::unavailable("server_busy", "The server is busy; try again shortly.")
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
        })?
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(ApiError::internal)
}

/// Working memory for Argon2, sized for the default parameters and kept between hashes. Only a
/// hash holding a permit takes a buffer, so there are never more buffers than permits.
static HASH_MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Runs `argon2` over `password` and `salt` into `output`, in a kept buffer when the parameters
/// fit one (a stored hash with larger ones gets memory of its own, not kept).
fn hash_into(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    output: &mut [u8],
) -> argon2::Result<()> {
    let needed = params.block_count();
    let kept_size = Params::DEFAULT.block_count();
    let kept = needed <= kept_size;
    let spare = if kept {
        // A poisoned lock only means a hash panicked while taking or giving back a buffer;
        // the list itself is still whole.
        let mut spares = HASH_MEMORY.lock().unwrap_or_else(|e| e.into_inner());
        spares.pop()
    } else {
        None
    };
    let mut memory = spare.unwrap_or_else(|| vec![Block::default(); needed.max(kept_size)]);
    let result = argon2.hash_password_into_with_memory(password, salt, output, &mut memory[..]);
    if kept {
        HASH_MEMORY
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(memory);
    }
    result
}

/// The Argon2id PHC string for `password` under a fresh salt and the default parameters.
fn hash_now(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes)?;
    let params = Params::DEFAULT;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let hash = Output::init_with(output_len, |out| {
        Ok(hash_into(&argon2, &params, password, salt_bytes, out)?)
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(hash),
    }
    .to_string())
}

/// Whether `password` hashes to the PHC string `stored`, under the algorithm, version,
/// parameters and salt written in it.
fn matches_now(password: &[u8], stored: &str) -> Result<bool, argon2::password_hash::Error> {
    let stored = PasswordHash::new(stored)?;
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return Err(argon2::password_hash::Error::PhcStringField);
    };
    let algorithm = Algorithm::try_from(stored.algorithm)?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&stored)?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let computed = Output::init_with(expected.len(), |out| {
        Ok(hash_into(&argon2, &params, password, salt_bytes, out)?)
    })?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

/// Hashes `password` with Argon2id and a fresh random salt (PHC string format).
///
/// # Errors
/// 500 when hashing fails (it does not for valid input).
pub async fn hash_password(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    on_blocking_pool(move || hash_now(password.as_bytes()))
        .await?
        .map_err(|error| ApiError::internal(error.to_string()))
}

/// Whether `password` matches the PHC `hash`. The comparison is constant-time.
///
/// # Errors
/// 500 when `hash` is not a valid PHC string.
pub async fn verify_password(password: &str, hash: &str) -> Result<bool, ApiError> {
    let password = password.to_owned();
    let hash = hash.to_owned();
    on_blocking_pool(move || matches_now(password.as_bytes(), &hash))
        .await?
        .map_err(|error| ApiError::internal(error.to_string()))
}

/// Spends the time a real verification takes, for an account that does not exist, so a login
/// for an unknown email cannot be told from a wrong password by its timing.
///
/// # Errors
/// 500 when the blocking pool is gone.
pub async fn verify_against_nothing(password: &str) -> Result<(), ApiError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = match DUMMY.get() {
        Some(dummy) => dummy.clone(),
        None => {
            let made = hash_password("waypost-dummy-password").await?;
            DUMMY.get_or_init(|| made).clone()
        }
    };
    verify_password(password, &dummy).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts work on `permits` that runs until the returned sender says finish and then
    /// answers `answer`; returns once the work is running (so it holds its permit).
    async fn running_work(
        permits: &Arc<Semaphore>,
        answer: &'static str,
    ) -> (
        tokio::task::JoinHandle<Result<&'static str, ApiError>>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (started, has_started) = tokio::sync::oneshot::channel();
        let (finish, may_finish) = std::sync::mpsc::channel::<()>();
        let work = tokio::spawn({
            let permits = permits.clone();
            async move {
                bounded_on_blocking_pool(&permits, PERMIT_WAIT, move || {
                    started.send(()).unwrap();
                    may_finish.recv().unwrap();
                    answer
                })
                .await
            }
        });
        has_started.await.unwrap();
        (work, finish)
    }

    #[tokio::test]
    async fn the_work_keeps_its_permit_when_its_caller_goes_away() {
        let permits = Arc::new(Semaphore::new(1));
        let (caller, finish) = running_work(&permits, "done").await;
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        assert_eq!(
            permits.available_permits(),
            0,
            "the work still runs, so its permit is still taken"
        );
        finish.send(()).unwrap();
        // Granted once the work ends, and not before.
        drop(permits.acquire().await.unwrap());
    }

    #[tokio::test]
    async fn hashes_read_and_written_as_the_argon2_crate_does() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash_password("correct horse").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong horse", &parsed)
            .is_err());
        // Hashes stored by the crate's own hasher, with the defaults and with other settings
        // (more memory than a kept buffer holds, Argon2i, a longer output).
        let salt = SaltString::generate(&mut OsRng);
        let bigger = Params::new(32 * 1024, 2, 1, Some(48)).unwrap();
        for argon2 in [
            Argon2::default(),
            Argon2::new(Algorithm::Argon2id, Version::V0x13, bigger.clone()),
            Argon2::new(Algorithm::Argon2i, Version::V0x10, bigger),
        ] {
            let theirs = argon2
                .hash_password(b"correct horse", &salt)
                .unwrap()
                .to_string();
            assert!(
                verify_password("correct horse", &theirs).await.unwrap(),
                "{theirs}"
            );
            assert!(
                !verify_password("wrong horse", &theirs).await.unwrap(),
                "{theirs}"
            );
        }
        assert!(
            verify_password("correct horse", "$argon2id$v=19$m=19456,t=2,p=1$bm90aGluZw")
                .await
                .is_err(),
            "a stored hash without its output is the server's error, not a wrong password"
        );
    }

    #[tokio::test]
    async fn working_memory_is_kept_one_buffer_per_permit() {
        let hashes: Vec<_> = (0..6)
            .map(|i| tokio::spawn(async move { hash_password(&format!("password {i}")).await }))
            .collect();
        for hash in hashes {
            hash.await.unwrap().unwrap();
        }
        // With every permit held here no hash runs, so every buffer is back in the list.
        let count = permit_count();
        let _all = permits()
            .acquire_many(u32::try_from(count).unwrap())
            .await
            .unwrap();
        let kept = HASH_MEMORY.lock().unwrap().len();
        assert!((1..=count).contains(&kept), "{kept} buffers kept");
        let sizes = HASH_MEMORY
            .lock()
            .unwrap()
            .iter()
            .all(|buffer| buffer.len() == Params::DEFAULT.block_count());
        assert!(sizes, "only default-sized buffers are kept");
    }

    #[tokio::test]
    async fn a_hash_that_waits_too_long_for_a_permit_is_told_the_server_is_busy() {
        let permits = Arc::new(Semaphore::new(1));
        let (running, finish) = running_work(&permits, "first").await;
        let refused = bounded_on_blocking_pool(&permits, Duration::from_millis(50), || "second")
            .await
            .unwrap_err();
        assert_eq!(
            refused.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(refused.code(), "server_busy");
        let response = axum::response::IntoResponse::into_response(refused);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        // The running hash is untouched, and once it ends the next one gets its turn.
        finish.send(()).unwrap();
        assert_eq!(running.await.unwrap().unwrap(), "first");
        let next = bounded_on_blocking_pool(&permits, Duration::from_millis(50), || "third");
        assert_eq!(next.await.unwrap(), "third");
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash).await.unwrap());
        assert!(!verify_password("wrong horse", &hash).await.unwrap());
        let again = hash_password("correct horse").await.unwrap();
        assert_ne!(hash, again, "salts differ");
    }
}
