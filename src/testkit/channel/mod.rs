//! Fakes for the delivery channels: an SMS provider in Twilio's shape, and a real SMTP server
//! (Python's aiosmtpd) run as a child process.

mod sms;
mod smtp;

pub use sms::{FAKE_SMS_ACCOUNT_SID, FAKE_SMS_AUTH_TOKEN, FakeSms, RecordedSms};
pub use smtp::{ReceivedEmail, SMTP_INSTALL_HINT, SmtpSink};
