//! Certificate pinning: a node's certificate is self-signed, so no web PKI
//! root can vouch for it. Instead the client trusts exactly one certificate,
//! named by the SHA-256 of its DER (the fingerprint the user confirmed when
//! pairing), and still checks that the server proves it holds that
//! certificate's key (the handshake signatures).
//!
//! [`PinnedVerifier`] works two ways:
//! - pinned ([`PinnedVerifier::new`]), for every call: accepts the pinned
//!   certificate and nothing else; a different one fails with a
//!   [`Presented`] error that carries the presented hash, so that the
//!   caller can say which it was;
//! - recording ([`PinnedVerifier::recording`]), for first-time pairing:
//!   records the presented certificate's hash and refuses the connection,
//!   so nothing is ever sent to a server that was not confirmed.
//!
//! The server name is not checked: the certificate is the node's identity,
//! whatever address the user reaches it by.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The SHA-256 of a certificate's DER: its fingerprint.
pub fn certificate_fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// Compares two fingerprints in time that does not depend on where they
/// differ.
pub fn fingerprints_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The error a verifier returns for a certificate it does not accept; the
/// client finds it again in the connection error to report the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented(pub [u8; 32]);

impl std::fmt::Display for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server presented certificate {}, which is not the pinned one",
            archipelago_api::rpc::format_fingerprint(&self.0)
        )
    }
}

impl std::error::Error for Presented {}

fn refuse(presented: [u8; 32]) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        Presented(presented),
    ))))
}

/// The crypto provider everything here uses: ring (no aws-lc-rs C build).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Trusts a server by its certificate's fingerprint alone: in pinned mode
/// it accepts exactly one certificate; in recording mode (first-time
/// pairing) it records the presented one and refuses it.
#[derive(Debug)]
pub struct PinnedVerifier {
    check: Check,
    algorithms: WebPkiSupportedAlgorithms,
}

#[derive(Debug)]
enum Check {
    Pin([u8; 32]),
    Record(Arc<Mutex<Option<[u8; 32]>>>),
}

impl PinnedVerifier {
    /// Accepts the certificate with this fingerprint, and nothing else.
    pub fn new(expected: [u8; 32], provider: &CryptoProvider) -> Self {
        Self {
            check: Check::Pin(expected),
            algorithms: provider.signature_verification_algorithms,
        }
    }

    /// Refuses every certificate, writing the presented one's fingerprint
    /// into the returned slot.
    pub fn recording(provider: &CryptoProvider) -> (Self, Arc<Mutex<Option<[u8; 32]>>>) {
        let seen = Arc::new(Mutex::new(None));
        let verifier = Self {
            check: Check::Record(Arc::clone(&seen)),
            algorithms: provider.signature_verification_algorithms,
        };
        (verifier, seen)
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = certificate_fingerprint(end_entity.as_ref());
        match &self.check {
            Check::Pin(expected) if fingerprints_equal(&presented, expected) => {
                Ok(ServerCertVerified::assertion())
            }
            Check::Pin(_) => Err(refuse(presented)),
            Check::Record(seen) => {
                *seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(presented);
                Err(refuse(presented))
            }
        }
    }

    // In recording mode never reached (the certificate is refused first),
    // but a verifier that accepted a signature unchecked would be a trap.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS client configuration that trusts only what `verifier` accepts,
/// speaks HTTP/1.1 and uses the ring provider.
pub fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Finds a [`Presented`] refusal in an error's chain, looking inside the
/// `io::Error`s that TLS streams wrap their errors in (whose `source()`
/// skips the wrapped error).
pub(crate) fn find_presented(err: &(dyn std::error::Error + 'static)) -> Option<[u8; 32]> {
    find_in_chain(err, &|e| {
        let rustls::Error::InvalidCertificate(CertificateError::Other(other)) =
            e.downcast_ref::<rustls::Error>()?
        else {
            return None;
        };
        let inner: &(dyn std::error::Error + 'static) = &*other.0;
        inner.downcast_ref::<Presented>().map(|p| p.0)
    })
}

/// Finds the first TLS error in an error's chain.
pub(crate) fn find_tls_error(err: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    find_in_chain(err, &|e| e.downcast_ref::<rustls::Error>().cloned())
}

/// Applies `f` to each error of the chain, descending into `io::Error`s'
/// wrapped errors too, and returns the first hit.
pub(crate) fn find_in_chain<T>(
    err: &(dyn std::error::Error + 'static),
    f: &dyn Fn(&(dyn std::error::Error + 'static)) -> Option<T>,
) -> Option<T> {
    let mut next = Some(err);
    // Bounded, in case a chain ever loops.
    for _ in 0..32 {
        let e = next?;
        if let Some(hit) = f(e) {
            return Some(hit);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let inner: &(dyn std::error::Error + 'static) = inner;
            if let Some(hit) = find_in_chain(inner, f) {
                return Some(hit);
            }
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> UnixTime {
        UnixTime::now()
    }

    fn name() -> ServerName<'static> {
        ServerName::try_from("node.local").unwrap()
    }

    #[test]
    fn the_pinned_certificate_is_accepted() {
        let der = CertificateDer::from(b"certificate one".to_vec());
        let v = PinnedVerifier::new(certificate_fingerprint(der.as_ref()), &provider());
        assert!(v.verify_server_cert(&der, &[], &name(), &[], now()).is_ok());
    }

    #[test]
    fn another_certificate_is_refused_naming_its_fingerprint() {
        let pinned = CertificateDer::from(b"certificate one".to_vec());
        let other = CertificateDer::from(b"certificate two".to_vec());
        let v = PinnedVerifier::new(certificate_fingerprint(pinned.as_ref()), &provider());
        let err = v
            .verify_server_cert(&other, &[], &name(), &[], now())
            .unwrap_err();
        assert_eq!(
            find_presented(&err),
            Some(certificate_fingerprint(other.as_ref()))
        );
        // Also when wrapped as a TLS stream wraps it.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, err);
        assert_eq!(
            find_presented(&io),
            Some(certificate_fingerprint(other.as_ref()))
        );
    }

    #[test]
    fn intermediates_cannot_stand_in_for_the_pinned_certificate() {
        let pinned = CertificateDer::from(b"certificate one".to_vec());
        let other = CertificateDer::from(b"certificate two".to_vec());
        let v = PinnedVerifier::new(certificate_fingerprint(pinned.as_ref()), &provider());
        assert!(
            v.verify_server_cert(&other, &[pinned], &name(), &[], now())
                .is_err()
        );
    }

    #[test]
    fn the_recording_verifier_records_and_refuses() {
        let der = CertificateDer::from(b"certificate one".to_vec());
        let (v, seen) = PinnedVerifier::recording(&provider());
        assert!(
            v.verify_server_cert(&der, &[], &name(), &[], now())
                .is_err()
        );
        assert_eq!(
            *seen.lock().unwrap(),
            Some(certificate_fingerprint(der.as_ref()))
        );
    }

    #[test]
    fn signatures_are_checked_with_the_ring_algorithms() {
        let v = PinnedVerifier::new([0; 32], &provider());
        let schemes = v.supported_verify_schemes();
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP256_SHA256));
        assert!(schemes.contains(&SignatureScheme::ED25519));
    }

    #[test]
    fn fingerprint_comparison() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(fingerprints_equal(&a, &b));
        b[31] ^= 1;
        assert!(!fingerprints_equal(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!fingerprints_equal(&a, &b));
    }
}
