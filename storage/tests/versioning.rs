//! Versioning as S3 defines it: version ids, delete markers, the null version, suspended
//! versioning, reads of old versions (inline and erasure coded), paging of versions, and
//! everything surviving a restart on a 4-drive set.

use bytes::Bytes;
use futures::StreamExt;
use quarry_storage::{
    BucketName, Error, ListQuery, ObjectAttrs, ObjectKey, ReadRange, Store, StoreOptions, VersionId, VersionItem, Versioning,
    WriteCondition,
};

fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
}

async fn put(store: &Store, b: &BucketName, k: &str, d: &[u8]) -> String {
    let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::copy_from_slice(d))]);
    let staged = store.stage(b, body, None, None).await.unwrap();
    let m = store
        .commit_object(
            b,
            &ObjectKey::new(k).unwrap(),
            staged,
            ObjectAttrs::default(),
            &WriteCondition::default(),
        )
        .await
        .unwrap();
    m.version_wire().to_owned()
}

async fn read(store: &Store, b: &BucketName, k: &str, v: Option<&str>) -> quarry_storage::Result<Vec<u8>> {
    let v = v.map(|v| VersionId::parse(v).unwrap());
    let r = store.get_object(b, &ObjectKey::new(k).unwrap(), v.as_ref(), ReadRange::All).await?;
    let mut out = Vec::new();
    let mut s = r.body;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    Ok(out)
}

