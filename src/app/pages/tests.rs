use super::*;

/// minijinja escapes `/` in HTML (`&#x2f;`); browsers read it back.
fn plain(html: &str) -> String {
    html.replace("&#x2f;", "/").replace("&amp;", "&")
}

fn sample_token() -> &'static str {
    "tok\"><script>alert(1)</script>"
}

#[test]
fn the_built_in_pages_build_and_are_japanese() {
    let pages = Pages::default();
    let html =
        plain(&pages.render(&View::LinkStart { link_token: "abc", incentive: None }).unwrap());
    assert!(html.contains("<html lang=\"ja\">"), "{html}");
    assert!(html.contains("name=\"viewport\""));
    assert!(html.contains("LINEアカウント連携"));
    assert!(html.contains("/link/login?linkToken=abc"));
}

#[test]
fn a_link_token_is_escaped_wherever_it_is_printed() {
    let pages = Pages::default();
    let token = sample_token();
    for view in [
        View::LinkStart { link_token: token, incentive: None },
        View::LinkLogin { link_token: token, email: token, wrong_password: true, incentive: None },
        View::UnlinkConfirm { ticket: token },
    ] {
        let html = pages.render(&view).unwrap();
        assert!(!html.contains("<script>"), "{html}");
    }
}

#[test]
fn the_incentive_and_its_deadline_show_on_the_start_page() {
    let pages = Pages::builder().brand(Brand::new("縁ショップ")).build().unwrap();
    let deadline = "2026-12-31T15:00:00Z".parse().unwrap();
    let incentive = LinkIncentive::points("link", 300).until(deadline);
    let html =
        pages.render(&View::LinkStart { link_token: "t", incentive: Some(&incentive) }).unwrap();
    assert!(html.contains("300ポイント"), "{html}");
    assert!(html.contains("2026年12月31日までに連携された方が対象です。"), "{html}");
    assert!(html.contains("縁ショップの会員アカウント"), "{html}");
}

#[test]
fn a_wrong_password_shows_the_form_again_with_the_message_and_the_address() {
    let pages = Pages::default();
    let view = View::LinkLogin {
        link_token: "t",
        email: "a@example.jp",
        wrong_password: true,
        incentive: None,
    };
    let html = plain(&pages.render(&view).unwrap());
    assert_eq!(Pages::status(&view), StatusCode::UNAUTHORIZED);
    assert!(html.contains("role=\"alert\""));
    assert!(html.contains("メールアドレスかパスワードが違います"));
    assert!(html.contains("value=\"a@example.jp\""));
    assert!(html.contains("<form method=\"post\" action=\"/link\">"));
}

#[test]
fn every_problem_offers_a_way_forward() {
    let pages = Pages::builder()
        .brand(
            Brand::new("縁")
                .url("https://shop.example.jp/")
                .contact_url("https://shop.example.jp/contact"),
        )
        .build()
        .unwrap();
    for problem in [
        Problem::LinkExpired,
        Problem::Conflict,
        Problem::TryLater,
        Problem::VerificationRequired,
        Problem::Unavailable,
        Problem::SignInRequired,
        Problem::LoginFailed,
        Problem::UnlinkExpired,
    ] {
        let html = pages.render(&View::Problem(problem)).unwrap();
        assert!(html.contains("class=\"btn"), "{problem:?} has no button: {html}");
        assert!(!html.contains("link_token"), "{problem:?} shows a developer string");
    }
    let conflict = plain(&pages.render(&View::Problem(Problem::Conflict)).unwrap());
    assert!(conflict.contains("https://shop.example.jp/contact"));
    assert!(conflict.contains("ショップのお問い合わせ窓口までお問い合わせください"), "{conflict}");
}

#[test]
fn texts_and_templates_are_overridable() {
    let pages = Pages::builder()
        .text("start_button", "{{ shop }}に進む")
        .template("track_error.html", "<p>{{ t.track_title }}!</p>")
        .brand(Brand::new("縁"))
        .build()
        .unwrap();
    let html = pages.render(&View::LinkStart { link_token: "t", incentive: None }).unwrap();
    assert!(html.contains("縁に進む"));
    assert_eq!(pages.render(&View::TrackError).unwrap(), "<p>このリンクは無効です!</p>");
}

#[test]
fn mistakes_in_the_configuration_fail_the_build() {
    let typo = Pages::builder().text("start_buton", "x").build().unwrap_err();
    assert!(typo.to_string().contains("did you mean `start_button`"), "{typo}");
    assert!(matches!(
        Pages::builder().template("nope.html", "").build(),
        Err(PagesError::UnknownTemplate(_))
    ));
    let broken = Pages::builder().template("link_done.html", "{% if %}").build().unwrap_err();
    assert!(matches!(broken, PagesError::Template { .. }), "{broken}");
    let script =
        Pages::builder().brand(Brand::new("x").url("javascript:alert(1)")).build().unwrap_err();
    assert!(script.to_string().contains("url"), "{script}");
    assert!(Pages::builder().brand(Brand::new("x").primary_color("green")).build().is_err());
    assert!(Pages::builder().brand(Brand::new(" ")).build().is_err());
}

#[test]
fn button_text_keeps_its_contrast_on_any_brand_colour() {
    let light = Colors::from_primary("#ffe600").unwrap();
    assert_eq!(light.on_primary, "#000000");
    assert_eq!(light.link, "#1a1a1a", "yellow links on white are unreadable");
    let dark = Colors::from_primary("#1d3557").unwrap();
    assert_eq!(dark.on_primary, "#ffffff");
    assert_eq!(dark.link, "#1d3557");
}
