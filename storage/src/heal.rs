//! Healing: bring every online drive back to a full copy of what the set holds.
//!
//! Metadata lives in each drive's index, which a drive that missed commits catches up from
//! the others (`index::set`); a heal runs that catch-up first. Then, for each object, it
//! checks every shard file of every version (present and of the right length; with
//! `deep`, every bitrot chunk verified). Lost shards are rebuilt from the others with
//! Reed-Solomon into a temp file on their drive and renamed into place. Directories of
//! buckets that no longer exist are removed from drives that missed the delete.
//!
//! It runs as a background task ([`Store::run_healer`]): objects a read found degraded are
//! healed at once, the whole set after a start-up that formatted a replaced drive or found
//! the drives disagreeing, and the whole set again every scan interval. `quarry heal` runs
//! [`Store::heal_all`] on a stopped server's drives.

use crate::bitrot;
use crate::error::{IoContext, Result};
use crate::fsio::blocking;
use crate::index::{Table, keys};
use crate::object::open_shard_files;
use crate::store::{Bucket, Inner, KeyEntry, Store, read_dir_paths};
use std::fs::{self, File};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What a heal found and fixed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealReport {
    pub objects_checked: usize,
    /// Drive copies of metadata written because they were missing, stale or corrupt.
    pub metadata_fixed: usize,
    /// Shard files rebuilt.
    pub shards_rebuilt: usize,
    /// Metadata of deleted keys, and directories of deleted buckets, removed.
    pub stale_removed: usize,
    /// Bucket directories recreated on drives that lacked them.
    pub buckets_fixed: usize,
    /// Objects that could not be healed, with the reason.
    pub unrecoverable: Vec<String>,
}

impl HealReport {
    fn add(&mut self, o: HealReport) {
        self.objects_checked += o.objects_checked;
        self.metadata_fixed += o.metadata_fixed;
        self.shards_rebuilt += o.shards_rebuilt;
        self.stale_removed += o.stale_removed;
        self.buckets_fixed += o.buckets_fixed;
        self.unrecoverable.extend(o.unrecoverable);
    }

    /// Whether anything was repaired or found beyond repair.
    pub fn changed(&self) -> bool {
        self.metadata_fixed + self.shards_rebuilt + self.stale_removed + self.buckets_fixed > 0 || !self.unrecoverable.is_empty()
    }
}

impl std::fmt::Display for HealReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} objects checked, {} metadata copies fixed, {} shards rebuilt, {} stale entries removed, {} bucket directories recreated, {} unrecoverable",
            self.objects_checked,
            self.metadata_fixed,
            self.shards_rebuilt,
            self.stale_removed,
            self.buckets_fixed,
            self.unrecoverable.len()
        )?;
        for u in &self.unrecoverable {
            write!(f, "\n  unrecoverable: {u}")?;
        }
        Ok(())
    }
}

impl Store {
    /// Heal every bucket and object. `deep` also verifies every chunk of every shard file
    /// (reads all data); otherwise shard files are checked for presence and length.
    pub async fn heal_all(&self, deep: bool) -> Result<HealReport> {
        let mut report = HealReport::default();
        report.add(self.heal_buckets().await?);
        report.metadata_fixed += self.heal_indexes().await?;
        for b in self.all_buckets() {
            // The bucket's keys a page at a time, in order, from the index.
            let bp = keys::bucket_prefix(&b.name);
            let end = keys::prefix_end(&bp);
            let mut lower = Bound::Included(bp.clone());
            loop {
                let mut page: Vec<String> = Vec::new();
                crate::versions::scan_chunked(&self.inner, Table::Versions, lower.clone(), &end, |k, _| {
                    if let Some((key, _)) = keys::parse_version(&b.name, k)
                        && page.last() != Some(&key)
                    {
                        page.push(key);
                    }
                    Ok(page.len() <= HEAL_PAGE)
                })?;
                let more = page.len() > HEAL_PAGE;
                page.truncate(HEAL_PAGE);
                for key in &page {
                    report.add(heal_object(&self.inner, &b, key, deep).await);
                }
                match page.last() {
                    Some(last) if more => lower = Bound::Included(keys::prefix_end(&keys::object(&b.name, last))),
                    _ => break,
                }
            }
        }
        Ok(report)
    }

