//! The HTTPS endpoint kubeconfig files name. client-go (kubectl) sends bearer tokens and
//! impersonation headers only over TLS (clientcmd DirectClientConfig.ClientConfig reads the
//! user's credentials only when the transport is TLS), so an authenticating emulator must speak
//! TLS to kubectl. Each start makes a fresh CA and a server certificate for the loopback
//! address; the kubeconfig carries the CA as `certificate-authority-data`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_util::sync::CancellationToken;

/// A per-run CA and the server configuration its certificate is used in.
pub struct TlsIdentity {
    /// The CA certificate (PEM) clients must trust.
    pub ca_pem: String,
    /// The server's rustls configuration (HTTP/1.1 only).
    pub config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

/// Makes a CA and a server certificate valid for `localhost`, 127.0.0.1 and `ip`.
pub fn identity(ip: IpAddr) -> Result<TlsIdentity, String> {
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kfconform-emulator-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;

    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kfconform-emulator");
    let loopback = IpAddr::from([127, 0, 0, 1]);
    params.subject_alt_names.push(SanType::IpAddress(loopback));
    if ip != loopback && !ip.is_unspecified() {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(err)?;

    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsIdentity {
        ca_pem: pem(ca.der()),
        config: Arc::new(config),
    })
}

/// A certificate in PEM form.
fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Serves `router` over TLS on `listener` until `cancel` fires.
pub fn serve(
    listener: TcpListener,
    router: Router,
    config: Arc<ServerConfig>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer): (_, SocketAddr) = tokio::select! {
                _ = cancel.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "emulator TLS accept failed");
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                };
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router));
                tokio::select! {
                    r = conn => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "TLS connection ended");
                        }
                    }
                    _ = cancel.cancelled() => {}
                }
            });
        }
    })
}
