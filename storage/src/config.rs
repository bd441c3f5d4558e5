//! Configuration documents: small texts the server keeps beside the data (its identity
//! store), opaque to the store. Each is written to every online drive as
//! `.quarry/config/<name>.json` by temp file, fsync, rename and directory fsync, so a
//! crash leaves the old or the new document on each drive, never a torn one; a write
//! quorum must take it. The directory is `0700` and the files `0600`: documents may hold
//! secrets, readable only by the server's user. At read, the record with the newest
//! sequence number on any live drive wins (a drive that missed a write holds an older one).

use crate::error::{Error, IoContext, Result};
use crate::fsio::{self, blocking};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;

#[derive(Serialize, Deserialize)]
struct ConfigRecord {
    /// Grows by one with every write of the document.
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

impl Store {
    fn config_path(&self, d: usize, name: &str) -> PathBuf {
        self.inner.drives[d].root.join(".quarry/config").join(format!("{name}.json"))
    }

    /// The newest record of document `name` on the live drives, with its sequence number.
    fn newest_config(&self, name: &str) -> Result<Option<ConfigRecord>> {
        let mut newest: Option<ConfigRecord> = None;
        for d in self.inner.live() {
            let path = self.config_path(d, name);
            let Some(bytes) = fsio::read_opt(&path)? else { continue };
            let Ok(rec) = serde_json::from_slice::<ConfigRecord>(&bytes) else {
                tracing::error!(path = %path.display(), "unreadable configuration document");
                continue;
            };
            if newest.as_ref().is_none_or(|n| rec.seq > n.seq) {
                newest = Some(rec);
            }
        }
        Ok(newest)
    }

    /// Write one drive's copy of document `name`: temp file, fsync, `0600`, rename, and an
    /// fsync of the (`0700`) directory.
    fn write_config(&self, d: usize, name: &str, bytes: &[u8], durable: bool) -> Result<()> {
        let target = self.config_path(d, name);
        let dir = target.parent().expect("config files live in a directory");
        if !dir.is_dir() {
            fs::DirBuilder::new().mode(0o700).recursive(true).create(dir).ctx("mkdir", dir)?;
        }
        let tmp = self.inner.drives[d].tmp.join(crate::names::random_hex());
        fsio::write_new(&tmp, bytes, durable)?;
        if let Err(e) = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)) {
            let _ = fs::remove_file(&tmp);
            return Err::<(), _>(e).ctx("chmod", &tmp);
        }
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_file(&tmp);
            return Err::<(), _>(e).ctx("rename", &target);
        }
        if durable {
            fsio::sync_dir(dir)?;
        }
        Ok(())
    }

    /// Bring every live drive's copy of every configuration document to the newest record
    /// (a replaced drive has none; one that missed a write has an older one). Returns the
    /// copies written.
    pub(crate) async fn heal_config_docs(&self) -> Result<usize> {
        let _guard = self.inner.config_lock.lock().await;
        let me = self.clone();
        blocking(move || {
            let mut names = std::collections::BTreeSet::new();
            for d in me.inner.live() {
                let dir = me.inner.drives[d].root.join(".quarry/config");
                let Ok(entries) = fs::read_dir(&dir) else { continue };
                for e in entries.flatten() {
                    if let Some(n) = e.file_name().to_str().and_then(|n| n.strip_suffix(".json"))
                        && check_name(n).is_ok()
                    {
                        names.insert(n.to_owned());
                    }
                }
            }
            let mut fixed = 0;
            for name in names {
                let Some(newest) = me.newest_config(&name)? else { continue };
                let bytes = serde_json::to_vec(&newest).expect("serialises");
                for d in me.inner.live().collect::<Vec<_>>() {
                    let current = fsio::read_opt(&me.config_path(d, &name))?;
                    let same = current
                        .and_then(|b| serde_json::from_slice::<ConfigRecord>(&b).ok())
                        .is_some_and(|r| r.seq == newest.seq && r.doc == newest.doc);
                    if !same {
                        me.write_config(d, &name, &bytes, me.inner.opts.fsync)?;
                        fixed += 1;
                    }
                }
            }
            Ok(fixed)
        })
        .await
    }

    /// Configuration document `name` (lower-case letters, digits, `-`, `_`), if it was
    /// ever written.
    pub async fn config_doc(&self, name: &str) -> Result<Option<String>> {
        check_name(name)?;
        let me = self.clone();
        let name = name.to_owned();
        Ok(blocking(move || me.newest_config(&name)).await?.map(|r| r.doc))
    }

    /// Replace configuration document `name` durably on a write quorum of drives. Writers
    /// are serialised; readers see the old or the new text.
    pub async fn set_config_doc(&self, name: &str, doc: String) -> Result<()> {
        check_name(name)?;
        let _guard = self.inner.config_lock.lock().await;
        let me = self.clone();
        let name = name.to_owned();
        blocking(move || {
            let seq = me.newest_config(&name)?.map_or(1, |r| r.seq + 1);
            let bytes = serde_json::to_vec(&ConfigRecord { seq, doc }).expect("serialises");
            let durable = me.inner.opts.fsync;
            let results: Vec<(usize, Result<()>)> = me.inner.live().map(|d| (d, me.write_config(d, &name, &bytes, durable))).collect();
            me.inner
                .quorum("write configuration", &results, me.inner.write_quorum())
                .map(|_| ())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreOptions};
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
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
            let file = p.join(".quarry/config/iam.json");
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(
                std::fs::metadata(file.parent().unwrap()).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        // A drive that missed the last write holds an older record: the newest wins.
        let stale = br#"{"seq":1,"doc":"one"}"#;
        std::fs::write(paths[0].join(".quarry/config/iam.json"), stale).unwrap();
        let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
        assert_eq!(store.config_doc("iam").await.unwrap().as_deref(), Some("two"));
        store.set_config_doc("iam", "three".into()).await.unwrap();
        assert_eq!(store.config_doc("iam").await.unwrap().as_deref(), Some("three"));
        drop(store);

        // A replaced drive (no copy) and a stale one are brought up to date by a heal.
        std::fs::remove_dir_all(paths[1].join(".quarry/config")).unwrap();
        std::fs::write(paths[2].join(".quarry/config/iam.json"), stale).unwrap();
        let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
        let report = store.heal_all(false).await.unwrap();
        assert_eq!(report.metadata_fixed, 2);
        let want = std::fs::read(paths[0].join(".quarry/config/iam.json")).unwrap();
        for p in &paths {
            let file = p.join(".quarry/config/iam.json");
            assert_eq!(std::fs::read(&file).unwrap(), want);
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(store.heal_all(false).await.unwrap().metadata_fixed, 0);
    }
}
