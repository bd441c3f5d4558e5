//! Configuration documents: small texts the server keeps beside the data (its identity
//! store), opaque to the store. They live in the metadata index's `configs` table (name ->
//! text), committed durably to every current drive under write quorum like all metadata,
//! read from a current drive, and sealed against corruption. The index file is `0600`:
//! documents may hold secrets, readable only by the server's user.
//!
//! Sets written before the index kept each document as `.quarry/config/<name>.json` on
//! every drive (`{"seq": n, "doc": text}`, the highest `seq` winning);
//! [`migrate_config_files`] moves them into the index at the first start and removes the
//! files.

use crate::error::{Error, Result};
use crate::fsio::{self, blocking};
use crate::index::{Batch, Table};
use crate::store::{Inner, Store};
use serde::Deserialize;
use std::fs;
use std::sync::Arc;

/// Marks, in the `configs` table (no document name starts with a 0 byte), that the file
/// layout's documents were imported, so that files a killed migration left are removed,
/// never imported over newer documents.
const MIGRATED: &[u8] = b"\0migrated/config-files";

#[derive(Deserialize)]
struct ConfigRecord {
    seq: u64,
    doc: String,
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!("configuration document name {name:?} is not valid")))
    }
}

/// Move the documents of the file layout into the index (once: a marker in the index
/// records it), then remove the files. Killed half-way, it runs again at the next start:
/// the files go only after the index holds them.
pub(crate) async fn migrate_config_files(inner: &Arc<Inner>) -> Result<()> {
    let me = inner.clone();
    let (newest, dirs) = blocking(move || {
        let mut newest: std::collections::BTreeMap<String, ConfigRecord> = Default::default();
        let mut dirs = Vec::new();
        for d in me.live() {
            let dir = me.drives[d].root.join(".quarry/config");
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            dirs.push(dir);
            for e in entries.flatten() {
                let Some(name) = e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(str::to_owned) else {
                    continue;
                };
                if check_name(&name).is_err() {
                    continue;
                }
                let Some(bytes) = fsio::read_opt(&e.path())? else { continue };
                let Ok(rec) = serde_json::from_slice::<ConfigRecord>(&bytes) else {
                    tracing::error!(path = %e.path().display(), "unreadable configuration document; skipped");
                    continue;
                };
                if newest.get(&name).is_none_or(|n| rec.seq > n.seq) {
                    newest.insert(name, rec);
                }
            }
        }
        Ok((newest, dirs))
    })
    .await?;
    if dirs.is_empty() {
        return Ok(());
    }
    if inner.index.reader()?.get(Table::Configs, MIGRATED)?.is_none() {
        let mut b = Batch::new();
        for (name, rec) in &newest {
            b.put(Table::Configs, name.as_bytes().to_vec(), rec.doc.as_bytes());
        }
        b.put(Table::Configs, MIGRATED.to_vec(), b"1");
        inner.commit(b).await?;
        tracing::info!(documents = newest.len(), "configuration documents moved into the metadata index");
    }
    blocking(move || {
        for dir in dirs {
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove the old configuration files");
            }
        }
        Ok(())
    })
    .await
}

impl Store {
    /// Configuration document `name` (lower-case letters, digits, `-`, `_`), if it was
    /// ever written.
    pub async fn config_doc(&self, name: &str) -> Result<Option<String>> {
        check_name(name)?;
        let me = self.clone();
        let name = name.to_owned();
        let raw = blocking(move || me.inner.index.reader()?.get(Table::Configs, name.as_bytes())).await?;
        raw.map(|v| {
            String::from_utf8(v).map_err(|_| Error::Corrupt {
                path: "configs".into(),
                reason: "a configuration document is not UTF-8".into(),
            })
        })
        .transpose()
    }

    /// Replace configuration document `name` durably on a write quorum of drives. Writers
    /// are serialised; readers see the old or the new text.
    pub async fn set_config_doc(&self, name: &str, doc: String) -> Result<()> {
        check_name(name)?;
        let _guard = self.inner.config_lock.lock().await;
        let mut b = Batch::new();
        b.put(Table::Configs, name.as_bytes().to_vec(), doc.as_bytes());
        self.inner.commit(b).await.map(|_| ())
    }

