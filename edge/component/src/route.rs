//! Pure decisions about a request: which need a token, which headers go to the core and back.
//! No Spin calls here, so all of it is unit-tested natively.

use heart_shared::edge::{
    CLIENT_IP_HEADER, EDGE_HEADERS, EDGE_SECRET_HEADER, MEMBER_ID_HEADER,
    REVOCATION_CHECKED_HEADER, SESSION_ID_HEADER,
};

/// A header as wasi:http carries it: a lower-case name and raw bytes.
pub type Header = (String, Vec<u8>);

/// Whether `method path` needs a valid access token before it is forwarded (the app's
/// `AuthInterceptor` routes plus the three auth routes that act on the caller's session).
pub fn requires_token(method: &str, path: &str) -> bool {
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    under("/member")
        || under("/post")
        || (method == "GET" && path == "/auth/verifyAccessToken")
        || (method == "POST" && path == "/auth/logout")
        || (method == "POST" && path == "/auth/changePassword")
}

/// Splits `path?query` into the path and the query (without `?`).
pub fn split_path_and_query(path_with_query: &str) -> (&str, &str) {
    path_with_query
        .split_once('?')
        .unwrap_or((path_with_query, ""))
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those wasi:http refuses to send: never forwarded.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// Whether a header from the client must be dropped before the request goes to the core.
fn dropped_from_request(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
        || name == "host"
        || name == "x-forwarded-for"
        // Set by the Spin host (spin-client-addr, spin-full-url, …), never meant for the core.
        || name.starts_with("spin-")
        // Only the edge may set these; a client sending them is trying to impersonate someone.
        || EDGE_HEADERS.contains(&name)
}

/// The verified caller, passed to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's member.
    pub member_id: i64,
    /// The token's session.
    pub session_id: String,
}

/// The headers of the request to the core: the client's, minus hop-by-hop and edge headers, plus
/// the identity (if verified, with whether the gate found its session not revoked), the edge
/// secret, the client address and `X-Forwarded-For` with the edge's peer appended.
pub fn forwarded_request_headers(
    incoming: &[Header],
    identity: Option<&Identity>,
    revocation_checked: bool,
    edge_secret: &str,
    client_ip: &str,
    peer: &str,
) -> Vec<Header> {
    let mut headers: Vec<Header> = incoming
        .iter()
        .filter(|(name, _)| !dropped_from_request(&name.to_ascii_lowercase()))
        .cloned()
        .collect();
    let forwarded_for: Vec<String> = incoming
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-for"))
        .filter_map(|(_, value)| std::str::from_utf8(value).ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .chain(std::iter::once(peer.to_owned()))
        .collect();
    headers.push((
        "x-forwarded-for".into(),
        forwarded_for.join(", ").into_bytes(),
    ));
    if let Some(identity) = identity {
        headers.push((
            MEMBER_ID_HEADER.into(),
            identity.member_id.to_string().into_bytes(),
        ));
        headers.push((
            SESSION_ID_HEADER.into(),
            identity.session_id.clone().into_bytes(),
        ));
        if revocation_checked {
            headers.push((REVOCATION_CHECKED_HEADER.into(), b"1".to_vec()));
        }
    }
    headers.push((EDGE_SECRET_HEADER.into(), edge_secret.as_bytes().to_vec()));
    headers.push((CLIENT_IP_HEADER.into(), client_ip.as_bytes().to_vec()));
    headers
}

/// The headers of the core's answer that go back to the client: all but hop-by-hop ones and
/// `content-length` (the body is re-framed by the host).
pub fn forwarded_response_headers(from_core: &[Header]) -> Vec<Header> {
    from_core
        .iter()
        .filter(|(name, _)| {
            let name = name.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&name.as_str()) && name != "content-length"
        })
        .cloned()
        .collect()
}

