//! The store driven directly: concurrency, recovery and corruption, without a server.

use bytes::Bytes;
use futures::StreamExt;
use quarry_storage::{BucketConfig, BucketName, Error, ObjectAttrs, ObjectKey, ReadRange, Store, StoreOptions, WriteCondition};

fn body(data: Vec<u8>) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send {
    // Deliver in uneven chunks, as a network would.
    let chunks: Vec<Result<Bytes, std::io::Error>> = data.chunks(70_001).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures::stream::iter(chunks)
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

async fn put(store: &Store, b: &BucketName, k: &str, data: Vec<u8>) -> quarry_storage::Result<()> {
    let len = data.len() as u64;
    let staged = store.stage(b, body(data), None, Some(len)).await?;
    store
        .commit_object(
            b,
            &ObjectKey::new(k).unwrap(),
            staged,
            ObjectAttrs::default(),
            &WriteCondition::default(),
        )
        .await?;
    Ok(())
}

async fn get(store: &Store, b: &BucketName, k: &str) -> Vec<u8> {
    let r = store
        .get_object(b, &ObjectKey::new(k).unwrap(), None, ReadRange::All)
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut s = r.body;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

async fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_one_key_leave_one_whole_value() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path()).await;
    let b = BucketName::new("race").unwrap();
    store.create_bucket(&b).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8u8 {
        let store = store.clone();
        let b = b.clone();
        // Mix inline and file-backed sizes.
        let len = if w % 2 == 0 { 1_000 } else { 400_000 };
        tasks.push(tokio::spawn(async move { put(&store, &b, "same", pattern(w, len)).await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = get(&store, &b, "same").await;
    let winners: Vec<u8> = (0..8u8)
        .filter(|w| got == pattern(*w, if w % 2 == 0 { 1_000 } else { 400_000 }))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one writer's bytes, whole");
    // Losers' data files were deleted: one data file at most remains.
    let data_files: usize = walk(&tmp.path().join("buckets/race/data")).len();
    assert!(data_files <= 1, "{data_files} data files left behind");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn reopen_sweeps_orphans_and_keeps_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let b = BucketName::new("sweep").unwrap();
    {
        let store = open(tmp.path()).await;
        store.create_bucket(&b).await.unwrap();
        put(&store, &b, "kept", pattern(1, 300_000)).await.unwrap();
    }
    // A write a crash interrupted: a shard file no metadata references (the real thing is
    // exercised by the server's SIGKILL test; a store in this process cannot "crash").
    let data = walk(&tmp.path().join("buckets/sweep/data"));
    let orphan = data[0].parent().unwrap().join(format!(
        "{}0123456789abcdef0123456789abcd",
        &data[0].parent().unwrap().file_name().unwrap().to_str().unwrap()
    ));
    std::fs::copy(&data[0], &orphan).unwrap();
    assert_eq!(walk(&tmp.path().join("buckets/sweep/data")).len(), 2);
    let store = open(tmp.path()).await;
    // The sweep (run by itself a little after open) removes what nothing references,
    // and only what is older than it was told.
    assert_eq!(store.sweep_orphans(std::time::UNIX_EPOCH).await.unwrap(), 0);
    assert_eq!(store.sweep_orphans(std::time::SystemTime::now()).await.unwrap(), 1);
    assert_eq!(walk(&tmp.path().join("buckets/sweep/data")).len(), 1, "the orphan is swept");
    assert_eq!(get(&store, &b, "kept").await, pattern(1, 300_000));
}

/// Flip one byte of every copy of `needle` in `file`; how many there were.
fn flip_all(file: &std::path::Path, needle: &[u8]) -> usize {
    let mut bytes = std::fs::read(file).unwrap();
    let at: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    for &i in &at {
        bytes[i + needle.len() / 2] ^= 0xFF;
    }
    std::fs::write(file, &bytes).unwrap();
    at.len()
}

#[tokio::test]
async fn corrupt_metadata_is_never_served() {
    let tmp = tempfile::tempdir().unwrap();
    let b = BucketName::new("rot").unwrap();
    let small = pattern(3, 100);
    {
        let store = open(tmp.path()).await;
        store.create_bucket(&b).await.unwrap();
        put(&store, &b, "small", small.clone()).await.unwrap();
    }
    // Flip a byte of the inline data in the drive's index: the read is a clean error
    // (a one-drive set has no other copy), never the wrong bytes.
    assert!(flip_all(&tmp.path().join(".quarry/index.redb"), &small) >= 1);
    let store = open(tmp.path()).await;
    let err = store
        .get_object(&b, &ObjectKey::new("small").unwrap(), None, ReadRange::All)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_index_value_is_read_from_another_drive() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    let b = BucketName::new("rot").unwrap();
    let small = pattern(9, 100);
    {
        let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
        store.create_bucket(&b).await.unwrap();
        put(&store, &b, "small", small.clone()).await.unwrap();
    }
    assert!(flip_all(&paths[1].join(".quarry/index.redb"), &small) >= 1);
    let store = Store::open_set(paths.clone(), StoreOptions::default()).await.unwrap();
    // Reads rotate over the drives: every one of them gets the right bytes.
    for _ in 0..6 {
        assert_eq!(get(&store, &b, "small").await, small);
    }
}

#[tokio::test]
async fn declared_length_is_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path()).await;
    let b = BucketName::new("len").unwrap();
    store.create_bucket(&b).await.unwrap();
    let short = store.stage(&b, body(pattern(4, 10)), None, Some(11)).await.unwrap_err();
    assert!(matches!(short, Error::IncompleteBody(_)));
    let long = store.stage(&b, body(pattern(4, 300_000)), None, Some(200_000)).await.unwrap_err();
    assert!(matches!(long, Error::IncompleteBody(_)));
    let failing = futures::stream::iter(vec![Ok(Bytes::from_static(b"abc")), Err(std::io::Error::other("connection reset"))]);
    assert!(matches!(
        store.stage(&b, failing, None, None).await.unwrap_err(),
        Error::IncompleteBody(_)
    ));
    assert!(walk(&tmp.path().join("buckets/len/data")).is_empty(), "failed stages leave no data");
}

#[tokio::test]
async fn ranges_across_parts_and_inline() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path()).await;
    let b = BucketName::new("ranges").unwrap();
    store.create_bucket(&b).await.unwrap();
    let data = pattern(5, 1_500_000);
    put(&store, &b, "file", data.clone()).await.unwrap();
    put(&store, &b, "inline", data[..5000].to_vec()).await.unwrap();
    for (k, d) in [("file", &data[..]), ("inline", &data[..5000])] {
        let key = ObjectKey::new(k).unwrap();
        for (range, want) in [
            (ReadRange::From { first: 0, last: Some(0) }, &d[..1]),
            (ReadRange::From { first: 10, last: None }, &d[10..]),
            (ReadRange::Suffix(100), &d[d.len() - 100..]),
            (ReadRange::Suffix(u64::MAX), d),
            (
                ReadRange::From {
                    first: 1,
                    last: Some(u64::MAX),
                },
                &d[1..],
            ),
        ] {
            let r = store.get_object(&b, &key, None, range).await.unwrap();
            let mut got = Vec::new();
            let mut s = r.body;
            while let Some(c) = s.next().await {
                got.extend_from_slice(&c.unwrap());
            }
            assert_eq!(got, want, "{k} {range:?}");
        }
        let e = store
            .get_object(
                &b,
                &key,
                None,
                ReadRange::From {
                    first: d.len() as u64,
                    last: None,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidRange { .. }));
    }
}

