//! Each channel against its provider: e-mail against a real SMTP server, SMS against the
//! Twilio-shaped fake, PNP against the fake LINE server.

use std::sync::Arc;

use enishi::channel::{
    Address, Channel, ChannelError, ChannelKind, ChannelSend, EmailAddress, PhoneNumber,
    PnpChannel, PnpDeliveries, SmsChannel, SmsProvider, TwilioSms, message_id, pnp_delivery_tag,
};
use enishi::line::message::Message;
use enishi::line::webhook::parse_event;
use enishi::line::{LineError, PnpPushRequest, hash_phone_number};
use enishi::testkit::{Endpoint, FAKE_SMS_ACCOUNT_SID};
use enishi::{BatchId, CampaignId};

use super::harness::{customer, rig};

fn send(batch: &str, address: Address, messages: Vec<Message>) -> ChannelSend {
    ChannelSend::new(
        BatchId::new(batch).unwrap(),
        CampaignId::new("spring").unwrap(),
        customer(1),
        address,
        messages,
    )
}

fn email_send(batch: &str, to: &str) -> ChannelSend {
    send(
        batch,
        Address::Email(EmailAddress::new(to).unwrap()),
        vec![
            Message::text("春のセール <特別>"),
            Message::text(
                "本日から春のセールです。\n\n詳しくは https://shop.example/sale をご覧ください。",
            ),
        ],
    )
}

#[tokio::test]
async fn email_goes_over_real_smtp_with_text_html_unsubscribe_and_a_stable_message_id() {
    let rig = rig().await;
    let email = rig.email();
    let s = email_send("spring/a/C00001/1", "taro@mail.example")
        .with_unsubscribe_url("https://shop.example/unsubscribe/tok");
    let receipt = email.send(&s).await.unwrap();
    // A resend of the same batch carries the same Message-ID.
    email.send(&s).await.unwrap();
    let got = rig.smtp.messages();
    assert_eq!(got.len(), 2);
    let m = &got[0];
    assert_eq!(m.rcpt_tos, vec!["taro@mail.example".to_owned()]);
    assert_eq!(m.subject, "春のセール <特別>");
    assert!(m.from.contains("news@shop.example"), "{}", m.from);
    assert_eq!(m.list_unsubscribe, "<https://shop.example/unsubscribe/tok>");
    assert_eq!(m.list_unsubscribe_post, "List-Unsubscribe=One-Click");
    assert!(m.text.contains("本日から春のセールです。"), "{}", m.text);
    assert!(m.text.contains("配信停止: https://shop.example/unsubscribe/tok"), "{}", m.text);
    assert!(m.html.contains("<a href=\"https://shop.example/sale\">"), "{}", m.html);
    assert!(m.html.contains("&lt;特別&gt;"), "subject escaped in HTML: {}", m.html);
    assert!(m.html.contains("配信停止はこちら"), "{}", m.html);
    let id = message_id(&s.batch, "shop.example");
    assert_eq!(m.message_id, id);
    assert_eq!(got[1].message_id, id);
    assert_eq!(receipt.provider_id.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn smtp_refusals_are_classified() {
    let rig = rig().await;
    let email = rig.email();
    let e = email.send(&email_send("b/1", "bounce1@mail.example")).await.unwrap_err();
    assert!(
        matches!(e, ChannelError::InvalidRecipient { channel: ChannelKind::Email, .. }),
        "{e:?}"
    );
    let e = email.send(&email_send("b/2", "tempfail1@mail.example")).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(rig.smtp.messages().is_empty());
    // An SMTP server that is not there is a transient failure, not a lost message.
    let down = enishi::channel::EmailChannel::builder("127.0.0.1", "news@shop.example")
        .tls(enishi::channel::SmtpTls::None)
        .port(1)
        .build()
        .unwrap();
    assert!(down.send(&email_send("b/3", "a@mail.example")).await.unwrap_err().is_retryable());
    // A sender that is not a mailbox is refused when building.
    assert!(enishi::channel::EmailChannel::builder("127.0.0.1", "not a mailbox").build().is_err());
}

#[tokio::test]
async fn sms_goes_through_the_twilio_shaped_fake() {
    let rig = rig().await;
    let channel = SmsChannel::new(Arc::new(rig.twilio()));
    let phone = PhoneNumber::parse_jp("080-1234-5678").unwrap();
    let s = send("sms/1", Address::Phone(phone), vec![Message::text("ご注文の商品を発送しました")]);
    let receipt = channel.send(&s).await.unwrap();
    let got = rig.sms.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, "+818012345678");
    assert_eq!(got[0].from, "+815012345678");
    assert_eq!(got[0].body, "ご注文の商品を発送しました");
    assert_eq!(receipt.provider_id.as_deref(), Some(got[0].sid.as_str()));
    // A 503 is worth retrying; a 401 (bad credentials) is not.
    rig.sms.fail_next(&[503]);
    let e = channel.send(&s).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    let wrong = TwilioSms::builder(FAKE_SMS_ACCOUNT_SID, "wrong-token", "+815012345678")
        .base_url(rig.sms.base_url())
        .build()
        .unwrap();
    let e =
        wrong.send_sms(&PhoneNumber::e164("+818012345678").unwrap(), "x", "r").await.unwrap_err();
    assert!(matches!(e, ChannelError::Rejected { .. }) && e.to_string().contains("20003"), "{e}");
    assert!(!format!("{wrong:?}").contains("wrong-token"));
    assert_eq!(rig.sms.messages().len(), 1);
    // Configuration mistakes are caught when building.
    assert!(TwilioSms::builder("", "t", "+81").build().is_err());
    assert!(TwilioSms::builder("AC1", "t", "").build().is_err());
}

#[tokio::test]
async fn pnp_sends_the_hashed_number_and_the_delivery_event_marks_it_delivered() {
    let rig = rig().await;
    let channel = PnpChannel::new(rig.client.clone());
    let phone = PhoneNumber::parse_jp("090-1234-5678").unwrap();
    let batch = BatchId::new("order/shipped/C00001/1").unwrap();
    let s = send(
        batch.as_str(),
        Address::Phone(phone.clone()),
        vec![Message::text("ご注文の商品を発送しました")],
    );
    channel.send(&s).await.unwrap();
    let got = rig.line.deliveries();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].endpoint, Endpoint::PnpPush);
    assert_eq!(got[0].to, "3d06a39d40790f11761295e053029378ae28c4b4f6f301693005e079f3d4ca64");
    assert_eq!(got[0].to, phone.hashed());
    assert!(!got[0].to.contains("9012345678"));
    // LINE's `delivery` webhook event, parsed by enishi, marks the batch delivered.
    let deliveries = PnpDeliveries::new();
    assert!(!deliveries.delivered(&batch));
    for event in rig.line.pnp_delivery_events() {
        let event = parse_event(&event.to_string()).unwrap();
        assert!(deliveries.record(&event));
    }
    assert!(deliveries.delivered(&batch));
    assert_eq!(rig.line.pnp_delivery_events()[0]["delivery"]["data"], pnp_delivery_tag(&batch));
}

