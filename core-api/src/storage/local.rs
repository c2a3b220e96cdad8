//! Objects as files in a folder: the embedded backend.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use rand::RngCore as _;

use super::{is_valid_key, ObjectStream, Storage, StorageError};

/// How much of a file one chunk of [`Storage::read`] holds.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Objects as files in a folder, for local development and single-machine setups.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    dir: PathBuf,
}

impl LocalStorage {
    /// Storage in `dir` (created on the first write if missing).
    pub fn new(dir: PathBuf) -> LocalStorage {
        LocalStorage { dir }
    }

    /// The folder, for [`serve_local`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        if is_valid_key(key) {
            Ok(self.dir.join(key))
        } else {
            Err(StorageError::invalid_key(key))
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError(e.into()))?
        .map_err(|e| StorageError(e.into()))
}

/// Writes a temporary file beside `path`, flushes it to disk and renames it over `path`, so readers
/// see the old object or the whole new one, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::Error::other("object path without a parent"));
    };
    std::fs::create_dir_all(parent)?;
    // '~' cannot occur in a key, so a temporary file is never listed or served as an object.
    let tmp = parent.join(format!(
        "{}~{:016x}.tmp",
        name.to_string_lossy(),
        rand::rngs::OsRng.next_u64()
    ));
    let written = std::fs::File::create_new(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn collect_keys(dir: &Path, prefix: &str, keys: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        // file_type does not follow symbolic links: only real files and folders count.
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_keys(&entry.path(), &key, keys)?;
        } else if file_type.is_file() && is_valid_key(&key) {
            keys.push(key);
        }
    }
    Ok(())
}

#[async_trait]
impl Storage for LocalStorage {
    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        _content_type: &'static str,
    ) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        blocking(move || write_atomically(&path, &bytes)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError(e.into())),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(metadata) => Ok(metadata.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StorageError(e.into())),
        }
    }

    async fn read(&self, key: &str) -> Result<ObjectStream, StorageError> {
        use tokio::io::AsyncReadExt as _;
        let path = self.path_of(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| StorageError(e.into()))?;
        Ok(Box::pin(futures_util::stream::try_unfold(
            file,
            |mut file| async move {
                let mut chunk = bytes::BytesMut::zeroed(READ_CHUNK_BYTES);
                let n = file
                    .read(&mut chunk)
                    .await
                    .map_err(|e| StorageError(e.into()))?;
                if n == 0 {
                    return Ok(None);
                }
                chunk.truncate(n);
                Ok(Some((chunk.freeze(), file)))
            },
        )))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let dir = self.dir.clone();
        let mut keys = blocking(move || {
            let mut keys = Vec::new();
            collect_keys(&dir, "", &mut keys)?;
            Ok(keys)
        })
        .await?;
        keys.retain(|key| key.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }

    fn backend(&self) -> &'static str {
        "local"
    }
}
