//! Each message type serialises to LINE's JSON (hand-written from LINE's reference examples),
//! deserialises back to the same value, and is valid.

use std::time::Duration;

use enishi::LineUserId;
use enishi::line::message::{
    Action, ButtonsTemplate, CarouselColumn, CarouselTemplate, DatetimeMode, Emoji, FlexBox,
    FlexBubble, FlexButton, FlexButtonStyle, FlexContainer, FlexImage, FlexSeparator, FlexText,
    FlexWeight, ImageAspectRatio, ImageCarouselColumn, ImageSize, ImagemapAction, ImagemapArea,
    ImagemapMessage, ImagemapVideo, InputOption, Message, PostbackAction, QuickReply,
    QuickReplyItem, Sender, TemplateMessage, TextMessage, TextMessageV2, UriAction, VideoMessage,
};
use serde_json::{Value, json};

use super::assert_valid;

#[track_caller]
fn check(message: Message, expected: Value) {
    let actual = serde_json::to_value(&message).unwrap();
    assert_eq!(actual, expected, "serialised JSON differs");
    let back: Message = serde_json::from_value(expected).unwrap();
    assert_eq!(back, message, "deserialised message differs");
    let text = serde_json::to_string(&message).unwrap();
    assert_eq!(serde_json::from_str::<Message>(&text).unwrap(), message, "string round trip");
    assert_valid(message);
}

fn user() -> LineUserId {
    LineUserId::new(format!("U{}", "4af4980629".repeat(3) + "ab")).unwrap()
}

#[test]
fn message_text_with_emojis() {
    let m = TextMessage::new("$ LINE emoji $")
        .with_emoji(Emoji::new(0, "5ac1bfd5040ab15980c9b435", "001"))
        .with_emoji(Emoji::new(13, "5ac1bfd5040ab15980c9b435", "002"));
    check(
        m.into(),
        json!({
            "type": "text",
            "text": "$ LINE emoji $",
            "emojis": [
                {"index": 0, "productId": "5ac1bfd5040ab15980c9b435", "emojiId": "001"},
                {"index": 13, "productId": "5ac1bfd5040ab15980c9b435", "emojiId": "002"}
            ]
        }),
    );
}

#[test]
fn message_text_plain_and_quoted() {
    check(Message::text("Hello, world"), json!({"type": "text", "text": "Hello, world"}));
    check(
        TextMessage::new("Yes, you can.").with_quote_token("q3Plxr4AgKd...").into(),
        json!({"type": "text", "text": "Yes, you can.", "quoteToken": "q3Plxr4AgKd..."}),
    );
}

#[test]
fn message_text_v2_with_substitutions() {
    let m = TextMessageV2::new("Welcome, {user1}! {laugh}\n{everyone} There is a newcomer!")
        .with_mention("user1", user())
        .with_emoji("laugh", "5a8555cfe6256cc92ea23c2a", "002")
        .with_mention_all("everyone");
    check(
        m.into(),
        json!({
            "type": "textV2",
            "text": "Welcome, {user1}! {laugh}\n{everyone} There is a newcomer!",
            "substitution": {
                "user1": {"type": "mention", "mentionee": {"type": "user", "userId": user().as_str()}},
                "laugh": {"type": "emoji", "productId": "5a8555cfe6256cc92ea23c2a", "emojiId": "002"},
                "everyone": {"type": "mention", "mentionee": {"type": "all"}}
            }
        }),
    );
}

#[test]
fn message_sticker_image_video_audio_location_coupon() {
    check(
        Message::sticker("446", "1988"),
        json!({"type": "sticker", "packageId": "446", "stickerId": "1988"}),
    );
    check(
        Message::image("https://example.com/original.jpg", "https://example.com/preview.jpg"),
        json!({
            "type": "image",
            "originalContentUrl": "https://example.com/original.jpg",
            "previewImageUrl": "https://example.com/preview.jpg"
        }),
    );
    check(
        VideoMessage::new("https://example.com/original.mp4", "https://example.com/preview.jpg")
            .with_tracking_id("track-id")
            .into(),
        json!({
            "type": "video",
            "originalContentUrl": "https://example.com/original.mp4",
            "previewImageUrl": "https://example.com/preview.jpg",
            "trackingId": "track-id"
        }),
    );
    check(
        Message::audio("https://example.com/original.m4a", Duration::from_secs(60)),
        json!({"type": "audio", "originalContentUrl": "https://example.com/original.m4a", "duration": 60000}),
    );
    check(
        Message::location(
            "my location",
            "1-3 Kioicho, Chiyoda-ku, Tokyo, 102-8282, Japan",
            35.67966,
            139.73669,
        ),
        json!({
            "type": "location",
            "title": "my location",
            "address": "1-3 Kioicho, Chiyoda-ku, Tokyo, 102-8282, Japan",
            "latitude": 35.67966,
            "longitude": 139.73669
        }),
    );
    check(
        enishi::line::message::CouponMessage::new("01JYNW8JMQVFBNWF5APF8Z3FKN")
            .with_delivery_tag("campaign_2025")
            .into(),
        json!({"type": "coupon", "couponId": "01JYNW8JMQVFBNWF5APF8Z3FKN", "deliveryTag": "campaign_2025"}),
    );
}

