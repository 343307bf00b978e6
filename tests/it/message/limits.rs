//! Every documented limit at its boundary: the limit passes, one more fails at the right path.

use enishi::line::Validator;
use enishi::line::message::limits::*;
use enishi::line::message::{
    Action, ActionContext, ButtonsTemplate, CarouselColumn, CarouselTemplate, ConfirmTemplate,
    DatetimeMode, DatetimePickerAction, Emoji, FlexBox, FlexBubble, FlexButton, FlexContainer,
    FlexImage, ImageCarouselColumn, ImagemapAction, ImagemapArea, ImagemapMessage, ImagemapVideo,
    Message, PostbackAction, QuickReply, Sender, TemplateMessage, TextMessage, TextMessageV2,
    UriAction, VideoMessage, validate_messages, validate_messages_at,
};
use serde_json::json;

use super::{assert_single_violation, assert_valid, assert_violation, violations};

fn s(n: usize) -> String {
    "a".repeat(n)
}

/// An HTTPS URL exactly `n` characters long.
fn url_of_len(n: usize) -> String {
    let base = "https://example.com/";
    format!("{base}{}", "a".repeat(n - base.len()))
}

fn img(path: &str) -> String {
    format!("https://example.com/{path}.jpg")
}

fn buttons(t: ButtonsTemplate) -> Message {
    Message::template("alt", t)
}

fn with_n_actions(n: usize) -> Vec<Action> {
    (0..n).map(|i| Action::message(format!("L{i}"), "t")).collect()
}

#[test]
fn message_count_is_one_to_five() {
    assert!(validate_messages(&vec![Message::text("hi"); MESSAGES_MAX]).is_ok());
    assert_single_violation(&vec![Message::text("hi"); MESSAGES_MAX + 1], "messages", "1 to 5");
    assert_single_violation(&[], "messages", "got 0");
}

#[test]
fn message_text_limit_counts_utf16_units() {
    assert_valid(Message::text(s(TEXT_MAX)));
    assert_violation(Message::text(s(TEXT_MAX + 1)), "messages[0].text", "5001");
    // An emoji outside the BMP is two UTF-16 units: 2,500 of them are exactly the limit.
    let emoji = "😀".repeat(TEXT_MAX / 2);
    assert_eq!(emoji.chars().count(), 2_500);
    assert_valid(Message::text(emoji.clone()));
    assert_violation(Message::text(format!("{emoji}a")), "messages[0].text", "got 5001");
    // 5,000 kanji are BMP characters: one unit each.
    assert_valid(Message::text("縁".repeat(TEXT_MAX)));
    assert_violation(Message::text(""), "messages[0].text", "1 to 5000");
}

#[test]
fn message_text_emojis_at_most_twenty() {
    let with = |n: usize| {
        let mut m = TextMessage::new("$".repeat(n));
        for i in 0..n {
            m = m.with_emoji(Emoji::new(u32::try_from(i).unwrap(), "p", "001"));
        }
        Message::from(m)
    };
    assert_valid(with(TEXT_EMOJIS_MAX));
    assert_violation(with(TEXT_EMOJIS_MAX + 1), "messages[0].emojis", "0 to 20");
}

#[test]
fn message_text_emoji_index_is_a_utf16_position_of_a_dollar() {
    // "😀" is two UTF-16 units, so the "$" after it is at index 2.
    let m = |index| Message::from(TextMessage::new("😀$").with_emoji(Emoji::new(index, "p", "1")));
    assert_valid(m(2));
    assert_violation(m(1), "messages[0].emojis[0].index", "'$'");
    assert_violation(m(99), "messages[0].emojis[0].index", "'$'");
}

