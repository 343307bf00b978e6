//! Our own real-shaped payloads (`tests/fixtures/webhook/`, one per event and message type):
//! typed fields, exact round trips, forward compatibility and per-event error isolation.

use enishi::LineUserId;
use enishi::line::webhook::*;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhook");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}.json")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn one(name: &str) -> Event {
    let payload = parse(&fixture(name)).unwrap();
    assert_eq!(payload.events.len(), 1, "{name}");
    payload.events.into_iter().next().unwrap()
}

fn all_fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn webhook_fixtures_cover_every_documented_event_and_message_type() {
    let mut types = std::collections::BTreeSet::new();
    for name in all_fixture_names() {
        let event = one(&name);
        types.insert(event.type_str().to_owned());
        if let EventKind::Message(m) = &event.kind {
            types.insert(format!("message/{}", m.type_str()));
        }
        if let Some(s) = &event.source {
            types.insert(format!("source/{}", s.type_str()));
        }
    }
    for t in [
        "message",
        "messageEdited",
        "unsend",
        "follow",
        "unfollow",
        "join",
        "leave",
        "memberJoined",
        "memberLeft",
        "postback",
        "videoPlayComplete",
        "beacon",
        "accountLink",
        "membership",
        "module",
        "activated",
        "deactivated",
        "botSuspended",
        "botResumed",
        "delivery",
        "things",
        "message/text",
        "message/image",
        "message/video",
        "message/audio",
        "message/file",
        "message/location",
        "message/sticker",
        "source/user",
        "source/group",
        "source/room",
    ] {
        assert!(types.contains(t), "no fixture for {t}");
    }
}

#[test]
fn webhook_fixtures_round_trip_exactly_through_the_typed_model() {
    for name in all_fixture_names() {
        let body = fixture(&name);
        let payload = parse(&body).unwrap();
        let original: Value = serde_json::from_slice(&body).unwrap();
        // Typed -> JSON gives back exactly what LINE sent (our fixtures have no unknown fields).
        assert_eq!(serde_json::to_value(&payload).unwrap(), original, "{name}");
        let event = &payload.events[0];
        assert!(
            !matches!(event.kind, EventKind::Unknown(_) | EventKind::Malformed { .. }),
            "{name}"
        );
        // ... and the serialised event reads back into the same typed event.
        let again = parse_event(&serde_json::to_string(event).unwrap()).unwrap();
        assert_eq!(again.kind, event.kind, "{name}");
        assert_eq!(again.source, event.source, "{name}");
        assert_eq!(again.webhook_event_id, event.webhook_event_id, "{name}");
        let via_serde: Event = serde_json::from_str(event.raw_json()).unwrap();
        assert_eq!(&via_serde, event, "{name}");
        assert_eq!(event.to_value(), original["events"][0], "{name}");
    }
}

#[test]
fn webhook_text_message_fields() {
    let e = one("message-text");
    assert_eq!(e.mode, Some(Mode::Active));
    assert_eq!(e.webhook_event_id.as_ref().unwrap().as_str().len(), 26);
    assert!(!e.is_redelivery());
    assert!(e.reply_token.is_some());
    assert_eq!(e.time().unwrap().timestamp_millis(), e.timestamp.unwrap());
    let uid = e.source.as_ref().unwrap().line_user_id().unwrap();
    assert_eq!(uid, LineUserId::new("U4af4980629a1b2c3d4e5f60718293a4b").unwrap());
    let EventKind::Message(MessageContent::Text(t)) = &e.kind else { panic!("{:?}", e.kind) };
    assert_eq!(t.text, "@Shop (love) 注文番号は12345です");
    assert_eq!(t.id.as_deref(), Some("532904521318612993"));
    assert_eq!(t.emojis.as_ref().unwrap()[0].product_id, "5ac1bfd5040ab15980c9b435");
    let m = &t.mention.as_ref().unwrap().mentionees[0];
    assert_eq!(
        (m.mentionee_type.clone(), m.index, m.length, m.is_self),
        (MentioneeType::User, 0, 5, Some(true))
    );
    assert_eq!(e.kind.type_str(), "message");
}

