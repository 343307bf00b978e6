//! Product content: product cards as a Flex carousel per customer, template variables, and the
//! recommendation step that adds the carousel to campaign and scenario batches.

use std::fmt::Write as _;

use crate::campaign::{Batch, LinkContext, LinkTracker, TrackError, Vars};
use crate::line::Validator;
use crate::line::message::{
    Action, FlexBox, FlexBubble, FlexButton, FlexButtonStyle, FlexContainer, FlexImage, FlexText,
    FlexWeight, Message, limits,
};
use crate::{CampaignId, CustomerId};

use super::data::Catalogue;
use super::data::PurchaseLog;
use super::model::{CoPurchaseModel, Recommendation};
use super::ranking::Ranked;

/// LINE's size limit for one bubble's JSON (Flex Message reference: 30 KB).
pub const FLEX_BUBBLE_JSON_MAX: usize = 30 * 1024;
/// LINE's size limit for a carousel's JSON (Flex Message reference: 50 KB).
pub const FLEX_CAROUSEL_JSON_MAX: usize = 50 * 1024;
/// Product names longer than this (in characters) are shortened with `…` on cards.
pub const CARD_NAME_MAX: usize = 40;

/// Product content could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The product URL pattern is not an absolute http(s) URL with an `{id}` placeholder.
    #[error("the product URL pattern {0:?} must be an absolute http(s) URL containing {{id}}")]
    ProductUrl(String),
    /// An option is out of range.
    #[error("{0}")]
    Option(String),
    /// A tracked link could not be made.
    #[error("tracked link: {0}")]
    Track(#[from] TrackError),
    /// The built message breaks a LINE limit (a bug: the builder keeps within them).
    #[error("the product message breaks LINE's limits: {0}")]
    Invalid(String),
    /// The batch already holds LINE's maximum of messages per request.
    #[error("batch {0} already holds {max} messages", max = limits::MESSAGES_MAX)]
    BatchFull(String),
}

/// One product card: a product and the line shown under its price (a reason, a rank).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Card {
    /// The product's ID (or code or SKU).
    pub product: String,
    /// The line under the price (`〇〇を購入された方に人気`, `1位`).
    pub note: Option<String>,
}

impl Card {
    /// A card for a product.
    #[must_use]
    pub fn new(product: impl Into<String>, note: Option<String>) -> Self {
        Self { product: product.into(), note }
    }

    /// The card of a recommendation, its reason as the note.
    #[must_use]
    pub fn from_recommendation(r: &Recommendation, catalogue: &Catalogue) -> Self {
        Self::new(r.product.clone(), Some(r.reason.explain(catalogue)))
    }

    /// The card of a ranked product (`1位 · 120個`).
    #[must_use]
    pub fn from_ranked(r: &Ranked) -> Self {
        Self::new(r.product.clone(), Some(format!("{}位", r.rank)))
    }
}

/// How product cards look and where they link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductCards {
    product_url: String,
    title: String,
    button_label: String,
    empty_text: String,
    max_cards: usize,
    min_cards: usize,
}

/// Builds [`ProductCards`]; setters never fail, [`build`](Self::build) checks.
#[derive(Debug, Clone)]
#[must_use]
pub struct ProductCardsBuilder {
    inner: ProductCards,
}

impl ProductCards {
    /// A builder; `product_url` is the product page with `{id}` where the product ID goes
    /// (`https://shop.example/products/{id}`).
    pub fn builder(product_url: impl Into<String>) -> ProductCardsBuilder {
        ProductCardsBuilder {
            inner: Self {
                product_url: product_url.into(),
                title: "あなたへのおすすめ".into(),
                button_label: "商品を見る".into(),
                empty_text: "ただいまご案内できるおすすめ商品がありません。またのご来店をお待ちしております。"
                    .into(),
                max_cards: 10,
                min_cards: 1,
            },
        }
    }

    /// The product page of a product.
    #[must_use]
    pub fn product_url(&self, id: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        self.product_url.replace("{id}", &encoded)
    }

