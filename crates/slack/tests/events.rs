//! Inbound requests: Slack's documented signing example, and parsing of recorded payloads.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use integration_core::ErrorKind;
use integration_core::reexports::http::HeaderMap;
use integration_slack::events::{InteractionKind, SignatureVerifier, SlackInbound, VerifyError, receive};

/// From Slack's "Verifying requests from Slack" guide.
const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TIMESTAMP: u64 = 1531420618;
const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn check(ts: Option<&str>, sig: Option<&str>, body: &str, now: u64, expected: Result<(), VerifyError>) {
    let verifier = SignatureVerifier::new(SECRET);
    assert_eq!(
        verifier.verify_parts(ts, sig, body.as_bytes(), at(now)),
        expected,
        "ts {ts:?} sig {sig:?} now {now}"
    );
}

#[test]
fn slacks_documented_example_is_accepted() {
    let ts = TIMESTAMP.to_string();
    check(Some(&ts), Some(SIGNATURE), BODY, TIMESTAMP, Ok(()));
    check(Some(&ts), Some(SIGNATURE), BODY, TIMESTAMP + 299, Ok(()));
    check(Some(&ts), Some(SIGNATURE), BODY, TIMESTAMP - 299, Ok(()));
    assert_eq!(SignatureVerifier::new(SECRET).sign(TIMESTAMP, BODY.as_bytes()), SIGNATURE);
}

#[test]
fn tampered_stale_and_unsigned_requests_are_refused() {
    let ts = TIMESTAMP.to_string();
    let tampered = BODY.replace("text=", "text=rm+-rf");
    check(Some(&ts), Some(SIGNATURE), &tampered, TIMESTAMP, Err(VerifyError::Mismatch));
    // the signature covers the timestamp too
    let later = (TIMESTAMP + 1).to_string();
    check(Some(&later), Some(SIGNATURE), BODY, TIMESTAMP, Err(VerifyError::Mismatch));
    // another secret
    let other = SignatureVerifier::new("not-the-secret");
    assert_eq!(
        other.verify_parts(Some(&ts), Some(SIGNATURE), BODY.as_bytes(), at(TIMESTAMP)),
        Err(VerifyError::Mismatch)
    );
    // stale: more than five minutes either way
    check(
        Some(&ts),
        Some(SIGNATURE),
        BODY,
        TIMESTAMP + 301,
        Err(VerifyError::Stale { skew_secs: 301, tolerance_secs: 300 }),
    );
    check(
        Some(&ts),
        Some(SIGNATURE),
        BODY,
        TIMESTAMP - 301,
        Err(VerifyError::Stale { skew_secs: 301, tolerance_secs: 300 }),
    );
    // unsigned, or signed in another form
    check(Some(&ts), None, BODY, TIMESTAMP, Err(VerifyError::MissingSignature));
    check(None, Some(SIGNATURE), BODY, TIMESTAMP, Err(VerifyError::MissingTimestamp));
    check(Some("yesterday"), Some(SIGNATURE), BODY, TIMESTAMP, Err(VerifyError::InvalidTimestamp));
    check(
        Some(&ts),
        Some(&SIGNATURE.replace("v0=", "v1=")),
        BODY,
        TIMESTAMP,
        Err(VerifyError::MalformedSignature),
    );
    check(Some(&ts), Some("v0=abc"), BODY, TIMESTAMP, Err(VerifyError::MalformedSignature));
    check(
        Some(&ts),
        Some(&SIGNATURE[..SIGNATURE.len() - 2]),
        BODY,
        TIMESTAMP,
        Err(VerifyError::MalformedSignature),
    );
    // every refusal is an authentication error for the front door (401)
    let err: integration_core::IntegrationError = VerifyError::Mismatch.into();
    assert_eq!(err.kind(), &ErrorKind::Authentication);
}

fn signed_headers(
    verifier: &SignatureVerifier,
    body: &[u8],
    content_type: &str,
    retry: Option<u32>,
) -> HeaderMap {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut headers = HeaderMap::new();
    headers.insert("x-slack-request-timestamp", now.to_string().parse().expect("header"));
    headers.insert("x-slack-signature", verifier.sign(now, body).parse().expect("header"));
    headers.insert("content-type", content_type.parse().expect("header"));
    if let Some(n) = retry {
        headers.insert("x-slack-retry-num", n.to_string().parse().expect("header"));
        headers.insert("x-slack-retry-reason", "http_timeout".parse().expect("header"));
    }
    headers
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

fn form(payload: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new()).append_pair("payload", payload).finish()
}