#[test]
fn message_imagemap_with_video_and_actions() {
    let m =
        ImagemapMessage::new("https://example.com/bot/images/rm001", "This is an imagemap", 1040)
            .with_video(
                ImagemapVideo::new(
                    "https://example.com/video.mp4",
                    "https://example.com/video_preview.jpg",
                    ImagemapArea::new(0, 0, 1040, 585),
                )
                .with_external_link("https://example.com/see_more.html", "See More"),
            )
            .with_action(ImagemapAction::uri(
                ImagemapArea::new(0, 586, 520, 454),
                "https://example.com/",
            ))
            .with_action(ImagemapAction::message(ImagemapArea::new(520, 586, 520, 454), "Hello"))
            .with_action(
                ImagemapAction::clipboard(ImagemapArea::new(0, 0, 10, 10), "3B48740B")
                    .with_label("Copy"),
            );
    check(
        m.into(),
        json!({
            "type": "imagemap",
            "baseUrl": "https://example.com/bot/images/rm001",
            "altText": "This is an imagemap",
            "baseSize": {"width": 1040, "height": 1040},
            "video": {
                "originalContentUrl": "https://example.com/video.mp4",
                "previewImageUrl": "https://example.com/video_preview.jpg",
                "area": {"x": 0, "y": 0, "width": 1040, "height": 585},
                "externalLink": {"linkUri": "https://example.com/see_more.html", "label": "See More"}
            },
            "actions": [
                {"type": "uri", "linkUri": "https://example.com/", "area": {"x": 0, "y": 586, "width": 520, "height": 454}},
                {"type": "message", "text": "Hello", "area": {"x": 520, "y": 586, "width": 520, "height": 454}},
                {"type": "clipboard", "clipboardText": "3B48740B", "label": "Copy", "area": {"x": 0, "y": 0, "width": 10, "height": 10}}
            ]
        }),
    );
}

#[test]
fn message_template_buttons() {
    let m = Message::template(
        "This is a buttons template",
        ButtonsTemplate::new("Please select")
            .with_thumbnail_image_url("https://example.com/bot/images/image.jpg")
            .with_image_aspect_ratio(ImageAspectRatio::Rectangle)
            .with_image_size(ImageSize::Cover)
            .with_image_background_color("#FFFFFF")
            .with_title("Menu")
            .with_default_action(Action::uri("View detail", "http://example.com/page/123"))
            .with_action(Action::postback("Buy", "action=buy&itemid=123"))
            .with_action(Action::postback("Add to cart", "action=add&itemid=123"))
            .with_action(Action::uri("View detail", "http://example.com/page/123")),
    );
    check(
        m,
        json!({
            "type": "template",
            "altText": "This is a buttons template",
            "template": {
                "type": "buttons",
                "thumbnailImageUrl": "https://example.com/bot/images/image.jpg",
                "imageAspectRatio": "rectangle",
                "imageSize": "cover",
                "imageBackgroundColor": "#FFFFFF",
                "title": "Menu",
                "text": "Please select",
                "defaultAction": {"type": "uri", "label": "View detail", "uri": "http://example.com/page/123"},
                "actions": [
                    {"type": "postback", "label": "Buy", "data": "action=buy&itemid=123"},
                    {"type": "postback", "label": "Add to cart", "data": "action=add&itemid=123"},
                    {"type": "uri", "label": "View detail", "uri": "http://example.com/page/123"}
                ]
            }
        }),
    );
}

#[test]
fn message_template_buttons_in_three_lines() {
    // The shop-engineer path: a buttons template with a URI action.
    let m: Message = TemplateMessage::buttons(
        "Your order has shipped",
        "Order #1234 is on its way.",
        [Action::uri("Track parcel", "https://shop.example/track/1234")],
    )
    .into();
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        json!({
            "type": "template",
            "altText": "Your order has shipped",
            "template": {
                "type": "buttons",
                "text": "Order #1234 is on its way.",
                "actions": [{"type": "uri", "label": "Track parcel", "uri": "https://shop.example/track/1234"}]
            }
        })
    );
    assert_valid(m);
}

