//! The conformance harness over the client's whole surface, and the harness's own checks
//! (each kind of violation is caught).

use std::time::Duration;

use enishi::line::message::{Action, Message};
use enishi::line::{
    Bounds, BroadcastRequest, LineClient, MulticastRequest, NarrowcastRecipient, NarrowcastRequest,
    PushRequest, ReplyRequest, RichMenu, RichMenuAlias, RichMenuSize, SendKind,
};
use enishi::testkit::{self as fake, FakeLine};
use enishi::{AggregationUnit, LineUserId, RichMenuAliasId};
use futures_util::StreamExt;
use serde_json::json;

use super::conformance::{Req, assert_conforms, operations, spec};

fn users(n: u64) -> Vec<LineUserId> {
    (1..=n).map(|i| fake::user_id(i).parse().unwrap()).collect()
}

/// Every endpoint that existed before the 2025–26 additions, recorded and checked (the new
/// ones are checked by their own tests).
#[tokio::test]
async fn every_request_of_the_established_surface_conforms() {
    let people = users(3);
    let line = FakeLine::builder()
        .friends(people.iter().map(LineUserId::as_str))
        .audience_ready_after(Duration::ZERO)
        .narrowcast_duration(Duration::ZERO)
        .record_requests(true)
        .start()
        .await
        .unwrap();
    let c = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .request_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let msg = || vec![Message::text("こんにちは")];
    let me = &people[0];
    c.bot_info().await.unwrap();
    c.profile(me).await.unwrap();
    let _: Vec<_> = c.follower_ids(Some(2)).collect().await;
    c.issue_link_token(me).await.unwrap();
    c.show_loading(me, 10).await.unwrap();
    c.mark_as_read("read-token").await.unwrap();
    c.quota().await.unwrap();
    c.quota_consumption().await.unwrap();
    for kind in [
        SendKind::Reply,
        SendKind::Push,
        SendKind::Multicast,
        SendKind::Narrowcast,
        SendKind::Broadcast,
    ] {
        c.validate_messages(kind, &msg()).await.unwrap();
    }
    c.push(PushRequest::new(me.clone(), msg())).await.unwrap();
    let token = line.issue_reply_token(me.as_str()).unwrap();
    c.reply(ReplyRequest::new(token, msg())).await.unwrap();
    c.multicast(MulticastRequest::new(people.clone(), msg())).await.unwrap();
    let sent = c.broadcast(BroadcastRequest::new(msg())).await.unwrap();
    let audience = c.create_audience("conformance", &people[..1]).await.unwrap();
    c.add_to_audience(audience.audience_group_id, &people[1..]).await.unwrap();
    c.audience_group(audience.audience_group_id).await.unwrap();
    let narrow = c
        .narrowcast(
            NarrowcastRequest::new(msg())
                .recipient(NarrowcastRecipient::audience(audience.audience_group_id)),
        )
        .await
        .unwrap();
    c.narrowcast_progress(narrow.request_id.as_ref().unwrap()).await.unwrap();
    c.message_statistics(sent.request_id.as_ref().unwrap()).await.unwrap();
    let today = chrono::Utc::now().date_naive();
    let unit = AggregationUnit::new("conformance").unwrap();
    c.aggregation_unit_statistics(&unit, today - chrono::Days::new(3), today).await.unwrap();
    c.aggregation_unit_usage().await.unwrap();
    c.aggregation_units().await.unwrap();
    let menu = RichMenu::new("m", "メニュー", RichMenuSize::HALF)
        .area(Bounds::new(0, 0, 2500, 843), Action::uri("開く", "https://shop.example/"));
    c.validate_rich_menu(&menu).await.unwrap();
    let id = c.create_rich_menu(&menu).await.unwrap();
    c.upload_rich_menu_image(&id, super::png_header(2500, 843)).await.unwrap();
    c.rich_menu(&id).await.unwrap();
    c.rich_menus().await.unwrap();
    c.set_default_rich_menu(&id).await.unwrap();
    c.default_rich_menu().await.unwrap();
    c.cancel_default_rich_menu().await.unwrap();
    c.link_rich_menu(me, &id).await.unwrap();
    c.user_rich_menu(me).await.unwrap();
    c.unlink_rich_menu(me).await.unwrap();
    c.bulk_link_rich_menu(&people, &id).await.unwrap();
    c.bulk_unlink_rich_menu(&people).await.unwrap();
    let alias = RichMenuAliasId::new("conformance").unwrap();
    c.create_rich_menu_alias(&RichMenuAlias::new(alias.clone(), id.clone())).await.unwrap();
    c.update_rich_menu_alias(&alias, &id).await.unwrap();
    c.rich_menu_alias(&alias).await.unwrap();
    c.rich_menu_aliases().await.unwrap();
    c.delete_rich_menu_alias(&alias).await.unwrap();
    c.delete_rich_menu(&id).await.unwrap();
    c.delete_audience(audience.audience_group_id).await.unwrap();

    let covered = assert_conforms(&line);
    assert!(covered.len() >= 40, "only {} operations covered: {covered:?}", covered.len());
    assert!(covered.contains("POST /v2/bot/message/push"), "{covered:?}");
    assert!(covered.contains("POST /v2/bot/richmenu/{richMenuId}/content"), "{covered:?}");
}

