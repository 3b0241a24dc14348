//! The Redis stores against a real server (`WAYPOST_TEST_REDIS_URL`; without it the tests say
//! they were skipped). Two connections stand for two machines running the same app: what one
//! writes, the other sees, and a limit counts the requests of both.
#![cfg(feature = "redis")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use waypost::{
    store::{
        Claim, IdempotencyStore, RateKey, RateLimitStore, RedisStores, SessionRecord, SessionStore,
        StoreError, StoredResponse, Subject,
    },
    RateLimit,
};

/// Two machines: independent connections under one fresh prefix.
struct TwoMachines {
    first: RedisStores,
    second: RedisStores,
    url: String,
    prefix: String,
}

impl TwoMachines {
    async fn keys(&self) -> Vec<String> {
        keys_under(&self.url, &format!("{}*", self.prefix)).await
    }
}

/// Two machines, or `None` (skipped) without a server.
async fn two_machines() -> Option<TwoMachines> {
    let Ok(url) = std::env::var("WAYPOST_TEST_REDIS_URL") else {
        eprintln!("skipped: WAYPOST_TEST_REDIS_URL is not set");
        return None;
    };
    let prefix = format!("waypost-test:{}:", uuid::Uuid::new_v4().simple());
    let first = RedisStores::connect(&url).await.expect("reach Redis");
    let second = RedisStores::connect(&url).await.expect("reach Redis");
    Some(TwoMachines {
        first: first.with_prefix(prefix.clone()),
        second: second.with_prefix(prefix.clone()),
        url,
        prefix,
    })
}

async fn keys_under(url: &str, pattern: &str) -> Vec<String> {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn exactly_the_limit_passes_across_machines_under_concurrency() {
    let Some(TwoMachines { first, second, .. }) = two_machines().await else {
        return;
    };
    let limit = RateLimit::new(10, Duration::from_secs(60));
    let stores = [first.rate_limits(), second.rate_limits()];
    let key = RateKey {
        route: "/api/hello",
        subject: Subject::Ip("10.1.2.3".parse().unwrap()),
    };
    let checks = (0..30).map(|i| {
        let store = stores[i % 2].clone();
        tokio::spawn(async move { store.check(key, limit).await.unwrap() })
    });
    let mut decisions = Vec::new();
    for check in checks {
        decisions.push(check.await.unwrap());
    }
    let allowed: Vec<_> = decisions.iter().filter(|d| d.allowed).collect();
    assert_eq!(allowed.len(), 10);
    let mut remaining: Vec<u32> = allowed.iter().map(|d| d.remaining).collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..10).collect::<Vec<_>>());
    for refused in decisions.iter().filter(|d| !d.allowed) {
        assert_eq!(refused.remaining, 0);
        // Nothing more passes until the window (60 s, opened by the first check) ends.
        assert!(refused.retry_after > Duration::from_secs(55));
        assert!(refused.retry_after <= Duration::from_secs(60));
        assert_eq!(refused.retry_after, refused.reset_after);
    }
    // Another subject and another route have quotas of their own.
    let other_ip = RateKey {
        subject: Subject::Ip("10.1.2.4".parse().unwrap()),
        ..key
    };
    let other_route = RateKey {
        route: "/api/posts",
        ..key
    };
    let user = RateKey {
        subject: Subject::User("42"),
        ..key
    };
    for key in [other_ip, other_route, user] {
        let decision = stores[0].check(key, limit).await.unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.remaining, 9);
    }
}