#[test]
fn message_template_confirm() {
    check(
        TemplateMessage::confirm(
            "this is a confirm template",
            "Are you sure?",
            Action::message("Yes", "yes"),
            Action::message("No", "no"),
        )
        .into(),
        json!({
            "type": "template",
            "altText": "this is a confirm template",
            "template": {
                "type": "confirm",
                "text": "Are you sure?",
                "actions": [
                    {"type": "message", "label": "Yes", "text": "yes"},
                    {"type": "message", "label": "No", "text": "no"}
                ]
            }
        }),
    );
}

#[test]
fn message_template_carousel() {
    let column = |n: u32| {
        CarouselColumn::new(
            "description",
            [
                Action::postback("Buy", format!("action=buy&itemid={n}")),
                Action::postback("Add to cart", format!("action=add&itemid={n}")),
                Action::uri("View detail", format!("http://example.com/page/{n}")),
            ],
        )
        .with_thumbnail_image_url("https://example.com/bot/images/item1.jpg")
        .with_image_background_color("#FFFFFF")
        .with_title("this is menu")
        .with_default_action(Action::uri("View detail", format!("http://example.com/page/{n}")))
    };
    let m = Message::template(
        "this is a carousel template",
        CarouselTemplate::new([column(111), column(222)])
            .with_image_aspect_ratio(ImageAspectRatio::Rectangle)
            .with_image_size(ImageSize::Cover),
    );
    let json_column = |n: u32| {
        json!({
            "thumbnailImageUrl": "https://example.com/bot/images/item1.jpg",
            "imageBackgroundColor": "#FFFFFF",
            "title": "this is menu",
            "text": "description",
            "defaultAction": {"type": "uri", "label": "View detail", "uri": format!("http://example.com/page/{n}")},
            "actions": [
                {"type": "postback", "label": "Buy", "data": format!("action=buy&itemid={n}")},
                {"type": "postback", "label": "Add to cart", "data": format!("action=add&itemid={n}")},
                {"type": "uri", "label": "View detail", "uri": format!("http://example.com/page/{n}")}
            ]
        })
    };
    check(
        m,
        json!({
            "type": "template",
            "altText": "this is a carousel template",
            "template": {
                "type": "carousel",
                "columns": [json_column(111), json_column(222)],
                "imageAspectRatio": "rectangle",
                "imageSize": "cover"
            }
        }),
    );
}

#[test]
fn message_template_image_carousel() {
    check(
        TemplateMessage::image_carousel(
            "this is a image carousel template",
            [
                ImageCarouselColumn::new(
                    "https://example.com/bot/images/item1.jpg",
                    Action::postback("Buy", "action=buy&itemid=111"),
                ),
                ImageCarouselColumn::new(
                    "https://example.com/bot/images/item2.jpg",
                    Action::message("Yes", "yes"),
                ),
                ImageCarouselColumn::new(
                    "https://example.com/bot/images/item3.jpg",
                    Action::uri("View detail", "http://example.com/page/222"),
                ),
            ],
        )
        .into(),
        json!({
            "type": "template",
            "altText": "this is a image carousel template",
            "template": {
                "type": "image_carousel",
                "columns": [
                    {"imageUrl": "https://example.com/bot/images/item1.jpg", "action": {"type": "postback", "label": "Buy", "data": "action=buy&itemid=111"}},
                    {"imageUrl": "https://example.com/bot/images/item2.jpg", "action": {"type": "message", "label": "Yes", "text": "yes"}},
                    {"imageUrl": "https://example.com/bot/images/item3.jpg", "action": {"type": "uri", "label": "View detail", "uri": "http://example.com/page/222"}}
                ]
            }
        }),
    );
}

