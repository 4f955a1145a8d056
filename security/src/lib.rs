//! vecshard-security: the cluster's trust boundary, shared by routers, nodes and the CLI.
//!
//! - [`tls`]: the certificate, key and CA files of a process, turned into tonic server and
//!   client TLS settings (rustls on aws-lc) and a rustls server for REST ([`rest_tls`]).
//! - [`identity`]: who a peer is, read from its certificate (`vecshard://router/<id>`,
//!   `vecshard://node/<id>` URI SANs).
//! - [`secret`]: the shared cluster secret for clusters without TLS, and the credentials
//!   every internal call carries.
//! - [`auth`]: the rule applied to every internal call: who may call what.
//! - `generate` (feature): a CA plus router and node certificates.
//!
//! See `docs/design/006-security.md`.
#![warn(missing_docs)]

pub mod auth;
mod error;
#[cfg(feature = "generate")]
pub mod generate;
pub mod identity;
pub mod rest_tls;
pub mod secret;
pub mod tls;

pub use auth::{Caller, ClusterAuth, MembersOnly, RouterOnly};
pub use error::SecurityError;
pub use identity::Identity;
pub use secret::{AuthChannel, Credentials, SECRET_HEADER, Secret};
pub use tls::{Outbound, TlsFiles};
