//! The ecforce adapter (feature `ecforce`): SUPER STUDIO's cart, REST API v2.

mod client;
mod de;
mod wire;

pub use client::{
    ECFORCE_MAX_PER, EcforceBuildError, EcforceClient, EcforceClientBuilder, EcforceHttpError,
};
pub use wire::{
    EcforcePage, parse_customers_page, parse_orders_page, parse_products_page,
    parse_subscriptions_page,
};
