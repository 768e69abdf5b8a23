//! Publishing with publisher confirms: a publication counts only once the broker acknowledged it.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Connection};

use crate::envelope::Event;
use crate::error::BusError;

/// A confirm-mode channel. Cheap to clone; safe to share between tasks.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("channel", &self.channel.id()).finish()
    }
}

impl Publisher {
    /// Open a channel on `connection` and put it in confirm mode.
    pub async fn open(connection: &Connection) -> Result<Self, BusError> {
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Self { channel })
    }

    /// The underlying channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publish a persistent JSON message and wait for the broker's confirm.
    pub async fn publish_json(
        &self,
        exchange: &str,
        routing_key: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<(), BusError> {
        let properties = BasicProperties::default()
            .with_content_type(ShortString::from("application/json"))
            .with_delivery_mode(2)
            .with_message_id(ShortString::from(message_id))
            .with_timestamp(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0));
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                payload,
                properties,
            )
            .await?
            .await?;
        if confirm.is_ack() {
            Ok(())
        } else {
            Err(BusError::Nacked { exchange: exchange.to_owned(), routing_key: routing_key.to_owned() })
        }
    }

    /// Publish an event on `exchange` with its routing key and event id.
    pub async fn publish_event(&self, exchange: &str, event: &Event) -> Result<(), BusError> {
        self.publish_event_json(exchange, event, &serde_json::to_vec(event)?).await
    }

    /// [`Publisher::publish_event`] with the event already serialized to `payload`.
    pub async fn publish_event_json(
        &self,
        exchange: &str,
        event: &Event,
        payload: &[u8],
    ) -> Result<(), BusError> {
        self.publish_json(exchange, &event.routing_key(), &event.event_id, payload).await?;
        metrics::counter!("bus_events_published_total", "status" => event.status.as_str()).increment(1);
        Ok(())
    }
}
