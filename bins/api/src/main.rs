//! `integrations-api`: the REST API of the Integrations Service. All the work is in the library;
//! this file only parses the command line and runs it.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = integrations_api::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(integrations_api::run(cli))
}
