//! Rich menus: create, image upload (data host), default menu, per-user links, bulk links and
//! aliases.

use serde::{Deserialize, Serialize};

use super::error::LineError;
use super::model::path_segment;
use super::ratelimit::EndpointClass;
use super::request::{Host, Request};
use crate::line::Validator;
use crate::line::message::{Action, ActionContext};
use crate::{LineUserId, RichMenuAliasId, RichMenuId};

/// The most users per bulk link or unlink call.
pub const RICH_MENU_BULK_CHUNK: usize = 500;
/// The largest rich-menu image LINE accepts (1 MB).
pub const RICH_MENU_IMAGE_MAX_BYTES: usize = 1024 * 1024;

/// A rich menu's size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RichMenuSize {
    /// Width: 800 to 2,500.
    pub width: u32,
    /// Height: at least 250; width/height at least 1.45.
    pub height: u32,
}

impl RichMenuSize {
    /// The full-size 2500×1686 layout.
    pub const FULL: Self = Self { width: 2500, height: 1686 };
    /// The half-size 2500×843 layout.
    pub const HALF: Self = Self { width: 2500, height: 843 };

    /// A custom size (checked when the menu is created).
    #[must_use]
    pub fn new(width: u32, height: u32) -> Self {
        Self { width, height }
    }
}

/// A tappable rectangle of a rich menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Bounds {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Bounds {
    /// A rectangle.
    #[must_use]
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self { x, y, width, height }
    }
}

/// One tappable area and what it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RichMenuArea {
    /// Where.
    pub bounds: Bounds,
    /// What a tap does.
    pub action: Action,
}

impl RichMenuArea {
    /// An area.
    #[must_use]
    pub fn new(bounds: Bounds, action: Action) -> Self {
        Self { bounds, action }
    }
}

/// A rich menu definition (what is sent to create one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[must_use]
#[non_exhaustive]
pub struct RichMenu {
    /// Size of the image.
    pub size: RichMenuSize,
    /// Whether the menu opens by default.
    pub selected: bool,
    /// Internal name (≤ 300 characters).
    pub name: String,
    /// Text of the chat bar (≤ 14 characters).
    pub chat_bar_text: String,
    /// Tappable areas (≤ 20).
    pub areas: Vec<RichMenuArea>,
}

impl RichMenu {
    /// A menu with no areas yet.
    pub fn new(
        name: impl Into<String>,
        chat_bar_text: impl Into<String>,
        size: RichMenuSize,
    ) -> Self {
        Self {
            size,
            selected: false,
            name: name.into(),
            chat_bar_text: chat_bar_text.into(),
            areas: Vec::new(),
        }
    }

    /// Adds a tappable area.
    pub fn area(mut self, bounds: Bounds, action: Action) -> Self {
        self.areas.push(RichMenuArea::new(bounds, action));
        self
    }

    /// Opens the menu by default.
    pub fn selected(mut self, selected: bool) -> Self {
        self.selected = selected;
        self
    }

    fn validate(&self, v: &mut Validator) {
        let RichMenuSize { width, height } = self.size;
        if !(800..=2500).contains(&width) {
            v.violation_at("size.width", format!("must be 800 to 2500 px (got {width})"));
        }
        if height < 250 {
            v.violation_at("size.height", format!("must be at least 250 px (got {height})"));
        } else if f64::from(width) / f64::from(height) < 1.45 {
            v.violation_at(
                "size",
                format!("width/height must be at least 1.45 (got {width}x{height})"),
            );
        }
        v.char_len("name", &self.name, 1, 300);
        v.char_len("chatBarText", &self.chat_bar_text, 1, 14);
        v.count("areas", self.areas.len(), 0, 20);
        v.field("areas", |v| {
            for (i, a) in self.areas.iter().enumerate() {
                let b = a.bounds;
                v.index(i, |v| {
                    if b.x.saturating_add(b.width) > width || b.y.saturating_add(b.height) > height
                    {
                        v.violation_at("bounds", "must lie inside the menu's size");
                    }
                    v.field("action", |v| a.action.validate(v, ActionContext::RichMenu));
                });
            }
        });
    }
}

