//! The index's own tests: sealed values, group commit, and durability under simulated
//! power loss (a storage backend that forgets every write not yet synced).

use super::*;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Whether the power has failed, shared by the disks of one machine: after `ops_left`
/// more operations (writes, syncs, resizes) on any of them, every one fails.
#[derive(Debug, Default)]
struct Power {
    ops_left: Option<u64>,
    dead: bool,
}

/// A disk with a volatile cache: reads see every write, a crash keeps only what was
/// synced plus an arbitrary subset of the writes since (the device may have persisted
/// some of them, in any order).
#[derive(Debug, Default)]
struct Disk {
    synced: Vec<u8>,
    cache: Vec<u8>,
    unsynced: Vec<(u64, Vec<u8>)>,
    unsynced_len: Option<u64>,
    power: Arc<Mutex<Power>>,
}

#[derive(Debug, Clone, Default)]
struct PowerLoss(Arc<Mutex<Disk>>);

impl PowerLoss {
    fn from_image(image: Vec<u8>, power: &Arc<Mutex<Power>>) -> Self {
        Self(Arc::new(Mutex::new(Disk {
            synced: image.clone(),
            cache: image,
            power: power.clone(),
            ..Default::default()
        })))
    }

    /// The image a restart finds: the synced bytes plus the unsynced writes `keep` picks.
    fn crash_image(&self, mut keep: impl FnMut() -> bool) -> Vec<u8> {
        let d = self.0.lock().unwrap();
        let mut img = d.synced.clone();
        if let Some(len) = d.unsynced_len
            && keep()
        {
            img.resize(len as usize, 0);
        }
        for (at, bytes) in &d.unsynced {
            if keep() {
                let end = *at as usize + bytes.len();
                if img.len() < end {
                    img.resize(end, 0);
                }
                img[*at as usize..end].copy_from_slice(bytes);
            }
        }
        img
    }

    fn tick(d: &mut Disk) -> std::io::Result<()> {
        let mut p = d.power.lock().unwrap();
        if p.dead {
            return Err(std::io::Error::other("power lost"));
        }
        if let Some(n) = p.ops_left.as_mut() {
            if *n == 0 {
                p.dead = true;
                return Err(std::io::Error::other("power lost"));
            }
            *n -= 1;
        }
        Ok(())
    }
}

/// The log is a file that grows by writing past its end.
impl wal::LogFile for PowerLoss {
    fn size(&self) -> std::io::Result<u64> {
        redb::StorageBackend::len(self)
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        redb::StorageBackend::read(self, offset, out)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let end = offset + data.len() as u64;
        if end > redb::StorageBackend::len(self)? {
            redb::StorageBackend::set_len(self, end)?;
        }
        redb::StorageBackend::write(self, offset, data)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        redb::StorageBackend::sync_data(self)
    }
}

impl redb::StorageBackend for PowerLoss {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.0.lock().unwrap().cache.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let d = self.0.lock().unwrap();
        let src = d
            .cache
            .get(offset as usize..offset as usize + out.len())
            .ok_or_else(|| std::io::Error::other("read past the end"))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let mut d = self.0.lock().unwrap();
        Self::tick(&mut d)?;
        d.cache.resize(len as usize, 0);
        d.unsynced_len = Some(len);
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        let mut d = self.0.lock().unwrap();
        Self::tick(&mut d)?;
        d.synced = d.cache.clone();
        d.unsynced.clear();
        d.unsynced_len = None;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut d = self.0.lock().unwrap();
        Self::tick(&mut d)?;
        let end = offset as usize + data.len();
        if d.cache.len() < end {
            return Err(std::io::Error::other("write past the end"));
        }
        d.cache[offset as usize..end].copy_from_slice(data);
        d.unsynced.push((offset, data.to_vec()));
        Ok(())
    }
}

/// A machine's two files: the database and its log.
#[derive(Clone, Default)]
struct Machine {
    db: PowerLoss,
    log: PowerLoss,
    power: Arc<Mutex<Power>>,
}

impl Machine {
    fn new() -> Self {
        let power = Arc::new(Mutex::new(Power::default()));
        Self {
            db: PowerLoss::from_image(Vec::new(), &power),
            log: PowerLoss::from_image(Vec::new(), &power),
            power,
        }
    }

    fn from_images(db: Vec<u8>, log: Vec<u8>) -> Self {
        let power = Arc::new(Mutex::new(Power::default()));
        Self {
            db: PowerLoss::from_image(db, &power),
            log: PowerLoss::from_image(log, &power),
            power,
        }
    }
}

fn index_on(m: &Machine) -> Result<Index> {
    index_checkpointing(m, wal::CHECKPOINT_BYTES)
}

fn index_checkpointing(m: &Machine, checkpoint_bytes: u64) -> Result<Index> {
    let engine = Redb::with_backend(m.db.clone(), m.log.clone(), "mem", 1 << 20)?.with_checkpoint_bytes(checkpoint_bytes);
    Index::new(Arc::new(engine), "mem".into(), 64)
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

/// A pseudo-random batch over a small key space (so later batches overwrite and delete).
/// What a batch does to each key: a new value, or removal.
type Effects = Vec<(Vec<u8>, Option<Vec<u8>>)>;

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

fn apply(model: &mut BTreeMap<Vec<u8>, Vec<u8>>, effects: &Effects) {
    for (k, v) in effects {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
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
            let mut r = crash_at ^ (trial << 32) | 1;
            let mut keep = || {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                r % 2 == 0
            };
            let db = machine.db.crash_image(&mut keep);
            let log = machine.log.crash_image(&mut keep);
            let ix = index_on(&Machine::from_images(db, log)).expect("a crashed index reopens");
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
        let ix = index_on(&Machine::from_images(bad, Vec::new())).unwrap();
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
