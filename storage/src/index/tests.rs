//! The index's own tests: sealed values, group commit, and durability under simulated
//! power loss (a storage backend that forgets every write not yet synced).

use super::sim::{Effects, Machine, apply_effects as apply};
use super::*;
use std::collections::BTreeMap;

fn index_on(m: &Machine) -> Result<Index> {
    index_checkpointing(m, wal::CHECKPOINT_BYTES)
}

fn index_checkpointing(m: &Machine, checkpoint_bytes: u64) -> Result<Index> {
    m.index(checkpoint_bytes)
}

fn state(ix: &Index) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    ix.scan(Table::Versions, Bound::Unbounded, Bound::Unbounded, |k, v| {
        out.insert(k.to_vec(), v.to_vec());
        Ok(true)
    })
    .unwrap();
    out
}

/// A pseudo-random batch over a small key space (so later batches overwrite and delete),
/// and what it does to each key.
fn batch(seed: u64) -> (Batch, Effects) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut b = Batch::new();
    let mut effects = Vec::new();
    for _ in 0..1 + next() % 8 {
        let key = format!("k{:03}", next() % 200).into_bytes();
        if next() % 4 == 0 {
            b.delete(Table::Versions, key.clone());
            effects.push((key, None));
        } else {
            let value = vec![(next() % 251) as u8; (next() % 3000) as usize];
            b.put(Table::Versions, key.clone(), &value);
            effects.push((key, Some(value)));
        }
    }
    (b, effects)
}

/// Power fails at the n-th disk operation, for many n; at restart every acknowledged
/// commit is there, and the one in flight is there whole or not at all. The device keeps a
/// random subset of the writes that were not synced.
#[test]
fn acknowledged_commits_survive_power_loss() {
    power_loss_at_many_points(wal::CHECKPOINT_BYTES);
}

/// The same with a checkpoint every few commits: the power also fails inside durable redb
/// commits, and after the log has started over on top of older records.
#[test]
fn acknowledged_commits_survive_power_loss_across_checkpoints() {
    power_loss_at_many_points(20_000);
}

fn power_loss_at_many_points(checkpoint_bytes: u64) {
    let mut crash_points = 0;
    for crash_at in (1..400).step_by(7) {
        let machine = Machine::new();
        let ix = index_checkpointing(&machine, checkpoint_bytes).unwrap();
        // The index exists and is synced before the power may fail.
        machine.power.lock().unwrap().ops_left = Some(crash_at);
        let mut model = BTreeMap::new();
        let mut in_flight = None;
        for i in 0..200u64 {
            let (b, effects) = batch(crash_at * 1000 + i);
            match ix.commit_blocking(b) {
                Ok(()) => apply(&mut model, &effects),
                Err(_) => {
                    in_flight = Some(effects);
                    break;
                }
            }
        }
        drop(ix);
        if in_flight.is_some() {
            crash_points += 1;
        }
        for trial in 0..3u64 {
            let ix = index_on(&machine.crashed(crash_at ^ (trial << 32))).expect("a crashed index reopens");
            let got = state(&ix);
            let mut with = model.clone();
            if let Some(e) = &in_flight {
                apply(&mut with, e);
            }
            assert!(
                got == model || got == with,
                "crash at op {crash_at}, trial {trial}: {} keys, expected {} (or {} with the commit in flight)",
                got.len(),
                model.len(),
                with.len()
            );
        }
    }
    assert!(crash_points > 20, "the power failed mid-commit only {crash_points} times");
}

