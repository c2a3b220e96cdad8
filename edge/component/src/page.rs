//! Feed pages as the edge answers and caches them: gzip-encoded once (when stored), with a weak
//! `ETag` from the feed version and the canonical query, `Cache-Control: private, no-cache`.
//! Pure and native, unit-tested.

use std::io::{Read as _, Write as _};

use heart_shared::cache_keys::digest;

use crate::route::Header;

/// The `ETag` of a feed page: `W/"<feed version>-<digest of the feed and its canonical query>"`.
pub fn etag(version: i64, feed_and_query: &str) -> String {
    format!("W/\"{version}-{}\"", digest(feed_and_query))
}

/// Whether `If-None-Match` (weak comparison, lists, `*`) matches `etag`.
pub fn not_modified(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(header) = if_none_match else {
        return false;
    };
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let wanted = opaque(etag);
    header
        .split(',')
        .any(|tag| tag.trim() == "*" || opaque(tag) == wanted)
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*`, not with `q=0`).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|header| {
        header.split(',').any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding == "gzip" || coding == "*") && !refused
        })
    })
}

/// The page as it is cached: gzip, fast level (pages are small JSON).
pub fn encode(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    match encoder.write_all(body).and_then(|()| encoder.finish()) {
        Ok(encoded) => encoded,
        Err(_) => body.to_vec(),
    }
}

/// Whether `stored` is gzip (pages cached before the edge compressed them are plain JSON).
pub fn is_gzip(stored: &[u8]) -> bool {
    stored.starts_with(&[0x1f, 0x8b])
}

/// The plain page from its cached form.
pub fn decode(stored: &[u8]) -> Option<Vec<u8>> {
    if !is_gzip(stored) {
        return Some(stored.to_vec());
    }
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(stored)
        .read_to_end(&mut plain)
        .ok()?;
    Some(plain)
}

/// The headers of a feed page answer (`304` included, without the body headers' encoding).
pub fn headers(etag: &str, gzip: bool) -> Vec<Header> {
    let mut headers: Vec<Header> = vec![
        ("content-type".into(), b"application/json".to_vec()),
        ("etag".into(), etag.as_bytes().to_vec()),
        ("cache-control".into(), b"private, no-cache".to_vec()),
        ("vary".into(), b"Accept-Encoding".to_vec()),
    ];
    if gzip {
        headers.push(("content-encoding".into(), b"gzip".to_vec()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_follow_version_and_query() {
        let a = etag(3, "home:1|page=0&size=10");
        assert!(a.starts_with("W/\"3-"));
        assert_ne!(a, etag(4, "home:1|page=0&size=10"));
        assert_ne!(a, etag(3, "home:1|page=1&size=10"));
        assert!(not_modified(Some(&a), &a));
        assert!(not_modified(Some(&a.replace("W/", "")), &a));
        assert!(not_modified(Some(&format!("\"x\", {a}")), &a));
        assert!(not_modified(Some("*"), &a));
        assert!(!not_modified(Some("W/\"4-0\""), &a));
        assert!(!not_modified(None, &a));
    }

    #[test]
    fn gzip_is_chosen_from_accept_encoding() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("br, gzip;q=0.5")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn pages_round_trip_through_their_cached_form() {
        let page = br#"{"size":2,"posts":[{"id":1},{"id":2}],"next_cursor":null}"#.repeat(20);
        let stored = encode(&page);
        assert!(is_gzip(&stored));
        assert!(stored.len() < page.len());
        assert_eq!(decode(&stored).unwrap(), page);
        assert_eq!(decode(b"{}").unwrap(), b"{}");
    }
}
