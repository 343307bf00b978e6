//! What the stored datasets (`SqliteDataset`, `PostgresDataset`) share: one table of records
//! (each as its JSON, keyed by resource and ID) and one of cursors (as JSON, keyed by
//! resource). Only the SQL differs between them.

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::BoxError;
use super::model::Cursor;
use super::sync::{Dataset, SyncBatch, SyncResource, SyncSink as _};

/// The `resource` column's value.
pub(super) fn resource_name(r: SyncResource) -> &'static str {
    match r {
        SyncResource::Customers => "customers",
        SyncResource::Orders => "orders",
        SyncResource::Subscriptions => "subscriptions",
        SyncResource::Products => "products",
    }
}

/// A batch's records as `(id, JSON)` rows, one per ID: of several records with one ID in a
/// batch the last wins, as when they are upserted one after the other.
pub(super) fn encode_batch(batch: &SyncBatch) -> Result<Vec<(String, String)>, BoxError> {
    match batch {
        SyncBatch::Customers(r) => encode_all(r, |c| c.id.as_str().to_owned()),
        SyncBatch::Orders(r) => encode_all(r, |o| o.id.clone()),
        SyncBatch::Subscriptions(r) => encode_all(r, |s| s.id.clone()),
        SyncBatch::Products(r) => encode_all(r, |p| p.id.clone()),
    }
}

fn encode_all<T: Serialize>(
    records: &[T],
    id: impl Fn(&T) -> String,
) -> Result<Vec<(String, String)>, BoxError> {
    let mut rows: Vec<(String, String)> = Vec::with_capacity(records.len());
    let mut at: HashMap<String, usize> = HashMap::with_capacity(records.len());
    for record in records {
        let row = (id(record), serde_json::to_string(record)?);
        match at.get(&row.0) {
            Some(&i) => rows[i] = row,
            None => {
                at.insert(row.0.clone(), rows.len());
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// The `cursor` column's value.
pub(super) fn encode_cursor(cursor: &Cursor) -> Result<String, BoxError> {
    Ok(serde_json::to_string(cursor)?)
}

/// A stored cursor.
pub(super) fn decode_cursor(stored: &str) -> Result<Cursor, BoxError> {
    Ok(serde_json::from_str(stored)?)
}

/// What is stored for one resource: its records' JSON and its cursor's.
#[derive(Debug)]
pub(super) struct StoredResource {
    /// The resource.
    pub(super) resource: SyncResource,
    /// Every record, as JSON.
    pub(super) bodies: Vec<String>,
    /// The cursor, as JSON (`None`: never synced).
    pub(super) cursor: Option<String>,
}

/// The in-memory [`Dataset`] holding what was stored, with the same cursors. A resource
/// without a cursor was never synced: its records (there are none) are left out.
pub(super) async fn into_dataset(stored: Vec<StoredResource>) -> Result<Dataset, BoxError> {
    let dataset = Dataset::new();
    for StoredResource { resource, bodies, cursor } in stored {
        let Some(cursor) = cursor else { continue };
        let batch = match resource {
            SyncResource::Customers => SyncBatch::Customers(decode_all(&bodies)?),
            SyncResource::Orders => SyncBatch::Orders(decode_all(&bodies)?),
            SyncResource::Subscriptions => SyncBatch::Subscriptions(decode_all(&bodies)?),
            SyncResource::Products => SyncBatch::Products(decode_all(&bodies)?),
        };
        dataset.apply(batch, decode_cursor(&cursor)?).await?;
    }
    Ok(dataset)
}

fn decode_all<T: DeserializeOwned>(bodies: &[String]) -> Result<Vec<T>, BoxError> {
    bodies.iter().map(|b| serde_json::from_str(b).map_err(Into::into)).collect()
}