fn req(method: &str, path: &str, query: &[(&str, &str)], body: Option<serde_json::Value>) -> Req {
    let mut headers = vec![("authorization".to_owned(), "Bearer t".to_owned())];
    if body.is_some() {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    Req {
        method: method.to_owned(),
        data_host: false,
        path: path.to_owned(),
        query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        headers,
        body: body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default(),
    }
}

fn violations(r: &Req) -> String {
    spec().check(r).1.join("; ")
}

#[test]
fn the_harness_reads_every_spec_document() {
    let ops = operations();
    for doc in
        ["channel-access-token.yml", "insight.yml", "manage-audience.yml", "messaging-api.yml"]
    {
        assert!(ops.get(doc).is_some_and(|n| *n > 3), "{doc} missing: {ops:?}");
    }
}

#[test]
fn a_good_request_passes_and_each_kind_of_violation_is_caught() {
    let user = fake::user_id(1);
    let push = |body| req("POST", "/v2/bot/message/push", &[], Some(body));
    let good = push(json!({ "to": user, "messages": [{ "type": "text", "text": "hi" }] }));
    assert_eq!(violations(&good), "");

    let cases = [
        (req("GET", "/v2/bot/nowhere", &[], None), "no operation"),
        (push(json!({ "messages": [{ "type": "text", "text": "hi" }] })), "required property `to`"),
        (
            push(json!({ "to": user, "messages": [{ "type": "txt", "text": "hi" }] })),
            "none of the described types",
        ),
        (push(json!({ "to": user, "messages": [{ "type": "text" }] })), "required property `text`"),
        (
            push(
                json!({ "to": user, "messages": [{ "type": "text", "text": "hi", "colour": 1 }] }),
            ),
            "`colour` is not described",
        ),
        (push(json!({ "to": user, "messages": [] })), "under minItems"),
        (
            push(json!({ "to": 7, "messages": [{ "type": "text", "text": "hi" }] })),
            "not of type string",
        ),
        (req("GET", "/v2/bot/audienceGroup/list", &[], None), "required query parameter `page`"),
        (
            req("GET", "/v2/bot/audienceGroup/list", &[("page", "1"), ("size", "41")], None),
            "over maximum",
        ),
        (
            req("GET", "/v2/bot/audienceGroup/list", &[("page", "1"), ("status", "DONE")], None),
            "is not one of",
        ),
        (
            req("GET", "/v2/bot/audienceGroup/list", &[("page", "1"), ("colour", "x")], None),
            "`colour` is not described",
        ),
        (
            req(
                "PUT",
                "/v2/bot/audienceGroup/1/updateDescription",
                &[],
                Some(json!({ "description": "x".repeat(121) })),
            ),
            "over maxLength",
        ),
        (req("GET", "/v2/bot/membership/abc/users/ids", &[], None), "is not of type integer"),
        (req("GET", "/v2/bot/message/1/content", &[], None), "data host"),
        (req("POST", "/v2/bot/chat/markAsRead", &[], None), "required body is missing"),
    ];
    for (request, expected) in cases {
        let found = violations(&request);
        assert!(
            found.contains(expected),
            "{} {}: expected {expected:?}, got {found:?}",
            request.method,
            request.path
        );
    }
    let mut anonymous = good.clone();
    anonymous.headers.retain(|(k, _)| k != "authorization");
    assert!(violations(&anonymous).contains("Authorization"));
    let mut form = good;
    form.headers = vec![
        ("authorization".into(), "Bearer t".into()),
        ("content-type".into(), "text/plain".into()),
    ];
    assert!(violations(&form).contains("content type"));
    // Form bodies of the token endpoints are checked against their oneOf.
    let mut token = req("POST", "/oauth2/v3/token", &[], None);
    token.headers = vec![("content-type".into(), "application/x-www-form-urlencoded".into())];
    token.body = b"grant_type=client_credentials&client_id=1&client_secret=s".to_vec();
    assert_eq!(violations(&token), "");
    token.body = b"grant_type=password&client_id=1&client_secret=s".to_vec();
    assert!(violations(&token).contains("matches none of oneOf"), "{}", violations(&token));
}
