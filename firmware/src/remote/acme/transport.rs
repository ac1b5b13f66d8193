//! The HTTPS client instant-acme talks to the CA through: our hyper 1 + rustls (ring) stack instead of the
//! crate's hyper-rustls/aws-lc-rs default, bounded so a CA that answers garbage or slowly cannot hold the
//! task or fill memory: [`REQUEST_TIMEOUT`] per request (connect, TLS, head and body), [`MAX_BODY`] per answer.
//!
//! Trust: the ISRG roots (Let's Encrypt) built in, plus the roots of `--acme-root FILE` (a test CA such as
//! Pebble, or another CA's root for an owner's domain).

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Request;
use instant_acme::{BodyWrapper, BytesResponse, Error, HttpClient};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// One request to the CA, connect to last body byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the CA: a directory, an order or a PEM chain is a few KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// ISRG Root X1 and X2, Let's Encrypt's roots (the CA's directory is served under them).
const ISRG_ROOTS: &str = include_str!("isrg-roots.pem");

/// Why a request to the CA failed, in words for the screen's details.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the ACME server URL {0:?} is not https://host[:port]/path")]
    Url(String),
    #[error("cannot reach the ACME server {0}: {1}")]
    Connect(String, String),
    #[error("the ACME server did not answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Slow,
    #[error("the ACME server answered more than {MAX_BODY} bytes")]
    TooLarge,
    #[error("the ACME server's answer is not HTTP: {0}")]
    Garbage(String),
}

/// An [`HttpClient`] for instant-acme over one fresh HTTP/1.1 + TLS connection per request.
pub struct Transport {
    tls: Arc<rustls::ClientConfig>,
}

impl Transport {
    /// A client trusting the ISRG roots and those in `extra_root` (PEM), if given.
    pub fn new(extra_root: Option<&Path>) -> Result<Transport, String> {
        let mut roots = rustls::RootCertStore::empty();
        let mut pem = ISRG_ROOTS.as_bytes().to_vec();
        if let Some(p) = extra_root {
            pem.extend(std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?);
        }
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("a trusted ACME root is not PEM: {e}"))?;
            roots.add(cert).map_err(|e| format!("a trusted ACME root cannot be used: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Transport { tls: Arc::new(tls) })
    }
}

impl HttpClient for Transport {
    fn request(&self, req: Request<BodyWrapper<Bytes>>) -> Pin<Box<dyn Future<Output = Result<BytesResponse, Error>> + Send>> {
        let tls = self.tls.clone();
        Box::pin(async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, exchange(tls, req)).await {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(e)) => Err(Error::Other(Box::new(e))),
                Err(_) => Err(Error::Other(Box::new(TransportError::Slow))),
            }
        })
    }
}

/// Connect, TLS (the URL's host as SNI and verified name; an IP address as an IP SAN), one HTTP/1.1 exchange,
/// the body read up to [`MAX_BODY`].
async fn exchange(tls: Arc<rustls::ClientConfig>, mut req: Request<BodyWrapper<Bytes>>) -> Result<BytesResponse, TransportError> {
    let uri = req.uri().clone();
    let bad_url = || TransportError::Url(uri.to_string());
    if uri.scheme_str() != Some("https") {
        return Err(bad_url());
    }
    let host = uri.host().ok_or_else(bad_url)?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(443);
    let name = ServerName::try_from(host.clone()).map_err(|_| bad_url())?;
    let target = format!("{host}:{port}");
    let connect_err = |e: &dyn std::fmt::Display| TransportError::Connect(target.clone(), e.to_string());
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| connect_err(&e))?;
    let stream = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.map_err(|e| connect_err(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| TransportError::Garbage(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or(target.clone());
    *req.uri_mut() = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").parse().map_err(|_| bad_url())?;
    req.headers_mut().insert(hyper::header::HOST, authority.parse().map_err(|_| bad_url())?);
    let res = sender.send_request(req).await.map_err(|e| TransportError::Garbage(e.to_string()));
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            driver.abort();
            return Err(e);
        }
    };
    let (parts, body) = res.into_parts();
    let body = http_body_util::Limited::new(body, MAX_BODY).collect().await;
    driver.abort();
    let body = body.map_err(|e| match e.downcast_ref::<http_body_util::LengthLimitError>() {
        Some(_) => TransportError::TooLarge,
        None => TransportError::Garbage(e.to_string()),
    })?;
    Ok(BytesResponse { parts, body: Box::new(body.to_bytes()) })
}