#[test]
fn a_flipped_byte_is_an_error_never_data() {
    let machine = Machine::new();
    let ix = index_on(&machine).unwrap();
    let mut b = Batch::new();
    let value = b"the metadata of one version, long enough to find".to_vec();
    b.put(Table::Versions, b"key".to_vec(), &value);
    ix.commit_blocking(b).unwrap();
    assert_eq!(ix.get(Table::Versions, b"key").unwrap().as_deref(), Some(&value[..]));
    drop(ix);
    // Closing checkpointed the value into the database file.
    let image = machine.db.0.lock().unwrap().synced.clone();
    let at = image.windows(value.len()).position(|w| w == value).expect("value on disk");
    for flip in [at, at + value.len() - 1, at + value.len() + 2] {
        let mut bad = image.clone();
        bad[flip] ^= 0x10;
        let ix = index_on(&Machine::from_images(bad, Vec::new(), Vec::new())).unwrap();
        match ix.get(Table::Versions, b"key") {
            Err(Error::Corrupt { .. }) => {}
            other => panic!("flip at {flip} read as {other:?}"),
        }
        let scanned = ix.scan(Table::Versions, Bound::Unbounded, Bound::Unbounded, |_, _| Ok(true));
        assert!(matches!(scanned, Err(Error::Corrupt { .. })));
    }
}

