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
            let results: Vec<(usize, Result<()>)> = me
                .inner
                .live()
                .map(|d| {
                    let target = me.config_path(d, &name);
                    let r = (|| {
                        let dir = target.parent().expect("config files live in a directory");
                        if !dir.is_dir() {
                            fs::DirBuilder::new().mode(0o700).recursive(true).create(dir).ctx("mkdir", dir)?;
                        }
                        let tmp = me.inner.drives[d].tmp.join(crate::names::random_hex());
                        fsio::write_new(&tmp, &bytes, durable)?;
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
                    })();
                    (d, r)
                })
                .collect();
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
        let store = Store::open_set(paths, StoreOptions::default()).await.unwrap();
        assert_eq!(store.config_doc("iam").await.unwrap().as_deref(), Some("two"));
        store.set_config_doc("iam", "three".into()).await.unwrap();
        assert_eq!(store.config_doc("iam").await.unwrap().as_deref(), Some("three"));
    }
}
