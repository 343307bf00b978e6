//! The customer's pages: linking (start, sign-in, done, each failure), unlinking, LINE Login.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::{Problem, View};
use super::{Enishi, Pages};
use crate::commerce::Password;
use crate::line::LinkToken;
use crate::link::{CallbackParams, LinkError, LoginFailure, OneTimeSecret, TicketKind, client_ip};

/// The most a form may weigh.
const FORM_LIMIT: usize = 16 * 1024;

/// A page as the customer's browser gets it: never cached (tokens ride in URLs and forms),
/// never framed, scripts refused.
pub(super) fn page(app: &Enishi, view: &View<'_>) -> Response {
    let (status, body) = match app.inner.pages.render(view) {
        Ok(html) => (Pages::status(view), html),
        Err(e) => {
            tracing::error!(target: "enishi::app", error = %e, "a customer page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, FALLBACK.to_owned())
        }
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; \
                 base-uri 'none'; frame-ancestors 'none'",
            ),
        ),
    ];
    (status, headers, body).into_response()
}

/// What a customer sees when even a page template fails (never a developer string).
const FALLBACK: &str = "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>エラー</title></head>\
<body style=\"font-family:sans-serif;font-size:16px;margin:24px\"><h1>ただいま表示できません</h1>\
<p>しばらくしてから、もう一度お試しください。</p></body></html>";

fn param<'a>(query: &'a [(String, String)], key: &str) -> &'a str {
    query.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
}

/// Whether a link token can still be used, and whether its LINE user is linked already.
enum TokenState {
    Usable,
    AlreadyLinked,
    Unusable,
    Unavailable,
}

async fn token_state(app: &Enishi, token: &str) -> TokenState {
    let Some(linker) = &app.inner.linker else { return TokenState::Unavailable };
    if token.is_empty() {
        return TokenState::Unusable;
    }
    let key = OneTimeSecret::from_received(token).key();
    let store = linker.store();
    match store.peek_ticket(TicketKind::LinkToken, &key, None, app.now()).await {
        Ok(ticket) => match ticket.line_user {
            Some(user) => match store.link_of_user(&user).await {
                Ok(Some(_)) => TokenState::AlreadyLinked,
                Ok(None) => TokenState::Usable,
                Err(_) => TokenState::Unavailable,
            },
            None => TokenState::Unusable,
        },
        Err(crate::link::LinkStoreError::Rejected { .. }) => TokenState::Unusable,
        Err(e) => {
            tracing::error!(target: "enishi::link", error = %e, "the link page could not read the link token");
            TokenState::Unavailable
        }
    }
}

/// `GET /link?linkToken=…`: what linking shares and brings, and the incentive.
pub(super) async fn link_start(
    State(app): State<Enishi>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let token = param(&q, "linkToken");
    match token_state(&app, token).await {
        TokenState::Usable => {
            page(&app, &View::LinkStart { link_token: token, incentive: app.open_incentive() })
        }
        state => token_problem(&app, state),
    }
}

/// `GET /link/login?linkToken=…`: the sign-in form.
pub(super) async fn link_login(
    State(app): State<Enishi>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let token = param(&q, "linkToken");
    match token_state(&app, token).await {
        TokenState::Usable => page(
            &app,
            &View::LinkLogin {
                link_token: token,
                email: "",
                wrong_password: false,
                incentive: app.open_incentive(),
            },
        ),
        state => token_problem(&app, state),
    }
}

fn token_problem(app: &Enishi, state: TokenState) -> Response {
    match state {
        TokenState::AlreadyLinked => {
            page(app, &View::LinkDone { already_linked: true, granted: None })
        }
        TokenState::Unavailable => page(app, &View::Problem(Problem::Unavailable)),
        TokenState::Usable | TokenState::Unusable => {
            page(app, &View::Problem(Problem::LinkExpired))
        }
    }
}

/// `POST /link`: signs the customer in and sends the browser on to LINE's account-link
/// dialog; a wrong password shows the form again, every other failure its own page.
pub(super) async fn link_submit(
    State(app): State<Enishi>,
    request: axum::extract::Request,
) -> Response {
    let Some(linker) = app.inner.linker.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let headers: HeaderMap = request.headers().clone();
    let Ok(body) = axum::body::to_bytes(request.into_body(), FORM_LIMIT).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let (token, email) = (param(&form, "linkToken"), param(&form, "email"));
    let peer_ip = peer.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.ip());
    let client = client_ip(peer_ip, &headers, app.inner.forwarded_for);
    let password = Password::new(param(&form, "password").to_owned());
    let link_token = LinkToken::from_received(token.to_owned());
    match linker.complete_with_password(&link_token, email, &password, client, app.now()).await {
        // 303: the browser GETs LINE's dialog, which checks the LINE user and calls the webhook.
        Ok(issued) => Redirect::to(issued.redirect.as_str()).into_response(),
        Err(e) => login_failed(&app, &e, token, email),
    }
}

