//! Typed access to `HEART_*` variables, and the one list of them that `--help`, the README's
//! configuration table and the reading code share.

use std::collections::HashMap;
use std::str::FromStr;

use super::ConfigError;

/// Typed access to the variables, with errors that name the variable.
pub(super) struct Vars<'a>(pub(super) &'a HashMap<String, String>);

impl Vars<'_> {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(
            is_documented(name),
            "{name} is read but not documented in config::vars::SETTINGS"
        );
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub(super) fn parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| ConfigError(format!("{name}={v:?}: {e}")))
            })
            .transpose()
    }
}

/// One documented variable (or a few that go together), as the README's table shows it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The variables; `HEART_RATE_LIMIT_<RULE>` stands for one per rule.
    pub names: &'static [&'static str],
    /// The default, in Markdown.
    pub default: &'static str,
    /// What it means, in Markdown.
    pub meaning: &'static str,
}

/// Every `HEART_*` variable the core reads, in the README's order.
pub const SETTINGS: &[Setting] = &[
    Setting {
        names: &["HEART_PROFILE"],
        default: "`local`",
        meaning: "`local`, `staging` or `production`. `production` refuses to start with the development signing key, SQLite, the in-process cache, the mail outbox, SMTP without TLS or local media storage.",
    },
    Setting {
        names: &["HEART_LISTEN_ADDR"],
        default: "`127.0.0.1:8080`",
        meaning: "public API (the edge, in the stack; the core, run alone)",
    },
    Setting {
        names: &["HEART_EDGE_SECRET"],
        default: "*(stack: random per start)*",
        meaning: "shared by edge and core: the core trusts the edge's `x-heart-member-id` only with it (≥ 32 characters; required in `production`)",
    },
    Setting {
        names: &["HEART_ADMIN_LISTEN_ADDR"],
        default: "`127.0.0.1:9090`",
        meaning: "`/metrics`, `/healthz`, `/readyz` for the cluster only",
    },
    Setting {
        names: &["HEART_DATA_DIR"],
        default: "`data`",
        meaning: "folder of the embedded backends",
    },
    Setting {
        names: &["HEART_DATABASE_URL"],
        default: "`sqlite://data/heart.db?mode=rwc`",
        meaning: "or `mysql://user:pass@host:3306/heart` (MySQL 8 / MariaDB ≥ 10.6)",
    },
    Setting {
        names: &["HEART_DATABASE_MAX_CONNECTIONS"],
        default: "2 per CPU, 4–32",
        meaning: "pool size (4 on 2 cores with the database on them: as fast as 8 or 32 there, with a lower p99); the Helm values set it for RDS",
    },
    Setting {
        names: &["HEART_DATABASE_READ_URL"],
        default: "*(none: all reads on the primary)*",
        meaning: "`mysql://…` of a read replica of `HEART_DATABASE_URL` (a secret, like it): feeds, profiles and follow lists read from it while it answers and lags within the bound; a member's own reads stay on the primary for a while after their writes",
    },
    Setting {
        names: &["HEART_DATABASE_READ_MAX_LAG_SECS"],
        default: "`2`",
        meaning: "the replica serves while its `Seconds_Behind_Master` is at most this (polled every 500 ms); beyond it, or with replication stopped, reads go to the primary",
    },
    Setting {
        names: &["HEART_READ_YOUR_WRITES_SECS"],
        default: "`5`",
        meaning: "after a member's write, their reads go to the primary for this long (the mark is kept in the shared cache, so every core replica honours it)",
    },
    Setting {
        names: &["HEART_REDIS_URL"],
        default: "*(none: in-process)*",
        meaning: "`redis://` or `rediss://` (TLS); revocations and rate limits shared by all replicas",
    },
    Setting {
        names: &["HEART_CACHE_PREFIX"],
        default: "`heart`",
        meaning: "prefix of every Redis key",
    },
    Setting {
        names: &["HEART_SMTP_HOST"],
        default: "*(none: outbox)*",
        meaning: "SMTP server; when set, mail goes over SMTP",
    },
    Setting {
        names: &["HEART_SMTP_PORT"],
        default: "`587`",
        meaning: "",
    },
    Setting {
        names: &["HEART_SMTP_USERNAME", "HEART_SMTP_PASSWORD"],
        default: "*(none)*",
        meaning: "SMTP login",
    },
    Setting {
        names: &["HEART_SMTP_TLS"],
        default: "`starttls`",
        meaning: "`starttls` (required, not opportunistic), `tls` (SMTPS) or `none` (local sinks only)",
    },
    Setting {
        names: &["HEART_MAIL_OUTBOX_DIR"],
        default: "`data/outbox`",
        meaning: "where the outbox writes `.eml` files",
    },
    Setting {
        names: &["HEART_MAIL_FROM"],
        default: "`Heart to Heart <no-reply@heart-to-heart.local>`",
        meaning: "sender",
    },
    Setting {
        names: &["HEART_S3_BUCKET"],
        default: "*(none: local folder)*",
        meaning: "when set, images go to S3",
    },
    Setting {
        names: &["HEART_S3_REGION"],
        default: "`us-east-1`",
        meaning: "",
    },
    Setting {
        names: &["HEART_S3_ENDPOINT"],
        default: "*(AWS)*",
        meaning: "S3-compatible server, e.g. `http://127.0.0.1:9000`",
    },
    Setting {
        names: &["HEART_S3_FORCE_PATH_STYLE"],
        default: "`false`",
        meaning: "`true` for most S3-compatible servers",
    },
    Setting {
        names: &["HEART_S3_ACCESS_KEY_ID", "HEART_S3_SECRET_ACCESS_KEY"],
        default: "*(default AWS chain: IRSA on EKS)*",
        meaning: "static keys for local servers",
    },
    Setting {
        names: &["HEART_MEDIA_DIR"],
        default: "`data/media`",
        meaning: "the local folder, served by the core at `/media/`",
    },
    Setting {
        names: &["HEART_MEDIA_BASE_URL"],
        default: "`http://<listen>/media` locally; the bucket's URL on S3",
        meaning: "base of the absolute image links (e.g. a CloudFront URL)",
    },
    Setting {
        names: &["HEART_MAX_UPLOAD_FILES"],
        default: "`10`",
        meaning: "images per post",
    },
    Setting {
        names: &["HEART_MAX_UPLOAD_FILE_BYTES"],
        default: "`10485760`",
        meaning: "bytes per image",
    },
    Setting {
        names: &["HEART_MAX_UPLOAD_REQUEST_BYTES"],
        default: "`67108864`",
        meaning: "bytes per multipart request",
    },
    Setting {
        names: &["HEART_IMAGE_DECODES"],
        default: "the number of cores",
        meaning: "images decoded at once in the process; further uploads wait their turn (within the request time limit)",
    },
    Setting {
        names: &["HEART_STORAGE_SWEEP_SECS"],
        default: "`60`",
        meaning: "retry period of object deletions that failed",
    },
    Setting {
        names: &["HEART_JWT_SIGNING_KEY"],
        default: "development key",
        meaning: "Ed25519 private key, PKCS#8 PEM (`openssl genpkey -algorithm ed25519`); `\\n` escapes allowed",
    },
    Setting {
        names: &["HEART_JWT_SIGNING_KEY_FILE"],
        default: "",
        meaning: "the same, read from a file",
    },
    Setting {
        names: &["HEART_JWT_PREVIOUS_KEYS"],
        default: "*(none)*",
        meaning: "JWKS JSON of older public keys still accepted during a key rotation",
    },
    Setting {
        names: &["HEART_ACCESS_TOKEN_TTL_SECS"],
        default: "`900`",
        meaning: "access-token lifetime",
    },
    Setting {
        names: &["HEART_REFRESH_TOKEN_TTL_SECS"],
        default: "`1209600` (14 days)",
        meaning: "refresh-token lifetime",
    },
    Setting {
        names: &["HEART_ARGON2_MEMORY_KIB", "HEART_ARGON2_ITERATIONS", "HEART_ARGON2_PARALLELISM"],
        default: "`19456`, `2`, `1`",
        meaning: "Argon2id cost; outside `local` at least one of OWASP's equal-strength pairs (KiB × passes: 19456 × 2, 47104 × 1, 12288 × 3, 9216 × 4, 7168 × 5)",
    },
    Setting {
        names: &["HEART_PASSWORD_HASHING_CPU_PERCENT"],
        default: "`50`",
        meaning: "the most of one core each password hashing thread may use (1–100); logins beyond it wait, then get `GLOBAL_503`",
    },
    Setting {
        names: &["HEART_RATE_LIMITS_ENABLED"],
        default: "`true`",
        meaning: "",
    },
    Setting {
        names: &["HEART_RATE_LIMIT_<RULE>"],
        default: "see below",
        meaning: "`<count>/<window>`, e.g. `5/600` or `10/10m`",
    },
    Setting {
        names: &["HEART_TRUSTED_PROXY_HOPS"],
        default: "`0`",
        meaning: "reverse proxies in front that append to `X-Forwarded-For` (0: use the peer address)",
    },
    Setting {
        names: &["HEART_MAX_JSON_BODY_BYTES"],
        default: "`65536`",
        meaning: "larger JSON bodies answer `GLOBAL_008` (at the stack's edge already, before they are read)",
    },
    Setting {
        names: &["HEART_REQUEST_TIMEOUT_SECS"],
        default: "`30`",
        meaning: "a slower request answers `GLOBAL_503`",
    },
    Setting {
        names: &["HEART_HEADER_READ_TIMEOUT_SECS"],
        default: "`10`",
        meaning: "a client slower to send a request head (or idle longer between requests) is disconnected",
    },
    Setting {
        names: &["HEART_BODY_READ_TIMEOUT_SECS"],
        default: "`10`",
        meaning: "a JSON body not received within it answers `GLOBAL_004` and the connection is closed (uploads: the request's limit)",
    },
    Setting {
        names: &["HEART_MAX_CONNECTIONS"],
        default: "`4096`",
        meaning: "open client connections at most; more wait in the listen backlog",
    },
    Setting {
        names: &["HEART_LOG_FORMAT"],
        default: "`auto`",
        meaning: "`json`, `pretty`, or `auto` (JSON unless stderr is a terminal); `RUST_LOG` filters",
    },
];