/// The first value of header `name`, as text.
pub fn header_value<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> Header {
        (name.to_owned(), value.as_bytes().to_vec())
    }

    #[test]
    fn member_post_and_session_routes_need_a_token() {
        assert!(requires_token("GET", "/member/profile"));
        assert!(requires_token("POST", "/post/registerPost"));
        assert!(requires_token("DELETE", "/post/delete/3"));
        assert!(requires_token("GET", "/post"));
        assert!(requires_token("GET", "/auth/verifyAccessToken"));
        assert!(requires_token("POST", "/auth/logout"));
        assert!(requires_token("POST", "/auth/changePassword"));
        assert!(!requires_token("POST", "/auth/resetPassword"));
        assert!(!requires_token("POST", "/auth/passwordResetCode"));
        assert!(!requires_token("POST", "/auth/login"));
        assert!(!requires_token("POST", "/auth/reissueToken"));
        assert!(!requires_token("GET", "/members"));
        assert!(!requires_token("GET", "/postal"));
        assert!(!requires_token("GET", "/healthz"));
    }

    #[test]
    fn clients_cannot_send_edge_headers_and_the_edge_adds_its_own() {
        let incoming = vec![
            h("authorization", "Bearer t"),
            h("X-Heart-Member-Id", "1"),
            h("x-heart-revocation-checked", "1"),
            h("x-heart-edge-secret", "guess"),
            h("spin-client-addr", "1.2.3.4:5"),
            h("connection", "keep-alive"),
            h("host", "api.example.com"),
            h("x-forwarded-for", "203.0.113.9"),
            h("content-type", "application/json"),
        ];
        let identity = Identity {
            member_id: 42,
            session_id: "s1".into(),
        };
        let out = forwarded_request_headers(
            &incoming,
            Some(&identity),
            false,
            "secret",
            "203.0.113.9",
            "10.0.0.2",
        );
        // Only the edge says the revocation was checked, and only when its gate did.
        assert_eq!(header_value(&out, "x-heart-revocation-checked"), None);
        let checked = forwarded_request_headers(
            &incoming,
            Some(&identity),
            true,
            "secret",
            "203.0.113.9",
            "10.0.0.2",
        );
        assert_eq!(
            header_value(&checked, "x-heart-revocation-checked"),
            Some("1")
        );
        assert_eq!(header_value(&out, "x-heart-member-id"), Some("42"));
        assert_eq!(
            out.iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("x-heart-member-id"))
                .count(),
            1
        );
        assert_eq!(header_value(&out, "x-heart-session-id"), Some("s1"));
        assert_eq!(header_value(&out, "x-heart-edge-secret"), Some("secret"));
        assert_eq!(header_value(&out, "x-heart-client-ip"), Some("203.0.113.9"));
        assert_eq!(
            header_value(&out, "x-forwarded-for"),
            Some("203.0.113.9, 10.0.0.2")
        );
        assert_eq!(header_value(&out, "authorization"), Some("Bearer t"));
        assert_eq!(header_value(&out, "content-type"), Some("application/json"));
        for gone in ["spin-client-addr", "connection", "host"] {
            assert_eq!(header_value(&out, gone), None, "{gone}");
        }
    }

    #[test]
    fn without_identity_only_the_secret_and_address_are_added() {
        let out = forwarded_request_headers(&[], None, true, "secret", "1.2.3.4", "1.2.3.4");
        assert_eq!(header_value(&out, "x-heart-member-id"), None);
        assert_eq!(header_value(&out, "x-heart-session-id"), None);
        assert_eq!(header_value(&out, "x-heart-revocation-checked"), None);
        assert_eq!(header_value(&out, "x-forwarded-for"), Some("1.2.3.4"));
    }

    #[test]
    fn the_moderation_console_passes_with_its_cookies() {
        // The console signs in with its own cookie: the edge checks no token on `/admin/`, forwards
        // the cookie and every `Set-Cookie` back (the core checks the session and the admin role).
        assert!(!requires_token("GET", "/admin/"));
        assert!(!requires_token("POST", "/admin/signin"));
        let out = forwarded_request_headers(
            &[h("cookie", "h2h_console=abc")],
            None,
            false,
            "secret",
            "1.2.3.4",
            "1.2.3.4",
        );
        assert_eq!(header_value(&out, "cookie"), Some("h2h_console=abc"));
        let back = forwarded_response_headers(&[
            h("set-cookie", "h2h_console=abc; HttpOnly"),
            h("set-cookie", "h2h_console_signin=; Max-Age=0"),
        ]);
        assert_eq!(back.len(), 2);
    }

    #[test]
    fn response_headers_lose_framing() {
        let out = forwarded_response_headers(&[
            h("content-type", "application/json"),
            h("Content-Length", "12"),
            h("transfer-encoding", "chunked"),
            h("retry-after", "5"),
        ]);
        assert_eq!(
            out,
            vec![h("content-type", "application/json"), h("retry-after", "5")]
        );
    }
}
