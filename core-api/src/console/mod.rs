//! The moderation console at `/admin/`: server-rendered pages for a browser, plain HTML forms, no
//! script. A moderator signs in with an `ADMIN`'s email and password (the login's rate limits and
//! checks), gets a session cookie of the console's own (never the app's bearer tokens), and every
//! form carries the session's CSRF token. The actions are the moderation endpoints' use cases.

pub mod pages;
pub mod session;

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use heart_shared::wire::format_timestamp;
use heart_shared::ErrorCode;
use serde::Deserialize;

use self::pages::{message, page, MemberView, PostItem, ReportItem, SuspendedItem};
use self::session::ConsoleSession;
use crate::auth;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, ClientIp};
use crate::member::repo as members;
use crate::moderation::repo::{self as reports, Status};
use crate::moderation::service as moderation;
use crate::paging::Page;
use crate::post::repo as posts;
use crate::state::AppState;

/// Reports a page of the console lists (`?page=` reaches the older ones).
pub const REPORTS_PER_PAGE: i64 = 50;
/// Posts and reports shown on a member's page.
const MEMBER_PAGE_ITEMS: i64 = 10;

/// The console's routes besides `GET /admin/` (which is in the route table, with its OpenAPI entry).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::permanent("/admin/") }))
        .route("/admin/signin", post(sign_in))
        .route("/admin/signout", post(sign_out))
        .route("/admin/suspended", get(suspended))
        .route("/admin/members/{id}", get(member))
        .route("/admin/console/reports/{id}/resolve", post(resolve))
        .route("/admin/console/members/{id}/suspend", post(suspend))
        .route("/admin/console/members/{id}/unsuspend", post(unsuspend))
}

/// `?status=&page=` of the console's report list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsoleQuery {
    /// `open` (default) or `resolved`.
    pub status: Option<String>,
    /// Page number from 0 (default 0), 50 reports a page, newest first.
    pub page: Option<String>,
}

/// The moderation console: the sign-in form, or (signed in) the open or resolved reports.
#[utoipa::path(get, path = "/admin/", tag = "admin", params(ConsoleQuery),
    responses(
        (status = 200, description = "The console's page: sign-in form, or the reports", content_type = "text/html", body = String),
    ))]
pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ConsoleQuery>,
) -> Response {
    let session = match signed_in(&state, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return sign_in_page(&state, &headers, StatusCode::OK, "", None),
        Err(e) => return failure(e, None),
    };
    let (status, tab) = match query.status.as_deref().map(str::trim) {
        Some("resolved") => (Status::Resolved, "resolved"),
        _ => (Status::Open, "open"),
    };
    let checked = pages::requested_page(query.page.as_deref(), REPORTS_PER_PAGE);
    let listed = match checked {
        Ok(checked) => report_items(&state, session.member_id, status, checked)
            .await
            .map(|reports| (checked.number, reports)),
        Err(e) => Err(e),
    };
    match listed {
        Ok((number, reports)) => {
            // A full page may have older reports behind it.
            let older = (reports.len() as i64 == REPORTS_PER_PAGE).then_some(number + 1);
            let newer = (number > 0).then(|| number - 1);
            page(
                StatusCode::OK,
                "reports.html",
                minijinja::context! { csrf => session.csrf_token, tab, reports, older, newer },
            )
        }
        Err(e) => failure(e, Some(&session.csrf_token)),
    }
}

