//! Rich menus that follow segments (feature `client`): the shop declares its menus and the
//! rules that pick one per friend, and a [`RichMenuReconciler`] keeps every friend's per-user
//! menu on LINE equal to the one the rules pick, with as few calls as possible.
//!
//! - [`MenuSpec`]: a menu (the [`RichMenu`](crate::line::RichMenu) object, its image, an
//!   optional alias) under a stable [`MenuKey`]. Changing a menu's object or image makes a new
//!   LINE menu (an image cannot be replaced) and moves its users over.
//! - [`MenuRules`]: the first rule whose segment holds the customer picks the menu; everyone
//!   else, and every friend not linked to a shop account, gets the default menu, which is
//!   LINE's default rich menu (no per-user menu at all, so it costs no call per friend).
//! - [`RichMenuReconciler`]: computes each friend's desired menu, compares it with what it
//!   last applied (kept in a [`RichMenuStore`]) and applies only the difference: bulk link and
//!   unlink calls of at most 500 users, or one `richmenu/batch` request when every user of a
//!   menu moves to the same menu, within LINE's rate limits (the client paces itself).
//!   Every call is recorded as an intent before it is made and settled after, so after a
//!   crash the next pass re-checks the unsettled ones with LINE and finishes them: no switch
//!   is lost and none is made twice.
//!
//! See `docs/richmenus.md` for the whole picture (wake-ups, drift repair, statistics).

mod reconciler;
mod rules;
mod store;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod conformance;

pub use reconciler::{
    DriftReport, MenuStatistics, ReconcileReport, RichMenuReconciler, RichMenuReconcilerBuilder,
};
pub use rules::{Friend, MenuKey, MenuRules, MenuSpec};
pub use store::{
    MemoryRichMenuStore, MenuOperation, MenuOperationKind, RichMenuStore, RichMenuStoreError,
    StoredMenu,
};

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresRichMenuStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteRichMenuStore;

use crate::line::LineError;
use crate::segment::SegmentError;

/// The rich-menu reconciler failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RichMenuError {
    /// A LINE call failed; the operation stays recorded and the next pass finishes it.
    #[error("a LINE rich-menu call failed")]
    Line(#[from] LineError),
    /// The store failed.
    #[error("the rich-menu store failed")]
    Store(#[from] RichMenuStoreError),
    /// A segment of a rule could not be evaluated.
    #[error("a rich-menu rule's segment could not be evaluated")]
    Segment(#[from] SegmentError),
    /// The menus or rules are inconsistent.
    #[error("invalid rich-menu configuration `{field}`: {reason}")]
    Config {
        /// What was wrong, e.g. `rules[1].menu`.
        field: String,
        /// Why.
        reason: String,
    },
    /// A batch request still had not succeeded after the configured number of attempts.
    #[error("rich-menu batch `{operation}` did not succeed after {attempts} attempts")]
    BatchFailed {
        /// The recorded operation.
        operation: String,
        /// Requests sent.
        attempts: u32,
    },
}