    /// The message for these cards: a carousel of up to `max_cards` bubbles (cards of
    /// products missing from the catalogue are skipped), or the fallback text when fewer than
    /// `min_cards` remain. With a tracker, every link is a tracked link for `context`.
    ///
    /// # Errors
    /// [`ContentError::Track`] when a product URL cannot be tracked.
    pub fn message(
        &self,
        catalogue: &Catalogue,
        cards: &[Card],
        tracking: Option<(&LinkTracker, &LinkContext)>,
    ) -> Result<Message, ContentError> {
        let mut bubbles = Vec::new();
        let mut names = Vec::new();
        for card in cards {
            if bubbles.len() >= self.max_cards {
                break;
            }
            let Some(item) = catalogue.get(&card.product) else { continue };
            let url = self.product_url(&item.id);
            let link = match tracking {
                Some((t, ctx)) => t.tracked_url(ctx, &url)?,
                None => url,
            };
            if link.len() > limits::ACTION_URI_MAX {
                continue;
            }
            let bubble = self.bubble(item, card.note.as_deref(), &link);
            let size = serde_json::to_vec(&bubble).map_or(usize::MAX, |b| b.len());
            if size > FLEX_BUBBLE_JSON_MAX {
                continue;
            }
            names.push(short(&item.name, 20));
            bubbles.push(bubble);
        }
        // Keep the whole carousel within LINE's size limit.
        while bubbles.len() > 1 {
            let json = serde_json::to_vec(&FlexContainer::carousel(bubbles.clone()))
                .map_or(usize::MAX, |b| b.len());
            if json <= FLEX_CAROUSEL_JSON_MAX {
                break;
            }
            bubbles.pop();
            names.pop();
        }
        if bubbles.len() < self.min_cards.max(1) {
            return Ok(Message::text(self.empty_text.clone()));
        }
        let alt = alt_text(&self.title, &names);
        let message = Message::flex(alt, FlexContainer::carousel(bubbles));
        let mut v = Validator::new();
        message.validate(&mut v);
        v.finish().map_err(|e| ContentError::Invalid(e.to_string()))?;
        Ok(message)
    }

    fn bubble(
        &self,
        item: &super::data::CatalogueItem,
        note: Option<&str>,
        link: &str,
    ) -> FlexBubble {
        let mut body = vec![
            FlexText::new(short(&item.name, CARD_NAME_MAX))
                .with_weight(FlexWeight::Bold)
                .with_size("md")
                .with_wrap(true)
                .with_max_lines(2)
                .into(),
        ];
        if let Some(yen) = item.price_yen {
            body.push(FlexText::new(format!("{}（税込）", yen_text(yen))).with_size("sm").into());
        }
        if let Some(note) = note.filter(|n| !n.is_empty()) {
            body.push(
                FlexText::new(short(note, 60))
                    .with_size("xs")
                    .with_color("#888888")
                    .with_wrap(true)
                    .into(),
            );
        }
        let button =
            FlexButton::new(Action::uri(short(&self.button_label, limits::ACTION_LABEL_MAX), link))
                .with_style(FlexButtonStyle::Primary);
        let mut bubble = FlexBubble::new()
            .with_size(crate::line::message::FlexBubbleSize::Kilo)
            .with_body(FlexBox::vertical(body).with_spacing("sm"))
            .with_footer(FlexBox::vertical([button.into()]));
        if let Some(image) = item
            .image_url
            .as_deref()
            .filter(|u| u.starts_with("https://") && u.len() <= limits::MEDIA_URL_MAX)
        {
            bubble = bubble.with_hero(
                FlexImage::new(image)
                    .with_size("full")
                    .with_aspect_ratio("1:1")
                    .with_aspect_mode("cover")
                    .with_action(Action::uri("商品", link)),
            );
        }
        bubble
    }
}

