//! The pages a shop's customers see: linking, unlinking, tracked-link errors. Templates
//! (minijinja, HTML auto-escaped), Japanese by default, mobile-first, with the shop's name,
//! logo and colour; every text and every template can be replaced.
//!
//! Texts are small templates too: `{{ shop }}`, `{{ reward }}`, `{{ deadline }}` and
//! `{{ contact }}` are filled in. See `docs/pages.md` for every key and template.

mod texts;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use axum::http::StatusCode;
use minijinja::Environment;
use serde::Serialize;

use crate::link::{LinkIncentive, Reward};

/// The built-in templates, by name. A replacement keeps the name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("link_start.html", include_str!("templates/link_start.html")),
    ("link_login.html", include_str!("templates/link_login.html")),
    ("link_done.html", include_str!("templates/link_done.html")),
    ("link_problem.html", include_str!("templates/link_problem.html")),
    ("unlink_confirm.html", include_str!("templates/unlink_confirm.html")),
    ("unlink_done.html", include_str!("templates/unlink_done.html")),
    ("track_error.html", include_str!("templates/track_error.html")),
];

/// Where "LINEに戻る" goes when the shop sets no [`Brand::line_url`]: LINE's chat list.
pub const DEFAULT_LINE_URL: &str = "https://line.me/R/nv/chat";

/// What the pages could not be built from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PagesError {
    /// A text key that no page uses (a typo?).
    #[error("unknown page text `{key}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownText {
        /// The key given.
        key: String,
        /// The closest known key.
        suggestion: Option<String>,
    },
    /// A template name that is not one of the built-in pages.
    #[error(
        "unknown page template `{0}` (one of: base.html, macros.html, link_start.html, link_login.html, link_done.html, link_problem.html, unlink_confirm.html, unlink_done.html, track_error.html)"
    )]
    UnknownTemplate(String),
    /// A template or text does not compile or render.
    #[error("page template `{name}`: {source}")]
    Template {
        /// The template (or `text:KEY`).
        name: String,
        /// What minijinja said.
        #[source]
        source: minijinja::Error,
    },
    /// An invalid brand setting.
    #[error("brand {field}: {reason}")]
    Brand {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// The shop as its pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    name: String,
    logo_url: Option<String>,
    url: Option<String>,
    login_url: Option<String>,
    password_reset_url: Option<String>,
    contact: Option<String>,
    contact_url: Option<String>,
    line_url: Option<String>,
    primary_color: String,
}

impl Brand {
    /// A shop called `name` (shown in every title and header).
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            logo_url: None,
            url: None,
            login_url: None,
            password_reset_url: None,
            contact: None,
            contact_url: None,
            line_url: None,
            primary_color: "#00833d".into(),
        }
    }

    /// The logo shown in the header instead of the name (its `alt` is the name).
    #[must_use]
    pub fn logo_url(mut self, url: impl Into<String>) -> Self {
        self.logo_url = Some(url.into());
        self
    }

    /// The shop's top page (footer, tracked-link error page).
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The shop's sign-in page (when a page asks the customer to sign in at the shop).
    #[must_use]
    pub fn login_url(mut self, url: impl Into<String>) -> Self {
        self.login_url = Some(url.into());
        self
    }

    /// The shop's password-reset page, offered under the link form.
    #[must_use]
    pub fn password_reset_url(mut self, url: impl Into<String>) -> Self {
        self.password_reset_url = Some(url.into());
        self
    }

    /// Who to contact, as a customer reads it (e.g. `カスタマーサポート（0120-000-000）`).
    #[must_use]
    pub fn contact(mut self, contact: impl Into<String>) -> Self {
        self.contact = Some(contact.into());
        self
    }

    /// The shop's contact page (a button on the conflict page).
    #[must_use]
    pub fn contact_url(mut self, url: impl Into<String>) -> Self {
        self.contact_url = Some(url.into());
        self
    }

    /// Where "LINEに戻る" goes, e.g. `https://line.me/R/ti/p/@yourshop` (default
    /// [`DEFAULT_LINE_URL`]).
    #[must_use]
    pub fn line_url(mut self, url: impl Into<String>) -> Self {
        self.line_url = Some(url.into());
        self
    }

    /// The buttons' colour, `#rrggbb` (default `#00833d`). The button text is black or white,
    /// whichever reads better; links use the colour only where it keeps a 4.5:1 contrast.
    #[must_use]
    pub fn primary_color(mut self, color: impl Into<String>) -> Self {
        self.primary_color = color.into();
        self
    }

    /// The shop's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> Result<Colors, PagesError> {
        if self.name.trim().is_empty() {
            return Err(PagesError::Brand { field: "name", reason: "empty".into() });
        }
        for (field, url) in [
            ("logo_url", &self.logo_url),
            ("url", &self.url),
            ("login_url", &self.login_url),
            ("password_reset_url", &self.password_reset_url),
            ("contact_url", &self.contact_url),
            ("line_url", &self.line_url),
        ] {
            if let Some(url) = url {
                check_url(field, url)?;
            }
        }
        Colors::from_primary(&self.primary_color)
    }
}

