//! API keys of the REST and MCP front doors.
//!
//! A key is `isk_<id>_<secret>`: `id` is 12 hex digits (public, names the row, safe to log),
//! `secret` is 32 random bytes in unpadded base64url. Only the SHA-256 digest of the whole key is
//! stored — the keys are high-entropy, so a plain digest is as good as a slow password hash and
//! costs microseconds per request. A key is shown once, by [`ApiKeyStore::create`], and cannot be
//! recovered. Scopes are stored as given; their meaning belongs to the front door.

use aes_gcm::aead::Generate as _;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use subtle::ConstantTimeEq as _;

use crate::db::Result;
use crate::error::StoreError;
use crate::store::{Store, now_ms, time};

/// The prefix of every key.
pub const API_KEY_PREFIX: &str = "isk_";
const ID_HEX_LEN: usize = 12;

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKeyRecord {
    /// The public id (`isk_<id>_...`).
    pub id: String,
    /// A human name (who or what uses the key).
    pub name: String,
    /// The scopes (`admin`, `tools:read`, `tools:write`).
    pub scopes: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    key_hash: String,
}

impl ApiKeyRecord {
    /// Whether the key is still valid.
    pub fn active(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// Whether `presented` (a whole key) is this key: constant-time comparison of the digests.
    pub fn matches(&self, presented: &str) -> bool {
        let digest = digest_hex(presented);
        digest.as_bytes().ct_eq(self.key_hash.as_bytes()).into()
    }
}

/// The public id of a presented key (`isk_<id>_<secret>`), if it has the key's shape.
pub fn key_id_of(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == ID_HEX_LEN
        && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && !secret.is_empty();
    well_formed.then_some(id)
}

fn digest_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Raw row: (id, name, key_hash, scopes, created_at, revoked_at).
type KeyRow = (String, String, String, String, i64, Option<i64>);

fn record(row: KeyRow) -> ApiKeyRecord {
    let (id, name, key_hash, scopes, created_at, revoked_at) = row;
    ApiKeyRecord {
        id,
        name,
        scopes: scopes.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        created_at: time(created_at),
        revoked_at: revoked_at.map(time),
        key_hash,
    }
}

/// What the key storage asks of a database.
#[async_trait]
pub(crate) trait ApiKeyBackend: Send + Sync {
    async fn key_insert(&self, row: &KeyRow) -> Result<()>;
    async fn key_get(&self, id: &str) -> Result<Option<KeyRow>>;
    async fn key_list(&self) -> Result<Vec<KeyRow>>;
    /// Revoke by id or name; returns the ids revoked.
    async fn key_revoke(&self, id_or_name: &str, now: i64) -> Result<Vec<String>>;
    async fn key_active_count(&self) -> Result<i64>;
}

macro_rules! api_key_backend {
    ($ty:ty, $row:ty) => {
        impl $ty {
            fn key_row(r: &$row) -> Result<KeyRow> {
                Ok((
                    r.try_get("id")?,
                    r.try_get("name")?,
                    r.try_get("key_hash")?,
                    r.try_get("scopes")?,
                    r.try_get("created_at")?,
                    r.try_get("revoked_at")?,
                ))
            }
        }

        #[async_trait]
        impl ApiKeyBackend for $ty {
            async fn key_insert(&self, row: &KeyRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO api_keys (id, name, key_hash, scopes, created_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&row.0)
                .bind(&row.1)
                .bind(&row.2)
                .bind(&row.3)
                .bind(row.4)
                .bind(row.5)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn key_get(&self, id: &str) -> Result<Option<KeyRow>> {
                let row = sqlx::query(
                    "SELECT id, name, key_hash, scopes, created_at, revoked_at FROM api_keys WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::key_row).transpose()
            }

            async fn key_list(&self) -> Result<Vec<KeyRow>> {
                let rows = sqlx::query(
                    "SELECT id, name, key_hash, scopes, created_at, revoked_at FROM api_keys \
                     ORDER BY created_at, id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::key_row).collect()
            }

            async fn key_revoke(&self, id_or_name: &str, now: i64) -> Result<Vec<String>> {
                let rows = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $1 \
                     WHERE (id = $2 OR name = $2) AND revoked_at IS NULL RETURNING id",
                )
                .bind(now)
                .bind(id_or_name)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
            }

            async fn key_active_count(&self) -> Result<i64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.try_get("n")?)
            }
        }
    };
}

api_key_backend!(crate::db::Postgres, sqlx::postgres::PgRow);
api_key_backend!(crate::db::Sqlite, sqlx::sqlite::SqliteRow);

/// API keys. Get one with [`Store::api_keys`].
#[derive(Debug, Clone)]
pub struct ApiKeyStore {
    store: Store,
}

impl Store {
    /// The API keys.
    pub fn api_keys(&self) -> ApiKeyStore {
        ApiKeyStore { store: self.clone() }
    }
}

impl ApiKeyStore {
    fn db(&self) -> &dyn ApiKeyBackend {
        self.store.api_key_db()
    }