#[test]
fn message_text_v2_substitution_limits() {
    let many = |n: usize| {
        let mut m = TextMessageV2::new("hi");
        for i in 0..n {
            m = m.with_mention_all(format!("k{i}"));
        }
        Message::from(m)
    };
    assert_valid(many(TEXT_V2_SUBSTITUTIONS_MAX));
    assert_violation(many(TEXT_V2_SUBSTITUTIONS_MAX + 1), "messages[0].substitution", "0 to 100");

    let placeholders =
        |n: usize| Message::from(TextMessageV2::new("{e}".repeat(n)).with_emoji("e", "p", "001"));
    assert_valid(placeholders(TEXT_V2_PLACEHOLDERS_MAX));
    assert_violation(placeholders(TEXT_V2_PLACEHOLDERS_MAX + 1), "messages[0].text", "at most 20");
    // Escaped braces are not placeholders.
    assert_valid(Message::from(TextMessageV2::new("{{e}}".repeat(30)).with_emoji("e", "p", "1")));

    let key = |k: String| Message::from(TextMessageV2::new("hi").with_mention_all(k));
    assert_valid(key(s(TEXT_V2_KEY_MAX)));
    let long = s(TEXT_V2_KEY_MAX + 1);
    assert_violation(key(long.clone()), &format!("messages[0].substitution.{long}"), "1,20");
    assert_violation(key("bad-key".into()), "messages[0].substitution.bad-key", "[0-9a-zA-Z_]");
}

#[test]
fn message_quick_reply_at_most_thirteen_items_with_labels() {
    let qr = |n: usize| Message::text("t").with_quick_reply(QuickReply::new(with_n_actions(n)));
    assert_valid(qr(QUICK_REPLY_ITEMS_MAX));
    assert_violation(qr(QUICK_REPLY_ITEMS_MAX + 1), "messages[0].quickReply.items", "1 to 13");
    assert_violation(qr(0), "messages[0].quickReply.items", "got 0");

    let label = |n: usize| {
        Message::text("t").with_quick_reply(QuickReply::new([Action::message(s(n), "t")]))
    };
    assert_valid(label(ACTION_LABEL_MAX));
    assert_violation(
        label(ACTION_LABEL_MAX + 1),
        "messages[0].quickReply.items[0].action.label",
        "1 to 20",
    );
    let unlabelled = Message::text("t")
        .with_quick_reply(QuickReply::new([Action::from(UriAction::new("https://e.com"))]));
    assert_violation(unlabelled, "messages[0].quickReply.items[0].action.label", "required");
    // Quick-reply-only actions are fine here, rich menu actions are not.
    assert_valid(Message::text("t").with_quick_reply(QuickReply::new([Action::camera("Cam")])));
    let switch = Action::rich_menu_switch("Menu", "alias", "data");
    assert_violation(
        Message::text("t").with_quick_reply(QuickReply::new([switch])),
        "messages[0].quickReply.items[0].action.type",
        "richmenuswitch",
    );
}

#[test]
fn message_quick_reply_checked_on_every_message_of_a_batch() {
    // Only the last one is shown, but each one is still checked.
    let bad = Message::text("t").with_quick_reply(QuickReply::new(with_n_actions(14)));
    assert_single_violation(
        &[bad, Message::text("last")],
        "messages[0].quickReply.items",
        "1 to 13",
    );
}

#[test]
fn message_sender_name_and_icon() {
    let named = |n: &str| Message::text("t").with_sender(Sender::named(n));
    assert_valid(named(&s(SENDER_NAME_MAX)));
    assert_violation(named(&s(SENDER_NAME_MAX + 1)), "messages[0].sender.name", "1 to 20");
    assert_violation(named("LINE shop"), "messages[0].sender.name", "LINE");
    assert_valid(named("Online shop"));
    let icon = Sender::named("Shop").with_icon_url("http://example.com/icon.png");
    assert_violation(Message::text("t").with_sender(icon), "messages[0].sender.iconUrl", "https");
}

#[test]
fn message_media_urls_are_https_and_at_most_2000() {
    let ok = url_of_len(MEDIA_URL_MAX);
    assert_eq!(ok.len(), 2000);
    assert_valid(Message::image(ok.clone(), img("p")));
    assert_violation(
        Message::image(url_of_len(MEDIA_URL_MAX + 1), img("p")),
        "messages[0].originalContentUrl",
        "2000",
    );
    assert_violation(
        Message::image(img("o"), "http://example.com/p.jpg"),
        "messages[0].previewImageUrl",
        "scheme must be one of https",
    );
    assert_violation(
        Message::image("https://example.com/商品.jpg", img("p")),
        "messages[0].originalContentUrl",
        "percent-encoded",
    );
    assert_violation(
        Message::image("not a url", img("p")),
        "messages[0].originalContentUrl",
        "percent-encoded",
    );
    assert_violation(
        Message::image("relative/path.jpg", img("p")),
        "messages[0].originalContentUrl",
        "absolute URL",
    );
    assert_violation(
        Message::video(img("o"), "ftp://example.com/p.jpg"),
        "messages[0].previewImageUrl",
        "https",
    );
    assert_violation(
        Message::audio("http://e.com/a.m4a", std::time::Duration::from_secs(1)),
        "messages[0].originalContentUrl",
        "https",
    );
}

