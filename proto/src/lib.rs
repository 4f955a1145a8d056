//! vecshard's gRPC API: the types and the tonic clients and servers generated from the
//! .proto files under `proto/`, and a faster server path for single unary RPCs. Proto types
//! only; conversions to and from the engine's types live in the crates that use them.
//!
//! - [`v1`]: the public client API (`vecshard.v1.VecShard`), served by routers.
//! - [`internal::v1`]: router ↔ node (`vecshard.internal.v1.Node`) and node/router →
//!   router (`vecshard.internal.v1.RouterInternal`), for trusted cluster peers only.
//! - [`fast_unary`]: one unary RPC served without tonic's per-call stack.
//!
//! Every message, field, enum value, service and RPC in the .proto files carries a comment
//! (they are the API reference), which `missing_docs` checks on the generated code.

#![warn(missing_docs)]

pub mod coalesce;
pub mod fast_unary;

/// The public client API, package `vecshard.v1`.
pub mod v1 {
    tonic::include_proto!("vecshard.v1");

    /// Encoded `FileDescriptorSet` of `vecshard/v1/vecshard.proto`, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/vecshard_v1_descriptor.bin"));
}

/// Internal APIs between routers and nodes.
pub mod internal {
    /// Package `vecshard.internal.v1`: services `Node` and `RouterInternal`.
    pub mod v1 {
        // Generated into its own directory (see build.rs), hence not `include_proto!`.
        include!(concat!(
            env!("OUT_DIR"),
            "/internal/vecshard.internal.v1.rs"
        ));

        /// Encoded `FileDescriptorSet` of the internal protos (and the public proto they
        /// import), for gRPC reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(
            env!("OUT_DIR"),
            "/vecshard_internal_v1_descriptor.bin"
        ));
    }
}
