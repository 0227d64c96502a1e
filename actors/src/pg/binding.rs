//! SCRAM channel binding over TLS (`tls-server-end-point`, RFC 5929 §4.1): the server's
//! certificate hashed with the hash of its signature algorithm, SHA-256 standing in for MD5 and
//! SHA-1. Reading that algorithm takes a few steps into the certificate's DER, done here rather
//! than with an X.509 crate: the certificate is `SEQUENCE { tbsCertificate SEQUENCE,
//! signatureAlgorithm SEQUENCE { OID, … }, … }`.
//!
//! Algorithms whose hash is not named by their OID alone (RSA-PSS, Ed25519) give no binding, as
//! RFC 5929 leaves them undefined.

use sha2::{Digest, Sha256, Sha384, Sha512};

enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// The `tls-server-end-point` value of a DER certificate, when its signature hash is known.
pub fn end_point_hash(cert: &[u8]) -> Option<Vec<u8>> {
    let (tag, body, _) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tbs_tag, _, after_tbs) = tlv(body)?;
    if tbs_tag != 0x30 {
        return None;
    }
    let (alg_tag, alg, _) = tlv(after_tbs)?;
    if alg_tag != 0x30 {
        return None;
    }
    let (oid_tag, oid, _) = tlv(alg)?;
    if oid_tag != 0x06 {
        return None;
    }
    Some(match hash_of(oid)? {
        Hash::Sha256 => Sha256::digest(cert).as_slice().to_vec(),
        Hash::Sha384 => Sha384::digest(cert).as_slice().to_vec(),
        Hash::Sha512 => Sha512::digest(cert).as_slice().to_vec(),
    })
}

fn hash_of(oid: &[u8]) -> Option<Hash> {
    // 1.2.840.113549.1.1.n: PKCS #1 signatures.
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    // 1.2.840.10045.4.3.n: ECDSA with SHA-2; 1.2.840.10045.4.1: ECDSA with SHA-1.
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    if oid == ECDSA_SHA1 {
        return Some(Hash::Sha256);
    }
    if let Some(rest) = oid.strip_prefix(RSA) {
        return match rest {
            // md5, sha1, sha256, sha224 (hashed with SHA-256 here as for the weaker ones)
            [0x04] | [0x05] | [0x0b] | [0x0e] => Some(Hash::Sha256),
            [0x0c] => Some(Hash::Sha384),
            [0x0d] => Some(Hash::Sha512),
            _ => None,
        };
    }
    if let Some(rest) = oid.strip_prefix(ECDSA_SHA2) {
        return match rest {
            [0x01] | [0x02] => Some(Hash::Sha256),
            [0x03] => Some(Hash::Sha384),
            [0x04] => Some(Hash::Sha512),
            _ => None,
        };
    }
    None
}

/// One DER tag-length-value: (tag, value, what follows).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate's outer shape with the given signature algorithm OID.
    fn cert_with(oid: &[u8]) -> Vec<u8> {
        let tbs = [0x30, 0x03, 0x02, 0x01, 0x01];
        let mut alg = vec![0x30, (oid.len() + 4) as u8, 0x06, oid.len() as u8];
        alg.extend_from_slice(oid);
        alg.extend_from_slice(&[0x05, 0x00]);
        let mut body = tbs.to_vec();
        body.extend(alg);
        body.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut cert = vec![0x30, body.len() as u8];
        cert.extend(body);
        cert
    }

    #[test]
    fn the_hash_follows_the_signature_algorithm() {
        let sha256_rsa = cert_with(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]);
        assert_eq!(
            end_point_hash(&sha256_rsa).unwrap(),
            Sha256::digest(&sha256_rsa).as_slice()
        );
        let sha384_ecdsa = cert_with(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]);
        assert_eq!(end_point_hash(&sha384_ecdsa).unwrap().len(), 48);
        let sha1_rsa = cert_with(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05]);
        assert_eq!(end_point_hash(&sha1_rsa).unwrap().len(), 32);
        // Ed25519 (1.3.101.112) and RSA-PSS name no single hash.
        assert!(end_point_hash(&cert_with(&[0x2b, 0x65, 0x70])).is_none());
        assert!(end_point_hash(&cert_with(&[
            0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a
        ]))
        .is_none());
    }

    #[test]
    fn truncated_or_foreign_input_gives_no_binding() {
        assert!(end_point_hash(&[]).is_none());
        assert!(end_point_hash(&[0x30, 0x82, 0xff]).is_none());
        assert!(end_point_hash(&[0x04, 0x00]).is_none());
        let mut c = cert_with(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
        c.truncate(c.len() - 5);
        assert!(end_point_hash(&c).is_none());
    }
}
