//! The process's one tokio runtime and the panic hook, set up when the module loads.

/// One tokio runtime for the process. Node already keeps a core busy, so by default tokio gets
/// one worker fewer than there are cores: on 2 cores the default runtime pushed p99 from ~15 ms
/// to ~250 ms at equal throughput (DESIGN.md). `CONVOY_WORKER_THREADS` overrides it.
#[napi_derive::module_init]
fn init() {
    let workers = std::env::var("CONVOY_WORKER_THREADS")
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |cores| cores.get().saturating_sub(1))
                .max(1)
        });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("convoy")
        .enable_all()
        .build()
        .expect("the tokio runtime could not start");
    napi::bindgen_prelude::create_custom_tokio_runtime(runtime);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        eprintln!(
            "convoy: this is a bug in Convoy's native core; please report it with the lines below."
        );
        default_hook(info);
    }));
}
