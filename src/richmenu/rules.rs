//! What the shop declares: menus under stable keys, and the rules that pick one per friend.

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use super::RichMenuError;
use crate::line::RichMenu;
use crate::segment::{Engine, NextChange, SegmentError};
use crate::{CustomerId, LineUserId, RichMenuAliasId};

/// The shop's name for a menu, e.g. `link` or `mypage`: `^[a-z0-9_-]{1,32}$` (the form of a
/// rich-menu alias, so a key can double as one).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MenuKey(String);

impl MenuKey {
    /// Checks and wraps a key.
    ///
    /// # Errors
    /// [`RichMenuError::Config`] when `key` is not `^[a-z0-9_-]{1,32}$`.
    pub fn new(key: impl Into<String>) -> Result<Self, RichMenuError> {
        let key = key.into();
        let ok = (1..=32).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(key))
        } else {
            Err(RichMenuError::Config {
                field: "menu key".into(),
                reason: format!("{key:?} must match ^[a-z0-9_-]{{1,32}}$"),
            })
        }
    }

    /// The key as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MenuKey {
    type Error = RichMenuError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<MenuKey> for String {
    fn from(key: MenuKey) -> Self {
        key.0
    }
}

impl fmt::Debug for MenuKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MenuKey({:?})", self.0)
    }
}

impl fmt::Display for MenuKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A menu the shop declares: the rich-menu object, its image and an optional alias.
#[derive(Clone)]
#[must_use]
pub struct MenuSpec {
    pub(crate) key: MenuKey,
    pub(crate) menu: RichMenu,
    pub(crate) image: Vec<u8>,
    pub(crate) alias: Option<RichMenuAliasId>,
}

impl fmt::Debug for MenuSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MenuSpec")
            .field("key", &self.key)
            .field("menu", &self.menu.name)
            .field("image_bytes", &self.image.len())
            .field("alias", &self.alias)
            .finish()
    }
}

impl MenuSpec {
    /// A menu under `key` with its image (JPEG or PNG, checked when it is uploaded).
    pub fn new(key: MenuKey, menu: RichMenu, image: Vec<u8>) -> Self {
        Self { key, menu, image, alias: None }
    }

    /// Points a rich-menu alias at this menu (for `richmenuswitch` actions).
    pub fn alias(mut self, alias: RichMenuAliasId) -> Self {
        self.alias = Some(alias);
        self
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &MenuKey {
        &self.key
    }

    /// A digest of the menu object and the image: when it changes, the menu is made anew.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(serde_json::to_vec(&self.menu).unwrap_or_default());
        hash.update([0]);
        hash.update(&self.image);
        hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

/// One friend of the official account, as the reconciler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Friend {
    /// The LINE user.
    pub user: LineUserId,
    /// The shop customer linked to it, if any.
    pub customer: Option<CustomerId>,
    /// Whether the user follows the account now (a blocked user's menu is left alone until
    /// they follow again).
    pub following: bool,
}

impl Friend {
    /// A following friend, linked to `customer` or not.
    #[must_use]
    pub fn new(user: LineUserId, customer: Option<CustomerId>) -> Self {
        Self { user, customer, following: true }
    }

    /// Sets whether the user follows the account.
    #[must_use]
    pub fn following(mut self, following: bool) -> Self {
        self.following = following;
        self
    }
}

/// The rules that pick a menu per friend: the first rule whose segment holds the friend's
/// customer wins; the default menu covers everyone else (and unlinked friends).
#[derive(Debug, Clone)]
#[must_use]
pub struct MenuRules {
    pub(crate) rules: Vec<(String, MenuKey)>,
    pub(crate) default: MenuKey,
}

impl MenuRules {
    /// Rules with only a default menu.
    pub fn new(default: MenuKey) -> Self {
        Self { rules: Vec::new(), default }
    }

    /// Adds a rule after the existing ones: members of `segment` (a segment registered in the
    /// [`Engine`]) get `menu`.
    pub fn rule(mut self, segment: impl Into<String>, menu: MenuKey) -> Self {
        self.rules.push((segment.into(), menu));
        self
    }

    /// The default menu.
    #[must_use]
    pub fn default_menu(&self) -> &MenuKey {
        &self.default
    }

    /// The menu for a customer, given which segments hold it.
    pub fn pick(&self, member_of: impl Fn(&str) -> bool) -> &MenuKey {
        self.rules
            .iter()
            .find(|(segment, _)| member_of(segment))
            .map_or(&self.default, |(_, key)| key)
    }

    /// The desired menu of every following friend, from the engine's current membership
    /// (friends who do not follow are left out: their menus are not touched).
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`] for a rule naming a segment the engine does not have.
    pub fn desired(
        &self,
        engine: &Engine,
        friends: &[Friend],
    ) -> Result<Vec<(LineUserId, MenuKey)>, SegmentError> {
        let sets = self
            .rules
            .iter()
            .map(|(segment, key)| Ok((engine.members(segment)?, key)))
            .collect::<Result<Vec<_>, SegmentError>>()?;
        Ok(friends
            .iter()
            .filter(|f| f.following)
            .map(|f| {
                let key = f.customer.as_ref().and_then(|c| {
                    sets.iter().find(|(members, _)| members.contains(c)).map(|(_, key)| *key)
                });
                (f.user.clone(), key.unwrap_or(&self.default).clone())
            })
            .collect())
    }

    /// The earliest instant at which any of `customers` enters or leaves a rule's segment by
    /// the passage of time alone (from [`Engine::next_change`]): when the reconciler should
    /// wake next if no data arrives. `None` when nothing changes by time alone.
    ///
    /// # Errors
    /// [`SegmentError::UnknownSegment`], [`SegmentError::UnknownCustomer`].
    pub fn next_wake<'a>(
        &self,
        engine: &Engine,
        customers: impl IntoIterator<Item = &'a CustomerId>,
    ) -> Result<Option<DateTime<Utc>>, SegmentError> {
        let mut wake: Option<DateTime<Utc>> = None;
        for id in customers {
            for (segment, _) in &self.rules {
                let at = match engine.next_change(segment, id)? {
                    NextChange::At(t) | NextChange::NotBefore(t) => t,
                    _ => continue,
                };
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        Ok(wake)
    }
}
