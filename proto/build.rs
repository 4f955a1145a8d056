//! Generates the tonic/prost code for vecshard's .proto files, with a file descriptor set
//! per API so a server can offer gRPC reflection.

use std::path::PathBuf;

const PUBLIC: &[&str] = &["proto/vecshard/v1/vecshard.proto"];
const INTERNAL: &[&str] = &[
    "proto/vecshard/internal/v1/node.proto",
    "proto/vecshard/internal/v1/router.proto",
];

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("vecshard_v1_descriptor.bin"))
        .compile_with_config(config(), PUBLIC, &["proto"])?;

    // The internal protos import the public one and use the types generated above. Their
    // own output directory keeps the services-only copy of `vecshard.v1.rs` that this
    // run also writes from overwriting the real one.
    let internal_dir = out_dir.join("internal");
    std::fs::create_dir_all(&internal_dir)?;
    tonic_prost_build::configure()
        .extern_path(".vecshard.v1", "crate::v1")
        .out_dir(&internal_dir)
        .file_descriptor_set_path(out_dir.join("vecshard_internal_v1_descriptor.bin"))
        .compile_with_config(config(), INTERNAL, &["proto"])
}

/// A prost configuration that runs the vendored protoc unless `PROTOC` names another.
fn config() -> tonic_prost_build::Config {
    let mut config = tonic_prost_build::Config::new();
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc for this host");
        config.protoc_executable(protoc);
    }
    config
}
