//! Rebuild when the contracts change: they are compiled into the crate
//! (`Catalog::embedded`), and `include_dir!` alone does not tell cargo so.
fn main() {
    println!("cargo:rerun-if-changed=../../contracts");
}
