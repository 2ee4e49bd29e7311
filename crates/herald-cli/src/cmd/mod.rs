//! One module per subcommand.

pub mod auth;
pub mod bench;
pub mod catalog;
pub mod check;
pub mod nats;
pub mod publish;
pub mod streams;
pub mod validate;
