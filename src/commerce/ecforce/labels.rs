//! Labels (ラベル) write-back: `GET/POST admin/labels` and `PUT admin/labeling`, so the shop's
//! staff see "LINE連携済み" and chosen segments as labels in ecforce's admin (opt-in: nothing
//! here runs unless the host calls it).
//!
//! Shapes follow the public Go client `zero-color/ecforce-go` (`admin/labels.go` and its
//! tests): labels are plain objects (not JSON:API) under `data`; create and labeling bodies are
//! flat (`{type, name, color}`, `{type, method, target_ids, label_ids}`); labeling answers a
//! bulk result `{success, failure, errors}` with HTTP 200 even when some rows fail. Not
//! verified on a real shop: whether the create body must be wrapped (`{"label": {…}}`), the
//! largest `target_ids` list (see [`LabelSync::chunk_size`]), and whether labeling bumps the
//! customer's `updated_at` (which decides whether the poll sync sees the change).

use super::client::Call;
use std::collections::HashSet;
use std::fmt;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::EcforceClient;
use super::de;
use super::wire::BACKEND;
use crate::CustomerId;
use crate::commerce::backend::CommerceResult;
use crate::commerce::error::CommerceError;
use crate::commerce::model::{Customer, compare_ids};

/// The label enishi puts on customers linked to LINE.
pub const LINE_LINKED_LABEL: &str = "LINE連携済み";

/// What kind of record a label is for (ecforce's `type`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LabelTarget {
    /// `Customer`.
    Customer,
    /// `Order`.
    Order,
    /// `SubsOrder` (subscription contracts).
    SubsOrder,
    /// `Product`.
    Product,
    /// `Url` (advertising URLs).
    Url,
    /// `Template` (LP templates).
    Template,
    /// A type this crate does not know (as sent).
    Unknown(String),
}

impl LabelTarget {
    /// The type's name on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Customer => "Customer",
            Self::Order => "Order",
            Self::SubsOrder => "SubsOrder",
            Self::Product => "Product",
            Self::Url => "Url",
            Self::Template => "Template",
            Self::Unknown(s) => s,
        }
    }

    /// The target for a wire name.
    #[must_use]
    pub fn parse(name: &str) -> Self {
        match name {
            "Customer" => Self::Customer,
            "Order" => Self::Order,
            "SubsOrder" => Self::SubsOrder,
            "Product" => Self::Product,
            "Url" => Self::Url,
            "Template" => Self::Template,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

/// How `PUT admin/labeling` changes the targets' labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LabelingMethod {
    /// Adds the labels, keeping the others.
    Add,
    /// Removes the labels, keeping the others.
    Remove,
    /// Replaces all of the targets' labels (also those staff set by hand): use with care.
    Overwrite,
}

impl LabelingMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Overwrite => "overwrite",
        }
    }
}

/// A label as ecforce lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EcforceLabel {
    /// The label's ID (a number on the wire).
    pub id: String,
    /// Its name as shown in the admin.
    pub name: String,
    /// Its colour (`#FFFFFF`), when set.
    pub color: Option<String>,
    /// Its position in the admin's list.
    pub position: Option<i64>,
    /// What it labels.
    pub target: LabelTarget,
}

#[derive(Deserialize)]
struct LabelWire {
    #[serde(default, deserialize_with = "de::opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    color: Option<String>,
    #[serde(default, deserialize_with = "de::opt_i64")]
    position: Option<i64>,
    #[serde(rename = "type", default, deserialize_with = "de::opt_string")]
    kind: Option<String>,
}

impl LabelWire {
    fn into_label(self, fallback: &LabelTarget) -> Option<EcforceLabel> {
        Some(EcforceLabel {
            id: self.id.filter(|s| !s.is_empty())?,
            name: self.name.unwrap_or_default(),
            color: self.color.filter(|c| !c.is_empty()),
            position: self.position,
            target: self.kind.as_deref().map_or_else(|| fallback.clone(), LabelTarget::parse),
        })
    }
}

