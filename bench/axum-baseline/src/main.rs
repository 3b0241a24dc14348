//! A plain axum server answering `GET /api/hello`, `GET /api/posts` and `GET /api/posts/{id}`
//! as the showcase does (same SQL, same JSON, same SQLite setup), written the way a competent
//! axum user would, without Waypost: the baseline the bench compares the showcase to.
//!
//! Bare, it sends the showcase's bodies and nothing of what the contract asks of every answer.
//! `BASELINE_SAME_ANSWERS=1` adds that by hand (see [`same_answers`]): the answers are then the
//! showcase's, header for header, and the comparison is of the same work.
//! `BASELINE_PROTECTIONS=1` adds protections the way most axum users would, from tower-http and
//! tower_governor.

mod same_answers;

use std::{env, net::SocketAddr, str::FromStr, time::Duration};

use axum::{
    extract::{Path, Query, State},
    handler::Handler,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, MethodRouter},
    serve::ListenerExt,
    Json, Router, ServiceExt,
};
use serde::{Deserialize, Serialize};
use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions, AnyRow},
    AnyPool, ConnectOptions, Executor, Row,
};

const COLUMNS: &str = "id, title, content, category, published, author_id, created_at, updated_at";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Post {
    id: String,
    title: String,
    content: String,
    category: Option<String>,
    published: bool,
    author_id: Option<String>,
    created_at: String,
    updated_at: String,
}

impl Post {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            title: row.try_get("title")?,
            content: row.try_get("content")?,
            category: row.try_get("category")?,
            published: row.try_get::<i64, _>("published")? != 0,
            author_id: row.try_get("author_id")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

#[derive(Serialize)]
struct Page {
    posts: Vec<Post>,
    pagination: Pagination,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Pagination {
    page: u32,
    limit: u32,
    total: u64,
    total_pages: u64,
}

#[derive(Deserialize, Clone, Copy, Default)]
enum Sort {
    #[default]
    #[serde(rename = "createdAt")]
    CreatedAt,
    #[serde(rename = "title")]
    Title,
}

#[derive(Deserialize)]
struct ListParams {
    page: Option<u32>,
    limit: Option<u32>,
    sort: Option<Sort>,
    category: Option<String>,
}

/// What a handler can fail with, sent as `{"error", "code"}`.
enum AppError {
    BadRequest(&'static str),
    NotFound,
    Database(sqlx::Error),
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    code: &'static str,
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, "validation_failed", message),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found", "No post with this id."),
            Self::Database(error) => {
                eprintln!("database error: {error}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal server error.",
                )
            }
        };
        (
            status,
            Json(ErrorBody {
                error: message,
                code,
            }),
        )
            .into_response()
    }
}

/// The same type the showcase's `/api/hello` answers with.
#[derive(Serialize)]
struct Greeting {
    message: &'static str,
}

async fn hello() -> Json<Greeting> {
    Json(Greeting { message: "Hello" })
}

async fn show_post(
    State(db): State<AnyPool>,
    Path(id): Path<String>,
) -> Result<Json<Post>, AppError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM posts WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db)
        .await?;
    let post = row.as_ref().map(Post::from_row).transpose()?;
    match post {
        Some(post) if post.published => Ok(Json(post)),
        _ => Err(AppError::NotFound),
    }
}

async fn list_posts(
    State(db): State<AnyPool>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page>, AppError> {
    let page = params.page.unwrap_or(1);
    let limit = params.limit.unwrap_or(10);
    if page == 0 {
        return Err(AppError::BadRequest("page must be at least 1"));
    }
    if !(1..=100).contains(&limit) {
        return Err(AppError::BadRequest("limit must be between 1 and 100"));
    }
    if params
        .category
        .as_ref()
        .is_some_and(|category| category.is_empty() || category.chars().count() > 100)
    {
        return Err(AppError::BadRequest("category must be 1 to 100 characters"));
    }

    // Anonymous readers see published posts only; `author_id = ''` never matches.
    let mut filter = String::from("(published = 1 OR author_id = $1)");
    if params.category.is_some() {
        filter.push_str(" AND category = $2");
    }
    let order = match params.sort.unwrap_or_default() {
        Sort::CreatedAt => "created_at DESC, id DESC",
        Sort::Title => "LOWER(title) ASC, title ASC, id ASC",
    };
    let next = if params.category.is_some() { 3 } else { 2 };
    let select = format!(
        "SELECT {COLUMNS} FROM posts WHERE {filter} ORDER BY {order} LIMIT ${next} OFFSET ${}",
        next + 1
    );
    let count = format!("SELECT COUNT(*) FROM posts WHERE {filter}");

    let mut rows = sqlx::query(&select).bind("");
    let mut total = sqlx::query_scalar::<_, i64>(&count).bind("");
    if let Some(category) = &params.category {
        rows = rows.bind(category);
        total = total.bind(category);
    }
    let rows = rows
        .bind(i64::from(limit))
        .bind(i64::from(page - 1) * i64::from(limit))
        .fetch_all(&db)
        .await?;
    let total = u64::try_from(total.fetch_one(&db).await?).unwrap_or(0);
    let posts = rows
        .iter()
        .map(Post::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Page {
        posts,
        pagination: Pagination {
            page,
            limit,
            total,
            total_pages: total.div_ceil(u64::from(limit)),
        },
    }))
}

