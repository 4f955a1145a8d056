//! Certificates for a cluster that has none: a CA, and for each router and node a
//! certificate naming its identity (`vecshard://router/<id>`, `vecshard://node/<id>`) and
//! the hosts it is reached at, good for both server and client authentication. ECDSA
//! P-256 keys, valid for ten years from generation.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::SecurityError;
use crate::identity::Identity;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    /// DNS names and IP addresses every certificate names (besides each member's own
    /// name, `localhost` and `127.0.0.1`).
    pub hosts: Vec<String>,
    /// Router ids; each gets `router-<id>.pem` and `router-<id>.key`.
    pub routers: Vec<String>,
    /// Node ids; each gets `<id>.pem` and `<id>.key` when the id starts with `node`, else
    /// `node-<id>.pem`.
    pub nodes: Vec<String>,
}

/// The files of one member.
#[derive(Debug, Clone)]
pub struct MemberFiles {
    /// The identity in the certificate.
    pub identity: Identity,
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    /// The CA certificate every member trusts.
    pub ca: PathBuf,
    /// The CA's private key (keep it offline; it signs new members).
    pub ca_key: PathBuf,
    /// One entry per router, then per node.
    pub members: Vec<MemberFiles>,
}

fn err(what: &str) -> impl Fn(rcgen::Error) -> SecurityError + '_ {
    move |e| SecurityError::new(format!("{what}: {e}"))
}

fn write(path: &Path, text: &str, private: bool) -> Result<(), SecurityError> {
    let fail = |e: std::io::Error| SecurityError::new(format!("{}: {e}", path.display()));
    std::fs::write(path, text).map_err(fail)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

/// The file stem of a member.
fn stem(id: &Identity) -> String {
    match id {
        Identity::Router(r) => format!("router-{r}"),
        Identity::Node(n) if n.starts_with("node") => n.clone(),
        Identity::Node(n) => format!("node-{n}"),
    }
}

/// Write the CA and every member's certificate into `out` (created if missing).
pub fn generate(out: &Path, plan: &Plan) -> Result<Written, SecurityError> {
    std::fs::create_dir_all(out)
        .map_err(|e| SecurityError::new(format!("{}: {e}", out.display())))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err("CA"))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "vecshard cluster CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut ca);
    let ca_key = KeyPair::generate().map_err(err("CA key"))?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).map_err(err("CA"))?;
    let written_ca = out.join("ca.pem");
    let written_ca_key = out.join("ca.key");
    write(&written_ca, &issuer.pem(), false)?;
    write(&written_ca_key, &ca_key_pem, true)?;

    let ids = plan
        .routers
        .iter()
        .map(|r| Identity::Router(r.clone()))
        .chain(plan.nodes.iter().map(|n| Identity::Node(n.clone())));
    let mut members = Vec::new();
    for identity in ids {
        let name = stem(&identity);
        let mut hosts = vec![name.clone(), "localhost".into(), "127.0.0.1".into()];
        for h in &plan.hosts {
            if !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
        let mut p = CertificateParams::new(hosts).map_err(err(&name))?;
        let uri = rcgen::string::Ia5String::try_from(identity.uri()).map_err(err(&name))?;
        p.subject_alt_names.push(SanType::URI(uri));
        p.distinguished_name.push(DnType::CommonName, name.clone());
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        set_validity(&mut p);
        let key = KeyPair::generate().map_err(err(&name))?;
        let cert = p.signed_by(&key, &issuer).map_err(err(&name))?;
        let files = MemberFiles {
            identity,
            cert: out.join(format!("{name}.pem")),
            key: out.join(format!("{name}.key")),
        };
        write(&files.cert, &cert.pem(), false)?;
        write(&files.key, &key.serialize_pem(), true)?;
        members.push(files);
    }
    Ok(Written {
        ca: written_ca,
        ca_key: written_ca_key,
        members,
    })
}

fn set_validity(p: &mut CertificateParams) {
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    p.not_before = (now - day).into();
    p.not_after = (now + day * 3650).into();
}