/// Only absolute http(s) URLs (a `javascript:` URL in a button would be a script).
fn check_url(field: &'static str, url: &str) -> Result<(), PagesError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") => Ok(()),
        Ok(u) => Err(PagesError::Brand {
            field,
            reason: format!("scheme `{}` is not http(s)", u.scheme()),
        }),
        Err(e) => Err(PagesError::Brand { field, reason: format!("`{url}` is not a URL: {e}") }),
    }
}

#[derive(Debug, Clone, Serialize)]
struct Colors {
    primary: String,
    on_primary: &'static str,
    link: String,
}

impl Colors {
    fn from_primary(color: &str) -> Result<Self, PagesError> {
        let rgb = parse_hex(color).ok_or_else(|| PagesError::Brand {
            field: "primary_color",
            reason: format!("`{color}` is not #rrggbb"),
        })?;
        let l = luminance(rgb);
        let (on_white, on_black) = (contrast(l, 1.0), contrast(l, 0.0));
        Ok(Self {
            primary: format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]),
            on_primary: if on_white >= on_black { "#ffffff" } else { "#000000" },
            link: if on_white >= 4.5 {
                format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
            } else {
                "#1a1a1a".into()
            },
        })
    }
}

fn parse_hex(color: &str) -> Option<[u8; 3]> {
    let hex = color.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

/// WCAG relative luminance.
fn luminance(rgb: [u8; 3]) -> f64 {
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])
}

fn contrast(a: f64, b: f64) -> f64 {
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

/// Why a link page could not go on; each has its own page with a way forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The link token is unknown, used or expired: start again from the rich menu.
    LinkExpired,
    /// The LINE user or the customer is linked to someone else: contact the shop.
    Conflict,
    /// Too many attempts: wait.
    TryLater,
    /// The shop wants a second factor first: sign in at the shop.
    VerificationRequired,
    /// The shop or enishi cannot answer now.
    Unavailable,
    /// LINE Login needs the shop's own sign-in first.
    SignInRequired,
    /// LINE Login did not complete: try again.
    LoginFailed,
    /// The unlink link is unknown, used or expired.
    UnlinkExpired,
}

impl Problem {
    /// The page's HTTP status.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::LinkExpired | Self::UnlinkExpired | Self::LoginFailed => StatusCode::BAD_REQUEST,
            Self::Conflict => StatusCode::CONFLICT,
            Self::TryLater => StatusCode::TOO_MANY_REQUESTS,
            Self::VerificationRequired => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::SignInRequired => StatusCode::UNAUTHORIZED,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::LinkExpired => "expired",
            Self::Conflict => "conflict",
            Self::TryLater => "try_later",
            Self::VerificationRequired => "verification",
            Self::Unavailable => "unavailable",
            Self::SignInRequired => "signin",
            Self::LoginFailed => "login_failed",
            Self::UnlinkExpired => "unlink_expired",
        }
    }
}