#[test]
fn webhook_group_room_and_media_messages() {
    let e = one("message-text-group-quoted");
    assert!(
        matches!(&e.source, Some(Source::Group { group_id, user_id: Some(_) }) if group_id.starts_with('C'))
    );
    assert_eq!(e.source.as_ref().unwrap().chat_id(), Some("Cd4e5f60718293a4b5c6d7e8f9a0b1c2d"));
    let EventKind::Message(MessageContent::Text(t)) = &e.kind else { panic!() };
    assert_eq!(t.quoted_message_id.as_deref(), Some("532904521318612993"));
    assert_eq!(t.mention.as_ref().unwrap().mentionees[0].mentionee_type, MentioneeType::All);

    let EventKind::Message(MessageContent::Image(i)) = one("message-image").kind else { panic!() };
    assert_eq!(i.content_provider.unwrap().provider_type, ContentProviderType::Line);
    assert_eq!(i.image_set.unwrap().total, Some(2));

    let EventKind::Message(MessageContent::Video(v)) = one("message-video").kind else { panic!() };
    let cp = v.content_provider.unwrap();
    assert_eq!((cp.provider_type, v.duration), (ContentProviderType::External, Some(60000)));
    assert_eq!(cp.original_content_url.as_deref(), Some("https://example.com/original.mp4"));

    let EventKind::Message(MessageContent::Audio(a)) = one("message-audio").kind else { panic!() };
    assert_eq!(a.duration, Some(60000));

    let EventKind::Message(MessageContent::File(f)) = one("message-file").kind else { panic!() };
    assert_eq!((f.file_name.as_deref(), f.file_size), (Some("receipt.pdf"), Some(2138)));

    let EventKind::Message(MessageContent::Location(l)) = one("message-location").kind else {
        panic!()
    };
    assert!((l.latitude - 35.67966).abs() < 1e-9 && (l.longitude - 139.73669).abs() < 1e-9);

    let e = one("message-sticker");
    assert!(matches!(&e.source, Some(Source::Room { room_id, .. }) if room_id.starts_with('R')));
    let EventKind::Message(MessageContent::Sticker(s)) = e.kind else { panic!() };
    assert_eq!(s.sticker_resource_type, Some(StickerResourceType::Message));
    assert_eq!(s.keywords.unwrap().len(), 4);
    assert_eq!(s.text.as_deref(), Some("ありがとう！"));
}

#[test]
fn webhook_standby_redelivery_and_edited_messages() {
    let e = one("message-standby");
    assert_eq!(e.mode, Some(Mode::Standby));
    assert!(e.reply_token.is_none());
    assert!(one("message-redelivered").is_redelivery());
    let e = one("message-edited");
    assert_eq!(e.type_str(), "messageEdited");
    assert!(
        matches!(&e.kind, EventKind::MessageEdited(m) if m.text() == Some("注文番号は12346です（訂正）"))
    );
}

#[test]
fn webhook_friendship_and_chat_events() {
    assert!(matches!(one("follow").kind, EventKind::Follow(f) if f.is_unblocked == Some(false)));
    assert!(
        matches!(one("follow-unblocked").kind, EventKind::Follow(f) if f.is_unblocked == Some(true))
    );
    let e = one("unfollow");
    assert!(matches!(e.kind, EventKind::Unfollow) && e.reply_token.is_none());
    assert!(matches!(one("join").kind, EventKind::Join));
    assert!(matches!(one("leave").kind, EventKind::Leave));
    let EventKind::MemberJoined(m) = one("member-joined").kind else { panic!() };
    assert_eq!(m.members.len(), 2);
    assert!(m.members.iter().all(|s| s.line_user_id().is_some()));
    let EventKind::MemberLeft(m) = one("member-left").kind else { panic!() };
    assert_eq!(m.members[0].user_id(), Some("U0f1e2d3c4b5a69788796a5b4c3d2e1f0"));
    let EventKind::Unsend(u) = one("unsend").kind else { panic!() };
    assert_eq!(u.message_id, "325708");
}

#[test]
fn webhook_postback_video_beacon_membership_delivery() {
    let EventKind::Postback(p) = one("postback-datetime").kind else { panic!() };
    assert_eq!(p.data, "action=reserve&item=42");
    assert_eq!(p.params.unwrap().datetime.as_deref(), Some("2026-10-01T10:30"));
    let EventKind::Postback(p) = one("postback-richmenu").kind else { panic!() };
    let params = p.params.unwrap();
    assert_eq!(
        (params.new_rich_menu_alias_id.as_deref(), params.status.as_deref()),
        (Some("orders"), Some("SUCCESS"))
    );
    assert!(matches!(one("postback-plain").kind, EventKind::Postback(p) if p.params.is_none()));
    let EventKind::VideoPlayComplete(v) = one("video-play-complete").kind else { panic!() };
    assert_eq!(v.tracking_id, "spring-sale-movie");
    let EventKind::Beacon(b) = one("beacon").kind else { panic!() };
    assert_eq!((b.beacon_type, b.dm.as_deref()), (BeaconType::Enter, Some("1234567890abcdef")));
    let EventKind::Membership(m) = one("membership").kind else { panic!() };
    assert_eq!((m.membership_type, m.membership_id), (MembershipType::Joined, 3189));
    let EventKind::Delivery(d) = one("delivery").kind else { panic!() };
    assert_eq!(d.data.len(), 64);
}

