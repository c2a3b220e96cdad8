//! Queries on `members`.

use sqlx::FromRow;

use crate::db::Db;

/// A member row.
#[derive(Debug, Clone, FromRow)]
pub struct Member {
    /// Id.
    pub id: i64,
    /// Lower-cased email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Nickname.
    pub nickname: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// `USER` or `ADMIN`.
    pub role: String,
    /// Object-storage key of the avatar.
    pub avatar_key: Option<String>,
}

const COLUMNS: &str = "id, email, name, nickname, password_hash, role, avatar_key";

/// A member about to be created.
#[derive(Debug, Clone)]
pub struct NewMember<'a> {
    /// Lower-cased email.
    pub email: &'a str,
    /// Trimmed name.
    pub name: &'a str,
    /// Trimmed nickname.
    pub nickname: &'a str,
    /// Argon2id PHC string.
    pub password_hash: &'a str,
}

/// The member with `email` (already lower-cased).
pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<Member>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM members WHERE email = ?"))
        .bind(email)
        .fetch_optional(&db.pool)
        .await
}

/// The member with `id`.
pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<Member>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM members WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// Whether a member with `email` exists.
pub async fn email_exists(db: &Db, email: &str) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM members WHERE email = ?")
        .bind(email)
        .fetch_optional(&db.pool)
        .await?;
    Ok(found.is_some())
}

/// Inserts `member`; a duplicate email fails with a unique violation.
pub async fn insert(
    conn: &mut sqlx::AnyConnection,
    member: &NewMember<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO members (email, name, nickname, password_hash, role, created_at, updated_at) \
         VALUES (?, ?, ?, ?, 'USER', ?, ?)",
    )
    .bind(member.email)
    .bind(member.name)
    .bind(member.nickname)
    .bind(member.password_hash)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    crate::db::inserted_id(conn, &result).await
}