/// One page to render, with what it shows.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum View<'a> {
    /// What linking shares and brings (and the incentive), with a button to the form.
    LinkStart {
        /// The link token from the rich menu's URL.
        link_token: &'a str,
        /// The incentive on offer, if any.
        incentive: Option<&'a LinkIncentive>,
    },
    /// The sign-in form; again with a message after a wrong password.
    LinkLogin {
        /// The link token.
        link_token: &'a str,
        /// The e-mail address typed before (kept after a wrong password).
        email: &'a str,
        /// Whether the last attempt had a wrong e-mail address or password.
        wrong_password: bool,
        /// The incentive on offer, if any.
        incentive: Option<&'a LinkIncentive>,
    },
    /// Linked (just now, or before).
    LinkDone {
        /// Linked before this visit.
        already_linked: bool,
        /// The reward granted for this link, if any.
        granted: Option<&'a Reward>,
    },
    /// A failure, with a way forward.
    Problem(Problem),
    /// "Unlink?" with the unlink ticket.
    UnlinkConfirm {
        /// The one-time unlink ticket from the LINE message.
        ticket: &'a str,
    },
    /// Unlinked (or there was nothing to unlink).
    UnlinkDone {
        /// Whether a link was removed.
        was_linked: bool,
    },
    /// A tracked link that is not valid.
    TrackError,
}

/// The customer pages (see `docs/pages.md`): Japanese by default, mobile-first, with the
/// shop's name, logo and colour; every text and template can be replaced. Cheap to clone.
///
/// ```
/// use enishi::app::{Brand, Pages};
///
/// let pages = Pages::builder()
///     .brand(Brand::new("縁ショップ").url("https://shop.example.jp/").primary_color("#8a3b12"))
///     .text("start_button", "会員ログインへ進む")
///     .build()?;
/// # let _ = pages;
/// # Ok::<(), enishi::app::PagesError>(())
/// ```
#[derive(Clone)]
pub struct Pages {
    inner: Arc<PagesInner>,
}

struct PagesInner {
    env: Environment<'static>,
    brand: Brand,
    colors: Colors,
    lang: String,
    text_keys: Vec<&'static str>,
}

impl fmt::Debug for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages")
            .field("brand", &self.inner.brand)
            .field("lang", &self.inner.lang)
            .finish_non_exhaustive()
    }
}

impl Default for Pages {
    fn default() -> Self {
        // The built-ins are checked by the tests below: building them cannot fail.
        match Self::builder().build() {
            Ok(pages) => pages,
            Err(e) => unreachable!("the built-in pages do not build: {e}"),
        }
    }
}

/// Builds [`Pages`]; setters never fail, [`build`](Self::build) reports the first problem.
#[derive(Debug, Clone)]
#[must_use]
pub struct PagesBuilder {
    brand: Brand,
    texts: BTreeMap<String, String>,
    templates: BTreeMap<String, String>,
    lang: String,
}

impl Pages {
    /// A builder with the built-in Japanese pages and a shop called `ショップ`.
    pub fn builder() -> PagesBuilder {
        PagesBuilder {
            brand: Brand::new("ショップ"),
            texts: BTreeMap::new(),
            templates: BTreeMap::new(),
            lang: "ja".into(),
        }
    }

    /// The shop.
    #[must_use]
    pub fn brand(&self) -> &Brand {
        &self.inner.brand
    }

    /// The HTTP status `view` is served with.
    #[must_use]
    pub fn status(view: &View<'_>) -> StatusCode {
        match view {
            View::Problem(p) => p.status(),
            View::LinkLogin { wrong_password: true, .. } => StatusCode::UNAUTHORIZED,
            View::TrackError => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        }
    }

