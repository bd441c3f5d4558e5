//! A simulated machine for power-loss tests: disks with a volatile write cache that, at a
//! crash, keep only what was synced plus an arbitrary subset of the writes since. The
//! index's own tests, the set's and the store's drive the real engine over it.

use super::wal;
use std::sync::{Arc, Mutex};

/// Whether the power has failed, shared by the disks of one machine: after `ops_left`
/// more operations (writes, syncs, resizes) on any of them, every one fails.
#[derive(Debug, Default)]
pub(crate) struct Power {
    pub(crate) ops_left: Option<u64>,
    dead: bool,
}

/// A disk with a volatile cache: reads see every write, a crash keeps only what was
/// synced plus an arbitrary subset of the writes since (the device may have persisted
/// some of them, in any order).
#[derive(Debug, Default)]
pub(crate) struct Disk {
    pub(crate) synced: Vec<u8>,
    cache: Vec<u8>,
    unsynced: Vec<(u64, Vec<u8>)>,
    unsynced_len: Option<u64>,
    power: Arc<Mutex<Power>>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct PowerLoss(pub(crate) Arc<Mutex<Disk>>);

impl PowerLoss {
    pub(crate) fn from_image(image: Vec<u8>, power: &Arc<Mutex<Power>>) -> Self {
        Self(Arc::new(Mutex::new(Disk {
            synced: image.clone(),
            cache: image,
            power: power.clone(),
            ..Default::default()
        })))
    }

    /// The image a restart finds: the synced bytes plus the unsynced writes `keep` picks.
    pub(crate) fn crash_image(&self, mut keep: impl FnMut() -> bool) -> Vec<u8> {
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

/// One drive's index files, the database and its two logs, on a machine's power.
#[derive(Clone, Default)]
pub(crate) struct Machine {
    pub(crate) db: PowerLoss,
    pub(crate) log: PowerLoss,
    pub(crate) log2: PowerLoss,
    pub(crate) power: Arc<Mutex<Power>>,
}

impl Machine {
    pub(crate) fn new() -> Self {
        Self::on(&Arc::new(Mutex::new(Power::default())))
    }

    /// An empty drive on `power` (the drives of one machine fail together).
    pub(crate) fn on(power: &Arc<Mutex<Power>>) -> Self {
        Self {
            db: PowerLoss::from_image(Vec::new(), power),
            log: PowerLoss::from_image(Vec::new(), power),
            log2: PowerLoss::from_image(Vec::new(), power),
            power: power.clone(),
        }
    }

    pub(crate) fn from_images(db: Vec<u8>, log: Vec<u8>, log2: Vec<u8>) -> Self {
        let power = Arc::new(Mutex::new(Power::default()));
        Self {
            db: PowerLoss::from_image(db, &power),
            log: PowerLoss::from_image(log, &power),
            log2: PowerLoss::from_image(log2, &power),
            power,
        }
    }

    /// The drive a restart after a power failure finds: what was synced, plus the
    /// unsynced writes a pseudo-random sequence from `seed` keeps.
    pub(crate) fn crashed(&self, seed: u64) -> Self {
        let mut r = seed | 1;
        let mut keep = || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r.is_multiple_of(2)
        };
        let db = self.db.crash_image(&mut keep);
        let log = self.log.crash_image(&mut keep);
        let log2 = self.log2.crash_image(&mut keep);
        Self::from_images(db, log, log2)
    }

    /// The real index over this drive, checkpointing every `checkpoint_bytes` of log.
    pub(crate) fn index(&self, checkpoint_bytes: u64) -> crate::error::Result<super::Index> {
        let engine = super::Redb::with_backend(
            self.db.clone(),
            [Box::new(self.log.clone()), Box::new(self.log2.clone())],
            "mem",
            1 << 20,
        )?
        .with_checkpoint_bytes(checkpoint_bytes);
        super::Index::new(Arc::new(engine), "mem".into(), 64)
    }
}

/// Every drive of a machine as a restart after its power failed finds them, each keeping
/// its own part of what was not synced (`seed` and the drive's slot pick it).
pub(crate) fn crash_all(machines: &[Machine], seed: u64) -> Vec<Machine> {
    machines.iter().enumerate().map(|(d, m)| m.crashed(seed + d as u64)).collect()
}

/// What a test's batch did to each key: a new value, or removal.
pub(crate) type Effects = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Apply a batch's effects to a test's model of a table.
pub(crate) fn apply_effects(model: &mut std::collections::BTreeMap<Vec<u8>, Vec<u8>>, effects: &[(Vec<u8>, Option<Vec<u8>>)]) {
    for (k, v) in effects {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

/// Make every disk on `power` fail after `ops` more operations.
pub(crate) fn fail_after(power: &Arc<Mutex<Power>>, ops: u64) {
    power.lock().expect("power").ops_left = Some(ops);
}