#[tokio::test]
async fn small_ranges_across_part_boundaries() {
    use quarry_storage::{CompletedPart, PartNumber};
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path()).await;
    let b = BucketName::new("parts").unwrap();
    store.create_bucket(&b).await.unwrap();
    let key = ObjectKey::new("mp").unwrap();
    let info = store.create_upload(&b, &key, ObjectAttrs::default(), None).await.unwrap();
    let p1 = pattern(1, 5 * 1024 * 1024);
    let p2 = pattern(2, 1000);
    let mut listed = Vec::new();
    for (n, data) in [(1, p1.clone()), (2, p2.clone())] {
        let len = data.len() as u64;
        let staged = store.stage(&b, body(data), None, Some(len)).await.unwrap();
        let rec = store
            .commit_part(&b, &key, &info.upload_id, PartNumber::new(n).unwrap(), staged)
            .await
            .unwrap();
        listed.push(CompletedPart {
            number: n,
            etag: rec.part.etag,
            checksum: None,
        });
    }
    store
        .complete_upload(&b, &key, &info.upload_id, &listed, &WriteCondition::default())
        .await
        .unwrap();
    let mut whole = p1;
    whole.extend_from_slice(&p2);
    let edge = 5 * 1024 * 1024u64;
    for (first, last) in [(edge - 10, edge + 9), (edge, edge), (0, 0), (edge - 1, edge + 999)] {
        let r = store
            .get_object(&b, &key, None, ReadRange::From { first, last: Some(last) })
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut s = r.body;
        while let Some(c) = s.next().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, &whole[first as usize..=last as usize], "{first}-{last}");
    }
}

