//! The console's pages: minijinja templates (compiled into the binary, HTML-escaped by their
//! `.html` names) and the views they show.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use heart_shared::ErrorCode;
use minijinja::Environment;
use serde::Serialize;

use crate::error::ApiError;
use crate::paging::{Page, PageQuery};

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("signin.html", include_str!("templates/signin.html")),
        ("reports.html", include_str!("templates/reports.html")),
        ("member.html", include_str!("templates/member.html")),
        ("suspended.html", include_str!("templates/suspended.html")),
        ("message.html", include_str!("templates/message.html")),
    ] {
        if let Err(error) = env.add_template(name, source) {
            tracing::error!(template = name, %error, "console template does not compile");
        }
    }
    env
});

/// A rendered page with `status`; never cached, never framed, scripts and plugins off.
pub fn page(status: StatusCode, name: &str, context: impl Serialize) -> Response {
    let rendered = TEMPLATES
        .get_template(name)
        .and_then(|template| template.render(context));
    let (status, body) = match rendered {
        Ok(body) => (status, body),
        Err(error) => {
            tracing::error!(template = name, %error, "console page not rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>The page could not be shown.</p>".to_owned(),
            )
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// An error or notice page.
pub fn message(status: StatusCode, csrf: Option<&str>, heading: &str, message: &str) -> Response {
    page(
        status,
        "message.html",
        minijinja::context! { csrf, heading, message },
    )
}

/// A report as listed.
#[derive(Debug, Serialize)]
pub struct ReportItem {
    pub id: i64,
    pub target_id: i64,
    pub target_nickname: String,
    pub target_suspended: bool,
    pub reporter_nickname: String,
    pub reason: Option<String>,
    pub created_at: String,
    pub action: Option<String>,
    pub note: Option<String>,
}

/// The member page's member.
#[derive(Debug, Serialize)]
pub struct MemberView {
    pub id: i64,
    pub nickname: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub suspended: bool,
    pub suspended_at: Option<String>,
    pub suspended_reason: Option<String>,
}

/// A post on the member page.
#[derive(Debug, Serialize)]
pub struct PostItem {
    pub content: String,
    pub created_at: String,
    /// Image URLs.
    pub images: Vec<String>,
}

/// A suspended member as listed.
#[derive(Debug, Serialize)]
pub struct SuspendedItem {
    pub id: i64,
    pub nickname: String,
    pub email: String,
    pub suspended_at: String,
    pub reason: Option<String>,
}

/// The `?page=` of a list of `size` a page, checked as the API checks it (`GLOBAL_007` for a
/// negative, too deep or malformed one). Given as text, so that a malformed one gets the
/// console's error page rather than the API's JSON.
pub fn requested_page(text: Option<&str>, size: i64) -> Result<Page, ApiError> {
    let number = match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| {
            ApiError::with_message(ErrorCode::InvalidParameter, "page must be a number")
        })?),
    };
    PageQuery {
        page: number,
        size: Some(size),
        ..PageQuery::default()
    }
    .page()
}
