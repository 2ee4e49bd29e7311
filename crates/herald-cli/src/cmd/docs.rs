//! `herald docs`: the contracts as a static site.

use std::path::PathBuf;

use crate::{Global, Outcome};

/// Generate a static HTML site of the contracts: topics, subjects, schema
/// versions, services, the changelog, a graph, the AsyncAPI document and the bundles.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The site is plain HTML and CSS with a little JavaScript for search; it opens from\ndisk and from any web server:\n  herald docs --out site && xdg-open site/index.html\n  herald docs --out site && python3 -m http.server -d site"
)]
pub struct Args {
    /// Directory to write the site into (created if missing; existing files are overwritten).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Runs `herald docs`.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<Outcome> {
    let catalog = global.catalog()?;
    let written = herald_docs::site::generate(&catalog, &args.out)?;
    crate::outln!(
        "wrote {} files to {}; open {}",
        written.len(),
        args.out.display(),
        args.out.join("index.html").display()
    );
    Ok(Outcome::Ok)
}