#[test]
fn the_documented_slash_command_parses() {
    let verifier = SignatureVerifier::new(SECRET);
    let headers = signed_headers(&verifier, BODY.as_bytes(), "application/x-www-form-urlencoded", None);
    let inbound = receive(&verifier, &headers, BODY.as_bytes()).expect("accepted");
    assert_eq!(inbound.kind(), "slash_command");
    assert!(!inbound.is_retry());
    assert_eq!(inbound.ack_body(), None);
    let SlackInbound::SlashCommand { command, text, user_id, channel_id, trigger_id, payload } =
        &inbound.request
    else {
        panic!("not a slash command: {inbound:?}");
    };
    assert_eq!(command, "/webhook-collect");
    assert_eq!(text, "");
    assert_eq!(user_id.as_deref(), Some("U2CERLKJA"));
    assert_eq!(channel_id.as_deref(), Some("G8PSS9T3V"));
    assert_eq!(trigger_id.as_deref(), Some("398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"));
    assert_eq!(
        payload["response_url"],
        "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN"
    );
    assert_eq!(
        inbound.dedup_key().as_deref(),
        Some("command:398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    );

    // unsigned: refused before parsing
    let err = receive(&verifier, &HeaderMap::new(), BODY.as_bytes()).expect_err("unsigned");
    assert_eq!(err.kind(), &ErrorKind::Authentication);
}

#[test]
fn url_verification_answers_the_challenge() {
    let verifier = SignatureVerifier::new(SECRET);
    let body = fixture("url_verification.json");
    let inbound = receive(
        &verifier,
        &signed_headers(&verifier, body.as_bytes(), "application/json", None),
        body.as_bytes(),
    )
    .expect("accepted");
    assert_eq!(
        inbound.ack_body(),
        Some(serde_json::json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}))
    );
    assert_eq!(inbound.dedup_key(), None);
    assert_eq!(inbound.payload(), None, "a challenge is answered, not published");
}

#[test]
fn event_callbacks_carry_type_id_and_retries() {
    let verifier = SignatureVerifier::new(SECRET);
    for (file, event_type) in [
        ("event_callback_app_mention.json", "app_mention"),
        ("event_callback_message.json", "message"),
        ("event_callback_reaction_added.json", "reaction_added"),
    ] {
        let body = fixture(file);
        let first = receive(
            &verifier,
            &signed_headers(&verifier, body.as_bytes(), "application/json", None),
            body.as_bytes(),
        )
        .expect("accepted");
        assert_eq!(first.kind(), event_type, "{file}");
        assert_eq!(first.dedup_key().as_deref(), Some("event:Ev111"));
        let SlackInbound::Event { event_id, team_id, payload, .. } = &first.request else {
            panic!("{file}: {first:?}")
        };
        assert_eq!(event_id, "Ev111");
        assert_eq!(team_id.as_deref(), Some("T111"));
        assert_eq!(payload["event"]["type"], event_type);

        // Slack's redelivery: same key, marked as a retry
        let again = receive(
            &verifier,
            &signed_headers(&verifier, body.as_bytes(), "application/json", Some(1)),
            body.as_bytes(),
        )
        .expect("accepted");
        assert!(again.is_retry());
        assert_eq!(again.retry_reason.as_deref(), Some("http_timeout"));
        assert_eq!(again.dedup_key(), first.dedup_key());
        assert_eq!(again.event_body()["kind"], event_type);
    }
}

#[test]
fn interactivity_payloads_parse_from_form_bodies() {
    let verifier = SignatureVerifier::new(SECRET);
    for (file, kind, dedup) in [
        ("block_actions.json", InteractionKind::BlockActions, "interaction:block_actions:111.222.valid"),
        (
            "view_submission.json",
            InteractionKind::ViewSubmission,
            "interaction:view_submission:111.222.valid",
        ),
    ] {
        let body = form(&fixture(file));
        let headers = signed_headers(&verifier, body.as_bytes(), "application/x-www-form-urlencoded", None);
        let inbound = receive(&verifier, &headers, body.as_bytes()).expect("accepted");
        let SlackInbound::Interaction { kind: got, trigger_id, user_id, payload } = &inbound.request else {
            panic!("{file}: {inbound:?}")
        };
        assert_eq!(got, &kind);
        assert_eq!(trigger_id.as_deref(), Some("111.222.valid"));
        assert_eq!(user_id.as_deref(), Some("W111"));
        assert_eq!(payload["api_app_id"], "A111");
        assert_eq!(inbound.kind(), kind.as_str());
        assert_eq!(inbound.dedup_key().as_deref(), Some(dedup));
    }
    // a global shortcut
    let shortcut = serde_json::json!({"type": "shortcut", "callback_id": "open_ticket", "trigger_id": "9.8.7", "user": {"id": "U1"}});
    let body = form(&shortcut.to_string());
    let inbound = receive(
        &verifier,
        &signed_headers(&verifier, body.as_bytes(), "application/x-www-form-urlencoded", None),
        body.as_bytes(),
    )
    .expect("accepted");
    assert_eq!(inbound.kind(), "shortcut");
}

