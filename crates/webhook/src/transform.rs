//! jq transformations with the jaq crates: compiled once (errors point at the line and column in
//! the filter), run with a time bound and an output size bound.
//!
//! jaq's library (its core, standard and JSON definitions, written in jq) is parsed once per
//! process, and each filter is compiled with only the definitions it can reach: compiling the
//! whole library into every filter cost ≈ 2.6 million instructions and ≈ 110 KB per filter, which
//! made an api replica with 500 stored custom tools start in 0.6 s and hold 80 MB
//! (docs/benchmarks.md, seventeenth session).
//!
//! Runs happen on a pool of [`MAX_CONCURRENT_RUNS`] threads of their own (started on first use,
//! each with a large stack for deep filters), so a slow filter never blocks the async runtime and
//! runaway filters cannot take every core. A run waits its turn in a bounded queue: a burst of
//! deliveries is served in order instead of refused, and its time bound covers the wait. A run that
//! found no free thread within its time bound, or no room in the queue, is refused as
//! [`TransformError::Busy`] (it never started: safe to try again). A running filter that exceeds
//! its time bound, or whose caller went away (a dropped request), is stopped: the caller gets a
//! timeout at once, and jaq's interpreter (vendored with one patch, `vendor/jaq-core/PATCHED.md`)
//! consults the run's stop flag before every term it runs, so even a filter that never outputs
//! (`[range(1e15)]`, `def f: f; f`) ends within a term and gives its thread back. The same check
//! refuses to recurse into the last [`STACK_RESERVE_BYTES`] of a pool thread's stack: a filter
//! with unbounded recursion fails with an error instead of overflowing the stack (which would abort
//! the process); string repetition is bounded at 64 MiB (`vendor/jaq-json/PATCHED.md`). A filter is
//! at most [`MAX_FILTER_BYTES`], and one that could nest deep compiles on a thread with a large
//! stack (see [`Transform::compile`]). Functions reaching outside the value (`env`, `$ENV`,
//! `input`, `halt`, `debug`, `stderr`) are not available.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use integration_core::HandleCache;
use jaq_core::load::parse::Def;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Ctx, Native, Vars, data};
use jaq_json::Val;
use metrics::{Counter, Histogram};
use serde_json::Value;

mod output;
use output::OutputError;

/// Runs at once in this process: the threads of the pool.
pub const MAX_CONCURRENT_RUNS: usize = 8;

/// Runs waiting for a thread, beyond which a run is refused at once as [`TransformError::Busy`].
pub const MAX_QUEUED_RUNS: usize = 1024;

/// Stack of a pool thread: jaq recurses on deep filters and values. Reserved, not committed.
const RUN_STACK_BYTES: usize = 64 << 20;

/// The part of a pool thread's stack a filter may not recurse into: room for what runs between two
/// of the interpreter's checks and for writing the result.
pub const STACK_RESERVE_BYTES: usize = 16 << 20;

/// The error of a filter that recursed into [`STACK_RESERVE_BYTES`].
const TOO_DEEP: &str = "the jq filter recursed too deeply";
/// The error of a filter stopped because its caller stopped waiting (its message is not seen:
/// the caller has its timeout already).
const STOPPED: &str = "the jq filter was stopped";

/// A pool thread whose run used more of its stack than this is replaced after the run.
const RETIRE_AFTER_STACK_BYTES: usize = 8 << 20;

/// The longest error message of a run, in bytes.
const MAX_ERROR_BYTES: usize = 500;

/// The most heap memory transformation runs may hold, in bytes, unless the process sets another
/// bound ([`set_memory_limit`]): one run alone, and all runs at once together. Counted where the
/// process has a meter ([`set_memory_meter`]).
pub const DEFAULT_MEMORY_LIMIT_BYTES: u64 = 256 << 20;

/// A run publishes its heap bytes to the shared count when they moved by this much since it last
/// did: the count is within this of the truth per running run, and the shared counter is touched
/// about once per MiB allocated, not at every term.
const PUBLISH_STEP: i64 = 1 << 20;

/// Heap bytes held by the runs in progress, as they last published them.
static HELD: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// The bound in force and its two error messages (jaq's interrupt check takes a `&'static str`).
struct MemoryLimit {
    bytes: i64,
    /// A run holding at least this much may be stopped for the shared bound.
    share: i64,
    /// A run past the bound alone.
    run_message: String,
    /// Runs past the bound together.
    shared_message: String,
}

impl MemoryLimit {
    fn new(bytes: u64) -> Self {
        let bytes = bytes.clamp(1 << 20, i64::MAX as u64);
        let mib = bytes >> 20;
        Self {
            bytes: bytes as i64,
            share: (bytes / MAX_CONCURRENT_RUNS as u64) as i64,
            run_message: format!("the jq filter used more than {mib} MiB of memory"),
            shared_message: format!("jq transformations running at once held more than {mib} MiB of memory"),
        }
    }
}

static MEMORY_LIMIT: std::sync::OnceLock<MemoryLimit> = std::sync::OnceLock::new();

fn memory_limit() -> &'static MemoryLimit {
    MEMORY_LIMIT.get_or_init(|| MemoryLimit::new(DEFAULT_MEMORY_LIMIT_BYTES))
}

/// Set the bound on the heap memory of transformation runs, in bytes (at least 1 MiB): one run may
/// hold at most this much, and the runs in progress together about as much. A run past the bound
/// alone fails (`the jq filter used more than N MiB of memory`); when the runs together pass it,
/// the run whose growth passed it is stopped, if it holds at least its share (the bound divided by
/// [`MAX_CONCURRENT_RUNS`]), as [`TransformError::MemoryBusy`], which is safe to try again. Runs
/// below their share are not stopped for the others, so the runs together stay below twice the
/// bound. Call before the first run (the api and worker do at start-up, from
/// `TRANSFORM_MEMORY_MB`); the first call wins, later ones return `false`.
pub fn set_memory_limit(bytes: u64) -> bool {
    MEMORY_LIMIT.set(MemoryLimit::new(bytes)).is_ok()
}

/// The process's heap meter: the calling thread's live heap bytes (allocated minus freed).
static MEMORY_METER: std::sync::OnceLock<fn() -> u64> = std::sync::OnceLock::new();

/// Bound the heap memory of transformation runs ([`set_memory_limit`]), measured by `meter`: the
/// calling thread's heap bytes allocated minus freed (for jemalloc, `thread.allocatedp` minus
/// `thread.deallocatedp`). Runs started afterwards are bounded; without a meter, the memory a
/// filter builds within its time bound is not. The api and worker binaries install one at
/// start-up; the first call wins.
pub fn set_memory_meter(meter: fn() -> u64) {
    let _ = MEMORY_METER.set(meter);
}