#[test]
fn message_video_tracking_id_at_most_100() {
    let v = |n| Message::from(VideoMessage::new(img("v"), img("p")).with_tracking_id(s(n)));
    assert_valid(v(VIDEO_TRACKING_ID_MAX));
    assert_violation(v(VIDEO_TRACKING_ID_MAX + 1), "messages[0].trackingId", "1 to 100");
}

#[test]
fn message_location_title_address_and_coordinates() {
    assert_valid(Message::location(s(LOCATION_TITLE_MAX), s(LOCATION_ADDRESS_MAX), 90.0, -180.0));
    assert_violation(
        Message::location(s(LOCATION_TITLE_MAX + 1), "a", 0.0, 0.0),
        "messages[0].title",
        "1 to 100",
    );
    assert_violation(
        Message::location("t", s(LOCATION_ADDRESS_MAX + 1), 0.0, 0.0),
        "messages[0].address",
        "1 to 100",
    );
    assert_violation(Message::location("t", "a", 90.5, 0.0), "messages[0].latitude", "-90");
    assert_violation(Message::location("t", "a", 0.0, f64::NAN), "messages[0].longitude", "-180");
}

#[test]
fn message_imagemap_limits() {
    let map = |alt: String| ImagemapMessage::new("https://example.com/map", alt, 1040);
    let area = ImagemapArea::new(0, 0, 10, 10);
    assert_valid(map(s(IMAGEMAP_ALT_TEXT_MAX)).into());
    assert_violation(map(s(IMAGEMAP_ALT_TEXT_MAX + 1)).into(), "messages[0].altText", "1 to 400");

    let mut wide = map("a".into());
    wide.base_size.width = IMAGEMAP_BASE_WIDTH + 1;
    assert_violation(wide.into(), "messages[0].baseSize.width", "must be 1040");

    let actions = |n: usize| {
        let mut m = map("a".into());
        for _ in 0..n {
            m = m.with_action(ImagemapAction::message(area, "hi"));
        }
        Message::from(m)
    };
    assert_valid(actions(IMAGEMAP_ACTIONS_MAX));
    assert_violation(actions(IMAGEMAP_ACTIONS_MAX + 1), "messages[0].actions", "0 to 50");

    let labelled = |n| {
        Message::from(
            map("a".into())
                .with_action(ImagemapAction::uri(area, "https://e.com").with_label(s(n))),
        )
    };
    assert_valid(labelled(IMAGEMAP_ACTION_LABEL_MAX));
    assert_violation(
        labelled(IMAGEMAP_ACTION_LABEL_MAX + 1),
        "messages[0].actions[0].label",
        "1 to 100",
    );
    assert_violation(
        map("a".into())
            .with_action(ImagemapAction::message(ImagemapArea::new(0, 0, 0, 5), "x"))
            .into(),
        "messages[0].actions[0].area.width",
        "positive",
    );
    assert_violation(
        map("a".into())
            .with_action(ImagemapAction::message(area, s(IMAGEMAP_MESSAGE_TEXT_MAX + 1)))
            .into(),
        "messages[0].actions[0].text",
        "1 to 400",
    );

    let video = |n| {
        Message::from(map("a".into()).with_video(
            ImagemapVideo::new(img("v"), img("p"), area).with_external_link("https://e.com", s(n)),
        ))
    };
    assert_valid(video(IMAGEMAP_EXTERNAL_LINK_LABEL_MAX));
    assert_violation(
        video(IMAGEMAP_EXTERNAL_LINK_LABEL_MAX + 1),
        "messages[0].video.externalLink.label",
        "1 to 30",
    );
}