#[test]
fn message_flex_typed_bubble() {
    let bubble = FlexBubble::new()
        .with_hero(
            FlexImage::new("https://example.com/cafe.jpg")
                .with_size("full")
                .with_aspect_ratio("20:13")
                .with_aspect_mode("cover")
                .with_action(UriAction::new("https://example.com")),
        )
        .with_body(FlexBox::vertical([
            FlexText::new("Brown Cafe").with_weight(FlexWeight::Bold).with_size("xl").into(),
            FlexSeparator::new().into(),
            FlexBox::baseline([FlexText::new("Place").with_color("#aaaaaa").with_flex(1).into()])
                .with_spacing("sm")
                .into(),
        ]))
        .with_footer(
            FlexBox::vertical([FlexButton::new(Action::uri("CALL", "tel:0312345678"))
                .with_style(FlexButtonStyle::Link)
                .with_height("sm")
                .into()])
            .with_spacing("sm"),
        );
    check(
        Message::flex("This is a Flex Message", bubble),
        json!({
            "type": "flex",
            "altText": "This is a Flex Message",
            "contents": {
                "type": "bubble",
                "hero": {
                    "type": "image",
                    "url": "https://example.com/cafe.jpg",
                    "size": "full",
                    "aspectRatio": "20:13",
                    "aspectMode": "cover",
                    "action": {"type": "uri", "uri": "https://example.com"}
                },
                "body": {
                    "type": "box",
                    "layout": "vertical",
                    "contents": [
                        {"type": "text", "text": "Brown Cafe", "weight": "bold", "size": "xl"},
                        {"type": "separator"},
                        {
                            "type": "box",
                            "layout": "baseline",
                            "contents": [{"type": "text", "text": "Place", "color": "#aaaaaa", "flex": 1}],
                            "spacing": "sm"
                        }
                    ]
                },
                "footer": {
                    "type": "box",
                    "layout": "vertical",
                    "contents": [{
                        "type": "button",
                        "action": {"type": "uri", "label": "CALL", "uri": "tel:0312345678"},
                        "style": "link",
                        "height": "sm"
                    }],
                    "spacing": "sm"
                }
            }
        }),
    );
}

#[test]
fn message_flex_typed_carousel() {
    let bubble =
        |t: &str| FlexBubble::new().with_body(FlexBox::vertical([FlexText::new(t).into()]));
    check(
        Message::flex("carousel", FlexContainer::carousel([bubble("First"), bubble("Second")])),
        json!({
            "type": "flex",
            "altText": "carousel",
            "contents": {
                "type": "carousel",
                "contents": [
                    {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "First"}]}},
                    {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "Second"}]}}
                ]
            }
        }),
    );
}

#[test]
fn message_flex_raw_json_round_trips_unchanged() {
    // Properties the typed model does not cover (maxWidth, offsetBottom, spans' unknown keys)
    // keep the container raw, so nothing is lost.
    let contents = json!({
        "type": "carousel",
        "contents": [{
            "type": "bubble",
            "size": "micro",
            "body": {
                "type": "box",
                "layout": "vertical",
                "maxWidth": "200px",
                "offsetBottom": "4px",
                "contents": [{"type": "text", "text": "Raw"}]
            }
        }]
    });
    let m = Message::flex("raw", FlexContainer::raw(contents.clone()));
    let expected = json!({"type": "flex", "altText": "raw", "contents": contents});
    check(m, expected.clone());
    let back: Message = serde_json::from_value(expected).unwrap();
    let Message::Flex(flex) = back else { panic!("not flex") };
    assert!(matches!(flex.contents, FlexContainer::Raw(_)), "{:?}", flex.contents);
}