    /// Create a key. Returns its record and the key itself — the only time it is ever available.
    pub async fn create(
        &self,
        name: &str,
        scopes: &[String],
    ) -> std::result::Result<(ApiKeyRecord, SecretString), StoreError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(StoreError::InvalidInput("a key name of 1 to 200 characters is required".into()));
        }
        if scopes.is_empty() || scopes.iter().any(|s| s.is_empty() || s.contains(',')) {
            return Err(StoreError::InvalidInput("at least one scope is required".into()));
        }
        let random = |what: &str| {
            <[u8; 32]>::try_generate()
                .map_err(|e| StoreError::Config(format!("the system random generator failed ({what}): {e}")))
        };
        let id_bytes = random("key id")?;
        let id: String = id_bytes.iter().take(ID_HEX_LEN / 2).map(|b| format!("{b:02x}")).collect();
        let secret = random("key")?;
        let key = format!("{API_KEY_PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret));
        let row: KeyRow = (id, name.to_owned(), digest_hex(&key), scopes.join(","), now_ms(), None);
        self.db().key_insert(&row).await?;
        Ok((record(row), SecretString::from(key)))
    }

    /// The key with this public id, revoked or not.
    pub async fn get(&self, id: &str) -> std::result::Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.db().key_get(id).await?.map(record))
    }

    /// Every key, oldest first, revoked ones included.
    pub async fn list(&self) -> std::result::Result<Vec<ApiKeyRecord>, StoreError> {
        Ok(self.db().key_list().await?.into_iter().map(record).collect())
    }

    /// Revoke the key with this id, or every active key with this name; returns the ids revoked.
    pub async fn revoke(&self, id_or_name: &str) -> std::result::Result<Vec<String>, StoreError> {
        self.db().key_revoke(id_or_name, now_ms()).await
    }

    /// How many keys are active.
    pub async fn active_count(&self) -> std::result::Result<u64, StoreError> {
        Ok(self.db().key_active_count().await?.max(0) as u64)
    }

    /// The active key a presented key belongs to, if any.
    pub async fn verify(&self, presented: &str) -> std::result::Result<Option<ApiKeyRecord>, StoreError> {
        let Some(id) = key_id_of(presented) else {
            return Ok(None);
        };
        Ok(self.get(id).await?.filter(|k| k.active() && k.matches(presented)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    async fn sqlite() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = crate::StoreConfig {
            database_url: None,
            data_dir: dir.path().to_owned(),
            master_key: None,
            previous_keys: Vec::new(),
        };
        let store = Store::open(config).await.expect("store");
        (dir, store)
    }

    #[test]
    fn key_ids_are_parsed_strictly() {
        assert_eq!(key_id_of("isk_0123456789ab_secret"), Some("0123456789ab"));
        assert_eq!(key_id_of("isk_0123456789ab_se_cr-et"), Some("0123456789ab"));
        for bad in ["", "isk_", "isk_0123456789ab_", "isk_0123456789AB_x", "isk_0123_x", "xsk_0123456789ab_x"]
        {
            assert_eq!(key_id_of(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn create_verify_revoke_on_sqlite() {
        let (_dir, store) = sqlite().await;
        let keys = store.api_keys();
        assert_eq!(keys.active_count().await.expect("count"), 0);
        let (record, key) = keys.create("ci", &["tools:read".to_owned()]).await.expect("create");
        let key = key.expose_secret().to_owned();
        assert!(key.starts_with(&format!("isk_{}_", record.id)), "{key}");
        assert_eq!(record.scopes, vec!["tools:read"]);
        assert_eq!(keys.active_count().await.expect("count"), 1);

        let found = keys.verify(&key).await.expect("verify").expect("valid key");
        assert_eq!(found.id, record.id);
        let mut wrong = key.clone();
        wrong.push('x');
        assert!(keys.verify(&wrong).await.expect("verify").is_none());
        assert!(keys.verify("isk_0123456789ab_nope").await.expect("verify").is_none());

        // the digest, never the key, is stored
        let listed = keys.list().await.expect("list");
        assert_eq!(listed.len(), 1);
        assert!(!format!("{listed:?}").contains(&key[17..]));

        assert_eq!(keys.revoke("ci").await.expect("revoke"), vec![record.id.clone()]);
        assert!(keys.verify(&key).await.expect("verify").is_none());
        assert_eq!(keys.active_count().await.expect("count"), 0);
        assert!(keys.revoke(&record.id).await.expect("revoke").is_empty());
        store.close().await;
    }
}