#[tokio::test]
async fn a_counter_holds_nothing_once_its_quota_is_full_again() {
    let Some(machines) = two_machines().await else {
        return;
    };
    let store = machines.first.rate_limits();
    let key = RateKey {
        route: "/short",
        subject: Subject::User("7"),
    };
    let limit = RateLimit::new(2, Duration::from_millis(200));
    assert!(store.check(key, limit).await.unwrap().allowed);
    assert!(store.check(key, limit).await.unwrap().allowed);
    assert!(!store.check(key, limit).await.unwrap().allowed);
    tokio::time::sleep(Duration::from_millis(450)).await;
    // The key expired with the window: the client starts over with the whole quota.
    let decision = store.check(key, limit).await.unwrap();
    assert!(decision.allowed);
    assert_eq!(decision.remaining, 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(machines.keys().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_session_written_on_one_machine_is_read_and_ended_on_another() {
    let Some(machines) = two_machines().await else {
        return;
    };
    let (writer, reader) = (machines.first.sessions(), machines.second.sessions());
    let expires_at = SystemTime::now() + Duration::from_secs(3600);
    let record = SessionRecord {
        user_id: "user-1".to_owned(),
        expires_at,
        idle_until: expires_at,
    };
    let id = "a-secret-session-id";
    writer.insert(id, record.clone()).await.unwrap();
    let read = reader
        .get(id)
        .await
        .unwrap()
        .expect("the session is shared");
    assert_eq!(read.user_id, "user-1");
    // Stored to the millisecond.
    let drift = record
        .expires_at
        .duration_since(read.expires_at)
        .unwrap_or_else(|error| error.duration());
    assert!(drift < Duration::from_millis(1));
    // The id itself is not a key: a reader of Redis gets no usable cookie.
    let keys = machines.keys().await;
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains(id));
    assert!(reader.get("another-id").await.unwrap().is_none());
    reader.remove(id).await.unwrap();
    assert!(writer.get(id).await.unwrap().is_none());
    assert!(machines.keys().await.is_empty());
}

#[tokio::test]
async fn sessions_end_at_their_expiry() {
    let Some(machines) = two_machines().await else {
        return;
    };
    let sessions = machines.first.sessions();
    let expires_at = SystemTime::now() + Duration::from_millis(300);
    let short = SessionRecord {
        user_id: "user-2".to_owned(),
        expires_at,
        idle_until: expires_at,
    };
    sessions.insert("short", short).await.unwrap();
    assert!(sessions.get("short").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sessions.get("short").await.unwrap().is_none());
    let expires_at = SystemTime::now() - Duration::from_secs(1);
    let expired = SessionRecord {
        user_id: "user-3".to_owned(),
        expires_at,
        idle_until: expires_at,
    };
    sessions.insert("expired", expired).await.unwrap();
    assert!(sessions.get("expired").await.unwrap().is_none());
}

#[tokio::test]
async fn an_idle_session_ends_unless_a_touch_moves_it_on_never_past_its_lifetime() {
    let Some(machines) = two_machines().await else {
        return;
    };
    let (first, second) = (machines.first.sessions(), machines.second.sessions());
    let now = SystemTime::now();
    let record = SessionRecord {
        user_id: "user-4".to_owned(),
        expires_at: now + Duration::from_secs(3600),
        idle_until: now + Duration::from_millis(400),
    };
    first.insert("used", record.clone()).await.unwrap();
    first.insert("left", record.clone()).await.unwrap();
    let read = second.get("used").await.unwrap().expect("live");
    let drift = |a: SystemTime, b: SystemTime| a.duration_since(b).unwrap_or_else(|e| e.duration());
    assert!(drift(read.idle_until, record.idle_until) < Duration::from_millis(50));
    assert_eq!(
        read.expires_at
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
        record
            .expires_at
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );

    // Touched on the other machine: moved on there for both.
    let later = SystemTime::now() + Duration::from_secs(60);
    second.touch("used", later).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let touched = first.get("used").await.unwrap().expect("moved on");
    assert!(drift(touched.idle_until, later) < Duration::from_millis(50));
    assert!(
        first.get("left").await.unwrap().is_none(),
        "the untouched one ended"
    );

    // A touch never reaches past the lifetime, and never brings back what is gone.
    second
        .touch("used", SystemTime::now() + Duration::from_secs(7200))
        .await
        .unwrap();
    let capped = first.get("used").await.unwrap().unwrap();
    assert!(drift(capped.idle_until, record.expires_at) < Duration::from_millis(50));
    // Brought in, too (a session from before the idle timeout was set or lowered).
    second
        .touch("used", SystemTime::now() + Duration::from_millis(300))
        .await
        .unwrap();
    let brought_in = first.get("used").await.unwrap().expect("still live");
    assert!(brought_in.idle_until < SystemTime::now() + Duration::from_millis(350));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        first.get("used").await.unwrap().is_none(),
        "ended at the new idle end"
    );
    first.insert("used", record.clone()).await.unwrap();
    first.touch("left", later).await.unwrap();
    assert!(second.get("left").await.unwrap().is_none());
    first.remove("used").await.unwrap();
    second.touch("used", later).await.unwrap();
    assert!(
        first.get("used").await.unwrap().is_none(),
        "a logout stays a logout"
    );
    assert!(machines.keys().await.is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    // Port 9 (discard) on loopback: nothing listens there.
    let error = RedisStores::connect("redis://127.0.0.1:9")
        .await
        .expect_err("nothing listens");
    let StoreError::Unavailable(message) = error else {
        panic!("unexpected error kind");
    };
    assert!(message.starts_with("redis: "), "{message}");
    let error = RedisStores::connect("not a url")
        .await
        .expect_err("bad url");
    assert!(error.to_string().contains("redis"), "{error}");
}

/// Forwards `127.0.0.1:<port>` to `target` until the returned handle is aborted, which also
/// cuts every forwarded connection: Redis "going away" under a running app.
async fn forwarder(target: String) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let target = target.clone();
            connections.spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (port, handle)
}

#[tokio::test]
async fn requests_get_a_503_while_redis_is_gone_and_the_server_keeps_serving() {
    use waypost::{
        axum::Router,
        routing::{HandlerInfo, Method, RouteInfo, RouteMethods},
        security::{Security, SecuritySettings},
        testing::TestServer,
        App, RouteConfig,
    };
    static LIMITED: RouteInfo = RouteInfo::at(
        &["/limited"],
        &[HandlerInfo::of(Method::Get)],
        RouteConfig::new(),
    );
    let Ok(url) = std::env::var("WAYPOST_TEST_REDIS_URL") else {
        eprintln!("skipped: WAYPOST_TEST_REDIS_URL is not set");
        return;
    };
    let target = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let (port, handle) = forwarder(target).await;
    let stores = RedisStores::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap()
        .with_prefix(format!("waypost-test:{}:", uuid::Uuid::new_v4().simple()));
    let security = stores.install(Security::new(SecuritySettings::default()).unwrap());
    let router = RouteMethods::new(&LIMITED)
        .get(|| async { "counted" })
        .mount(Router::new());
    let server =
        TestServer::start(App::new(router).with_security(std::sync::Arc::new(security))).await;
    let client = reqwest::Client::new();
    let response = client.get(server.url("/limited")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("ratelimit"));

    handle.abort();
    let _ = handle.await;
    let started = std::time::Instant::now();
    let response = client.get(server.url("/limited")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "store_unavailable");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    // Quickly, not after a hang.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // What needs no store still answers.
    let response = client.get(server.url("/elsewhere")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn an_idempotency_key_is_claimed_once_across_machines_then_replayed() {
    let Some(machines) = two_machines().await else {
        return;
    };
    let (first, second) = (machines.first.idempotency(), machines.second.idempotency());
    let hold = Duration::from_secs(60);
    // Ten concurrent claims of one key, half on each machine, each by a request of its own:
    // exactly one runs.
    let owners: Vec<String> = (0..10).map(|i| format!("request-{i}")).collect();
    let claims = futures_util::future::join_all(owners.iter().enumerate().map(|(i, owner)| {
        let store = if i % 2 == 0 { &first } else { &second };
        store.claim("pay|u:1|order-7", "fp-a", owner, hold)
    }))
    .await;
    let started: Vec<&String> = claims
        .iter()
        .zip(&owners)
        .filter(|(claim, _)| matches!(claim, Ok(Claim::Started)))
        .map(|(_, owner)| owner)
        .collect();
    assert_eq!(started.len(), 1, "{claims:?}");
    let owner = started[0].as_str();
    assert!(claims
        .iter()
        .all(|claim| matches!(claim, Ok(Claim::Started | Claim::InFlight))));
    // Another request under the key is a mismatch, running or answered.
    assert_eq!(
        second
            .claim("pay|u:1|order-7", "fp-b", "other", hold)
            .await
            .unwrap(),
        Claim::Mismatch
    );
    let answer = StoredResponse::new(
        201,
        vec![("content-type".into(), "application/json".into())],
        br#"{"paid":true}"#.to_vec(),
    );
    // Only the claim's owner completes or frees it.
    let stranger = "request-from-before-the-hold-ran-out";
    second
        .complete("pay|u:1|order-7", stranger, answer.clone(), hold)
        .await
        .unwrap();
    second.release("pay|u:1|order-7", stranger).await.unwrap();
    assert_eq!(
        second
            .claim("pay|u:1|order-7", "fp-a", "retry", hold)
            .await
            .unwrap(),
        Claim::InFlight
    );
    first
        .complete("pay|u:1|order-7", owner, answer.clone(), hold)
        .await
        .unwrap();
    assert_eq!(
        second
            .claim("pay|u:1|order-7", "fp-a", "retry", hold)
            .await
            .unwrap(),
        Claim::Replay(answer)
    );
    // Released by its owner: the next claim runs again.
    second.release("pay|u:1|order-7", owner).await.unwrap();
    assert_eq!(
        first
            .claim("pay|u:1|order-7", "fp-b", "next", hold)
            .await
            .unwrap(),
        Claim::Started
    );
    // The mark of an answer that went out but was not kept is kept like one, for the other
    // machine's retry.
    first
        .complete(
            "pay|u:1|order-7",
            "next",
            StoredResponse::not_kept(200),
            hold,
        )
        .await
        .unwrap();
    assert_eq!(
        second
            .claim("pay|u:1|order-7", "fp-b", "retry", hold)
            .await
            .unwrap(),
        Claim::Replay(StoredResponse::not_kept(200))
    );
    // Keys are stored hashed under the prefix, and expire.
    let keys = machines.keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].contains("order-7"), "{keys:?}");
    first.release("pay|u:1|order-7", "next").await.unwrap();
    assert!(machines.keys().await.is_empty());
}

#[tokio::test]
async fn a_rediss_url_speaks_tls() {
    // Whatever listens here sees what the client sends first: for `rediss://`, a TLS
    // ClientHello (a handshake record, 0x16, of TLS 1.x), not a Redis command.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connecting =
        tokio::spawn(
            async move { RedisStores::connect(&format!("rediss://localhost:{port}")).await },
        );
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("the client connects")
        .unwrap();
    let mut first = [0u8; 3];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut first)
        .await
        .unwrap();
    assert_eq!(first[0], 0x16, "a TLS handshake record, not {first:?}");
    assert_eq!(first[1], 0x03, "TLS 1.x: {first:?}");
    // No server answers it: a clear error, not a hang.
    drop(stream);
    drop(listener);
    let error = connecting.await.unwrap().expect_err("no TLS server here");
    let StoreError::Unavailable(message) = error else {
        panic!("unexpected error kind");
    };
    assert!(message.starts_with("redis: "), "{message}");
}