/// LINE's rules for a rich menu's size and its image: width 800–2,500 px, height ≥ 250 px,
/// width/height ≥ 1.45.
fn check_menu_size(v: &mut Validator, field: &str, width: u32, height: u32) {
    if !(800..=2500).contains(&width) {
        v.violation_at(field, format!("width must be 800 to 2500 px (got {width})"));
    }
    if height < 250 {
        v.violation_at(field, format!("height must be at least 250 px (got {height})"));
    } else if f64::from(width) / f64::from(height) < 1.45 {
        v.violation_at(field, format!("width/height must be at least 1.45 (got {width}x{height})"));
    }
}

/// A rich menu as LINE returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RichMenuInfo {
    /// The ID.
    pub rich_menu_id: RichMenuId,
    /// Size.
    pub size: RichMenuSize,
    /// Opens by default.
    #[serde(default)]
    pub selected: bool,
    /// Name.
    pub name: String,
    /// Chat bar text.
    pub chat_bar_text: String,
    /// Areas, kept as LINE sent them (actions may be of types this version does not know).
    #[serde(default)]
    pub areas: Vec<serde_json::Value>,
}

/// A rich-menu alias (for switching menus with `richmenuswitch` actions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RichMenuAlias {
    /// The alias.
    pub rich_menu_alias_id: RichMenuAliasId,
    /// The menu it points to.
    pub rich_menu_id: RichMenuId,
}

impl RichMenuAlias {
    /// An alias pointing at a menu.
    #[must_use]
    pub fn new(alias: RichMenuAliasId, menu: RichMenuId) -> Self {
        Self { rich_menu_alias_id: alias, rich_menu_id: menu }
    }
}

/// The image formats LINE accepts for rich menus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageType {
    /// `image/jpeg`.
    Jpeg,
    /// `image/png`.
    Png,
}

impl ImageType {
    fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    /// Detects JPEG or PNG from the first bytes.
    #[must_use]
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else {
            None
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RichMenuIdWire {
    rich_menu_id: RichMenuId,
}

impl super::LineClient {
    /// Creates a rich menu (100 calls/hour; at most 1,000 menus per account). Not retried.
    ///
    /// # Errors
    /// [`LineError::Validation`] before sending; [`LineError::Api`], [`LineError::Transport`],
    /// [`LineError::Decode`].
    pub async fn create_rich_menu(&self, menu: &RichMenu) -> Result<RichMenuId, LineError> {
        let mut v = Validator::new();
        menu.validate(&mut v);
        v.finish()?;
        let request = Request::post("create_rich_menu", "/v2/bot/richmenu")
            .class(EndpointClass::RichMenuManage)
            .json(menu)?;
        Ok(self.execute(request).await?.json::<RichMenuIdWire>()?.rich_menu_id)
    }

    /// Asks LINE to validate a rich menu without creating it.
    ///
    /// # Errors
    /// [`LineError::Validation`] locally; [`LineError::Api`] with LINE's details.
    pub async fn validate_rich_menu(&self, menu: &RichMenu) -> Result<(), LineError> {
        let mut v = Validator::new();
        menu.validate(&mut v);
        v.finish()?;
        self.execute(Request::post("validate_rich_menu", "/v2/bot/richmenu/validate").json(menu)?)
            .await?;
        Ok(())
    }

    /// Uploads a menu's image (JPEG or PNG, ≤ 1 MB) to the data host. An image cannot be
    /// replaced: create a new menu instead.
    ///
    /// # Errors
    /// [`LineError::Validation`] when the bytes are neither JPEG nor PNG or too large;
    /// [`LineError::Api`], [`LineError::Transport`].
    pub async fn upload_rich_menu_image(
        &self,
        menu: &RichMenuId,
        image: Vec<u8>,
    ) -> Result<(), LineError> {
        let mut v = Validator::new();
        let kind = ImageType::sniff(&image);
        if kind.is_none() {
            v.violation_at("image", "must be a JPEG or PNG image");
        }
        let size = kind.and_then(|k| crate::line::image_size(k.content_type(), &image));
        match (kind, size) {
            (Some(_), None) => v.violation_at("image", "has no readable image header"),
            (_, Some((width, height))) => check_menu_size(&mut v, "image", width, height),
            (None, None) => {}
        }
        if image.len() > RICH_MENU_IMAGE_MAX_BYTES {
            v.violation_at("image", format!("must be at most 1 MB (got {} bytes)", image.len()));
        }
        v.finish()?;
        let content_type = kind.map_or("image/png", ImageType::content_type);
        let request = Request::post(
            "upload_rich_menu_image",
            format!("/v2/bot/richmenu/{}/content", path_segment(menu.as_str())),
        )
        .host(Host::Data)
        .bytes(content_type, image);
        self.execute(request).await?;
        Ok(())
    }

    /// One rich menu.
    ///
    /// # Errors
    /// [`LineError::Api`] (404 when unknown), [`LineError::Transport`], [`LineError::Decode`].
    pub async fn rich_menu(&self, menu: &RichMenuId) -> Result<RichMenuInfo, LineError> {
        let path = format!("/v2/bot/richmenu/{}", path_segment(menu.as_str()));
        self.execute(Request::get("get_rich_menu", path)).await?.json()
    }

    /// All rich menus of the account.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn rich_menus(&self) -> Result<Vec<RichMenuInfo>, LineError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            #[serde(default)]
            richmenus: Vec<RichMenuInfo>,
        }
        let request = Request::get("list_rich_menus", "/v2/bot/richmenu/list")
            .class(EndpointClass::RichMenuList);
        Ok(self.execute(request).await?.json::<Wire>()?.richmenus)
    }

