//! Fault injection for the set layer: drives whose commits fail, restarts, catch-up.

use super::*;
use crate::index::{Engine, EngineError, Redb};
use std::sync::atomic::AtomicBool;

/// A redb engine whose commits fail while `fail` is set (a full or failing drive).
#[derive(Debug)]
struct Flaky {
    inner: Redb,
    fail: Arc<AtomicBool>,
}

impl Engine for Flaky {
    fn get(&self, t: Table, k: &[u8]) -> super::super::engine::EngineResult<Option<Vec<u8>>> {
        self.inner.get(t, k)
    }
    fn scan(
        &self,
        t: Table,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> super::super::engine::EngineResult<()> {
        self.inner.scan(t, from, to, visit)
    }
    fn last(&self, t: Table) -> super::super::engine::EngineResult<Option<(Vec<u8>, Vec<u8>)>> {
        self.inner.last(t)
    }
    fn commit(&self, batches: &[&[Op]]) -> super::super::engine::EngineResult<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(EngineError {
                path: "flaky".into(),
                source: Box::new(std::io::Error::other("no space left on device")),
            });
        }
        self.inner.commit(batches)
    }
}

struct Drives {
    dir: tempfile::TempDir,
    fail: Vec<Arc<AtomicBool>>,
}

impl Drives {
    fn new(n: usize) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            fail: (0..n).map(|_| Arc::new(AtomicBool::new(false))).collect(),
        }
    }

    fn open(&self, offline: &[usize]) -> Vec<Option<Index>> {
        (0..self.fail.len())
            .map(|d| {
                if offline.contains(&d) {
                    return None;
                }
                let path = self.dir.path().join(format!("d{d}.redb"));
                let engine = Flaky {
                    inner: Redb::open(&path, 1 << 20).unwrap(),
                    fail: self.fail[d].clone(),
                };
                Some(Index::new(Arc::new(engine), path, 64).unwrap())
            })
            .collect()
    }
}

fn put(i: u64) -> Batch {
    let mut b = Batch::new();
    b.put(Table::Current, format!("b\0k{:04}", i % 300).into_bytes(), &i.to_le_bytes());
    if i.is_multiple_of(7) {
        b.delete(Table::Current, format!("b\0k{:04}", (i * 13) % 300).into_bytes());
    }
    b
}

