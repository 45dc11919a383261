//! X.509 certificates built into the image (certs/system_certificates.S):
//! a run of concatenated DER certificates at `system_certificate_list`.

use crate::error::ProfileError;
use der::Decode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_after: String,
    /// SHA-256 of the DER encoding.
    pub sha256: String,
    pub der_len: usize,
}

/// Length of the DER SEQUENCE at the start of `d` (header + content).
fn der_seq_len(d: &[u8]) -> Option<usize> {
    if *d.first()? != 0x30 {
        return None;
    }
    let l0 = *d.get(1)?;
    if l0 < 0x80 {
        return Some(2 + usize::from(l0));
    }
    let n = usize::from(l0 & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | usize::from(*d.get(2 + i)?);
    }
    Some(2 + n + len)
}

/// Parse every certificate in `list`; stops at zero padding (the reserved
/// space for extra certificates is zero-filled).
pub fn parse_cert_list(list: &[u8]) -> Result<Vec<CertInfo>, ProfileError> {
    let mut out = vec![];
    let mut p = 0;
    while p < list.len() {
        let rest = &list[p..];
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let len = der_seq_len(rest)
            .filter(|&l| l <= rest.len())
            .ok_or_else(|| ProfileError::Certs(format!("no DER certificate at offset {p}")))?;
        let der = &rest[..len];
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| ProfileError::Certs(format!("certificate at offset {p}: {e}")))?;
        let tbs = &cert.tbs_certificate;
        out.push(CertInfo {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            serial: hex::encode(tbs.serial_number.as_bytes()),
            not_after: tbs.validity.not_after.to_string(),
            sha256: hex::encode(Sha256::digest(der)),
            der_len: len,
        });
        p += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_and_garbage() {
        assert_eq!(der_seq_len(&[0x30, 0x03, 1, 2, 3]), Some(5));
        assert_eq!(der_seq_len(&[0x30, 0x82, 0x01, 0x00]), Some(4 + 256));
        assert_eq!(der_seq_len(&[0x31, 0x00]), None);
        assert!(parse_cert_list(&[0u8; 16]).unwrap().is_empty());
        assert!(parse_cert_list(&[0x30, 0x82, 0xff, 0xff, 0]).is_err());
        assert!(parse_cert_list(&[0x30, 0x03, 1, 2, 3]).is_err());
    }
}
