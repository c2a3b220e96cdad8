//! Reading the mail a test app sent: from the outbox folder of the embedded mail backend (one `.eml`
//! file per message) or from the Maildir an SMTP sink writes (`new/` and `cur/`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

/// The `To:` line (lowercased) of every mail file already read, by path. A delivered mail never
/// changes its headers, so each file is opened once per test process instead of on every poll: by
/// the end of the real-backend suite the shared SMTP sink's folder holds thousands of mails, and
/// reading them all every 20 ms blocked a test's single-threaded runtime for so long that its
/// app's background mail missed the 5 s SMTP timeout (the reset mail a test waited for was never
/// sent). A file read before its `To:` line was written is not remembered, so it is read again.
static TO_LINES: LazyLock<Mutex<HashMap<PathBuf, String>>> = LazyLock::new(Default::default);

/// The lowercased `To:` line of the mail at `path`, from [`TO_LINES`] or read now.
fn to_line(path: &std::path::Path) -> Option<String> {
    let known = || {
        TO_LINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(line) = known().get(path) {
        return Some(line.clone());
    }
    // Read without the lock: tests running at once each scan their own mail.
    let text = std::fs::read_to_string(path).ok()?;
    let line = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))?
        .to_ascii_lowercase();
    known().insert(path.to_owned(), line.clone());
    Some(line)
}

/// Where a test app's mail ends up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mailbox {
    /// The embedded backend's outbox folder.
    Outbox(PathBuf),
    /// The Maildir of an SMTP sink (`HEART_TEST_SMTP_MAILDIR`).
    Maildir(PathBuf),
}

impl Mailbox {
    /// The folders holding one file per message.
    fn folders(&self) -> Vec<PathBuf> {
        match self {
            Mailbox::Outbox(dir) => vec![dir.clone()],
            Mailbox::Maildir(dir) => vec![dir.join("new"), dir.join("cur")],
        }
    }

    /// Every mail delivered to `email` (its `To:` line, without regard to case), raw, oldest first.
    pub fn mails_to(&self, email: &str) -> Vec<String> {
        let mut found: Vec<(std::time::SystemTime, String, String)> = Vec::new();
        for dir in self.folders() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let Some(to_line) = to_line(&path) else {
                    continue;
                };
                if to_line.contains(&email.to_ascii_lowercase()) {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let modified = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    found.push((
                        modified,
                        entry.file_name().to_string_lossy().into_owned(),
                        text,
                    ));
                }
            }
        }
        found.sort();
        found.into_iter().map(|(_, _, text)| text).collect()
    }

    /// The code in the newest verification mail to `email`; panics (failing the test) without one.
    pub fn last_code_for(&self, email: &str) -> String {
        let mails = self.mails_to(email);
        let mail = mails
            .last()
            .unwrap_or_else(|| panic!("no mail to {email} in {self:?}"));
        code_in(mail).unwrap_or_else(|| panic!("no code in mail: {mail}"))
    }
}

/// The 8-character code of a verification mail.
pub fn code_in(mail: &str) -> Option<String> {
    let marker = "Your verification code is: ";
    let start = mail.find(marker)? + marker.len();
    let code: String = mail[start..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    (code.len() == 8).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, name: &str, to: &str, code: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let text = format!(
            "From: app@heart.local\r\nTo: {to}\r\n\r\nYour verification code is: {code}\r\n"
        );
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn reads_the_outbox_and_both_maildir_folders_by_recipient() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("outbox"),
            "1.eml",
            "Kim@Example.com",
            "AAAAaaa1",
        );
        let outbox = Mailbox::Outbox(dir.path().join("outbox"));
        assert_eq!(outbox.mails_to("kim@example.com").len(), 1);
        assert_eq!(outbox.last_code_for("kim@example.com"), "AAAAaaa1");
        assert!(outbox.mails_to("lee@example.com").is_empty());

        let maildir = dir.path().join("maildir");
        write(&maildir.join("cur"), "a", "lee@example.com", "BBBBbbb2");
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(&maildir.join("new"), "b", "lee@example.com", "CCCCccc3");
        let maildir = Mailbox::Maildir(maildir);
        assert_eq!(maildir.mails_to("lee@example.com").len(), 2);
        assert_eq!(maildir.last_code_for("lee@example.com"), "CCCCccc3");
    }

    #[test]
    fn a_mail_read_before_its_to_line_was_written_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Mailbox::Outbox(dir.path().to_owned());
        std::fs::write(dir.path().join("1.eml"), "From: app@heart.local\r\n").unwrap();
        assert!(outbox.mails_to("kim@example.com").is_empty());
        write(dir.path(), "1.eml", "kim@example.com", "AAAAaaa1");
        assert_eq!(outbox.last_code_for("kim@example.com"), "AAAAaaa1");
    }

    #[test]
    fn a_code_is_eight_letters_or_digits_after_the_marker() {
        assert_eq!(
            code_in("x\nYour verification code is: Ab3dEf9h\n").as_deref(),
            Some("Ab3dEf9h")
        );
        assert_eq!(code_in("Your verification code is: short\n"), None);
        assert_eq!(code_in("no code here"), None);
    }
}
