//! Signature verification: RSA PKCS#1 v1.5 (`rsa`) and ECDSA P-256/P-384.

use crate::algorithms::{DigestAlg, Verifier};
use crate::error::{CryptoError, Result};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};

pub struct RsaPkcs1Verifier;

impl Verifier for RsaPkcs1Verifier {
    fn verify(&self, key: &[u8], alg: DigestAlg, digest: &[u8], sig: &[u8]) -> Result<()> {
        let pk = RsaPublicKey::from_pkcs1_der(key)
            .map_err(|e| CryptoError::BadKey(format!("RSAPublicKey DER: {e}")))?;
        let scheme = match alg {
            DigestAlg::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
            DigestAlg::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
            DigestAlg::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
            DigestAlg::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
        };
        pk.verify(scheme, digest, sig)
            .map_err(|_| CryptoError::BadSignature)
    }
}

pub struct EcdsaP256Verifier;
pub struct EcdsaP384Verifier;

macro_rules! ecdsa_verify {
    ($curve:ident, $key:expr, $digest:expr, $sig:expr) => {{
        use $curve::ecdsa::signature::hazmat::PrehashVerifier;
        use $curve::ecdsa::{Signature, VerifyingKey};
        let vk = VerifyingKey::from_sec1_bytes($key)
            .map_err(|_| CryptoError::BadKey("SEC1 point".into()))?;
        let sig = Signature::from_der($sig).map_err(|_| CryptoError::BadSignature)?;
        vk.verify_prehash($digest, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }};
}

impl Verifier for EcdsaP256Verifier {
    fn verify(&self, key: &[u8], _alg: DigestAlg, digest: &[u8], sig: &[u8]) -> Result<()> {
        ecdsa_verify!(p256, key, digest, sig)
    }
}

impl Verifier for EcdsaP384Verifier {
    fn verify(&self, key: &[u8], _alg: DigestAlg, digest: &[u8], sig: &[u8]) -> Result<()> {
        ecdsa_verify!(p384, key, digest, sig)
    }
}
