//! gRPC health checking (`grpc.health.v1`) and server reflection on the router's public
//! port, without an API key.

mod common;

use common::*;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer_on_the_public_port() {
    let dir = tempfile::tempdir().unwrap();
    let router = vecshard_router::start(test_config(dir.path(), 1))
        .await
        .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", router.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut health = HealthClient::new(channel.clone());
    for service in ["", "vecshard.v1.VecShard"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"vecshard.v1.VecShard".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
}

/// A request whose `grpc-timeout` passes while the router still waits for its body is
/// answered DEADLINE_EXCEEDED (tonic's own timer would say CANCELLED).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_is_deadline_exceeded_not_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let router = vecshard_router::start(test_config(dir.path(), 1))
        .await
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(router.grpc_addr())
        .await
        .unwrap();
    let (h2, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut h2 = h2.ready().await.unwrap();
    for path in [
        "/vecshard.v1.VecShard/Search",
        "/vecshard.v1.VecShard/Upsert",
    ] {
        let req =
            tonic::codegen::http::Request::post(format!("http://{}{path}", router.grpc_addr()))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("grpc-timeout", "5m")
                .body(())
                .unwrap();
        // The body never comes: the stream stays open until the router answers.
        let (answer, _body) = h2.send_request(req, false).unwrap();
        let answer = answer.await.unwrap();
        let status = answer
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap());
        let message = answer.headers().get("grpc-message");
        assert_eq!(status, Some("4"), "{path}: {message:?}");
        let message = message.unwrap().to_str().unwrap();
        assert!(message.contains("deadline"), "{path}: {message}");
    }
    router.shutdown().await;
}