#[test]
fn webhook_account_link_ok_and_failed_without_source() {
    let e = one("account-link-ok");
    let EventKind::AccountLink(l) = &e.kind else { panic!() };
    assert_eq!(
        (&l.result, l.nonce.as_str()),
        (&LinkResult::Ok, "xFgRhGvCmK2nT7qLpZ0wVb3sYdJ5eA1u")
    );
    assert!(e.user_id().is_some() && e.reply_token.is_some());
    let e = one("account-link-failed");
    assert!(matches!(&e.kind, EventKind::AccountLink(l) if l.result == LinkResult::Failed));
    assert!(e.source.is_none() && e.reply_token.is_none() && e.user_id().is_none());
}

#[test]
fn webhook_module_channel_and_things_events() {
    let EventKind::Module(ModuleContent::Attached { bot_id, scopes }) = one("module-attached").kind
    else {
        panic!()
    };
    assert_eq!((bot_id.len(), scopes.len()), (33, 2));
    let EventKind::Module(ModuleContent::Detached { reason, .. }) = one("module-detached").kind
    else {
        panic!()
    };
    assert_eq!(reason, DetachReason::BotDeleted);
    assert!(
        matches!(one("activated").kind, EventKind::Activated(c) if c.expire_at == 1_760_003_600_000)
    );
    assert!(matches!(one("deactivated").kind, EventKind::Deactivated));
    assert!(matches!(one("bot-suspended").kind, EventKind::BotSuspended));
    assert!(matches!(one("bot-resumed").kind, EventKind::BotResumed));
    let EventKind::Things(t) = one("things-scenario-result").kind else { panic!() };
    assert_eq!(t.things_type, ThingsType::ScenarioResult);
    let r = t.result.unwrap();
    assert_eq!((r.revision, r.action_results.unwrap().len()), (Some(2), 2));
}

fn event(v: Value) -> Event {
    let payload = parse(json!({ "events": [v] }).to_string().as_bytes()).unwrap();
    payload.events.into_iter().next().unwrap()
}

#[test]
fn webhook_unknown_event_type_keeps_common_fields_and_raw_json() {
    let raw = json!({"type":"couponUsed","mode":"active","timestamp":1760000000000i64,
        "source":{"type":"user","userId":"U4af4980629a1b2c3d4e5f60718293a4b"},
        "webhookEventId":"01JABCDEF","deliveryContext":{"isRedelivery":true},"replyToken":"rt",
        "coupon":{"id":"c-1","message":5}});
    let e = event(raw.clone());
    assert_eq!(e.kind, EventKind::Unknown("couponUsed".into()));
    assert_eq!(e.type_str(), "couponUsed");
    assert_eq!(e.webhook_event_id.as_ref().unwrap().as_str(), "01JABCDEF");
    assert_eq!(
        (e.timestamp, e.is_redelivery(), e.reply_token.as_deref()),
        (Some(1_760_000_000_000), true, Some("rt"))
    );
    assert_eq!(e.user_id(), Some("U4af4980629a1b2c3d4e5f60718293a4b"));
    assert_eq!(e.to_value(), raw);
    // Serialising an unknown event gives back exactly what was received.
    assert_eq!(serde_json::to_value(&e).unwrap(), raw);
    // A field of an unknown type that clashes with a known field name does not make it malformed.
    let e = event(
        json!({"type":"newThing","message":"a string, not an object","webhookEventId":"01X"}),
    );
    assert_eq!(e.kind, EventKind::Unknown("newThing".into()));
    assert_eq!(e.webhook_event_id.unwrap().as_str(), "01X");
}