/// What jaq's interrupt check on a pool thread reads, in one thread-local.
struct RunGuard {
    /// The stop flag of the run on this pool thread.
    stop: std::cell::RefCell<Option<Arc<AtomicBool>>>,
    /// The lowest stack address a filter on this pool thread may recurse to (0: no bound).
    stack_floor: std::cell::Cell<usize>,
    /// The lowest stack address the check saw during the run.
    lowest: std::cell::Cell<usize>,
    /// The heap meter, and its reading when the run started.
    meter: std::cell::Cell<Option<fn() -> u64>>,
    memory_base: std::cell::Cell<u64>,
    /// The memory bound, read once per run.
    limit: std::cell::Cell<Option<&'static MemoryLimit>>,
    /// The run's heap bytes as last added to [`HELD`].
    published: std::cell::Cell<i64>,
    /// The run was stopped because the runs together passed the bound.
    shared_stop: std::cell::Cell<bool>,
}

std::thread_local! {
    static GUARD: RunGuard = const {
        RunGuard {
            stop: std::cell::RefCell::new(None),
            stack_floor: std::cell::Cell::new(0),
            lowest: std::cell::Cell::new(usize::MAX),
            meter: std::cell::Cell::new(None),
            memory_base: std::cell::Cell::new(0),
            limit: std::cell::Cell::new(None),
            published: std::cell::Cell::new(0),
            shared_stop: std::cell::Cell::new(false),
        }
    };
}

/// jaq's interrupt check on pool threads (`jaq_core::interrupt`): consulted before every term.
fn interrupt_check() -> Option<&'static str> {
    GUARD.with(|guard| {
        let marker = 0u8;
        let here = std::ptr::addr_of!(marker).addr();
        if here < guard.lowest.get() {
            guard.lowest.set(here);
        }
        if here < guard.stack_floor.get() {
            return Some(TOO_DEEP);
        }
        if let (Some(meter), Some(limit)) = (guard.meter.get(), guard.limit.get()) {
            // signed: memory allocated elsewhere and freed here (the input) counts below zero
            let used = meter().wrapping_sub(guard.memory_base.get()) as i64;
            if used > limit.bytes {
                return Some(&limit.run_message);
            }
            let published = guard.published.get();
            let grown = used.max(0) - published;
            if grown.abs() >= PUBLISH_STEP {
                guard.published.set(published + grown);
                let held = HELD.fetch_add(grown, Ordering::Relaxed) + grown;
                // the run whose growth passed the bound, if it holds its share
                if grown > 0 && held > limit.bytes && used >= limit.share {
                    guard.shared_stop.set(true);
                    return Some(&limit.shared_message);
                }
            }
        }
        guard.stop.borrow().as_ref().is_some_and(|s| s.load(Ordering::Relaxed)).then_some(STOPPED)
    })
}

/// Runs by how they ended: `ok`, `error`, `timeout`, `too_large`, `busy` (never started),
/// `memory_busy` (stopped for the runs' shared memory bound).
static RUNS: HandleCache<Counter> = HandleCache::counter("integration_transform_runs_total", &["outcome"]);
/// Time a run waited in the queue for a pool thread.
static WAIT: HandleCache<Histogram> = HandleCache::histogram("integration_transform_wait_seconds", &[]);

type JaqFilter = jaq_core::compile::Filter<Native<data::JustLut<Val>>>;

/// Bounds of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall time of one run.
    pub time: Duration,
    /// Largest output, as compact JSON, in bytes.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { time: Duration::from_secs(2), max_output_bytes: 1024 * 1024 }
    }
}

/// Why a filter did not compile or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// The filter does not parse or names something undefined.
    #[error("invalid jq filter at line {line}, column {column}: {message}")]
    Compile {
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The filter raised an error on this input.
    #[error("jq filter failed: {0}")]
    Runtime(String),
    /// The run took longer than its bound.
    #[error("jq filter did not finish within {0:?}")]
    Timeout(Duration),
    /// The output is larger than its bound.
    #[error("jq filter output exceeds {0} bytes")]
    TooLarge(usize),
    /// No thread was free for the run within its time bound, or the queue of waiting runs is full
    /// (a burst beyond the pool, or runaway filters still finishing). The filter never started.
    #[error("too many jq transformations running; try again later")]
    Busy,
    /// The runs in progress together held more heap memory than the process allows (the bound in
    /// MiB, [`set_memory_limit`]), and this run, holding at least its share, was stopped when its
    /// growth passed the bound. Not the filter's fault alone: safe to try again.
    #[error("jq transformations running at once held more than {0} MiB of memory; try again later")]
    MemoryBusy(u64),
}

/// A compiled jq filter. Cheap to clone.
#[derive(Clone)]
pub struct Transform {
    source: Arc<str>,
    filter: Arc<JaqFilter>,
}

impl std::fmt::Debug for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Transform").field(&self.source).finish()
    }
}

const DENIED: [&str; 6] = ["env", "halt", "input", "inputs", "debug_empty", "stderr_empty"];

/// jaq's definitions written in jq (core, std, JSON), parsed once, with what each one may call.
struct Prelude {
    defs: Vec<Def<&'static str>>,
    /// Every definition of each name (all arities).
    by_name: HashMap<&'static str, Vec<usize>>,
    /// For each definition, the definitions its body may call.
    calls: Vec<Vec<usize>>,
}

static PRELUDE: LazyLock<Prelude> = LazyLock::new(Prelude::load);

/// The words of `text` that can name a filter (`map`, `@base64`): a superset of the calls in it.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '@')).filter(|w| !w.is_empty())
}

impl Prelude {
    fn load() -> Self {
        let defs: Vec<Def<&'static str>> =
            jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs()).collect();
        let mut by_name: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (i, def) in defs.iter().enumerate() {
            by_name.entry(def.name).or_default().push(i);
        }
        // A body's debug form spells out every name it calls; words that name nothing are dropped.
        let calls = defs
            .iter()
            .map(|def| {
                let body = format!("{:?}", def.body);
                let mut called: Vec<usize> =
                    words(&body).filter_map(|w| by_name.get(w)).flatten().copied().collect();
                called.sort_unstable();
                called.dedup();
                called
            })
            .collect();
        Self { defs, by_name, calls }
    }

    /// The definitions `code` can reach, in library order (a definition only calls earlier ones
    /// and itself). Every definition of a name `code` or a reached body mentions is kept, so a
    /// call resolves exactly as against the whole library.
    fn reachable(&self, code: &str) -> Vec<Def<&'static str>> {
        let mut keep = vec![false; self.defs.len()];
        let mut next: Vec<usize> =
            words(code).filter_map(|w| self.by_name.get(w)).flatten().copied().collect();
        while let Some(i) = next.pop() {
            if !std::mem::replace(&mut keep[i], true) {
                next.extend(&self.calls[i]);
            }
        }
        self.defs.iter().zip(keep).filter(|(_, k)| *k).map(|(def, _)| def.clone()).collect()
    }
}

