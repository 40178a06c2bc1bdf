//! Ed25519 signing keys for reports, stored as PKCS#8 / SPKI PEM so that a reviewer can check a
//! signature with nothing but `openssl` (see `reports/verify-with-openssl.sh`).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use ed25519_dalek::{Signature, Signer as _};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use thiserror::Error;

/// File name of the private key written by [`write_keypair`].
pub const PRIVATE_KEY_FILE: &str = "kfconform.key";
/// File name of the public key written by [`write_keypair`].
pub const PUBLIC_KEY_FILE: &str = "kfconform.pub";

/// Label used in errors when a key was given as text rather than read from a file.
const PEM_INPUT: &str = "PEM input";

/// Errors reading, parsing or writing keys; each names the file and the problem on one line.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The key file cannot be read.
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    /// The file is readable but does not hold the expected key.
    #[error("{file}: {problem}")]
    Invalid { file: String, problem: String },
    /// Writing would replace an existing key, which could destroy the only copy of a private key.
    #[error("{file}: already exists; refusing to overwrite a key")]
    Exists { file: String },
    /// The key file cannot be written.
    #[error("{file}: cannot write: {message}")]
    Write { file: String, message: String },
}

impl KeyError {
    /// Puts `file` in place of the generic label used when parsing text.
    fn in_file(self, file: &Path) -> Self {
        match self {
            KeyError::Invalid { problem, .. } => KeyError::Invalid {
                file: file.display().to_string(),
                problem,
            },
            other => other,
        }
    }
}

/// An Ed25519 private key. `Debug` shows only the key id, never secret material.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

/// An Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

/// Generates a fresh key from the operating system's CSPRNG (via the thread-local generator,
/// which is seeded from it and reseeds periodically).
pub fn generate() -> SigningKey {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(seed.as_mut());
    SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
}

