//! `integrations-worker`: the bus worker of the Integrations Service. All the work is in the
//! library; this file only parses the command line and runs it.

/// jemalloc instead of glibc malloc, as in the api: the command path allocates a lot of small,
/// short-lived objects across threads, where glibc spent about a fifth of the CPU; mimalloc was as
/// fast and held more memory (docs/benchmarks.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    // jq transformations' heap is bounded (`TRANSFORM_MEMORY_MB`) as jemalloc counts it
    #[cfg(all(feature = "webhook", not(target_env = "msvc")))]
    integration_webhook::transform::set_memory_meter(integration_http::cli::jemalloc_thread_heap_bytes);
    let cli = integrations_worker::parse_cli();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(integrations_worker::run(cli))
}
