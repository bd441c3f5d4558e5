//! The indexes of an erasure set's drives kept in agreement: which drives are current,
//! commits under write quorum, reads only from a current drive, and catch-up of a drive
//! that missed commits in time proportional to what it missed.
//!
//! - Every commit gets a sequence number and writes, with its changes, a `Log` record of
//!   what it touched (`seq -> [table, key]`), to every current drive.
//! - A drive whose commit fails is stale from then on: no commit goes to it and no read
//!   is served from it. The current drives record `stale/<slot> = seq` (the first commit
//!   it may lack) and a new epoch, so a restart knows it too: at open, the drives whose
//!   `epoch` is the highest are current, the others are stale since the sequence their
//!   peers recorded (or since the beginning, when none did).
//! - Catch-up copies, from a current drive, the present value of every key the log says
//!   was touched since the drive went stale, then, with commits held for the last pass,
//!   rejoins it at a new epoch. When the log no longer reaches back that far (it is
//!   trimmed to a bound), or the drive is new, it copies every table.
//! - A commit that fails its quorum may have applied on the drives that took it; those stay
//!   current, so its change may become visible whole (as a 5xx from S3 may have taken
//!   effect), never half.

use super::{Batch, Index, Op, Table};
use crate::error::{Error, Result};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Log records kept besides what stale drives still need.
pub const DEFAULT_LOG_KEEP: u64 = 100_000;
/// Keys copied per batch while catching up.
const COPY_BATCH: usize = 2_000;

const EPOCH: &[u8] = b"epoch";

fn stale_key(slot: usize) -> Vec<u8> {
    format!("stale/{slot:04}").into_bytes()
}

fn u64_of(v: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(v.try_into().ok()?))
}

/// What a catch-up did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CatchUp {
    /// Keys copied or removed.
    pub keys: u64,
    /// Whether it copied everything (the log did not reach back far enough).
    pub full: bool,
}

#[derive(Debug)]
struct State {
    current: Vec<bool>,
    /// For each stale drive, the first commit it may lack (0: everything).
    stale_since: Vec<Option<u64>>,
    epoch: u64,
}

/// The indexes of one erasure set.
#[derive(Debug)]
pub struct IndexSet {
    drives: Vec<Option<Arc<Index>>>,
    write_quorum: usize,
    log_keep: u64,
    state: Mutex<State>,
    next_seq: AtomicU64,
    /// Commits hold it shared; a rejoining drive's last pass holds it alone.
    gate: tokio::sync::RwLock<()>,
    reads: AtomicU64,
    /// One catch-up per drive at a time (a second waits, then finds nothing to do).
    catching_up: Vec<tokio::sync::Mutex<()>>,
}

/// Encode what a batch touches: per op, table, kind, key (and range end).
fn touched(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    let put = |out: &mut Vec<u8>, k: &[u8]| {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
    };
    for op in ops {
        match op {
            Op::Put(t, k, _) | Op::Delete(t, k) => {
                out.push(t.code());
                out.push(0);
                put(&mut out, k);
            }
            Op::DeleteRange(t, from, to) => {
                out.push(t.code());
                out.push(1);
                put(&mut out, from);
                put(&mut out, to);
            }
        }
    }
    out
}

enum Touched {
    Key(Table, Vec<u8>),
    Range(Table, Vec<u8>, Vec<u8>),
}

fn parse_touched(mut v: &[u8]) -> Option<Vec<Touched>> {
    let mut out = Vec::new();
    let take = |v: &mut &[u8]| -> Option<Vec<u8>> {
        let n = u32::from_le_bytes(v.get(..4)?.try_into().ok()?) as usize;
        let k = v.get(4..4 + n)?.to_vec();
        *v = &v[4 + n..];
        Some(k)
    };
    while !v.is_empty() {
        let t = *Table::ALL.get(*v.first()? as usize)?;
        let kind = *v.get(1)?;
        v = &v[2..];
        match kind {
            0 => out.push(Touched::Key(t, take(&mut v)?)),
            1 => {
                let from = take(&mut v)?;
                out.push(Touched::Range(t, from, take(&mut v)?));
            }
            _ => return None,
        }
    }
    Some(out)
}

