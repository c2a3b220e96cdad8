//! Mail: an outbox folder (embedded) or SMTP.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::vars::Vars;
use super::ConfigError;

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum MailTransport {
    /// One `.eml` file per message in this folder (embedded default).
    Outbox { dir: PathBuf },
    /// An SMTP server.
    Smtp(SmtpConfig),
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No TLS at all: only for a local test sink.
    None,
}

/// SMTP settings.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Login, if the server wants one.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<SecretString>,
    /// Connection security.
    pub tls: SmtpTls,
}

/// Mail settings.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The `From:` of every message.
    pub from: String,
    /// Where messages go.
    pub transport: MailTransport,
}

impl MailConfig {
    pub(super) fn from_vars(env: &Vars<'_>, data_dir: &Path) -> Result<MailConfig, ConfigError> {
        let transport = match env.get("HEART_SMTP_HOST") {
            Some(host) => MailTransport::Smtp(SmtpConfig {
                host: host.to_owned(),
                port: env.parse("HEART_SMTP_PORT")?.unwrap_or(587),
                username: env.get("HEART_SMTP_USERNAME").map(str::to_owned),
                password: env
                    .get("HEART_SMTP_PASSWORD")
                    .map(|p| SecretString::from(p.to_owned())),
                tls: match env
                    .get("HEART_SMTP_TLS")
                    .unwrap_or("starttls")
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "starttls" => SmtpTls::Starttls,
                    "tls" | "smtps" => SmtpTls::Tls,
                    "none" | "off" => SmtpTls::None,
                    other => {
                        return Err(ConfigError(format!(
                            "HEART_SMTP_TLS {other:?}: starttls, tls or none"
                        )))
                    }
                },
            }),
            None => MailTransport::Outbox {
                dir: env
                    .get("HEART_MAIL_OUTBOX_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| data_dir.join("outbox")),
            },
        };
        Ok(MailConfig {
            from: env
                .get("HEART_MAIL_FROM")
                .unwrap_or("Heart to Heart <no-reply@heart-to-heart.local>")
                .to_owned(),
            transport,
        })
    }
}