/// Line and column of `part`, a slice of `code` (the start when it is not one: an error in jaq's
/// library rather than in the filter).
fn position(code: &str, part: &str) -> (usize, usize) {
    let offset =
        part.as_ptr().addr().checked_sub(code.as_ptr().addr()).filter(|&o| o <= code.len()).unwrap_or(0);
    let before = &code[..code.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

/// A compile error that is not at a place in the filter (its length, its compile thread).
fn compile_failed(message: &str) -> TransformError {
    TransformError::Compile { line: 1, column: 1, message: message.to_owned() }
}

fn compile_error(code: &str, part: &str, message: String) -> TransformError {
    let (line, column) = position(code, part);
    TransformError::Compile { line, column, message }
}

/// The longest filter, in bytes.
pub const MAX_FILTER_BYTES: usize = 16 * 1024;

/// Filters up to this long are compiled on the caller's thread. jaq's lexer, parser and compiler
/// recurse once per level of nesting (`((((.))))`, `[[[[]]]]`, `if . then if . then ...`) and per
/// operator of a chain (`. | . | ...`, `-----1`): a thousand levels overflowed a 2 MiB runtime
/// thread's stack and aborted the api when the filter was defined. A filter this short cannot nest
/// deep enough to matter (even in a debug build, whose frames are many times larger); longer ones
/// compile on the process's compile thread, which has [`COMPILE_STACK_BYTES`] (one thread, started
/// on first use: a thread started per compile added ≈ 50 ms to an api start-up that loads 500
/// stored custom tools).
const INLINE_COMPILE_BYTES: usize = 64;

/// Stack of the thread that compiles a longer filter: enough for the deepest filter of
/// [`MAX_FILTER_BYTES`] (the compile tests try each kind of nesting at that length). Reserved, not
/// committed: a filter touches what its nesting needs.
const COMPILE_STACK_BYTES: usize = 256 << 20;

impl Transform {
    /// Compile `code`. Errors carry the line and column of the first problem. A filter longer
    /// than [`MAX_FILTER_BYTES`] is refused; one longer than 64 bytes is compiled on the process's
    /// compile thread (jaq's parser recurses once per level of nesting), which this call waits for.
    pub fn compile(code: &str) -> Result<Self, TransformError> {
        if code.len() > MAX_FILTER_BYTES {
            return Err(compile_failed(&format!(
                "a jq filter may be at most {MAX_FILTER_BYTES} bytes; this one is {}",
                code.len()
            )));
        }
        if code.len() <= INLINE_COMPILE_BYTES {
            return Self::compile_here(code);
        }
        type Reply = std::sync::mpsc::Sender<Result<Transform, TransformError>>;
        static COMPILER: LazyLock<Option<std::sync::mpsc::Sender<(String, Reply)>>> = LazyLock::new(|| {
            let (jobs, queue) = std::sync::mpsc::channel::<(String, Reply)>();
            let serve = move || {
                for (code, reply) in queue {
                    let compiled = std::panic::catch_unwind(|| Transform::compile_here(&code));
                    let _ = reply.send(
                        compiled
                            .unwrap_or_else(|_| Err(compile_failed("the jq filter could not be compiled"))),
                    );
                }
            };
            let thread =
                std::thread::Builder::new().name("jq-compile".into()).stack_size(COMPILE_STACK_BYTES);
            thread.spawn(serve).ok().map(|_| jobs)
        });
        let Some(compiler) = &*COMPILER else {
            return Err(compile_failed("no thread to compile the filter on"));
        };
        let (reply, answer) = std::sync::mpsc::channel();
        compiler
            .send((code.to_owned(), reply))
            .map_err(|_| compile_failed("the jq compile thread stopped"))?;
        answer.recv().unwrap_or_else(|_| Err(compile_failed("the jq compile thread stopped")))
    }

    fn compile_here(code: &str) -> Result<Self, TransformError> {
        let prelude = &*PRELUDE;
        match Self::compile_with(code, prelude.reachable(code)) {
            // Never expected (the pruning keeps every definition a call can resolve to), but a
            // filter must not be refused for it: the whole library decides.
            Err(_) => Self::compile_with(code, prelude.defs.clone()),
            compiled => compiled,
        }
    }

    fn compile_with(code: &str, defs: Vec<Def<&'static str>>) -> Result<Self, TransformError> {
        let funs =
            jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs()).map(|(name, args, native)| {
                if DENIED.contains(&name) {
                    let denied: Native<data::JustLut<Val>> = Native::new(|_| {
                        Box::new(std::iter::once(Err(jaq_core::Exn::from(jaq_core::Error::str(
                            "this function is not available in webhook transformations",
                        )))))
                    });
                    (name, args, denied)
                } else {
                    (name, args, native)
                }
            });
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader.load(&arena, File { code, path: () }).map_err(|errors| {
            let Some((_, error)) = errors.into_iter().next() else {
                return TransformError::Compile { line: 1, column: 1, message: "invalid filter".into() };
            };
            match error {
                jaq_core::load::Error::Io(items) => match items.into_iter().next() {
                    Some((part, msg)) => compile_error(code, part, msg),
                    None => TransformError::Compile { line: 1, column: 1, message: "i/o error".into() },
                },
                jaq_core::load::Error::Lex(items) => match items.into_iter().next() {
                    Some((expect, part)) => {
                        let what = match expect {
                            jaq_core::load::lex::Expect::Delim(d) => match d {
                                "(" | "[" | "{" | "\"" => expect.as_str(),
                                _ => "closing delimiter",
                            },
                            other => other.as_str(),
                        };
                        compile_error(code, part, format!("expected {what}"))
                    }
                    None => TransformError::Compile { line: 1, column: 1, message: "lex error".into() },
                },
                jaq_core::load::Error::Parse(items) => match items.into_iter().next() {
                    Some((expect, part)) => {
                        let found = if part.is_empty() {
                            "end of input".to_owned()
                        } else {
                            format!("'{}'", first_token(part))
                        };
                        compile_error(code, part, format!("expected {}, found {found}", expect.as_str()))
                    }
                    None => TransformError::Compile { line: 1, column: 1, message: "parse error".into() },
                },
            }
        })?;
        let filter = jaq_core::Compiler::default().with_funs(funs).compile(modules).map_err(|errors| {
            let first = errors.into_iter().next().and_then(|(_, errs)| errs.into_iter().next());
            match first {
                Some((part, undefined)) => {
                    compile_error(code, part, format!("undefined {} '{part}'", undefined.as_str()))
                }
                None => TransformError::Compile { line: 1, column: 1, message: "compile error".into() },
            }
        })?;
        Ok(Self { source: Arc::from(code), filter: Arc::new(filter) })
    }

    /// The filter as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Run the filter on `input`. One output gives that value, none gives `null`, several give
    /// an array of them. `limits.time` bounds the wait for a pool thread and the run together.
    pub async fn run(&self, input: &Value, limits: Limits) -> Result<Value, TransformError> {
        static POOL: LazyLock<Option<Pool>> =
            LazyLock::new(|| Pool::start(MAX_CONCURRENT_RUNS, MAX_QUEUED_RUNS));
        match &*POOL {
            Some(pool) => pool.run(&self.filter, input, limits).await,
            None => Err(TransformError::Busy),
        }
    }
}

/// One run handed to the pool.
struct Job {
    filter: Arc<JaqFilter>,
    /// The input, turned into jaq's value on the pool thread (jaq's values are not `Send`).
    input: Value,
    max_output_bytes: usize,
    /// Names the job for its caller to take it out of the queue.
    id: u64,
    queued_at: Instant,
    /// Set when the caller stops waiting (time bound, or the call dropped): the run ends.
    stop: Arc<AtomicBool>,
    reply: tokio::sync::oneshot::Sender<Result<Value, TransformError>>,
}

/// Threads that run filters, fed by a bounded queue. Dropping it lets the threads end.
struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    capacity: usize,
    closed: AtomicBool,
    next_id: AtomicU64,
    /// Threads replaced after a run that used much of their stack.
    retired: AtomicU64,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Job>> {
        // A poisoned lock only means a panic while holding it; the queue itself is whole.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pool {
    /// Start `threads` threads (`None` when not one could start) behind a queue of `capacity` jobs.
    fn start(threads: usize, capacity: usize) -> Option<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            capacity,
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            retired: AtomicU64::new(0),
        });
        let started = (0..threads).filter(|i| spawn_server(&shared, *i)).count();
        (started > 0).then_some(Self { shared })
    }

    async fn run(
        &self,
        filter: &Arc<JaqFilter>,
        input: &Value,
        limits: Limits,
    ) -> Result<Value, TransformError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let job = Job {
            filter: filter.clone(),
            input: input.clone(),
            max_output_bytes: limits.max_output_bytes,
            id,
            queued_at: Instant::now(),
            stop: stop.clone(),
            reply,
        };
        let queued = {
            let mut queue = self.shared.queue();
            let room = queue.len() < self.shared.capacity;
            if room {
                queue.push_back(job);
            }
            room
        };
        let result = if queued {
            self.shared.ready.notify_one();
            // Should the caller drop this call while the job waits, the job leaves the queue: it
            // never runs and never holds a place.
            let mut waiting = Waiting { shared: &self.shared, id, stop: &stop, settled: false };
            let answer = tokio::time::timeout(limits.time, answer).await;
            waiting.settled = true;
            match answer {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(TransformError::Runtime("the transformation thread stopped".into())),
                Err(_) if waiting.withdraw() => Err(TransformError::Busy),
                // Running: stopped within its current term.
                Err(_) => {
                    stop.store(true, Ordering::Relaxed);
                    Err(TransformError::Timeout(limits.time))
                }
            }
        } else {
            Err(TransformError::Busy)
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(TransformError::Busy) => "busy",
            Err(TransformError::MemoryBusy(_)) => "memory_busy",
            Err(TransformError::Timeout(_)) => "timeout",
            Err(TransformError::TooLarge(_)) => "too_large",
            Err(TransformError::Compile { .. } | TransformError::Runtime(_)) => "error",
        };
        RUNS.get(&[outcome]).increment(1);
        result
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.ready.notify_all();
    }
}