#[test]
fn message_flex_json_matching_typed_model_becomes_typed() {
    let json = json!({"type": "flex", "altText": "t", "contents": {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": []}}});
    let Message::Flex(flex) = serde_json::from_value(json).unwrap() else { panic!("not flex") };
    assert!(matches!(flex.contents, FlexContainer::Bubble(_)));
}

#[test]
fn message_actions_every_type() {
    let actions: Vec<(Action, Value)> = vec![
        (
            UriAction::new("https://example.com/menu")
                .with_label("Menu")
                .with_desktop_uri("https://example.com/menu_pc")
                .into(),
            json!({"type": "uri", "label": "Menu", "uri": "https://example.com/menu", "altUri": {"desktop": "https://example.com/menu_pc"}}),
        ),
        (
            PostbackAction::new("action=buy&itemid=111")
                .with_label("Buy")
                .with_display_text("Buy")
                .with_input_option(InputOption::OpenKeyboard)
                .with_fill_in_text("---\nName: \n---")
                .into(),
            json!({"type": "postback", "label": "Buy", "data": "action=buy&itemid=111", "displayText": "Buy", "inputOption": "openKeyboard", "fillInText": "---\nName: \n---"}),
        ),
        (Action::message("Yes", "yes"), json!({"type": "message", "label": "Yes", "text": "yes"})),
        (
            enishi::line::message::DatetimePickerAction::new(
                "storeId=12345",
                DatetimeMode::Datetime,
            )
            .with_label("Select date")
            .with_initial("2017-12-25t00:00")
            .with_max("2018-01-24t23:59")
            .with_min("2017-12-25t00:00")
            .into(),
            json!({"type": "datetimepicker", "label": "Select date", "data": "storeId=12345", "mode": "datetime", "initial": "2017-12-25t00:00", "max": "2018-01-24t23:59", "min": "2017-12-25t00:00"}),
        ),
        (Action::camera("Camera"), json!({"type": "camera", "label": "Camera"})),
        (Action::camera_roll("Camera roll"), json!({"type": "cameraRoll", "label": "Camera roll"})),
        (Action::location("Location"), json!({"type": "location", "label": "Location"})),
        (
            Action::clipboard("Copy", "3B48740B"),
            json!({"type": "clipboard", "label": "Copy", "clipboardText": "3B48740B"}),
        ),
    ];
    let items: Vec<QuickReplyItem> = actions.iter().map(|(a, _)| a.clone().into()).collect();
    let expected_items: Vec<Value> =
        actions.iter().map(|(_, j)| json!({"type": "action", "action": j})).collect();
    for (action, expected) in &actions {
        assert_eq!(&serde_json::to_value(action).unwrap(), expected);
        assert_eq!(&serde_json::from_value::<Action>(expected.clone()).unwrap(), action);
    }
    check(
        Message::text("Pick one").with_quick_reply(QuickReply::new(items)),
        json!({"type": "text", "text": "Pick one", "quickReply": {"items": expected_items}}),
    );
    // Rich menu switch: only valid in rich menus, but its JSON shape is LINE's.
    let switch = Action::rich_menu_switch("Switch", "richmenu-alias-b", "richmenu-changed-to-b");
    let json = json!({"type": "richmenuswitch", "label": "Switch", "richMenuAliasId": "richmenu-alias-b", "data": "richmenu-changed-to-b"});
    assert_eq!(serde_json::to_value(&switch).unwrap(), json);
    assert_eq!(serde_json::from_value::<Action>(json).unwrap(), switch);
}

#[test]
fn message_quick_reply_with_icons_and_sender() {
    let m = Message::text("Select your favorite food category or send me your location!")
        .with_quick_reply(QuickReply::new([
            QuickReplyItem::new(Action::message("Sushi", "Sushi"))
                .with_image_url("https://example.com/sushi.png"),
            QuickReplyItem::new(Action::location("Send location")),
        ]))
        .with_sender(Sender::named("Cony").with_icon_url("https://line.me/conyprof"));
    check(
        m,
        json!({
            "type": "text",
            "text": "Select your favorite food category or send me your location!",
            "quickReply": {"items": [
                {"type": "action", "imageUrl": "https://example.com/sushi.png", "action": {"type": "message", "label": "Sushi", "text": "Sushi"}},
                {"type": "action", "action": {"type": "location", "label": "Send location"}}
            ]},
            "sender": {"name": "Cony", "iconUrl": "https://line.me/conyprof"}
        }),
    );
}

#[test]
fn message_quick_reply_and_sender_on_every_variant() {
    let qr = QuickReply::new([Action::message("Yes", "yes")]);
    let sender = Sender::named("Shop staff");
    let all = [
        Message::text("t"),
        TextMessageV2::new("t").into(),
        Message::sticker("1", "2"),
        Message::image("https://e.com/a.jpg", "https://e.com/b.jpg"),
        Message::video("https://e.com/a.mp4", "https://e.com/b.jpg"),
        Message::audio("https://e.com/a.m4a", Duration::from_millis(1)),
        Message::location("t", "a", 0.0, 0.0),
        ImagemapMessage::new("https://e.com/i", "alt", 100).into(),
        TemplateMessage::confirm("a", "t", Action::message("Y", "y"), Action::message("N", "n"))
            .into(),
        Message::flex("a", FlexBubble::new()),
        Message::coupon("c"),
    ];
    for m in all {
        let m = m.with_quick_reply(qr.clone()).with_sender(sender.clone());
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["type"], m.type_name());
        assert_eq!(json["quickReply"]["items"][0]["action"]["label"], "Yes", "{json}");
        assert_eq!(json["sender"]["name"], "Shop staff", "{json}");
        assert_eq!(serde_json::from_value::<Message>(json).unwrap(), m);
        assert_valid(m);
    }
}

#[test]
fn message_deserialisation_is_strict_about_required_fields() {
    for bad in [
        json!({"type": "text"}),
        json!({"type": "image", "originalContentUrl": "https://e.com/a.jpg"}),
        json!({"type": "template", "altText": "a", "template": {"type": "confirm", "text": "t"}}),
        json!({"type": "nope", "text": "t"}),
        json!({"type": "text", "text": "t", "quickReply": {"items": [{"type": "action"}]}}),
    ] {
        assert!(serde_json::from_value::<Message>(bad.clone()).is_err(), "{bad}");
    }
}
