//! Request and response bodies of the Android app's contract (`api-contract.md`).
//!
//! Field names are the wire names (snake_case). Optional values are serialised as `null`, never
//! omitted. Request string fields default to empty so that a missing field is reported as a
//! validation error (`GLOBAL_002`) naming it, as the original server did, rather than as an
//! unreadable body.

use serde::{Deserialize, Deserializer, Serialize};

/// A member id as the app may send it: a JSON number or a numeric string (`"42"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct MemberId(pub i64);

impl<'de> Deserialize<'de> for MemberId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NumberOrString {
            Number(i64),
            String(String),
        }
        match NumberOrString::deserialize(deserializer)? {
            NumberOrString::Number(n) => Ok(MemberId(n)),
            NumberOrString::String(s) => s.trim().parse::<i64>().map(MemberId).map_err(|_| {
                serde::de::Error::custom("member_id must be a number or a numeric string")
            }),
        }
    }
}

/// A plain `{"message": "..."}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageResponse {
    /// The message, e.g. `"Email sent."`.
    pub message: String,
}

impl MessageResponse {
    /// A message answer.
    pub fn new(message: impl Into<String>) -> Self {
        MessageResponse {
            message: message.into(),
        }
    }
}

/// `POST /auth/emailVerificationCode`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendVerificationCodeRequest {
    /// Where to send the code.
    #[serde(default)]
    pub email: String,
}

/// `POST /auth/confirmVerificationCode`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfirmVerificationCodeRequest {
    /// The email the code was sent to.
    #[serde(default)]
    pub email: String,
    /// The 8-character code from the mail (case-sensitive).
    #[serde(default)]
    pub verification_code: String,
}

/// `POST /auth/join`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinRequest {
    /// A confirmed email, at most 200 characters.
    #[serde(default)]
    pub email: String,
    /// 1–20 characters after trimming.
    #[serde(default)]
    pub name: String,
    /// 1–20 characters after trimming.
    #[serde(default)]
    pub nickname: String,
    /// 8–64 characters with at least one letter and one digit.
    #[serde(default)]
    pub password: String,
}

/// `201` answer of `POST /auth/join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinResponse {
    /// The new member's id.
    pub member_id: i64,
}

/// `POST /auth/login`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    /// The member's email (case-insensitive).
    #[serde(default)]
    pub email: String,
    /// The member's password.
    #[serde(default)]
    pub password: String,
}

/// `200` answer of `POST /auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// The member's id.
    pub member_id: i64,
    /// A short-lived signed JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// An opaque token for `POST /auth/reissueToken`; rotated on every use.
    pub refresh_token: String,
    /// The member's name.
    pub name: String,
    /// The member's nickname.
    pub nickname: String,
}

/// `POST /auth/reissueToken`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReissueTokenRequest {
    /// The member the refresh token belongs to, as a number or a numeric string.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "42"))]
    pub member_id: MemberId,
    /// The refresh token from the last login or reissue.
    #[serde(default)]
    pub refresh_token: String,
}

/// `200` answer of `POST /auth/reissueToken`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReissueTokenResponse {
    /// The member's id.
    pub member_id: i64,
    /// A new access token.
    pub access_token: String,
    /// A new refresh token; the one presented is now rotated.
    pub refresh_token: String,
    /// The member's name.
    pub name: String,
    /// The member's nickname.
    pub nickname: String,
    /// The member's email.
    pub email: String,
    /// Absolute URL of the member's avatar, or `null`.
    pub avatar_url: Option<String>,
}

/// `POST /auth/passwordResetCode` (extension 2026-12).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordResetCodeRequest {
    /// The member's email; the answer is the same whether or not a member has it.
    #[serde(default)]
    pub email: String,
}

/// `POST /auth/resetPassword` (extension 2026-12).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetPasswordRequest {
    /// The email the reset code was sent to.
    #[serde(default)]
    pub email: String,
    /// The 8-character code from the mail (case-sensitive).
    #[serde(default)]
    pub verification_code: String,
    /// 8–64 characters with at least one letter and one digit (join's rule).
    #[serde(default)]
    pub new_password: String,
}

/// `POST /auth/changePassword` (extension 2026-12).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangePasswordRequest {
    /// The caller; must be the token's member.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub member_id: Option<MemberId>,
    /// The password in use now.
    #[serde(default)]
    pub current_password: String,
    /// 8–64 characters with at least one letter and one digit (join's rule).
    #[serde(default)]
    pub new_password: String,
}