    /// Renders `view` to HTML.
    ///
    /// # Errors
    /// [`PagesError::Template`] when a replaced template fails at render time.
    pub fn render(&self, view: &View<'_>) -> Result<String, PagesError> {
        let incentive = match view {
            View::LinkStart { incentive, .. } | View::LinkLogin { incentive, .. } => *incentive,
            _ => None,
        };
        let t = self.texts(incentive)?;
        let text = |key: &str| t.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let reward_for = |i: Option<&LinkIncentive>| {
            i.map(|i| RewardView::of(i.reward(), i.deadline().map(|_| text("reward_deadline"))))
        };
        let line_url = self.inner.brand.line_url.clone().unwrap_or_else(|| DEFAULT_LINE_URL.into());
        let mut ctx = PageContext {
            lang: &self.inner.lang,
            title: String::new(),
            shop: &self.inner.brand,
            colors: &self.inner.colors,
            line_url: line_url.clone(),
            t: &t,
            reward: None,
            granted: None,
            lead: None,
            error: None,
            link_token: None,
            login_url: None,
            form_action: None,
            email: None,
            ticket: None,
            message: None,
            actions: Vec::new(),
        };
        let template = match *view {
            View::LinkStart { link_token, incentive } => {
                ctx.title = text("start_title");
                ctx.reward = reward_for(incentive);
                ctx.login_url = Some(with_query("/link/login", "linkToken", link_token));
                "link_start.html"
            }
            View::LinkLogin { link_token, email, wrong_password, incentive } => {
                ctx.title = text("login_title");
                ctx.reward = reward_for(incentive);
                ctx.link_token = Some(link_token.into());
                ctx.email = Some(email.into());
                ctx.form_action = Some("/link".into());
                ctx.error = wrong_password.then(|| text("login_wrong"));
                "link_login.html"
            }
            View::LinkDone { already_linked, granted } => {
                let (title, lead) = if already_linked {
                    ("done_already_title", "done_already_lead")
                } else {
                    ("done_title", "done_lead")
                };
                ctx.title = text(title);
                ctx.lead = Some(text(lead));
                ctx.granted = granted.map(|r| RewardView::of(r, None));
                "link_done.html"
            }
            View::Problem(problem) => {
                let key = problem.key();
                ctx.title = text(&format!("{key}_title"));
                ctx.message = Some(text(&format!("{key}_message")));
                ctx.actions = self.actions(problem, &text, line_url);
                "link_problem.html"
            }
            View::UnlinkConfirm { ticket } => {
                ctx.title = text("unlink_title");
                ctx.ticket = Some(ticket.into());
                ctx.form_action = Some("/unlink".into());
                "unlink_confirm.html"
            }
            View::UnlinkDone { was_linked } => {
                let (title, lead) = if was_linked {
                    ("unlink_done_title", "unlink_done_lead")
                } else {
                    ("unlink_none_title", "unlink_none_lead")
                };
                ctx.title = text(title);
                ctx.lead = Some(text(lead));
                "unlink_done.html"
            }
            View::TrackError => {
                ctx.title = text("track_title");
                "track_error.html"
            }
        };
        let tmpl = self
            .inner
            .env
            .get_template(template)
            .map_err(|source| PagesError::Template { name: template.into(), source })?;
        tmpl.render(minijinja::value::Serde(&ctx))
            .map_err(|source| PagesError::Template { name: template.into(), source })
    }

    fn actions(
        &self,
        problem: Problem,
        text: &dyn Fn(&str) -> String,
        line_url: String,
    ) -> Vec<ActionView> {
        let brand = &self.inner.brand;
        let line = ActionView { href: line_url, label: text("back_to_line"), style: Some("line") };
        let shop_login = brand
            .login_url
            .clone()
            .or_else(|| brand.url.clone())
            .map(|href| ActionView { href, label: text("shop_login_button"), style: None });
        match problem {
            Problem::Conflict => {
                let contact = brand.contact_url.clone().map(|href| ActionView {
                    href,
                    label: text("contact_button"),
                    style: None,
                });
                contact.into_iter().chain([line]).collect()
            }
            Problem::VerificationRequired => shop_login.into_iter().chain([line]).collect(),
            Problem::SignInRequired => shop_login.into_iter().collect(),
            Problem::LoginFailed => {
                vec![
                    ActionView {
                        href: "/login/line".into(),
                        label: text("retry_button"),
                        style: None,
                    },
                    line,
                ]
            }
            Problem::LinkExpired
            | Problem::TryLater
            | Problem::Unavailable
            | Problem::UnlinkExpired => vec![line],
        }
    }

