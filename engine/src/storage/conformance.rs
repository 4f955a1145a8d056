//! The behaviour every [`Storage`] backend must show. Backends call [`run`] from their
//! tests (local disk, memory, file://, a local S3 server).

use bytes::Bytes;

use super::Storage;
use crate::error::ErrorKind;

/// Run every check against `s`, which must be empty. Panics (test failure) on a deviation.
pub fn run(s: &dyn Storage) {
    missing_files(s);
    put_get_replace(s);
    create_only_once(s);
    list_sorted_and_scoped(s);
    ranges(s);
    delete_is_idempotent(s);
    map_whole_file(s);
    concurrent_creates_have_one_winner(s);
    list_is_not_recursive(s);
    empty_files(s);
    replaced_files_read_fresh(s);
    created_again_after_delete(s);
    ranges_across_megabytes(s);
    if s.supports_append() {
        append_files(s);
    }
}

fn missing_files(s: &dyn Storage) {
    let err = s.get("conf/missing").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains("conf/missing"),
        "error names the path: {err}"
    );
    assert!(s.list("conf-nothing-here").unwrap().is_empty());
}

fn put_get_replace(s: &dyn Storage) {
    s.put("conf/a", Bytes::from_static(b"one")).unwrap();
    assert_eq!(&s.get("conf/a").unwrap()[..], b"one");
    s.put("conf/a", Bytes::from_static(b"two!")).unwrap();
    assert_eq!(&s.get("conf/a").unwrap()[..], b"two!");
}

fn create_only_once(s: &dyn Storage) {
    assert!(
        s.put_if_absent("conf/once", Bytes::from_static(b"first"))
            .unwrap()
    );
    assert!(
        !s.put_if_absent("conf/once", Bytes::from_static(b"second"))
            .unwrap()
    );
    assert_eq!(&s.get("conf/once").unwrap()[..], b"first");
}

fn list_sorted_and_scoped(s: &dyn Storage) {
    for name in [
        "conf/list/02",
        "conf/list/01",
        "conf/list/10",
        "conf/listing-other/x",
    ] {
        s.put(name, Bytes::from(name.as_bytes().to_vec())).unwrap();
    }
    let listed: Vec<_> = s
        .list("conf/list")
        .unwrap()
        .into_iter()
        .map(|o| (o.path, o.size))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("conf/list/01".to_string(), 12),
            ("conf/list/02".to_string(), 12),
            ("conf/list/10".to_string(), 12)
        ]
    );
}

fn ranges(s: &dyn Storage) {
    s.put("conf/range", Bytes::from_static(b"0123456789"))
        .unwrap();
    assert_eq!(&s.get_range("conf/range", 2..5).unwrap()[..], b"234");
    assert_eq!(&s.get_range("conf/range", 9..10).unwrap()[..], b"9");
}

fn delete_is_idempotent(s: &dyn Storage) {
    s.put("conf/del", Bytes::from_static(b"x")).unwrap();
    s.delete("conf/del").unwrap();
    assert_eq!(s.get("conf/del").unwrap_err().kind(), ErrorKind::NotFound);
    s.delete("conf/del").unwrap();
}

fn map_whole_file(s: &dyn Storage) {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    s.put("conf/map", Bytes::from(data.clone())).unwrap();
    assert_eq!(&s.map("conf/map").unwrap()[..], &data[..]);
}

fn append_files(s: &dyn Storage) {
    let mut f = s.create_append("conf/wal/1").unwrap();
    f.append(b"abc").unwrap();
    f.append(b"def").unwrap();
    f.sync().unwrap();
    assert_eq!(&s.get("conf/wal/1").unwrap()[..], b"abcdef");
    assert!(
        s.create_append("conf/wal/1").is_err(),
        "append files are created once"
    );
}

/// Writers racing to create one path (two nodes committing the same manifest version):
/// exactly one is told it won, and the stored bytes are the winner's.
fn concurrent_creates_have_one_winner(s: &dyn Storage) {
    const WRITERS: usize = 8;
    let results: Vec<(usize, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|i| {
                scope.spawn(move || {
                    let data = Bytes::from(format!("writer {i}").into_bytes());
                    (i, s.put_if_absent("conf/race", data).unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = results.iter().filter(|r| r.1).map(|r| r.0).collect();
    assert_eq!(winners.len(), 1, "exactly one create wins: {results:?}");
    let stored = s.get("conf/race").unwrap();
    assert_eq!(&stored[..], format!("writer {}", winners[0]).as_bytes());
}

/// `list(dir)` shows files directly under `dir`, not those in subdirectories (object
/// stores list recursively unless asked not to).
fn list_is_not_recursive(s: &dyn Storage) {
    s.put("conf/nest/a", Bytes::from_static(b"a")).unwrap();
    s.put("conf/nest/sub/b", Bytes::from_static(b"b")).unwrap();
    let listed: Vec<_> = s
        .list("conf/nest")
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .collect();
    assert_eq!(listed, vec!["conf/nest/a".to_string()]);
}

fn empty_files(s: &dyn Storage) {
    s.put("conf/empty", Bytes::new()).unwrap();
    assert!(s.get("conf/empty").unwrap().is_empty());
    assert!(s.map("conf/empty").unwrap().is_empty());
    let listed = s.list("conf").unwrap();
    let empty = listed.iter().find(|o| o.path == "conf/empty").unwrap();
    assert_eq!(empty.size, 0);
}

/// A replaced file is read with its new bytes by every read path (caches included).
fn replaced_files_read_fresh(s: &dyn Storage) {
    s.put("conf/replaced", Bytes::from_static(b"old bytes"))
        .unwrap();
    assert_eq!(&s.get_range("conf/replaced", 0..3).unwrap()[..], b"old");
    assert_eq!(&s.map("conf/replaced").unwrap()[..], b"old bytes");
    s.put("conf/replaced", Bytes::from_static(b"new bytes"))
        .unwrap();
    assert_eq!(&s.get_range("conf/replaced", 0..3).unwrap()[..], b"new");
    assert_eq!(&s.map("conf/replaced").unwrap()[..], b"new bytes");
    assert_eq!(&s.get("conf/replaced").unwrap()[..], b"new bytes");
}

fn created_again_after_delete(s: &dyn Storage) {
    assert!(
        s.put_if_absent("conf/recreate", Bytes::from_static(b"1"))
            .unwrap()
    );
    s.delete("conf/recreate").unwrap();
    assert!(
        s.put_if_absent("conf/recreate", Bytes::from_static(b"2"))
            .unwrap()
    );
    assert_eq!(&s.get("conf/recreate").unwrap()[..], b"2");
}

/// Ranges of a file larger than typical cache blocks: crossing block boundaries, at the
/// very end, read twice (the second time possibly from a cache).
fn ranges_across_megabytes(s: &dyn Storage) {
    let data: Vec<u8> = (0..(5u32 << 19))
        .map(|i| (i.wrapping_mul(31) % 253) as u8)
        .collect();
    let len = data.len() as u64;
    s.put("conf/big", Bytes::from(data.clone())).unwrap();
    let ranges = [
        0..1,
        (1 << 20) - 3..(1 << 20) + 3,
        100..(2 << 20) + 100,
        len - 10..len,
        0..len,
    ];
    for _ in 0..2 {
        for r in ranges.clone() {
            let got = s.get_range("conf/big", r.clone()).unwrap();
            assert_eq!(
                &got[..],
                &data[r.start as usize..r.end as usize],
                "range {r:?}"
            );
        }
    }
    assert!(
        s.get_range("conf/big", len - 1..len + 1).is_err(),
        "a range past the end is an error"
    );
}