impl IndexSet {
    /// Take the drives' indexes (`None`: offline), find which are current, and start a
    /// new epoch on those. Needs `n - write_quorum + 1` open drives (see below); writes
    /// need `write_quorum` current ones, which stale drives become by catching up.
    pub async fn open(drives: Vec<Option<Index>>, write_quorum: usize, log_keep: u64) -> Result<Self> {
        let drives: Vec<Option<Arc<Index>>> = drives.into_iter().map(|d| d.map(Arc::new)).collect();
        let mut epochs = Vec::with_capacity(drives.len());
        for d in &drives {
            epochs.push(match d {
                Some(ix) => Some(ix.get(Table::State, EPOCH)?.as_deref().and_then(u64_of).unwrap_or(0)),
                None => None,
            });
        }
        let max = epochs.iter().flatten().copied().max().unwrap_or(0);
        let current: Vec<bool> = epochs.iter().map(|e| *e == Some(max)).collect();
        let first = current.iter().position(|c| *c);
        // Every acknowledged commit is on a write quorum of drives that hold its epoch or a
        // later one; with `n - write_quorum + 1` drives open, at least one of them is among
        // those, so the drives with the highest epoch here have every acknowledged commit.
        // With fewer, an offline drive might hold a later epoch: no drive can be trusted.
        let open = epochs.iter().flatten().count();
        let need = drives.len() + 1 - write_quorum.min(drives.len());
        if open < need || first.is_none() {
            return Err(Error::Quorum {
                op: "open the metadata index",
                ok: open,
                need,
                detail: format!("drive epochs {epochs:?}"),
            });
        }
        reconcile(&drives, &current).await?;
        let src = drives[first.expect("a quorum is at least one drive")]
            .clone()
            .expect("current drives are open");
        let mut stale_since = vec![None; drives.len()];
        for (slot, c) in current.iter().enumerate() {
            if !c {
                let since = src.get(Table::State, &stale_key(slot))?.as_deref().and_then(u64_of).unwrap_or(0);
                stale_since[slot] = Some(since);
            }
        }
        let n_drives = drives.len();
        let mut last = 0;
        for (slot, d) in drives.iter().enumerate() {
            if let (true, Some(ix)) = (current[slot], d)
                && let Some((k, _)) = ix.last(Table::Log)?
            {
                last = last.max(u64::from_be_bytes(k.as_slice().try_into().unwrap_or_default()));
            }
        }
        let set = Self {
            drives,
            write_quorum,
            log_keep,
            state: Mutex::new(State {
                current,
                stale_since,
                epoch: max,
            }),
            next_seq: AtomicU64::new(last + 1),
            gate: tokio::sync::RwLock::new(()),
            reads: AtomicU64::new(0),
            catching_up: (0..n_drives).map(|_| tokio::sync::Mutex::new(())).collect(),
        };
        set.new_epoch().await?;
        Ok(set)
    }

    /// Slots that are current.
    pub fn current(&self) -> Vec<usize> {
        let s = self.state.lock().expect("index set state");
        (0..s.current.len()).filter(|d| s.current[*d]).collect()
    }

    /// Slots that are open but stale (candidates for catch-up).
    pub fn stale(&self) -> Vec<usize> {
        let s = self.state.lock().expect("index set state");
        (0..s.current.len())
            .filter(|d| !s.current[*d] && self.drives[*d].is_some())
            .collect()
    }

    /// A current drive's index to read from (rotating, to spread reads).
    pub fn reader(&self) -> Result<Arc<Index>> {
        let current = self.current();
        if current.is_empty() {
            return Err(Error::Drive("no drive's metadata index is current".into()));
        }
        let i = self.reads.fetch_add(1, Ordering::Relaxed) as usize % current.len();
        Ok(self.drives[current[i]].clone().expect("current drives are open"))
    }

