//! The OpenAPI document (`router/openapi.json`, served at `/openapi.json`) against the
//! REST routes, both ways: every route in `rest.rs` is documented with its methods, and
//! every documented operation reaches a handler on a running router (not the fallback,
//! not "method not allowed").

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value as J;

const REST_SOURCE: &str = include_str!("../src/api/rest.rs");
const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// (path, method) of every `.route("PATH", METHODS)` in the REST module.
fn routes_in_code() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for part in REST_SOURCE.split(".route(").skip(1) {
        let part = part.trim_start();
        let Some(rest) = part.strip_prefix('"') else {
            continue;
        };
        let (path, rest) = rest.split_once('"').unwrap();
        // The method router: up to the `)` that closes `.route(`.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .unwrap();
        let methods = &rest[..end];
        for m in METHODS {
            let called = methods.match_indices(&format!("{m}(")).any(|(i, _)| {
                i == 0
                    || !methods.as_bytes()[i - 1].is_ascii_alphanumeric()
                        && methods.as_bytes()[i - 1] != b'_'
            });
            if called {
                out.insert((path.to_string(), m.to_string()));
            }
        }
    }
    out
}

fn documented(doc: &J) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((path.clone(), m.to_string()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_routes() {
    let code = routes_in_code();
    assert!(
        code.len() >= 18,
        "parsed too few routes from rest.rs: {code:?}"
    );
    let doc: J = serde_json::from_str(vecshard_router::api::rest::OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let docs = documented(&doc);
    let undocumented: Vec<_> = code.difference(&docs).collect();
    let unrouted: Vec<_> = docs.difference(&code).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "openapi.json documents routes that do not exist: {unrouted:?}"
    );

    // Served as is, without an API key.
    let dir = tempfile::tempdir().unwrap();
    let router = vecshard_router::start(test_config(dir.path(), 1))
        .await
        .unwrap();
    let base = format!("http://{}", router.http_addr());
    let http = reqwest::Client::new();
    let served: J = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, doc);

    // Every documented operation reaches a handler: no fallback ("no such endpoint"),
    // no 405. Bodies are empty, so most answer 400, and unknown collections 404.
    for (path, method) in &docs {
        let url = format!("{base}{}", path.replace("{name}", "no_such_collection"));
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = http.request(m, &url).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {text}");
        assert!(
            !text.contains("no such endpoint"),
            "{method} {path}: {status} {text}"
        );
    }
    // And the fallback does answer for a path that is not there.
    let r = http.get(format!("{base}/v1/nope")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.text().await.unwrap().contains("no such endpoint"));
}