    /// Deletes a rich menu (100 calls/hour).
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`].
    pub async fn delete_rich_menu(&self, menu: &RichMenuId) -> Result<(), LineError> {
        let path = format!("/v2/bot/richmenu/{}", path_segment(menu.as_str()));
        self.execute(
            Request::delete("delete_rich_menu", path).class(EndpointClass::RichMenuManage),
        )
        .await?;
        Ok(())
    }

    /// Makes a menu the default for every user without a per-user menu.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`].
    pub async fn set_default_rich_menu(&self, menu: &RichMenuId) -> Result<(), LineError> {
        let path = format!("/v2/bot/user/all/richmenu/{}", path_segment(menu.as_str()));
        self.execute(Request::post("set_default_rich_menu", path)).await?;
        Ok(())
    }

    /// The default menu's ID, if one is set through the API.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn default_rich_menu(&self) -> Result<Option<RichMenuId>, LineError> {
        match self.execute(Request::get("get_default_rich_menu", "/v2/bot/user/all/richmenu")).await
        {
            Ok(answer) => Ok(Some(answer.json::<RichMenuIdWire>()?.rich_menu_id)),
            Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Clears the default menu set through the API.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`].
    pub async fn cancel_default_rich_menu(&self) -> Result<(), LineError> {
        self.execute(Request::delete("cancel_default_rich_menu", "/v2/bot/user/all/richmenu"))
            .await?;
        Ok(())
    }

    /// Links a menu to one user (it then wins over the default).
    ///
    /// # Errors
    /// [`LineError::Api`] (400 when the menu has no image), [`LineError::Transport`].
    pub async fn link_rich_menu(
        &self,
        user: &LineUserId,
        menu: &RichMenuId,
    ) -> Result<(), LineError> {
        let path = format!("/v2/bot/user/{user}/richmenu/{}", path_segment(menu.as_str()));
        self.execute(Request::post("link_rich_menu", path)).await?;
        Ok(())
    }

    /// Removes a user's per-user menu.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`].
    pub async fn unlink_rich_menu(&self, user: &LineUserId) -> Result<(), LineError> {
        self.execute(Request::delete("unlink_rich_menu", format!("/v2/bot/user/{user}/richmenu")))
            .await?;
        Ok(())
    }

    /// The menu linked to a user, if any.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn user_rich_menu(&self, user: &LineUserId) -> Result<Option<RichMenuId>, LineError> {
        match self
            .execute(Request::get("get_user_rich_menu", format!("/v2/bot/user/{user}/richmenu")))
            .await
        {
            Ok(answer) => Ok(Some(answer.json::<RichMenuIdWire>()?.rich_menu_id)),
            Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Links a menu to many users, in calls of at most 500 (LINE applies them asynchronously,
    /// normally within seconds).
    ///
    /// # Errors
    /// [`LineError::Validation`] for an empty list; the first failing call's error.
    pub async fn bulk_link_rich_menu(
        &self,
        users: &[LineUserId],
        menu: &RichMenuId,
    ) -> Result<(), LineError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            rich_menu_id: &'a RichMenuId,
            user_ids: &'a [LineUserId],
        }
        let mut v = Validator::new();
        v.count("userIds", users.len(), 1, usize::MAX);
        v.finish()?;
        for chunk in users.chunks(RICH_MENU_BULK_CHUNK) {
            let request = Request::post("bulk_link_rich_menu", "/v2/bot/richmenu/bulk/link")
                .json(&Wire { rich_menu_id: menu, user_ids: chunk })?;
            self.execute(request).await?;
        }
        Ok(())
    }

    /// Removes per-user menus from many users, in calls of at most 500.
    ///
    /// # Errors
    /// [`LineError::Validation`] for an empty list; the first failing call's error.
    pub async fn bulk_unlink_rich_menu(&self, users: &[LineUserId]) -> Result<(), LineError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            user_ids: &'a [LineUserId],
        }
        let mut v = Validator::new();
        v.count("userIds", users.len(), 1, usize::MAX);
        v.finish()?;
        for chunk in users.chunks(RICH_MENU_BULK_CHUNK) {
            let request = Request::post("bulk_unlink_rich_menu", "/v2/bot/richmenu/bulk/unlink")
                .json(&Wire { user_ids: chunk })?;
            self.execute(request).await?;
        }
        Ok(())
    }

    /// Creates an alias pointing at a menu.
    ///
    /// # Errors
    /// [`LineError::Api`] (400 when the alias exists), [`LineError::Transport`].
    pub async fn create_rich_menu_alias(&self, alias: &RichMenuAlias) -> Result<(), LineError> {
        self.execute(
            Request::post("create_rich_menu_alias", "/v2/bot/richmenu/alias").json(alias)?,
        )
        .await?;
        Ok(())
    }

    /// Points an existing alias at another menu.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`].
    pub async fn update_rich_menu_alias(
        &self,
        alias: &RichMenuAliasId,
        menu: &RichMenuId,
    ) -> Result<(), LineError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            rich_menu_id: &'a RichMenuId,
        }
        let request =
            Request::post("update_rich_menu_alias", format!("/v2/bot/richmenu/alias/{alias}"))
                .json(&Wire { rich_menu_id: menu })?;
        self.execute(request).await?;
        Ok(())
    }

    /// One alias.
    ///
    /// # Errors
    /// [`LineError::Api`] (404 when unknown), [`LineError::Transport`], [`LineError::Decode`].
    pub async fn rich_menu_alias(
        &self,
        alias: &RichMenuAliasId,
    ) -> Result<RichMenuAlias, LineError> {
        self.execute(Request::get("get_rich_menu_alias", format!("/v2/bot/richmenu/alias/{alias}")))
            .await?
            .json()
    }

    /// All aliases.
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`], [`LineError::Decode`].
    pub async fn rich_menu_aliases(&self) -> Result<Vec<RichMenuAlias>, LineError> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            aliases: Vec<RichMenuAlias>,
        }
        Ok(self
            .execute(Request::get("list_rich_menu_aliases", "/v2/bot/richmenu/alias/list"))
            .await?
            .json::<Wire>()?
            .aliases)
    }

    /// Deletes an alias (100 calls/hour).
    ///
    /// # Errors
    /// [`LineError::Api`], [`LineError::Transport`].
    pub async fn delete_rich_menu_alias(&self, alias: &RichMenuAliasId) -> Result<(), LineError> {
        let request =
            Request::delete("delete_rich_menu_alias", format!("/v2/bot/richmenu/alias/{alias}"))
                .class(EndpointClass::RichMenuManage);
        self.execute(request).await?;
        Ok(())
    }
}
