//! Action objects: what happens when a user taps a button, a quick reply, an imagemap area or a
//! flex component.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};

use super::{check, limits};
use crate::line::Validator;

/// An action object (`#action-objects`), serialised with LINE's `"type"` tag.
///
/// Build one with the constructors ([`Action::uri`], [`Action::postback`], ...) and refine it
/// through the payload's `with_*` setters before converting with `.into()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Action {
    /// Opens a URI (`"uri"`).
    #[serde(rename = "uri")]
    Uri(UriAction),
    /// Sends a postback event to the webhook (`"postback"`).
    #[serde(rename = "postback")]
    Postback(PostbackAction),
    /// Sends a text message from the user (`"message"`).
    #[serde(rename = "message")]
    Message(MessageAction),
    /// Lets the user pick a date and/or time, then sends a postback (`"datetimepicker"`).
    #[serde(rename = "datetimepicker")]
    DatetimePicker(DatetimePickerAction),
    /// Opens the camera (`"camera"`); quick reply only.
    #[serde(rename = "camera")]
    Camera(CameraAction),
    /// Opens the camera roll (`"cameraRoll"`); quick reply only.
    #[serde(rename = "cameraRoll")]
    CameraRoll(CameraRollAction),
    /// Opens the location screen (`"location"`); quick reply only.
    #[serde(rename = "location")]
    Location(LocationAction),
    /// Switches rich menus (`"richmenuswitch"`); rich menus only.
    #[serde(rename = "richmenuswitch")]
    RichMenuSwitch(RichMenuSwitchAction),
    /// Copies text to the clipboard (`"clipboard"`).
    #[serde(rename = "clipboard")]
    Clipboard(ClipboardAction),
}

/// URI action: opens `uri` (`http`, `https`, `line` or `tel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UriAction {
    /// Button label (required in templates and quick replies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The URI opened on tap.
    pub uri: String,
    /// A different URI for LINE on desktop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_uri: Option<AltUri>,
}

/// Alternative URIs per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AltUri {
    /// URI opened by LINE for macOS and Windows.
    pub desktop: String,
}

/// Postback action: sends `data` to the webhook as a postback event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PostbackAction {
    /// Button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Data returned in the postback event (≤ 300).
    pub data: String,
    /// Text shown in the chat as the user's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_text: Option<String>,
    /// Deprecated by LINE in favour of `displayText`; kept so LINE's own JSON round-trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// What the rich menu or keyboard does after the tap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_option: Option<InputOption>,
    /// Text pre-filled in the keyboard (only with [`InputOption::OpenKeyboard`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill_in_text: Option<String>,
}

/// Postback `inputOption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum InputOption {
    /// Close the rich menu.
    CloseRichMenu,
    /// Open the rich menu.
    OpenRichMenu,
    /// Open the keyboard (optionally with `fillInText`).
    OpenKeyboard,
    /// Open voice input.
    OpenVoice,
}

/// Message action: the user sends `text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MessageAction {
    /// Button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Text sent by the user.
    pub text: String,
}

/// Datetime picker action: the user picks a value, sent back in a postback event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DatetimePickerAction {
    /// Button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Data returned in the postback event.
    pub data: String,
    /// What is picked.
    pub mode: DatetimeMode,
    /// Initial value (`2017-12-25`, `12:00` or `2017-12-25T12:00`, by mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<String>,
    /// Largest selectable value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
    /// Smallest selectable value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
}

/// Datetime picker `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DatetimeMode {
    /// A date, `YYYY-MM-DD`.
    Date,
    /// A time, `HH:mm`.
    Time,
    /// A date and time, `YYYY-MM-DDTHH:mm` (LINE also accepts a lowercase `t`).
    Datetime,
}

/// Camera action (quick reply only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CameraAction {
    /// Button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Camera roll action (quick reply only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CameraRollAction {
    /// Button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Location action (quick reply only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LocationAction {
    /// Button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Rich menu switch action (rich menus only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RichMenuSwitchAction {
    /// Label (read aloud by accessibility features).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The alias of the rich menu to switch to.
    pub rich_menu_alias_id: String,
    /// Data returned in the postback event.
    pub data: String,
}

/// Clipboard action: copies `clipboardText`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClipboardAction {
    /// Button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The text copied (1 to 1,000).
    pub clipboard_text: String,
}

impl Action {
    /// A URI action with a label.
    #[must_use]
    pub fn uri(label: impl Into<String>, uri: impl Into<String>) -> Self {
        UriAction::new(uri).with_label(label).into()
    }

