//! The harness itself, on pages served here: it finds every fault of a bad page, none on a
//! clean one, checks the document's status, takes steps through a form, and fails loudly when
//! its browser is missing.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};

use super::browser::{PageReport, PageSpec, Spec, Step, Viewport, audit, run};

/// Serves `app` on a free local port; the base URL, without a trailing slash.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[track_caller]
fn assert_fault(result: &PageReport, needle: &str) {
    let faults = result.faults();
    assert!(
        faults.iter().any(|f| f.contains(needle)),
        "no fault containing {needle:?} for {} at {:?}; the faults: {faults:#?}",
        result.name,
        result.viewport
    );
}

#[track_caller]
fn assert_clean(result: &PageReport) {
    assert_eq!(result.faults(), Vec::<String>::new(), "{result:#?}");
}

/// Everything wrong at once.
const BAD: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>壊れたページ</title></head>
<body>
<p style="color:#bbb;background:#fff">薄くて読めない文字</p>
<img src="/missing.png">
<button style="height:24px">送信</button>
<input type="text" name="email" aria-label="メールアドレス" style="font-size:13px">
<div style="width:1200px">横にはみ出す箱</div>
<script>console.error("bad page: logged");</script>
<script>throw new Error("bad page: thrown");</script>
</body></html>"#;

