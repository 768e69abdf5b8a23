//! `integrations-api`: the REST API of the Integrations Service. All the work is in the library;
//! this file only parses the command line and runs it.

/// jemalloc instead of glibc malloc: every proxied call parses and builds JSON, and glibc's
/// allocator spent about a quarter of the api's CPU on it; mimalloc was as fast but doubled the
/// resident memory (docs/benchmarks.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    // jq transformations' heap is bounded (`TRANSFORM_MEMORY_MB`) as jemalloc counts it
    #[cfg(all(feature = "webhook", not(target_env = "msvc")))]
    integration_webhook::transform::set_memory_meter(integration_http::cli::jemalloc_thread_heap_bytes);
    let cli = integrations_api::parse_cli();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(integrations_api::run(cli))
}
