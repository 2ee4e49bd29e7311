//! One module per subcommand.

pub mod bench;
pub mod catalog;
pub mod changelog;
pub mod check;
pub mod diff;
pub mod lock;
pub mod consume;
pub mod dlq;
pub mod lag;
pub mod nats;
pub mod publish;
pub mod streams;
pub mod tail;
pub mod validate;
pub mod watch;
