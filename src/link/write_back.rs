//! Writing links back to the commerce backend (e.g. ecforce's `line_id` field).

use std::sync::Arc;

use async_trait::async_trait;

use super::{Link, LinkWriteBack, WriteBackError};
use crate::commerce::{CommerceBackend, CommerceBackendExt};

/// Any commerce backend can take link write-backs: the link is set on (or cleared from) the
/// customer record with [`CommerceBackend::set_line_user`]. Backends without that operation
/// answer `NotImplemented`, which the linker reports after its retries. (The linker never
/// writes back links whose source is the backend itself.)
#[async_trait]
impl LinkWriteBack for Arc<dyn CommerceBackend> {
    async fn write_link(&self, link: &Link) -> Result<(), WriteBackError> {
        self.link_line(&link.customer, &link.line_user).await.map_err(Into::into)
    }

    async fn clear_link(&self, link: &Link) -> Result<(), WriteBackError> {
        self.set_line_user(&link.customer, None).await.map_err(Into::into)
    }
}
