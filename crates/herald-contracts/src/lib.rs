pub fn _x() {}
pub mod evolution;