    /// Bring every stale drive's metadata index up to date (a replaced drive's, one that
    /// missed commits); the keys copied.
    pub(crate) async fn heal_indexes(&self) -> Result<usize> {
        let mut copied = 0;
        for d in self.inner.index.stale() {
            copied += self.inner.index.catch_up(d).await?.keys as usize;
        }
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreOptions};
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn documents_survive_reopen_and_are_private() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let paths: Vec<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        {
            let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
            assert_eq!(store.config_doc("iam").await.unwrap(), None);
            store.set_config_doc("iam", "one".into()).await.unwrap();
            store.set_config_doc("iam", "two".into()).await.unwrap();
            assert_eq!(store.config_doc("iam").await.unwrap().as_deref(), Some("two"));
            assert!(store.set_config_doc("../x", "no".into()).await.is_err());
        }
        for p in &paths {
            let file = p.join(".quarry/index.redb");
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
        assert_eq!(store.config_doc("iam").await.unwrap().as_deref(), Some("two"));
        drop(store);

        // A replaced drive gets the documents back from the others; then it alone with
        // one other can serve them.
        std::fs::remove_dir_all(&paths[1]).unwrap();
        std::fs::create_dir(&paths[1]).unwrap();
        let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
        store.heal_all(false).await.unwrap();
        assert!(store.inner.index.stale().is_empty());
        drop(store);
        std::fs::remove_file(paths[0].join(".quarry/index.redb")).unwrap();
        // Drive 0's index is new, so stale: reads come from the other two (while its
        // catch-up, started at open, runs), and a heal completes that catch-up.
        let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
        for _ in 0..4 {
            assert_eq!(store.config_doc("iam").await.unwrap().as_deref(), Some("two"));
        }
        store.heal_all(false).await.unwrap();
        assert!(store.inner.index.stale().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreadable_index_is_left_alone_and_the_others_serve() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let paths: Vec<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        {
            let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
            store.set_config_doc("iam", "doc".into()).await.unwrap();
        }
        let file = paths[2].join(".quarry/index.redb");
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[..64].fill(0xA5);
        std::fs::write(&file, &bytes).unwrap();
        let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
        assert_eq!(store.config_doc("iam").await.unwrap().as_deref(), Some("doc"));
        drop(store);
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "the damaged file is not touched");

        // A one-drive set has nothing else to serve from: a clear error, file untouched.
        let one = tempfile::tempdir().unwrap();
        drop(Store::open(one.path(), StoreOptions::default()).await.unwrap());
        let f = one.path().join(".quarry/index.redb");
        let mut b = std::fs::read(&f).unwrap();
        b[..64].fill(0xA5);
        std::fs::write(&f, &b).unwrap();
        let err = Store::open(one.path(), StoreOptions::default()).await.err().expect("refused");
        assert!(matches!(err, crate::Error::Quorum { .. }), "{err}");
        assert_eq!(std::fs::read(&f).unwrap(), b);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn documents_of_the_file_layout_move_into_the_index() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let paths: Vec<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        drop(Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap());
        // A set as the file layout left it: no index, a document per drive, one stale.
        for (i, p) in paths.iter().enumerate() {
            std::fs::remove_file(p.join(".quarry/index.redb")).unwrap();
            std::fs::create_dir_all(p.join(".quarry/config")).unwrap();
            let rec = if i == 0 {
                r#"{"seq":1,"doc":"old"}"#
            } else {
                r#"{"seq":2,"doc":"new"}"#
            };
            std::fs::write(p.join(".quarry/config/iam.json"), rec).unwrap();
        }
        let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
        assert_eq!(store.config_doc("iam").await.unwrap().as_deref(), Some("new"));
        for p in &paths {
            assert!(!p.join(".quarry/config").exists(), "old files removed");
        }
        drop(store);
        let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
        assert_eq!(store.config_doc("iam").await.unwrap().as_deref(), Some("new"));
    }
}
