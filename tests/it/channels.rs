//! Delivery channels beyond LINE push: routing, one policy across channels, and sends through
//! the fake LINE server (push, PNP), a real SMTP server (aiosmtpd) and a fake SMS provider.

mod dispatch;
mod ecforce_reach;
mod fallthrough;
mod harness;
mod optout_store;
mod plan;
mod providers;
mod route;
mod scenario;
mod storage_optouts;
mod unsubscribe;
