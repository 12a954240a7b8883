//! radotp: one-time-password authentication over RADIUS.
//!
//! # Layout
//! Each layer calls only the layers below it; nothing calls upwards.
//!
//! | layer | modules | owns |
//! |---|---|---|
//! | app | [`daemon`], [`notify`] | wiring: config -> engines -> domain -> transports; signals, reload, restore |
//! | transports | [`radius`], [`admin`], [`web`] | sockets and protocols: bytes <-> domain calls, nothing else |
//! | domain | [`domain`] | the operations (authenticate, RADIUS modes, token life cycle, enroll, reset, import, backup, status); each audits itself |
//! | model | [`model`], [`import`] | pure types and rules: tokens and their transitions, OTP arithmetic, decisions, audit chain; import file formats |
//! | engines | [`store`] ([`store::memory`], [`store::sled`]), [`directory`] | where tokens, audit and challenges live; where users come from |
//! | support | [`config`], [`crypto`], [`secret`], [`metrics`], [`timefmt`], [`fsmode`], [`private_file`], [`limits`], [`journal`] | configuration, sealing seeds, redacted secrets, counters, directory modes, writing private files safely, connections per peer, journal priorities |
//!
//! RADIUS and the admin socket call the same [`domain::Service`]
//! operations; neither reaches into a store engine. Seeds are sealed by
//! [`crypto`] before any store sees them; [`secret::Secret`] never prints.

pub mod admin;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod directory;
pub mod domain;
pub mod fsmode;
#[doc(hidden)]
pub mod fuzzing;
pub mod import;
pub mod journal;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod private_file;
pub mod radius;
pub mod secret;
pub mod store;
pub mod timefmt;
pub mod web;
