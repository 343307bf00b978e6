//! What the chatbot says: minijinja templates, Japanese by default, each replaceable.

use std::collections::BTreeMap;

use minijinja::Environment;
use serde::Serialize;

use super::ChatError;
use super::router::CustomerContext;
use crate::clock::{format_jst_date_ja, jst};
use crate::commerce::{OrderState, SubscriptionState};

/// Every reply key with its default. Variables: `shop`, `name`, `orders` (`number`, `date`,
/// `status`, `total`), `subscriptions` (`name`, `next`), `points`, `points_expire`, `rank`,
/// `next_rank`, `next_rank_remaining`, `question`, `answer`.
pub(crate) const DEFAULTS: &[(&str, &str)] = &[
    (
        "order_status",
        "{{ name }}さまの最近のご注文です。\n{% for o in orders %}・{{ o.date }} ご注文{% if o.number %}（{{ o.number }}）{% endif %}: {{ o.status }}{% if o.total %} {{ o.total }}円{% endif %}\n{% endfor %}詳しくはマイページでご確認いただけます。",
    ),
    ("order_none", "{{ name }}さまのご注文は、まだ見つかりませんでした。"),
    (
        "next_delivery",
        "{{ name }}さまの定期便です。\n{% for s in subscriptions %}・{{ s.name }}: 次回お届け {{ s.next }}\n{% endfor %}スキップやお届け日の変更はマイページからどうぞ。",
    ),
    ("next_none", "{{ name }}さまのご利用中の定期便はありません。"),
    ("skip_ask", "{{ item }}の次回のお届け（{{ date }}）をスキップしますか？"),
    ("skip_done", "{{ item }}の次回のお届けをスキップしました。その次のお届けは通常どおりです。"),
    ("skip_unavailable", "スキップやお届け日の変更は、マイページからお手続きください。"),
    (
        "skip_failed",
        "ただいまお手続きできませんでした。しばらくしてからもう一度お試しいただくか、マイページからお手続きください。",
    ),
    (
        "points",
        "{{ name }}さまのポイントは {{ points }} ポイントです。{% if points_expire %}\n有効期限: {{ points_expire }}{% endif %}",
    ),
    (
        "rank",
        "{{ name }}さまの会員ランクは「{{ rank }}」です。{% if next_rank %}\nあと {{ next_rank_remaining }}円のお買い物で「{{ next_rank }}」になります。{% endif %}",
    ),
    (
        "link_invite",
        "{{ shop }}の会員アカウントと連携すると、ご注文状況やポイントをLINEでご確認いただけます。",
    ),
    ("already_linked", "すでに{{ shop }}の会員アカウントと連携済みです。"),
    ("not_linked", "{{ shop }}の会員アカウントとはまだ連携されていません。"),
    (
        "opt_out",
        "お知らせの配信を停止しました。ご注文に関するご連絡は引き続きお届けします。再開するときは「配信再開」と送ってください。",
    ),
    ("opt_in", "お知らせの配信を再開しました。"),
    (
        "help",
        "次のようなことをお手伝いできます。\n・注文状況\n・次回お届け（定期便）\n・ポイント\n・会員ランク\n・連携 / 連携解除\n・配信停止\n・担当者と話したい",
    ),
    (
        "handoff",
        "担当者におつなぎします。順番にご案内しますので、このままメッセージをお送りください。",
    ),
    (
        "handoff_staff",
        "【担当者対応】{{ user }}{% if name %}（{{ name }}さま）{% endif %}が担当者を希望しています。\n最新のメッセージ: {{ text }}\n対応を終えたら「#bot {{ user }}」と送ってください。",
    ),
    ("handback", "担当者との対応が終わりました。ご用件があれば、またお気軽にどうぞ。"),
    (
        "welcome",
        "友だち追加ありがとうございます！{{ shop }}です。ご注文状況やポイントをLINEでご確認いただけます。",
    ),
    (
        "fallback",
        "すみません、うまく理解できませんでした。「ヘルプ」と送ると、できることをご案内します。",
    ),
    (
        "not_text",
        "メッセージありがとうございます。お問い合わせは文字でお送りください。「ヘルプ」と送ると、できることをご案内します。",
    ),
    (
        "survey_needs_link",
        "アンケートにお答えいただくには、{{ shop }}の会員アカウントとの連携が必要です。",
    ),
    ("survey_thanks", "ご回答ありがとうございました！"),
];

