//! File-system primitives with the durability rules the store relies on: write to a temp
//! file, fsync, rename over the target, fsync the directory. Blocking; callers run them on
//! tokio's blocking pool through [`blocking`].

use crate::error::{Error, IoContext, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Run blocking file-system work off the async executor.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(Error::Io {
            context: "blocking task",
            path: PathBuf::new(),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// fsync a directory so that entries created or renamed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).ctx("open dir", dir)?.sync_all().ctx("fsync dir", dir)
}

/// Atomically replace `target` with `bytes`: temp file in `tmp_dir`, fsync (when `durable`),
/// rename, fsync of the target's directory.
pub(crate) fn write_atomic(tmp_dir: &Path, target: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let tmp = tmp_dir.join(crate::names::random_hex());
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp).ctx("create", &tmp)?;
        f.write_all(bytes).ctx("write", &tmp)?;
        if durable {
            f.sync_data().ctx("fsync", &tmp)?;
        }
        fs::rename(&tmp, target).ctx("rename", target)?;
        if durable && let Some(dir) = target.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Read a whole file; `Ok(None)` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            context: "read",
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// Create a directory and its 256 two-hex-digit fan-out subdirectories.
pub(crate) fn create_fanout(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).ctx("mkdir", dir)?;
    for i in 0..=255u8 {
        let sub = dir.join(format!("{i:02x}"));
        fs::create_dir_all(&sub).ctx("mkdir", &sub)?;
    }
    Ok(())
}

/// `dir/xx/name`, where `xx` are the first two characters of the hex `name`.
pub(crate) fn fanout_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(&name[..2]).join(name)
}