#[test]
fn a_value_under_another_key_or_table_is_corrupt() {
    let v = seal(Table::Versions, b"a", b"payload");
    assert_eq!(unseal(std::path::Path::new("x"), Table::Versions, b"a", &v).unwrap(), b"payload");
    assert!(unseal(std::path::Path::new("x"), Table::Versions, b"b", &v).is_err());
    assert!(unseal(std::path::Path::new("x"), Table::Current, b"a", &v).is_err());
    assert!(unseal(std::path::Path::new("x"), Table::Current, b"a", b"ab").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Arc::new(Index::open_redb(dir.path().join("index.redb"), 1 << 20, 1024).unwrap());
    let before = ix.groups_committed();
    let tasks: Vec<_> = (0..256u32)
        .map(|i| {
            let ix = ix.clone();
            tokio::spawn(async move {
                let mut b = Batch::new();
                b.put(Table::Current, format!("b\0k{i:04}").into_bytes(), &i.to_le_bytes());
                ix.commit(b).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let groups = ix.groups_committed() - before;
    assert!(groups < 256, "{groups} transactions for 256 concurrent commits");
    let all = ix.scan_prefix(Table::Current, b"b\0", usize::MAX).unwrap();
    assert_eq!(all.len(), 256);
    assert_eq!(all[7], (b"b\0k0007".to_vec(), 7u32.to_le_bytes().to_vec()));
    // A range delete takes exactly its range.
    let mut b = Batch::new();
    b.delete_range(Table::Current, b"b\0k0010".to_vec(), b"b\0k0020".to_vec());
    ix.commit(b).await.unwrap();
    assert_eq!(ix.scan_prefix(Table::Current, b"b\0", usize::MAX).unwrap().len(), 246);
    assert!(ix.get(Table::Current, b"b\0k0020").unwrap().is_some());
    assert!(ix.get(Table::Current, b"b\0k0019").unwrap().is_none());
}

/// A group takes what is waiting up to its byte bound; a batch past it starts the next
/// group, and nothing is lost or reordered.
#[test]
fn groups_are_bounded_in_bytes() {
    let (tx, mut rx) = mpsc::channel(64);
    let mut answers = Vec::new();
    for i in 0..20u8 {
        let mut b = Batch::new();
        b.put(Table::Inline, vec![i], &vec![i; 1 << 20]);
        let (done, wait) = oneshot::channel();
        tx.try_send(Pending { batch: b, done }).unwrap();
        answers.push(wait);
    }
    drop(tx);
    let (mut carried, mut group, mut sizes, mut order) = (None, Vec::new(), Vec::new(), Vec::new());
    while next_group(&mut rx, &mut carried, &mut group) {
        assert!(group.iter().map(|p| p.batch.bytes()).sum::<usize>() <= MAX_GROUP_BYTES);
        sizes.push(group.len());
        order.extend(group.drain(..).map(|p| match &p.batch.ops()[0] {
            Op::Put(_, k, _) => k[0],
            other => panic!("{other:?}"),
        }));
    }
    assert_eq!(order, (0..20).collect::<Vec<u8>>());
    assert_eq!(sizes, vec![7, 7, 6], "1 MiB + 5 B batches under an 8 MiB bound");
}

/// A database disk whose flushes by the checkpoint thread take `delay` longer: a slow
/// checkpoint, during which commits go on. (Not a flush held until the test says so: a
/// checkpoint that grows the file flushes with a redb lock held that readers need.)
#[derive(Debug, Clone)]
struct SlowFlush {
    disk: super::sim::PowerLoss,
    delay: std::time::Duration,
}

impl redb::StorageBackend for SlowFlush {
    fn len(&self) -> std::io::Result<u64> {
        redb::StorageBackend::len(&self.disk)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        redb::StorageBackend::read(&self.disk, offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        redb::StorageBackend::set_len(&self.disk, len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        if std::thread::current().name() == Some("quarry-index-checkpoint") {
            std::thread::sleep(self.delay);
        }
        redb::StorageBackend::sync_data(&self.disk)
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        redb::StorageBackend::write(&self.disk, offset, data)
    }
}

/// While a checkpoint runs, commits go on (into the overlay, until its bound makes the
/// committer wait) and every read (get, scan of any range, last) answers as if they were
/// in redb; and after a crash, every commit is there.
#[test]
fn reads_during_a_checkpoint_see_every_commit() {
    let machine = Machine::new();
    let db = SlowFlush {
        disk: machine.db.clone(),
        delay: std::time::Duration::from_millis(15),
    };
    let logs: [Box<dyn wal::LogFile>; 2] = [Box::new(machine.log.clone()), Box::new(machine.log2.clone())];
    let engine = Redb::with_backend(db, logs, "mem", 1 << 20).unwrap().with_checkpoint_bytes(4_000);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let t = Table::Versions;
    let check = |engine: &Redb, model: &BTreeMap<Vec<u8>, Vec<u8>>| {
        let mut all = Vec::new();
        engine
            .scan(t, Bound::Unbounded, Bound::Unbounded, &mut |k, v| {
                all.push((k.to_vec(), v.to_vec()));
                true
            })
            .unwrap();
        assert_eq!(all, model.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>());
        let (lo, hi) = (b"k040".as_slice(), b"k120".as_slice());
        let mut part = Vec::new();
        engine
            .scan(t, Bound::Excluded(lo), Bound::Included(hi), &mut |k, _| {
                part.push(k.to_vec());
                part.len() < 30
            })
            .unwrap();
        let want: Vec<Vec<u8>> = model
            .range::<[u8], _>((Bound::Excluded(lo), Bound::Included(hi)))
            .take(30)
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(part, want);
        for i in (0..200).step_by(7) {
            let k = format!("k{i:03}").into_bytes();
            assert_eq!(engine.get(t, &k).unwrap().as_ref(), model.get(&k));
        }
        assert_eq!(
            engine.last(t).unwrap(),
            model.iter().next_back().map(|(k, v)| (k.clone(), v.clone()))
        );
    };
    let mut x = 7u64;
    let mut step = |engine: &Redb, model: &mut BTreeMap<Vec<u8>, Vec<u8>>| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = format!("k{:03}", x % 200).into_bytes();
        let op = match x % 10 {
            0 => {
                let to = format!("k{:03}", x % 200 + x % 17).into_bytes();
                let doomed: Vec<_> = model.range(k.clone()..to.clone()).map(|(k, _)| k.clone()).collect();
                for d in doomed {
                    model.remove(&d);
                }
                Op::DeleteRange(t, k, to)
            }
            1..=3 => {
                model.remove(&k);
                Op::Delete(t, k)
            }
            _ => {
                let v = vec![(x % 251) as u8; (x % 300) as usize];
                model.insert(k.clone(), v.clone());
                Op::Put(t, k, v)
            }
        };
        engine.commit(&[&[op]]).unwrap();
    };
    let mut during = 0;
    for _ in 0..700 {
        step(&engine, &mut model);
        if engine.overlay_bytes().is_some() {
            during += 1;
        }
        check(&engine, &model);
    }
    assert!(during > 100, "only {during} commits while a checkpoint ran");
    // A crash (the unflushed writes lost or kept at random) loses none of it.
    for seed in 0..4 {
        let m = machine.crashed(seed);
        let logs: [Box<dyn wal::LogFile>; 2] = [Box::new(m.log.clone()), Box::new(m.log2.clone())];
        let again = Redb::with_backend(m.db.clone(), logs, "mem", 1 << 20).unwrap();
        check(&again, &model);
    }
}