fn is_documented(name: &str) -> bool {
    name.starts_with("HEART_RATE_LIMIT_") || SETTINGS.iter().any(|s| s.names.contains(&name))
}

/// The names of a setting as the README writes them: `HEART_ARGON2_MEMORY_KIB`, `_ITERATIONS`, ….
fn names_cell(setting: &Setting) -> String {
    let first = setting.names[0];
    let common = first
        .match_indices('_')
        .map(|(i, _)| &first[..i])
        .rfind(|prefix| {
            prefix.len() > "HEART".len() && setting.names[1..].iter().all(|n| n.starts_with(prefix))
        });
    setting
        .names
        .iter()
        .enumerate()
        .map(|(i, name)| match common {
            Some(prefix) if i > 0 && setting.names.len() > 2 => {
                format!("`{}`", &name[prefix.len()..])
            }
            _ => format!("`{name}`"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `settings` as the rows of a Markdown table (`| variable | default | meaning |`).
pub fn markdown_rows(settings: &[Setting]) -> String {
    settings
        .iter()
        .map(|s| format!("| {} | {} | {} |\n", names_cell(s), s.default, s.meaning))
        .collect()
}

/// `settings` as plain text for `--help`: the Markdown's backticks and emphasis removed.
pub fn plain_text(settings: &[Setting]) -> String {
    let plain = |text: &str| text.replace(['`', '*'], "");
    let mut out = String::new();
    for s in settings {
        out.push_str(&format!("  {}\n", s.names.join(", ")));
        let default = plain(s.default);
        if !default.is_empty() {
            out.push_str(&format!("      default: {default}\n"));
        }
        let meaning = plain(s.meaning);
        if !meaning.is_empty() {
            out.push_str(&format!("      {meaning}\n"));
        }
    }
    out
}
