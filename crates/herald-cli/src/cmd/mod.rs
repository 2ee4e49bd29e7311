//! One module per subcommand.

pub mod asyncapi;
pub mod auth;
pub mod bench;
pub mod bench_contracts;
pub mod catalog;
pub mod changelog;
pub mod check;
pub mod consume;
pub mod consumers;
pub mod demo;
pub mod diff;
pub mod dlq;
pub mod docs;
pub mod export;
pub mod lag;
pub mod lock;
pub mod nats;
pub mod publish;
pub mod serve;
pub mod streams;
pub mod tail;
pub mod validate;
pub mod watch;
