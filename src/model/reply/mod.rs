//! Authorization: which attributes an Access-Accept carries, from the
//! user's groups and the RADIUS client (`authorization.rules`).
//!
//! [`dictionary`] knows the attributes (built in, plus FreeRADIUS-format
//! files), [`item`] checks and encodes one `Attribute[:tag] = value` line,
//! [`rules`] picks the lines for a login. Pure: the configuration reads the
//! files, the domain looks the user up, the RADIUS layer puts the bytes in
//! the packet.

pub mod builtin;
pub mod dictionary;
pub mod item;
pub mod rules;

pub use dictionary::{Dictionary, DictionaryError};
pub use item::{ReplyItem, UserValues};
pub use rules::{Authorization, Reply, Rule};
