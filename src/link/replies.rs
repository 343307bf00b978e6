//! What enishi says in LINE around a link: small minijinja templates, Japanese by default.

use serde::Serialize;

use super::LinkError;
use super::reward::LinkIncentive;

/// What enishi replies in LINE around a link. Each text is a small template: `{{ shop }}`
/// (the shop's name), `{{ reward }}` (the incentive, e.g. `100ポイント`), `{{ code }}` (a
/// coupon code) and `{{ deadline }}` are filled in. `None` sends nothing. Each is sent once:
/// replies use the event's reply token (a redelivered event of a finished link gets none);
/// pushes carry a retry key derived from the one-time ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkReplyTexts {
    /// After the link was stored (reply).
    pub linked: Option<String>,
    /// After an incentive was granted for the link (a second message of the same reply).
    pub incentive: Option<String>,
    /// After a conflict: the accounts are linked to others; contact the shop (reply).
    pub conflict: Option<String>,
    /// After a rejected nonce (forged, used, expired, another user's): start again (reply).
    pub rejected: Option<String>,
    /// After LINE reported the link failed (someone else opened the dialog): pushed to the
    /// LINE user the link was started for, since LINE sends no reply token then.
    pub failed: Option<String>,
    /// Above the button of the unlink message (the unlink postback's reply).
    pub unlink_prompt: Option<String>,
    /// The unlink button's label (at most 20 characters).
    pub unlink_label: String,
    /// After the customer unlinked on the unlink page (pushed).
    pub unlinked: Option<String>,
}

impl Default for LinkReplyTexts {
    fn default() -> Self {
        Self {
            linked: Some(
                "{{ shop }}のアカウントと連携しました。連携はいつでも解除できます。".into(),
            ),
            incentive: Some(
                "{% if code %}連携特典の{{ reward }}をお届けします。ご注文の際にクーポンコード「{{ code }}」を入力してください。\
                 {% else %}連携特典として{{ reward }}を付与しました。{% endif %}"
                    .into(),
            ),
            conflict: Some(
                "アカウント連携ができませんでした。このLINEアカウントか{{ shop }}のアカウントが、\
                 すでに別のアカウントと連携されています。お手数ですが、{{ shop }}までお問い合わせください。"
                    .into(),
            ),
            rejected: Some(
                "アカウント連携ができませんでした。手続きの有効期限が切れたか、無効な手続きです。\
                 お手数ですが、リッチメニューからもう一度お試しください。"
                    .into(),
            ),
            failed: Some(
                "アカウント連携を完了できませんでした。ご本人のLINEアプリで操作されたかをご確認のうえ、\
                 リッチメニューからもう一度お試しください。"
                    .into(),
            ),
            unlink_prompt: Some(
                "連携を解除すると、ご注文やお届けのお知らせがLINEに届かなくなります。\
                 解除する場合は、下のボタンから手続きしてください。"
                    .into(),
            ),
            unlink_label: "連携を解除する".into(),
            unlinked: Some(
                "{{ shop }}のアカウントとの連携を解除しました。またいつでもリッチメニューから連携できます。"
                    .into(),
            ),
        }
    }
}

/// The values a reply template sees.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct ReplyVars {
    pub(super) shop: String,
    pub(super) reward: Option<String>,
    pub(super) code: Option<String>,
    pub(super) deadline: Option<String>,
}

impl ReplyVars {
    pub(super) fn with_incentive(shop: &str, incentive: Option<&LinkIncentive>) -> Self {
        Self {
            shop: shop.to_owned(),
            reward: incentive.map(|i| i.reward().label()),
            code: incentive.and_then(|i| i.reward().code().map(str::to_owned)),
            deadline: incentive.and_then(LinkIncentive::deadline_ja),
        }
    }
}

impl LinkReplyTexts {
    /// Fills `template` in; a template that fails (checked at build) sends nothing.
    pub(super) fn render(template: Option<&str>, vars: &ReplyVars) -> Option<String> {
        let template = template?;
        match minijinja::Environment::new().render_str(template, minijinja::value::Serde(vars)) {
            Ok(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            Ok(_) => None,
            Err(e) => {
                tracing::error!(target: "enishi::link", error = %e, "a LINE reply template failed");
                None
            }
        }
    }

    /// Every template compiles and renders (with and without a reward).
    pub(super) fn check(&self) -> Result<(), LinkError> {
        let points = LinkIncentive::points("check", 100);
        let coupon = LinkIncentive::coupon("check", "クーポン", "CODE");
        let env = minijinja::Environment::new();
        let texts = [
            ("linked", &self.linked),
            ("incentive", &self.incentive),
            ("conflict", &self.conflict),
            ("rejected", &self.rejected),
            ("failed", &self.failed),
            ("unlink_prompt", &self.unlink_prompt),
            ("unlinked", &self.unlinked),
        ];
        for (name, text) in texts {
            let Some(text) = text else { continue };
            for incentive in [None, Some(&points), Some(&coupon)] {
                let vars = ReplyVars::with_incentive("ショップ", incentive);
                env.render_str(text, minijinja::value::Serde(&vars)).map_err(|e| {
                    LinkError::InvalidConfig {
                        what: "LINE reply text",
                        reason: format!("{name}: {e}"),
                    }
                })?;
            }
        }
        let label = self.unlink_label.chars().count();
        if label == 0 || label > 20 {
            return Err(LinkError::InvalidConfig {
                what: "LINE reply text",
                reason: format!("unlink_label must be 1 to 20 characters, not {label}"),
            });
        }
        Ok(())
    }
}