    /// A postback action with a label.
    #[must_use]
    pub fn postback(label: impl Into<String>, data: impl Into<String>) -> Self {
        PostbackAction::new(data).with_label(label).into()
    }

    /// A message action: tapping `label` makes the user send `text`.
    #[must_use]
    pub fn message(label: impl Into<String>, text: impl Into<String>) -> Self {
        MessageAction::new(text).with_label(label).into()
    }

    /// A datetime picker action.
    #[must_use]
    pub fn datetime_picker(
        label: impl Into<String>,
        data: impl Into<String>,
        mode: DatetimeMode,
    ) -> Self {
        DatetimePickerAction::new(data, mode).with_label(label).into()
    }

    /// A camera action (quick reply only).
    #[must_use]
    pub fn camera(label: impl Into<String>) -> Self {
        Self::Camera(CameraAction { label: Some(label.into()) })
    }

    /// A camera roll action (quick reply only).
    #[must_use]
    pub fn camera_roll(label: impl Into<String>) -> Self {
        Self::CameraRoll(CameraRollAction { label: Some(label.into()) })
    }

    /// A location action (quick reply only).
    #[must_use]
    pub fn location(label: impl Into<String>) -> Self {
        Self::Location(LocationAction { label: Some(label.into()) })
    }

    /// A rich menu switch action (rich menus only).
    #[must_use]
    pub fn rich_menu_switch(
        label: impl Into<String>,
        rich_menu_alias_id: impl Into<String>,
        data: impl Into<String>,
    ) -> Self {
        Self::RichMenuSwitch(RichMenuSwitchAction {
            label: Some(label.into()),
            rich_menu_alias_id: rich_menu_alias_id.into(),
            data: data.into(),
        })
    }

    /// A clipboard action.
    #[must_use]
    pub fn clipboard(label: impl Into<String>, clipboard_text: impl Into<String>) -> Self {
        Self::Clipboard(ClipboardAction {
            label: Some(label.into()),
            clipboard_text: clipboard_text.into(),
        })
    }

    /// The action's label, if any.
    #[must_use]
    pub fn label(&self) -> Option<&str> {
        match self {
            Self::Uri(a) => a.label.as_deref(),
            Self::Postback(a) => a.label.as_deref(),
            Self::Message(a) => a.label.as_deref(),
            Self::DatetimePicker(a) => a.label.as_deref(),
            Self::Camera(a) => a.label.as_deref(),
            Self::CameraRoll(a) => a.label.as_deref(),
            Self::Location(a) => a.label.as_deref(),
            Self::RichMenuSwitch(a) => a.label.as_deref(),
            Self::Clipboard(a) => a.label.as_deref(),
        }
    }

    /// LINE's `"type"` value for this action.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Uri(_) => "uri",
            Self::Postback(_) => "postback",
            Self::Message(_) => "message",
            Self::DatetimePicker(_) => "datetimepicker",
            Self::Camera(_) => "camera",
            Self::CameraRoll(_) => "cameraRoll",
            Self::Location(_) => "location",
            Self::RichMenuSwitch(_) => "richmenuswitch",
            Self::Clipboard(_) => "clipboard",
        }
    }

    /// Checks the action against LINE's limits for the place it is used in, recording
    /// violations at the validator's current path.
    pub fn validate(&self, v: &mut Validator, context: ActionContext) {
        let (required, max) = context.label_rule();
        match (self.label(), required) {
            (None, true) => v.violation_at("label", "is required here"),
            (Some(label), _) => match max {
                Some(max) => check::text(v, "label", label, 1, max),
                None => check::non_empty(v, "label", label),
            },
            (None, false) => {}
        }
        if !context.allows(self) {
            v.violation_at(
                "type",
                format!("a {} action is not allowed in {}", self.type_name(), context.describe()),
            );
        }
        match self {
            Self::Uri(a) => {
                check::url(v, "uri", &a.uri, limits::ACTION_URI_SCHEMES, limits::ACTION_URI_MAX);
                if let Some(alt) = &a.alt_uri {
                    v.field("altUri", |v| {
                        check::url(
                            v,
                            "desktop",
                            &alt.desktop,
                            limits::ACTION_URI_SCHEMES,
                            limits::ACTION_URI_MAX,
                        );
                    });
                }
            }
            Self::Postback(a) => {
                check::text(v, "data", &a.data, 0, limits::ACTION_DATA_MAX);
                check::opt_text(
                    v,
                    "displayText",
                    a.display_text.as_deref(),
                    limits::POSTBACK_DISPLAY_TEXT_MAX,
                );
                check::opt_text(v, "text", a.text.as_deref(), limits::POSTBACK_DISPLAY_TEXT_MAX);
                if a.display_text.is_some() && a.text.is_some() {
                    v.violation_at("text", "cannot be set together with displayText");
                }
                if let Some(fill) = &a.fill_in_text {
                    check::text(v, "fillInText", fill, 0, limits::POSTBACK_FILL_IN_TEXT_MAX);
                    if a.input_option != Some(InputOption::OpenKeyboard) {
                        v.violation_at("fillInText", "requires inputOption openKeyboard");
                    }
                }
            }
            Self::Message(a) => check::text(v, "text", &a.text, 1, limits::MESSAGE_ACTION_TEXT_MAX),
            Self::DatetimePicker(a) => validate_datetime_picker(v, a),
            Self::Camera(_) | Self::CameraRoll(_) | Self::Location(_) => {}
            Self::RichMenuSwitch(a) => {
                check::text(
                    v,
                    "richMenuAliasId",
                    &a.rich_menu_alias_id,
                    1,
                    limits::RICH_MENU_ALIAS_ID_MAX,
                );
                check::text(v, "data", &a.data, 0, limits::ACTION_DATA_MAX);
            }
            Self::Clipboard(a) => {
                check::text(v, "clipboardText", &a.clipboard_text, 1, limits::CLIPBOARD_TEXT_MAX);
            }
        }
    }
}