#[derive(Deserialize)]
struct LabelPage {
    #[serde(default)]
    data: Vec<Value>,
    #[serde(default)]
    meta: Option<PageMeta>,
}

#[derive(Deserialize)]
struct PageMeta {
    #[serde(default, deserialize_with = "de::opt_i64")]
    total_pages: Option<i64>,
}

/// One record `PUT admin/labeling` could not label.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LabelingFailure {
    /// The record's ID.
    pub id: String,
    /// ecforce's error codes and messages (`ALA0000: エラーが発生しました。; ALA9999: …`), empty
    /// when it gave none.
    pub message: String,
}

/// What `PUT admin/labeling` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LabelingResult {
    /// Records labeled (as ecforce reported them; when it reports nothing, every requested
    /// record that did not fail).
    pub succeeded: Vec<String>,
    /// Records that failed, with why.
    pub failed: Vec<LabelingFailure>,
}

#[derive(Deserialize)]
struct BulkWire {
    #[serde(default)]
    success: Option<Vec<Value>>,
    #[serde(default)]
    failure: Vec<Value>,
    #[serde(default)]
    errors: Vec<BulkError>,
}

#[derive(Deserialize)]
struct BulkError {
    #[serde(default)]
    id: Value,
    #[serde(default, deserialize_with = "de::opt_string")]
    code: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<Self>,
}

impl BulkError {
    fn describe(&self, out: &mut Vec<String>) {
        if self.code.is_some() || self.message.is_some() {
            out.push(format!(
                "{}: {}",
                self.code.as_deref().unwrap_or("?"),
                self.message.as_deref().unwrap_or("")
            ));
        }
        for nested in &self.errors {
            nested.describe(out);
        }
    }
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// IDs as ecforce takes them: numbers (as the Go client sends `[]int64`), or strings when not
/// numeric.
fn wire_ids(ids: &[&str]) -> Vec<Value> {
    ids.iter().map(|id| id.parse::<u64>().map_or_else(|_| Value::from(*id), Value::from)).collect()
}

fn decode_error(field: &str, reason: String, body: &str) -> CommerceError {
    let cut = body.char_indices().nth(2048).map_or(body.len(), |(i, _)| i);
    CommerceError::Decode {
        backend: BACKEND,
        field: field.into(),
        reason,
        body: body[..cut].into(),
    }
}

fn parse_bulk(body: &str, requested: &[&str]) -> CommerceResult<LabelingResult> {
    if body.trim().is_empty() {
        return Ok(LabelingResult {
            succeeded: requested.iter().map(|s| (*s).to_owned()).collect(),
            failed: Vec::new(),
        });
    }
    let wire: BulkWire =
        serde_json::from_str(body).map_err(|e| decode_error("(labeling)", e.to_string(), body))?;
    let mut failed: Vec<LabelingFailure> = wire
        .errors
        .iter()
        .filter_map(|e| {
            let mut parts = Vec::new();
            e.describe(&mut parts);
            Some(LabelingFailure { id: id_text(&e.id)?, message: parts.join("; ") })
        })
        .collect();
    for id in wire.failure.iter().filter_map(id_text) {
        if !failed.iter().any(|f| f.id == id) {
            failed.push(LabelingFailure { id, message: String::new() });
        }
    }
    let succeeded = match wire.success {
        Some(ids) => ids.iter().filter_map(id_text).collect(),
        None => requested
            .iter()
            .filter(|id| !failed.iter().any(|f| f.id == **id))
            .map(|s| (*s).to_owned())
            .collect(),
    };
    Ok(LabelingResult { succeeded, failed })
}

impl EcforceClient {
    /// Every label for `target` (`GET admin/labels?q[type_eq]=…`, all pages).
    ///
    /// # Errors
    /// As the request fails; [`CommerceError::Decode`] for a body that is not a label list.
    pub async fn labels(&self, target: &LabelTarget) -> CommerceResult<Vec<EcforceLabel>> {
        self.list_labels(target, None).await
    }