#[test]
fn message_template_alt_text_at_most_400() {
    let m = |n| Message::from(TemplateMessage::buttons(s(n), "t", with_n_actions(1)));
    assert_valid(m(TEMPLATE_ALT_TEXT_MAX));
    assert_violation(m(TEMPLATE_ALT_TEXT_MAX + 1), "messages[0].altText", "1 to 400");
}

#[test]
fn message_buttons_template_limits() {
    let t = |text: String| ButtonsTemplate::new(text).with_actions(with_n_actions(1));
    assert_valid(buttons(t(s(BUTTONS_TEXT_MAX))));
    assert_violation(buttons(t(s(BUTTONS_TEXT_MAX + 1))), "messages[0].template.text", "1 to 160");
    // With a title or an image the text limit drops to 60.
    assert_valid(buttons(t(s(BUTTONS_TEXT_WITH_IMAGE_OR_TITLE_MAX)).with_title("T")));
    assert_violation(
        buttons(t(s(BUTTONS_TEXT_WITH_IMAGE_OR_TITLE_MAX + 1)).with_title("T")),
        "messages[0].template.text",
        "1 to 60",
    );
    assert_violation(
        buttons(t(s(BUTTONS_TEXT_WITH_IMAGE_OR_TITLE_MAX + 1)).with_thumbnail_image_url(img("t"))),
        "messages[0].template.text",
        "1 to 60",
    );
    assert_valid(buttons(t("x".into()).with_title(s(BUTTONS_TITLE_MAX))));
    assert_violation(
        buttons(t("x".into()).with_title(s(BUTTONS_TITLE_MAX + 1))),
        "messages[0].template.title",
        "1 to 40",
    );
    let n = |n| buttons(ButtonsTemplate::new("x").with_actions(with_n_actions(n)));
    assert_valid(n(BUTTONS_ACTIONS_MAX));
    assert_violation(n(BUTTONS_ACTIONS_MAX + 1), "messages[0].template.actions", "1 to 4");
    assert_violation(n(0), "messages[0].template.actions", "got 0");
    assert_violation(
        buttons(t("x".into()).with_image_background_color("white")),
        "messages[0].template.imageBackgroundColor",
        "#RRGGBB",
    );
    // A default action needs no label.
    assert_valid(buttons(t("x".into()).with_default_action(UriAction::new("https://e.com"))));
}

#[test]
fn message_confirm_template_limits() {
    let c = |text: String, n: usize| {
        let mut t =
            ConfirmTemplate::new(text, Action::message("Y", "y"), Action::message("N", "n"));
        t.actions = with_n_actions(n);
        Message::template("alt", t)
    };
    assert_valid(c(s(CONFIRM_TEXT_MAX), CONFIRM_ACTIONS));
    assert_violation(c(s(CONFIRM_TEXT_MAX + 1), 2), "messages[0].template.text", "1 to 240");
    assert_violation(c("x".into(), 3), "messages[0].template.actions", "2 to 2");
    assert_violation(c("x".into(), 1), "messages[0].template.actions", "2 to 2");
}

