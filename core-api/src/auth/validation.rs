//! Input rules of the auth endpoints. Each returns every failing field, for `GLOBAL_002`.

use heart_shared::wire::JoinRequest;
use heart_shared::FieldError;

/// Longest email accepted.
pub const EMAIL_MAX: usize = 200;
/// Name and nickname length, after trimming.
pub const NAME_RANGE: std::ops::RangeInclusive<usize> = 1..=20;
/// Password length.
pub const PASSWORD_RANGE: std::ops::RangeInclusive<usize> = 8..=64;

fn field(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// The canonical form of an email: trimmed and lower-cased (uniqueness is case-insensitive).
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Checks an (already normalised) email: present, at most 200 characters, a deliverable address.
/// Deliverable means ASCII too: our mail goes out without SMTPUTF8, so an internationalised
/// address (or one hiding a bidi override) would pass here and fail at the SMTP server (`AUTH_001`).
pub fn check_email(email: &str) -> Option<FieldError> {
    if email.is_empty() {
        return Some(field("email", "must not be blank"));
    }
    if email.chars().count() > EMAIL_MAX {
        return Some(field("email", "must be at most 200 characters"));
    }
    let valid = email.is_ascii()
        && !email.chars().any(|c| c.is_ascii_control())
        && email
            .parse::<lettre::Address>()
            .is_ok_and(|a| a.domain().contains('.') && !a.domain().ends_with('.'));
    (!valid).then(|| field("email", "must be a valid email address"))
}

/// Checks a join request; names are checked after trimming.
pub fn check_join(request: &JoinRequest, email: &str) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = check_email(email).into_iter().collect();
    for (name, value) in [("name", &request.name), ("nickname", &request.nickname)] {
        if !NAME_RANGE.contains(&value.trim().chars().count()) {
            errors.push(field(name, "must be 1 to 20 characters"));
        }
    }
    let password = &request.password;
    if !PASSWORD_RANGE.contains(&password.chars().count()) {
        errors.push(field("password", "must be 8 to 64 characters"));
    } else if !password.chars().any(char::is_alphabetic)
        || !password.chars().any(|c| c.is_ascii_digit())
    {
        errors.push(field(
            "password",
            "must contain at least one letter and one digit",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(email: &str, name: &str, nickname: &str, password: &str) -> Vec<String> {
        let request = JoinRequest {
            email: email.into(),
            name: name.into(),
            nickname: nickname.into(),
            password: password.into(),
        };
        check_join(&request, &normalize_email(email))
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_good_request_passes() {
        assert!(join("Kim@Example.com", "Kim", "kimmy", "passw0rd").is_empty());
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(
            join("not-an-email", "", " ", "short1"),
            vec!["email", "name", "nickname", "password"]
        );
        assert_eq!(join("a@b.co", "n", "k", "lettersonly"), vec!["password"]);
        assert_eq!(join("a@b.co", "n", "k", "1234567890"), vec!["password"]);
        assert_eq!(
            join("a@b.co", &"x".repeat(21), "k", "passw0rd"),
            vec!["name"]
        );
        assert!(join(
            "a@b.co",
            &format!("  {}  ", "x".repeat(20)),
            "k",
            "passw0rd"
        )
        .is_empty());
    }

    #[test]
    fn emails_are_checked_for_shape_and_length() {
        assert!(check_email("a@b.co").is_none());
        assert!(check_email("").is_some());
        assert!(check_email("a@b").is_some());
        assert!(check_email("a b@c.de").is_some());
        assert!(check_email(&format!("{}@example.com", "a".repeat(190))).is_some());
        // Not deliverable without SMTPUTF8: non-ASCII, bidi overrides, control characters.
        assert!(check_email("kim@exämple.com").is_some());
        assert!(check_email("\u{202e}gnp.exe@example.com").is_some());
        assert!(check_email("kim\u{7}@example.com").is_some());
        assert_eq!(normalize_email("  Kim@Example.COM "), "kim@example.com");
    }
}