/// Where an action is used: LINE's rules for labels and allowed action types differ by place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActionContext {
    /// A button of a buttons, confirm or carousel template (label required, ≤ 20).
    Template,
    /// A template's `defaultAction` or a flex bubble's `action` (label optional, ≤ 20).
    DefaultAction,
    /// The `action` of a flex box, text, image or video (label optional; LINE does not show it).
    FlexArea,
    /// An image carousel column (label optional, ≤ 12).
    ImageCarousel,
    /// A quick reply button (label required, ≤ 20; camera, camera roll and location allowed).
    QuickReply,
    /// A flex button component (label required; LINE truncates long labels itself).
    FlexButton,
    /// A rich menu area (label optional, ≤ 20; rich menu switch allowed).
    RichMenu,
}

impl ActionContext {
    fn label_rule(self) -> (bool, Option<usize>) {
        match self {
            Self::Template | Self::QuickReply => (true, Some(limits::ACTION_LABEL_MAX)),
            Self::DefaultAction | Self::RichMenu => (false, Some(limits::ACTION_LABEL_MAX)),
            Self::ImageCarousel => (false, Some(limits::IMAGE_CAROUSEL_LABEL_MAX)),
            Self::FlexButton => (true, None),
            Self::FlexArea => (false, None),
        }
    }

    fn allows(self, action: &Action) -> bool {
        match action {
            Action::Camera(_) | Action::CameraRoll(_) | Action::Location(_) => {
                self == Self::QuickReply
            }
            Action::RichMenuSwitch(_) => self == Self::RichMenu,
            _ => true,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Template => "a template button",
            Self::DefaultAction => "a default action",
            Self::ImageCarousel => "an image carousel column",
            Self::QuickReply => "a quick reply",
            Self::FlexButton => "a flex button",
            Self::FlexArea => "a flex component",
            Self::RichMenu => "a rich menu",
        }
    }
}

fn validate_datetime_picker(v: &mut Validator, a: &DatetimePickerAction) {
    check::text(v, "data", &a.data, 0, limits::ACTION_DATA_MAX);
    let parse = |s: &str| parse_picker_value(a.mode, s);
    let mut parsed = [None, None, None];
    for (slot, (field, value)) in
        parsed.iter_mut().zip([("initial", &a.initial), ("max", &a.max), ("min", &a.min)])
    {
        let Some(value) = value else { continue };
        match parse(value) {
            Some(p) => *slot = Some(p),
            None => v.violation_at(
                field,
                format!(
                    "must be a {} between {} and {} (got {value:?})",
                    a.mode.format(),
                    limits::DATETIME_PICKER_EARLIEST,
                    limits::DATETIME_PICKER_LATEST
                ),
            ),
        }
    }
    let [initial, max, min] = parsed;
    if let (Some(min), Some(max)) = (min, max)
        && min >= max
    {
        v.violation_at("max", "must be later than min");
    }
    if let (Some(initial), Some(max)) = (initial, max)
        && initial > max
    {
        v.violation_at("initial", "must not be later than max");
    }
    if let (Some(initial), Some(min)) = (initial, min)
        && initial < min
    {
        v.violation_at("initial", "must not be earlier than min");
    }
}