#[test]
fn message_carousel_template_limits() {
    let col = |n_actions| CarouselColumn::new("text", with_n_actions(n_actions));
    let carousel =
        |cols: Vec<CarouselColumn>| Message::template("alt", CarouselTemplate::new(cols));
    assert_valid(carousel(vec![col(CAROUSEL_ACTIONS_MAX); CAROUSEL_COLUMNS_MAX]));
    assert_violation(
        carousel(vec![col(1); CAROUSEL_COLUMNS_MAX + 1]),
        "messages[0].template.columns",
        "1 to 10",
    );
    assert_violation(carousel(vec![]), "messages[0].template.columns", "got 0");
    let too_many = vec![col(CAROUSEL_ACTIONS_MAX + 1), col(CAROUSEL_ACTIONS_MAX + 1)];
    let found = violations(&[carousel(too_many)]);
    assert_eq!(
        found.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["messages[0].template.columns[0].actions", "messages[0].template.columns[1].actions"]
    );
    assert_violation(
        carousel(vec![col(2), col(2), col(1)]),
        "messages[0].template.columns[2].actions",
        "same number of actions",
    );
    assert_violation(
        carousel(vec![col(1).with_title("T"), col(1)]),
        "messages[0].template.columns[1].title",
        "title",
    );
    assert_violation(
        carousel(vec![col(1), col(1).with_thumbnail_image_url(img("t"))]),
        "messages[0].template.columns[1].thumbnailImageUrl",
        "image",
    );
    let text = |t: String| CarouselColumn::new(t, with_n_actions(1));
    assert_valid(carousel(vec![text(s(CAROUSEL_TEXT_MAX))]));
    assert_violation(
        carousel(vec![text(s(CAROUSEL_TEXT_MAX + 1))]),
        "messages[0].template.columns[0].text",
        "1 to 120",
    );
    assert_valid(carousel(vec![text(s(CAROUSEL_TEXT_WITH_IMAGE_OR_TITLE_MAX)).with_title("T")]));
    assert_violation(
        carousel(vec![text(s(CAROUSEL_TEXT_WITH_IMAGE_OR_TITLE_MAX + 1)).with_title("T")]),
        "messages[0].template.columns[0].text",
        "1 to 60",
    );
    assert_violation(
        carousel(vec![text("x".into()).with_title(s(CAROUSEL_TITLE_MAX + 1))]),
        "messages[0].template.columns[0].title",
        "1 to 40",
    );
}

#[test]
fn message_image_carousel_limits() {
    let col = |label: String| ImageCarouselColumn::new(img("c"), Action::postback(label, "d"));
    let ic = |cols| Message::from(TemplateMessage::image_carousel("alt", cols));
    assert_valid(ic(vec![col(s(IMAGE_CAROUSEL_LABEL_MAX)); IMAGE_CAROUSEL_COLUMNS_MAX]));
    assert_violation(
        ic(vec![col("l".into()); IMAGE_CAROUSEL_COLUMNS_MAX + 1]),
        "messages[0].template.columns",
        "1 to 10",
    );
    assert_violation(
        ic(vec![col(s(IMAGE_CAROUSEL_LABEL_MAX + 1))]),
        "messages[0].template.columns[0].action.label",
        "1 to 12",
    );
    // The label is optional in an image carousel.
    assert_valid(ic(vec![ImageCarouselColumn::new(img("c"), PostbackAction::new("d"))]));
}

/// A batch whose third message is a buttons template with `action` as its second button.
fn third_message_second_action(action: Action) -> Vec<Message> {
    let t =
        ButtonsTemplate::new("x").with_action(Action::message("First", "1")).with_action(action);
    vec![Message::text("a"), Message::text("b"), buttons(t)]
}

#[track_caller]
fn assert_action_ok(action: Action) {
    let found = violations(&third_message_second_action(action));
    assert!(found.is_empty(), "{found:#?}");
}

#[track_caller]
fn assert_action_violation(action: Action, field: &str, mention: &str) {
    assert_single_violation(
        &third_message_second_action(action),
        &format!("messages[2].template.actions[1].{field}"),
        mention,
    );
}

#[test]
fn message_action_label_at_most_twenty() {
    assert_action_ok(Action::postback(s(ACTION_LABEL_MAX), "d"));
    assert_action_violation(Action::postback(s(ACTION_LABEL_MAX + 1), "d"), "label", "1 to 20");
    assert_action_violation(PostbackAction::new("d").into(), "label", "required");
}

#[test]
fn message_postback_action_limits() {
    assert_action_ok(Action::postback("L", s(ACTION_DATA_MAX)));
    assert_action_violation(Action::postback("L", s(ACTION_DATA_MAX + 1)), "data", "0 to 300");
    let display = |n| PostbackAction::new("d").with_label("L").with_display_text(s(n)).into();
    assert_action_ok(display(POSTBACK_DISPLAY_TEXT_MAX));
    assert_action_violation(display(POSTBACK_DISPLAY_TEXT_MAX + 1), "displayText", "1 to 300");
    let fill = |n| {
        PostbackAction::new("d")
            .with_label("L")
            .with_input_option(enishi::line::message::InputOption::OpenKeyboard)
            .with_fill_in_text(s(n))
            .into()
    };
    assert_action_ok(fill(POSTBACK_FILL_IN_TEXT_MAX));
    assert_action_violation(fill(POSTBACK_FILL_IN_TEXT_MAX + 1), "fillInText", "0 to 300");
    assert_action_violation(
        PostbackAction::new("d").with_label("L").with_fill_in_text("x").into(),
        "fillInText",
        "openKeyboard",
    );
}