fn dump(ix: &Index, table: Table) -> Vec<(Vec<u8>, Vec<u8>)> {
    ix.scan_prefix(table, &[], usize::MAX).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drive_that_missed_commits_is_never_read_and_catches_up_with_what_it_missed() {
    let drives = Drives::new(4);
    let set = IndexSet::open(drives.open(&[]), 3, DEFAULT_LOG_KEEP).await.unwrap();
    for i in 0..500 {
        set.commit(put(i)).await.unwrap();
    }
    drives.fail[2].store(true, Ordering::SeqCst);
    for i in 500..600 {
        set.commit(put(i)).await.unwrap();
    }
    assert_eq!(set.current(), vec![0, 1, 3]);
    assert_eq!(set.stale(), vec![2]);
    // Reads only ever come from a current drive, which has every commit.
    let want = dump(&set.reader().unwrap(), Table::Current);
    for _ in 0..8 {
        assert_eq!(dump(&set.reader().unwrap(), Table::Current), want);
    }
    assert_ne!(
        dump(set.drives[2].as_ref().unwrap(), Table::Current),
        want,
        "drive 2 missed nothing?"
    );
    // One more failure makes the quorum of 3 impossible: refused.
    drives.fail[3].store(true, Ordering::SeqCst);
    assert!(matches!(set.commit(put(600)).await, Err(Error::Quorum { .. })));
    drives.fail[3].store(false, Ordering::SeqCst);
    drives.fail[2].store(false, Ordering::SeqCst);
    // Drive 3 went stale at commit 600, drive 2 at 500: each copies what it missed only.
    let r3 = set.catch_up(3).await.unwrap();
    assert!(!r3.full && r3.keys <= 4, "{r3:?}");
    let r2 = set.catch_up(2).await.unwrap();
    assert!(!r2.full && r2.keys < 200, "{r2:?}");
    assert_eq!(set.current(), vec![0, 1, 2, 3]);
    let d = set
        .drives
        .iter()
        .map(|d| dump(d.as_ref().unwrap(), Table::Current))
        .collect::<Vec<_>>();
    assert!(d.iter().all(|x| *x == d[0]), "drives differ after catch-up");
    assert!(d[0].len() > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_knows_which_drives_are_stale() {
    let drives = Drives::new(4);
    {
        let set = IndexSet::open(drives.open(&[]), 3, DEFAULT_LOG_KEEP).await.unwrap();
        for i in 0..100 {
            set.commit(put(i)).await.unwrap();
        }
        drives.fail[1].store(true, Ordering::SeqCst);
        for i in 100..150 {
            set.commit(put(i)).await.unwrap();
        }
    }
    drives.fail[1].store(false, Ordering::SeqCst);
    // Drive 1 holds an older epoch: stale at open, since the 101st commit (sequence
    // numbers start at 1).
    let set = IndexSet::open(drives.open(&[]), 3, DEFAULT_LOG_KEEP).await.unwrap();
    assert_eq!(set.stale(), vec![1]);
    assert_eq!(set.state.lock().unwrap().stale_since[1], Some(101));
    let r = set.catch_up(1).await.unwrap();
    assert!(!r.full, "{r:?}");
    // New commits continue numbering after the old ones.
    let seq = set.commit(put(150)).await.unwrap();
    assert!(seq > 150, "{seq}");
    let a = dump(set.drives[0].as_ref().unwrap(), Table::Current);
    assert_eq!(dump(set.drives[1].as_ref().unwrap(), Table::Current), a);
    // A drive offline at one start and back at the next is stale then, and its peers
    // know since when: it catches up too.
    drop(set);
    let set = IndexSet::open(drives.open(&[3]), 3, DEFAULT_LOG_KEEP).await.unwrap();
    set.commit(put(151)).await.unwrap();
    drop(set);
    let set = IndexSet::open(drives.open(&[]), 3, DEFAULT_LOG_KEEP).await.unwrap();
    assert_eq!(set.stale(), vec![3]);
    set.catch_up(3).await.unwrap();
    let a = dump(set.drives[0].as_ref().unwrap(), Table::Current);
    assert_eq!(dump(set.drives[3].as_ref().unwrap(), Table::Current), a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_log_a_drive_is_copied_whole() {
    let drives = Drives::new(3);
    // Keep only 10 log records besides what stale drives need.
    let set = IndexSet::open(drives.open(&[]), 2, 10).await.unwrap();
    for i in 0..1100 {
        set.commit(put(i)).await.unwrap();
    }
    // A replaced drive: empty, and no record of when it went stale.
    drop(set);
    std::fs::remove_file(drives.dir.path().join("d1.redb")).unwrap();
    let set = IndexSet::open(drives.open(&[]), 2, 10).await.unwrap();
    assert_eq!(set.stale(), vec![1]);
    let r = set.catch_up(1).await.unwrap();
    assert!(r.full, "{r:?}");
    let a = dump(set.drives[0].as_ref().unwrap(), Table::Current);
    assert_eq!(dump(set.drives[1].as_ref().unwrap(), Table::Current), a);
    // The log was trimmed at commit 1024 to the last 10 records.
    let log = dump(set.drives[0].as_ref().unwrap(), Table::Log);
    assert!(log.len() < 200, "{} log records kept", log.len());
}

#[test]
fn touched_records_round_trip() {
    let mut b = Batch::new();
    b.put(Table::Versions, b"a\0b".to_vec(), b"v");
    b.delete(Table::Inline, b"c".to_vec());
    b.delete_range(Table::Parts, b"u\0".to_vec(), b"u\x01".to_vec());
    let t = parse_touched(&touched(b.ops())).unwrap();
    assert!(matches!(&t[0], Touched::Key(Table::Versions, k) if k == b"a\0b"));
    assert!(matches!(&t[1], Touched::Key(Table::Inline, k) if k == b"c"));
    assert!(matches!(&t[2], Touched::Range(Table::Parts, f, e) if f == b"u\0" && e == b"u\x01"));
    assert!(parse_touched(&[9, 0, 1]).is_none());
}

/// The power fails under concurrent writers on a 4-drive machine; each drive keeps its own
/// subset of what was not synced, so the commits in flight may be on some drives and not
/// on others. At restart every drive that serves agrees with the others (reads never
/// flip between two answers), every acknowledged commit is there, and each one in flight
/// is there whole or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_agree_after_power_loss_under_concurrent_writers() {
    use crate::index::sim::{Effects, Machine, Power, apply_effects as apply, crash_all, fail_after};
    const WRITERS: u64 = 12;
    type Model = std::collections::BTreeMap<Vec<u8>, Vec<u8>>;
    // Writer w owns its keys (as the store's key locks make concurrent commits touch
    // different keys); batch n of writer w.
    fn batch(w: u64, n: u64) -> (Batch, Effects) {
        let key = |i: u64| format!("b\0w{w:02}k{:02}", i % 10).into_bytes();
        let mut b = Batch::new();
        let v = (w * 1000 + n).to_le_bytes().to_vec();
        b.put(Table::Current, key(n), &v);
        let mut e = vec![(key(n), Some(v))];
        if n % 3 == 2 {
            b.delete(Table::Current, key(n * 7 + 1));
            e.push((key(n * 7 + 1), None));
        }
        (b, e)
    }
    let mut diverged = 0;
    for crash_at in (150..2400).step_by(150) {
        let power = Arc::new(std::sync::Mutex::new(Power::default()));
        let machines: Vec<Machine> = (0..4).map(|_| Machine::on(&power)).collect();
        let open = |ms: &[Machine]| ms.iter().map(|m| Some(m.index(20_000).unwrap())).collect::<Vec<_>>();
        let set = Arc::new(IndexSet::open(open(&machines), 3, DEFAULT_LOG_KEEP).await.unwrap());
        fail_after(&power, crash_at);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let set = set.clone();
                tokio::spawn(async move {
                    let (mut acked, mut in_flight) = (Model::new(), None);
                    for n in 0..1_000 {
                        let (b, e) = batch(w, n);
                        match set.commit(b).await {
                            Ok(_) => apply(&mut acked, &e),
                            Err(_) => {
                                in_flight = Some(e);
                                break;
                            }
                        }
                    }
                    (acked, in_flight)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for w in writers {
            outcomes.push(w.await.unwrap());
        }
        drop(set);
        for trial in 0..3u64 {
            let drives = open(&crash_all(&machines, crash_at * 131 + trial * 17));
            let before: Vec<_> = drives.iter().map(|d| dump(d.as_ref().unwrap(), Table::Current)).collect();
            if before.iter().any(|x| *x != before[0]) {
                diverged += 1;
            }
            let set = IndexSet::open(drives, 3, DEFAULT_LOG_KEEP).await.unwrap();
            for d in set.stale() {
                set.catch_up(d).await.unwrap();
            }
            let dumps: Vec<_> = set.drives.iter().map(|d| dump(d.as_ref().unwrap(), Table::Current)).collect();
            assert!(
                dumps.iter().all(|x| *x == dumps[0]),
                "crash at {crash_at}, trial {trial}: drives disagree after open"
            );
            let got: Model = dumps[0].iter().cloned().collect();
            for (w, (acked, in_flight)) in outcomes.iter().enumerate() {
                let prefix = format!("b\0w{w:02}").into_bytes();
                let mine: Model = got
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut with = acked.clone();
                if let Some(e) = in_flight {
                    apply(&mut with, e);
                }
                assert!(
                    mine == *acked || mine == with,
                    "crash at {crash_at}, trial {trial}, writer {w}: {} keys, acknowledged {}",
                    mine.len(),
                    acked.len()
                );
            }
            // The set takes commits again, and its drives still agree.
            set.commit(batch(99, 0).0).await.unwrap();
        }
    }
    assert!(
        diverged > 3,
        "the drives diverged at a crash only {diverged} times: the test proves little"
    );
}