/// `POST /member/block`, `/member/unblock`, `/member/follow`, `/member/unfollow`: the caller and a target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberTargetRequest {
    /// The caller; must be the token's member.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub member_id: Option<MemberId>,
    /// The other member.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub target_id: Option<MemberId>,
}

/// `POST /member/report`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportRequest {
    /// The caller; must be the token's member.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub member_id: Option<MemberId>,
    /// The reported member.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub target_id: Option<MemberId>,
    /// Why, optional, at most 1000 characters.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Answer of block, unblock, report, follow and unfollow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberTargetResponse {
    /// The caller.
    pub member_id: i64,
    /// The other member.
    pub target_id: i64,
}

/// `201` answer of `POST /member/uploadAvatar`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AvatarResponse {
    /// The member.
    pub member_id: i64,
    /// Absolute URL of the new avatar.
    pub avatar_url: String,
}

/// `GET /member/profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileResponse {
    /// The member.
    pub member_id: i64,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Nickname.
    pub nickname: String,
    /// Absolute avatar URL, or `null`.
    pub avatar_url: Option<String>,
    /// Number of posts.
    pub post_size: i64,
    /// Number of followers.
    pub follower_size: i64,
    /// Number of members followed.
    pub following_size: i64,
}

/// A member in a list (blocked members, followers, followings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberSummary {
    /// Id.
    pub id: i64,
    /// Email.
    pub email: String,
    /// Nickname.
    pub nickname: String,
    /// Name.
    pub name: String,
    /// Absolute avatar URL, or `null`.
    pub avatar_url: Option<String>,
}

/// A list of members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberListResponse {
    /// Number of members in `members`.
    pub size: usize,
    /// The members.
    pub members: Vec<MemberSummary>,
}

/// The fields of a post shown in feeds and after creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostBody {
    /// The writer.
    pub writer_id: i64,
    /// The writer's email.
    pub writer_email: String,
    /// The writer's nickname.
    pub writer_nickname: String,
    /// The writer's avatar URL, or `null`.
    pub avatar_url: Option<String>,
    /// The text.
    pub content: String,
    /// Absolute image URLs in upload order; always an array.
    pub image_urls: Vec<String>,
    /// `yyyy-MM-ddTHH:mm:ss`, UTC, 24-hour clock.
    pub created_at: String,
    /// `yyyy-MM-ddTHH:mm:ss`, UTC, 24-hour clock.
    pub updated_at: String,
}

/// A post in a feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Post {
    /// The post's id.
    pub id: i64,
    /// The rest.
    #[serde(flatten)]
    pub body: PostBody,
}

/// `201` answer of `POST /post/registerPost`: a post with `post_id` instead of `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisteredPost {
    /// The new post's id.
    pub post_id: i64,
    /// The rest.
    #[serde(flatten)]
    pub body: PostBody,
}

/// A page of a feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostPage {
    /// Number of posts in `posts`.
    pub size: usize,
    /// Newest first.
    pub posts: Vec<Post>,
    /// Pass as `cursor` for the next page (keyset paging, an extra the app ignores); `null` at the end.
    pub next_cursor: Option<String>,
}

/// A report, for moderators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportView {
    /// Id.
    pub id: i64,
    /// Who reported.
    pub reporter_id: i64,
    /// Who was reported.
    pub target_id: i64,
    /// Why, if given.
    pub reason: Option<String>,
    /// When, `yyyy-MM-ddTHH:mm:ss` UTC.
    pub created_at: String,
    /// `open` or `resolved`.
    pub status: String,
    /// How it was resolved (`dismiss` or `suspend`); `null` while open.
    pub action: Option<String>,
    /// The moderator's note, if any.
    pub note: Option<String>,
    /// The admin who resolved it; `null` while open.
    pub resolved_by: Option<i64>,
    /// When it was resolved, `yyyy-MM-ddTHH:mm:ss` UTC; `null` while open.
    pub resolved_at: Option<String>,
}

/// `POST /admin/members/{id}/suspend`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuspendRequest {
    /// Why, 1 to 1000 characters; kept for moderators, never shown to the member.
    #[serde(default)]
    pub reason: String,
}

