//! The smallest agent: send one command and wait for its event (`integrations-worker call`).

use std::time::Duration;

use futures::StreamExt as _;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection};

use crate::envelope::{Command, Event, Status};
use crate::error::BusError;
use crate::topology::Topology;

/// Publish `command` on the commands exchange (declaring the topology first, so it waits in the
/// queue until a worker runs) and return its event, or [`BusError::Timeout`] after `timeout`
/// ([`BusError::ConnectTimeout`] when the broker does not even complete the connection in that time).
/// The current span's trace context goes along in the `traceparent` header.
pub async fn call(
    amqp_url: &str,
    topology: &Topology,
    command: &Command,
    timeout: Duration,
) -> Result<Event, BusError> {
    // One deadline for the whole call: the time the connection took is not granted again.
    let deadline = tokio::time::Instant::now() + timeout;
    let connection = crate::connect(amqp_url, timeout).await?;
    let result = tokio::time::timeout_at(deadline, exchange(&connection, topology, command)).await;
    let _ = connection.close(200, "done".into()).await;
    match result {
        Ok(result) => result,
        Err(_) => Err(BusError::Timeout(timeout)),
    }
}

async fn exchange(
    connection: &Connection,
    topology: &Topology,
    command: &Command,
) -> Result<Event, BusError> {
    let channel = connection.create_channel().await?;
    topology.declare(&channel).await?;
    // A private queue for the answer, bound before the command leaves.
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
    for status in [Status::Completed, Status::Failed] {
        let probe =
            Event { status, ..Event::failed(&command.task_id, &command.step_id, &command.tool_name, "", "") };
        channel
            .queue_bind(
                queue.name().clone(),
                topology.events_exchange.as_str().into(),
                probe.routing_key().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let mut events = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;

    let mut headers = FieldTable::default();
    let mut trace = integration_core::reexports::http::HeaderMap::new();
    integration_core::propagation::inject(&mut trace);
    for (name, value) in &trace {
        if let Ok(value) = value.to_str() {
            headers.insert(ShortString::from(name.as_str()), AMQPValue::LongString(LongString::from(value)));
        }
    }
    let properties = BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_delivery_mode(2)
        .with_headers(headers);
    let routing_key = format!("integrations.{}", crate::envelope::routing_safe(&command.tool_name));
    let confirm = channel
        .basic_publish(
            topology.commands_exchange.as_str().into(),
            routing_key.as_str().into(),
            BasicPublishOptions::default(),
            &serde_json::to_vec(command)?,
            properties,
        )
        .await?
        .await?;
    if confirm.is_nack() {
        return Err(BusError::Nacked { exchange: topology.commands_exchange.clone(), routing_key });
    }
    while let Some(delivery) = events.next().await {
        let delivery = delivery?;
        if let Ok(event) = serde_json::from_slice::<Event>(&delivery.data)
            && event.task_id == command.task_id
            && event.step_id == command.step_id
        {
            return Ok(event);
        }
    }
    Err(BusError::Closed)
}
