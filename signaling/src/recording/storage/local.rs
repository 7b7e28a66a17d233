//! The local directory backend: an object is the file `<dir>/<key>`, written to a temporary name
//! beside it and renamed into place, so a reader never sees half a recording.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use reqwest::Url;

use super::{StorageError, StoredObject};

/// Makes temporary names unique between concurrent uploads of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone)]
pub(super) struct LocalBackend {
    dir: PathBuf,
}

impl LocalBackend {
    pub(super) fn new(dir: PathBuf) -> Self {
        LocalBackend { dir }
    }

    pub(super) async fn ensure_dir(&self) -> Result<(), StorageError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| StorageError::io("create directory", &self.dir, e))
    }

    pub(super) async fn put_file(
        &self,
        key: &str,
        path: &Path,
    ) -> Result<StoredObject, StorageError> {
        let dest = self.dir.join(key);
        let parent = dest.parent().unwrap_or(&self.dir);
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| StorageError::io("create directory", parent, e))?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = parent.join(format!(
            ".{name}.{}-{}.part",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        if let Err(e) = tokio::fs::copy(path, &temp).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(StorageError::io("copy", path, e));
        }
        if let Err(e) = tokio::fs::rename(&temp, &dest).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(StorageError::io("rename into", &dest, e));
        }
        self.head(key).await?.ok_or_else(|| {
            StorageError::io(
                "stat",
                &dest,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "gone right after being stored",
                ),
            )
        })
    }

    pub(super) async fn head(&self, key: &str) -> Result<Option<StoredObject>, StorageError> {
        let path = self.dir.join(key);
        let meta = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io("stat", &path, e)),
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(Some(StoredObject {
            key: key.to_owned(),
            size: meta.len(),
            etag: format!("{:x}-{mtime:x}", meta.len()),
            url: self.object_url(key)?,
        }))
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.dir.join(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("remove", &path, e)),
        }
    }

    /// The object's `file://` URL.
    pub(super) fn object_url(&self, key: &str) -> Result<String, StorageError> {
        let path = self.dir.join(key);
        Url::from_file_path(&path).map(String::from).map_err(|()| {
            StorageError::io(
                "make a file URL of",
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an absolute path"),
            )
        })
    }
}
