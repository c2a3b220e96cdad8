//! The OpenAPI 3 document, generated from the handlers' annotations, and the Swagger UI.

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::app::AppState;
use crate::{auth, ops};

/// The API document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Heart to Heart API", description = "The API of the Heart to Heart Android app. Errors always answer `{status, code, message}`."),
    paths(
        auth::routes::send_verification_code,
        auth::routes::confirm_verification_code,
        auth::routes::join,
        auth::routes::login,
        auth::routes::verify_access_token,
        auth::routes::reissue_token,
        auth::routes::logout,
        crate::member::routes::upload_avatar,
        crate::member::routes::profile,
        crate::member::routes::block,
        crate::member::routes::unblock,
        crate::member::routes::blocking_members,
        crate::member::routes::report,
        crate::member::routes::delete_account,
        crate::follow::follow,
        crate::follow::unfollow,
        crate::follow::followers,
        crate::follow::followings,
        crate::post::routes::register_post,
        crate::post::routes::home_feed,
        crate::post::routes::writer_feed,
        crate::post::routes::following_feed,
        crate::post::routes::delete_post,
        crate::moderation::list_reports,
        ops::healthz,
        ops::readyz,
        ops::profile,
        ops::jwks,
    ),
    components(schemas(heart_shared::ErrorBody, heart_shared::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign-up, login and sessions"),
        (name = "member", description = "Profiles, avatars, blocks, reports, account deletion"),
        (name = "follow", description = "The follow graph"),
        (name = "post", description = "Posts with images and feeds"),
        (name = "admin", description = "Moderation, for members with the ADMIN role"),
        (name = "operations", description = "Health, readiness and keys"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        add_default_error_responses(openapi);
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every operation can also answer any other error (rate limit, unreadable body, a dependency down,
/// an internal error) in the contract's error body: document that as the `default` response.
fn add_default_error_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = ResponseBuilder::new()
        .description(
            "Any other error, always as {status, code, message}: see the contract's code table",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            operation
                .responses
                .responses
                .entry("default".to_owned())
                .or_insert_with(|| error.clone().into());
        }
    }
}

/// `/openapi.json` and the Swagger UI at `/swagger-ui/`.
pub fn router() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/swagger-ui").url("/openapi.json", ApiDoc::openapi()))
}
