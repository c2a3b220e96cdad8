//! The OpenAPI 3 document: its header, tags and shared components. The operations themselves are
//! collected from the handlers' annotations by the route table (`router.rs`).

use heart_shared::ErrorCode;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API document, before the route table adds its operations.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Heart to Heart API", description = "The API of the Heart to Heart Android app. Errors always answer `{status, code, message}`."),
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

/// What the finished document (after the route table added its operations and their schemas)
/// still needs: the typed error codes and every operation's default error answer.
pub fn finish(openapi: &mut utoipa::openapi::OpenApi) {
    if let Some(components) = openapi.components.as_mut() {
        type_error_codes(components);
    }
    add_default_error_responses(openapi);
}

/// `ErrorBody.code` is a string in Rust (the body is built from [`ErrorCode`]); the document names
/// the codes it can take, from the enum itself.
fn type_error_codes(components: &mut utoipa::openapi::Components) {
    use utoipa::openapi::schema::{Object, Schema, SchemaType, Type};
    use utoipa::openapi::RefOr;
    let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut("ErrorBody") else {
        return;
    };
    let mut code = Object::with_type(SchemaType::new(Type::String));
    code.description = Some("The contract's code; see docs/api.md for each one's meaning.".into());
    code.enum_values = Some(
        ErrorCode::ALL
            .iter()
            .map(|c| serde_json::Value::from(c.as_str()))
            .collect(),
    );
    body.properties
        .insert("code".to_owned(), RefOr::T(Schema::Object(code)));
}

/// Every operation can also answer any other error (rate limit, unreadable body, a dependency down,
/// an internal error) in the contract's error body: documents that as each operation's `default`
/// response.
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
