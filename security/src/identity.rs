//! Cluster identities: a router or a node, named in its certificate by a URI subject
//! alternative name, `vecshard://router/<id>` or `vecshard://node/<id>`. The CA that signs
//! the certificates is the cluster's; a certificate it signed with such a URI is that
//! member.

use std::fmt;

const ROUTER: &str = "vecshard://router/";
const NODE: &str = "vecshard://node/";

/// A cluster member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A router, by Raft id.
    Router(String),
    /// A data node, by node id.
    Node(String),
}

impl Identity {
    /// The URI that names this identity in a certificate.
    pub fn uri(&self) -> String {
        match self {
            Identity::Router(id) => format!("{ROUTER}{id}"),
            Identity::Node(id) => format!("{NODE}{id}"),
        }
    }

    /// The identity a URI names, if it is a vecshard identity.
    pub fn from_uri(uri: &str) -> Option<Identity> {
        let named =
            |rest: &str| (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string());
        if let Some(rest) = uri.strip_prefix(ROUTER) {
            named(rest).map(Identity::Router)
        } else {
            uri.strip_prefix(NODE).and_then(named).map(Identity::Node)
        }
    }

    /// The identity in a DER certificate (already verified against the cluster CA by the
    /// TLS handshake). Exactly one vecshard URI must be present.
    pub fn of_certificate(der: &[u8]) -> Result<Identity, String> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("unreadable certificate: {e}"))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| format!("bad subject alternative names: {e}"))?;
        let mut found = san
            .iter()
            .flat_map(|s| s.value.general_names.iter())
            .filter_map(|g| match g {
                GeneralName::URI(u) => Identity::from_uri(u),
                _ => None,
            });
        match (found.next(), found.next()) {
            (Some(id), None) => Ok(id),
            (None, _) => Err("the certificate names no vecshard identity (a URI SAN vecshard://router/<id> or vecshard://node/<id>)".into()),
            (Some(_), Some(_)) => Err("the certificate names more than one vecshard identity".into()),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Router(id) => write!(f, "router {id}"),
            Identity::Node(id) => write!(f, "node {id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_junk_is_no_identity() {
        for id in [
            Identity::Router("3".into()),
            Identity::Node("node-1".into()),
        ] {
            assert_eq!(Identity::from_uri(&id.uri()), Some(id));
        }
        for junk in [
            "vecshard://router/",
            "vecshard://node/a/b",
            "https://node/x",
            "vecshard://admin/x",
        ] {
            assert_eq!(Identity::from_uri(junk), None, "{junk}");
        }
    }
}
