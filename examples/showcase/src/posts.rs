//! Posts: the model, its validation rules, and the SQL that stores it.
//!
//! Writes are single statements; a duplicate title is caught by the `UNIQUE` constraint (→ 409),
//! never by a read-then-write check that two requests could both pass.

use garde::Validate;
use serde::{Deserialize, Serialize};
use sqlx::{any::AnyRow, Row};
use waypost::{
    database::{Database, Engine},
    ApiError,
};

use crate::{pagination::Pagination, timestamp};

/// A post as the API shows it.
#[derive(schemars::JsonSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Post {
    /// Opaque id.
    pub id: String,
    /// 5–200 characters, unique.
    pub title: String,
    /// 1–50 000 characters.
    pub content: String,
    /// Free-form category.
    pub category: Option<String>,
    /// Whether everyone can see it.
    pub published: bool,
    /// The author's user id (null for posts written before authentication existed).
    pub author_id: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

/// The body of `POST` and `PUT`: everything a client may set. Server-owned fields (`id`,
/// `authorId`, times) are not here, so a body that carries them cannot override them.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize, Validate)]
pub struct PostInput {
    /// Required, 5–200 characters, not only whitespace.
    #[garde(
        required,
        length(chars, min = 5, max = 200),
        custom(crate::rules::not_blank),
        custom(crate::rules::no_nul)
    )]
    #[schemars(pattern(crate::rules::NOT_BLANK_NO_NUL_PATTERN))]
    pub title: Option<String>,
    /// Required, 1–50 000 characters, not only whitespace.
    #[garde(
        required,
        length(chars, min = 1, max = 50_000),
        custom(crate::rules::not_blank),
        custom(crate::rules::no_nul)
    )]
    #[schemars(pattern(crate::rules::NOT_BLANK_NO_NUL_PATTERN))]
    pub content: Option<String>,
    /// Optional, at most 100 characters.
    #[garde(length(chars, max = 100), custom(crate::rules::no_nul))]
    #[schemars(pattern(crate::rules::NO_NUL_PATTERN))]
    pub category: Option<String>,
    /// Defaults to false.
    #[garde(skip)]
    pub published: Option<bool>,
}

/// The body of `PATCH`: any subset; each present field follows the same rules. `null` clears
/// the category; for the title, the content and `published`, which every post has, it is a
/// validation error rather than a silent no-op.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize, Validate)]
pub struct PostPatch {
    /// 5–200 characters.
    #[garde(
        custom(crate::rules::not_null),
        inner(
            length(chars, min = 5, max = 200),
            custom(crate::rules::not_blank),
            custom(crate::rules::no_nul)
        )
    )]
    #[schemars(
        pattern(crate::rules::NOT_BLANK_NO_NUL_PATTERN),
        length(min = 5, max = 200)
    )]
    #[serde(default, deserialize_with = "present_or_null")]
    #[schemars(with = "String", transform = optional_without_default)]
    pub title: Option<Option<String>>,
    /// 1–50 000 characters.
    #[garde(
        custom(crate::rules::not_null),
        inner(
            length(chars, min = 1, max = 50_000),
            custom(crate::rules::not_blank),
            custom(crate::rules::no_nul)
        )
    )]
    #[schemars(
        pattern(crate::rules::NOT_BLANK_NO_NUL_PATTERN),
        length(min = 1, max = 50_000)
    )]
    #[serde(default, deserialize_with = "present_or_null")]
    #[schemars(with = "String", transform = optional_without_default)]
    pub content: Option<Option<String>>,
    /// `null` clears it.
    #[garde(inner(length(chars, max = 100), custom(crate::rules::no_nul)))]
    #[schemars(pattern(crate::rules::NO_NUL_PATTERN))]
    #[serde(default, deserialize_with = "present_or_null")]
    #[schemars(with = "Option<String>")]
    pub category: Option<Option<String>>,
    /// New visibility.
    #[garde(custom(crate::rules::not_null))]
    #[serde(default, deserialize_with = "present_or_null")]
    #[schemars(with = "bool", transform = optional_without_default)]
    pub published: Option<Option<bool>>,
}

/// The schema of a field that may be left out but is never `null`: without the `default: null`
/// that `serde(default)` would document for it.
fn optional_without_default(schema: &mut schemars::Schema) {
    schema.remove("default");
}

/// Tells "absent" (`None`) from "explicitly null" (`Some(None)`).
fn present_or_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The order of a listing.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
pub enum Sort {
    /// Newest first.
    #[default]
    #[serde(rename = "createdAt")]
    CreatedAt,
    /// A → Z.
    #[serde(rename = "title")]
    Title,
}

