//! GitHub `X-Hub-Signature-256` and the generic HMAC scheme (hex or base64, optional prefix):
//! verification never panics, accepts only the signature it computes itself (in its canonical
//! spelling, hex case aside), and refuses a signed delivery with one bit of its body or signature
//! flipped or one character of the header changed to another spelling.

#![no_main]

mod common;

use std::time::UNIX_EPOCH;

use arbitrary::Arbitrary;
use integration_webhook::verify::{HmacAlgorithm, SignatureEncoding, hmac_hex};
use integration_webhook::{Secret, Verification};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    secret: String,
    /// `None`: the GitHub scheme; else the generic HMAC scheme with these settings.
    generic: Option<(bool, bool, String)>,
    header: String,
    body: Vec<u8>,
    sign: bool,
    flip: Option<(bool, usize)>,
    edit: Option<(usize, char)>,
}

fn b64(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = write!(out, "{}", char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The same header: the prefix exactly, then the same hex digits in any case, or the same base64.
fn same_signature(a: &str, b: &str, prefix: &str, encoding: SignatureEncoding) -> bool {
    match (a.strip_prefix(prefix), b.strip_prefix(prefix), encoding) {
        (Some(x), Some(y), SignatureEncoding::Hex) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    }
}

fuzz_target!(|input: Input| {
    if input.secret.is_empty() {
        return;
    }
    let (verification, header_name, algorithm, encoding, prefix) = match &input.generic {
        None => (
            Verification::Github { secret: Some(Secret::new(input.secret.clone())) },
            "x-hub-signature-256".to_owned(),
            HmacAlgorithm::Sha256,
            SignatureEncoding::Hex,
            "sha256=".to_owned(),
        ),
        Some((sha1, base64, prefix)) => {
            let algorithm = if *sha1 { HmacAlgorithm::Sha1 } else { HmacAlgorithm::Sha256 };
            let encoding = if *base64 { SignatureEncoding::Base64 } else { SignatureEncoding::Hex };
            let v = Verification::Hmac {
                secret: Some(Secret::new(input.secret.clone())),
                header: "x-signature".into(),
                algorithm,
                prefix: prefix.clone(),
                encoding,
            };
            (v, "x-signature".to_owned(), algorithm, encoding, prefix.clone())
        }
    };
    let encode = |mac: &[u8]| match encoding {
        SignatureEncoding::Hex => common::hex(mac),
        _ => b64(mac),
    };
    let mac = |body: &[u8]| {
        common::unhex(&hmac_hex(algorithm, input.secret.as_bytes(), body)).expect("hmac_hex writes hex")
    };
    let mut body = input.body.clone();
    let mut header = input.header.clone();
    let mut tampered = false;
    if input.sign {
        let mut signed = mac(&body);
        match input.flip {
            Some((true, bit)) if !body.is_empty() => {
                body = common::flip(&body, bit);
                tampered = true;
            }
            Some((false, bit)) => {
                signed = common::flip(&signed, bit);
                tampered = true;
            }
            _ => {}
        }
        header = format!("{prefix}{}", encode(&signed));
        if let Some((at, c)) = input.edit {
            let edited = common::edit(&header, at, c);
            // A change of hex case is the same signature; any other edit is a different header.
            let same = same_signature(&edited, &header, &prefix, encoding);
            tampered = tampered || !same;
            header = edited;
        }
    }
    let headers = common::headers(&[(&header_name, &header)]);
    let result = verification.verify(&headers, &body, UNIX_EPOCH);
    if input.sign && headers.len() == 1 && header.trim() == header && header.is_ascii() {
        assert_eq!(
            result.is_ok(),
            !tampered,
            "signed delivery: {result:?}, tampered: {tampered}, header {header:?}"
        );
    }
    if result.is_ok() {
        let given =
            headers.get(header_name.as_str()).and_then(|v| v.to_str().ok()).unwrap_or_default().trim();
        let expected = format!("{prefix}{}", encode(&mac(&body)));
        let canonical = same_signature(given, &expected, &prefix, encoding);
        assert!(canonical, "accepted {given:?}, which is not the signature {expected:?}");
    }
});