/// The answer of suspend and unsuspend: the member's state afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuspensionResponse {
    /// The member.
    pub member_id: i64,
    /// Whether the member is suspended now.
    pub suspended: bool,
    /// The suspension's reason; `null` when not suspended.
    pub reason: Option<String>,
    /// Since when, `yyyy-MM-ddTHH:mm:ss` UTC; `null` when not suspended.
    pub suspended_at: Option<String>,
}

/// `POST /admin/reports/{id}/resolve`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolveReportRequest {
    /// `dismiss` (nothing happens to the member) or `suspend` (the reported member is suspended,
    /// with the note as reason, and every open report about them is resolved with it).
    #[serde(default)]
    pub action: String,
    /// The moderator's note, optional, at most 1000 characters.
    #[serde(default)]
    pub note: Option<String>,
}

/// `GET /admin/reports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportPage {
    /// Number of reports in `reports`.
    pub size: usize,
    /// Newest first.
    pub reports: Vec<ReportView>,
}

/// The UTC date and time of seconds since the Unix epoch; times outside the years ±9999 clamp to
/// the nearest one that `time` represents.
pub fn utc_datetime(unix_secs: i64) -> time::OffsetDateTime {
    let first = time::OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT);
    let last = time::OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT);
    time::OffsetDateTime::from_unix_timestamp(
        unix_secs.clamp(first.unix_timestamp(), last.unix_timestamp()),
    )
    .unwrap_or(first)
}

/// Formats seconds since the Unix epoch as the contract's `yyyy-MM-ddTHH:mm:ss` (UTC, 24-hour clock).
pub fn format_timestamp(unix_secs: i64) -> String {
    let t = utc_datetime(unix_secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_id_accepts_number_and_numeric_string() {
        let a: ReissueTokenRequest =
            serde_json::from_str(r#"{"member_id": 7, "refresh_token": "x"}"#).unwrap();
        let b: ReissueTokenRequest =
            serde_json::from_str(r#"{"member_id": "7", "refresh_token": "x"}"#).unwrap();
        assert_eq!(a.member_id, MemberId(7));
        assert_eq!(a, b);
    }

    #[test]
    fn member_id_rejects_non_numeric_string() {
        assert!(serde_json::from_str::<ReissueTokenRequest>(
            r#"{"member_id": "seven", "refresh_token": "x"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<ReissueTokenRequest>(
            r#"{"member_id": true, "refresh_token": "x"}"#
        )
        .is_err());
    }

    #[test]
    fn missing_string_fields_default_to_empty_for_validation() {
        let join: JoinRequest = serde_json::from_str(r#"{"email": "a@b.c"}"#).unwrap();
        assert_eq!(join.password, "");
    }

    #[test]
    fn timestamps_use_a_24_hour_clock_in_utc() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00");
        assert_eq!(format_timestamp(1_795_603_632), "2026-11-25T10:47:12");
        assert_eq!(
            format_timestamp(951_782_400 + 13 * 3600 + 5),
            "2000-02-29T13:00:05"
        );
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59");
    }

    #[test]
    fn registered_post_has_post_id_instead_of_id() {
        let body = PostBody {
            writer_id: 1,
            writer_email: "a@b.co".into(),
            writer_nickname: "k".into(),
            avatar_url: None,
            content: "hi".into(),
            image_urls: vec![],
            created_at: format_timestamp(0),
            updated_at: format_timestamp(0),
        };
        let registered = serde_json::to_value(RegisteredPost {
            post_id: 9,
            body: body.clone(),
        })
        .unwrap();
        assert_eq!(registered["post_id"], 9);
        assert!(registered.get("id").is_none());
        assert_eq!(registered["image_urls"], serde_json::json!([]));
        let post = serde_json::to_value(Post { id: 9, body }).unwrap();
        assert_eq!(post["id"], 9);
        assert!(post["avatar_url"].is_null());
    }

    #[test]
    fn optional_values_are_sent_as_null() {
        let r = ReissueTokenResponse {
            member_id: 1,
            access_token: "a".into(),
            refresh_token: "r".into(),
            name: "n".into(),
            nickname: "k".into(),
            email: "e@x.io".into(),
            avatar_url: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.as_object().unwrap().contains_key("avatar_url"));
        assert!(v["avatar_url"].is_null());
    }
}