/// A page with nothing wrong: language, viewport, labels, 16 px inputs, 48 px targets, contrast.
fn clean_page(title: &str, main: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<style>
body {{ margin: 0; padding: 16px; color: #1a1a1a; background: #fff; line-height: 1.6;
       font-family: "Noto Sans CJK JP", sans-serif; }}
main {{ max-width: 480px; margin: 0 auto; }}
label {{ display: block; margin: 16px 0 4px; font-size: 16px; }}
input {{ box-sizing: border-box; width: 100%; min-height: 48px; padding: 8px; font-size: 16px;
        border: 1px solid #555; border-radius: 6px; }}
button, .button {{ box-sizing: border-box; display: block; width: 100%; min-height: 48px;
        margin-top: 24px; padding: 12px; font-size: 16px; text-align: center;
        text-decoration: none; color: #fff; background: #00703c; border: 0; border-radius: 6px; }}
</style></head>
<body><main>{main}</main></body></html>"#
    )
}

fn link_page() -> String {
    clean_page(
        "LINE連携のご案内",
        r#"<h1>LINEアカウントと連携</h1>
<p>ショップの会員情報とLINEアカウントを連携すると、お届け状況をLINEでお知らせします。</p>
<form method="post" action="/submit">
<label for="name">お名前</label>
<input id="name" name="name" type="text" autocomplete="name" required>
<label for="email">メールアドレス</label>
<input id="email" name="email" type="email" autocomplete="email">
<button type="submit">連携する</button>
</form>
<a class="button" href="/privacy">個人情報の取り扱い</a>"#,
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn submit(body: Bytes) -> Redirect {
    let name = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let query: String =
        url::form_urlencoded::Serializer::new(String::new()).append_pair("name", &name).finish();
    Redirect::to(&format!("/done?{query}"))
}

async fn done(Query(q): Query<HashMap<String, String>>) -> Html<String> {
    let name = escape(q.get("name").map_or("", String::as_str));
    Html(clean_page("連携が完了しました", &format!("<h1>{name} さん、連携が完了しました</h1>")))
}

async fn site() -> String {
    let not_found = clean_page("ページが見つかりません", "<h1>ページが見つかりません</h1>");
    let app = Router::new()
        .route("/bad", get(|| async { Html(BAD) }))
        .route("/link", get(|| async { Html(link_page()) }))
        .route("/gone", get(move || async move { (StatusCode::NOT_FOUND, Html(not_found)) }))
        .route("/submit", post(submit))
        .route("/done", get(done));
    serve(app).await
}

#[tokio::test]
async fn pages_harness_reports_layout_faults() {
    let base = site().await;
    let report = audit(&Spec::new(vec![PageSpec::new("bad", format!("{base}/bad"))])).await;

    let phone = report.result("bad", Viewport::PHONE);
    let desktop = report.result("bad", Viewport::DESKTOP);
    for result in [phone, desktop] {
        assert_eq!(result.status, Some(200));
        assert_eq!(result.title.as_deref(), Some("壊れたページ"));
        assert_fault(result, "missing <html lang>");
        assert_fault(result, "missing <meta name=\"viewport\">");
        assert_fault(result, "small touch target: button \"送信\" is ");
        assert_fault(result, "x24 px");
        assert_fault(
            result,
            "small input font: input[type=\"text\"][name=\"email\"] \"メールアドレス\" has 13 px",
        );
        assert_fault(result, "console error: bad page: logged");
        assert_fault(result, "uncaught page error: Error: bad page: thrown");
        assert_fault(result, &format!("failed request: GET {base}/missing.png (image): HTTP 404"));
        assert_fault(result, "axe critical image-alt");
        assert_fault(result, "axe serious color-contrast");
        assert_fault(result, "axe serious html-has-lang");
        assert!(result.faults().iter().all(|f| {
            f.starts_with(&format!("bad {}x{}: ", result.viewport.width, result.viewport.height))
        }));
    }
    // Without a viewport tag a phone lays the page out 980 px wide, and the 1,200 px box
    // overflows that; a 1,280 px desktop has room for it.
    assert_fault(phone, "horizontal scroll: the content is ");
    assert_eq!(phone.client_width, Some(980), "{phone:#?}");
    assert!(!desktop.faults().iter().any(|f| f.contains("horizontal scroll")), "{desktop:#?}");
    // Chromium's own "Failed to load resource" console line for the image is not counted twice.
    assert!(phone.console_errors.iter().all(|e| !e.text.starts_with("Failed to load")));
}

#[tokio::test]
async fn pages_harness_reports_a_narrow_page_overflow() {
    // With a proper viewport tag a phone's layout is 390 px wide; a 1,200 px box scrolls it.
    let app = Router::new().route(
        "/wide",
        get(|| async {
            Html(clean_page("横長", r#"<h1>横長</h1><div style="width:1200px">横に長い</div>"#))
        }),
    );
    let base = serve(app).await;
    let spec = Spec {
        viewports: vec![Viewport::PHONE],
        pages: vec![PageSpec::new("wide", format!("{base}/wide"))],
    };
    let report = audit(&spec).await;
    let phone = report.result("wide", Viewport::PHONE);
    assert_eq!(phone.client_width, Some(390), "{phone:#?}");
    assert_eq!(
        phone.faults(),
        vec![format!(
            "wide 390x844: horizontal scroll: the content is {} px wide in a 390 px wide layout",
            phone.scroll_width.unwrap()
        )]
    );
    assert!(phone.scroll_width.unwrap() >= 1200);
}

#[tokio::test]
async fn pages_harness_passes_a_clean_page() {
    let base = site().await;
    let shots = std::env::temp_dir().join(format!("enishi-pages-{}", uuid::Uuid::new_v4()));
    let spec =
        Spec::new(vec![PageSpec::new("link", format!("{base}/link")).screenshot_dir(&shots)]);
    let report = audit(&spec).await;

    assert_eq!(report.results.len(), 2);
    assert_eq!(report.faults(), Vec::<String>::new(), "{report:#?}");
    for viewport in [Viewport::PHONE, Viewport::DESKTOP] {
        let result = report.result("link", viewport);
        assert_clean(result);
        assert_eq!(result.status, Some(200));
        assert_eq!(result.lang.as_deref(), Some("ja"));
        assert_eq!(result.title.as_deref(), Some("LINE連携のご案内"));
        let text = result.text.as_deref().unwrap();
        assert!(text.contains("LINEアカウントと連携"), "{text}");
        assert!(text.contains("個人情報の取り扱い"), "{text}");
        let file: PathBuf = shots.join(format!("link-{}x{}.png", viewport.width, viewport.height));
        assert_eq!(result.screenshot.as_deref(), Some(file.as_path()));
        let png = std::fs::read(&file).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is no PNG", file.display());
    }
    std::fs::remove_dir_all(&shots).unwrap();
}

#[tokio::test]
async fn pages_harness_checks_the_document_status() {
    let base = site().await;
    // A port nothing listens on: the page cannot load, and the report says so.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let spec = Spec::new(vec![
        PageSpec::new("gone-expected", format!("{base}/gone")).expect_status(404),
        PageSpec::new("gone", format!("{base}/gone")),
        PageSpec::new("link-expected-gone", format!("{base}/link")).expect_status(404),
        PageSpec::new("refused", format!("http://{closed}/link")),
    ]);
    let report = audit(&spec).await;

    for viewport in [Viewport::PHONE, Viewport::DESKTOP] {
        let (w, h) = (viewport.width, viewport.height);
        let expected = report.result("gone-expected", viewport);
        assert_eq!(expected.status, Some(404));
        assert_clean(expected);
        assert_eq!(
            report.result("gone", viewport).faults(),
            vec![format!("gone {w}x{h}: main document status 404")]
        );
        assert_eq!(
            report.result("link-expected-gone", viewport).faults(),
            vec![format!("link-expected-gone {w}x{h}: main document status 200, expected 404")]
        );
        let refused = report.result("refused", viewport).faults();
        assert_eq!(refused.len(), 1, "{refused:#?}");
        assert!(refused[0].starts_with(&format!("refused {w}x{h}: could not be audited: ")));
        assert!(refused[0].contains("ERR_CONNECTION_REFUSED"), "{refused:#?}");
    }
}

#[tokio::test]
async fn pages_harness_runs_steps() {
    let base = site().await;
    let page = PageSpec::new("link-submit", format!("{base}/link"))
        .step(Step::fill("#name", "山田 花子"))
        .step(Step::fill("#email", "hanako@example.jp"))
        .step(Step::click("button[type=submit]"))
        .step(Step::wait_for_url("/done"));
    let report = audit(&Spec::new(vec![page])).await;

    for viewport in [Viewport::PHONE, Viewport::DESKTOP] {
        let result = report.result("link-submit", viewport);
        assert_clean(result);
        let done = format!("{base}/done?name=%E5%B1%B1%E7%94%B0+%E8%8A%B1%E5%AD%90");
        assert_eq!(result.final_url.as_deref(), Some(done.as_str()), "{result:#?}");
        assert_eq!(result.status, Some(200));
        assert_eq!(result.title.as_deref(), Some("連携が完了しました"));
        assert_eq!(result.text.as_deref(), Some("山田 花子 さん、連携が完了しました"));
        let urls: Vec<&str> = result.documents.iter().map(|d| d.url.as_str()).collect();
        assert_eq!(urls.first(), Some(&format!("{base}/link").as_str()), "{result:#?}");
        assert_eq!(urls.last(), Some(&done.as_str()), "{result:#?}");
    }
}

#[tokio::test]
async fn pages_harness_fails_loudly_without_chromium() {
    let spec = Spec::new(vec![PageSpec::new("none", "http://127.0.0.1:9/")]);
    let error = run(&spec, &[("ENISHI_CHROMIUM", "/nonexistent/chromium")]).await.unwrap_err();
    assert!(error.contains("no Chromium at /nonexistent/chromium"), "{error}");
    assert!(error.contains("apt-get install chromium fonts-noto-cjk"), "{error}");
}