    /// Heal one object (deep).
    pub async fn heal_object(&self, bucket: &str, key: &str) -> Result<HealReport> {
        let b = self.bucket(&crate::names::BucketName::new(bucket)?)?;
        Ok(heal_object(&self.inner, &b, key, true).await)
    }

    /// The background healer: heals objects reads found degraded as they are queued, the
    /// whole set when start-up asked for it, and the whole set every `scan` (if given).
    /// Runs until the store's last handle is dropped.
    pub async fn run_healer(self, scan: Option<Duration>) {
        let weak = Arc::downgrade(&self.inner);
        drop(self);
        let mut next_scan = scan.map(|s| tokio::time::Instant::now() + s);
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let store = Store { inner };
            if store.inner.needs_full_heal.swap(false, Ordering::Relaxed) {
                match store.heal_all(false).await {
                    Ok(r) => tracing::info!(report = %r, "start-up heal finished"),
                    Err(e) => tracing::error!(error = %e, "start-up heal failed"),
                }
            }
            let queued: Vec<(String, String)> = store.inner.heal_queue.lock().expect("heal queue lock").drain().collect();
            for (bucket, key) in queued {
                match store.heal_object(&bucket, &key).await {
                    Ok(r) if r.changed() => tracing::info!(bucket, key, report = %r, "healed object"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(bucket, key, error = %e, "heal failed"),
                }
            }
            if next_scan.is_some_and(|t| tokio::time::Instant::now() >= t) {
                match store.heal_all(false).await {
                    Ok(r) if r.changed() => tracing::info!(report = %r, "scan healed the set"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "scan failed"),
                }
                next_scan = scan.map(|s| tokio::time::Instant::now() + s);
            }
            let inner = store.inner.clone();
            drop(store);
            let wait = next_scan.map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(tokio::time::Instant::now())
            });
            // Wake on a queued object, at the next scan, or every few seconds to notice
            // that the store was dropped.
            tokio::select! {
                () = inner.heal_wake.notified() => {}
                () = tokio::time::sleep(wait.min(Duration::from_secs(5))) => {}
            }
        }
    }

    /// Recreate bucket directories a drive lacks; remove directories of buckets that no
    /// longer exist (holding the bucket lock, so a bucket being created keeps its own).
    async fn heal_buckets(&self) -> Result<HealReport> {
        let _guard = self.inner.bucket_lock.lock().await;
        let buckets = self.all_buckets();
        let inner = self.inner.clone();
        blocking(move || {
            let mut report = HealReport::default();
            for d in inner.live().filter(|d| inner.reachable(*d)) {
                let drive = &inner.drives[d];
                for b in &buckets {
                    if crate::buckets::ensure_dir(drive, &b.name, inner.opts.fsync)? {
                        report.buckets_fixed += 1;
                    }
                }
                for path in read_dir_paths(&drive.root.join("buckets"))? {
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    if !buckets.iter().any(|b| b.name == name) {
                        crate::buckets::remove_dir(drive, &path, inner.opts.fsync)?;
                        report.stale_removed += 1;
                    }
                }
            }
            Ok(report)
        })
        .await
    }
}

/// Keys healed per index page.
const HEAL_PAGE: usize = 1_000;

/// Heal the shards of every version of one object on every online drive.
async fn heal_object(inner: &Arc<Inner>, b: &Arc<Bucket>, key: &str, deep: bool) -> HealReport {
    let _guard = b.stripe(key).lock().await;
    let entry = match inner.entry(b, key) {
        Ok(e) => e,
        Err(e) => {
            return HealReport {
                objects_checked: 1,
                unrecoverable: vec![format!("{}/{key}: {e}", b.name)],
                ..Default::default()
            };
        }
    };
    let (i2, b2, k2) = (inner.clone(), b.clone(), key.to_owned());
    let res = blocking(move || heal_object_blocking(&i2, &b2, &k2, entry.as_ref(), deep)).await;
    match res {
        Ok(r) => r,
        Err(e) => HealReport {
            objects_checked: 1,
            unrecoverable: vec![format!("{}/{key}: {e}", b.name)],
            ..Default::default()
        },
    }
}