    /// The label for `target` named exactly `name`, if there is one.
    ///
    /// # Errors
    /// As [`labels`](Self::labels).
    pub async fn find_label(
        &self,
        target: &LabelTarget,
        name: &str,
    ) -> CommerceResult<Option<EcforceLabel>> {
        // `q[name_eq]` narrows the read; the exact match is checked here in case it is ignored.
        let found = self.list_labels(target, Some(name)).await?;
        Ok(found.into_iter().find(|l| l.name == name && l.target == *target))
    }

    async fn list_labels(
        &self,
        target: &LabelTarget,
        name: Option<&str>,
    ) -> CommerceResult<Vec<EcforceLabel>> {
        const PER: usize = 100;
        let mut labels = Vec::new();
        for page in 1..=1000u32 {
            let mut q = vec![
                ("page", page.to_string()),
                ("per", PER.to_string()),
                ("q[type_eq]", target.as_str().to_owned()),
            ];
            if let Some(name) = name {
                q.push(("q[name_eq]", name.to_owned()));
            }
            let (_, _, body) = self
                .send(
                    Method::GET,
                    "api/v2/admin/labels.json",
                    &q,
                    None,
                    Call::idempotent(self.retry()),
                )
                .await?;
            let doc: LabelPage = serde_json::from_str(&body)
                .map_err(|e| decode_error("(labels)", e.to_string(), &body))?;
            let count = doc.data.len();
            for raw in doc.data {
                let label = serde_json::from_value::<LabelWire>(raw)
                    .ok()
                    .and_then(|w| w.into_label(target));
                labels.extend(label);
            }
            let last_page =
                doc.meta.and_then(|m| m.total_pages).is_some_and(|total| i64::from(page) >= total);
            if count < PER || last_page {
                break;
            }
        }
        Ok(labels)
    }

    /// Creates a label (`POST admin/labels`, body `{type, name, color}`). Never retried once
    /// sent (a retry could create it twice); [`LabelSync`] looks a label up before creating it.
    ///
    /// # Errors
    /// [`CommerceError::Conflict`] when ecforce refuses it (422); others as the request fails.
    pub async fn create_label(
        &self,
        target: &LabelTarget,
        name: &str,
        color: Option<&str>,
    ) -> CommerceResult<EcforceLabel> {
        let mut body = json!({ "type": target.as_str(), "name": name });
        if let Some(color) = color {
            body["color"] = color.into();
        }
        let (_, _, text) = self
            .send(
                Method::POST,
                "api/v2/admin/labels.json",
                &[],
                Some(&body),
                Call::once(self.retry()),
            )
            .await?;
        #[derive(Deserialize)]
        struct Created {
            data: Option<LabelWire>,
        }
        let created: Created = serde_json::from_str(&text)
            .map_err(|e| decode_error("(label)", e.to_string(), &text))?;
        created
            .data
            .and_then(|w| w.into_label(target))
            .ok_or_else(|| decode_error("data.id", "missing".into(), &text))
    }