#[tokio::test]
async fn pnp_requests_are_validated_before_and_by_the_fake() {
    let rig = rig().await;
    let messages = vec![Message::text("x")];
    // Not a hash: refused locally, nothing sent.
    let e = rig
        .client
        .pnp_push(PnpPushRequest::new("+819012345678", messages.clone()))
        .await
        .unwrap_err();
    assert!(matches!(e, LineError::Validation(_)), "{e:?}");
    let hash = hash_phone_number("+819012345678").unwrap();
    let e = rig
        .client
        .pnp_push(PnpPushRequest::new(hash.clone(), messages.clone()).delivery_tag("short"))
        .await
        .unwrap_err();
    assert!(matches!(e, LineError::Validation(_)), "{e:?}");
    assert_eq!(rig.line.delivery_count(), 0);
    // The fake checks the same rules as LINE.
    let http = reqwest::Client::new();
    let url = format!("{}/bot/pnp/push", rig.line.api_base_url());
    let post = |body: serde_json::Value, tag: &str| {
        http.post(&url)
            .bearer_auth(rig.line.channel_access_token())
            .header("X-Line-Delivery-Tag", tag)
            .json(&body)
            .send()
    };
    let bad_to = post(
        serde_json::json!({"to": "+819012345678", "messages": [{"type":"text","text":"x"}]}),
        "0123456789abcdef",
    )
    .await
    .unwrap();
    assert_eq!(bad_to.status(), 400);
    let bad_tag =
        post(serde_json::json!({"to": hash, "messages": [{"type":"text","text":"x"}]}), "short")
            .await
            .unwrap();
    assert_eq!(bad_tag.status(), 400);
    let ok = post(
        serde_json::json!({"to": hash, "messages": [{"type":"text","text":"x"}]}),
        "0123456789abcdef",
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(rig.line.delivery_count(), 1);
}
