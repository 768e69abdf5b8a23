//! Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> ...`):
//! verification never panics, accepts a delivery only when one `v1,` entry is exactly the base64
//! HMAC it computes over `{id}.{timestamp}.{body}` and the timestamp is within the tolerance, and
//! refuses a signed delivery with one bit of its body or signature flipped.

#![no_main]

mod common;

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use integration_webhook::verify::hmac_base64;
use integration_webhook::{Secret, Verification};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// The secret as configured (usually `whsec_` + base64); arbitrary text when `raw_secret`.
    key: Vec<u8>,
    raw_secret: Option<String>,
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    now: u32,
    sign: bool,
    decoys: Vec<String>,
    flip: Option<(bool, usize)>,
}

fn b64(bytes: &[u8]) -> String {
    // the secret only: base64 of arbitrary key bytes, written by hand to keep the target small
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { char::from(T[((n >> (18 - 6 * i)) & 63) as usize]) } else { '=' });
        }
    }
    out
}

fuzz_target!(|input: Input| {
    let secret = match &input.raw_secret {
        Some(raw) => raw.clone(),
        None => format!("whsec_{}", b64(&input.key)),
    };
    let verification =
        Verification::StandardWebhooks { secret: Some(Secret::new(secret.clone())), tolerance_seconds: 300 };
    let now_secs = 1_600_000_000 + u64::from(input.now % 200_000_000);
    let now = UNIX_EPOCH + Duration::from_secs(now_secs);
    let mut body = input.body.clone();
    let (timestamp, signature, tampered) =
        if input.sign && input.raw_secret.is_none() && !input.key.is_empty() {
            let ts = now_secs - u64::from(input.now % 300);
            let signed = [format!("{}.{ts}.", input.id).as_bytes(), &body].concat();
            let mac = common::unhex(&integration_webhook::verify::hmac_hex(
                integration_webhook::HmacAlgorithm::Sha256,
                &input.key,
                &signed,
            ))
            .expect("hex");
            let (mac, tampered) = match input.flip {
                Some((true, bit)) if !body.is_empty() => {
                    body = common::flip(&body, bit);
                    (mac, true)
                }
                Some((false, bit)) => (common::flip(&mac, bit), true),
                _ => (mac, false),
            };
            let mut entries: Vec<String> = input.decoys.iter().take(3).map(|d| d.replace(' ', "")).collect();
            entries.push(format!("v1,{}", b64(&mac)));
            (ts.to_string(), entries.join(" "), Some(tampered))
        } else {
            (input.timestamp.clone(), input.signature.clone(), None)
        };
    let headers = common::headers(&[
        ("webhook-id", &input.id),
        ("webhook-timestamp", &timestamp),
        ("webhook-signature", &signature),
    ]);
    let result = verification.verify(&headers, &body, now);
    if let Some(tampered) = tampered
        && headers.len() == 3
        && input.id.trim() == input.id
        && input.id.is_ascii()
        && signature.is_ascii()
    {
        if !tampered {
            assert!(result.is_ok(), "signed delivery refused: {result:?}");
        }
    }
    if result.is_ok() {
        let value =
            |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().trim().to_owned();
        let (id, ts, sigs) = (value("webhook-id"), value("webhook-timestamp"), value("webhook-signature"));
        let key = integration_webhook::verify::standard_webhooks_key(&secret)
            .expect("accepted, so the key decodes");
        let expected = hmac_base64(&key, &[format!("{id}.{ts}.").as_bytes(), &body].concat());
        assert!(
            sigs.split(' ').any(|e| e == format!("v1,{expected}")),
            "accepted {sigs:?} without the signature v1,{expected}"
        );
        let skew = ts.parse::<i64>().map(|t| t.abs_diff(now_secs as i64)).unwrap_or(u64::MAX);
        assert!(skew <= 300, "accepted a timestamp {skew} s away");
        if tampered == Some(true) {
            // only possible when a decoy equals the real signature of the tampered delivery
            assert!(
                input.decoys.iter().any(|d| d.replace(' ', "") == format!("v1,{expected}")),
                "tampered delivery accepted"
            );
        }
    }
});
