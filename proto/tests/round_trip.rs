//! Every kind of message survives a prost encode/decode round trip, filters nest, and the
//! not-owner detail travels in a gRPC status.

use std::collections::HashMap;
use std::fmt::Debug;

use prost::Message;
use vecshard_proto::internal::v1 as int;
use vecshard_proto::v1 as api;

/// Encode, decode, compare; returns the decoded copy.
fn round_trip<M: Message + Default + PartialEq + Debug>(m: &M) -> M {
    let bytes = m.encode_to_vec();
    let back = M::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(&back, m);
    back
}

fn int_key(v: u64) -> api::Key {
    api::Key {
        kind: Some(api::key::Kind::Int(v)),
    }
}

fn str_key(s: &str) -> api::Key {
    api::Key {
        kind: Some(api::key::Kind::Str(s.into())),
    }
}

fn value(kind: api::value::Kind) -> api::Value {
    api::Value { kind: Some(kind) }
}

fn metadata() -> HashMap<String, api::Value> {
    use api::value::Kind;
    HashMap::from([
        ("n".into(), value(Kind::IntValue(-7))),
        ("price".into(), value(Kind::FloatValue(12.5))),
        ("color".into(), value(Kind::StringValue("red".into()))),
        ("stock".into(), value(Kind::BoolValue(true))),
        (
            "tags".into(),
            value(Kind::StringListValue(api::StringList {
                values: vec!["new".into(), "sale".into()],
            })),
        ),
    ])
}

fn point(key: api::Key) -> api::Point {
    api::Point {
        key: Some(key),
        vector: vec![0.25, -1.0, 3.5],
        metadata: metadata(),
        payload: br#"{"title":"x"}"#.to_vec(),
        ..Default::default()
    }
}

fn index() -> api::IndexParams {
    api::IndexParams {
        m: Some(16),
        ef_construction: Some(200),
        ef_search: None,
    }
}

fn spec() -> api::CollectionSpec {
    api::CollectionSpec {
        name: "docs".into(),
        dimension: 3,
        metric: api::Metric::Cosine as i32,
        shard_count: 4,
        storage: "s3://bucket/prefix".into(),
        index: Some(index()),
        replication_factor: 3,
        write_ack: "majority".into(),
    }
}

fn condition(field: &str, op: api::condition::Op) -> api::Filter {
    api::Filter {
        kind: Some(api::filter::Kind::Condition(api::Condition {
            field: field.into(),
            op: Some(op),
        })),
    }
}

/// `and[ color == "red", or[ not(tags in ["old"]), price in [10, 20) ], stock exists ]`
fn nested_filter() -> api::Filter {
    use api::condition::Op;
    use api::filter::Kind;
    use api::value::Kind as V;
    let list = |filters| api::FilterList { filters };
    let not_old = api::Filter {
        kind: Some(Kind::Not(Box::new(condition(
            "tags",
            Op::In(api::ValueList {
                values: vec![value(V::StringValue("old".into()))],
            }),
        )))),
    };
    let price = condition(
        "price",
        Op::Range(api::Range {
            gte: Some(value(V::IntValue(10))),
            lt: Some(value(V::FloatValue(20.0))),
            ..Default::default()
        }),
    );
    api::Filter {
        kind: Some(Kind::And(list(vec![
            condition("color", Op::Eq(value(V::StringValue("red".into())))),
            api::Filter {
                kind: Some(Kind::Or(list(vec![not_old, price]))),
            },
            condition("stock", Op::Exists(true)),
        ]))),
    }
}

fn target() -> Option<int::ShardTarget> {
    Some(int::ShardTarget {
        collection: "docs".into(),
        shard: 3,
        epoch: 42,
    })
}

fn shard_status() -> int::ShardStatus {
    int::ShardStatus {
        collection: "docs".into(),
        shard: 3,
        epoch: 42,
        role: int::Role::Writer as i32,
        state: int::ShardState::Failed as i32,
        live_points: 1_000,
        segments: 2,
        error: "segment 00000000000000000007 checksum mismatch".into(),
        followers: vec![int::FollowerLag {
            node: "node-b".into(),
            durable_seq: 900,
            lag_seqs: 100,
            lag_ms: 1_500,
        }],
    }
}

#[test]
fn public_collection_messages_round_trip() {
    round_trip(&api::CreateCollectionRequest {
        name: "docs".into(),
        dimension: 3,
        metric: api::Metric::L2 as i32,
        shard_count: 0,
        storage: "local".into(),
        index: Some(index()),
        replication_factor: 3,
        write_ack: "all".into(),
    });
    round_trip(&api::CreateCollectionResponse { spec: Some(spec()) });
    round_trip(&api::ListCollectionsRequest {});
    round_trip(&api::ListCollectionsResponse {
        collections: vec![spec(), spec()],
    });
    round_trip(&api::DescribeCollectionRequest {
        name: "docs".into(),
    });
    round_trip(&api::DescribeCollectionResponse {
        spec: Some(spec()),
        shards: vec![api::ShardInfo {
            number: 1,
            owner_node: "node-a".into(),
            epoch: 7,
            state: api::ShardState::Serving as i32,
            live_points: Some(0),
        }],
    });
    round_trip(&api::DropCollectionRequest {
        name: "docs".into(),
    });
    round_trip(&api::DropCollectionResponse {});
}

