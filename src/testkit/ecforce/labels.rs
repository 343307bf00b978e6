//! The fake's labels: `GET/POST /api/v2/admin/labels` and `PUT /api/v2/admin/labeling`,
//! shaped like the public fixtures (`labels-list-q-type-eq.json`, `labels-create.json`,
//! `labeling-partial-failure.json`): plain objects under `data`, flat request bodies, a bulk
//! result with HTTP 200 when some targets fail.
//!
//! Only `Customer` labels can be applied (the fake keeps no labels on other records). Applying
//! one edits the customer's `labels` attribute (the comma-separated names the API serves) and
//! bumps its `updated_at`; whether ecforce bumps it too is unverified.

use std::collections::HashMap;

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Edits one customer's label names; `false` when there is no such customer.
pub(super) type EditCustomer<'a> = dyn FnMut(&str, &mut dyn FnMut(&mut Vec<String>)) -> bool + 'a;

struct Label {
    id: u64,
    name: String,
    color: String,
    position: u64,
    target: String,
}

impl Label {
    fn render(&self) -> Value {
        json!({ "id": self.id, "name": self.name, "color": self.color, "position": self.position,
                "search_form_visibility": null, "type": self.target })
    }
}

/// The labels the fake holds.
#[derive(Default)]
pub(super) struct LabelBook {
    labels: Vec<Label>,
    labelings: u64,
}

impl LabelBook {
    /// `PUT admin/labeling` requests answered.
    pub(super) fn labelings(&self) -> u64 {
        self.labelings
    }

    /// `(id, name, type)` of every label.
    pub(super) fn labels(&self) -> Vec<(String, String, String)> {
        self.labels.iter().map(|l| (l.id.to_string(), l.name.clone(), l.target.clone())).collect()
    }
}

fn reply(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string())
        .into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    reply(status, &json!({ "errors": [{ "code": code, "message": message }] }))
}

fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn json_id(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| Value::from(id), Value::from)
}

/// Answers a labels request, or `None` when `segments` name another endpoint.
pub(super) fn handle(
    book: &mut LabelBook,
    method: &Method,
    segments: &[&str],
    query: &HashMap<String, String>,
    body: &Value,
    customers: &mut EditCustomer<'_>,
) -> Option<Response> {
    Some(match (method, segments) {
        (&Method::GET, ["labels"]) => list(book, query),
        (&Method::POST, ["labels"]) => create(book, body),
        (&Method::PUT, ["labeling"]) => labeling(book, body, customers),
        _ => return None,
    })
}

fn list(book: &LabelBook, query: &HashMap<String, String>) -> Response {
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    let per: usize = query.get("per").and_then(|p| p.parse().ok()).unwrap_or(20).clamp(1, 100);
    let matching: Vec<&Label> = book
        .labels
        .iter()
        .filter(|l| query.get("q[type_eq]").is_none_or(|t| *t == l.target))
        .filter(|l| query.get("q[name_eq]").is_none_or(|n| *n == l.name))
        .collect();
    let rows: Vec<Value> =
        matching.iter().skip(per * (page - 1)).take(per).map(|l| l.render()).collect();
    reply(
        StatusCode::OK,
        &json!({ "data": rows, "meta": { "total_count": matching.len(), "page": page, "per": per,
                 "count": rows.len(), "total_pages": matching.len().div_ceil(per) } }),
    )
}

fn create(book: &mut LabelBook, body: &Value) -> Response {
    let name = body["name"].as_str().map(str::trim).unwrap_or("");
    let target = body["type"].as_str().unwrap_or("");
    if name.is_empty() || target.is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ALA1001",
            "名前と種別を入力してください。",
        );
    }
    if book.labels.iter().any(|l| l.name == name && l.target == target) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "ALA1002", "名前はすでに存在します。");
    }
    let label = Label {
        id: book.labels.iter().map(|l| l.id).max().unwrap_or(0) + 1,
        name: name.to_owned(),
        color: body["color"].as_str().unwrap_or("").to_owned(),
        position: book.labels.len() as u64,
        target: target.to_owned(),
    };
    let rendered = label.render();
    book.labels.push(label);
    reply(StatusCode::CREATED, &json!({ "data": rendered }))
}

fn labeling(book: &mut LabelBook, body: &Value, customers: &mut EditCustomer<'_>) -> Response {
    book.labelings += 1;
    let target = body["type"].as_str().unwrap_or("");
    let method = body["method"].as_str().unwrap_or("");
    if !matches!(method, "add" | "remove" | "overwrite") {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "ALA0000", "methodが正しくありません。");
    }
    if target != "Customer" {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "ALA0000", "この種別は未対応です (fake)。");
    }
    let (Some(targets), Some(label_ids)) =
        (body["target_ids"].as_array(), body["label_ids"].as_array())
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ALA0000",
            "target_idsとlabel_idsは配列です。",
        );
    };
    let mut names = Vec::new();
    for id in label_ids.iter().map(id_of) {
        match book.labels.iter().find(|l| Some(l.id.to_string()) == id && l.target == target) {
            Some(l) => names.push(l.name.clone()),
            None => return error(StatusCode::NOT_FOUND, "ALA2001", "labelが見つかりません。"),
        }
    }
    let (mut success, mut failure, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for id in targets.iter().filter_map(id_of) {
        let found = customers(&id, &mut |labels: &mut Vec<String>| match method {
            "add" => {
                for n in &names {
                    if !labels.contains(n) {
                        labels.push(n.clone());
                    }
                }
            }
            "remove" => labels.retain(|l| !names.contains(l)),
            _ => labels.clone_from(&names),
        });
        if found {
            success.push(json_id(&id));
        } else {
            failure.push(json_id(&id));
            errors.push(
                json!({ "id": json_id(&id), "code": "ALA0000", "message": "エラーが発生しました。",
                "errors": [{ "code": "ALA9999", "message": "customerが見つかりません。" }] }),
            );
        }
    }
    let mut doc = json!({ "success": success });
    if !failure.is_empty() {
        doc["failure"] = failure.into();
        doc["errors"] = errors.into();
    }
    reply(StatusCode::OK, &doc)
}
