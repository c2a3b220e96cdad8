//! `page` / `size` paging as the app sends it, plus keyset cursors as an extra.
//!
//! The app asks for `page` (from 0) and `size` (10) and stops at a short page. Offsets cost more the
//! deeper they go, so every feed answer also carries `next_cursor`: passing it back as `cursor`
//! reads the next page by seeking the index, whatever its depth.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use heart_shared::ErrorCode;
use serde::Deserialize;

use crate::error::ApiError;

/// Largest page.
pub const MAX_SIZE: i64 = 100;

/// `?member_id=&page=&size=&cursor=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// The caller (where the endpoint names one).
    pub member_id: Option<i64>,
    /// Page number from 0 (default 0).
    pub page: Option<i64>,
    /// Page size, 1 to 100 (default 10).
    pub size: Option<i64>,
    /// Keyset cursor from a previous answer's `next_cursor`; replaces `page`.
    pub cursor: Option<String>,
}

/// A checked page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Page number.
    pub number: i64,
    /// Page size.
    pub size: i64,
    /// Where to continue, if a cursor was given.
    pub after: Option<Cursor>,
}

impl Page {
    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        if self.after.is_some() {
            0
        } else {
            self.number * self.size
        }
    }
}

/// The position after a post: its `(created_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// `created_at` of the last post seen.
    pub created_at: i64,
    /// `id` of the last post seen.
    pub id: i64,
}

impl Cursor {
    /// The opaque string form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.created_at, self.id))
    }

    /// Reads the string form.
    pub fn decode(text: &str) -> Option<Cursor> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text.trim()).ok()?).ok()?;
        let (created_at, id) = raw.split_once(':')?;
        Some(Cursor {
            created_at: created_at.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

fn bad(message: &str) -> ApiError {
    ApiError::with_message(ErrorCode::InvalidParameter, message.to_owned())
}

impl PageQuery {
    /// The page, checked: `page ≥ 0`, `1 ≤ size ≤ 100`, a well-formed cursor; `GLOBAL_007` otherwise.
    pub fn page(&self) -> Result<Page, ApiError> {
        let number = self.page.unwrap_or(0);
        let size = self.size.unwrap_or(10);
        if number < 0 {
            return Err(bad("page must be 0 or more"));
        }
        if !(1..=MAX_SIZE).contains(&size) {
            return Err(bad("size must be between 1 and 100"));
        }
        if number
            .checked_mul(size)
            .is_none_or(|offset| offset > i64::from(i32::MAX))
        {
            return Err(bad("page is too deep"));
        }
        let after = match &self.cursor {
            Some(text) if !text.trim().is_empty() => {
                Some(Cursor::decode(text).ok_or_else(|| bad("cursor is malformed"))?)
            }
            _ => None,
        };
        Ok(Page {
            number,
            size,
            after,
        })
    }

    /// The `member_id` parameter: `GLOBAL_007` when missing.
    pub fn member_id(&self) -> Result<i64, ApiError> {
        self.member_id
            .ok_or_else(|| bad("Missing query parameter member_id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            PageQuery::default().page().unwrap(),
            Page {
                number: 0,
                size: 10,
                after: None
            }
        );
        let q = |page, size| PageQuery {
            page: Some(page),
            size: Some(size),
            ..Default::default()
        };
        assert!(q(-1, 10).page().is_err());
        assert!(q(0, 0).page().is_err());
        assert!(q(0, 101).page().is_err());
        assert!(q(i64::MAX, 10).page().is_err());
        assert_eq!(q(3, 100).page().unwrap().offset(), 300);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            created_at: 1_795_603_632,
            id: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        let q = PageQuery {
            cursor: Some("%%%".into()),
            ..Default::default()
        };
        assert!(q.page().is_err());
        let q = PageQuery {
            page: Some(5),
            cursor: Some(c.encode()),
            ..Default::default()
        };
        assert_eq!(q.page().unwrap().offset(), 0);
    }
}