    /// Every text, filled in for this page.
    fn texts(
        &self,
        incentive: Option<&LinkIncentive>,
    ) -> Result<BTreeMap<&'static str, minijinja::Value>, PagesError> {
        let brand = &self.inner.brand;
        let render = |key: &str, vars: &minijinja::Value| {
            let name = format!("text:{key}");
            self.inner
                .env
                .get_template(&name)
                .and_then(|t| t.render(vars))
                .map_err(|source| PagesError::Template { name, source })
        };
        // Without the shop's contact, `{{ contact }}` reads as a generic phrase.
        let contact = match &brand.contact {
            Some(contact) => contact.clone(),
            None => render(
                "conflict_contact_fallback",
                &minijinja::context! { shop => brand.name.clone() },
            )?,
        };
        let vars = minijinja::context! {
            shop => brand.name.clone(),
            reward => incentive.map(|i| i.reward().label()),
            deadline => incentive.and_then(LinkIncentive::deadline_ja),
            contact => contact,
        };
        let mut out = BTreeMap::new();
        for &key in &self.inner.text_keys {
            let rendered = render(key, &vars)?;
            let value = if texts::LIST_KEYS.contains(&key) {
                let items: Vec<String> = rendered
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                minijinja::Value::from(items)
            } else {
                minijinja::Value::from(rendered)
            };
            out.insert(key, value);
        }
        Ok(out)
    }
}

impl PagesBuilder {
    /// The shop's name, logo, colours and URLs.
    pub fn brand(mut self, brand: Brand) -> Self {
        self.brand = brand;
        self
    }

    /// Replaces one text (see `docs/pages.md` for the keys); the value may use `{{ shop }}`,
    /// `{{ reward }}`, `{{ deadline }}` and `{{ contact }}`.
    pub fn text(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.texts.insert(key.into(), value.into());
        self
    }

    /// Replaces one built-in template (by its name, e.g. `base.html`) with minijinja source.
    pub fn template(mut self, name: impl Into<String>, source: impl Into<String>) -> Self {
        self.templates.insert(name.into(), source.into());
        self
    }

    /// The pages' `lang` attribute (default `ja`), for a shop that replaces every text.
    pub fn lang(mut self, lang: impl Into<String>) -> Self {
        self.lang = lang.into();
        self
    }

    /// Compiles every template and text and renders every page once, so a broken
    /// replacement fails here and not in front of a customer.
    ///
    /// # Errors
    /// [`PagesError`]: an unknown key or template name, a template that does not compile or
    /// render, an invalid brand setting.
    pub fn build(self) -> Result<Pages, PagesError> {
        let colors = self.brand.check()?;
        let known: Vec<&'static str> = texts::DEFAULTS.iter().map(|(k, _)| *k).collect();
        if let Some(key) = self.texts.keys().find(|k| !known.contains(&k.as_str())) {
            let suggestion = known
                .iter()
                .min_by_key(|k| strsim::levenshtein(k, key))
                .filter(|k| strsim::levenshtein(k, key) <= 3)
                .map(|k| (*k).to_owned());
            return Err(PagesError::UnknownText { key: key.clone(), suggestion });
        }
        if let Some(name) = self.templates.keys().find(|n| !TEMPLATES.iter().any(|(t, _)| t == n)) {
            return Err(PagesError::UnknownTemplate(name.clone()));
        }
        let mut env = Environment::new();
        // `.html` templates are HTML-escaped; texts are escaped where the pages print them.
        for (name, source) in TEMPLATES {
            let source = self.templates.get(*name).cloned().unwrap_or_else(|| (*source).to_owned());
            env.add_template_owned((*name).to_owned(), source)
                .map_err(|source| PagesError::Template { name: (*name).into(), source })?;
        }
        for (key, default) in texts::DEFAULTS {
            let source = self.texts.get(*key).cloned().unwrap_or_else(|| (*default).to_owned());
            let name = format!("text:{key}");
            env.add_template_owned(name.clone(), source)
                .map_err(|source| PagesError::Template { name, source })?;
        }
        let pages = Pages {
            inner: Arc::new(PagesInner {
                env,
                brand: self.brand,
                colors,
                lang: self.lang,
                text_keys: known,
            }),
        };
        for view in sample_views() {
            pages.render(&view)?;
        }
        Ok(pages)
    }
}

