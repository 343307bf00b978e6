//! Routing, the outer per-request service and the accept loops.
//!
//! The fake runs its own hyper accept loop instead of `axum::serve` because an injected
//! "dropped connection" must close the socket without writing a response: the outer service
//! returns an error, and hyper then tears the connection down.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::endpoint::Endpoint;
use super::handlers;
use super::respond::{self, Marker};
use super::state::{App, Ctx, ReqId};

/// Largest body LINE accepts (larger ones get 413).
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What an endpoint handler receives besides the state and context.
#[derive(Debug)]
pub(crate) struct Input {
    pub(crate) headers: HeaderMap,
    pub(crate) query: Option<String>,
    /// Path parameters in the order they appear in the path.
    pub(crate) params: Vec<String>,
    /// The body, or `None` when it was larger than [`BODY_LIMIT`].
    pub(crate) body: Option<Bytes>,
}

impl Input {
    /// The `n`-th path parameter.
    pub(crate) fn param(&self, n: usize) -> &str {
        self.params.get(n).map_or("", String::as_str)
    }

    /// The first value of query parameter `name`.
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

pub(crate) type Handler = fn(&App, &Ctx, Input) -> Response;

/// Handles one routed request: reads the body, runs the prologue, then the endpoint.
async fn dispatch(
    app: Arc<App>,
    endpoint: Endpoint,
    handler: Handler,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    // Read the body first so the connection stays reusable whatever the answer is.
    let body = axum::body::to_bytes(body, BODY_LIMIT).await.ok();
    let params = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(raw) => raw.iter().map(|(_, value)| value.to_owned()).collect(),
        Err(_) => Vec::new(),
    };
    let request_id =
        parts.extensions.get::<ReqId>().map_or_else(|| app.new_request_id(), |r| Arc::clone(&r.0));
    let ctx = match app.begin(endpoint, request_id, &parts.headers).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    {
        let mut platform = super::state::lock(&app.platform);
        if platform.recording {
            platform.recorded.push(super::platform::RecordedRequest {
                endpoint,
                data_host: endpoint.on_data_host(),
                method: parts.method.as_str().to_owned(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(str::to_owned),
                headers: parts.headers.clone(),
                body: body.clone().unwrap_or_default(),
            });
        }
    }
    let input =
        Input { headers: parts.headers, query: parts.uri.query().map(str::to_owned), params, body };
    let response = handler(&app, &ctx, input);
    ctx.finish(response)
}

fn method_filter(method: &str) -> MethodFilter {
    match method {
        "GET" => MethodFilter::GET,
        "PUT" => MethodFilter::PUT,
        "DELETE" => MethodFilter::DELETE,
        _ => MethodFilter::POST,
    }
}

/// The router for one host: the endpoints LINE serves there, a 404 for anything else.
pub(crate) fn router(app: &Arc<App>, data_host: bool) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<Arc<App>>> = BTreeMap::new();
    for &endpoint in Endpoint::ALL.iter().filter(|e| e.on_data_host() == data_host) {
        let handler = handlers::handler(endpoint);
        let route = move |State(app): State<Arc<App>>, request: Request| {
            dispatch(app, endpoint, handler, request)
        };
        let filter = method_filter(endpoint.method());
        let method_router = match by_path.remove(endpoint.path()) {
            Some(existing) => existing.on(filter, route),
            None => on(filter, route),
        };
        by_path.insert(endpoint.path(), method_router);
    }
    let mut router = Router::new();
    for (path, method_router) in by_path {
        router = router.route(path, method_router.fallback(method_not_allowed));
    }
    router.fallback(not_found).with_state(Arc::clone(app))
}

async fn not_found(State(app): State<Arc<App>>) -> Response {
    app.stats.unmatched();
    respond::not_found()
}

async fn method_not_allowed(State(app): State<Arc<App>>) -> Response {
    app.stats.unmatched();
    respond::error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// The error the outer service returns to make hyper drop the connection.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

/// The outer service: request ID, counters, `x-line-request-id`, and dropped connections.
async fn serve_one(
    app: Arc<App>,
    mut router: Router,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<Response, DropConnection> {
    app.stats.request();
    app.count_path(request.uri().path());
    let request_id = app.new_request_id();
    let mut request = request.map(Body::new);
    request.extensions_mut().insert(ReqId(Arc::clone(&request_id)));
    let response = tower_service::Service::call(&mut router, request).await;
    let mut response = match response {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if let Some(marker) = response.extensions().get::<Marker>().copied() {
        app.stats.marker(marker);
        if marker == Marker::Drop {
            return Err(DropConnection);
        }
    }
    app.stats.status(response.status());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-line-request-id", value);
    }
    Ok(response)
}

/// Accepts connections on `listener` until `shutdown` fires (or its sender is dropped).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    router: Router,
    mut shutdown: watch::Receiver<()>,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: wait a little instead of spinning.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let router = router.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                serve_one(Arc::clone(&app), router.clone(), request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                // Errors here are dropped connections (injected or by the client): nothing to do.
                _ = connection.as_mut() => {}
                _ = shutdown.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}
