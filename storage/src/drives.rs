//! The drive set of the coming multi-drive engine: naming drives on the command line
//! (`/mnt/disk{1...4}`, as MinIO users write them) and checking each drive's format record
//! so that a drive swapped into the wrong slot, or a directory from another deployment, is
//! refused with a clear message. Pure functions; not yet wired into the server.

use serde::{Deserialize, Serialize};

/// A problem with the drive list or the drives' format records.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DriveError {
    #[error("malformed ellipsis in {0:?}: expected {{A...B}} with A <= B")]
    Ellipsis(String),
    #[error("{0} drives given; an erasure set has 1 to 16")]
    Count(usize),
    #[error("drive {0} is listed twice")]
    Duplicate(String),
    #[error("drive {slot} belongs to deployment {found}, not {expected}")]
    ForeignDrive { slot: usize, found: String, expected: String },
    #[error("drive {slot} is drive {belongs} of this set: drives were swapped or reordered")]
    WrongSlot { slot: usize, belongs: usize },
    #[error("drive {slot} holds a different set layout than drive {other}")]
    LayoutMismatch { slot: usize, other: usize },
}

/// Expand every `{A...B}` in `arg` (zero-padding kept when A is written with leading zeros);
/// several ellipses expand as a product, left to right.
pub fn expand(arg: &str) -> Result<Vec<String>, DriveError> {
    let Some(open) = arg.find('{') else {
        return Ok(vec![arg.to_owned()]);
    };
    let bad = || DriveError::Ellipsis(arg.to_owned());
    let close = arg[open..].find('}').map(|c| open + c).ok_or_else(bad)?;
    let (a, b) = arg[open + 1..close].split_once("...").ok_or_else(bad)?;
    let (lo, hi): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if lo > hi || hi - lo > 1024 {
        return Err(bad());
    }
    let width = if a.starts_with('0') && a.len() > 1 { a.len() } else { 0 };
    let mut out = Vec::new();
    for n in lo..=hi {
        let head = format!("{}{n:0width$}", &arg[..open]);
        for tail in expand(&arg[close + 1..])? {
            out.push(format!("{head}{tail}"));
        }
    }
    Ok(out)
}

/// Expand all drive arguments and check the set's size and uniqueness.
pub fn expand_all(args: &[String]) -> Result<Vec<String>, DriveError> {
    let mut all = Vec::new();
    for a in args {
        for d in expand(a)? {
            if all.contains(&d) {
                return Err(DriveError::Duplicate(d));
            }
            all.push(d);
        }
    }
    if !(1..=16).contains(&all.len()) {
        return Err(DriveError::Count(all.len()));
    }
    Ok(all)
}

/// Version of the drive format this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;

/// The format record each drive of a set carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveFormat {
    pub version: u32,
    pub deployment_id: String,
    /// Every drive's id, in set order.
    pub drives: Vec<String>,
    /// This drive's position in `drives`.
    pub index: usize,
    pub data: usize,
    pub parity: usize,
}

/// What a start-up must do with each slot after [`check_set`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The drive carries the right record.
    Ok,
    /// Empty (new or replaced): format it for this slot, then heal onto it.
    Format(DriveFormat),
}

