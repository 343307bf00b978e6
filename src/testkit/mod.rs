//! Fake LINE (and later ecforce) HTTP servers, so everything runs and is tested offline.
//!
//! [`FakeLine`] is a fake LINE Messaging API server: it listens on 127.0.0.1, behaves as LINE
//! documents (authentication, validation with LINE-style error bodies, rate limits, retry keys,
//! a monthly quota) and records every message it accepts, so tests can assert that each user got
//! each message exactly once. Faults (500s, 429s, slow responses, dropped connections) can be
//! injected deterministically from a seed. See `docs/testkit.md` for a tour.
//!
//! ```
//! use enishi::testkit::{FakeLine, Faults, FaultTiming};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let line = FakeLine::builder()
//!     .seed(7)
//!     .faults(Faults { server_error: 0.1, timing: FaultTiming::AfterAcceptance, ..Faults::default() })
//!     .start()
//!     .await?;
//! // Point the client at `line.api_base_url()` and `line.data_base_url()`, send, then:
//! assert!(line.duplicate_deliveries().is_empty());
//! # Ok(())
//! # }
//! ```

mod channel;
mod downstream;
#[cfg(feature = "ecforce")]
mod ecforce;
mod line;
mod shop;

pub use channel::{
    FAKE_SMS_ACCOUNT_SID, FAKE_SMS_AUTH_TOKEN, FakeSms, ReceivedEmail, RecordedSms,
    SMTP_INSTALL_HINT, SmtpSink,
};
pub use downstream::{FakeDownstream, ReceivedEvent};
#[cfg(feature = "ecforce")]
pub use ecforce::{
    DEFAULT_ECFORCE_TOKEN, EcforceDemo, EcforceDemoSpec, EcforceFault, FakeEcforce,
    FakeEcforceBuilder, FakeEcforceRequest, FakeLogin,
};
pub use line::{
    Counters, DEFAULT_CHANNEL_ACCESS_TOKEN, DialogOutcome, Endpoint, FakeContent, FakeDialog,
    FakeEndpointClass, FakeLine, FakeLineBuilder, FakeQuota, FakeRateLimit, FakeUser, FaultTiming,
    Faults, IssuedLinkToken, RecordedDelivery, RecordedRequest, RichMenuSwitch,
    TEST_ASSERTION_KEY_JWK, TEST_ASSERTION_KID, TEST_CHANNEL_ID, TEST_CHANNEL_SECRET, TestkitError,
    user_id,
};
pub use shop::{AffinityShop, AffinitySpec};
