pub fn _x() {}
pub mod metrics;
pub mod monitor;
