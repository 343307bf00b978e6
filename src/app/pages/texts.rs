//! The pages' default Japanese texts. Each is a small template: `{{ shop }}`, `{{ reward }}`,
//! `{{ deadline }}` and `{{ contact }}` are filled in; keys in [`LIST_KEYS`] hold one item
//! per line.

/// Every text key with its default.
pub(super) const DEFAULTS: &[(&str, &str)] = &[
    ("to_shop", "{{ shop }}のトップへ"),
    ("back_to_line", "LINEに戻る"),
    ("unlink_anytime", "連携はいつでも、LINEのメニューから解除できます。"),
    ("reward_heading", "連携特典"),
    ("reward_deadline", "{{ deadline }}までに連携された方が対象です。"),
    // The start page: what is shared, what it is for.
    ("start_title", "LINEアカウント連携"),
    ("start_lead", "{{ shop }}の会員アカウントと、LINEアカウントを連携します。"),
    ("start_shared_heading", "共有される情報"),
    (
        "start_shared",
        "LINEのユーザー識別子（{{ shop }}だけが使う番号です）\n\
         {{ shop }}の会員番号\n\
         LINEのパスワードやトーク内容が共有されることはありません",
    ),
    ("start_benefits_heading", "連携するとできること"),
    (
        "start_benefits",
        "ご注文やお届けの状況をLINEで受け取れます\n\
         ポイントや会員ランクのお知らせを受け取れます\n\
         あなたに合ったおすすめやクーポンが届きます",
    ),
    ("start_button", "ログインして連携する"),
    // The login form.
    ("login_title", "ログインして連携"),
    ("login_lead", "{{ shop }}に登録しているメールアドレスとパスワードを入力してください。"),
    ("login_email", "メールアドレス"),
    ("login_password", "パスワード"),
    ("login_button", "ログインして連携する"),
    ("login_forgot", "パスワードをお忘れの方"),
    ("login_wrong", "メールアドレスかパスワードが違います。もう一度入力してください。"),
    // Done.
    ("done_title", "連携が完了しました"),
    ("done_lead", "{{ shop }}の会員アカウントとLINEアカウントを連携しました。"),
    ("done_already_title", "すでに連携済みです"),
    ("done_already_lead", "このLINEアカウントは、{{ shop }}の会員アカウントと連携済みです。"),
    ("done_reward_heading", "連携特典をお届けしました"),
    ("done_next_heading", "これから届くお知らせ"),
    (
        "done_next",
        "ご注文の確認・発送のお知らせ\n\
         ポイントや会員ランクのお知らせ\n\
         あなたに合ったおすすめ情報",
    ),
    ("done_unlink_note", "連携の解除は、LINEのメニューからいつでもできます。"),
    // Failures, each with a way forward.
    ("expired_title", "連携用リンクの有効期限が切れました"),
    (
        "expired_message",
        "お手数ですが、もう一度LINEのリッチメニューの「アカウント連携」からお試しください。",
    ),
    ("conflict_title", "連携できませんでした"),
    (
        "conflict_message",
        "このLINEアカウント、または{{ shop }}の会員アカウントは、すでに別のアカウントと連携されています。\
         お手数ですが、{{ contact }}までお問い合わせください。",
    ),
    ("conflict_contact_fallback", "ショップのお問い合わせ窓口"),
    ("contact_button", "お問い合わせ"),
    ("try_later_title", "しばらくしてからお試しください"),
    (
        "try_later_message",
        "ログインの試行回数が上限に達しました。時間をおいて、もう一度お試しください。",
    ),
    ("verification_title", "追加の確認が必要です"),
    (
        "verification_message",
        "{{ shop }}のサイトでログインして本人確認を済ませてから、もう一度お試しください。",
    ),
    ("shop_login_button", "{{ shop }}にログイン"),
    ("unavailable_title", "ただいま連携できません"),
    (
        "unavailable_message",
        "ただいま混み合っているか、メンテナンス中です。しばらくしてから、もう一度お試しください。",
    ),
    ("signin_title", "ログインが必要です"),
    ("signin_message", "{{ shop }}にログインしてから、もう一度お試しください。"),
    ("login_failed_title", "連携できませんでした"),
    (
        "login_failed_message",
        "LINEでの確認を完了できませんでした。お手数ですが、もう一度お試しください。",
    ),
    ("retry_button", "もう一度試す"),
    // Unlink.
    ("unlink_title", "LINEアカウント連携の解除"),
    (
        "unlink_lead",
        "{{ shop }}の会員アカウントとLINEアカウントの連携を解除します。\
         解除すると、ご注文やお届けのお知らせがLINEに届かなくなります。",
    ),
    ("unlink_button", "連携を解除する"),
    ("unlink_cancel", "解除しない"),
    ("unlink_done_title", "連携を解除しました"),
    (
        "unlink_done_lead",
        "{{ shop }}の会員アカウントとLINEアカウントの連携を解除しました。\
         もう一度連携するときは、LINEのリッチメニューからどうぞ。",
    ),
    ("unlink_none_title", "連携されていません"),
    ("unlink_none_lead", "このLINEアカウントは、{{ shop }}の会員アカウントと連携されていません。"),
    ("unlink_expired_title", "このリンクは使えません"),
    (
        "unlink_expired_message",
        "連携解除用のリンクの有効期限が切れたか、すでに使われています。\
         LINEのメニューからもう一度お試しください。",
    ),
    // Tracked links.
    ("track_title", "このリンクは無効です"),
    (
        "track_message",
        "リンクが途中で切れているか、正しくありません。お手数ですが、{{ shop }}のサイトからお探しください。",
    ),
    ("track_button", "{{ shop }}のトップへ"),
];

/// Keys whose text is a list, one item per line.
pub(super) const LIST_KEYS: &[&str] = &["start_shared", "start_benefits", "done_next"];