fn versions(store: &Store, b: &BucketName, max: usize) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<VersionId> = None;
    loop {
        let page = store
            .list_versions(
                b,
                &ListQuery {
                    max,
                    start_after: key_marker.as_deref(),
                    ..Default::default()
                },
                version_marker.as_ref(),
            )
            .unwrap();
        assert!(page.items.len() <= max);
        for i in &page.items {
            if let VersionItem::Version { key, meta, latest } = i {
                assert_eq!(*latest, out.last().is_none_or(|(k, _, _): &(String, String, bool)| k != key));
                out.push((key.clone(), meta.version_wire().to_owned(), meta.delete_marker));
            }
        }
        match page.next_markers() {
            Some((k, v)) => {
                key_marker = Some(k);
                version_marker = v.map(|v| VersionId::parse(&v).unwrap());
            }
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_markers_and_suspension() {
    let tmp = tempfile::tempdir().unwrap();
    let drives: Vec<_> = (0..4).map(|i| tmp.path().join(format!("d{i}"))).collect();
    let opts = StoreOptions {
        fsync: false,
        ..StoreOptions::default()
    };
    let store = Store::open_set(drives.clone(), opts.clone()).await.unwrap();
    let b = BucketName::new("ver").unwrap();
    store.create_bucket(&b).await.unwrap();
    assert_eq!(store.versioning(&b).unwrap(), Versioning::Unversioned);
    // Before versioning: the null version, replaced in place.
    assert_eq!(put(&store, &b, "k", &data(0, 10)).await, "null");
    store.set_versioning(&b, Versioning::Enabled).await.unwrap();
    // Inline and erasure-coded versions side by side.
    let v1 = put(&store, &b, "k", &data(1, 100)).await;
    let v2 = put(&store, &b, "k", &data(2, 400_000)).await;
    let v3 = put(&store, &b, "k", &data(3, 200)).await;
    assert!(v1 != v2 && v2 != v3 && v1.len() == 32);
    assert_eq!(read(&store, &b, "k", None).await.unwrap(), data(3, 200));
    assert_eq!(read(&store, &b, "k", Some(&v1)).await.unwrap(), data(1, 100));
    assert_eq!(read(&store, &b, "k", Some(&v2)).await.unwrap(), data(2, 400_000));
    assert_eq!(read(&store, &b, "k", Some("null")).await.unwrap(), data(0, 10));
    // A delete adds a marker: the key reads as gone and is not listed, versions remain.
    let key = ObjectKey::new("k").unwrap();
    let out = store.delete_object(&b, &key, None).await.unwrap();
    assert!(out.delete_marker);
    let marker = out.version_id.unwrap();
    assert!(matches!(
        read(&store, &b, "k", None).await,
        Err(Error::DeleteMarker { requested: false, .. })
    ));
    assert!(matches!(
        read(&store, &b, "k", Some(&marker)).await,
        Err(Error::DeleteMarker { requested: true, .. })
    ));
    let listed = store
        .list_objects(
            &b,
            &ListQuery {
                max: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(listed.items.is_empty());
    assert_eq!(
        versions(&store, &b, 1000),
        vec![
            ("k".into(), marker.clone(), true),
            ("k".into(), v3.clone(), false),
            ("k".into(), v2.clone(), false),
            ("k".into(), v1.clone(), false),
            ("k".into(), "null".into(), false),
        ]
    );
    // Paging one version at a time yields the same sequence.
    assert_eq!(versions(&store, &b, 1).len(), 5);
    assert_eq!(versions(&store, &b, 2), versions(&store, &b, 1000));
    // Removing the marker brings v3 back; removing v3 makes v2 current.
    let out = store
        .delete_object(&b, &key, Some(&VersionId::parse(&marker).unwrap()))
        .await
        .unwrap();
    assert!(out.delete_marker);
    assert_eq!(read(&store, &b, "k", None).await.unwrap(), data(3, 200));
    store.delete_object(&b, &key, Some(&VersionId::parse(&v3).unwrap())).await.unwrap();
    assert_eq!(read(&store, &b, "k", None).await.unwrap(), data(2, 400_000));
    assert!(matches!(read(&store, &b, "k", Some(&v3)).await, Err(Error::NoSuchVersion { .. })));
    // Suspended: new writes are the null version, replacing the old null one.
    store.set_versioning(&b, Versioning::Suspended).await.unwrap();
    assert_eq!(put(&store, &b, "k", &data(4, 50)).await, "null");
    assert_eq!(read(&store, &b, "k", Some("null")).await.unwrap(), data(4, 50));
    assert_eq!(put(&store, &b, "k", &data(5, 300_000)).await, "null");
    assert_eq!(
        versions(&store, &b, 1000).iter().map(|v| v.1.clone()).collect::<Vec<_>>(),
        ["null".to_string(), v2.clone(), v1.clone()]
    );
    // A delete while suspended: a null delete marker replacing the null version.
    let out = store.delete_object(&b, &key, None).await.unwrap();
    assert_eq!((out.version_id.as_deref(), out.delete_marker), (Some("null"), true));
    assert!(!store.bucket_is_empty(&b).unwrap(), "versions keep the bucket non-empty");
    drop(store);
    // Everything survives a restart, with versioning state.
    let store = Store::open_set(drives, opts).await.unwrap();
    assert_eq!(store.versioning(&b).unwrap(), Versioning::Suspended);
    assert_eq!(
        versions(&store, &b, 1000),
        vec![
            ("k".into(), "null".into(), true),
            ("k".into(), v2.clone(), false),
            ("k".into(), v1.clone(), false),
        ]
    );
    assert_eq!(read(&store, &b, "k", Some(&v1)).await.unwrap(), data(1, 100));
    assert_eq!(read(&store, &b, "k", Some(&v2)).await.unwrap(), data(2, 400_000));
    // Deleting every version empties the key.
    for v in ["null", &v2, &v1] {
        store.delete_object(&b, &key, Some(&VersionId::parse(v).unwrap())).await.unwrap();
    }
    assert!(store.bucket_is_empty(&b).unwrap());
    assert!(store.heal_all(true).await.unwrap().unrecoverable.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_policy_survives_restart_and_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let drives: Vec<_> = (0..4).map(|i| tmp.path().join(format!("d{i}"))).collect();
    let opts = StoreOptions {
        fsync: false,
        ..StoreOptions::default()
    };
    let b = BucketName::new("pol").unwrap();
    {
        let store = Store::open_set(drives.clone(), opts.clone()).await.unwrap();
        store.create_bucket(&b).await.unwrap();
        assert!(store.bucket_policy(&b).unwrap().is_none());
        store.set_bucket_policy(&b, Some("{\"v\":1}".into())).await.unwrap();
        store.set_bucket_policy(&b, Some("{\"v\":2}".into())).await.unwrap();
        assert_eq!(store.bucket_policy(&b).unwrap().as_deref(), Some("{\"v\":2}"));
    }
    let store = Store::open_set(drives.clone(), opts.clone()).await.unwrap();
    assert_eq!(
        store.bucket_policy(&b).unwrap().as_deref(),
        Some("{\"v\":2}"),
        "the newest policy after a restart"
    );
    store.set_bucket_policy(&b, None).await.unwrap();
    drop(store);
    let store = Store::open_set(drives, opts).await.unwrap();
    assert!(store.bucket_policy(&b).unwrap().is_none(), "a removed policy stays removed");
    assert!(matches!(
        store.bucket_policy(&BucketName::new("nope").unwrap()),
        Err(Error::NoSuchBucket(_))
    ));
}
