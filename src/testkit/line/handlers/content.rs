//! Content users sent, on the data host: the bytes (streamed in 64 KiB chunks), the preview,
//! and the preparation status.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use crate::testkit::line::respond;
use crate::testkit::line::server::Input;
use crate::testkit::line::state::{App, Ctx, lock};

const CHUNK: usize = 64 * 1024;

fn not_found() -> Response {
    respond::error(StatusCode::NOT_FOUND, "Not found")
}

/// A streamed body of `data` in chunks, so a client reading it sees more than one frame.
fn streamed(content_type: &str, data: Bytes) -> Response {
    let length = data.len();
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> = (0..length)
        .step_by(CHUNK)
        .map(|start| Ok(data.slice(start..(start + CHUNK).min(length))))
        .collect();
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

pub(super) fn content(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let platform = lock(&app.platform);
    match platform.contents.get(input.param(0)) {
        Some(c) if c.transcoding == "succeeded" => streamed(&c.content_type, c.data.clone()),
        // Not ready (or failed): LINE has nothing to give yet.
        Some(_) => not_found(),
        None => not_found(),
    }
}

pub(super) fn preview(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let platform = lock(&app.platform);
    match platform.contents.get(input.param(0)).and_then(|c| c.preview.clone()) {
        Some(preview) => streamed("image/jpeg", preview),
        None => not_found(),
    }
}

pub(super) fn transcoding(app: &App, _ctx: &Ctx, input: Input) -> Response {
    let platform = lock(&app.platform);
    match platform.contents.get(input.param(0)) {
        Some(c) => respond::json(StatusCode::OK, &json!({ "status": c.transcoding })),
        None => not_found(),
    }
}