fn login_failed(app: &Enishi, e: &LinkError, token: &str, email: &str) -> Response {
    let failure = e.login_failure();
    if failure == LoginFailure::Unavailable {
        tracing::error!(target: "enishi::link", error = %e, "link sign-in failed");
    }
    let problem = match failure {
        LoginFailure::WrongCredentials => {
            let view = View::LinkLogin {
                link_token: token,
                email,
                wrong_password: true,
                incentive: app.open_incentive(),
            };
            return page(app, &view);
        }
        LoginFailure::LinkUnusable => Problem::LinkExpired,
        LoginFailure::TryLater { .. } => Problem::TryLater,
        LoginFailure::VerificationRequired => Problem::VerificationRequired,
        LoginFailure::Conflict => Problem::Conflict,
        _ => Problem::Unavailable,
    };
    let mut response = page(app, &View::Problem(problem));
    if let LoginFailure::TryLater { retry_after: Some(wait) } = failure {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
    }
    response
}

/// `GET /unlink?ticket=…`: "unlink?" for the LINE user the ticket was issued to.
pub(super) async fn unlink_confirm(
    State(app): State<Enishi>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let Some(linker) = &app.inner.linker else { return StatusCode::NOT_FOUND.into_response() };
    let ticket = param(&q, "ticket");
    match linker.unlink_ticket_user(ticket, app.now()).await {
        Ok(_) => page(&app, &View::UnlinkConfirm { ticket }),
        Err(e) => unlink_failed(&app, &e),
    }
}

/// `POST /unlink`: unlinks, tells the user in LINE, shows that it is done.
pub(super) async fn unlink_submit(
    State(app): State<Enishi>,
    request: axum::extract::Request,
) -> Response {
    let Some(linker) = app.inner.linker.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(body) = axum::body::to_bytes(request.into_body(), FORM_LIMIT).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    match linker.finish_unlink(param(&form, "ticket"), app.now()).await {
        Ok(done) => {
            if let Some(removed) = &done.removed {
                app.menus_after_change(std::slice::from_ref(&removed.line_user)).await;
            }
            page(&app, &View::UnlinkDone { was_linked: done.removed.is_some() })
        }
        Err(e) => unlink_failed(&app, &e),
    }
}

fn unlink_failed(app: &Enishi, e: &LinkError) -> Response {
    if e.reject_reason().is_some() {
        return page(app, &View::Problem(Problem::UnlinkExpired));
    }
    tracing::error!(target: "enishi::link", error = %e, "unlink failed");
    page(app, &View::Problem(Problem::Unavailable))
}

/// `GET /login/line`: LINE Login for the customer signed in to the shop.
pub(super) async fn login_start(State(app): State<Enishi>, headers: HeaderMap) -> Response {
    let Some((login, session)) = &app.inner.line_login else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(customer) = session.customer(&headers) else {
        return page(&app, &View::Problem(Problem::SignInRequired));
    };
    match login.authorize(&customer, app.now()).await {
        Ok(url) => Redirect::to(url.as_str()).into_response(),
        Err(e) => {
            tracing::error!(target: "enishi::link", error = %e, "LINE Login could not start");
            page(&app, &View::Problem(Problem::Unavailable))
        }
    }
}

/// `GET /login/line/callback`: links, then the done page (with the incentive granted).
pub(super) async fn login_callback(
    State(app): State<Enishi>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let Some((login, session)) = &app.inner.line_login else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(customer) = session.customer(&headers) else {
        return page(&app, &View::Problem(Problem::SignInRequired));
    };
    match login.callback(&params, &customer, app.now()).await {
        Ok(linked) => {
            app.menus_after_change(std::slice::from_ref(&linked.outcome.link().line_user)).await;
            let granted = linked.incentive.as_ref().and_then(|i| i.granted());
            let view = View::LinkDone { already_linked: !linked.outcome.is_new(), granted };
            page(&app, &view)
        }
        Err(e) => {
            tracing::warn!(target: "enishi::link", error = %e, "LINE Login callback refused");
            let conflict = matches!(
                &e,
                crate::link::LoginError::Link(LinkError::Store(
                    crate::link::LinkStoreError::Conflict(_)
                ))
            ) || matches!(
                &e,
                crate::link::LoginError::Store(crate::link::LinkStoreError::Conflict(_))
            );
            let problem = if conflict { Problem::Conflict } else { Problem::LoginFailed };
            page(&app, &View::Problem(problem))
        }
    }
}

/// The tracked-link error page as the `track_route` serves it.
pub(super) fn track_error_page(pages: &Pages) -> String {
    pages.render(&View::TrackError).unwrap_or_else(|_| FALLBACK.to_owned())
}