#[test]
fn webhook_unknown_message_and_source_types_are_kept_with_their_json() {
    let e = event(json!({"type":"message","timestamp":1,"replyToken":"r",
        "source":{"type":"openChat","openChatId":"O123","userId":"U1"},
        "message":{"id":"m1","type":"hologram","frames":[1,2,3]}}));
    let EventKind::Message(MessageContent::Unknown(m)) = &e.kind else { panic!("{:?}", e.kind) };
    assert_eq!((m.id.as_deref(), m.message_type.as_str()), (Some("m1"), "hologram"));
    assert_eq!(m.raw["frames"], json!([1, 2, 3]));
    let Some(Source::Unknown { source_type, raw }) = &e.source else { panic!("{:?}", e.source) };
    assert_eq!((source_type.as_str(), &raw["openChatId"]), ("openChat", &json!("O123")));
    assert_eq!(e.user_id(), Some("U1"));
    let back = serde_json::to_value(&e).unwrap();
    assert_eq!(back["message"], json!({"id":"m1","type":"hologram","frames":[1,2,3]}));
    assert_eq!(back["source"]["openChatId"], "O123");
    // Unknown member sources inside memberJoined too.
    let e =
        event(json!({"type":"memberJoined","joined":{"members":[{"type":"bot","botId":"B1"}]}}));
    let EventKind::MemberJoined(m) = e.kind else { panic!() };
    assert!(matches!(&m.members[0], Source::Unknown { raw, .. } if raw["botId"] == "B1"));
}

#[test]
fn webhook_unknown_enum_values_are_kept_not_rejected() {
    let e = event(
        json!({"type":"accountLink","mode":"shadow","link":{"result":"pending","nonce":"n"}}),
    );
    assert_eq!(e.mode, Some(Mode::Unknown("shadow".into())));
    assert!(
        matches!(&e.kind, EventKind::AccountLink(l) if l.result == LinkResult::Unknown("pending".into()))
    );
    let e = event(
        json!({"type":"message","message":{"id":"1","type":"image","contentProvider":{"type":"cdn"}}}),
    );
    let EventKind::Message(MessageContent::Image(i)) = e.kind else { panic!() };
    assert_eq!(i.content_provider.unwrap().provider_type.as_str(), "cdn");
    let e = event(
        json!({"type":"message","message":{"id":"1","type":"sticker","packageId":"1","stickerId":"2","stickerResourceType":"HOLOGRAM"}}),
    );
    assert!(matches!(e.kind, EventKind::Message(MessageContent::Sticker(s))
        if s.sticker_resource_type == Some(StickerResourceType::Unknown("HOLOGRAM".into()))));
    let e = event(json!({"type":"beacon","beacon":{"hwid":"h","type":"leave"}}));
    assert!(matches!(e.kind, EventKind::Beacon(b) if b.beacon_type.as_str() == "leave"));
    let e = event(json!({"type":"membership","membership":{"type":"paused","membershipId":1}}));
    assert!(
        matches!(e.kind, EventKind::Membership(m) if m.membership_type.to_string() == "paused")
    );
    let e = event(json!({"type":"module","module":{"type":"renamed","botId":"b","newName":"x"}}));
    assert!(
        matches!(e.kind, EventKind::Module(ModuleContent::Unknown { module_type, raw }) if module_type == "renamed" && raw["newName"] == "x")
    );
    let e = event(
        json!({"type":"message","message":{"id":"1","type":"text","text":"hi","mention":{"mentionees":[{"type":"role","index":0,"length":2}]}}}),
    );
    assert!(matches!(e.kind, EventKind::Message(MessageContent::Text(t))
        if t.mention.as_ref().unwrap().mentionees[0].mentionee_type == MentioneeType::Unknown("role".into())));
    let e =
        event(json!({"type":"module","module":{"type":"detached","botId":"b","reason":"moved"}}));
    assert!(
        matches!(e.kind, EventKind::Module(ModuleContent::Detached { reason, .. }) if reason.as_str() == "moved")
    );
}

#[test]
fn webhook_unknown_fields_are_ignored_by_the_model_but_kept_in_raw_json() {
    let e = event(
        json!({"type":"follow","follow":{"isUnblocked":false,"via":"qr"},"newTopLevel":{"a":1}}),
    );
    assert!(matches!(e.kind, EventKind::Follow(_)));
    assert_eq!(e.to_value()["newTopLevel"], json!({"a":1}));
    assert_eq!(e.to_value()["follow"]["via"], "qr");
}

