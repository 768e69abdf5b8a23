//! Credential encryption: AES-256-GCM under a master key, bound to the row it belongs to.
//!
//! A sealed blob is `0x01 || nonce (12 bytes, random) || ciphertext+tag`. The associated data is
//! `integrations/credentials/v1 \0 provider \0 name`, so a blob copied into another row (another
//! provider or connection name) fails authentication. Each row also stores the id of the key that
//! sealed it (the first 8 hex digits of the SHA-256 of the key), which lets a [`Keyring`] hold the
//! current key plus previous ones during a rotation.

use std::collections::BTreeMap;
use std::path::Path;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::error::StoreError;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const AAD_PREFIX: &[u8] = b"integrations/credentials/v1";

/// A 32-byte AES-256-GCM master key. `Debug` shows the key id only.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl MasterKey {
    /// Parse a key given as base64 of 32 bytes (the `INTEGRATIONS_MASTER_KEY` format).
    pub fn from_base64(encoded: &SecretString) -> Result<Self, StoreError> {
        let bytes = Zeroizing::new(BASE64.decode(encoded.expose_secret().trim()).map_err(|_| {
            StoreError::Config(
                "the master key is not valid base64 (expected 32 random bytes in base64)".into(),
            )
        })?);
        Self::from_bytes(&bytes)
    }

    /// A key from its 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() != 32 {
            return Err(StoreError::Config(format!(
                "the master key must be 32 bytes, got {} (generate one with `openssl rand -base64 32`)",
                bytes.len()
            )));
        }
        let cipher = Aes256Gcm::new_from_slice(bytes)
            .map_err(|_| StoreError::Config("the master key must be 32 bytes".into()))?;
        let digest = Sha256::digest(bytes);
        let id = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Ok(Self { id, cipher })
    }

    /// A fresh random key and its base64 form (to store or show once).
    pub fn generate() -> Result<(Self, SecretString), StoreError> {
        let bytes = Zeroizing::new(
            <[u8; 32]>::try_generate()
                .map_err(|e| StoreError::Config(format!("the system random generator failed: {e}")))?,
        );
        let key = Self::from_bytes(bytes.as_slice())?;
        Ok((key, SecretString::from(BASE64.encode(bytes.as_slice()))))
    }

    /// The key id stored beside every ciphertext: the first 8 hex digits of SHA-256 of the key.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The keys the store knows: the current one (used to seal) and previous ones (accepted to open).
#[derive(Debug, Clone)]
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    /// A keyring sealing with `current` and opening with any of `current` and `previous`.
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        let previous = previous.into_iter().filter(|k| k.id != current.id).collect();
        Self { current, previous }
    }

    /// The key new ciphertexts are sealed under.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// The ids of every key in the ring, current first.
    pub fn key_ids(&self) -> Vec<String> {
        std::iter::once(&self.current).chain(&self.previous).map(|k| k.id.clone()).collect()
    }

    fn find(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current).chain(&self.previous).find(|k| k.id == id)
    }

    /// Seal the secrets of connection `provider`/`name`; returns (key id, blob).
    pub(crate) fn seal(
        &self,
        provider: &str,
        name: &str,
        secrets: &BTreeMap<String, SecretString>,
    ) -> Result<(String, Vec<u8>), StoreError> {
        seal_with(&self.current, provider, name, secrets).map(|blob| (self.current.id.clone(), blob))
    }

    /// Open the blob of connection `provider`/`name` sealed under `key_id`.
    pub(crate) fn open(
        &self,
        provider: &str,
        name: &str,
        key_id: &str,
        blob: &[u8],
    ) -> Result<BTreeMap<String, SecretString>, StoreError> {
        let key = self.find(key_id).ok_or_else(|| StoreError::Credentials {
            connection: name.to_owned(),
            reason: format!(
                "they are sealed under master key id {key_id}, which is not loaded (loaded: {}); \
                 set INTEGRATIONS_MASTER_KEY or INTEGRATIONS_MASTER_KEY_PREVIOUS to that key",
                self.key_ids().join(", ")
            ),
        })?;
        open_with(key, provider, name, blob)
    }
}

fn aad(provider: &str, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + provider.len() + name.len() + 2);
    aad.extend_from_slice(AAD_PREFIX);
    aad.push(0);
    aad.extend_from_slice(provider.as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad
}