    /// Run a read on a current drive's index (rotating); when it fails there (a value
    /// whose checksum does not match, an engine error), on each other current drive in
    /// turn. The last failure is returned when every drive failed.
    pub fn read<T>(&self, mut f: impl FnMut(&Index) -> Result<T>) -> Result<T> {
        let current = self.current();
        if current.is_empty() {
            return Err(Error::Drive("no drive's metadata index is current".into()));
        }
        let start = self.reads.fetch_add(1, Ordering::Relaxed) as usize;
        let mut last = None;
        for i in 0..current.len() {
            let d = current[(start + i) % current.len()];
            let ix = self.drives[d].as_ref().expect("current drives are open");
            match f(ix) {
                Ok(t) => return Ok(t),
                Err(e) => {
                    tracing::error!(drive = d, error = %e, "metadata read failed; trying another drive");
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one drive was tried"))
    }

    /// Commit a batch to every current drive; its sequence number. Fails with
    /// `Error::Quorum` when fewer than the write quorum took it.
    pub async fn commit(&self, batch: Batch) -> Result<u64> {
        let gate = self.gate.read().await;
        let targets = self.current();
        if targets.len() < self.write_quorum {
            // Applied on fewer, it could never be acknowledged: not applied at all.
            return Err(Error::Quorum {
                op: "commit metadata",
                ok: targets.len(),
                need: self.write_quorum,
                detail: format!("only drives {targets:?} have current metadata"),
            });
        }
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        let mut full = Batch::new();
        // A one-drive set has no peer to catch up from: its commits need no log.
        if self.drives.len() > 1 {
            full.put(Table::Log, seq.to_be_bytes().to_vec(), &touched(batch.ops()));
        }
        full.extend(batch);
        if seq.is_multiple_of(1024) {
            let keep_from = self.log_floor(seq);
            full.delete_range(Table::Log, 0u64.to_be_bytes().to_vec(), keep_from.to_be_bytes().to_vec());
        }
        let results = self.commit_on(&targets, &full).await;
        let mut ok = 0;
        let mut failed = Vec::new();
        for (d, r) in results {
            match r {
                Ok(()) => ok += 1,
                Err(e) => {
                    tracing::warn!(drive = d, seq, error = %e, "metadata commit failed; the drive is stale until it catches up");
                    failed.push(d);
                }
            }
        }
        drop(gate);
        if !failed.is_empty() {
            // Alone: no commit may be acknowledged by the remaining drives before they
            // record the failed ones as stale, or a restart could take a drive that
            // lacks it for current.
            let _alone = self.gate.write().await;
            self.mark_stale(&failed, seq).await?;
        }
        if ok < self.write_quorum {
            return Err(Error::Quorum {
                op: "commit metadata",
                ok,
                need: self.write_quorum,
                detail: format!("drives {failed:?} failed"),
            });
        }
        Ok(seq)
    }

    /// Take drives out of the current set without a failed commit (their directory is
    /// gone under a running store: their open index file would still take commits). They
    /// are stale from the next commit on, recorded as such on the others.
    pub async fn set_unreachable(&self, slots: &[usize]) -> Result<()> {
        let _alone = self.gate.write().await;
        let current = self.current();
        let gone: Vec<usize> = slots.iter().copied().filter(|d| current.contains(d)).collect();
        if gone.is_empty() {
            return Ok(());
        }
        tracing::warn!(drives = ?gone, "drives unreachable; their metadata is stale until they catch up");
        let seq = self.next_seq.load(Ordering::SeqCst);
        self.mark_stale(&gone, seq).await
    }

    /// The lowest log record still needed: what stale drives lack, and the last
    /// `log_keep` commits.
    fn log_floor(&self, seq: u64) -> u64 {
        let s = self.state.lock().expect("index set state");
        let needed = s.stale_since.iter().flatten().copied().min().unwrap_or(u64::MAX);
        needed.min(seq.saturating_sub(self.log_keep))
    }

    async fn mark_stale(&self, failed: &[usize], seq: u64) -> Result<()> {
        {
            let mut s = self.state.lock().expect("index set state");
            for &d in failed {
                s.current[d] = false;
                let since = s.stale_since[d].map_or(seq, |x| x.min(seq));
                s.stale_since[d] = Some(since);
            }
        }
        self.new_epoch().await
    }

    /// Record a new epoch (and every stale drive's since) on every current drive.
    fn epoch_batch(&self) -> (Batch, Vec<usize>) {
        let mut s = self.state.lock().expect("index set state");
        s.epoch += 1;
        let mut b = Batch::new();
        b.put(Table::State, EPOCH.to_vec(), &s.epoch.to_le_bytes());
        for (slot, since) in s.stale_since.iter().enumerate() {
            match since {
                Some(x) => b.put(Table::State, stale_key(slot), &x.to_le_bytes()),
                None => b.delete(Table::State, stale_key(slot)),
            };
        }
        let targets = (0..s.current.len()).filter(|d| s.current[*d]).collect();
        (b, targets)
    }

    /// Commit one batch on each of `targets` at once; each drive's outcome.
    async fn commit_on(&self, targets: &[usize], batch: &Batch) -> Vec<(usize, Result<()>)> {
        futures::future::join_all(targets.iter().map(|&d| {
            let ix = self.drives[d].clone().expect("current drives are open");
            let b = batch.clone();
            async move { (d, ix.commit(b).await) }
        }))
        .await
    }

    /// Record a new epoch on the current drives. One that fails it keeps its old epoch
    /// (a restart sees it as stale) and is stale from now on.
    async fn new_epoch(&self) -> Result<()> {
        let (b, targets) = self.epoch_batch();
        let results = self.commit_on(&targets, &b).await;
        let mut ok = 0;
        for (d, r) in results {
            match r {
                Ok(()) => ok += 1,
                Err(e) => {
                    tracing::warn!(drive = d, error = %e, "recording the epoch failed; the drive is stale");
                    let mut s = self.state.lock().expect("index set state");
                    s.current[d] = false;
                    s.stale_since[d] = Some(0);
                }
            }
        }
        if ok == 0 {
            return Err(Error::Drive("no drive took the metadata index's new epoch".into()));
        }
        Ok(())
    }

    /// Bring a stale drive up to date from a current one and make it current again.
    pub async fn catch_up(&self, slot: usize) -> Result<CatchUp> {
        let target = self.drives[slot]
            .clone()
            .ok_or_else(|| Error::Drive(format!("drive {slot} is offline")))?;
        let _one = self.catching_up[slot].lock().await;
        let Some(since) = self.state.lock().expect("index set state").stale_since[slot] else {
            return Ok(CatchUp::default());
        };
        let src = self.reader()?;
        let first_log = src
            .scan_prefix(Table::Log, &[], 1)?
            .first()
            .and_then(|(k, _)| k.as_slice().try_into().ok().map(u64::from_be_bytes));
        let mut report = CatchUp::default();
        let mut from = since;
        if since == 0 || first_log.is_none_or(|f| f > since) {
            report.full = true;
            // Everything up to now, then the log from the sequence this copy started at.
            from = self.next_seq.load(Ordering::SeqCst);
            report.keys += copy_all(&src, &target).await?;
        }
        // Passes while commits go on, then the last one with commits held.
        loop {
            let upto = self.next_seq.load(Ordering::SeqCst);
            report.keys += replay(&src, &target, from, upto).await?;
            from = upto;
            if self.next_seq.load(Ordering::SeqCst) - from < 64 {
                break;
            }
        }
        let _held = self.gate.write().await;
        let upto = self.next_seq.load(Ordering::SeqCst);
        report.keys += replay(&src, &target, from, upto).await?;
        {
            let mut s = self.state.lock().expect("index set state");
            s.current[slot] = true;
            s.stale_since[slot] = None;
        }
        self.new_epoch().await?;
        tracing::info!(drive = slot, keys = report.keys, full = report.full, "metadata index caught up");
        Ok(report)
    }
}

/// How far back from the newest commit `reconcile` compares the drives' logs: commits in
/// flight at a crash are within it (it is twice a drive's commit queue).
const RECONCILE_WINDOW: u64 = 2 * super::DEFAULT_COMMIT_QUEUE as u64;

/// Bring the drives of the newest epoch into agreement after an unclean stop. Commits in
/// flight when the process or the power stopped may have reached some drives and not
/// others (each drive keeps its own part of what was not yet durable), and none of them
/// was acknowledged; left so, reads would flip between two answers. Each drive lacking a
/// recent commit that another holds gets that commit's keys from it, so every drive
/// holds every commit any of them holds: the ones in flight become visible whole (as a
/// 5xx from S3 may have taken effect). Sound because concurrent commits touch different
/// keys (the store's key, upload and bucket locks). The number of keys copied.
async fn reconcile(drives: &[Option<Arc<Index>>], current: &[bool]) -> Result<u64> {
    let slots: Vec<usize> = (0..drives.len()).filter(|d| current[*d] && drives[*d].is_some()).collect();
    if slots.len() < 2 {
        return Ok(0);
    }
    let ix = |d: usize| drives[d].as_ref().expect("current drives are open");
    let mut last = 0;
    for &d in &slots {
        if let Some((k, _)) = ix(d).last(Table::Log)? {
            last = last.max(u64::from_be_bytes(k.as_slice().try_into().unwrap_or_default()));
        }
    }
    let from = last.saturating_sub(RECONCILE_WINDOW).to_be_bytes();
    let mut held: Vec<std::collections::BTreeSet<u64>> = Vec::with_capacity(slots.len());
    for &d in &slots {
        let mut seqs = std::collections::BTreeSet::new();
        ix(d).scan(Table::Log, Bound::Included(&from), Bound::Unbounded, |k, _| {
            if let Ok(b) = k.try_into() {
                seqs.insert(u64::from_be_bytes(b));
            }
            Ok(true)
        })?;
        held.push(seqs);
    }
    let mut copied = 0;
    for (i, &d) in slots.iter().enumerate() {
        let mut missing = std::collections::BTreeMap::new();
        for (j, seqs) in held.iter().enumerate() {
            for seq in seqs.difference(&held[i]) {
                missing.entry(*seq).or_insert(slots[j]);
            }
        }
        for (seq, src) in missing {
            tracing::warn!(
                drive = d,
                from_drive = src,
                seq,
                "metadata commit in flight at an unclean stop found on some drives only; copying it"
            );
            copied += replay(ix(src), ix(d), seq, seq + 1).await?;
        }
    }
    Ok(copied)
}

/// Copy the present value of everything the log records in `[from, upto)`.
async fn replay(src: &Index, target: &Index, from: u64, upto: u64) -> Result<u64> {
    if from >= upto {
        return Ok(0);
    }
    let mut touched_all = Vec::new();
    let (lo, hi) = (from.to_be_bytes(), upto.to_be_bytes());
    src.scan(Table::Log, Bound::Included(&lo), Bound::Excluded(&hi), |k, v| {
        let t = parse_touched(v).ok_or_else(|| Error::Corrupt {
            path: format!("log record {k:?}").into(),
            reason: "unreadable log record".into(),
        })?;
        touched_all.extend(t);
        Ok(true)
    })?;
    let mut n = 0;
    let mut b = Batch::new();
    // The log records itself too: its records come along, so the drive's log is whole.
    for seq in from..upto {
        let k = seq.to_be_bytes().to_vec();
        if let Some(v) = src.get(Table::Log, &k)? {
            b.put(Table::Log, k, &v);
        }
    }
    for t in touched_all {
        match t {
            Touched::Key(table, key) => {
                match src.get(table, &key)? {
                    Some(v) => b.put(table, key, &v),
                    None => b.delete(table, key),
                };
                n += 1;
            }
            Touched::Range(table, from, to) => {
                b.delete_range(table, from.clone(), to.clone());
                let mut copied = Vec::new();
                src.scan(table, Bound::Included(&from), Bound::Excluded(&to), |k, v| {
                    copied.push((k.to_vec(), v.to_vec()));
                    Ok(true)
                })?;
                for (k, v) in copied {
                    b.put(table, k, &v);
                    n += 1;
                }
            }
        }
        if b.len() >= COPY_BATCH {
            target.commit(std::mem::take(&mut b)).await?;
        }
    }
    target.commit(b).await?;
    Ok(n)
}

/// Replace everything on `target` with `src`'s tables, in batches.
async fn copy_all(src: &Index, target: &Index) -> Result<u64> {
    let mut n = 0;
    for table in Table::ALL {
        if table == Table::State {
            continue;
        }
        // Every key the index writes starts below 0xFF (bucket names and upload ids are
        // ASCII, log sequence numbers far below 2^56), so `[], [0xFF])` is the whole table.
        let mut clear = Batch::new();
        clear.delete_range(table, Vec::new(), vec![0xFF]);
        target.commit(clear).await?;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let mut chunk = Vec::with_capacity(COPY_BATCH);
            let lower = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            src.scan(table, lower, Bound::Unbounded, |k, v| {
                chunk.push((k.to_vec(), v.to_vec()));
                Ok(chunk.len() < COPY_BATCH)
            })?;
            let Some((last, _)) = chunk.last() else { break };
            after = Some(last.clone());
            let mut b = Batch::new();
            for (k, v) in chunk {
                b.put(table, k, &v);
                n += 1;
            }
            target.commit(b).await?;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