/// A page of posts and where it stands.
#[derive(schemars::JsonSchema, Clone, Debug, Serialize)]
pub struct Page {
    /// The posts on this page.
    pub posts: Vec<Post>,
    /// Page, limit, total and page count.
    pub pagination: Pagination,
}

/// What a listing shows.
#[derive(schemars::JsonSchema, Clone, Debug)]
pub struct ListQuery<'a> {
    /// 1-based page.
    pub page: u32,
    /// Page size, 1–100.
    pub limit: u32,
    /// Order.
    pub sort: Sort,
    /// Only this category.
    pub category: Option<&'a str>,
    /// Also show this user's drafts.
    pub viewer: Option<&'a str>,
}

const COLUMNS: &str = "id, title, content, category, published, author_id, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<Post, sqlx::Error> {
    Ok(Post {
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

fn title_taken(error: sqlx::Error) -> ApiError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            ApiError::conflict("A post with this title already exists.")
        }
        _ => ApiError::from(error),
    }
}

/// Stores a new post written by `author`. The input must have passed validation.
///
/// # Errors
/// 409 when the title is taken; 500/503 when the database fails.
pub async fn create(
    db: &Database,
    input: PostInput,
    author: Option<&str>,
) -> Result<Post, ApiError> {
    let now = timestamp::now();
    let post = Post {
        id: uuid::Uuid::now_v7().simple().to_string(),
        title: input.title.unwrap_or_default(),
        content: input.content.unwrap_or_default(),
        category: input.category,
        published: input.published.unwrap_or(false),
        author_id: author.map(str::to_owned),
        created_at: now.clone(),
        updated_at: now,
    };
    sqlx::query(&format!(
        "INSERT INTO posts ({COLUMNS}, title_order) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&post.id)
    .bind(&post.title)
    .bind(&post.content)
    .bind(&post.category)
    .bind(i64::from(post.published))
    .bind(&post.author_id)
    .bind(&post.created_at)
    .bind(&post.updated_at)
    .bind(title_order(&post.title))
    .execute(db)
    .await
    .map_err(title_taken)?;
    Ok(post)
}

/// Where `title` sorts in `sort=title` (A→Z): by its lower-case form, then as written, both
/// compared character by character (Unicode code points) — the same on SQLite and on Postgres,
/// whose own collations differ (SQLite's `LOWER` leaves `É` as it is; a Postgres database in
/// `en_US` skips spaces and punctuation). Stored as hex digits, which every collation orders
/// byte by byte, with `00` (no title holds a NUL) between the two forms so a title sorts before
/// any it is the beginning of.
pub fn title_order(title: &str) -> String {
    format!(
        "{}00{}",
        hex::encode(title.to_lowercase()),
        hex::encode(title)
    )
}

/// Gives the posts written before `title_order` existed theirs; how many.
///
/// # Errors
/// 500/503 when the database fails.
pub async fn fill_title_order(db: &Database) -> Result<u64, ApiError> {
    let unordered: Vec<(String, String)> =
        sqlx::query_as("SELECT id, title FROM posts WHERE title_order IS NULL")
            .fetch_all(db)
            .await?;
    for (id, title) in &unordered {
        sqlx::query("UPDATE posts SET title_order = $1 WHERE id = $2 AND title = $3")
            .bind(title_order(title))
            .bind(id)
            .bind(title)
            .execute(db)
            .await?;
    }
    Ok(unordered.len() as u64)
}

/// The post with `id`, whatever its visibility.
///
/// # Errors
/// 500/503 when the database fails.
pub async fn find(db: &Database, id: &str) -> Result<Option<Post>, ApiError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM posts WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Whether `viewer` may see `post`: published, or their own draft.
pub fn visible_to(post: &Post, viewer: Option<&str>) -> bool {
    post.published || (viewer.is_some() && post.author_id.as_deref() == viewer)
}

/// A page of the posts `query.viewer` may see.
///
/// # Errors
/// 500/503 when the database fails.
pub async fn list(db: &Database, query: &ListQuery<'_>) -> Result<Page, ApiError> {
    // Placeholders are numbered in the order they are bound.
    let mut filter = String::from("(published = 1 OR author_id = $1)");
    if query.category.is_some() {
        filter.push_str(" AND category = $2");
    }
    let order = match query.sort {
        Sort::CreatedAt => "created_at DESC, id DESC",
        // Byte order on both engines: SQLite's default, and Postgres' "C" whatever the
        // database's collation (one with numeric ordering would read the hex digits as
        // numbers). A row an older binary wrote without an order sorts first on both.
        Sort::Title => match Engine::of(db.connect_options().database_url.as_str()) {
            Some(Engine::Postgres) => "COALESCE(title_order, '') COLLATE \"C\" ASC, id ASC",
            _ => "COALESCE(title_order, '') ASC, id ASC",
        },
    };
    let next = if query.category.is_some() { 3 } else { 2 };
    let select = format!(
        "SELECT {COLUMNS} FROM posts WHERE {filter} ORDER BY {order} LIMIT ${next} OFFSET ${}",
        next + 1
    );
    let count = format!("SELECT COUNT(*) FROM posts WHERE {filter}");
    let viewer = query.viewer.unwrap_or("");

    let mut rows = sqlx::query(&select).bind(viewer);
    let mut total = sqlx::query_scalar::<_, i64>(&count).bind(viewer);
    if let Some(category) = query.category {
        rows = rows.bind(category);
        total = total.bind(category);
    }
    let offset = i64::from(query.page - 1) * i64::from(query.limit);
    let rows = rows
        .bind(i64::from(query.limit))
        .bind(offset)
        .fetch_all(db)
        .await?;
    let total = u64::try_from(total.fetch_one(db).await?).unwrap_or(0);
    let posts = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        posts,
        pagination: Pagination::new(query.page, query.limit, total),
    })
}

