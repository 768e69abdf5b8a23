//! A write-only secret: deserialised from a string, never serialised, shown as `[REDACTED]`.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

/// A secret string from a definition (webhook secret, custom tool credential). It has no
/// `Serialize`, so a definition serialised for storage or an answer never contains it.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The value, for the code that signs, verifies or authenticates with it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Secrets by field as sealed storage gives them back (`secrecy`'s type), for
    /// `with_secrets` of a definition.
    pub fn from_stored(map: &BTreeMap<String, SecretString>) -> BTreeMap<String, Secret> {
        map.iter().map(|(k, v)| (k.clone(), Secret::new(v.expose_secret()))).collect()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq as _;
        bool::from(self.expose().as_bytes().ct_eq(other.expose().as_bytes()))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}