#[tokio::test]
async fn owners_and_configuration_documents_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let b = BucketName::new("owned").unwrap();
    let legacy = BucketName::new("legacy").unwrap();
    {
        let store = open(tmp.path()).await;
        store.create_bucket_for(&b, Some("123456789012")).await.unwrap();
        store.create_bucket(&legacy).await.unwrap();
        store
            .set_bucket_config(&b, BucketConfig::Acl, Some("{\"grants\":[]}".into()))
            .await
            .unwrap();
        store
            .set_bucket_config(&b, BucketConfig::Ownership, Some("ObjectWriter".into()))
            .await
            .unwrap();
        store.set_bucket_config(&b, BucketConfig::Ownership, None).await.unwrap();
        store.set_bucket_policy(&legacy, Some("{\"p\":1}".into())).await.unwrap();
        // Versioning rewrites the bucket record; the owner must stay.
        store.set_versioning(&b, quarry_storage::Versioning::Enabled).await.unwrap();
    }
    // Records live in the index, not beside the shard files.
    for f in ["bucket.json", "policy.json", "acl.json", "uploads"] {
        assert!(!tmp.path().join("buckets/owned").join(f).exists(), "{f}");
    }
    let store = open(tmp.path()).await;
    assert_eq!(store.head_bucket(&b).unwrap().owner.as_deref(), Some("123456789012"));
    assert_eq!(store.head_bucket(&legacy).unwrap().owner, None);
    assert_eq!(
        store.bucket_config(&b, BucketConfig::Acl).unwrap().as_deref(),
        Some("{\"grants\":[]}")
    );
    assert_eq!(store.bucket_config(&b, BucketConfig::Ownership).unwrap(), None);
    assert_eq!(store.bucket_policy(&legacy).unwrap().as_deref(), Some("{\"p\":1}"));
    let listed: Vec<_> = store.list_buckets().into_iter().map(|i| (i.name, i.owner)).collect();
    assert_eq!(
        listed,
        [("legacy".to_owned(), None), ("owned".to_owned(), Some("123456789012".to_owned()))]
    );
}

async fn upload(store: &Store, b: &BucketName, k: &str) -> String {
    let key = ObjectKey::new(k).unwrap();
    store.create_upload(b, &key, ObjectAttrs::default(), None).await.unwrap().upload_id
}

/// One ListMultipartUploads page of at most `max`, from the start.
async fn uploads_page(store: &Store, b: &BucketName, delimiter: Option<&str>, max: usize) -> quarry_storage::UploadPage {
    let q = quarry_storage::UploadQuery {
        delimiter,
        max,
        ..Default::default()
    };
    store.list_uploads(b, &q).await.unwrap()
}

/// Every page of at most `max`, each resumed at the markers the one before gave.
async fn all_upload_pages(store: &Store, b: &BucketName, delimiter: Option<&str>, max: usize) -> Vec<quarry_storage::UploadPage> {
    let mut pages = Vec::new();
    let (mut km, mut im) = (String::new(), String::new());
    loop {
        let q = quarry_storage::UploadQuery {
            delimiter,
            key_marker: &km,
            upload_id_marker: &im,
            max,
            ..Default::default()
        };
        let page = store.list_uploads(b, &q).await.unwrap();
        assert!(page.uploads.len() + page.prefixes.len() <= max);
        let next = page.next.clone();
        pages.push(page);
        match next {
            Some((k, i)) => (km, im) = (k, i),
            None => return pages,
        }
    }
}

