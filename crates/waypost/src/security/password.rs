//! Password hashing with Argon2id, always off the async threads.
//!
//! Hashing is deliberately slow and memory-hungry; running it on a tokio worker would stall
//! every other request on that worker. It runs on the blocking pool, and a semaphore bounds how
//! many hashes run at once, so a burst of logins queues instead of taking every core and
//! ~19 MiB of memory per hash.

use std::sync::{Arc, OnceLock};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use tokio::sync::Semaphore;

use crate::ApiError;

fn permits() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        // Leave a core for serving everything else.
        Arc::new(Semaphore::new(cores.saturating_sub(1).max(1)))
    })
}

async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    bounded_on_blocking_pool(permits(), work).await
}

/// Runs `work` on the blocking pool once `permits` grants a permit, which the work itself holds:
/// a caller that goes away (a client that disconnects mid-login) cannot free it while the hash
/// still runs, so disconnecting in a loop never gets more hashes running than there are permits.
async fn bounded_on_blocking_pool<T: Send + 'static>(
    permits: &Arc<Semaphore>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(ApiError::internal)
}

/// Hashes `password` with Argon2id and a fresh random salt (PHC string format).
///
/// # Errors
/// 500 when hashing fails (it does not for valid input).
pub async fn hash_password(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    on_blocking_pool(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await?
    .map_err(|error| ApiError::internal(error.to_string()))
}

/// Whether `password` matches the PHC `hash`. Comparison is constant-time inside argon2.
///
/// # Errors
/// 500 when `hash` is not a valid PHC string.
pub async fn verify_password(password: &str, hash: &str) -> Result<bool, ApiError> {
    let password = password.to_owned();
    let hash = hash.to_owned();
    on_blocking_pool(move || {
        let parsed = PasswordHash::new(&hash).map_err(|error| error.to_string())?;
        Ok::<bool, String>(
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
        )
    })
    .await?
    .map_err(ApiError::internal)
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

    #[tokio::test]
    async fn the_work_keeps_its_permit_when_its_caller_goes_away() {
        let permits = Arc::new(Semaphore::new(1));
        let (started, has_started) = tokio::sync::oneshot::channel();
        let (finish, may_finish) = std::sync::mpsc::channel::<()>();
        let caller = tokio::spawn({
            let permits = permits.clone();
            async move {
                bounded_on_blocking_pool(&permits, move || {
                    started.send(()).unwrap();
                    may_finish.recv().unwrap();
                })
                .await
            }
        });
        has_started.await.unwrap();
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
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash).await.unwrap());
        assert!(!verify_password("wrong horse", &hash).await.unwrap());
        let again = hash_password("correct horse").await.unwrap();
        assert_ne!(hash, again, "salts differ");
    }
}