/// One of every page, as `build` renders them to check a replacement.
fn sample_views() -> Vec<View<'static>> {
    static POINTS: std::sync::LazyLock<LinkIncentive> =
        std::sync::LazyLock::new(|| LinkIncentive::points("sample", 100));
    let problems = [
        Problem::LinkExpired,
        Problem::Conflict,
        Problem::TryLater,
        Problem::VerificationRequired,
        Problem::Unavailable,
        Problem::SignInRequired,
        Problem::LoginFailed,
        Problem::UnlinkExpired,
    ];
    let mut views = vec![
        View::LinkStart { link_token: "sample", incentive: Some(&POINTS) },
        View::LinkStart { link_token: "sample", incentive: None },
        View::LinkLogin {
            link_token: "sample",
            email: "",
            wrong_password: true,
            incentive: Some(&POINTS),
        },
        View::LinkDone { already_linked: false, granted: Some(POINTS.reward()) },
        View::LinkDone { already_linked: true, granted: None },
        View::UnlinkConfirm { ticket: "sample" },
        View::UnlinkDone { was_linked: true },
        View::UnlinkDone { was_linked: false },
        View::TrackError,
    ];
    views.extend(problems.map(View::Problem));
    views
}

fn with_query(path: &str, key: &str, value: &str) -> String {
    let query: String =
        url::form_urlencoded::Serializer::new(String::new()).append_pair(key, value).finish();
    format!("{path}?{query}")
}

#[derive(Serialize)]
struct PageContext<'a> {
    lang: &'a str,
    title: String,
    shop: &'a Brand,
    colors: &'a Colors,
    line_url: String,
    t: &'a BTreeMap<&'static str, minijinja::Value>,
    reward: Option<RewardView>,
    granted: Option<RewardView>,
    lead: Option<String>,
    error: Option<String>,
    link_token: Option<String>,
    login_url: Option<String>,
    form_action: Option<String>,
    email: Option<String>,
    ticket: Option<String>,
    message: Option<String>,
    actions: Vec<ActionView>,
}

impl Serialize for Brand {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Brand", 7)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("logo_url", &self.logo_url)?;
        st.serialize_field("url", &self.url)?;
        st.serialize_field("login_url", &self.login_url)?;
        st.serialize_field("password_reset_url", &self.password_reset_url)?;
        st.serialize_field("contact", &self.contact)?;
        st.serialize_field("contact_url", &self.contact_url)?;
        st.end()
    }
}

#[derive(Serialize)]
struct RewardView {
    label: String,
    code: Option<String>,
    deadline_text: Option<String>,
}

impl RewardView {
    fn of(reward: &Reward, deadline_text: Option<String>) -> Self {
        Self { label: reward.label(), code: reward.code().map(str::to_owned), deadline_text }
    }
}

#[derive(Serialize)]
struct ActionView {
    href: String,
    label: String,
    style: Option<&'static str>,
}

#[cfg(test)]
mod tests;