#[test]
fn message_message_action_and_clipboard_limits() {
    assert_action_ok(Action::message("L", s(MESSAGE_ACTION_TEXT_MAX)));
    assert_action_violation(
        Action::message("L", s(MESSAGE_ACTION_TEXT_MAX + 1)),
        "text",
        "1 to 300",
    );
    assert_action_ok(Action::clipboard("L", s(CLIPBOARD_TEXT_MAX)));
    assert_action_violation(
        Action::clipboard("L", s(CLIPBOARD_TEXT_MAX + 1)),
        "clipboardText",
        "1 to 1000",
    );
}

#[test]
fn message_uri_action_limits_and_schemes() {
    assert_action_ok(Action::uri("L", url_of_len(ACTION_URI_MAX)));
    assert_action_violation(Action::uri("L", url_of_len(ACTION_URI_MAX + 1)), "uri", "1000");
    for ok in ["http://example.com", "line://app/1234", "tel:0312345678", "https://line.me/R/"] {
        assert_action_ok(Action::uri("L", ok));
    }
    assert_action_violation(Action::uri("L", "ftp://example.com"), "uri", "scheme");
    assert_action_violation(Action::uri("L", "javascript:alert(1)"), "uri", "scheme");
    assert_action_violation(Action::uri("L", "https://example.com/a b"), "uri", "percent-encoded");
    let alt = UriAction::new("https://e.com").with_label("L").with_desktop_uri(url_of_len(1001));
    assert_action_violation(alt.into(), "altUri.desktop", "1000");
}

#[test]
fn message_datetime_picker_values() {
    let p = |mode, initial: &str, min: &str, max: &str| {
        let mut a = DatetimePickerAction::new("d", mode).with_label("Pick");
        for (set, v) in [(0, initial), (1, min), (2, max)] {
            if !v.is_empty() {
                a = match set {
                    0 => a.with_initial(v),
                    1 => a.with_min(v),
                    _ => a.with_max(v),
                };
            }
        }
        Action::from(a)
    };
    assert_action_ok(p(DatetimeMode::Date, "2024-02-29", "1900-01-01", "2100-12-31"));
    assert_action_ok(p(DatetimeMode::Time, "10:00", "00:00", "23:59"));
    assert_action_ok(p(DatetimeMode::Datetime, "2017-12-25t00:00", "", "2017-12-25T00:01"));
    assert_action_violation(p(DatetimeMode::Date, "2023-02-29", "", ""), "initial", "YYYY-MM-DD");
    assert_action_violation(p(DatetimeMode::Date, "1899-12-31", "", ""), "initial", "1900-01-01");
    assert_action_violation(p(DatetimeMode::Date, "", "", "2101-01-01"), "max", "2100-12-31");
    assert_action_violation(p(DatetimeMode::Time, "24:00", "", ""), "initial", "HH:mm");
    assert_action_violation(p(DatetimeMode::Time, "9:00", "", ""), "initial", "HH:mm");
    assert_action_violation(p(DatetimeMode::Datetime, "2017-12-25", "", ""), "initial", "datetime");
    assert_action_violation(
        p(DatetimeMode::Date, "", "2020-01-02", "2020-01-01"),
        "max",
        "later than min",
    );
    assert_action_violation(
        p(DatetimeMode::Date, "2021-01-01", "", "2020-01-01"),
        "initial",
        "later than max",
    );
}

#[test]
fn message_actions_only_where_line_allows_them() {
    assert_action_violation(Action::camera("Cam"), "type", "camera action is not allowed");
    assert_action_violation(Action::location("Loc"), "type", "location action is not allowed");
    assert_action_violation(
        Action::rich_menu_switch("M", "alias", "d"),
        "type",
        "richmenuswitch action is not allowed",
    );
    // The same check is open to other callers, e.g. rich menu areas.
    let mut v = Validator::new();
    v.field("areas", |v| {
        Action::rich_menu_switch("M", s(RICH_MENU_ALIAS_ID_MAX + 1), "d")
            .validate(v, ActionContext::RichMenu);
    });
    let err = v.finish().unwrap_err();
    assert_eq!(err.violations.len(), 1);
    assert_eq!(err.violations[0].path, "areas.richMenuAliasId");
}

