//! One module per subcommand.

pub mod bench;
pub mod catalog;
pub mod check;
pub mod demo;
pub mod nats;
pub mod publish;
pub mod streams;
pub mod validate;
