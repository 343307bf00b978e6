//! The ecforce adapter (feature `ecforce`): SUPER STUDIO's cart, REST API v2.

mod client;
mod de;
mod fetch;
mod labels;
mod retry;
mod subs;
#[cfg(feature = "axum")]
mod webhook;
mod wire;

pub use client::{
    DecodeStats, ECFORCE_MAX_PER, EcforceBuildError, EcforceClient, EcforceClientBuilder,
    EcforceHttpError, SignInLimitScope,
};
pub use fetch::RecordFetcher;
pub use labels::{
    EcforceLabel, InvalidLabelName, LINE_LINKED_LABEL, LabelSync, LabelSyncReport, LabelTarget,
    LabelingFailure, LabelingMethod, LabelingResult,
};
pub use retry::{Attempt as EcforceAttempt, EcforceRetry};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use webhook::{
    DEFAULT_ECFORCE_HOOK_BODY_LIMIT, DEFAULT_ECFORCE_HOOK_QUEUE, ECFORCE_EVENT_HEADER,
    EcforceEvent, EcforceWebhook, EcforceWebhookBuildError, EcforceWebhookBuilder,
    EcforceWebhookSecret, EcforceWebhookSecretError, EcforceWebhookStats, HintIdExtractor,
    HintOutcome, HintReport,
};
pub use wire::EcforceMapping;