impl DatetimeMode {
    fn format(self) -> &'static str {
        match self {
            Self::Date => "date YYYY-MM-DD",
            Self::Time => "time HH:mm",
            Self::Datetime => "datetime YYYY-MM-DDTHH:mm",
        }
    }
}

/// Parses a picker value as a comparable datetime, or `None` when malformed or out of range.
fn parse_picker_value(mode: DatetimeMode, value: &str) -> Option<NaiveDateTime> {
    let date_in_range = |d: NaiveDate| {
        let earliest = NaiveDate::parse_from_str(limits::DATETIME_PICKER_EARLIEST, "%Y-%m-%d");
        let latest = NaiveDate::parse_from_str(limits::DATETIME_PICKER_LATEST, "%Y-%m-%d");
        matches!((earliest, latest), (Ok(e), Ok(l)) if (e..=l).contains(&d))
    };
    // chrono accepts single-digit fields; LINE wants the fixed-width form, so check shape too.
    let shape = |pattern: &str| {
        value.len() == pattern.len()
            && value.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
                b'9' => c.is_ascii_digit(),
                b'T' => c == b'T' || c == b't',
                _ => c == p,
            })
    };
    match mode {
        DatetimeMode::Date => {
            if !shape("9999-99-99") {
                return None;
            }
            let d = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?;
            date_in_range(d).then(|| d.and_time(NaiveTime::MIN))
        }
        DatetimeMode::Time => {
            if !shape("99:99") {
                return None;
            }
            let t = NaiveTime::parse_from_str(value, "%H:%M").ok()?;
            Some(NaiveDate::MIN.and_time(t))
        }
        DatetimeMode::Datetime => {
            if !shape("9999-99-99T99:99") {
                return None;
            }
            let normalised = value.replace('t', "T");
            let dt = NaiveDateTime::parse_from_str(&normalised, "%Y-%m-%dT%H:%M").ok()?;
            date_in_range(dt.date()).then_some(dt)
        }
    }
}

impl UriAction {
    /// A URI action without a label (for a default action or a flex component).
    #[must_use]
    pub fn new(uri: impl Into<String>) -> Self {
        Self { label: None, uri: uri.into(), alt_uri: None }
    }

    /// Opens `desktop` instead on LINE for macOS and Windows.
    #[must_use]
    pub fn with_desktop_uri(mut self, desktop: impl Into<String>) -> Self {
        self.alt_uri = Some(AltUri { desktop: desktop.into() });
        self
    }
}

impl PostbackAction {
    /// A postback action without a label.
    #[must_use]
    pub fn new(data: impl Into<String>) -> Self {
        Self {
            label: None,
            data: data.into(),
            display_text: None,
            text: None,
            input_option: None,
            fill_in_text: None,
        }
    }
}

impl MessageAction {
    /// A message action without a label.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self { label: None, text: text.into() }
    }
}

impl DatetimePickerAction {
    /// A datetime picker action without a label or bounds.
    #[must_use]
    pub fn new(data: impl Into<String>, mode: DatetimeMode) -> Self {
        Self { label: None, data: data.into(), mode, initial: None, max: None, min: None }
    }
}

setters!(UriAction {
    with_label(label: impl Into<String>),
});
setters!(PostbackAction {
    with_label(label: impl Into<String>),
    with_display_text(display_text: impl Into<String>),
    with_input_option(input_option: InputOption),
    with_fill_in_text(fill_in_text: impl Into<String>),
});
setters!(MessageAction {
    with_label(label: impl Into<String>),
});
setters!(DatetimePickerAction {
    with_label(label: impl Into<String>),
    with_initial(initial: impl Into<String>),
    with_max(max: impl Into<String>),
    with_min(min: impl Into<String>),
});

from_payload!(Action {
    Uri(UriAction),
    Postback(PostbackAction),
    Message(MessageAction),
    DatetimePicker(DatetimePickerAction),
    Camera(CameraAction),
    CameraRoll(CameraRollAction),
    Location(LocationAction),
    RichMenuSwitch(RichMenuSwitchAction),
    Clipboard(ClipboardAction),
});
