//! The store's error type and its mapping to [`IntegrationError`].

use integration_core::{ErrorKind, IntegrationError};

/// What can go wrong in the store. Messages name connections and settings, never a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Start-up configuration is missing or invalid (no master key for PostgreSQL, a key that is
    /// not 32 bytes of base64, an unsupported `DATABASE_URL` scheme, ...).
    #[error("configuration error: {0}")]
    Config(String),
    /// A request body or argument is invalid.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The named object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The credentials of one connection cannot be decrypted: unknown key id, wrong key or a
    /// corrupted or moved row. Only this connection is affected.
    #[error("credentials of connection '{connection}' cannot be decrypted: {reason}")]
    Credentials {
        /// The connection name.
        connection: String,
        /// Why (never contains key material).
        reason: String,
    },
    /// A database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A Redis error.
    #[error("redis error: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// A file under the data directory could not be read or written.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Stored data could not be (de)serialised.
    #[error("malformed stored data: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.display().to_string(), source }
    }

    /// True when the error is about one stored row only (its credentials do not open, its data
    /// does not parse), so a caller reading many rows can report that one and go on; false when
    /// the store itself failed and nothing read now can be trusted to be complete.
    pub fn is_row_unreadable(&self) -> bool {
        matches!(self, StoreError::Credentials { .. } | StoreError::Corrupt(_))
    }

    /// The [`ErrorKind`] a front door reports for this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Config(_) | StoreError::Credentials { .. } => ErrorKind::Configuration,
            StoreError::InvalidInput(_) => ErrorKind::InvalidInput,
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::Database(e) if database_unavailable(e) => ErrorKind::Unavailable,
            StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::Redis(_)
            | StoreError::Io { .. }
            | StoreError::Corrupt(_) => ErrorKind::Internal,
        }
    }
}

/// Errors that mean "the database cannot be reached right now" rather than a bug: the caller
/// gets a retryable 503 instead of a 500.
fn database_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            true
        }
        // The exchange with the server broke off in a way the driver could not read: a server
        // going down mid-handshake answers an `SSLRequest` or a query with something else than the
        // protocol allows (sqlx: "unexpected response from SSLRequest"). A broken connection, not a
        // bug in the call.
        sqlx::Error::Protocol(_) => true,
        // PostgreSQL: admin shutdown, crash shutdown, cannot connect now, too many connections.
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("57P01" | "57P02" | "57P03" | "53300"))
        }
        _ => false,
    }
}

impl From<StoreError> for IntegrationError {
    fn from(error: StoreError) -> Self {
        IntegrationError::new(error.kind(), "store", error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_integration_kinds() {
        let check = |e: StoreError, kind: ErrorKind| assert_eq!(IntegrationError::from(e).kind(), &kind);
        check(StoreError::Config("x".into()), ErrorKind::Configuration);
        check(
            StoreError::Credentials { connection: "jira".into(), reason: "r".into() },
            ErrorKind::Configuration,
        );
        check(StoreError::InvalidInput("x".into()), ErrorKind::InvalidInput);
        check(StoreError::NotFound("connection 'x'".into()), ErrorKind::NotFound);
        check(StoreError::Corrupt("x".into()), ErrorKind::Internal);
        check(StoreError::Database(sqlx::Error::PoolTimedOut), ErrorKind::Unavailable);
        check(
            StoreError::Database(sqlx::Error::Protocol("unexpected response from SSLRequest: 0x45".into())),
            ErrorKind::Unavailable,
        );
        check(
            StoreError::Database(sqlx::Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
            ErrorKind::Unavailable,
        );
        check(StoreError::Database(sqlx::Error::RowNotFound), ErrorKind::Internal);
    }
}