/// A caller's job, taken out of the queue if it is still there when the caller stops waiting.
struct Waiting<'a> {
    shared: &'a Shared,
    id: u64,
    /// The run's stop flag, set when the caller goes away while the job runs.
    stop: &'a AtomicBool,
    /// The wait ended (an answer or the time bound) and was dealt with: nothing left to withdraw.
    settled: bool,
}

impl Waiting<'_> {
    /// Take the job out of the queue; `false` when a thread has it already.
    fn withdraw(&self) -> bool {
        let mut queue = self.shared.queue();
        match queue.iter().position(|job| job.id == self.id) {
            Some(at) => queue.remove(at).is_some(),
            None => false,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.settled && !self.withdraw() {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// Start pool thread number `i`; false if the system would not start a thread.
fn spawn_server(shared: &Arc<Shared>, i: usize) -> bool {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name(format!("jq-transform-{i}"))
        .stack_size(RUN_STACK_BYTES)
        .spawn(move || serve(shared, i))
        .is_ok()
}

/// A pool thread: take jobs one at a time until the pool is dropped. After a run that used more
/// than [`RETIRE_AFTER_STACK_BYTES`] of its stack it hands its place to a new thread and ends: the
/// stack a thread touched stays resident until the thread ends (48 MiB after a deep recursion).
fn serve(shared: Arc<Shared>, i: usize) {
    let marker = 0u8;
    let top = std::ptr::addr_of!(marker).addr();
    GUARD.with(|guard| guard.stack_floor.set(top.saturating_sub(RUN_STACK_BYTES - STACK_RESERVE_BYTES)));
    jaq_core::interrupt::set(Some(interrupt_check));
    loop {
        let job = {
            let mut queue = shared.queue();
            loop {
                if shared.closed.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(job) = queue.pop_front() {
                    break job;
                }
                queue = shared.ready.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
        };
        WAIT.get(&[]).record(job.queued_at.elapsed().as_secs_f64());
        // It stops once its caller gave up (timed out, or dropped the call): within a term by
        // jaq's interrupt check, and here between outputs.
        let stopped = || job.stop.load(Ordering::Relaxed);
        GUARD.with(|guard| {
            *guard.stop.borrow_mut() = Some(job.stop.clone());
            guard.lowest.set(top);
            guard.meter.set(MEMORY_METER.get().copied());
            guard.limit.set(Some(memory_limit()));
            guard.memory_base.set(guard.meter.get().map_or(0, |meter| meter()));
            guard.shared_stop.set(false);
        });
        // A panic inside jaq fails this run, not the thread.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_blocking(&job.filter, &job.input, job.max_output_bytes, &stopped)
        }))
        .unwrap_or_else(|_| Err(TransformError::Runtime("the jq filter failed unexpectedly".into())));
        let result = GUARD.with(|guard| {
            *guard.stop.borrow_mut() = None;
            // What is left of the run's memory is freed with its values: no longer held.
            HELD.fetch_sub(guard.published.replace(0), Ordering::Relaxed);
            match result {
                Err(_) if guard.shared_stop.get() => {
                    Err(TransformError::MemoryBusy(memory_limit().bytes as u64 >> 20))
                }
                other => other,
            }
        });
        let _ = job.reply.send(result);
        let deepest = top.saturating_sub(GUARD.with(|guard| guard.lowest.get()));
        if deepest > RETIRE_AFTER_STACK_BYTES {
            // counted first: the new thread may serve the next run before this one ends
            shared.retired.fetch_add(1, Ordering::Relaxed);
            if spawn_server(&shared, i) {
                return;
            }
            shared.retired.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn first_token(part: &str) -> String {
    part.split_whitespace().next().unwrap_or_default().chars().take(20).collect()
}

fn run_blocking(
    filter: &JaqFilter,
    input: &Value,
    max_output_bytes: usize,
    stopped: &dyn Fn() -> bool,
) -> Result<Value, TransformError> {
    if stopped() {
        return Err(TransformError::Timeout(Duration::ZERO));
    }
    // Straight from the parsed value: writing it as text for jaq's parser cost as much again as
    // the parse (docs/benchmarks.md, twenty-first session).
    let input = <Val as serde::Deserialize>::deserialize(input)
        .map_err(|e| TransformError::Runtime(format!("input is not JSON: {e}")))?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut outputs = Vec::new();
    let mut budget = max_output_bytes;
    for item in filter.id.run((ctx, input)).map(jaq_core::unwrap_valr) {
        if stopped() {
            return Err(TransformError::Timeout(Duration::ZERO));
        }
        let val = item.map_err(|e| TransformError::Runtime(error_text(&e)))?;
        let value = output::to_json(&val, &mut budget).map_err(|e| match e {
            OutputError::TooLarge => TransformError::TooLarge(max_output_bytes),
            OutputError::NotJson => {
                TransformError::Runtime("the filter produced a value that is not JSON".into())
            }
            OutputError::TooDeep => TransformError::Runtime(format!(
                "the filter produced a value nested deeper than {} levels",
                output::MAX_DEPTH
            )),
        })?;
        outputs.push(value);
    }
    Ok(match outputs.len() {
        0 => Value::Null,
        1 => outputs.pop().unwrap_or(Value::Null),
        _ => Value::Array(outputs),
    })
}

/// A run's error as the message shown: at most 500 bytes, written only that far (an error may
/// carry a value of any size or depth), a string given to `error` without its quotes.
fn error_text(e: &jaq_core::Error<Val>) -> String {
    use std::fmt::Write;
    /// Text up to a length; writing beyond it fails, which ends the writing.
    struct Bounded(String);
    impl Write for Bounded {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            if self.0.len() + s.len() > MAX_ERROR_BYTES {
                let room = MAX_ERROR_BYTES - self.0.len();
                self.0.push_str(&s[..s.floor_char_boundary(room)]);
                return Err(std::fmt::Error);
            }
            self.0.push_str(s);
            Ok(())
        }
    }
    let mut text = Bounded(String::new());
    // an error here is the bound reached: the text so far is kept
    let cut = write!(text, "{e}").is_err();
    let text = text.0;
    if cut {
        // a string given to `error`, cut off: its beginning without its quote and escapes (the
        // cut may fall inside an escape: up to six bytes more are left off to close it)
        let unquoted = text.starts_with('"').then(|| {
            (0..8).find_map(|less| {
                let end = text.floor_char_boundary(text.len().saturating_sub(less));
                serde_json::from_str::<String>(&format!("{}\"", &text[..end])).ok()
            })
        });
        return format!("{}...", unquoted.flatten().unwrap_or(text));
    }
    // whole, and within the bound: a string given to `error` loses only its quotes and escapes
    serde_json::from_str::<String>(&text).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn run(code: &str, input: Value) -> Result<Value, TransformError> {
        Transform::compile(code)?.run(&input, Limits::default()).await
    }

    fn whole(code: &str) -> Result<Transform, TransformError> {
        Transform::compile_with(code, PRELUDE.defs.clone())
    }

    fn pruned(code: &str) -> Result<Transform, TransformError> {
        Transform::compile_with(code, PRELUDE.reachable(code))
    }

    #[test]
    fn every_library_definition_compiles_with_the_pruned_library() {
        // a call of each definition (`.` for each argument) compiles against only what it reaches
        // exactly when it compiles against the whole library
        let mut checked = 0;
        for def in &PRELUDE.defs {
            if def.name.starts_with('!') {
                continue;
            }
            let code = match def.args.len() {
                0 => def.name.to_owned(),
                n => format!("{}({})", def.name, vec!["."; n].join("; ")),
            };
            match (whole(&code), pruned(&code)) {
                (Ok(_), Ok(_)) => checked += 1,
                (Err(w), Err(p)) => assert_eq!(w, p, "{code}"),
                (w, p) => panic!("{code}: whole library {w:?}, pruned {p:?}"),
            }
        }
        assert!(checked > 100, "only {checked} definitions checked");
    }

    #[tokio::test]
    async fn the_pruned_library_computes_what_the_whole_one_does() {
        let input = json!({"items": [{"id": 3, "name": "Bravo", "tags": ["x", "y"]},
            {"id": 1, "name": "alpha", "tags": []}, {"id": 2, "name": "Charlie", "tags": ["y"]}],
            "text": "a,b;c", "n": 2.5, "when": 1700000000});
        let corpus = [
            ".items | map(.name) | sort",
            ".items | sort_by(.id) | map(.id)",
            ".items | group_by(.tags | length) | map(length)",
            ".items | unique_by(.name | ascii_downcase) | length",
            "[.items[] | select(.tags | index(\"y\"))] | map(.id)",
            ".items | map(with_entries(select(.key != \"tags\")))",
            "[paths(type == \"number\")] | length",
            "walk(if type == \"string\" then ascii_upcase else . end) | .items[0].name",
            ".text | split(\",\") | join(\"-\")",
            ".text | [splits(\"[,;]\")]",
            ".text | sub(\"(?<x>[a-z])\"; \"<\\(.x)>\") | test(\"<a>\")",
            ".items | to_entries | map(.key) | add",
            ".items | min_by(.id).name, max_by(.id).name",
            "[limit(2; .items[])] | map(.id)",
            "[range(0; 10; 3)] | add",
            "[.items[] | .tags[]?] | unique | @sh, @uri",
            ".text | @base64 | @base64d",
            "{a: 1} * {b: {c: 2}} | tojson | fromjson | .b.c",
            ".n | floor, ceil, (. * 10 | round)",
            ".when | todate",
            "reduce .items[] as $i (0; . + $i.id)",
            "[foreach .items[] as $i (0; . + 1; [., $i.id])]",
            "def twice(f): f | f; .n | twice(. * 2)",
            "try error(\"boom\") catch .",
            "[.items[] | .id] | any(. > 2), all(. > 0)",
            "getpath([\"items\", 0, \"id\"]), (.items[0] | has(\"id\")), (.items | first.id, last.id)",
            ".items[0] | del(.tags) | keys",
            "[recurse | numbers] | length",
            "(.items[] | select(.id == 1) | .name) |= ascii_upcase | .items[1].name",
            "@json \"id: \\(.items[0].id)\", @text \"\\(.n)\", @html \"<\\(.text)>\"",
            "(.text | ltrimstr(\"a\")), (.text | ascii_downcase | explode | implode)",
            "env",
        ];
        for code in corpus {
            let (w, p) = match (whole(code), pruned(code)) {
                (Ok(w), Ok(p)) => (w, p),
                (w, p) => panic!("{code}: whole library {w:?}, pruned {p:?}"),
            };
            let expected = w.run(&input, Limits::default()).await;
            assert!(expected.is_ok() || code == "env", "{code}: {expected:?}");
            assert_eq!(p.run(&input, Limits::default()).await, expected, "{code}");
        }
    }

    #[test]
    fn positions_are_found_only_within_the_filter() {
        let code = "map(.a)\n| nosuch";
        assert_eq!(position(code, &code[10..]), (2, 3));
        assert_eq!(position(code, &code[code.len()..]), (2, 9));
        assert_eq!(position(code, "elsewhere"), (1, 1));
    }

    #[test]
    fn a_filter_carries_only_the_definitions_it_reaches() {
        let all = PRELUDE.defs.len();
        assert!(all > 100, "{all}");
        assert!(PRELUDE.reachable(".items[0].name").len() <= 2);
        let map = PRELUDE.reachable(".items | map(.id) | sort");
        assert!(map.iter().any(|d| d.name == "map"));
        assert!(map.len() < all / 10, "{} of {all}", map.len());
        // a name in a string or a field is harmless: at worst it keeps a definition alive
        assert!(PRELUDE.reachable(".map").iter().any(|d| d.name == "map"));
    }

    #[tokio::test]
    async fn transforms_values() {
        assert_eq!(run(".action", json!({"action": "opened"})).await, Ok(json!("opened")));
        assert_eq!(
            run(
                "{repo: .repository.name, n: (.commits | length)}",
                json!({"repository": {"name": "r"}, "commits": [1, 2]})
            )
            .await,
            Ok(json!({"repo": "r", "n": 2}))
        );
        assert_eq!(run(".[]", json!([1, 2])).await, Ok(json!([1, 2])));
        assert_eq!(run("empty", json!(1)).await, Ok(Value::Null));
        assert_eq!(run("map(. * 2) | add", json!([1, 2, 3])).await, Ok(json!(12)));
        assert_eq!(run(".a | ascii_upcase", json!({"a": "x"})).await, Ok(json!("X")));
    }

    /// The input reaches jaq as a value (not as text): it comes out of `.` unchanged, keys in their
    /// order, numbers of every kind with their type, text with escapes and non-ASCII characters.
    #[tokio::test]
    async fn the_input_reaches_the_filter_unchanged() {
        let input = json!({
            "z": 1, "a": -7, "m": 2.5, "big": 18_446_744_073_709_551_615u64, "min": i64::MIN,
            "tiny": 1e-300, "text": "line\n\"quoted\" \u{0} é 日本 🦀", "empty": {}, "list": [null, true, false, []],
        });
        assert_eq!(run(".", input.clone()).await, Ok(input.clone()));
        assert_eq!(
            run("keys_unsorted", input.clone()).await,
            Ok(json!(["z", "a", "m", "big", "min", "tiny", "text", "empty", "list"]))
        );
        assert_eq!(
            run("[.z, .a, .m, .big, .min] | map(type)", input.clone()).await,
            Ok(json!(["number", "number", "number", "number", "number"]))
        );
        assert_eq!(run(".text | length", input.clone()).await, Ok(json!(22)));
        assert_eq!(run(".big > .z and .min < .a and .m * 2 == 5", input).await, Ok(json!(true)));
    }

    #[test]
    fn compile_errors_point_at_the_position() {
        let check = |code: &str, line: usize, column: usize| match Transform::compile(code) {
            Err(TransformError::Compile { line: l, column: c, message }) => {
                assert_eq!((l, c), (line, column), "{code}: {message}");
            }
            other => panic!("{code}: expected a compile error, got {other:?}"),
        };
        check(".a | ", 1, 6);
        check(".a | foo", 1, 6);
        check("{a: .b,\n  c: $nope}", 2, 6);
        check(".[", 1, 3);
        check(".a ) ", 1, 4);
        let err = Transform::compile(".a | nosuchfn(1)").expect_err("undefined").to_string();
        assert!(err.contains("nosuchfn") && err.contains("line 1, column 6"), "{err}");
    }

    #[tokio::test]
    async fn environment_and_io_are_unavailable() {
        let out = run("env", json!(null)).await;
        assert!(matches!(out, Err(TransformError::Runtime(_))), "{out:?}");
        assert!(Transform::compile("$ENV").is_err());
        assert!(run("input", json!(null)).await.is_err());
        assert!(run("halt", json!(null)).await.is_err());
        assert_eq!(
            run("debug", json!(1)).await,
            Err(TransformError::Runtime("this function is not available in webhook transformations".into()))
        );
    }

    #[tokio::test]
    async fn runtime_errors_and_bounds() {
        assert!(matches!(run(".a.b", json!({"a": 1})).await, Err(TransformError::Runtime(_))));
        assert!(
            matches!(run("error(\"boom\")", json!(1)).await, Err(TransformError::Runtime(m)) if m.contains("boom"))
        );
        // a long message is cut at 500 bytes, a string still without its quotes and escapes
        for code in ["error(\"é\\\"\" * 400)", "error(\"a\\n\" * 300)", "error([range(1000)])"] {
            let Err(TransformError::Runtime(m)) = run(code, json!(1)).await else { panic!("{code}") };
            assert!(m.len() <= MAX_ERROR_BYTES + 3 && m.ends_with("..."), "{code}: {m}");
            assert!(
                m.starts_with("é\"é\"") || m.starts_with("a\na\n") || m.starts_with("[0,1,2"),
                "{code}: {m}"
            );
        }
        // output bound: a stream without end stops at the size bound
        let t = Transform::compile("repeat(\"xxxxxxxxxx\")").expect("compiles");
        let limits = Limits { time: Duration::from_secs(5), max_output_bytes: 10_000 };
        assert_eq!(t.run(&json!(null), limits).await, Err(TransformError::TooLarge(10_000)));
        // one big value
        let t = Transform::compile("[range(100000)]").expect("compiles");
        assert_eq!(t.run(&json!(null), limits).await, Err(TransformError::TooLarge(10_000)));
        // time bound: a loop without output
        let t = Transform::compile("last(range(1e9))").expect("compiles");
        let limits = Limits { time: Duration::from_millis(200), max_output_bytes: 10_000 };
        let started = std::time::Instant::now();
        assert_eq!(
            t.run(&json!(null), limits).await,
            Err(TransformError::Timeout(Duration::from_millis(200)))
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    /// Runs as long as it is let, with an output every 100,000 steps (where a given-up run stops).
    const SPINNER: &str = "range(1e15) | select(. % 100000 == 0)";

    #[tokio::test]
    async fn a_burst_beyond_the_pool_waits_its_turn() {
        let pool = Arc::new(Pool::start(2, 64).expect("threads start"));
        let t = Transform::compile(". as $n | [range(20000)] | add + $n").expect("compiles");
        let limits = Limits { time: Duration::from_secs(120), max_output_bytes: 1 << 20 };
        let mut runs = tokio::task::JoinSet::new();
        for i in 0..16 {
            let (pool, filter) = (pool.clone(), t.filter.clone());
            runs.spawn(async move { (i, pool.run(&filter, &json!(i), limits).await) });
        }
        let mut done = 0;
        while let Some(joined) = runs.join_next().await {
            let (i, result) = joined.expect("the run's task ends");
            assert_eq!(result, Ok(json!(199_990_000 + i)), "run {i}");
            done += 1;
        }
        assert_eq!(done, 16);
    }

    #[tokio::test]
    async fn no_free_thread_means_busy_and_a_dropped_call_frees_its_thread() {
        let pool = Arc::new(Pool::start(1, 1).expect("a thread starts"));
        let spinner = Transform::compile(SPINNER).expect("compiles");
        let quick = Transform::compile(". + 1").expect("compiles");
        let long = Limits { time: Duration::from_secs(600), max_output_bytes: 64 << 20 };
        let occupying = {
            let (pool, filter) = (pool.clone(), spinner.filter.clone());
            tokio::spawn(async move { pool.run(&filter, &json!(null), long).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The only thread is taken, and so is the queue's one place: whichever of the two calls
        // queues waits out its bound and never runs, the other finds the queue full.
        let short = Limits { time: Duration::from_millis(300), max_output_bytes: 1024 };
        let (one, two) = (json!(1), json!(2));
        let (a, b) = tokio::join!(pool.run(&quick.filter, &one, short), pool.run(&quick.filter, &two, short));
        assert_eq!(a, Err(TransformError::Busy));
        assert_eq!(b, Err(TransformError::Busy));
        // The spinner's caller goes away: the filter stops at its next output and the thread
        // serves again.
        occupying.abort();
        let limits = Limits { time: Duration::from_secs(60), max_output_bytes: 1024 };
        assert_eq!(pool.run(&quick.filter, &json!(41), limits).await, Ok(json!(42)));
    }

    /// Filters that never output: before jaq's interrupt check, each held its pool thread until the
    /// process ended, so a pool of one thread answered `Busy` to every later run.
    #[tokio::test]
    async fn a_filter_that_never_outputs_is_stopped_and_gives_its_thread_back() {
        let pool = Pool::start(1, 4).expect("a thread starts");
        let quick = Transform::compile(". + 1").expect("compiles");
        let short = Limits { time: Duration::from_millis(150), max_output_bytes: 1024 };
        let enough = Limits { time: Duration::from_secs(30), max_output_bytes: 1024 };
        for code in [
            "[range(1e15)] | length", // a native generator, collected
            "def f: f; f",            // a tail call forever
            "last(repeat(1))",        // a recursive definition, no output
            "reduce range(1e15) as $x (0; . + $x)",
            "[limit(1e15; repeat(1))] | length",
            "try ([range(1e15)] | length) catch 0", // a `try` does not keep it going
            "[path(def f: .a, f; f)] | length",     // paths
            "def f: (.a, f); f |= 1",               // updates
        ] {
            let t = Transform::compile(code).expect("compiles");
            let result = pool.run(&t.filter, &json!({"a": {"a": 1}}), short).await;
            // stopped at the time bound, or (where each step nests deeper) at the stack's reserve
            let stopped = result == Err(TransformError::Timeout(short.time))
                || matches!(&result, Err(TransformError::Runtime(m)) if m == TOO_DEEP);
            assert!(stopped, "{code}: {result:?}");
            // the one thread is free again at once (within a term of the stop)
            assert_eq!(pool.run(&quick.filter, &json!(1), enough).await, Ok(json!(2)), "after {code}");
        }
    }

    /// A run that used much of its thread's stack is followed by a fresh thread (the touched stack
    /// of the old one is given back when it ends); a shallow run is not. The pool serves on.
    #[tokio::test]
    async fn a_thread_whose_stack_was_used_deeply_is_replaced() {
        let pool = Pool::start(1, 4).expect("a thread starts");
        let limits = Limits { time: Duration::from_secs(60), max_output_bytes: 1024 };
        let quick = Transform::compile(". + 1").expect("compiles");
        let retired = || pool.shared.retired.load(Ordering::Relaxed);
        assert_eq!(pool.run(&quick.filter, &json!(1), limits).await, Ok(json!(2)));
        assert_eq!(retired(), 0);
        let deep = Transform::compile("def f: 1 + f; f").expect("compiles");
        for round in 1..=3 {
            let result = pool.run(&deep.filter, &json!(null), limits).await;
            assert!(matches!(&result, Err(TransformError::Runtime(m)) if m == TOO_DEEP), "{result:?}");
            assert_eq!(pool.run(&quick.filter, &json!(round), limits).await, Ok(json!(round + 1)));
            assert_eq!(retired(), round);
        }
    }

    /// Deeply nested and very long filters compile (or fail with an error) instead of overflowing
    /// the stack of the thread that defines them: each kind of nesting at the longest length
    /// allowed, on a thread with a runtime worker's 2 MiB stack, as in the api.
    #[test]
    fn deep_filters_compile_without_overflowing_the_callers_stack() {
        let n = |unit: usize| MAX_FILTER_BYTES / unit - 2;
        let shapes: Vec<(&str, String)> = vec![
            ("parens", format!("{}.{}", "(".repeat(n(2)), ")".repeat(n(2)))),
            ("arrays", format!("{}{}", "[".repeat(n(2)), "]".repeat(n(2)))),
            ("objects", format!("{}1{}", "{a:".repeat(n(4)), "}".repeat(n(4)))),
            ("interpolation", format!("{}1{}", "\"\\(".repeat(n(5)), ")\"".repeat(n(5)))),
            ("ifs", format!("{}.{}", "if . then ".repeat(n(14)), " end".repeat(n(14)))),
            ("reduce", format!("{}.{}", "reduce . as $x (.; ".repeat(n(20)), ")".repeat(n(20)))),
            ("defs", format!("{}.{}", "def f: ".repeat(n(10)), "; f".repeat(n(10)))),
            ("pipes", format!("{}.", ". | ".repeat(n(4)))),
            ("sums", format!("{}1", "1 + ".repeat(n(4)))),
            ("negations", format!("{}1", "-".repeat(n(1)))),
            ("bindings", format!("{}.", ". as $x | ".repeat(n(10)))),
            ("commas", format!("{}1", "1, ".repeat(n(3)))),
            ("alternatives", format!("{}.", ". // ".repeat(n(5)))),
            ("tries", format!("{}.", "try ".repeat(n(4)))),
            ("paths", ".a".repeat(n(2))),
            // the deepest nesting short enough to compile on the caller's thread
            ("inline", format!("{}1", "-".repeat(INLINE_COMPILE_BYTES - 1))),
        ];
        let compiled = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                shapes
                    .into_iter()
                    .map(|(name, code)| {
                        assert!(code.len() <= MAX_FILTER_BYTES, "{name}: {}", code.len());
                        (name, Transform::compile(&code).map(|_| ()))
                    })
                    .collect::<Vec<_>>()
            })
            .expect("thread")
            .join()
            .expect("no shape overflowed the stack");
        assert_eq!(compiled.len(), 16);
        // they are all valid jq: each compiles
        for (name, result) in &compiled {
            assert!(result.is_ok(), "{name}: {result:?}");
        }
        // one byte over the limit is refused before it is parsed
        let long = format!(". {}", " ".repeat(MAX_FILTER_BYTES));
        assert!(
            matches!(Transform::compile(&long), Err(TransformError::Compile { message, .. }) if message.contains("at most 16384 bytes"))
        );
    }

    /// Unbounded recursion is an error, not a stack overflow (which aborts the process: this test
    /// binary would die).
    #[tokio::test]
    async fn unbounded_recursion_is_an_error() {
        let limits = Limits { time: Duration::from_secs(60), max_output_bytes: 1024 };
        for code in ["def f: 1 + f; f", "def f: [f]; f", "def f: f + 1; f", "def f: {a: f}; f | length"] {
            let t = Transform::compile(code).expect("compiles");
            let result = t.run(&json!(null), limits).await;
            assert!(
                matches!(&result, Err(TransformError::Runtime(m)) if m == TOO_DEEP),
                "{code}: {result:?}"
            );
        }
        // a string repetition beyond 64 MiB is an error at once (it was one allocation of any
        // size: `"x" * 1000000000000` wrote gigabytes after its caller gave up)
        for code in ["\"x\" * 1000000000000", "\"ab\" * 40000000", "100000000000000000000 * \"x\""] {
            let t = Transform::compile(code).expect("compiles");
            let result = t.run(&json!(null), limits).await;
            assert!(
                matches!(&result, Err(TransformError::Runtime(m)) if m.contains("may not exceed 67108864 bytes")),
                "{code}: {result:?}"
            );
        }
        let t = Transform::compile("(\"ab\" * 3), (\"x\" * 1000000 | length)").expect("compiles");
        assert_eq!(t.run(&json!(null), limits).await, Ok(json!(["ababab", 1_000_000])));
        // deep but bounded recursion still works, and the thread serves on
        let t = Transform::compile("def f: if . == 0 then 0 else (. - 1 | f) + 1 end; f").expect("compiles");
        assert_eq!(t.run(&json!(2000), limits).await, Ok(json!(2000)));
    }

    /// A value nested 400,000 levels deep is freed, compared, sorted, merged, searched, walked,
    /// written, read and refused as output without a stack overflow (each aborted this test binary:
    /// these recursed once per level, past the end of the pool thread's 64 MiB stack; `..` took
    /// quadratic time before it got there).
    #[tokio::test]
    async fn deeply_nested_values_do_not_overflow_the_stack() {
        let limits = Limits { time: Duration::from_secs(120), max_output_bytes: 1024 };
        let arr = "(reduce range(400000) as $x (0; [.]))";
        let obj = "(reduce range(400000) as $x (0; {a: .}))";
        let cases = [
            (format!("{arr} | length"), Ok(json!(1))),
            (format!("{arr} | tojson | length"), Ok(json!(800_001))),
            (
                format!("{arr} as $a | {arr} as $b | $a == $b, $a < [$b], ($a | contains($b))"),
                Ok(json!([true, true, true])),
            ),
            (format!("[{arr}, {arr}, 1] | unique | length"), Ok(json!(2))),
            (format!("[{obj}, {obj}] | group_by(.) | length"), Ok(json!(1))),
            (format!("{obj} * {obj} | keys"), Ok(json!(["a"]))),
            (format!("{obj} | [..] | length"), Ok(json!(400_001))),
            (format!("{arr} | walk(.) | length"), Err("recursed too deeply")),
            (arr.to_owned(), Err("nested deeper than 128 levels")),
            (format!("{obj} | {{ok: 1, deep: .}}"), Err("nested deeper than 128 levels")),
            (format!("{arr} | error"), Err("[[[[")),
            (format!("{arr} | . + 1"), Err("cannot")),
            // the input's beginning, then the reason
            (
                "\"[\" * 1000000 | fromjson".to_owned(),
                Err("[[[... as JSON: byte offset 10000: maximal depth exceeded"),
            ),
            (format!("{arr} | tojson | fromjson"), Err("cannot parse")),
            // text is read up to 10,000 levels deep (jq's limit)
            (
                "[10000, 10001] | map(\"[\" * . + \"]\" * . | try (fromjson | length) catch \"refused\")"
                    .to_owned(),
                Ok(json!([1, "refused"])),
            ),
        ];
        for (code, expected) in cases {
            let t = Transform::compile(&code).expect("compiles");
            let result = t.run(&json!(null), limits).await;
            match (&result, &expected) {
                (Ok(value), Ok(expected)) => assert_eq!(value, expected, "{code}"),
                (Err(TransformError::Runtime(message)), Err(part)) => {
                    assert!(message.contains(part), "{code}: {message}");
                    assert!(message.len() <= MAX_ERROR_BYTES + 3, "{code}: {} bytes", message.len());
                }
                _ => panic!("{code}: {result:?}, expected {expected:?}"),
            }
        }
        // a 128-level output is served
        let t = Transform::compile("reduce range(127) as $x (0; [.]) | flatten").expect("compiles");
        assert_eq!(t.run(&json!(null), limits).await, Ok(json!([0])));
    }

    /// Outputs reach `serde_json` as values, with their size counted as compact JSON.
    #[tokio::test]
    async fn outputs_keep_their_numbers_and_text_and_are_bounded_as_json() {
        let limits = Limits { time: Duration::from_secs(5), max_output_bytes: 1 << 20 };
        let t = Transform::compile(
            "1, -2, 2.5, 3.0, 100000000000000000000, 18446744073709551615, \"é\\n\", {a: [null, true]}",
        )
        .expect("compiles");
        let out = t.run(&json!(null), limits).await.expect("runs");
        assert_eq!(out.to_string(), r#"[1,-2,2.5,3.0,1e+20,18446744073709551615,"é\n",{"a":[null,true]}]"#);
        for code in ["nan", "infinite", "[1, -infinite]", "{a: nan}", "\"x\" | tobytes"] {
            let t = Transform::compile(code).expect("compiles");
            assert_eq!(
                t.run(&json!(null), limits).await,
                Err(TransformError::Runtime("the filter produced a value that is not JSON".into())),
                "{code}"
            );
        }
        // the bound is the compact JSON's size: `"ab\""` is six bytes
        let t = Transform::compile("\"ab\\\"\"").expect("compiles");
        let bounded = |max_output_bytes| Limits { time: Duration::from_secs(5), max_output_bytes };
        assert_eq!(t.run(&json!(null), bounded(6)).await, Ok(json!("ab\"")));
        assert_eq!(t.run(&json!(null), bounded(5)).await, Err(TransformError::TooLarge(5)));
    }
}
