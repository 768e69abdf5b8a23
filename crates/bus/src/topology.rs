//! The exchanges and queues of the bus, declared idempotently by every worker and publisher.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::error::BusError;

/// Names and limits of the topology. Tests use unique names so runs never see each other.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Topic exchange the agent publishes commands to (`commands.exchange`).
    pub commands_exchange: String,
    /// Topic exchange events are published to (`events.exchange`).
    pub events_exchange: String,
    /// Durable quorum queue of commands (`integrations.commands`).
    pub commands_queue: String,
    /// Binding of the commands queue (`integrations.*`).
    pub commands_binding: String,
    /// Dead-letter exchange (`integrations.dlx`).
    pub dead_letter_exchange: String,
    /// Dead-letter queue (`integrations.commands.dead`).
    pub dead_letter_queue: String,
    /// Deliveries of one command before it is dead-lettered (quorum `x-delivery-limit`).
    pub delivery_limit: u32,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            commands_exchange: "commands.exchange".into(),
            events_exchange: "events.exchange".into(),
            commands_queue: "integrations.commands".into(),
            commands_binding: "integrations.*".into(),
            dead_letter_exchange: "integrations.dlx".into(),
            dead_letter_queue: "integrations.commands.dead".into(),
            delivery_limit: 5,
        }
    }
}

impl Topology {
    /// A topology whose names all carry `prefix` (for tests and side-by-side deployments).
    pub fn prefixed(prefix: &str) -> Self {
        let base = Self::default();
        Self {
            commands_exchange: format!("{prefix}.{}", base.commands_exchange),
            events_exchange: format!("{prefix}.{}", base.events_exchange),
            commands_queue: format!("{prefix}.{}", base.commands_queue),
            commands_binding: base.commands_binding,
            dead_letter_exchange: format!("{prefix}.{}", base.dead_letter_exchange),
            dead_letter_queue: format!("{prefix}.{}", base.dead_letter_queue),
            delivery_limit: base.delivery_limit,
        }
    }

    /// Declare everything (durable topic exchanges, the quorum queue with an explicit delivery
    /// limit and dead-lettering, the dead-letter queue). Idempotent.
    pub async fn declare(&self, channel: &Channel) -> Result<(), BusError> {
        let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
        for exchange in [&self.commands_exchange, &self.events_exchange] {
            channel
                .exchange_declare(
                    exchange.as_str().into(),
                    ExchangeKind::Topic,
                    durable,
                    FieldTable::default(),
                )
                .await?;
        }
        channel
            .exchange_declare(
                self.dead_letter_exchange.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;

        let queue_options = QueueDeclareOptions { durable: true, ..Default::default() };
        let mut dead_args = FieldTable::default();
        dead_args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("quorum")));
        channel.queue_declare(self.dead_letter_queue.as_str().into(), queue_options, dead_args).await?;
        channel
            .queue_bind(
                self.dead_letter_queue.as_str().into(),
                self.dead_letter_exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("quorum")));
        // RabbitMQ 3.x quorum queues have no default delivery limit (4.x: 20): set it explicitly.
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(i32::try_from(self.delivery_limit).unwrap_or(i32::MAX)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from(self.dead_letter_exchange.as_str())),
        );
        channel.queue_declare(self.commands_queue.as_str().into(), queue_options, args).await?;
        channel
            .queue_bind(
                self.commands_queue.as_str().into(),
                self.commands_exchange.as_str().into(),
                self.commands_binding.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }
}