    /// Adds, removes or overwrites labels on records (`PUT admin/labeling`). Some records may
    /// fail while others succeed (ecforce answers 200 either way): see
    /// [`LabelingResult::failed`].
    ///
    /// # Errors
    /// As the request fails (a 422 for the whole request is [`CommerceError::Conflict`]).
    pub async fn apply_labels(
        &self,
        target: &LabelTarget,
        method: LabelingMethod,
        target_ids: &[&str],
        label_ids: &[&str],
    ) -> CommerceResult<LabelingResult> {
        let body = json!({
            "type": target.as_str(),
            "method": method.as_str(),
            "target_ids": wire_ids(target_ids),
            "label_ids": wire_ids(label_ids),
        });
        // Setting labels is idempotent, so a retry is safe.
        let (status, _, text) = self
            .send(
                Method::PUT,
                "api/v2/admin/labeling.json",
                &[],
                Some(&body),
                Call::idempotent(self.retry()),
            )
            .await?;
        if status == StatusCode::NO_CONTENT {
            return parse_bulk("", target_ids);
        }
        parse_bulk(&text, target_ids)
    }
}

/// Why a label name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label name {name:?}: {reason}")]
pub struct InvalidLabelName {
    /// The name given.
    pub name: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Keeps one customer label in ecforce in step with a set of customers: makes sure the label
/// exists, then adds it to the customers who should have it and removes it from those who
/// should not, touching nobody else and no other label.
///
/// ```no_run
/// use std::collections::HashSet;
/// use enishi::commerce::{EcforceClient, LabelSync};
/// # async fn run(linked: HashSet<enishi::CustomerId>, labeled: HashSet<enishi::CustomerId>)
/// #     -> Result<(), Box<dyn std::error::Error>> {
/// let shop = EcforceClient::builder("https://shop.example.com", "api-token").build()?;
/// // `labeled`: who has the label now (e.g. from the synced customers' `labels`).
/// let report = LabelSync::line_linked().run(&shop, labeled, linked).await?;
/// println!("+{} -{}", report.added.len(), report.removed.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct LabelSync {
    name: String,
    color: Option<String>,
    chunk: usize,
}

/// What a [`LabelSync::run`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LabelSyncReport {
    /// The label.
    pub label: EcforceLabel,
    /// Whether it was created by this run.
    pub created: bool,
    /// Customers the label was added to.
    pub added: Vec<CustomerId>,
    /// Customers the label was removed from.
    pub removed: Vec<CustomerId>,
    /// Customers ecforce could not label or unlabel (run again later; an unknown customer
    /// stays here).
    pub failed: Vec<LabelingFailure>,
}

impl LabelSync {
    /// The default number of customers per `PUT admin/labeling` (ecforce's limit is unknown).
    pub const DEFAULT_CHUNK: usize = 100;

    /// A sync of the customer label `name`.
    ///
    /// # Errors
    /// When the name is empty, longer than 255 characters, or holds a comma (ecforce lists a
    /// customer's labels as one comma-separated string, so such a name could not be read back).
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidLabelName> {
        let name = name.into();
        let bad = |reason| Err(InvalidLabelName { name: name.clone(), reason });
        if name.trim().is_empty() {
            return bad("empty");
        }
        if name.chars().count() > 255 {
            return bad("longer than 255 characters");
        }
        if name.contains(',') {
            return bad("holds a comma (customer labels are read back as a comma-separated list)");
        }
        Ok(Self { name, color: None, chunk: Self::DEFAULT_CHUNK })
    }

    /// The "LINE連携済み" label ([`LINE_LINKED_LABEL`]).
    pub fn line_linked() -> Self {
        Self { name: LINE_LINKED_LABEL.to_owned(), color: None, chunk: Self::DEFAULT_CHUNK }
    }

    /// The colour given to the label when this sync creates it (`#06C755`).
    pub fn color(mut self, color: impl Into<String>) -> Self {
        self.color = Some(color.into());
        self
    }

    /// Customers per labeling request (default [`DEFAULT_CHUNK`](Self::DEFAULT_CHUNK); at
    /// least 1).
    pub fn chunk_size(mut self, customers: usize) -> Self {
        self.chunk = customers.max(1);
        self
    }

    /// The label's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a synced customer carries the label (from its `labels` attribute): the way to
    /// learn who has it now.
    #[must_use]
    pub fn holds(&self, customer: &Customer) -> bool {
        customer.labels.iter().any(|l| l.trim() == self.name)
    }

    /// Who to add the label to and who to remove it from, each in ID order.
    #[must_use]
    pub fn diff(
        current: &HashSet<CustomerId>,
        wanted: &HashSet<CustomerId>,
    ) -> (Vec<CustomerId>, Vec<CustomerId>) {
        let sorted = |ids: HashSet<&CustomerId>| {
            let mut ids: Vec<CustomerId> = ids.into_iter().cloned().collect();
            ids.sort_by(|a, b| compare_ids(a.as_str(), b.as_str()));
            ids
        };
        (sorted(wanted.difference(current).collect()), sorted(current.difference(wanted).collect()))
    }