#[tokio::test]
async fn uploads_list_in_pages_with_markers_and_common_prefixes() {
    use quarry_storage::UploadQuery;
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path()).await;
    let b = BucketName::new("ups").unwrap();
    store.create_bucket(&b).await.unwrap();
    let mut want: Vec<(String, String)> = Vec::new();
    for k in ["a", "a", "a/x", "a/y", "b", "c/d/e", "c/z", "d\u{0}0", "d"] {
        want.push((k.to_owned(), upload(&store, &b, k).await));
    }
    // Keys in byte order, a key's uploads in the order they were started.
    want.sort_by(|x, y| x.0.as_bytes().cmp(y.0.as_bytes()));
    let all = uploads_page(&store, &b, None, 1000).await;
    let got: Vec<(String, String)> = all.uploads.iter().map(|u| (u.key.clone(), u.upload_id.clone())).collect();
    assert_eq!(got, want);
    assert!(!all.truncated && all.next.is_none());
    // Pages of two, resumed at the markers each page gives, list each upload once.
    let paged: Vec<(String, String)> = all_upload_pages(&store, &b, None, 2)
        .await
        .iter()
        .flat_map(|p| p.uploads.iter().map(|u| (u.key.clone(), u.upload_id.clone())))
        .collect();
    assert_eq!(paged, want);
    // With a delimiter: keys under a common prefix roll up, one entry each.
    let page = uploads_page(&store, &b, Some("/"), 1000).await;
    let keys: Vec<&str> = page.uploads.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(keys, ["a", "a", "b", "d", "d\u{0}0"]);
    assert_eq!(page.prefixes, ["a/", "c/"]);
    // Paged by one with a delimiter: a prefix given as the marker is not listed again.
    let entries: Vec<String> = all_upload_pages(&store, &b, Some("/"), 1)
        .await
        .iter()
        .flat_map(|p| p.uploads.iter().map(|u| u.key.clone()).chain(p.prefixes.iter().cloned()))
        .collect();
    assert_eq!(entries, ["a", "a", "a/", "b", "c/", "d", "d\u{0}0"]);
    // A prefix and a delimiter below it.
    let q = UploadQuery {
        prefix: "c/",
        delimiter: Some("/"),
        max: 1000,
        ..Default::default()
    };
    let page = store.list_uploads(&b, &q).await.unwrap();
    assert_eq!(page.prefixes, ["c/d/"]);
    assert_eq!(page.uploads.iter().map(|u| u.key.as_str()).collect::<Vec<_>>(), ["c/z"]);
}

#[tokio::test]
async fn a_deleted_bucket_takes_its_uploads_and_documents_along() {
    use quarry_storage::PartNumber;
    let tmp = tempfile::tempdir().unwrap();
    let b = BucketName::new("gone").unwrap();
    {
        let store = open(tmp.path()).await;
        store.create_bucket(&b).await.unwrap();
        store.set_bucket_policy(&b, Some("{}".into())).await.unwrap();
        let id = upload(&store, &b, "k").await;
        let staged = store.stage(&b, body(pattern(3, 1000)), None, Some(1000)).await.unwrap();
        let key = ObjectKey::new("k").unwrap();
        store.commit_part(&b, &key, &id, PartNumber::new(1).unwrap(), staged).await.unwrap();
        store.delete_bucket(&b).await.unwrap();
        assert!(matches!(store.head_bucket(&b), Err(Error::NoSuchBucket(_))));
        assert!(!tmp.path().join("buckets/gone").exists());
        assert!(matches!(
            store.create_upload(&b, &key, ObjectAttrs::default(), None).await,
            Err(Error::NoSuchBucket(_))
        ));
    }
    // Gone after a restart too; a new bucket of the name starts empty.
    let store = open(tmp.path()).await;
    assert!(matches!(store.head_bucket(&b), Err(Error::NoSuchBucket(_))));
    store.create_bucket(&b).await.unwrap();
    assert_eq!(store.bucket_policy(&b).unwrap(), None);
    assert!(uploads_page(&store, &b, None, 10).await.uploads.is_empty());
    assert!(matches!(store.create_bucket(&b).await, Err(Error::BucketAlreadyExists(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parts_racing_an_abort_leave_no_record_and_no_data() {
    use quarry_storage::PartNumber;
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path()).await;
    let b = BucketName::new("race-abort").unwrap();
    store.create_bucket(&b).await.unwrap();
    let key = ObjectKey::new("k").unwrap();
    for round in 0..20 {
        let id = upload(&store, &b, "k").await;
        let mut tasks = Vec::new();
        for n in 1..=4 {
            let (store, b, key, id) = (store.clone(), b.clone(), key.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                let staged = store.stage(&b, body(pattern(n as u8, 300_000)), None, Some(300_000)).await.unwrap();
                store.commit_part(&b, &key, &id, PartNumber::new(n).unwrap(), staged).await
            }));
        }
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        store.abort_upload(&b, &key, &id).await.unwrap();
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) | Err(Error::NoSuchUpload(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(uploads_page(&store, &b, None, 10).await.uploads.is_empty());
    // Every part's shard file went with its upload: nothing is left to sweep.
    let swept = store
        .sweep_orphans(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(swept, 0);
    let data: Vec<_> = walk(&tmp.path().join("buckets/race-abort/data"));
    assert!(data.is_empty(), "{data:?}");
}