fn heal_object_blocking(inner: &Inner, b: &Bucket, key: &str, entry: Option<&KeyEntry>, deep: bool) -> Result<HealReport> {
    let mut report = HealReport {
        objects_checked: 1,
        ..Default::default()
    };
    let Some(entry) = entry else { return Ok(report) };
    let versions = entry.plain();
    for part in versions.iter().flat_map(|v| &v.parts) {
        let Some(id) = &part.data_id else { continue };
        match heal_shards(inner, b, id, part.size, deep) {
            Ok(n) => report.shards_rebuilt += n,
            Err(e) => report.unrecoverable.push(format!("{}/{key} part {}: {e}", b.name, part.number)),
        }
    }
    Ok(report)
}

/// Check and rebuild the shard files of data `id` (`size` logical bytes); returns how many
/// were rebuilt.
/// Pages a deep heal verifies per read: its memory per shard file, whatever the file's size.
pub const DEEP_HEAL_READ_PAGES: usize = 64;

/// Whether every page of a shard file checks out, read `DEEP_HEAL_READ_PAGES` pages at a
/// time (pages are checked independently, so the file is never held whole).
fn verify_shard_file(path: &std::path::Path) -> bool {
    use std::io::Read;
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut buf = vec![0u8; DEEP_HEAL_READ_PAGES * (bitrot::CHUNK + bitrot::SUM)];
    let mut chunk = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match f.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        if filled == 0 {
            return true;
        }
        if bitrot::unframe(&buf[..filled], chunk).is_err() {
            return false;
        }
        if filled < buf.len() {
            return true;
        }
        chunk += DEEP_HEAL_READ_PAGES as u64;
    }
}

fn heal_shards(inner: &Inner, b: &Bucket, id: &str, size: u64, deep: bool) -> Result<usize> {
    let layout = inner.layout;
    let want_len = bitrot::framed_len(layout.shard_file_len(size));
    let n = layout.data() + layout.parity();
    let mut bad = Vec::new();
    for i in 0..n {
        let d = inner.drive_of_shard(id, i);
        if !inner.drives[d].online || !inner.reachable(d) {
            continue;
        }
        let path = b.data_path(d, id);
        let ok = match fs::metadata(&path) {
            Ok(m) if m.len() == want_len => !deep || verify_shard_file(&path),
            _ => false,
        };
        if !ok {
            bad.push(i);
        }
    }
    if bad.is_empty() {
        return Ok(0);
    }
    let (mut files, _) = open_shard_files(inner, b, id);
    for &i in &bad {
        files[i] = None;
    }
    let mut temps = Vec::with_capacity(bad.len());
    let mut outputs = Vec::with_capacity(bad.len());
    for &i in &bad {
        let d = inner.drive_of_shard(id, i);
        let tmp = inner.drives[d].tmp.join(crate::names::random_hex());
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .ctx("create", &tmp)?;
        temps.push((d, tmp));
        outputs.push(f);
    }
    let rebuilt = crate::shard_io::rebuild(&inner.io, layout, &files, size, &bad, &outputs, inner.opts.fsync);
    drop(outputs);
    if let Err(e) = rebuilt {
        for (_, t) in &temps {
            let _ = fs::remove_file(t);
        }
        return Err(e.into());
    }
    for (d, tmp) in temps {
        let target = b.data_path(d, id);
        fs::rename(&tmp, &target).ctx("rename", &target)?;
        if inner.opts.fsync {
            File::open(target.parent().expect("fan-out dir"))
                .and_then(|f| f.sync_all())
                .ctx("fsync dir", &target)?;
        }
    }
    Ok(bad.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_verification_reads_in_bounded_pieces_and_finds_any_flip() {
        let dir = tempfile::tempdir().unwrap();
        let page = bitrot::CHUNK + bitrot::SUM;
        // Three and a half reads' worth of pages, so the last read is partial.
        let data: Vec<u8> = (0..(DEEP_HEAL_READ_PAGES * 7 / 2) * bitrot::CHUNK + 100)
            .map(|i| (i * 31) as u8)
            .collect();
        let framed = bitrot::frame(&data);
        let path = dir.path().join("shard");
        std::fs::write(&path, &framed).unwrap();
        assert!(verify_shard_file(&path));
        for at in [0, page * DEEP_HEAL_READ_PAGES + 5, framed.len() - 1] {
            let mut bad = framed.clone();
            bad[at] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            assert!(!verify_shard_file(&path), "flip at {at} not found");
        }
        std::fs::write(&path, &framed[..framed.len() - 3]).unwrap();
        assert!(!verify_shard_file(&path), "a torn last page");
        assert!(!verify_shard_file(&dir.path().join("missing")));
    }
}