#[test]
fn message_flex_limits() {
    let bubble = || FlexBubble::new().with_body(FlexBox::vertical([]));
    assert_valid(Message::flex(s(FLEX_ALT_TEXT_MAX), bubble()));
    assert_violation(
        Message::flex(s(FLEX_ALT_TEXT_MAX + 1), bubble()),
        "messages[0].altText",
        "1 to 1500",
    );

    let carousel = |n| FlexContainer::carousel(vec![bubble(); n]);
    assert_valid(Message::flex("a", carousel(FLEX_CAROUSEL_BUBBLES_MAX)));
    assert_violation(
        Message::flex("a", carousel(FLEX_CAROUSEL_BUBBLES_MAX + 1)),
        "messages[0].contents.contents",
        "1 to 12",
    );
    let raw = |n| {
        let bubbles = vec![json!({"type": "bubble"}); n];
        FlexContainer::raw(json!({"type": "carousel", "contents": bubbles}))
    };
    assert_valid(Message::flex("a", raw(FLEX_CAROUSEL_BUBBLES_MAX)));
    assert_violation(
        Message::flex("a", raw(FLEX_CAROUSEL_BUBBLES_MAX + 1)),
        "messages[0].contents.contents",
        "1 to 12",
    );
    assert_violation(
        Message::flex("a", FlexContainer::raw(json!({"type": "box"}))),
        "messages[0].contents.type",
        "bubble",
    );

    let body = |c: Vec<enishi::line::message::FlexComponent>| {
        Message::flex("a", FlexBubble::new().with_body(FlexBox::vertical(c)))
    };
    assert_violation(
        body(vec![FlexButton::new(UriAction::new("https://e.com")).into()]),
        "messages[0].contents.body.contents[0].action.label",
        "required",
    );
    // Flex button labels have no hard maximum: LINE truncates them.
    assert_valid(body(vec![FlexButton::new(Action::uri(s(60), "https://e.com")).into()]));
    assert_violation(
        body(vec![FlexBox::horizontal([FlexImage::new("http://e.com/i.png").into()]).into()]),
        "messages[0].contents.body.contents[0].contents[0].url",
        "https",
    );
    let animated =
        |n| body((0..n).map(|_| FlexImage::new(img("a")).with_animated(true).into()).collect());
    assert_valid(animated(FLEX_ANIMATED_IMAGES_MAX));
    assert_violation(animated(FLEX_ANIMATED_IMAGES_MAX + 1), "messages[0].contents", "animated");
}

#[test]
fn message_coupon_delivery_tag_at_most_30() {
    let c =
        |n| Message::from(enishi::line::message::CouponMessage::new("c").with_delivery_tag(s(n)));
    assert_valid(c(COUPON_DELIVERY_TAG_MAX));
    assert_violation(c(COUPON_DELIVERY_TAG_MAX + 1), "messages[0].deliveryTag", "1 to 30");
}

#[test]
fn message_every_violation_is_reported_with_its_path() {
    let messages = [
        Message::text(""),
        Message::image("http://e.com/a.jpg", "https://e.com/b.jpg")
            .with_sender(Sender::named("LINE")),
    ];
    let paths: Vec<String> = violations(&messages).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        ["messages[0].text", "messages[1].originalContentUrl", "messages[1].sender.name"]
    );
    let err = validate_messages(&messages).unwrap_err();
    assert!(err.to_string().contains("messages[0].text"), "{err}");
    assert!(err.to_string().contains("and 2 more"), "{err}");
}

#[test]
fn message_validate_messages_at_nests_under_the_current_path() {
    let mut v = Validator::new();
    v.field("body", |v| validate_messages_at("messages", &[Message::text(s(TEXT_MAX + 1))], v));
    let err = v.finish().unwrap_err();
    assert_eq!(err.violations[0].path, "body.messages[0].text");
    // And converts into the crate error with `?`.
    let e: enishi::Error = err.into();
    assert!(e.to_string().contains("body.messages[0].text"));
}