impl ProductCardsBuilder {
    /// The title at the start of the alt text (default `あなたへのおすすめ`).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.inner.title = title.into();
        self
    }

    /// The button label (default `商品を見る`).
    pub fn button_label(mut self, label: impl Into<String>) -> Self {
        self.inner.button_label = label.into();
        self
    }

    /// The text sent instead of a carousel when too few products remain.
    pub fn empty_text(mut self, text: impl Into<String>) -> Self {
        self.inner.empty_text = text.into();
        self
    }

    /// At most this many cards (1 to 12, LINE's carousel limit; default 10).
    pub fn max_cards(mut self, n: usize) -> Self {
        self.inner.max_cards = n;
        self
    }

    /// At least this many cards, else the fallback text (default 1).
    pub fn min_cards(mut self, n: usize) -> Self {
        self.inner.min_cards = n;
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    /// [`ContentError::ProductUrl`] for a URL pattern that is not http(s) or lacks `{id}`;
    /// [`ContentError::Option`] for counts outside 1..=12, a label over LINE's 20 characters
    /// or an empty text.
    pub fn build(self) -> Result<ProductCards, ContentError> {
        let c = self.inner;
        let probe = c.product_url.replace("{id}", "1");
        let ok = c.product_url.contains("{id}")
            && (probe.starts_with("https://") || probe.starts_with("http://"))
            && url::Url::parse(&probe).is_ok();
        if !ok {
            return Err(ContentError::ProductUrl(c.product_url));
        }
        let max = limits::FLEX_CAROUSEL_BUBBLES_MAX;
        if !(1..=max).contains(&c.max_cards) || !(1..=c.max_cards).contains(&c.min_cards) {
            return Err(ContentError::Option(format!(
                "cards must satisfy 1 <= min_cards ({}) <= max_cards ({}) <= {max}",
                c.min_cards, c.max_cards
            )));
        }
        let label = c.button_label.encode_utf16().count();
        if label == 0 || label > limits::ACTION_LABEL_MAX {
            return Err(ContentError::Option(format!(
                "the button label must be 1 to {} characters",
                limits::ACTION_LABEL_MAX
            )));
        }
        if c.empty_text.trim().is_empty() || c.title.trim().is_empty() {
            return Err(ContentError::Option(
                "the title and the empty text must not be empty".into(),
            ));
        }
        Ok(c)
    }
}

/// `¥1,980`.
#[must_use]
pub fn yen_text(yen: i64) -> String {
    let digits = yen.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + 4);
    if yen < 0 {
        out.push('-');
    }
    out.push('¥');
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn alt_text(title: &str, names: &[String]) -> String {
    let mut alt = format!("{title}: ");
    for (i, n) in names.iter().enumerate() {
        let piece = if i == 0 { n.clone() } else { format!("、{n}") };
        if alt.encode_utf16().count() + piece.encode_utf16().count() + 12
            > limits::FLEX_ALT_TEXT_MAX
        {
            let _ = write!(alt, " ほか{}件", names.len() - i);
            return alt;
        }
        alt.push_str(&piece);
    }
    alt
}

/// Template variables for recommendations (for text messages next to, or instead of, the
/// carousel): `<prefix>.count`, `<prefix>.names` (`A、B、C`), and for each `n` from 1:
/// `<prefix>.<n>.id`, `.name`, `.price` (`¥1,980`), `.reason`, `.url`.
#[must_use]
pub fn recommendation_vars(
    prefix: &str,
    recs: &[Recommendation],
    catalogue: &Catalogue,
    cards: &ProductCards,
) -> Vars {
    let mut vars = Vars::new();
    let mut names = Vec::new();
    let mut n = 0;
    for r in recs {
        let Some(item) = catalogue.get(&r.product) else { continue };
        n += 1;
        vars.insert(format!("{prefix}.{n}.id"), item.id.clone());
        vars.insert(format!("{prefix}.{n}.name"), item.name.clone());
        vars.insert(
            format!("{prefix}.{n}.price"),
            item.price_yen.map(yen_text).unwrap_or_default(),
        );
        vars.insert(format!("{prefix}.{n}.reason"), r.reason.explain(catalogue));
        vars.insert(format!("{prefix}.{n}.url"), cards.product_url(&item.id));
        names.push(item.name.clone());
    }
    vars.insert(format!("{prefix}.count"), n.to_string());
    vars.insert(format!("{prefix}.names"), names.join("、"));
    vars
}

/// Which products a recommendation step shows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pick {
    /// UC-14: products bought with `product` ("A buyers → B").
    BoughtWith {
        /// A.
        product: String,
    },
    /// UC-17: the customer's personal picks.
    Personal,
    /// UC-18: the ranking given to [`ProductContent::ranking`].
    Ranking,
}

/// What a recommendation step reads: the catalogue, the purchases and model, the current
/// ranking and, optionally, the link tracker.
#[derive(Debug, Clone, Copy)]
pub struct ProductContent<'a> {
    /// The catalogue.
    pub catalogue: &'a Catalogue,
    /// The purchase log the model was built from.
    pub log: &'a PurchaseLog,
    /// The co-purchase model.
    pub model: &'a CoPurchaseModel,
    /// The ranking for [`Pick::Ranking`] (e.g. this week's best-sellers).
    pub ranking: &'a [Ranked],
    /// Tracks every product link per recipient when set.
    pub tracker: Option<&'a LinkTracker>,
}

