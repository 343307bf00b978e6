//! Coupons: the LINE coupon API against the fake, code pools (conformance on every store),
//! the coupon step issuing exactly once across a crash, and redemptions joined to orders.

#[cfg(all(feature = "client", feature = "testkit"))]
mod client;
#[cfg(all(feature = "client", feature = "testkit"))]
mod issue;
#[cfg(feature = "testkit")]
mod pool;
mod redeem;
