//! Outgoing mail: an outbox folder (embedded default) or SMTP with TLS, behind [`Mailer`].

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{MailConfig, MailTransport, SmtpConfig, SmtpTls};
use crate::error::BoxError;
use crate::health::{Breaker, ProbeFuture, ProbePolicy};

/// Sending one message (connecting included) may take this long.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(5);
/// While the SMTP server is unreachable, sending fails at once (`AUTH_001`); a connection test
/// every two seconds finds when it is back.
pub const SMTP_PROBE_POLICY: ProbePolicy = ProbePolicy {
    retry: Duration::from_secs(2),
    watch: None,
    timeout: SMTP_TIMEOUT,
    failures_to_open: 1,
    successes_to_close: 1,
};

/// One plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// The mail could not be built or delivered.
#[derive(Debug, thiserror::Error)]
#[error("mail: {0}")]
pub struct MailError(#[source] pub BoxError);

/// Sends mail.
#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Sends `mail`; returns once the transport accepted it.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
    /// The backend's name, for logs.
    fn backend(&self) -> &'static str;
}

/// The mailer `config` asks for.
pub fn from_config(config: &MailConfig) -> Result<Box<dyn Mailer>, MailError> {
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError(e.into()))?;
    Ok(match &config.transport {
        MailTransport::Outbox { dir } => Box::new(OutboxMailer {
            from,
            dir: dir.clone(),
        }),
        MailTransport::Smtp(smtp) => Box::new(SmtpMailer::new(from, smtp)?),
    })
}

fn build_message(from: &Mailbox, mail: &OutgoingMail) -> Result<Message, MailError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError(e.into()))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| MailError(e.into()))
}

/// Writes each message as an `.eml` file into a folder, for local development.
#[derive(Debug)]
pub struct OutboxMailer {
    from: Mailbox,
    dir: PathBuf,
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = build_message(&self.from, mail)?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| MailError(e.into()))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let safe_to: String = mail
            .to
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{stamp}-{safe_to}.eml"));
        tokio::fs::write(&path, message.formatted())
            .await
            .map_err(|e| MailError(e.into()))?;
        tracing::info!(to = %mail.to, path = %path.display(), "mail written to the outbox");
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "outbox"
    }
}

/// Sends through an SMTP server.
pub struct SmtpMailer {
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    health: Breaker,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    fn new(from: Mailbox, config: &SmtpConfig) -> Result<SmtpMailer, MailError> {
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls | SmtpTls::Tls => {
                let params =
                    TlsParameters::new(config.host.clone()).map_err(|e| MailError(e.into()))?;
                if config.tls == SmtpTls::Starttls {
                    Tls::Required(params)
                } else {
                    Tls::Wrapper(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT))
            // Connections are reused between messages (lettre's pool) instead of a TCP and TLS
            // handshake, and a login, per code mailed; idle ones close after a minute.
            .pool_config(
                PoolConfig::new()
                    .max_size(4)
                    .idle_timeout(Duration::from_secs(60)),
            );
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        let transport = builder.build();
        let probing = transport.clone();
        let health = Breaker::new("mail", SMTP_PROBE_POLICY, move || -> ProbeFuture {
            let transport = probing.clone();
            Box::pin(async move {
                if transport.test_connection().await? {
                    Ok::<(), BoxError>(())
                } else {
                    Err("the SMTP server did not answer NOOP".into())
                }
            })
        });
        Ok(SmtpMailer {
            from,
            transport,
            health,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = build_message(&self.from, mail)?;
        if !self.health.is_up() {
            return Err(MailError(
                "the SMTP server is unreachable; not trying".into(),
            ));
        }
        // lettre's timeout bounds the TCP connect; over tokio it does not bound the answers, so a
        // server that accepts and never answers is cut here.
        let sent = tokio::time::timeout(SMTP_TIMEOUT, self.transport.send(message))
            .await
            .map_err(|_| {
                self.health.trip("no SMTP answer in time");
                MailError(format!("no SMTP answer within {SMTP_TIMEOUT:?}").into())
            })?;
        sent.map_err(|e| {
            // No SMTP answer at all (refused, reset, timed out, TLS): the server is unreachable.
            if !(e.is_response() || e.is_permanent() || e.is_transient() || e.is_client()) {
                self.health.trip(&e.to_string());
            }
            MailError(e.into())
        })?;
        tracing::info!(to = %mail.to, "mail sent over SMTP");
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "smtp"
    }
}