/// A recommendation step: adds a product carousel, built per recipient, to the batches of one
/// campaign (or scenario, and optionally one of its steps) before they are enqueued.
#[derive(Debug, Clone)]
pub struct RecommendationStep {
    campaign: CampaignId,
    step: Option<String>,
    pick: Pick,
    cards: ProductCards,
}

impl RecommendationStep {
    /// A step for every batch of `campaign` (a scenario's campaign is
    /// [`Scenario::campaign`](crate::campaign::scenario::Scenario::campaign)).
    #[must_use]
    pub fn new(campaign: CampaignId, pick: Pick, cards: ProductCards) -> Self {
        Self { campaign, step: None, pick, cards }
    }

    /// Only batches of this scenario step.
    #[must_use]
    pub fn only_step(mut self, step: impl Into<String>) -> Self {
        self.step = Some(step.into());
        self
    }

    /// Whether the step applies to a batch.
    #[must_use]
    pub fn applies_to(&self, batch: &Batch) -> bool {
        batch.campaign == self.campaign
            && self
                .step
                .as_ref()
                .is_none_or(|s| LinkContext::step_of(&batch.id).as_ref() == Some(s))
    }

    /// The cards for one customer.
    #[must_use]
    pub fn cards_for(
        &self,
        content: &ProductContent<'_>,
        customer: Option<&CustomerId>,
    ) -> Vec<Card> {
        let k = self.cards.max_cards;
        let c = content.catalogue;
        match &self.pick {
            Pick::BoughtWith { product } => content
                .model
                .bought_with(content.log, c, customer, product, k)
                .iter()
                .map(|r| Card::from_recommendation(r, c))
                .collect(),
            Pick::Personal => match customer {
                Some(id) => content
                    .model
                    .recommend(content.log, c, id, k)
                    .iter()
                    .map(|r| Card::from_recommendation(r, c))
                    .collect(),
                None => Vec::new(),
            },
            Pick::Ranking => content
                .ranking
                .iter()
                .filter(|r| c.get(&r.product).is_some_and(super::data::CatalogueItem::available))
                .take(k)
                .map(Card::from_ranked)
                .collect(),
        }
    }

    /// Adds the carousel (or the fallback text) to a batch this step applies to; returns
    /// whether it did. A push batch gets its recipient's own products and tracked links; a
    /// multicast batch (same content for all) only suits [`Pick::Ranking`] and gets untracked
    /// links.
    ///
    /// # Errors
    /// [`ContentError::BatchFull`] when the batch already holds 5 messages;
    /// [`ContentError::Track`] when a link cannot be tracked.
    pub fn apply(
        &self,
        batch: &mut Batch,
        content: &ProductContent<'_>,
    ) -> Result<bool, ContentError> {
        if !self.applies_to(batch) {
            return Ok(false);
        }
        if batch.messages.len() >= limits::MESSAGES_MAX {
            return Err(ContentError::BatchFull(batch.id.to_string()));
        }
        let single = (batch.recipients.len() == 1).then(|| &batch.recipients[0].customer);
        let cards = self.cards_for(content, single);
        let context = single.map(|c| {
            let mut ctx = LinkContext::new(batch.campaign.clone(), c.clone());
            if let Some(step) = LinkContext::step_of(&batch.id) {
                ctx = ctx.with_step(step);
            }
            ctx
        });
        let tracking = content.tracker.zip(context.as_ref());
        let message = self.cards.message(content.catalogue, &cards, tracking)?;
        batch.messages.push(message);
        Ok(true)
    }

    /// [`apply`](Self::apply) to every batch (e.g. a scenario tick's); returns how many got
    /// a carousel.
    ///
    /// # Errors
    /// The first batch's [`ContentError`].
    pub fn apply_all(
        &self,
        batches: &mut [Batch],
        content: &ProductContent<'_>,
    ) -> Result<usize, ContentError> {
        let mut n = 0;
        for b in batches {
            if self.apply(b, content)? {
                n += 1;
            }
        }
        Ok(n)
    }
}
