pub fn _x() {}
pub mod metrics;