/// Quick-reply labels (at most 20 characters each).
pub(crate) const QUICK: &[(&str, &str)] = &[
    ("order_status", "注文状況"),
    ("next_delivery", "次回お届け"),
    ("points", "ポイント"),
    ("handoff", "担当者と話す"),
    ("link", "アカウント連携"),
];

/// The templates, with the shop's overrides.
#[derive(Debug)]
pub(crate) struct Texts {
    env: Environment<'static>,
    shop: String,
}

impl Texts {
    pub(crate) fn new(shop: &str, overrides: &BTreeMap<String, String>) -> Result<Self, ChatError> {
        let known: Vec<&str> = DEFAULTS.iter().map(|(k, _)| *k).collect();
        if let Some(key) = overrides.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ChatError::Config(format!("unknown chat text `{key}`")));
        }
        let mut env = Environment::new();
        for (key, default) in DEFAULTS {
            let source = overrides.get(*key).cloned().unwrap_or_else(|| (*default).to_owned());
            env.add_template_owned((*key).to_owned(), source)
                .map_err(|e| ChatError::Config(format!("chat text `{key}`: {e}")))?;
        }
        let texts = Self { env, shop: shop.to_owned() };
        for (key, _) in DEFAULTS {
            texts
                .render(key, &Vars::default())
                .map_err(|e| ChatError::Config(format!("chat text `{key}`: {e}")))?;
        }
        Ok(texts)
    }

    pub(crate) fn render(&self, key: &str, vars: &Vars) -> Result<String, minijinja::Error> {
        let mut vars = vars.clone();
        vars.shop = self.shop.clone();
        let text = self.env.get_template(key)?.render(minijinja::value::Serde(&vars))?;
        Ok(text.trim().to_owned())
    }
}

/// The values a reply template sees.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Vars {
    pub(crate) shop: String,
    pub(crate) name: String,
    pub(crate) user: String,
    pub(crate) text: String,
    pub(crate) orders: Vec<OrderLine>,
    pub(crate) subscriptions: Vec<SubscriptionLine>,
    pub(crate) points: Option<i64>,
    pub(crate) points_expire: Option<String>,
    pub(crate) rank: Option<String>,
    pub(crate) next_rank: Option<String>,
    pub(crate) next_rank_remaining: Option<i64>,
    pub(crate) item: String,
    pub(crate) date: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct OrderLine {
    number: Option<String>,
    date: String,
    status: &'static str,
    total: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SubscriptionLine {
    name: String,
    next: String,
}

impl Vars {
    pub(crate) fn of(customer: Option<&CustomerContext>) -> Self {
        let Some(c) = customer else { return Self { name: "お客".into(), ..Self::default() } };
        let orders = c
            .orders
            .iter()
            .map(|o| OrderLine {
                number: Some(o.id.clone()),
                date: o.ordered_at.map_or_else(
                    || "-".into(),
                    |t| t.with_timezone(&jst()).format("%-m/%-d").to_string(),
                ),
                status: order_status(o),
                total: o.total.as_ref().map(|m| m.minor),
            })
            .collect();
        let subscriptions = c
            .subscriptions
            .iter()
            .filter(|s| s.state == SubscriptionState::Active)
            .map(|s| SubscriptionLine {
                name: s
                    .items
                    .first()
                    .and_then(|i| i.name.clone())
                    .unwrap_or_else(|| "定期便".into()),
                next: s.next_delivery_at.map_or_else(|| "未定".into(), format_jst_date_ja),
            })
            .collect();
        Self {
            name: c.name.clone().unwrap_or_else(|| "お客".into()),
            orders,
            subscriptions,
            points: c.points,
            points_expire: c.points_expire_at.map(format_jst_date_ja),
            rank: c.rank.clone(),
            next_rank: c.next_rank.as_ref().map(|(n, _)| n.clone()),
            next_rank_remaining: c.next_rank.as_ref().map(|(_, r)| *r),
            ..Self::default()
        }
    }
}

fn order_status(o: &crate::commerce::Order) -> &'static str {
    if o.state == OrderState::Canceled {
        "キャンセル"
    } else if o.delivered_at.is_some() {
        "お届け済み"
    } else if o.shipped_at.is_some() {
        "発送済み"
    } else if o.state == OrderState::Completed {
        "手配済み"
    } else {
        "準備中"
    }
}