impl SigningKey {
    /// PKCS#8 v1 PEM, the same bytes `openssl genpkey -algorithm ed25519` writes for this key.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        // RFC 8410 fixes the DER layout for Ed25519, so it is written directly: infallible, and
        // the v1 form (no optional public key) is exactly what openssl writes.
        let mut der = Zeroizing::new(PKCS8_V1_PREFIX.to_vec());
        der.extend_from_slice(self.0.as_bytes());
        Zeroizing::new(pem_wrap("PRIVATE KEY", &der))
    }

    /// Parses a PKCS#8 PEM Ed25519 private key (v1, or v2 with a matching public key).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let invalid = |problem: String| KeyError::Invalid {
            file: PEM_INPUT.to_string(),
            problem,
        };
        let text = text.trim();
        let label =
            pem_label(text).map_err(|e| invalid(format!("not a PEM Ed25519 private key ({e})")))?;
        match label {
            "PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => {
                return Err(invalid(
                    "encrypted private key; decrypt it first (openssl pkey -in KEY -out PLAIN)"
                        .to_string(),
                ));
            }
            "PUBLIC KEY" => {
                return Err(invalid(
                    "holds a public key, not a PEM Ed25519 private key".to_string(),
                ));
            }
            other => {
                return Err(invalid(format!(
                    "not a PEM Ed25519 private key (found BEGIN {other})"
                )));
            }
        }
        ed25519_dalek::SigningKey::from_pkcs8_pem(text)
            .map(SigningKey)
            .map_err(|e| invalid(format!("not a PEM Ed25519 private key ({e})")))
    }

    /// Reads and parses a private key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = Zeroizing::new(read(path)?);
        Self::from_pem(&text).map_err(|e| e.in_file(path))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message` (pure Ed25519, as `openssl pkeyutl -sign -rawin` does).
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.public().key_id())
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// SPKI PEM, the same bytes `openssl pkey -pubout` writes.
    pub fn to_spki_pem(&self) -> String {
        pem_wrap("PUBLIC KEY", &self.spki_der())
    }

    /// Parses an SPKI PEM Ed25519 public key.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let invalid = |problem: String| KeyError::Invalid {
            file: PEM_INPUT.to_string(),
            problem,
        };
        let text = text.trim();
        let label =
            pem_label(text).map_err(|e| invalid(format!("not a PEM Ed25519 public key ({e})")))?;
        match label {
            "PUBLIC KEY" => {}
            "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                return Err(invalid(
                    "holds a private key, not a PEM Ed25519 public key (derive one with openssl pkey -pubout)"
                        .to_string(),
                ));
            }
            other => {
                return Err(invalid(format!(
                    "not a PEM Ed25519 public key (found BEGIN {other})"
                )));
            }
        }
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(text)
            .map_err(|e| invalid(format!("not a PEM Ed25519 public key ({e})")))?;
        // A small-order key lets anyone forge signatures that some verifiers accept.
        if key.is_weak() {
            return Err(invalid("weak (small-order) Ed25519 public key".to_string()));
        }
        Ok(PublicKey(key))
    }

    /// Reads and parses a public key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem(&read(path)?).map_err(|e| e.in_file(path))
    }

    /// Hex sha256 of the SPKI DER encoding. A hint for matching signatures to keys, not a trust
    /// anchor: verification always checks the signature itself.
    pub fn key_id(&self) -> String {
        hex::encode(Sha256::digest(self.spki_der()))
    }

    /// Verifies a pure Ed25519 signature, rejecting malleable and small-order forms.
    pub(crate) fn verify_bytes(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }

    fn spki_der(&self) -> Vec<u8> {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.0.as_bytes());
        der
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("key_id", &self.key_id())
            .finish()
    }
}

/// Writes a new key pair as `kfconform.key` (mode 0600 on unix) and `kfconform.pub` in `dir`,
/// creating `dir` if needed. Refuses to overwrite either file. Returns (private, public) paths.
pub fn write_keypair(dir: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
    let private = dir.join(PRIVATE_KEY_FILE);
    let public = dir.join(PUBLIC_KEY_FILE);
    // Check both up front so a refusal never leaves half a pair behind.
    for path in [&private, &public] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(KeyError::Exists {
                file: path.display().to_string(),
            });
        }
    }
    fs::create_dir_all(dir).map_err(|e| KeyError::Write {
        file: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let key = generate();
    write_new(&private, key.to_pkcs8_pem().as_bytes(), true)?;
    if let Err(e) = write_new(&public, key.public().to_spki_pem().as_bytes(), false) {
        // A private key without its public half is useless and confusing; do not leave it.
        let _ = fs::remove_file(&private);
        return Err(e);
    }
    tracing::info!(
        private = %private.display(),
        public = %public.display(),
        key_id = %key.public().key_id(),
        "wrote key pair"
    );
    Ok((private, public))
}

/// Creates `path` (never replacing an existing file) and writes `bytes` to it.
fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<(), KeyError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Set at creation so the secret is never readable by others, even briefly.
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let file = path.display().to_string();
    let mut f = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists { file: file.clone() }
        } else {
            KeyError::Write {
                file: file.clone(),
                message: e.to_string(),
            }
        }
    })?;
    let result = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = result {
        let _ = fs::remove_file(path);
        return Err(KeyError::Write {
            file,
            message: e.to_string(),
        });
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, KeyError> {
    super::files::read_bounded(path, super::files::limits::KEY_FILE).map_err(|e| KeyError::Read {
        file: path.display().to_string(),
        message: e.to_string(),
    })
}

fn pem_label(text: &str) -> Result<&str, String> {
    if text.is_empty() {
        return Err("empty".to_string());
    }
    pem::decode_label(text.as_bytes()).map_err(|e| e.to_string())
}

// DER prefixes of the Ed25519 encodings (RFC 8410 section 10): the 32 key bytes follow.
const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn pem_wrap(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    // The base64 of a private key is as secret as the key: wipe the intermediate copy, and size
    // the output up front so growing it leaves no stray copies behind.
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // base64 output is ASCII, so 64-byte chunks are always whole characters.
    for line in b64.as_bytes().chunks(64) {
        out.extend(line.iter().map(|&b| char::from(b)));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, KeypairBytes};

    #[test]
    fn fixed_layout_matches_the_der_encoder() {
        let key = generate();
        let v1 = KeypairBytes {
            secret_key: key.0.to_bytes(),
            public_key: None,
        };
        assert_eq!(
            key.to_pkcs8_pem().as_str(),
            v1.to_pkcs8_pem(LineEnding::LF).unwrap().as_str()
        );
        assert_eq!(
            key.public().to_spki_pem(),
            key.0
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap()
        );
    }

    #[test]
    fn own_output_parses_back() {
        let key = generate();
        let again = SigningKey::from_pem(&key.to_pkcs8_pem()).unwrap();
        assert_eq!(again.public(), key.public());
        let public = PublicKey::from_pem(&key.public().to_spki_pem()).unwrap();
        assert_eq!(public, key.public());
        assert_eq!(public.key_id().len(), 64);
        // Keys copied through Windows gain CRLFs; the PEM decoder accepts them.
        let crlf = key.to_pkcs8_pem().replace('\n', "\r\n");
        assert_eq!(SigningKey::from_pem(&crlf).unwrap().public(), key.public());
        let crlf = key.public().to_spki_pem().replace('\n', "\r\n");
        assert_eq!(PublicKey::from_pem(&crlf).unwrap(), key.public());
    }
}
