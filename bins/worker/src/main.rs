//! `integrations-worker`: the bus worker of the Integrations Service. All the work is in the
//! library; this file only parses the command line and runs it.

/// mimalloc instead of glibc malloc: the request and command paths allocate a lot of small,
/// short-lived objects across threads, where glibc spent about a fifth of the CPU (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = integrations_worker::parse_cli();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(integrations_worker::run(cli))
}