    /// Makes the label exist, then applies the difference between `current` (who has it now)
    /// and `wanted` (who should). Nothing is sent when they agree.
    ///
    /// # Errors
    /// The first failed request; what was applied before it stays applied (running again
    /// completes it).
    pub async fn run(
        &self,
        client: &EcforceClient,
        current: impl IntoIterator<Item = CustomerId>,
        wanted: impl IntoIterator<Item = CustomerId>,
    ) -> CommerceResult<LabelSyncReport> {
        let current: HashSet<CustomerId> = current.into_iter().collect();
        let wanted: HashSet<CustomerId> = wanted.into_iter().collect();
        let target = LabelTarget::Customer;
        let (label, created) = match client.find_label(&target, &self.name).await? {
            Some(label) => (label, false),
            None => (client.create_label(&target, &self.name, self.color.as_deref()).await?, true),
        };
        let (add, remove) = Self::diff(&current, &wanted);
        let mut report = LabelSyncReport {
            label,
            created,
            added: Vec::new(),
            removed: Vec::new(),
            failed: Vec::new(),
        };
        for (ids, method) in [(add, LabelingMethod::Add), (remove, LabelingMethod::Remove)] {
            for chunk in ids.chunks(self.chunk) {
                let refs: Vec<&str> = chunk.iter().map(CustomerId::as_str).collect();
                let result = client
                    .apply_labels(&target, method, &refs, &[report.label.id.as_str()])
                    .await?;
                let done = chunk
                    .iter()
                    .filter(|id| result.succeeded.iter().any(|s| s == id.as_str()))
                    .cloned();
                match method {
                    LabelingMethod::Remove => report.removed.extend(done),
                    _ => report.added.extend(done),
                }
                report.failed.extend(result.failed);
            }
        }
        Ok(report)
    }
}

impl fmt::Display for LabelTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecforce_labeling_partial_failure_is_read_per_record() {
        let body = r#"{"success": [1, 2, 3], "failure": [4, 5], "errors": [
            {"id": 4, "code": "ALA0000", "message": "エラーが発生しました。",
             "errors": [{"code": "ALA3999", "message": "商品が重複しています"}]},
            {"id": 5, "code": "ALA0000", "message": "エラーが発生しました。",
             "errors": [{"code": "ALA9999", "message": "予期せぬエラーが発生しました。"}]}]}"#;
        let r = parse_bulk(body, &["1", "2", "3", "4", "5"]).unwrap();
        assert_eq!(r.succeeded, ["1", "2", "3"]);
        assert_eq!(r.failed.len(), 2);
        assert_eq!(r.failed[0].id, "4");
        assert!(
            r.failed[0].message.contains("ALA3999: 商品が重複しています"),
            "{}",
            r.failed[0].message
        );
        // No `success` list: everything requested that did not fail.
        let r = parse_bulk(r#"{"failure":[2]}"#, &["1", "2"]).unwrap();
        assert_eq!(r.succeeded, ["1"]);
        assert_eq!(r.failed, [LabelingFailure { id: "2".into(), message: String::new() }]);
    }

    #[test]
    fn ecforce_label_names_are_validated() {
        assert!(LabelSync::new("").is_err());
        assert!(LabelSync::new("VIP,休眠").is_err());
        assert!(LabelSync::new("x".repeat(256)).is_err());
        assert_eq!(LabelSync::new("セグメント: 休眠").unwrap().name(), "セグメント: 休眠");
        assert_eq!(LabelSync::line_linked().name(), "LINE連携済み");
    }

    #[test]
    fn ecforce_label_diff_touches_only_the_difference() {
        let ids = |v: &[&str]| v.iter().map(|s| CustomerId::new(*s).unwrap()).collect();
        let (add, remove) = LabelSync::diff(&ids(&["1", "2", "10"]), &ids(&["2", "3", "10", "9"]));
        assert_eq!(add, ["3", "9"].map(|s| CustomerId::new(s).unwrap()));
        assert_eq!(remove, [CustomerId::new("1").unwrap()]);
    }

    #[test]
    fn ecforce_ids_go_out_as_numbers_when_numeric() {
        assert_eq!(wire_ids(&["12", "ab"]), vec![json!(12), json!("ab")]);
    }
}