#[test]
fn public_point_messages_round_trip() {
    round_trip(&api::UpsertRequest {
        collection: "docs".into(),
        points: vec![point(int_key(u64::MAX)), point(str_key("é"))],
    });
    round_trip(&api::UpsertResponse {});
    round_trip(&api::DeleteRequest {
        collection: "docs".into(),
        keys: vec![int_key(1), str_key("a")],
    });
    round_trip(&api::DeleteResponse {});
    round_trip(&api::GetRequest {
        collection: "docs".into(),
        keys: vec![int_key(1)],
    });
    let got = round_trip(&api::GetResponse {
        points: vec![point(int_key(1))],
    });
    assert_eq!(got.points[0].metadata.len(), 5);
    round_trip(&api::ScanRequest {
        collection: "docs".into(),
        cursor: "opaque".into(),
        limit: 500,
    });
    round_trip(&api::ScanResponse {
        points: vec![point(str_key("b"))],
        next_cursor: String::new(),
    });
}

#[test]
fn public_search_and_status_messages_round_trip() {
    use api::search_request::FilterSpec;
    let mut search = api::SearchRequest {
        collection: "docs".into(),
        vector: vec![1.0, 0.0, 0.0],
        k: 10,
        filter_spec: Some(FilterSpec::Filter(nested_filter())),
        ef: Some(128),
        exact: false,
        with_metadata: true,
        with_payload: true,
        with_vector: false,
        allow_partial: true,
        timeout_ms: Some(250),
        ..Default::default()
    };
    round_trip(&search);
    search.filter_spec = Some(FilterSpec::FilterJson(
        r#"{"field":"color","eq":"red"}"#.into(),
    ));
    round_trip(&search);
    round_trip(&api::SearchResponse {
        hits: vec![api::Hit {
            key: Some(int_key(9)),
            score: 0.93,
            metadata: metadata(),
            payload: b"p".to_vec(),
            vector: vec![1.0, 0.0, 0.0],
        }],
        coverage: Some(api::Coverage {
            shards_total: 4,
            shards_answered: 3,
            missing_shards: vec![2],
        }),
        ..Default::default()
    });
    round_trip(&api::ClusterStatusRequest {});
    round_trip(&api::ClusterStatusResponse {
        routers: vec![api::RouterInfo {
            id: 1,
            address: "10.0.0.1:7000".into(),
            leader: true,
        }],
        nodes: vec![api::NodeInfo {
            id: "node-a".into(),
            address: "10.0.0.2:7100".into(),
            state: api::NodeState::Alive as i32,
            last_heartbeat_ms_ago: Some(120),
            shards: vec![api::ShardRef {
                collection: "docs".into(),
                number: 0,
            }],
            zone: "eu-1a".into(),
        }],
        shards: vec![api::ShardPlacement {
            collection: "docs".into(),
            number: 0,
            owner: "node-a".into(),
            epoch: 3,
            readers: vec!["node-b".into()],
            state: api::ShardState::Failed as i32,
            error: "storage: 403 Forbidden".into(),
            replicas: vec![api::ReplicaInfo {
                node: "node-a".into(),
                role: "primary".into(),
                epoch: 3,
                in_sync: true,
                lag_seqs: Some(0),
                lag_seconds: Some(0.0),
            }],
        }],
    });
}

#[test]
fn filters_nest_and_survive_a_round_trip() {
    use api::condition::Op;
    use api::filter::Kind;
    let back = round_trip(&nested_filter());

    let Some(Kind::And(and)) = back.kind else {
        panic!("top level is not `and`: {back:?}");
    };
    assert_eq!(and.filters.len(), 3);
    let Some(Kind::Or(or)) = &and.filters[1].kind else {
        panic!("second operand is not `or`: {:?}", and.filters[1]);
    };
    let Some(Kind::Not(inner)) = &or.filters[0].kind else {
        panic!("first `or` operand is not `not`: {:?}", or.filters[0]);
    };
    let Some(Kind::Condition(cond)) = &inner.kind else {
        panic!("`not` does not wrap a condition: {inner:?}");
    };
    assert_eq!(cond.field, "tags");
    let Some(Op::In(values)) = &cond.op else {
        panic!("innermost condition is not `in`: {cond:?}");
    };
    assert_eq!(
        values.values[0].kind,
        Some(api::value::Kind::StringValue("old".into()))
    );
    let Some(Kind::Condition(range)) = &or.filters[1].kind else {
        panic!("second `or` operand is not a condition");
    };
    assert!(matches!(&range.op, Some(Op::Range(r)) if r.gt.is_none() && r.lt.is_some()));
    let Some(Kind::Condition(exists)) = &and.filters[2].kind else {
        panic!("third operand is not a condition");
    };
    assert_eq!(exists.op, Some(Op::Exists(true)));
}