#[test]
fn malformed_bodies_are_invalid_input() {
    for (content_type, body) in [
        ("application/json", "not json"),
        ("application/json", r#"{"type":"event_callback"}"#),
        ("application/x-www-form-urlencoded", "payload=%7Bbroken"),
        ("application/x-www-form-urlencoded", "a=b"),
    ] {
        let err = SlackInbound::parse(Some(content_type), body.as_bytes()).expect_err(body);
        assert_eq!(err.kind(), &ErrorKind::InvalidInput, "{body}");
    }
}

/// A JSON fixture, parsed.
fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(name)).expect("fixture JSON")
}

/// Receive `body` as Slack sends it: signed, with its content type.
fn receive_signed(
    body: &str,
    content_type: &str,
) -> Result<integration_slack::Inbound, integration_core::IntegrationError> {
    let verifier = SignatureVerifier::new(SECRET);
    receive(&verifier, &signed_headers(&verifier, body.as_bytes(), content_type, None), body.as_bytes())
}

#[test]
fn message_edits_and_file_shares_are_message_events() {
    // (file, event_id, team_id, subtype, channel, ts): slack-morphism's message_changed envelopes
    // and bolt-python's file_share message.
    for (file, event_id, team_id, subtype, channel, ts) in [
        (
            "message_changed.json",
            "EXXXXXXXXXXX",
            "TXXXXXXXXXX",
            "message_changed",
            "CXXXXXXXXXX",
            "1701743154.000500",
        ),
        (
            "message_changed_by_bot.json",
            "EXXXXXXXXXXX",
            "TXXXXXXXXXX",
            "message_changed",
            "CXXXXXXXXXX",
            "1701743154.000500",
        ),
        (
            "event_callback_message_file_share.json",
            "Ev111",
            "T111",
            "file_share",
            "G111",
            "1610493715.001000",
        ),
    ] {
        let body = fixture(file);
        let inbound = receive_signed(&body, "application/json").unwrap_or_else(|e| panic!("{file}: {e}"));
        let SlackInbound::Event { event_id: id, event_type, team_id: team, payload } = &inbound.request
        else {
            panic!("{file}: {inbound:?}")
        };
        assert_eq!(id, event_id, "{file}");
        assert_eq!(event_type, "message", "{file}");
        assert_eq!(team.as_deref(), Some(team_id), "{file}");
        assert_eq!(inbound.kind(), "message", "{file}");
        assert_eq!(inbound.dedup_key(), Some(format!("event:{event_id}")), "{file}");
        assert_eq!(inbound.ack_body(), None, "{file}");
        // The payload published is the whole envelope, unchanged: subtype, channel and ts included.
        assert_eq!(payload, &fixture_json(file), "{file}");
        assert_eq!(payload["event"]["subtype"], subtype, "{file}");
        assert_eq!(payload["event"]["channel"], channel, "{file}");
        assert_eq!(payload["event"]["ts"], ts, "{file}");
        let published = inbound.event_body();
        assert_eq!(published["kind"], "message", "{file}");
        assert_eq!(published["payload"], fixture_json(file), "{file}");
    }

    let edited = fixture_json("message_changed.json");
    assert_eq!(edited["event"]["message"]["text"], "edited message");
    assert_eq!(edited["event"]["message"]["user"], "UXXXXXXXXXX");
    assert_eq!(edited["event"]["previous_message"]["text"], "hey!");
    let by_bot = fixture_json("message_changed_by_bot.json");
    assert_eq!(by_bot["event"]["message"]["bot_id"], "BXXXXXXXXXX");
    assert_eq!(by_bot["event"]["message"].get("user"), None);
    let shared = fixture_json("event_callback_message_file_share.json");
    assert_eq!(shared["event"]["user"], "U111");
    assert_eq!(shared["event"]["text"], "Here is your file!");
    assert_eq!(shared["event"]["files"][0]["id"], "F111");
}

