//! radotp: one-time-password authentication over RADIUS.
//!
//! # Layout
//! The crate is layered; each layer only calls the one below it.
//!
//! | layer | modules | owns |
//! |---|---|---|
//! | transport | [`radius::server`], [`admin::server`], [`daemon`] | sockets, signals, lifecycle |
//! | protocol | [`radius::packet`], [`radius::dedup`], [`admin::wire`] | bytes <-> requests, replies |
//! | domain | [`service`], [`import`], [`otp`], [`token`], [`audit`] | the rules: OTP checks, replay, lockout, operations, import files |
//! | storage | [`store`] (trait) and [`store::sled_store`]; [`directory`] | tokens on disk, users |
//!
//! RADIUS and the admin socket call the same [`service::Service`]
//! operations; neither reaches into the store. Seeds are sealed by
//! [`crypto`] before the store sees them; [`secret::Secret`] never prints.

pub mod admin;
pub mod audit;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod directory;
pub mod flows;
#[doc(hidden)]
pub mod fuzzing;
pub mod import;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod radius;
pub mod secret;
pub mod service;
pub mod store;
pub mod timefmt;
