//! Connecting to the app's SQL database through sqlx's `Any` driver, so the same app code runs on
//! SQLite (one machine, WAL mode) and on Postgres: only `DATABASE_URL` changes. A Postgres URL's
//! `sslmode` is honoured with rustls: `require` encrypts without checking the certificate,
//! `verify-full` checks it against the bundled webpki roots or `sslrootcert=`.

use std::{str::FromStr, time::Duration};

use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    AnyPool, ConnectOptions, Connection as _, Executor,
};

/// A pool of connections to the app's database.
pub type Database = AnyPool;

/// Which SQL engine a URL points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `sqlite://path` (embedded, WAL).
    Sqlite,
    /// `postgres://…`.
    Postgres,
}

impl Engine {
    /// The engine of `url`, if Waypost knows it.
    pub fn of(url: &str) -> Option<Engine> {
        if url.starts_with("sqlite:") {
            Some(Engine::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Engine::Postgres)
        } else {
            None
        }
    }
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatabaseError {
    /// `DATABASE_URL` names an engine Waypost does not drive (its scheme, for the message: the
    /// rest may hold a password).
    #[error("DATABASE_URL must start with sqlite:// or postgres://, got {0:?}")]
    UnknownEngine(String),
    /// A SQLite URL without a file (`sqlite://`), which would silently be a database in memory.
    #[error(
        "a SQLite URL must name a file (sqlite://data/app.db), or say sqlite::memory: for a \
         database that lives only as long as the process; got {0:?}"
    )]
    NoFile(String),
    /// The SQLite file's folder could not be created.
    #[error("could not create the folder for {path}: {source}")]
    CreateFolder {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database did not answer in time.
    #[error("could not open {target}: no answer within {} s", .waited.as_secs())]
    NoAnswer {
        /// What was opened (as for [`DatabaseError::Open`]).
        target: String,
        /// How long it was waited for.
        waited: Duration,
    },
    /// The database could not be reached, or refused to be opened or set up.
    #[error("could not open {target}: {source}{hint}")]
    Open {
        /// What was opened: the SQLite file, or the Postgres host, port and database (never the
        /// credentials).
        target: String,
        /// The driver's error.
        source: sqlx::Error,
        /// What usually causes it, when that is known.
        hint: &'static str,
    },
    /// Connecting or configuring failed.
    #[error("could not open the database: {0}")]
    Connect(#[from] sqlx::Error),
}

impl DatabaseError {
    /// Opening `target` (on `engine`) failed with `source`.
    fn open(engine: Engine, target: &str, source: sqlx::Error) -> Self {
        // SQLite's primary result codes (the extended ones keep them in the low byte); a
        // Postgres SQLSTATE is not one.
        let code = match &source {
            sqlx::Error::Database(error) if engine == Engine::Sqlite => error
                .code()
                .and_then(|code| code.parse::<u32>().ok())
                .map(|code| code & 0xff),
            _ => None,
        };
        let hint = match code {
            Some(8) => " (the file, or its folder, is read-only for this process)",
            Some(14) => " (the path must name a file in a folder this process may write to)",
            _ => "",
        };
        Self::Open {
            target: target.to_owned(),
            source,
            hint,
        }
    }
}

/// Opens a pool on `url`. For SQLite the file and its folder are created when missing, the
/// journal is switched to WAL (readers never block the writer) and every connection waits up
/// to 5 s on a lock instead of failing.
pub async fn connect(url: &str) -> Result<Database, DatabaseError> {
    sqlx::any::install_default_drivers();
    let engine = Engine::of(url).ok_or_else(|| {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        DatabaseError::UnknownEngine(format!("{scheme}:…"))
    })?;
    let url = match engine {
        Engine::Sqlite => prepare_sqlite_url(url)?,
        Engine::Postgres => url.to_owned(),
    };
    let target = describe(engine, &url);
    let failed = |source| DatabaseError::open(engine, &target, source);
    let options = AnyConnectOptions::from_str(&url)
        .map_err(failed)?
        .disable_statement_logging();
    // Each connection to an in-memory SQLite database has a database of its own, gone when the
    // connection closes: such a pool is one connection, kept open for the pool's life.
    let in_memory = engine == Engine::Sqlite && is_in_memory(&url);
    if !in_memory {
        // One connection first, set up as the pool's will be: a database that cannot be
        // reached, refuses the credentials, or is read-only says so now, in its own words,
        // where the pool would retry for its whole wait and then report only a timeout.
        // Bounded as the pool's own wait is: a host behind a firewall that drops packets would
        // hold start-up for minutes of SYN retries.
        let no_answer = || DatabaseError::NoAnswer {
            target: target.clone(),
            waited: CONNECT_TIMEOUT,
        };
        let mut probe = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
            .await
            .map_err(|_| no_answer())?
            .map_err(failed)?;
        if engine == Engine::Sqlite {
            // Waiting on a lock as the pool's connections do: another process may be writing.
            let setup = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;";
            tokio::time::timeout(CONNECT_TIMEOUT, probe.execute(setup))
                .await
                .map_err(|_| no_answer())?
                .map_err(failed)?;
        }
        let _ = probe.close().await;
    }
    let pool = AnyPoolOptions::new()
        .max_connections(match engine {
            _ if in_memory => 1,
            Engine::Sqlite => 8,
            Engine::Postgres => 16,
        })
        .min_connections(u32::from(in_memory))
        .idle_timeout((!in_memory).then_some(Duration::from_secs(600)))
        .max_lifetime((!in_memory).then_some(Duration::from_secs(1800)))
        .acquire_timeout(CONNECT_TIMEOUT)
        .after_connect(move |connection, _meta| {
            Box::pin(async move {
                if engine == Engine::Sqlite {
                    connection
                        .execute(
                            "PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(failed)?;
    Ok(pool)
}

/// How long opening the database, or a connection of the pool, is waited for.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What `url` opens, for messages: the SQLite file (or memory), or the Postgres host, port and
/// database — never a password.
fn describe(engine: Engine, url: &str) -> String {
    match engine {
        Engine::Sqlite if is_in_memory(url) => "the in-memory SQLite database".to_owned(),
        Engine::Sqlite => {
            let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
            format!(
                "the SQLite file {}",
                rest.split_once('?').map_or(rest, |(path, _)| path)
            )
        }
        Engine::Postgres => match url::Url::parse(url) {
            Ok(parsed) => format!(
                "Postgres at {}:{}{}",
                parsed.host_str().unwrap_or("localhost"),
                parsed.port().unwrap_or(5432),
                parsed.path()
            ),
            Err(_) => "Postgres (DATABASE_URL is no URL)".to_owned(),
        },
    }
}

/// Whether a SQLite URL names an in-memory database (`sqlite::memory:`, `mode=memory`).
fn is_in_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or(rest);
    path.is_empty() || path == ":memory:" || rest.contains("mode=memory")
}

/// Creates the folder of a file-backed SQLite URL and asks sqlx to create the file.
fn prepare_sqlite_url(url: &str) -> Result<String, DatabaseError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path == ":memory:" || query.contains("mode=memory") {
        return Ok(url.to_owned());
    }
    if path.is_empty() {
        return Err(DatabaseError::NoFile(url.to_owned()));
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|source| DatabaseError::CreateFolder {
                path: parent.display().to_string(),
                source,
            })?;
        }
    }
    if query.contains("mode=") {
        Ok(url.to_owned())
    } else if query.is_empty() {
        Ok(format!("sqlite://{path}?mode=rwc"))
    } else {
        Ok(format!("sqlite://{path}?{query}&mode=rwc"))
    }
}

/// Panics unless `name` is a plain SQL identifier (letters, digits, `_`, `.`), as every name the
/// framework splices into a statement must be.
pub(crate) fn assert_identifier(name: &str) {
    assert!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'),
        "{name:?} is not a plain SQL identifier"
    );
}

/// Whether the database answers a read of `table` (for health checks): a table the app's
/// migrations create, such as sqlx's `_sqlx_migrations`, so that a connection to a database
/// without the app's schema (an empty SQLite file made in place of a lost one) counts as down,
/// where `SELECT 1` would pass. A database that has not answered within [`PING_TIMEOUT`] counts
/// as down too: a load balancer's health check gives up after a few seconds, and the pool's
/// own wait for a connection (5 s) is longer.
///
/// # Panics
/// When `table` is not a plain SQL identifier (it is spliced into the statement).
pub async fn ping(database: &Database, table: &str) -> bool {
    assert_identifier(table);
    let read = format!("SELECT 1 FROM {table} LIMIT 1");
    let answer = tokio::time::timeout(PING_TIMEOUT, sqlx::query(&read).execute(database)).await;
    matches!(answer, Ok(Ok(_)))
}

/// How long [`ping`] waits for the database.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_url_without_a_file_is_refused_not_kept_in_memory() {
        for url in ["sqlite://", "sqlite:", "sqlite://?mode=rwc"] {
            let error = connect(url).await.unwrap_err();
            assert!(matches!(error, DatabaseError::NoFile(_)), "{url}: {error}");
            assert!(error.to_string().contains("sqlite::memory:"), "{error}");
        }
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_opened_is_named_with_the_likely_cause() {
        let folder = tempfile::tempdir().unwrap();
        // A folder where the file should be: SQLite cannot open it (even as root).
        let path = folder.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        let error = connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, DatabaseError::Open { .. }), "{message}");
        assert!(
            message.starts_with(&format!(
                "could not open the SQLite file {}",
                path.display()
            )),
            "{message}"
        );
        assert!(message.contains("must name a file"), "{message}");
    }

    #[tokio::test]
    async fn an_unknown_engine_is_named_by_its_scheme_alone() {
        let error = connect("mysql://app:s3cret@db.example/shop")
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("\"mysql:…\""), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn a_postgres_that_never_answers_is_given_up_on() {
        // Accepts the connection, then says nothing, as a host behind a black hole would.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = std::thread::spawn(move || listener.accept().map(|(socket, _)| socket));
        let error = connect(&format!("postgres://app@127.0.0.1:{port}/shop"))
            .await
            .unwrap_err();
        assert!(matches!(error, DatabaseError::NoAnswer { .. }), "{error}");
        assert_eq!(
            error.to_string(),
            format!("could not open Postgres at 127.0.0.1:{port}/shop: no answer within 5 s")
        );
        drop(held.join());
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn an_unreachable_postgres_is_named_without_its_password() {
        // Nothing listens on port 1: the error is the driver's own, not a pool timeout.
        let error = connect("postgres://app:s3cret@127.0.0.1:1/shop")
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, DatabaseError::Open { .. }), "{message}");
        assert!(
            message.starts_with("could not open Postgres at 127.0.0.1:1/shop: "),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
        assert!(!message.contains("timed out"), "{message}");
    }

    #[tokio::test]
    async fn ping_counts_a_database_without_the_table_as_down() {
        let pool = connect("sqlite::memory:").await.unwrap();
        assert!(!ping(&pool, "_sqlx_migrations").await, "no schema yet");
        pool.execute("CREATE TABLE _sqlx_migrations (version INTEGER)")
            .await
            .unwrap();
        assert!(ping(&pool, "_sqlx_migrations").await);
        pool.close().await;
        assert!(!ping(&pool, "_sqlx_migrations").await, "closed");
    }

    /// A Postgres server that accepts connections and never says a word: the pool would wait
    /// a minute for it; the ping gives up after its own timeout.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn a_database_that_does_not_answer_is_down() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = silent.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut connections = Vec::new();
            while let Ok((connection, _)) = silent.accept().await {
                connections.push(connection);
            }
        });
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(60))
            .connect_lazy(&format!("postgres://waypost@{address}/test"))
            .unwrap();
        let answered = tokio::time::timeout(Duration::from_secs(30), ping(&pool, "things"))
            .await
            .expect("the ping gives up long before the pool would");
        assert!(!answered);
        held.abort();
    }

    #[test]
    fn engines_are_told_apart_by_scheme() {
        assert_eq!(Engine::of("sqlite://data/x.db"), Some(Engine::Sqlite));
        assert_eq!(
            Engine::of("postgres://localhost/test"),
            Some(Engine::Postgres)
        );
        assert_eq!(Engine::of("mysql://x"), None);
    }

    #[tokio::test]
    async fn an_in_memory_database_is_one_database_for_the_whole_pool() {
        let pool = connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (x BIGINT)")
            .execute(&pool)
            .await
            .unwrap();
        // Concurrent users of the pool all see the table the first one made.
        let counts = futures_util::future::join_all(
            (0..4).map(|_| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM t").fetch_one(&pool)),
        )
        .await;
        assert!(counts
            .iter()
            .all(|count| count.as_ref().is_ok_and(|c| *c == 0)));
    }

    #[tokio::test]
    async fn a_sqlite_file_is_created_in_wal_mode() {
        let dir = std::env::temp_dir().join(format!("waypost-db-{}", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}/nested/app.db", dir.display());
        let pool = connect(&url).await.unwrap();
        let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(mode.0.to_lowercase(), "wal");
        assert!(dir.join("nested/app.db").exists());
        pool.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}
