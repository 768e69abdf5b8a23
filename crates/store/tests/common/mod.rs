//! Test harness: the same store tests on SQLite (a temp dir) and on the real PostgreSQL at
//! 127.0.0.1:5432 (database `test`), each run in its own fresh schema, dropped afterwards.

#![allow(dead_code, unreachable_pub, reason = "shared by several test binaries")]

use std::future::Future;
use std::sync::Arc;

use base64::Engine as _;
use integration_core::IntegrationInfo;
use integration_store::{Store, StoreConfig, StoreError};
use secrecy::SecretString;
use serde_json::json;
use sqlx::{AssertSqlSafe, Row as _};

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A fresh database (SQLite file or PostgreSQL schema) that stores can be opened on.
pub struct TestDb {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    schema: Option<String>,
    /// The default key of this test database (base64).
    pub key: String,
}

pub fn random_key() -> String {
    let bytes: [u8; 32] = std::array::from_fn(|_| fastrand::u8(..));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{nanos}_{}", std::process::id(), fastrand::u32(..))
}

impl TestDb {
    pub async fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let schema = match kind {
            Kind::Sqlite => None,
            Kind::Postgres => {
                let schema = unique("store_test");
                let admin = sqlx::PgPool::connect(PG_URL).await.expect("postgres at 127.0.0.1:5432");
                sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&admin)
                    .await
                    .expect("create schema");
                admin.close().await;
                Some(schema)
            }
        };
        Self { kind, dir, schema, key: random_key() }
    }

    pub fn url(&self) -> Option<String> {
        self.schema.as_ref().map(|s| format!("{PG_URL}?options[search_path]={s}"))
    }

    pub fn config(&self, key: Option<&str>, previous: &[&str]) -> StoreConfig {
        StoreConfig {
            database_url: self.url(),
            data_dir: self.dir.path().to_path_buf(),
            master_key: key.map(|k| SecretString::from(k.to_owned())),
            previous_keys: previous.iter().map(|k| SecretString::from((*k).to_owned())).collect(),
        }
    }

    pub async fn open(&self) -> Store {
        self.open_with(&self.key, &[]).await.expect("open store")
    }

    pub async fn open_with(&self, key: &str, previous: &[&str]) -> Result<Store, StoreError> {
        Store::open(self.config(Some(key), previous)).await
    }

    /// Run one SQL statement directly (to tamper with rows).
    pub async fn exec(&self, sql: String, blob: Option<Vec<u8>>) {
        match self.kind {
            Kind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!(
                    "sqlite://{}",
                    self.dir.path().join("integrations.db").display()
                ))
                .await
                .expect("sqlite");
                let mut q = sqlx::query(AssertSqlSafe(sql));
                if let Some(b) = blob {
                    q = q.bind(b);
                }
                q.execute(&pool).await.expect("exec");
                pool.close().await;
            }
            Kind::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url().expect("pg url")).await.expect("pg");
                let mut q = sqlx::query(AssertSqlSafe(sql));
                if let Some(b) = blob {
                    q = q.bind(b);
                }
                q.execute(&pool).await.expect("exec");
                pool.close().await;
            }
        }
    }

    /// The raw credentials column of a connection.
    pub async fn credentials(&self, name: &str) -> Vec<u8> {
        self.blob("connections", "credentials", name).await
    }

    /// The raw `column` of the row `name` of `table` (a sealed blob, to tamper with).
    pub async fn blob(&self, table: &str, column: &str, name: &str) -> Vec<u8> {
        let sql = format!("SELECT {column} AS credentials FROM {table} WHERE name = '{name}'");
        match self.kind {
            Kind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!(
                    "sqlite://{}",
                    self.dir.path().join("integrations.db").display()
                ))
                .await
                .expect("sqlite");
                let row = sqlx::query(AssertSqlSafe(sql)).fetch_one(&pool).await.expect("row");
                pool.close().await;
                row.try_get("credentials").expect("credentials")
            }
            Kind::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url().expect("pg url")).await.expect("pg");
                let row = sqlx::query(AssertSqlSafe(sql)).fetch_one(&pool).await.expect("row");
                pool.close().await;
                row.try_get("credentials").expect("credentials")
            }
        }
    }

    /// Every key id stored beside a sealed blob, in the three sealed tables, read with plain SQL.
    pub async fn stored_key_ids(&self) -> Vec<String> {
        let sql = "SELECT key_id FROM connections UNION ALL SELECT key_id FROM webhook_endpoints \
                   UNION ALL SELECT key_id FROM custom_tools";
        match self.kind {
            Kind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!(
                    "sqlite://{}",
                    self.dir.path().join("integrations.db").display()
                ))
                .await
                .expect("sqlite");
                let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.expect("key ids");
                pool.close().await;
                rows
            }
            Kind::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url().expect("pg url")).await.expect("pg");
                let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.expect("key ids");
                pool.close().await;
                rows
            }
        }
    }

    async fn cleanup(&self) {
        if let Some(schema) = &self.schema {
            let admin = sqlx::PgPool::connect(PG_URL).await.expect("postgres");
            sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                .execute(&admin)
                .await
                .expect("drop schema");
            admin.close().await;
        }
    }
}

/// Run `test` on a fresh database of `kind`; the database is dropped even when the test panics.
pub async fn run<F, Fut>(kind: Kind, test: F)
where
    F: FnOnce(Arc<TestDb>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = Arc::new(TestDb::new(kind).await);
    let result = tokio::spawn(test(db.clone())).await;
    db.cleanup().await;
    if let Err(e) = result {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// Generate `sqlite::name` and `postgres::name` tests for each listed async fn(Arc<TestDb>).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run($crate::common::Kind::Sqlite, super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run($crate::common::Kind::Postgres, super::$name).await
                }
            )*
        }
    };
}

pub fn jira_info() -> IntegrationInfo {
    IntegrationInfo {
        name: "jira".into(),
        display_name: "Jira Cloud".into(),
        description: "Jira".into(),
        config_schema: json!({"type": "object", "properties": {
            "base_url": {"type": "string"},
            "username": {"type": "string"},
            "api_token": {"type": "string", "writeOnly": true},
            "personal_access_token": {"type": "string", "writeOnly": true},
        }}),
        env_vars: vec!["JIRA_BASE_URL".into(), "JIRA_USERNAME".into(), "JIRA_API_TOKEN".into()],
    }
}

pub fn github_info() -> IntegrationInfo {
    IntegrationInfo {
        name: "github".into(),
        display_name: "GitHub".into(),
        description: "GitHub".into(),
        config_schema: json!({"type": "object", "properties": {
            "api_url": {"type": "string"},
            "token": {"type": "string", "writeOnly": true},
        }}),
        env_vars: vec!["GITHUB_TOKEN".into()],
    }
}