#[test]
fn java_sdk_event_samples_without_an_envelope_type_are_invalid_input() {
    // The Java SDK's samples leave the envelope's "type" and "event_id" empty (placeholders).
    for (file, inner) in
        [("events_AppMentionPayload.json", "app_mention"), ("events_MessagePayload.json", "message")]
    {
        let body = fixture(file);
        let sample = fixture_json(file);
        assert_eq!(sample["type"], "", "{file}");
        assert_eq!(sample["event"]["type"], inner, "{file}");

        let err = receive_signed(&body, "application/json").expect_err(file);
        assert_eq!(err.kind(), &ErrorKind::InvalidInput, "{file}: {err}");
        assert!(err.message().contains("no type"), "{file}: {err}");

        // As an event_callback, the empty event_id is still refused: it is the dedup key.
        let mut callback = sample.clone();
        callback["type"] = "event_callback".into();
        let err = receive_signed(&callback.to_string(), "application/json").expect_err(file);
        assert_eq!(err.kind(), &ErrorKind::InvalidInput, "{file}: {err}");
        assert!(err.message().contains("without an event_id"), "{file}: {err}");

        // unsigned: refused before parsing
        let verifier = SignatureVerifier::new(SECRET);
        let err = receive(&verifier, &HeaderMap::new(), body.as_bytes()).expect_err(file);
        assert_eq!(err.kind(), &ErrorKind::Authentication, "{file}");
    }
}

#[test]
fn java_sdk_interaction_samples_parse_from_form_bodies() {
    for (file, kind) in [
        ("app-backend_interactive-components_BlockActionPayload.json", InteractionKind::BlockActions),
        ("app-backend_views_ViewSubmissionPayload.json", InteractionKind::ViewSubmission),
    ] {
        let body = form(&fixture(file));
        let inbound = receive_signed(&body, "application/x-www-form-urlencoded")
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let SlackInbound::Interaction { kind: got, trigger_id, user_id, payload } = &inbound.request else {
            panic!("{file}: {inbound:?}")
        };
        assert_eq!(got, &kind, "{file}");
        assert_eq!(inbound.kind(), kind.as_str(), "{file}");
        // trigger_id, user.id, actions[0].action_ts and view.id are "" in the samples: absent, so
        // there is nothing to deduplicate on.
        assert_eq!(trigger_id, &None, "{file}");
        assert_eq!(user_id, &None, "{file}");
        assert_eq!(inbound.dedup_key(), None, "{file}");
        assert_eq!(payload, &fixture_json(file), "{file}");
    }
}

#[test]
fn the_java_sdk_slash_command_sample_is_not_a_command() {
    // Slack sends slash commands as a form: the sample's fields, encoded as one.
    let sample = fixture_json("app-backend_slash-commands_SlashCommandPayload.json");
    let mut encoder = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in sample.as_object().expect("object") {
        match value {
            serde_json::Value::String(text) => encoder.append_pair(name, text),
            other => encoder.append_pair(name, &other.to_string()),
        };
    }
    let body = encoder.finish();
    assert!(body.contains("command=&"), "{body}");
    assert!(body.contains("is_enterprise_install=false"), "{body}");

    // Its command is empty: not a slash command, not an interaction, a 400.
    let err = receive_signed(&body, "application/x-www-form-urlencoded").expect_err("empty command");
    assert_eq!(err.kind(), &ErrorKind::InvalidInput, "{err}");
    assert!(err.message().contains("neither an interactivity payload nor a slash command"), "{err}");

    // The same form with a command reads every field of the sample.
    let named = body.replace("command=&", "command=%2Fdeploy&");
    let inbound = receive_signed(&named, "application/x-www-form-urlencoded").expect("a command");
    let SlackInbound::SlashCommand { command, text, user_id, channel_id, trigger_id, payload } =
        &inbound.request
    else {
        panic!("not a slash command: {inbound:?}");
    };
    assert_eq!(command, "/deploy");
    assert_eq!(text, "");
    assert_eq!((user_id, channel_id, trigger_id), (&None, &None, &None));
    assert_eq!(inbound.dedup_key(), None);
    assert_eq!(payload["is_enterprise_install"], "false");
    assert_eq!(payload["response_url"], "");
    assert_eq!(payload.as_object().map(|o| o.len()), sample.as_object().map(|o| o.len()));
}