#[test]
fn node_messages_round_trip() {
    round_trip(&int::AssignShardRequest {
        collection: "docs".into(),
        shard: 3,
        epoch: 42,
        role: int::Role::Reader as i32,
        storage: "s3://bucket/prefix/docs/shard-0003".into(),
        dimension: 3,
        metric: api::Metric::Dot as i32,
        index: Some(index()),
        incarnation: 17,
        restore: None,
        replication: None,
    });
    round_trip(&int::AssignShardResponse {
        state: int::ShardState::Opening as i32,
    });
    round_trip(&int::ReleaseShardRequest {
        collection: "docs".into(),
        shard: 3,
        epoch: 42,
        delete_data: true,
        storage: "local".into(),
        incarnation: 17,
    });
    round_trip(&int::ReleaseShardResponse {});
    round_trip(&int::UpsertRequest {
        target: target(),
        points: vec![point(int_key(5))],
    });
    round_trip(&int::UpsertResponse {});
    round_trip(&int::DeleteRequest {
        target: target(),
        keys: vec![str_key("x")],
    });
    round_trip(&int::DeleteResponse {});
    round_trip(&int::GetRequest {
        target: target(),
        keys: vec![int_key(5)],
    });
    round_trip(&int::GetResponse {
        points: vec![point(int_key(5))],
    });
    round_trip(&int::SearchRequest {
        target: target(),
        vector: vec![0.5; 3],
        k: 40,
        filter: Some(nested_filter()),
        ef: None,
        exact: true,
        with_metadata: false,
        with_payload: true,
        with_vector: true,
        ..Default::default()
    });
    round_trip(&int::SearchResponse {
        hits: vec![int::ShardHit {
            key: Some(str_key("k")),
            distance: 0.07,
            score: 0.93,
            metadata: metadata(),
            payload: vec![1, 2, 3],
            vector: vec![0.5; 3],
        }],
    });
    round_trip(&int::ScanRequest {
        target: target(),
        start_after: Some(int_key(99)),
        limit: 1_000,
    });
    round_trip(&int::ScanResponse {
        points: vec![point(int_key(100))],
        next_start_after: Some(int_key(100)),
    });
    round_trip(&int::NodeStatusRequest {});
    round_trip(&int::NodeStatusResponse {
        node_id: "node-a".into(),
        address: "10.0.0.2:7100".into(),
        shards: vec![shard_status()],
    });
}

#[test]
fn router_internal_messages_round_trip() {
    round_trip(&int::RegisterNodeRequest {
        node_id: "node-a".into(),
        address: "10.0.0.2:7100".into(),
        zone: "eu-1a".into(),
    });
    round_trip(&int::RegisterNodeResponse { created: true });
    round_trip(&int::Heartbeat {
        node_id: "node-a".into(),
        address: "10.0.0.2:7100".into(),
        shards: vec![shard_status()],
    });
    round_trip(&int::HeartbeatResponse {
        leader_id: Some(2),
        routers: vec![int::RouterEndpoint {
            id: 2,
            address: "10.0.0.1:7000".into(),
        }],
        shard_map_version: 17,
        lease_ms: 1_000,
        leased: vec![int::ShardTarget {
            collection: "docs".into(),
            shard: 3,
            epoch: 12,
        }],
    });
    round_trip(&int::RaftRequest {
        payload: vec![0, 159, 146, 150],
    });
    round_trip(&int::RaftResponse {
        payload: b"{\"Ok\":{}}".to_vec(),
    });
}

#[test]
fn not_owner_travels_in_status_details() {
    let detail = int::NotOwner {
        collection: "docs".into(),
        shard: 3,
        caller_epoch: 41,
        node_epoch: Some(42),
        node_role: int::Role::Writer as i32,
        reason: int::NotOwnerReason::StaleCaller as i32,
    };
    let status = tonic::Status::with_details(
        tonic::Code::FailedPrecondition,
        "not owner: docs/3 is at epoch 42, caller sent 41",
        detail.encode_to_vec().into(),
    );
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    let back = int::NotOwner::decode(status.details()).expect("details decode");
    assert_eq!(back, detail);
    assert_eq!(back.reason(), int::NotOwnerReason::StaleCaller);
}

#[test]
fn descriptor_sets_hold_their_services_only() {
    let has = |set: &[u8], name: &str| set.windows(name.len()).any(|w| w == name.as_bytes());
    let public = api::FILE_DESCRIPTOR_SET;
    let internal = int::FILE_DESCRIPTOR_SET;
    assert!(has(public, "vecshard/v1/vecshard.proto") && has(public, "VecShard"));
    assert!(
        !has(public, "RouterInternal"),
        "internal API in the public set"
    );
    for name in [
        "node.proto",
        "router.proto",
        "RouterInternal",
        "vecshard.proto",
    ] {
        assert!(has(internal, name), "{name} missing from the internal set");
    }
}
