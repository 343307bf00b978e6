//! Property tests: validation never panics, whatever the text, URLs or labels, and the text
//! limit is exactly "1 to 5,000 UTF-16 code units".

use enishi::line::message::{
    Action, ButtonsTemplate, CarouselColumn, CarouselTemplate, DatetimeMode, DatetimePickerAction,
    Emoji, FlexBox, FlexBubble, FlexImage, FlexText, ImagemapAction, ImagemapArea, ImagemapMessage,
    Message, QuickReply, Sender, TextMessage, TextMessageV2, limits, validate_messages,
};
use proptest::prelude::*;

/// Arbitrary strings, biased towards what breaks naive code: astral characters, braces, `$`,
/// URL-ish prefixes, and lengths around the limits.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z{}$😀縁 :/%]{0,40}",
        "(https?|line|tel|ftp|javascript)://?[a-zA-Z0-9./%?&=#:@\\[\\]😀 -]{0,60}",
        (0usize..3, 0usize..2100).prop_map(|(kind, n)| match kind {
            0 => "a".repeat(n),
            1 => "😀".repeat(n),
            _ => format!("https://e.com/{}", "b".repeat(n)),
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn message_validate_never_panics(
        a in nasty(), b in nasty(), c in nasty(), index in any::<u32>(), n in 0usize..20,
        lat in any::<f64>(),
    ) {
        let messages = vec![
            Message::from(TextMessage::new(a.clone()).with_emoji(Emoji::new(index, b.clone(), c.clone())))
                .with_sender(Sender::named(b.clone()).with_icon_url(c.clone())),
            Message::from(TextMessageV2::new(a.clone()).with_emoji(b.clone(), "p", "e").with_mention_all(c.clone()))
                .with_quick_reply(QuickReply::new((0..n).map(|i| Action::uri(a.clone(), format!("{c}{i}"))))),
            Message::image(a.clone(), b.clone()),
            Message::location(a.clone(), b.clone(), lat, -lat),
            Message::template(a.clone(), ButtonsTemplate::new(b.clone())
                .with_title(c.clone())
                .with_thumbnail_image_url(a.clone())
                .with_image_background_color(b.clone())
                .with_action(Action::postback(a.clone(), b.clone()))
                .with_action(DatetimePickerAction::new(c.clone(), DatetimeMode::Datetime)
                    .with_label("l").with_initial(a.clone()).with_min(b.clone()).with_max(c.clone()))
                .with_action(DatetimePickerAction::new("d", DatetimeMode::Date).with_label("l").with_initial(a.clone()))
                .with_action(DatetimePickerAction::new("d", DatetimeMode::Time).with_label("l").with_initial(b.clone()))),
            Message::template(a.clone(), CarouselTemplate::new((0..n % 12).map(|i| {
                CarouselColumn::new(b.clone(), (0..i % 4).map(|_| Action::message(c.clone(), a.clone())))
            }))),
            Message::from(ImagemapMessage::new(a.clone(), b.clone(), index)
                .with_action(ImagemapAction::uri(ImagemapArea::new(index, index, index, 0), c.clone()).with_label(a.clone()))),
            Message::flex(a.clone(), FlexBubble::new().with_body(FlexBox::vertical([
                FlexText::new(b.clone()).with_color(c.clone()).into(),
                FlexImage::new(a.clone()).with_action(Action::clipboard(b.clone(), c.clone())).into(),
            ]))),
        ];
        // Every message alone, then all together (more than 5: the count check too).
        for m in &messages {
            let _ = validate_messages(std::slice::from_ref(m));
        }
        let _ = validate_messages(&messages);
    }

    #[test]
    fn message_text_valid_iff_within_utf16_limit(text in nasty()) {
        let units = text.encode_utf16().count();
        let ok = validate_messages(&[Message::text(text)]).is_ok();
        prop_assert_eq!(ok, (1..=limits::TEXT_MAX).contains(&units));
    }

    #[test]
    fn message_serde_round_trip_of_arbitrary_text(a in nasty(), b in nasty()) {
        let m = Message::from(TextMessage::new(a).with_quote_token(b.clone()))
            .with_sender(Sender::named(b));
        let json = serde_json::to_string(&m).unwrap();
        prop_assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), m);
    }

    #[test]
    fn message_deserialising_arbitrary_json_never_panics(s in any::<String>(), t in "[a-zA-Z]{0,12}") {
        let _ = serde_json::from_str::<Message>(&s);
        let _ = serde_json::from_value::<Message>(serde_json::json!({"type": t, "text": s, "contents": {"type": "carousel"}}));
    }
}
