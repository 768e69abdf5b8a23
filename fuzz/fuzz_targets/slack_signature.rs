//! Slack `v0` signatures, through the Slack crate's verifier and the webhook crate's `slack`
//! scheme: neither panics, both accept exactly the signature they compute themselves, both agree on
//! every request, and a signed request with one bit of its body or signature flipped is refused.

#![no_main]

mod common;

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use integration_slack::events::SignatureVerifier;
use integration_webhook::verify::{HmacAlgorithm, hmac_hex};
use integration_webhook::{Secret, Verification};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    secret: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    now: u32,
    /// Sign the request properly, then flip this bit (of the body or of the signature) when set.
    sign: bool,
    flip: Option<(bool, usize)>,
    /// Then replace one character of the signature text (non-canonical spellings).
    edit: Option<(usize, char)>,
}

fuzz_target!(|input: Input| {
    if input.secret.is_empty() {
        return;
    }
    let now_secs = 1_600_000_000 + u64::from(input.now % 200_000_000);
    let now = UNIX_EPOCH + Duration::from_secs(now_secs);
    let slack = SignatureVerifier::new(input.secret.clone());
    let webhook =
        Verification::Slack { secret: Some(Secret::new(input.secret.clone())), tolerance_seconds: 300 };

    let (timestamp, mut signature, mut body) = if input.sign {
        let ts = now_secs.saturating_sub(u64::from(input.now % 300));
        (ts.to_string(), slack.sign(ts, &input.body), input.body.clone())
    } else {
        (input.timestamp.clone(), input.signature.clone(), input.body.clone())
    };
    let mut tampered = false;
    if let (true, Some((in_body, bit))) = (input.sign, input.flip) {
        if in_body && !body.is_empty() {
            body = common::flip(&body, bit);
            tampered = true;
        } else if !in_body {
            let mac = common::unhex(&signature[3..]).expect("sign writes hex");
            signature = format!("v0={}", common::hex(&common::flip(&mac, bit)));
            tampered = true;
        }
    }

    if let (true, Some((at, c))) = (input.sign, input.edit) {
        let before = common::unhex(&signature[3..]);
        signature = common::edit(&signature, at, c);
        // Still the same bytes (a change of case) is the same signature; anything else is not.
        let after = signature.strip_prefix("v0=").and_then(common::unhex);
        tampered = tampered || after.is_none() || after != before;
    }

    let headers =
        common::headers(&[("x-slack-request-timestamp", &timestamp), ("x-slack-signature", &signature)]);
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let by_slack =
        slack.verify_parts(value("x-slack-request-timestamp"), value("x-slack-signature"), &body, now);
    let by_webhook = webhook.verify(&headers, &body, now);
    assert_eq!(by_slack.is_ok(), by_webhook.is_ok(), "verifiers disagree: {by_slack:?} vs {by_webhook:?}");

    if input.sign && headers.len() == 2 && signature.is_ascii() {
        assert_eq!(by_slack.is_ok(), !tampered, "signed request: {by_slack:?}, tampered: {tampered}");
    }
    if by_slack.is_ok() {
        // Only what the verifier computes itself is accepted.
        let ts = value("x-slack-request-timestamp").map(str::trim).unwrap_or_default();
        let given = value("x-slack-signature").map(str::trim).unwrap_or_default();
        let expected = hmac_hex(
            HmacAlgorithm::Sha256,
            input.secret.as_bytes(),
            &[format!("v0:{ts}:").as_bytes(), &body].concat(),
        );
        assert_eq!(
            given.to_ascii_lowercase(),
            format!("v0={expected}"),
            "accepted a signature it did not compute"
        );
        let skew = ts.parse::<u64>().map(|t| t.abs_diff(now_secs)).unwrap_or(u64::MAX);
        assert!(skew <= 300, "accepted a timestamp {skew} s away");
    }
});