#[test]
fn webhook_a_malformed_event_is_reported_alone_and_the_rest_parse() {
    let body = json!({"destination":"U0","events":[
        {"type":"follow","webhookEventId":"01A","timestamp":1},
        {"type":"message","webhookEventId":"01B","timestamp":"yesterday","replyToken":"r",
         "source":{"type":"user","userId":"U9"},"message":{"id":"1","type":"text","text":"x"}},
        {"type":"message","webhookEventId":"01C","message":{"id":"2","type":"text"}},
        {"type":"postback","webhookEventId":"01D"},
        42,
        {"webhookEventId":"01E"},
        {"type":"unfollow","webhookEventId":"01F","deliveryContext":{"isRedelivery":true}}
    ]});
    let payload = parse(body.to_string().as_bytes()).unwrap();
    assert_eq!(payload.events.len(), 7);
    assert!(matches!(payload.events[0].kind, EventKind::Follow(_)));
    assert!(matches!(payload.events[6].kind, EventKind::Unfollow));
    assert!(payload.events[6].is_redelivery());
    assert_eq!(payload.malformed().count(), 5);

    // Bad timestamp: the other common fields are still read.
    let e = &payload.events[1];
    assert!(
        matches!(e.error(), Some(EventError::Invalid { event_type, .. }) if event_type == "message")
    );
    let chain = crate::report::chain_text(e.error().unwrap());
    assert!(chain.contains("timestamp") || chain.contains("invalid type"), "{chain}");
    assert_eq!(e.type_str(), "message");
    assert_eq!(
        (e.webhook_event_id.as_ref().unwrap().as_str(), e.reply_token.as_deref()),
        ("01B", Some("r"))
    );
    assert_eq!((e.timestamp, e.user_id()), (None, Some("U9")));
    // Missing required fields say which.
    assert!(matches!(
        payload.events[2].error(),
        Some(EventError::MissingField { field: "message.text", .. })
    ));
    assert!(matches!(
        payload.events[3].error(),
        Some(EventError::MissingField { field: "postback", .. })
    ));
    assert!(matches!(payload.events[4].error(), Some(EventError::NotAnObject)));
    assert!(matches!(payload.events[5].error(), Some(EventError::MissingType)));
    assert_eq!(payload.events[5].webhook_event_id.as_ref().unwrap().as_str(), "01E");
    // Malformed events serialise as what was received.
    assert_eq!(serde_json::to_value(&payload.events[4]).unwrap(), json!(42));
}

#[test]
fn webhook_parse_rejects_only_bodies_that_are_not_payloads() {
    assert!(matches!(parse(b"not json"), Err(BodyError::Json(_))));
    assert!(matches!(parse(br#"{"destination":"U0"}"#), Err(BodyError::Json(_))));
    assert!(matches!(parse(br#"{"events":{}}"#), Err(BodyError::Json(_))));
    assert!(matches!(parse(br#"[]"#), Err(BodyError::Json(_))));
    assert!(matches!(parse(b"{\"events\":[\"\xff\"]}"), Err(BodyError::NotUtf8(_))));
    // Lenient where LINE's own SDK fixtures are: no destination, extra top-level fields.
    let p = parse(br#"{"events":[],"extra":true}"#).unwrap();
    assert!(p.destination.is_none() && p.events.is_empty());
    let e = parse_event("not json");
    assert!(e.is_err());
}

#[test]
fn webhook_invalid_webhook_event_ids_are_dropped_not_fatal() {
    let e = event(json!({"type":"unfollow","webhookEventId":""}));
    assert!(matches!(e.kind, EventKind::Unfollow) && e.webhook_event_id.is_none());
    assert_eq!(e.to_value()["webhookEventId"], "");
}

#[test]
fn webhook_verify_is_byte_exact_whatever_the_json_formatting() {
    // LINE escapes non-BMP characters as surrogate pairs; re-serialising would break the MAC.
    let secret = ChannelSecret::new("a1b2c3d4e5f60718293a4b5c6d7e8f90");
    let body = "{\n  \"destination\" : \"U0\",\n\t\"events\":[ {\"type\":\"message\",\"message\":{\"id\":\"1\",\"type\":\"text\",\"text\":\"\\uD83E\\uDD28 hi\"}} ]\n}\n";
    let sig = sign(&secret, body.as_bytes());
    let payload =
        verify_and_parse(&ChannelSecrets::new(secret.clone()), Some(&sig), body.as_bytes())
            .unwrap();
    let EventKind::Message(m) = &payload.events[0].kind else { panic!() };
    assert_eq!(m.text(), Some("\u{1F928} hi"));
    let reserialised = serde_json::to_vec(&serde_json::from_str::<Value>(body).unwrap()).unwrap();
    assert!(matches!(
        verify(&secret, Some(&sig), &reserialised),
        Err(WebhookError::SignatureMismatch)
    ));
    assert!(matches!(
        verify_and_parse(&ChannelSecrets::new(secret.clone()), Some(&sign(&secret, b"[]")), b"[]"),
        Err(WebhookError::Parse(_))
    ));
}
