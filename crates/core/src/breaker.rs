//! A circuit breaker per connection: after `threshold` consecutive failures that say "the upstream
//! is down" (network errors, timeouts, 5xx), calls fail at once for `cool_down` instead of waiting
//! for the upstream; then one probe call goes through, and its outcome closes or re-opens the
//! circuit. Answers that prove the upstream alive (any 2xx/4xx) reset the count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ErrorKind, IntegrationError};

/// Settings of the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive upstream failures that open the circuit (0 disables the breaker).
    pub threshold: u32,
    /// How long an open circuit fails calls before letting a probe through.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { threshold: 5, cool_down: Duration::from_secs(10) }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_started: Instant },
}

/// What the breaker says before an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Allowed,
    /// Go ahead: this call is the probe of a half-open circuit.
    Probe,
    /// Fail fast; the circuit reopens for probing after this long.
    Rejected(Duration),
}

/// Circuit breakers keyed by connection name.
#[derive(Debug, Default)]
pub struct Breakers {
    config: BreakerConfig,
    states: Mutex<HashMap<String, State>>,
}

impl Breakers {
    /// Breakers with `config`.
    pub fn new(config: BreakerConfig) -> Self {
        Self { config, states: Mutex::new(HashMap::new()) }
    }

    /// The settings.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// Ask before an attempt on `key`.
    pub fn admit(&self, key: &str) -> Admission {
        if self.config.threshold == 0 {
            return Admission::Allowed;
        }
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let state = states.entry(key.to_owned()).or_insert(State::Closed { failures: 0 });
        match *state {
            State::Closed { .. } => Admission::Allowed,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen { probe_started: now };
                Admission::Probe
            }
            State::Open { until } => Admission::Rejected(until - now),
            // A probe that never reported back (cancelled) must not block the circuit forever.
            State::HalfOpen { probe_started }
                if now.duration_since(probe_started) > self.config.cool_down =>
            {
                *state = State::HalfOpen { probe_started: now };
                Admission::Probe
            }
            State::HalfOpen { .. } => Admission::Rejected(self.config.cool_down),
        }
    }

    /// Report the outcome of an attempt on `key`. Returns true when this report opened the circuit.
    pub fn record(&self, key: &str, result: Result<(), &IntegrationError>) -> bool {
        if self.config.threshold == 0 {
            return false;
        }
        let down = match result {
            Ok(()) => false,
            Err(error) => upstream_down(error),
        };
        let alive = match result {
            Ok(()) => true,
            Err(error) => !upstream_down(error) && proves_alive(error),
        };
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let state = states.entry(key.to_owned()).or_insert(State::Closed { failures: 0 });
        let open = State::Open { until: Instant::now() + self.config.cool_down };
        match (*state, down, alive) {
            (State::HalfOpen { .. }, true, _) => {
                *state = open;
                true
            }
            (State::HalfOpen { .. }, false, true) => {
                *state = State::Closed { failures: 0 };
                false
            }
            (State::Closed { failures }, true, _) => {
                let failures = failures + 1;
                if failures >= self.config.threshold {
                    *state = open;
                    true
                } else {
                    *state = State::Closed { failures };
                    false
                }
            }
            (State::Closed { .. }, false, true) => {
                *state = State::Closed { failures: 0 };
                false
            }
            _ => false,
        }
    }

    /// Whether the circuit of `key` is open now.
    pub fn is_open(&self, key: &str) -> bool {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        matches!(states.get(key), Some(State::Open { until }) if Instant::now() < *until)
    }
}

/// Errors that say the upstream is unreachable or failing.
fn upstream_down(error: &IntegrationError) -> bool {
    match error.kind() {
        ErrorKind::Network | ErrorKind::Timeout => true,
        ErrorKind::Upstream { status } => status.is_none_or(|s| s >= 500),
        ErrorKind::Authentication
        | ErrorKind::Permission
        | ErrorKind::NotFound
        | ErrorKind::InvalidInput
        | ErrorKind::Conflict
        | ErrorKind::RateLimited { .. }
        | ErrorKind::CircuitOpen { .. }
        | ErrorKind::Unavailable
        | ErrorKind::Configuration
        | ErrorKind::Internal => false,
    }
}

/// Errors that are an answer from a working upstream.
fn proves_alive(error: &IntegrationError) -> bool {
    match error.kind() {
        ErrorKind::Authentication
        | ErrorKind::Permission
        | ErrorKind::NotFound
        | ErrorKind::InvalidInput
        | ErrorKind::Conflict
        | ErrorKind::RateLimited { .. }
        | ErrorKind::Upstream { .. } => true,
        ErrorKind::Network
        | ErrorKind::Timeout
        | ErrorKind::CircuitOpen { .. }
        | ErrorKind::Unavailable
        | ErrorKind::Configuration
        | ErrorKind::Internal => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> IntegrationError {
        IntegrationError::connect("p", "refused")
    }

    #[test]
    fn opens_after_threshold_probes_after_cool_down() {
        let breakers = Breakers::new(BreakerConfig { threshold: 3, cool_down: Duration::from_millis(100) });
        for i in 0..3 {
            assert_eq!(breakers.admit("c"), Admission::Allowed);
            assert_eq!(breakers.record("c", Err(&down())), i == 2);
        }
        assert!(matches!(breakers.admit("c"), Admission::Rejected(_)));
        assert_eq!(breakers.admit("other"), Admission::Allowed, "per connection");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(breakers.admit("c"), Admission::Probe);
        assert!(matches!(breakers.admit("c"), Admission::Rejected(_)), "one probe at a time");
        assert!(breakers.record("c", Err(&down())), "a failed probe re-opens");
        assert!(matches!(breakers.admit("c"), Admission::Rejected(_)));
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(breakers.admit("c"), Admission::Probe);
        breakers.record("c", Ok(()));
        assert_eq!(breakers.admit("c"), Admission::Allowed, "a good probe closes it");
    }

    #[test]
    fn answers_from_a_live_upstream_reset_the_count() {
        let breakers = Breakers::new(BreakerConfig { threshold: 2, cool_down: Duration::from_secs(60) });
        breakers.record("c", Err(&down()));
        breakers.record("c", Err(&IntegrationError::not_found("p", "no such issue")));
        breakers.record("c", Err(&down()));
        assert_eq!(breakers.admit("c"), Admission::Allowed);
        let disabled = Breakers::new(BreakerConfig { threshold: 0, cool_down: Duration::from_secs(60) });
        for _ in 0..10 {
            disabled.record("c", Err(&down()));
        }
        assert_eq!(disabled.admit("c"), Admission::Allowed);
    }
}
