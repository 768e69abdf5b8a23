//! The stored custom HTTP tools as an [`integration_webhook::CustomToolSource`] (the
//! `custom-tools` feature), so every process that serves custom tools (an api replica, a bus
//! worker) follows the same rows the same way.

use async_trait::async_trait;
use integration_webhook::{CustomToolSource, LoadError, RepositoryError, SavedTool, StoredRevision};

use crate::Store;
use crate::webhooks::StoredCustomTool;

fn saved(stored: StoredCustomTool) -> SavedTool {
    SavedTool { definition: stored.definition, secrets: stored.secrets }
}

#[async_trait]
impl CustomToolSource for Store {
    async fn versions(&self) -> Result<Vec<(String, i64)>, RepositoryError> {
        self.webhooks().custom_tool_versions().await.map_err(|e| RepositoryError(e.to_string()))
    }

    async fn load(&self, name: &str) -> Result<Option<SavedTool>, LoadError> {
        let stored = self
            .webhooks()
            .get_custom_tool(name)
            .await
            .map_err(|e| LoadError::from_store(e.is_row_unreadable(), e))?;
        Ok(stored.map(saved))
    }

    /// One query for every row; a row whose credentials do not open is refused alone.
    async fn load_all(&self) -> Result<Vec<StoredRevision>, RepositoryError> {
        let listed = self.webhooks().list_custom_tools().await.map_err(|e| RepositoryError(e.to_string()))?;
        Ok(listed
            .into_iter()
            .map(|row| StoredRevision {
                name: row.name,
                revision: row.revision,
                tool: row.tool.map(saved).map_err(|e| e.to_string()),
            })
            .collect())
    }
}