/// Opens the SQLite file like the showcase does: `Any` driver, 8 connections, WAL, a 5 s busy
/// timeout, no statement logging.
async fn connect(url: &str) -> Result<AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let url = if url.contains('?') {
        url.to_owned()
    } else {
        format!("{url}?mode=rwc")
    };
    let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(|connection, _meta| {
            Box::pin(async move {
                connection
                    .execute(
                        "PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    pool.execute("PRAGMA journal_mode = WAL;").await?;
    Ok(pool)
}

/// `BASELINE_PROTECTIONS=1`: the protections the showcase gives every route, added the way an
/// axum user would, from tower-http and tower_governor — a request id (made or kept, echoed),
/// `nosniff`, panics caught as 500, a 1 MiB body limit, and a per-IP rate limit (GCRA, with its
/// headers) that, like the bench's setting for the showcase, never refuses.
fn with_protections(app: Router) -> Router {
    use tower_governor::{governor::GovernorConfigBuilder, GovernorLayer};
    use tower_http::{
        catch_panic::CatchPanicLayer,
        limit::RequestBodyLimitLayer,
        request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
        set_header::SetResponseHeaderLayer,
    };

    // One element every 10 ns with a burst of 10^8: 10^8 per second, as RATE_LIMIT_DEFAULT.
    let limits = GovernorConfigBuilder::default()
        .per_nanosecond(10)
        .burst_size(100_000_000)
        .use_headers()
        .finish()
        .expect("a valid quota");
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    app.layer(
        tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(SetResponseHeaderLayer::overriding(
                axum::http::header::X_CONTENT_TYPE_OPTIONS,
                axum::http::HeaderValue::from_static("nosniff"),
            ))
            .layer(CatchPanicLayer::new())
            .layer(RequestBodyLimitLayer::new(1024 * 1024))
            .layer(GovernorLayer::new(limits)),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = env::var("PORT").map_or(Ok(3001), |port| port.parse())?;
    let host = env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let database_url =
        env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://data/showcase.db".to_owned());

    let db = connect(&database_url).await?;
    let protected = env::var("BASELINE_PROTECTIONS").is_ok_and(|value| value == "1");
    let same_answers = env::var("BASELINE_SAME_ANSWERS").is_ok_and(|value| value == "1");
    if protected && same_answers {
        return Err("set BASELINE_PROTECTIONS or BASELINE_SAME_ANSWERS, not both".into());
    }
    let limits = if same_answers {
        Some(same_answers::RateLimits::from_env()?)
    } else {
        None
    };
    let app = Router::new()
        .route(
            "/api/hello",
            get_route(hello, limits.as_ref(), "/api/hello"),
        )
        .route(
            "/api/posts",
            get_route(list_posts, limits.as_ref(), "/api/posts"),
        )
        .route(
            "/api/posts/{id}",
            get_route(show_post, limits.as_ref(), "/api/posts/{id}"),
        )
        .with_state(db);
    let app = if protected {
        with_protections(app)
    } else {
        app
    };
    let address = SocketAddr::new(host.parse()?, port);
    // TCP_NODELAY, as the showcase's server sets it, so both send responses the same way.
    let listener = tokio::net::TcpListener::bind(address)
        .await?
        .tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
    eprintln!(
        "axum-baseline listening on http://{address} (protections: {protected}, same answers: \
         {same_answers})"
    );
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if same_answers {
        // Around the router, not through `Router::layer`, which would box every route once more.
        let app = tower::Layer::layer(&same_answers::AnswerLayer, app);
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
        .await?;
    } else {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
        .await?;
    }
    Ok(())
}

/// `GET route` by `handler`, with the route's rate limit around the handler when `limits` are
/// given (`Handler::layer`: no boxing beyond what axum does for any handler).
fn get_route<H, T>(
    handler: H,
    limits: Option<&same_answers::RateLimits>,
    route: &'static str,
) -> MethodRouter<AnyPool>
where
    H: Handler<T, AnyPool>,
    T: 'static,
{
    match limits {
        Some(limits) => get(handler.layer(limits.on(route))),
        None => get(handler),
    }
}
