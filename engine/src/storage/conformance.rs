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
