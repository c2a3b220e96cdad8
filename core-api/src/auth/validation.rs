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
            .is_ok_and(|a| is_dot_atom(a.user()) && is_host_name(a.domain()));
    (!valid).then(|| field("email", "must be a valid email address"))
}

/// A local part without quotes or spaces (RFC 5322 dot-atom): `"a b"@x.co` is valid to lettre
/// but refused by mail servers, which answered `AUTH_001` (503) where `GLOBAL_002` is right.
fn is_dot_atom(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c))
        })
}

/// A DNS host name with at least two labels: no address literal (`a@[127.0.0.1]`), no bare host.
fn is_host_name(domain: &str) -> bool {
    domain.contains('.')
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The stored form of a name or nickname: trimmed, in Unicode NFC (one spelling per name).
pub fn normalize_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.trim().nfc().collect()
}

/// Characters a name may not hold: controls (NUL…), bidi overrides and isolates (which turn the
/// text around them), line and paragraph separators.
fn is_forbidden_in_name(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Characters that show nothing: a name made only of these (and spaces) looks empty.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{2064}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
        )
}

/// Checks a name or nickname (already normalised): 1–20 characters, no control or bidi
/// characters, at least one visible character.
pub fn check_name(name: &str, value: &str) -> Option<FieldError> {
    if !NAME_RANGE.contains(&value.chars().count()) {
        return Some(field(name, "must be 1 to 20 characters"));
    }
    if value.chars().any(is_forbidden_in_name) {
        return Some(field(
            name,
            "must not contain control or direction characters",
        ));
    }
    if value.chars().all(is_invisible) {
        return Some(field(name, "must contain a visible character"));
    }
    None
}

/// Checks a join request; names are checked after normalising ([`normalize_name`]).
pub fn check_join(request: &JoinRequest, email: &str) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = check_email(email).into_iter().collect();
    for (name, value) in [("name", &request.name), ("nickname", &request.nickname)] {
        errors.extend(check_name(name, &normalize_name(value)));
    }
    errors.extend(check_password("password", &request.password));
    errors
}

/// Checks a new password (join, reset, change) in field `name`: 8–64 characters with at least
/// one letter and one digit.
pub fn check_password(name: &str, password: &str) -> Option<FieldError> {
    if !PASSWORD_RANGE.contains(&password.chars().count()) {
        Some(field(name, "must be 8 to 64 characters"))
    } else if !password.chars().any(char::is_alphabetic)
        || !password.chars().any(|c| c.is_ascii_digit())
    {
        Some(field(
            name,
            "must contain at least one letter and one digit",
        ))
    } else {
        None
    }
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
    fn names_refuse_controls_bidi_and_invisible_only_and_are_nfc() {
        assert_eq!(join("a@b.co", "ki\0m", "k", "passw0rd"), vec!["name"]);
        assert_eq!(
            join("a@b.co", "n", "\u{202e}kim", "passw0rd"),
            vec!["nickname"]
        );
        assert_eq!(
            join("a@b.co", "\u{200b}\u{200b}", "k", "passw0rd"),
            vec!["name"]
        );
        assert_eq!(
            join("a@b.co", "n", "\u{3164}", "passw0rd"),
            vec!["nickname"]
        );
        assert!(join("a@b.co", "김하늘", "kim 🙂", "passw0rd").is_empty());
        assert_eq!(normalize_name(" Jose\u{301} "), "Jos\u{e9}");
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
        // Syntax lettre accepts but mail servers refuse: quoted local parts, address literals.
        for refused in [
            "\"a b\"@example.com",
            "\"ab\"@example.com",
            "a@[127.0.0.1]",
            "a..b@example.com",
            ".a@example.com",
            "a@-x.example.com",
            "a@example..com",
        ] {
            assert!(check_email(refused).is_some(), "{refused}");
        }
        assert!(check_email("first.o'neil+tag@mail-1.example.co.kr").is_none());
        assert_eq!(normalize_email("  Kim@Example.COM "), "kim@example.com");
    }
}