/// Writes `post`'s fields back (after a PUT or PATCH changed them), stamping `updatedAt`. With
/// `seen`, the post as it was read, only while the stored post still is that one (compare and
/// swap): `None` when it changed meanwhile, so that two edits made at once never silently undo
/// each other — the caller reads it again and re-applies its change.
///
/// # Errors
/// 404 when the post is gone; 409 when the new title is taken.
pub async fn save(
    db: &Database,
    mut post: Post,
    seen: Option<&Post>,
) -> Result<Option<Post>, ApiError> {
    post.updated_at = timestamp::now();
    let mut sql = String::from(
        "UPDATE posts SET title = $1, content = $2, category = $3, published = $4, \
         updated_at = $5, title_order = $6 WHERE id = $7",
    );
    if seen.is_some() {
        sql.push_str(
            " AND title = $8 AND content = $9 AND category IS NOT DISTINCT FROM $10 \
             AND published = $11 AND updated_at = $12",
        );
    }
    let mut update = sqlx::query(&sql)
        .bind(&post.title)
        .bind(&post.content)
        .bind(&post.category)
        .bind(i64::from(post.published))
        .bind(&post.updated_at)
        .bind(title_order(&post.title))
        .bind(&post.id);
    if let Some(seen) = seen {
        update = update
            .bind(&seen.title)
            .bind(&seen.content)
            .bind(&seen.category)
            .bind(i64::from(seen.published))
            .bind(&seen.updated_at);
    }
    let result = update.execute(db).await.map_err(title_taken)?;
    if result.rows_affected() > 0 {
        return Ok(Some(post));
    }
    match seen {
        Some(_) if find(db, &post.id).await?.is_some() => Ok(None),
        _ => Err(ApiError::not_found("No post with this id.")),
    }
}

/// Deletes the post with `id`; whether one was deleted.
///
/// # Errors
/// 500/503 when the database fails.
pub async fn delete(db: &Database, id: &str) -> Result<bool, ApiError> {
    let result = sqlx::query("DELETE FROM posts WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(result.rows_affected() > 0)
}

impl PostInput {
    /// Replaces every client-settable field of `post` (PUT semantics: absent optional fields
    /// are reset).
    pub fn replace(self, post: &mut Post) {
        post.title = self.title.unwrap_or_default();
        post.content = self.content.unwrap_or_default();
        post.category = self.category;
        post.published = self.published.unwrap_or(false);
    }
}

impl PostPatch {
    /// Changes only the fields present in the patch; whether any of them changed a value.
    pub fn apply(&self, post: &mut Post) -> bool {
        let mut changed = false;
        if let Some(Some(title)) = &self.title {
            changed |= post.title != *title;
            post.title.clone_from(title);
        }
        if let Some(Some(content)) = &self.content {
            changed |= post.content != *content;
            post.content.clone_from(content);
        }
        if let Some(category) = &self.category {
            changed |= post.category != *category;
            post.category.clone_from(category);
        }
        if let Some(Some(published)) = self.published {
            changed |= post.published != published;
            post.published = published;
        }
        changed
    }
}