pub(crate) fn seal_with(
    key: &MasterKey,
    provider: &str,
    name: &str,
    secrets: &BTreeMap<String, SecretString>,
) -> Result<Vec<u8>, StoreError> {
    let exposed: BTreeMap<&str, &str> =
        secrets.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
    let plaintext = Zeroizing::new(
        serde_json::to_vec(&exposed).map_err(|e| StoreError::Corrupt(format!("serialising secrets: {e}")))?,
    );
    let nonce = Nonce::try_generate()
        .map_err(|e| StoreError::Config(format!("the system random generator failed: {e}")))?;
    let aad = aad(provider, name);
    let sealed = key
        .cipher
        .encrypt(&nonce, Payload { msg: plaintext.as_slice(), aad: &aad })
        .map_err(|_| StoreError::Corrupt("encryption failed".into()))?;
    let mut blob = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    blob.push(VERSION);
    blob.extend_from_slice(nonce.as_slice());
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

fn open_with(
    key: &MasterKey,
    provider: &str,
    name: &str,
    blob: &[u8],
) -> Result<BTreeMap<String, SecretString>, StoreError> {
    let failed =
        |reason: &str| StoreError::Credentials { connection: name.to_owned(), reason: reason.to_owned() };
    if blob.len() < 1 + NONCE_LEN + 16 || blob[0] != VERSION {
        return Err(failed("the stored ciphertext is truncated or of an unknown format"));
    }
    let nonce = Nonce::try_from(&blob[1..1 + NONCE_LEN]).map_err(|_| failed("bad nonce"))?;
    let aad = aad(provider, name);
    let plaintext = Zeroizing::new(
        key.cipher.decrypt(&nonce, Payload { msg: &blob[1 + NONCE_LEN..], aad: &aad }).map_err(|_| {
            failed(&format!(
                "authentication failed under key id {} (wrong key, corrupted row, or ciphertext copied \
                     from another connection)",
                key.id
            ))
        })?,
    );
    serde_json::from_slice::<BTreeMap<String, SecretString>>(&plaintext)
        .map_err(|_| failed("the decrypted credentials are not a JSON object of strings"))
}

/// Load `path` (base64 key) or, when it does not exist, generate a key into it with mode 0600.
/// Returns the key and whether it was generated.
pub(crate) fn load_or_create_key_file(path: &Path) -> Result<(MasterKey, bool), StoreError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = MasterKey::from_base64(&SecretString::from(text)).map_err(|e| {
                StoreError::Config(format!("the key file {} is invalid: {e}", path.display()))
            })?;
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key, encoded) = MasterKey::generate()?;
            match write_private(path, encoded.expose_secret().as_bytes()) {
                Ok(()) => Ok((key, true)),
                // another process created it first: use theirs
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
                    Ok((MasterKey::from_base64(&SecretString::from(text))?, false))
                }
                Err(e) => Err(StoreError::io(path, e)),
            }
        }
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> BTreeMap<String, SecretString> {
        BTreeMap::from([("api_token".to_owned(), SecretString::from("s3cr3t-token"))])
    }

    #[test]
    fn seals_and_opens_bound_to_the_row() -> Result<(), StoreError> {
        let (key, _) = MasterKey::generate()?;
        assert_eq!(key.id().len(), 8);
        let ring = Keyring::new(key, vec![]);
        let (id, blob) = ring.seal("jira", "jira", &secrets())?;
        assert!(!blob.windows(12).any(|w| w == b"s3cr3t-token"), "plaintext visible in blob");
        let opened = ring.open("jira", "jira", &id, &blob)?;
        assert_eq!(opened["api_token"].expose_secret(), "s3cr3t-token");
        assert!(matches!(ring.open("jira", "jira-eu", &id, &blob), Err(StoreError::Credentials { .. })));
        assert!(matches!(ring.open("github", "jira", &id, &blob), Err(StoreError::Credentials { .. })));
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(ring.open("jira", "jira", &id, &tampered), Err(StoreError::Credentials { .. })));
        assert!(matches!(ring.open("jira", "jira", "00000000", &blob), Err(StoreError::Credentials { .. })));
        Ok(())
    }

    #[test]
    fn rejects_bad_keys_and_derives_stable_ids() {
        assert!(MasterKey::from_base64(&SecretString::from("not base64!")).is_err());
        assert!(MasterKey::from_base64(&SecretString::from(BASE64.encode([1u8; 16]))).is_err());
        let a = MasterKey::from_bytes(&[7u8; 32]).map(|k| k.id().to_owned()).ok();
        let b = MasterKey::from_base64(&SecretString::from(BASE64.encode([7u8; 32])))
            .map(|k| k.id().to_owned())
            .ok();
        assert_eq!(a, b);
        let debug = format!("{:?}", MasterKey::from_bytes(&[7u8; 32]).ok());
        assert!(debug.contains("id") && !debug.contains("cipher"), "{debug}");
    }

    #[test]
    fn key_file_is_created_private_and_reused() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::io(Path::new("tmp"), e))?;
        let path = dir.path().join("master.key");
        let (first, created) = load_or_create_key_file(&path)?;
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).map_err(|e| StoreError::io(&path, e))?.permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, created) = load_or_create_key_file(&path)?;
        assert!(!created);
        assert_eq!(first.id(), second.id());
        Ok(())
    }
}