/// Check the records found on the drives of a set (`None` = empty drive). A brand-new set
/// gets fresh ids from `new_id`; otherwise every present record must agree with the others
/// and sit in its own slot.
pub fn check_set(
    found: &[Option<DriveFormat>],
    data: usize,
    parity: usize,
    mut new_id: impl FnMut() -> String,
) -> Result<Vec<Slot>, DriveError> {
    let reference = found.iter().enumerate().find_map(|(i, f)| f.as_ref().map(|f| (i, f.clone())));
    let first = reference.as_ref().map_or(0, |(i, _)| *i);
    let template = match reference {
        Some((_, r)) => r,
        None => DriveFormat {
            version: FORMAT_VERSION,
            deployment_id: new_id(),
            drives: (0..found.len()).map(|_| new_id()).collect(),
            index: 0,
            data,
            parity,
        },
    };
    found
        .iter()
        .enumerate()
        .map(|(slot, f)| match f {
            None => Ok(Slot::Format(DriveFormat {
                index: slot,
                ..template.clone()
            })),
            Some(f) if f.deployment_id != template.deployment_id => Err(DriveError::ForeignDrive {
                slot,
                found: f.deployment_id.clone(),
                expected: template.deployment_id.clone(),
            }),
            Some(f)
                if f.drives != template.drives
                    || f.data != template.data
                    || f.parity != template.parity
                    || f.drives.len() != found.len() =>
            {
                Err(DriveError::LayoutMismatch { slot, other: first })
            }
            Some(f) if f.index != slot => Err(DriveError::WrongSlot { slot, belongs: f.index }),
            Some(_) => Ok(Slot::Ok),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipses() {
        assert_eq!(expand("/d{1...3}").unwrap(), ["/d1", "/d2", "/d3"]);
        assert_eq!(
            expand("/mnt/disk{01...03}/q").unwrap(),
            ["/mnt/disk01/q", "/mnt/disk02/q", "/mnt/disk03/q"]
        );
        assert_eq!(expand("/h{1...2}/d{1...2}").unwrap(), ["/h1/d1", "/h1/d2", "/h2/d1", "/h2/d2"]);
        assert_eq!(expand("/plain").unwrap(), ["/plain"]);
        for bad in ["/d{3...1}", "/d{1..3}", "/d{a...b}", "/d{1...3"] {
            assert!(expand(bad).is_err(), "{bad}");
        }
        assert_eq!(expand_all(&["/d{1...17}".into()]), Err(DriveError::Count(17)));
        assert_eq!(expand_all(&["/a".into(), "/a".into()]), Err(DriveError::Duplicate("/a".into())));
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("id{n}")
        }
    }

    #[test]
    fn fresh_set_formats_every_slot() {
        let slots = check_set(&[None, None, None, None], 2, 2, ids()).unwrap();
        let formats: Vec<DriveFormat> = slots
            .into_iter()
            .map(|s| match s {
                Slot::Format(f) => f,
                Slot::Ok => panic!("nothing to keep in a fresh set"),
            })
            .collect();
        assert!(
            formats
                .iter()
                .enumerate()
                .all(|(i, f)| f.index == i && f.deployment_id == "id1" && f.drives.len() == 4)
        );
    }

    #[test]
    fn swapped_foreign_and_replaced_drives() {
        let fresh = check_set(&[None, None, None, None], 2, 2, ids()).unwrap();
        let set: Vec<DriveFormat> = fresh
            .into_iter()
            .map(|s| match s {
                Slot::Format(f) => f,
                Slot::Ok => unreachable!("a fresh set has nothing to keep"),
            })
            .collect();
        let present: Vec<Option<DriveFormat>> = set.iter().cloned().map(Some).collect();
        assert!(check_set(&present, 2, 2, ids()).unwrap().iter().all(|s| *s == Slot::Ok));
        // A replaced (empty) drive is formatted for its slot.
        let mut replaced = present.clone();
        replaced[2] = None;
        assert_eq!(check_set(&replaced, 2, 2, ids()).unwrap()[2], Slot::Format(set[2].clone()));
        // Two drives swapped.
        let mut swapped = present.clone();
        swapped.swap(0, 1);
        assert_eq!(check_set(&swapped, 2, 2, ids()), Err(DriveError::WrongSlot { slot: 0, belongs: 1 }));
        // A drive from another deployment.
        let mut foreign = present.clone();
        foreign[3] = Some(DriveFormat {
            deployment_id: "other".into(),
            ..set[3].clone()
        });
        assert!(matches!(
            check_set(&foreign, 2, 2, ids()),
            Err(DriveError::ForeignDrive { slot: 3, .. })
        ));
    }
}