async fn report_items(
    state: &AppState,
    admin: i64,
    status: Status,
    page: Page,
) -> Result<Vec<ReportItem>, ApiError> {
    let listed = moderation::list_reports(state, admin, status, page).await?;
    let ids: HashSet<i64> = listed
        .reports
        .iter()
        .flat_map(|r| [r.reporter_id, r.target_id])
        .collect();
    let known: HashMap<i64, members::Member> =
        members::find_many(&state.db, &ids.into_iter().collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
    let nickname = |id: i64| {
        known
            .get(&id)
            .map_or_else(|| format!("deleted member #{id}"), |m| m.nickname.clone())
    };
    Ok(listed
        .reports
        .into_iter()
        .map(|r| ReportItem {
            target_nickname: nickname(r.target_id),
            target_suspended: known
                .get(&r.target_id)
                .is_some_and(|m| m.suspended_at.is_some()),
            reporter_nickname: nickname(r.reporter_id),
            id: r.id,
            target_id: r.target_id,
            reason: r.reason,
            created_at: r.created_at,
            action: r.action,
            note: r.note,
        })
        .collect())
}

/// The signed-in moderator, if the request's cookie names a live console session of a member who
/// may still moderate (the role is checked on every request: revoking it ends the console too).
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<ConsoleSession>, ApiError> {
    let Some(session) = session::current(&state.db, headers, state.clock.now()).await? else {
        return Ok(None);
    };
    match moderation::require_admin(state, session.member_id).await {
        Ok(_) => Ok(Some(session)),
        Err(ApiError::Contract {
            code: ErrorCode::Forbidden,
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The signed-in moderator whose form carried their CSRF token; otherwise the answer to give:
/// back to the sign-in page, or `403` for a form without the right token.
async fn form_session(
    state: &AppState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<ConsoleSession, Response> {
    match signed_in(state, headers).await {
        Ok(Some(session)) if session.csrf_matches(csrf) => Ok(session),
        Ok(Some(session)) => Err(message(
            StatusCode::FORBIDDEN,
            Some(&session.csrf_token),
            "Form refused",
            "This form was not sent from the console (its CSRF token does not match). Reload the page and try again.",
        )),
        Ok(None) => Err(Redirect::to("/admin/").into_response()),
        Err(e) => Err(failure(e, None)),
    }
}

fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Response {
    let (signin_csrf, cookie) = session::new_signin_token(session::secure_cookies(state, headers));
    let mut response = page(
        status,
        "signin.html",
        minijinja::context! { signin_csrf, email, error },
    );
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// The sign-in form.
#[derive(Debug, Default, Deserialize)]
struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// Signs a moderator in, under the login's rate limits (shared counters: the console is no way
/// around them); only members with the `ADMIN` role, not suspended, get a session.
async fn sign_in(
    State(state): State<AppState>,
    client_ip: ClientIp,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = session::cookie(&headers, session::SIGNIN_COOKIE).unwrap_or_default();
    if !session::csrf_equal(expected, &form.csrf) {
        return sign_in_page(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            &form.email,
            Some("The sign-in form expired. Please try again."),
        );
    }
    let checked =
        auth::service::check_credentials(&state, &form.email, &form.password, &client_ip.subject())
            .await;
    let refuse = |status, text| sign_in_page(&state, &headers, status, &form.email, Some(text));
    let member = match checked {
        Ok(member) if member.is_admin() => member,
        Ok(_) => return refuse(StatusCode::FORBIDDEN, "This account is not a moderator."),
        Err(ApiError::RateLimited { retry_after_secs }) => {
            let mut response = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in attempts. Wait a few minutes and try again.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return response;
        }
        Err(e) => match e.error_code() {
            ErrorCode::WrongCredentials => {
                return refuse(StatusCode::UNAUTHORIZED, "Wrong email or password.")
            }
            ErrorCode::MemberSuspended => {
                return refuse(StatusCode::FORBIDDEN, "This account is suspended.")
            }
            _ => return failure(e, None),
        },
    };
    let secret = match session::start(&state.db, member.id, state.clock.now()).await {
        Ok(secret) => secret,
        Err(e) => return failure(e, None),
    };
    tracing::info!(member_id = member.id, "console sign-in");
    let secure = session::secure_cookies(&state, &headers);
    let mut response = Redirect::to("/admin/").into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        session::set_cookie(
            session::SESSION_COOKIE,
            &secret,
            session::SESSION_SECS,
            secure,
        ),
    );
    cookies.append(
        header::SET_COOKIE,
        session::set_cookie(session::SIGNIN_COOKIE, "", 0, secure),
    );
    response
}

/// A form with only its CSRF token.
#[derive(Debug, Default, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let session = match form_session(&state, &headers, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if let Err(e) = session::end(&state, &session).await {
        return failure(e, None);
    }
    let mut response = Redirect::to("/admin/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(
            session::SESSION_COOKIE,
            "",
            0,
            session::secure_cookies(&state, &headers),
        ),
    );
    response
}

async fn suspended(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match signed_in(&state, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return Redirect::to("/admin/").into_response(),
        Err(e) => return failure(e, None),
    };
    match members::suspended(&state.db, REPORTS_PER_PAGE).await {
        Ok(rows) => {
            let members: Vec<SuspendedItem> = rows
                .into_iter()
                .map(|m| SuspendedItem {
                    id: m.id,
                    nickname: m.nickname,
                    email: m.email,
                    suspended_at: format_timestamp(m.suspended_at),
                    reason: m.reason,
                })
                .collect();
            page(
                StatusCode::OK,
                "suspended.html",
                minijinja::context! { csrf => session.csrf_token, tab => "suspended", members },
            )
        }
        Err(e) => failure(e.into(), Some(&session.csrf_token)),
    }
}

async fn member(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Response {
    let session = match signed_in(&state, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return Redirect::to("/admin/").into_response(),
        Err(e) => return failure(e, None),
    };
    match member_page(&state, &session, id).await {
        Ok(response) => response,
        Err(e) => failure(e, Some(&session.csrf_token)),
    }
}

async fn member_page(
    state: &AppState,
    session: &ConsoleSession,
    id: i64,
) -> Result<Response, ApiError> {
    let Some(found) = members::find_by_id(&state.db, id).await? else {
        return Err(ApiError::no_such_member("member", id));
    };
    let suspension = moderation::suspension_of(state, id).await?;
    let member = MemberView {
        id: found.id,
        nickname: found.nickname,
        name: found.name,
        email: found.email,
        role: found.role,
        suspended: suspension.is_some(),
        suspended_at: suspension
            .as_ref()
            .map(|s| format_timestamp(s.suspended_at)),
        suspended_reason: suspension.and_then(|s| s.reason),
    };
    let reports: Vec<_> = reports::about(&state.db, id, MEMBER_PAGE_ITEMS)
        .await?
        .into_iter()
        .map(moderation::report_view)
        .collect();
    let posts: Vec<PostItem> = posts::latest_of_writer(&state.db, id, MEMBER_PAGE_ITEMS)
        .await?
        .into_iter()
        .map(|post| PostItem {
            content: post.row.content,
            created_at: format_timestamp(post.row.created_at),
            images: post.image_keys.iter().map(|k| state.media_url(k)).collect(),
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        "member.html",
        minijinja::context! { csrf => session.csrf_token, member, reports, posts },
    ))
}

/// The resolve form of a report.
#[derive(Debug, Default, Deserialize)]
struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    note: String,
}

async fn resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<ResolveForm>,
) -> Response {
    let session = match form_session(&state, &headers, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let resolved = moderation::resolve(
        &state,
        session.member_id,
        id,
        &form.action,
        Some(&form.note),
    )
    .await;
    match resolved {
        Ok(_) => Redirect::to("/admin/").into_response(),
        Err(e) => failure(e, Some(&session.csrf_token)),
    }
}

/// The suspend form of a member.
#[derive(Debug, Default, Deserialize)]
struct SuspendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn suspend(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<SuspendForm>,
) -> Response {
    let session = match form_session(&state, &headers, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match moderation::suspend(&state, session.member_id, id, &form.reason).await {
        Ok(_) => Redirect::to(&format!("/admin/members/{id}")).into_response(),
        Err(e) => failure(e, Some(&session.csrf_token)),
    }
}

async fn unsuspend(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let session = match form_session(&state, &headers, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match moderation::unsuspend(&state, session.member_id, id).await {
        Ok(_) => Redirect::to(&format!("/admin/members/{id}")).into_response(),
        Err(e) => failure(e, Some(&session.csrf_token)),
    }
}

/// An error as a console page. Unexpected errors keep the API's answer (logged there, never detailed).
fn failure(e: ApiError, csrf: Option<&str>) -> Response {
    let text = match &e {
        ApiError::Contract { message, .. } => message.clone(),
        ApiError::Validation(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => return e.into_response(),
    };
    let code = e.error_code();
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    message(status, csrf, "Not done", &format!("{text} ({code})"))
}
