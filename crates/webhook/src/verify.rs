//! Verification schemes of inbound deliveries. Every comparison is constant-time and runs over the
//! raw body bytes as received; no error message carries a secret or an expected signature.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit, Mac};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::secret::Secret;

/// The default timestamp tolerance of the Slack and Standard Webhooks schemes (5 minutes).
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;

/// The hash of an HMAC scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    /// HMAC-SHA256 (the default).
    #[default]
    Sha256,
    /// HMAC-SHA1 (legacy senders).
    Sha1,
}

/// How a signature is written in its header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    /// Lower- or upper-case hexadecimal (the default).
    #[default]
    Hex,
    /// Standard base64 with padding.
    Base64,
}

fn default_tolerance() -> u64 {
    DEFAULT_TOLERANCE_SECONDS
}

fn is_default_tolerance(v: &u64) -> bool {
    *v == DEFAULT_TOLERANCE_SECONDS
}

/// How an endpoint authenticates its deliveries. `secret` fields are write-only: they are never
/// serialised (the stored definition and every answer leave them out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case", deny_unknown_fields)]
pub enum Verification {
    /// No verification: anyone who knows the URL can deliver. Must be chosen explicitly.
    None,
    /// A shared token compared with the value of a header.
    Token {
        /// The header carrying the token (`X-Webhook-Token`).
        header: String,
        /// The token.
        #[serde(default, skip_serializing)]
        secret: Option<Secret>,
    },
    /// An HMAC of the raw body in a header.
    Hmac {
        /// The HMAC key.
        #[serde(default, skip_serializing)]
        secret: Option<Secret>,
        /// The header carrying the signature.
        header: String,
        /// The hash.
        #[serde(default)]
        algorithm: HmacAlgorithm,
        /// A prefix before the signature (`sha256=`).
        #[serde(default)]
        prefix: String,
        /// Hex or base64.
        #[serde(default)]
        encoding: SignatureEncoding,
    },
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    Github {
        /// The webhook secret.
        #[serde(default, skip_serializing)]
        secret: Option<Secret>,
    },
    /// Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">` with
    /// `X-Slack-Request-Timestamp` within the tolerance (5 minutes by default).
    Slack {
        /// The signing secret.
        #[serde(default, skip_serializing)]
        secret: Option<Secret>,
        /// Largest accepted clock difference in seconds.
        #[serde(default = "default_tolerance", skip_serializing_if = "is_default_tolerance")]
        tolerance_seconds: u64,
    },
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`
    /// over `{id}.{timestamp}.{body}`, keyed with the base64 secret after `whsec_`.
    #[serde(alias = "standard-webhooks", alias = "standard")]
    StandardWebhooks {
        /// The `whsec_...` secret.
        #[serde(default, skip_serializing)]
        secret: Option<Secret>,
        /// Largest accepted clock difference in seconds.
        #[serde(default = "default_tolerance", skip_serializing_if = "is_default_tolerance")]
        tolerance_seconds: u64,
    },
}

/// Why a delivery was refused. Messages name headers and rules, never secrets or signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(String),
    /// The header is present but malformed.
    #[error("header {header} is malformed: {reason}")]
    Malformed {
        /// The header.
        header: String,
        /// What is wrong.
        reason: String,
    },
    /// The signature or token does not match.
    #[error("{0} does not match")]
    Mismatch(String),
    /// The timestamp is outside the tolerance.
    #[error("timestamp in {header} is {skew} s away from now, more than the {tolerance} s tolerance")]
    Stale {
        /// The header.
        header: String,
        /// The difference to now in seconds.
        skew: u64,
        /// The tolerance in seconds.
        tolerance: u64,
    },
    /// The endpoint has no secret (a definition stored without one).
    #[error("the endpoint has no secret configured")]
    NoSecret,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, VerifyError> {
    let value = headers.get(name).ok_or_else(|| VerifyError::MissingHeader(name.to_owned()))?;
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| VerifyError::Malformed { header: name.to_owned(), reason: "not visible ASCII".into() })
}

fn hmac_matches(algorithm: HmacAlgorithm, key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
    fn check<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
        let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else { return false };
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(signature).is_ok()
    }
    match algorithm {
        HmacAlgorithm::Sha256 => check::<hmac::Hmac<sha2::Sha256>>(key, parts, signature),
        HmacAlgorithm::Sha1 => check::<hmac::Hmac<sha1::Sha1>>(key, parts, signature),
    }
}

/// Compute an HMAC (used by tests and by clients signing sample deliveries).
pub fn hmac_hex(algorithm: HmacAlgorithm, key: &[u8], message: &[u8]) -> String {
    fn compute<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        match <M as KeyInit>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
    let bytes = match algorithm {
        HmacAlgorithm::Sha256 => compute::<hmac::Hmac<sha2::Sha256>>(key, message),
        HmacAlgorithm::Sha1 => compute::<hmac::Hmac<sha1::Sha1>>(key, message),
    };
    hex_encode(&bytes)
}

/// The base64 HMAC-SHA256 (Standard Webhooks signatures).
pub fn hmac_base64(key: &[u8], message: &[u8]) -> String {
    let hex = hmac_hex(HmacAlgorithm::Sha256, key, message);
    BASE64.encode(hex_decode(&hex).unwrap_or_default())
}

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    // Only hex digits: `u8::from_str_radix` alone would also take a sign ("+f" as 0x0f).
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

fn decode_signature(
    header_name: &str,
    text: &str,
    encoding: SignatureEncoding,
) -> Result<Vec<u8>, VerifyError> {
    let malformed = |what: &str| VerifyError::Malformed {
        header: header_name.to_owned(),
        reason: format!("the signature is not valid {what}"),
    };
    match encoding {
        SignatureEncoding::Hex => hex_decode(text).ok_or_else(|| malformed("hex")),
        SignatureEncoding::Base64 => BASE64.decode(text).map_err(|_| malformed("base64")),
    }
}

fn check_timestamp(header_name: &str, raw: &str, now: SystemTime, tolerance: u64) -> Result<(), VerifyError> {
    let ts: i64 = raw.parse().map_err(|_| VerifyError::Malformed {
        header: header_name.to_owned(),
        reason: "the timestamp is not an integer number of seconds".into(),
    })?;
    let now = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64;
    let skew = now.abs_diff(ts);
    if skew > tolerance {
        return Err(VerifyError::Stale { header: header_name.to_owned(), skew, tolerance });
    }
    Ok(())
}

/// Decode a Standard Webhooks secret: base64 after an optional `whsec_` prefix.
pub fn standard_webhooks_key(secret: &str) -> Option<Vec<u8>> {
    BASE64.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok()
}

impl Verification {
    /// The scheme's name (`none`, `token`, `hmac`, `github`, `slack`, `standard_webhooks`).
    pub fn scheme(&self) -> &'static str {
        match self {
            Verification::None => "none",
            Verification::Token { .. } => "token",
            Verification::Hmac { .. } => "hmac",
            Verification::Github { .. } => "github",
            Verification::Slack { .. } => "slack",
            Verification::StandardWebhooks { .. } => "standard_webhooks",
        }
    }

    /// The secret, when the scheme has one.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Verification::None => None,
            Verification::Token { secret, .. }
            | Verification::Hmac { secret, .. }
            | Verification::Github { secret }
            | Verification::Slack { secret, .. }
            | Verification::StandardWebhooks { secret, .. } => secret.as_ref(),
        }
    }

    /// Mutable access to the secret slot, when the scheme has one.
    pub fn secret_slot(&mut self) -> Option<&mut Option<Secret>> {
        match self {
            Verification::None => None,
            Verification::Token { secret, .. }
            | Verification::Hmac { secret, .. }
            | Verification::Github { secret }
            | Verification::Slack { secret, .. }
            | Verification::StandardWebhooks { secret, .. } => Some(secret),
        }
    }

    /// Headers whose values are secrets (redacted in logs): the token header.
    pub fn secret_headers(&self) -> Vec<String> {
        match self {
            Verification::Token { header, .. } => vec![header.to_ascii_lowercase()],
            _ => Vec::new(),
        }
    }

    /// Check the definition (header names, secret format) without a delivery.
    pub fn validate(&self) -> Result<(), String> {
        let header_ok = |h: &str| {
            http::HeaderName::from_bytes(h.as_bytes())
                .map(|_| ())
                .map_err(|_| format!("'{h}' is not a valid header name"))
        };
        match self {
            Verification::None => Ok(()),
            Verification::Token { header, .. } | Verification::Hmac { header, .. } => header_ok(header),
            Verification::StandardWebhooks { secret: Some(secret), .. } => {
                match standard_webhooks_key(secret.expose()) {
                    Some(key) if !key.is_empty() => Ok(()),
                    _ => {
                        Err("the Standard Webhooks secret must be base64 (optionally after 'whsec_')".into())
                    }
                }
            }
            Verification::Github { .. }
            | Verification::Slack { .. }
            | Verification::StandardWebhooks { .. } => Ok(()),
        }
    }

    /// A key naming a delivery by its verified signature, for replay protection: the same signed
    /// delivery sent again has the same key. `slack`: timestamp and signature; `github` and `hmac`
    /// (which sign the body only): the signature; `standard_webhooks`: the signed `webhook-id`;
    /// `none` and `token`: no key (nothing distinguishes a replay). The signature is decoded and
    /// written again in lowercase hex, so a replay cannot dodge the key by re-encoding it (upper
    /// case, padding). Call it on verified deliveries only.
    pub fn replay_key(&self, headers: &HeaderMap) -> Option<String> {
        let signature = |name: &str, prefix: &str, encoding: SignatureEncoding| -> Option<String> {
            let given = header(headers, name).ok()?.strip_prefix(prefix)?;
            decode_signature(name, given, encoding).ok().map(|bytes| hex_encode(&bytes))
        };
        match self {
            Verification::None | Verification::Token { .. } => None,
            Verification::Hmac { header: name, prefix, encoding, .. } => {
                signature(name, prefix, *encoding).map(|s| format!("sig:{s}"))
            }
            Verification::Github { .. } => {
                signature("X-Hub-Signature-256", "sha256=", SignatureEncoding::Hex)
                    .map(|s| format!("sig:{s}"))
            }
            Verification::Slack { .. } => {
                let ts = header(headers, "X-Slack-Request-Timestamp").ok()?;
                signature("X-Slack-Signature", "v0=", SignatureEncoding::Hex).map(|s| format!("sig:{ts}:{s}"))
            }
            Verification::StandardWebhooks { .. } => {
                header(headers, "webhook-id").ok().filter(|id| !id.is_empty()).map(str::to_owned)
            }
        }
    }

    /// Verify a delivery: its headers and raw body, at time `now`.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<(), VerifyError> {
        if let Verification::None = self {
            return Ok(());
        }
        let secret = self.secret().filter(|s| !s.expose().is_empty()).ok_or(VerifyError::NoSecret)?;
        let key = secret.expose().as_bytes();
        match self {
            Verification::None => Ok(()),
            Verification::Token { header: name, .. } => {
                let given = header(headers, name)?;
                if bool::from(given.as_bytes().ct_eq(key)) {
                    Ok(())
                } else {
                    Err(VerifyError::Mismatch(format!("the token in {name}")))
                }
            }
            Verification::Hmac { header: name, algorithm, prefix, encoding, .. } => {
                let given = header(headers, name)?;
                let given = given.strip_prefix(prefix.as_str()).ok_or_else(|| VerifyError::Malformed {
                    header: name.clone(),
                    reason: format!("the signature does not start with '{prefix}'"),
                })?;
                let signature = decode_signature(name, given, *encoding)?;
                if hmac_matches(*algorithm, key, &[body], &signature) {
                    Ok(())
                } else {
                    Err(VerifyError::Mismatch(format!("the signature in {name}")))
                }
            }
            Verification::Github { .. } => {
                let name = "X-Hub-Signature-256";
                let given = header(headers, name)?;
                let given = given.strip_prefix("sha256=").ok_or_else(|| VerifyError::Malformed {
                    header: name.into(),
                    reason: "the signature does not start with 'sha256='".into(),
                })?;
                let signature = decode_signature(name, given, SignatureEncoding::Hex)?;
                if hmac_matches(HmacAlgorithm::Sha256, key, &[body], &signature) {
                    Ok(())
                } else {
                    Err(VerifyError::Mismatch(format!("the signature in {name}")))
                }
            }
            Verification::Slack { tolerance_seconds, .. } => {
                let ts_name = "X-Slack-Request-Timestamp";
                let sig_name = "X-Slack-Signature";
                let ts = header(headers, ts_name)?;
                let given = header(headers, sig_name)?;
                check_timestamp(ts_name, ts, now, *tolerance_seconds)?;
                let given = given.strip_prefix("v0=").ok_or_else(|| VerifyError::Malformed {
                    header: sig_name.into(),
                    reason: "the signature does not start with 'v0='".into(),
                })?;
                let signature = decode_signature(sig_name, given, SignatureEncoding::Hex)?;
                let base = format!("v0:{ts}:");
                if hmac_matches(HmacAlgorithm::Sha256, key, &[base.as_bytes(), body], &signature) {
                    Ok(())
                } else {
                    Err(VerifyError::Mismatch(format!("the signature in {sig_name}")))
                }
            }
            Verification::StandardWebhooks { tolerance_seconds, .. } => {
                let id = header(headers, "webhook-id")?;
                let ts = header(headers, "webhook-timestamp")?;
                let given = header(headers, "webhook-signature")?;
                check_timestamp("webhook-timestamp", ts, now, *tolerance_seconds)?;
                let key = standard_webhooks_key(secret.expose()).ok_or(VerifyError::NoSecret)?;
                let prefix = format!("{id}.{ts}.");
                let mut saw_v1 = false;
                for entry in given.split(' ').filter(|e| !e.is_empty()) {
                    let Some(sig) = entry.strip_prefix("v1,") else { continue };
                    saw_v1 = true;
                    let Ok(sig) = BASE64.decode(sig) else { continue };
                    if hmac_matches(HmacAlgorithm::Sha256, &key, &[prefix.as_bytes(), body], &sig) {
                        return Ok(());
                    }
                }
                if saw_v1 {
                    Err(VerifyError::Mismatch("the signature in webhook-signature".into()))
                } else {
                    Err(VerifyError::Malformed {
                        header: "webhook-signature".into(),
                        reason: "no 'v1,<base64>' signature".into(),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        map
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn scheme(json: serde_json::Value) -> Verification {
        serde_json::from_value(json).expect("valid scheme")
    }

    #[test]
    fn github_documented_example() {
        let v = scheme(serde_json::json!({"scheme": "github", "secret": "It's a Secret to Everybody"}));
        let good = headers(&[(
            "X-Hub-Signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert_eq!(v.verify(&good, b"Hello, World!", at(0)), Ok(()));
        // tampered body
        assert!(matches!(v.verify(&good, b"Hello, World?", at(0)), Err(VerifyError::Mismatch(_))));
        // missing, wrong prefix, wrong encoding
        assert_eq!(
            v.verify(&HeaderMap::new(), b"Hello, World!", at(0)),
            Err(VerifyError::MissingHeader("X-Hub-Signature-256".into()))
        );
        let wrong_prefix = headers(&[(
            "X-Hub-Signature-256",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert!(matches!(
            v.verify(&wrong_prefix, b"Hello, World!", at(0)),
            Err(VerifyError::Malformed { .. })
        ));
        let not_hex = headers(&[("X-Hub-Signature-256", "sha256=zz")]);
        assert!(matches!(v.verify(&not_hex, b"Hello, World!", at(0)), Err(VerifyError::Malformed { .. })));
        // the message never contains the secret
        let err = v.verify(&good, b"x", at(0)).expect_err("mismatch").to_string();
        assert!(!err.contains("Secret to Everybody"), "{err}");
    }

    #[test]
    fn hmac_sha1_base64_and_prefix() {
        let v = scheme(serde_json::json!({"scheme": "hmac", "secret": "k", "header": "X-Sig",
            "algorithm": "sha1", "prefix": "sha1=", "encoding": "base64"}));
        let hex = hmac_hex(HmacAlgorithm::Sha1, b"k", b"body");
        let b64 = BASE64.encode(hex_decode(&hex).expect("hex"));
        assert_eq!(v.verify(&headers(&[("X-Sig", &format!("sha1={b64}"))]), b"body", at(0)), Ok(()));
        assert!(matches!(
            v.verify(&headers(&[("X-Sig", &format!("sha1={b64}"))]), b"bodY", at(0)),
            Err(VerifyError::Mismatch(_))
        ));
        // hex where base64 is expected
        assert!(v.verify(&headers(&[("X-Sig", &format!("sha1={hex}"))]), b"body", at(0)).is_err());
        assert!(matches!(
            v.verify(&headers(&[("X-Sig", &b64)]), b"body", at(0)),
            Err(VerifyError::Malformed { .. })
        ));
        assert!(matches!(v.verify(&HeaderMap::new(), b"body", at(0)), Err(VerifyError::MissingHeader(_))));
        // sha256 hex default
        let v = scheme(serde_json::json!({"scheme": "hmac", "secret": "k", "header": "X-Sig"}));
        let hex = hmac_hex(HmacAlgorithm::Sha256, b"k", b"body");
        assert_eq!(v.verify(&headers(&[("X-Sig", &hex.to_uppercase())]), b"body", at(0)), Ok(()));
    }

    #[test]
    fn signatures_are_hex_digits_only() {
        // found by the slack_signature fuzz target: "+f" decoded as 0x0f, so a signature with a
        // '+' in place of a '0' was accepted (the Slack crate's verifier refused it)
        assert_eq!(hex_decode("0f"), Some(vec![0x0f]));
        assert_eq!(hex_decode("+f"), None);
        assert_eq!(hex_decode("-0"), None);
        assert_eq!(hex_decode("0F"), Some(vec![0x0f]));
        let v = scheme(serde_json::json!({"scheme": "github", "secret": "It's a Secret to Everybody"}));
        let good = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let plus = good.replacen("0e", "+e", 1);
        assert_ne!(plus, good);
        let h = headers(&[("X-Hub-Signature-256", &format!("sha256={plus}"))]);
        assert!(matches!(v.verify(&h, b"Hello, World!", at(0)), Err(VerifyError::Malformed { .. })));
    }

    #[test]
    fn token_scheme() {
        let v = scheme(serde_json::json!({"scheme": "token", "header": "X-Token", "secret": "t0k3n"}));
        assert_eq!(v.verify(&headers(&[("X-Token", "t0k3n")]), b"", at(0)), Ok(()));
        assert!(matches!(
            v.verify(&headers(&[("X-Token", "t0k3")]), b"", at(0)),
            Err(VerifyError::Mismatch(_))
        ));
        assert!(matches!(v.verify(&HeaderMap::new(), b"", at(0)), Err(VerifyError::MissingHeader(_))));
        assert_eq!(v.secret_headers(), vec!["x-token"]);
    }

    #[test]
    fn slack_scheme_with_window() {
        let v = scheme(serde_json::json!({"scheme": "slack", "secret": "8f742231b10e8888abcd99yyyzzz85a5"}));
        let body = b"token=x&team_id=T1&command=%2Fweather";
        let ts = "1531420618";
        let sig = format!(
            "v0={}",
            hmac_hex(
                HmacAlgorithm::Sha256,
                b"8f742231b10e8888abcd99yyyzzz85a5",
                &[b"v0:1531420618:".as_slice(), body].concat()
            )
        );
        let good = headers(&[("X-Slack-Request-Timestamp", ts), ("X-Slack-Signature", &sig)]);
        assert_eq!(v.verify(&good, body, at(1_531_420_618 + 299)), Ok(()));
        assert!(matches!(v.verify(&good, body, at(1_531_420_618 + 301)), Err(VerifyError::Stale { .. })));
        assert!(matches!(v.verify(&good, b"token=y", at(1_531_420_618)), Err(VerifyError::Mismatch(_))));
        let wrong_prefix = headers(&[("X-Slack-Request-Timestamp", ts), ("X-Slack-Signature", &sig[1..])]);
        assert!(matches!(
            v.verify(&wrong_prefix, body, at(1_531_420_618)),
            Err(VerifyError::Malformed { .. })
        ));
        let no_ts = headers(&[("X-Slack-Signature", &sig)]);
        assert!(matches!(v.verify(&no_ts, body, at(1_531_420_618)), Err(VerifyError::MissingHeader(_))));
    }

    #[test]
    fn standard_webhooks_spec_example() {
        let v = scheme(serde_json::json!({"scheme": "standard_webhooks",
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}));
        let body = br#"{"test": 2432232314}"#;
        let good = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ]);
        assert_eq!(v.verify(&good, body, at(1_614_265_330)), Ok(()));
        // several signatures, one valid
        let multi = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", "v1,Zm9v v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ]);
        assert_eq!(v.verify(&multi, body, at(1_614_265_330)), Ok(()));
        assert!(matches!(v.verify(&good, b"{}", at(1_614_265_330)), Err(VerifyError::Mismatch(_))));
        assert!(matches!(v.verify(&good, body, at(1_614_265_330 + 301)), Err(VerifyError::Stale { .. })));
        assert!(matches!(v.verify(&good, body, at(1_614_265_330 - 301)), Err(VerifyError::Stale { .. })));
        let v2 = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ]);
        assert!(matches!(v.verify(&v2, body, at(1_614_265_330)), Err(VerifyError::Malformed { .. })));
        let missing = headers(&[("webhook-id", "msg_1"), ("webhook-timestamp", "1614265330")]);
        assert!(matches!(v.verify(&missing, body, at(1_614_265_330)), Err(VerifyError::MissingHeader(_))));
    }

    #[test]
    fn replay_keys_name_the_signed_delivery() {
        let gh = scheme(serde_json::json!({"scheme": "github", "secret": "s"}));
        let sig = hmac_hex(HmacAlgorithm::Sha256, b"s", b"body");
        let lower = headers(&[("X-Hub-Signature-256", &format!("sha256={sig}"))]);
        let upper = headers(&[("X-Hub-Signature-256", &format!("sha256={}", sig.to_uppercase()))]);
        assert_eq!(gh.verify(&upper, b"body", at(0)), Ok(()), "upper-case hex verifies");
        assert_eq!(gh.replay_key(&lower), Some(format!("sig:{sig}")));
        assert_eq!(gh.replay_key(&upper), gh.replay_key(&lower), "re-encoding does not change the key");

        let hm = scheme(serde_json::json!({"scheme": "hmac", "secret": "k", "header": "X-Sig",
            "prefix": "sha1=", "algorithm": "sha1", "encoding": "base64"}));
        let b64 = BASE64.encode(hex_decode(&hmac_hex(HmacAlgorithm::Sha1, b"k", b"body")).expect("hex"));
        let key = hm.replay_key(&headers(&[("X-Sig", &format!("sha1={b64}"))])).expect("key");
        assert!(key.starts_with("sig:") && key.len() == 4 + 40, "{key}");

        let sl = scheme(serde_json::json!({"scheme": "slack", "secret": "s"}));
        let a = headers(&[("X-Slack-Request-Timestamp", "100"), ("X-Slack-Signature", &format!("v0={sig}"))]);
        let b = headers(&[("X-Slack-Request-Timestamp", "101"), ("X-Slack-Signature", &format!("v0={sig}"))]);
        assert_ne!(sl.replay_key(&a), sl.replay_key(&b), "the timestamp is part of the key");

        let sw = scheme(
            serde_json::json!({"scheme": "standard_webhooks", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        );
        assert_eq!(sw.replay_key(&headers(&[("webhook-id", "msg_1")])), Some("msg_1".into()));
        let tok = scheme(serde_json::json!({"scheme": "token", "header": "X-T", "secret": "t"}));
        assert_eq!(tok.replay_key(&headers(&[("X-T", "t")])), None);
        assert_eq!(scheme(serde_json::json!({"scheme": "none"})).replay_key(&lower), None);
    }

    #[test]
    fn secrets_never_serialise_and_unknown_fields_are_refused() {
        let v = scheme(serde_json::json!({"scheme": "github", "secret": "top-secret"}));
        let text = serde_json::to_string(&v).expect("json");
        assert_eq!(text, r#"{"scheme":"github"}"#);
        assert!(!format!("{v:?}").contains("top-secret"));
        assert!(
            serde_json::from_value::<Verification>(serde_json::json!({"scheme": "github", "secrett": "x"}))
                .is_err()
        );
        assert!(serde_json::from_value::<Verification>(serde_json::json!({"scheme": "nope"})).is_err());
        assert_eq!(
            scheme(serde_json::json!({"scheme": "none"})).verify(&HeaderMap::new(), b"", at(0)),
            Ok(())
        );
        let no_secret = scheme(serde_json::json!({"scheme": "github"}));
        assert_eq!(no_secret.verify(&HeaderMap::new(), b"", at(0)), Err(VerifyError::NoSecret));
    }

    /// Sign/verify round trips of every scheme: what the sender computes is accepted, and a
    /// one-bit change of the body or of the signature is refused.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Flip one bit of `bytes` (at `bit` modulo the length); nothing for an empty slice.
        fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
            let mut out = bytes.to_vec();
            if !out.is_empty() {
                let i = (bit / 8) % out.len();
                out[i] ^= 1 << (bit % 8);
            }
            out
        }

        fn raw_mac(algorithm: HmacAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
            hex_decode(&hmac_hex(algorithm, key, message)).expect("hmac_hex is hex")
        }

        fn encode(bytes: &[u8], encoding: SignatureEncoding) -> String {
            match encoding {
                SignatureEncoding::Hex => hex_encode(bytes),
                SignatureEncoding::Base64 => BASE64.encode(bytes),
            }
        }

        /// Printable ASCII without surrounding spaces (header values are trimmed).
        fn secret() -> impl Strategy<Value = String> {
            "[!-~][ -~]{0,38}[!-~]|[!-~]"
        }

        fn body() -> impl Strategy<Value = Vec<u8>> {
            prop::collection::vec(any::<u8>(), 0..256)
        }

        const NOW: u64 = 1_700_000_000;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn hmac_scheme_round_trips(
                key in secret(), body in body(), bit in any::<usize>(),
                sha1 in any::<bool>(), base64 in any::<bool>(), prefix in "[a-z0-9]{0,6}=?",
            ) {
                let algorithm = if sha1 { HmacAlgorithm::Sha1 } else { HmacAlgorithm::Sha256 };
                let encoding = if base64 { SignatureEncoding::Base64 } else { SignatureEncoding::Hex };
                let v = Verification::Hmac {
                    secret: Some(Secret::new(key.clone())),
                    header: "X-Sig".into(),
                    algorithm,
                    prefix: prefix.clone(),
                    encoding,
                };
                let mac = raw_mac(algorithm, key.as_bytes(), &body);
                let sig = |mac: &[u8]| headers(&[("X-Sig", &format!("{prefix}{}", encode(mac, encoding)))]);
                prop_assert_eq!(v.verify(&sig(&mac), &body, at(NOW)), Ok(()));
                prop_assert!(matches!(v.verify(&sig(&flip(&mac, bit)), &body, at(NOW)), Err(VerifyError::Mismatch(_))));
                if !body.is_empty() {
                    prop_assert!(matches!(v.verify(&sig(&mac), &flip(&body, bit), at(NOW)), Err(VerifyError::Mismatch(_))));
                }
                // the other hash never matches
                let other = if sha1 { HmacAlgorithm::Sha256 } else { HmacAlgorithm::Sha1 };
                prop_assert!(v.verify(&sig(&raw_mac(other, key.as_bytes(), &body)), &body, at(NOW)).is_err());
            }

            #[test]
            fn github_scheme_round_trips(key in secret(), body in body(), bit in any::<usize>()) {
                let v = Verification::Github { secret: Some(Secret::new(key.clone())) };
                let mac = raw_mac(HmacAlgorithm::Sha256, key.as_bytes(), &body);
                let sig = |mac: &[u8]| headers(&[("X-Hub-Signature-256", &format!("sha256={}", hex_encode(mac)))]);
                prop_assert_eq!(v.verify(&sig(&mac), &body, at(NOW)), Ok(()));
                prop_assert!(matches!(v.verify(&sig(&flip(&mac, bit)), &body, at(NOW)), Err(VerifyError::Mismatch(_))));
                if !body.is_empty() {
                    prop_assert!(matches!(v.verify(&sig(&mac), &flip(&body, bit), at(NOW)), Err(VerifyError::Mismatch(_))));
                }
                // a signature made with another secret fails
                let other = raw_mac(HmacAlgorithm::Sha256, format!("{key}x").as_bytes(), &body);
                prop_assert!(matches!(v.verify(&sig(&other), &body, at(NOW)), Err(VerifyError::Mismatch(_))));
            }

            #[test]
            fn slack_scheme_round_trips(
                key in secret(), body in body(), bit in any::<usize>(), skew in -300i64..=300, ts_offset in 0u64..1_000_000,
            ) {
                let v = Verification::Slack { secret: Some(Secret::new(key.clone())), tolerance_seconds: 300 };
                let ts = NOW - ts_offset;
                let now = at(ts.saturating_add_signed(skew));
                let base = [format!("v0:{ts}:").as_bytes(), &body].concat();
                let mac = raw_mac(HmacAlgorithm::Sha256, key.as_bytes(), &base);
                let sig = |ts: u64, mac: &[u8]| headers(&[
                    ("X-Slack-Request-Timestamp", &ts.to_string()),
                    ("X-Slack-Signature", &format!("v0={}", hex_encode(mac))),
                ]);
                prop_assert_eq!(v.verify(&sig(ts, &mac), &body, now), Ok(()));
                prop_assert!(matches!(v.verify(&sig(ts, &flip(&mac, bit)), &body, now), Err(VerifyError::Mismatch(_))));
                if !body.is_empty() {
                    prop_assert!(matches!(v.verify(&sig(ts, &mac), &flip(&body, bit), now), Err(VerifyError::Mismatch(_))));
                }
                // the timestamp is signed: moving it (within the window) breaks the signature
                prop_assert!(v.verify(&sig(ts + 1, &mac), &body, now).is_err());
                // outside the window even the right signature is refused
                let stale = v.verify(&sig(ts, &mac), &body, at(ts + 301));
                prop_assert!(matches!(stale, Err(VerifyError::Stale { .. })), "{:?}", stale);
            }

            #[test]
            fn standard_webhooks_scheme_round_trips(
                key in prop::collection::vec(any::<u8>(), 1..64), body in body(), bit in any::<usize>(),
                id in "[A-Za-z0-9_]{1,32}", skew in -300i64..=300, decoys in 0usize..3,
            ) {
                let v = Verification::StandardWebhooks {
                    secret: Some(Secret::new(format!("whsec_{}", BASE64.encode(&key)))),
                    tolerance_seconds: 300,
                };
                let ts = NOW;
                let signed = [format!("{id}.{ts}.").as_bytes(), &body].concat();
                let mac = raw_mac(HmacAlgorithm::Sha256, &key, &signed);
                prop_assert_eq!(BASE64.encode(&mac), hmac_base64(&key, &signed));
                let sig = |mac: &[u8]| {
                    let mut entries: Vec<String> = (0..decoys).map(|i| format!("v1,{}", BASE64.encode([i as u8; 32]))).collect();
                    entries.push(format!("v1,{}", BASE64.encode(mac)));
                    headers(&[
                        ("webhook-id", id.as_str()),
                        ("webhook-timestamp", &ts.to_string()),
                        ("webhook-signature", &entries.join(" ")),
                    ])
                };
                let now = at(ts.saturating_add_signed(skew));
                prop_assert_eq!(v.verify(&sig(&mac), &body, now), Ok(()));
                prop_assert!(matches!(v.verify(&sig(&flip(&mac, bit)), &body, now), Err(VerifyError::Mismatch(_))));
                if !body.is_empty() {
                    prop_assert!(matches!(v.verify(&sig(&mac), &flip(&body, bit), now), Err(VerifyError::Mismatch(_))));
                }
                let stale = v.verify(&sig(&mac), &body, at(ts + 301));
                prop_assert!(matches!(stale, Err(VerifyError::Stale { .. })), "{:?}", stale);
            }

            #[test]
            fn token_scheme_accepts_only_the_token(token in secret(), bit in any::<usize>()) {
                let v = Verification::Token { header: "X-Token".into(), secret: Some(Secret::new(token.clone())) };
                prop_assert_eq!(v.verify(&headers(&[("X-Token", &token)]), b"", at(NOW)), Ok(()));
                let other = flip(token.as_bytes(), bit);
                if let Ok(other) = String::from_utf8(other)
                    && http::HeaderValue::from_str(&other).is_ok()
                    && other.trim() == other
                {
                    prop_assert!(v.verify(&headers(&[("X-Token", &other)]), b"", at(NOW)).is_err());
                }
            }
        }
    }
}
