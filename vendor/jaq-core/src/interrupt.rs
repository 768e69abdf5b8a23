//! PATCHED (integrations-service, vendor/jaq-core/PATCHED.md): a check that a thread can install
//! to stop filters it runs. The interpreter consults it before every term it runs (and before each
//! output of the native `range`), so an evaluation that never outputs (`[range(1e15)]`,
//! `def f: f; f`, `repeat(.)`), or that recurses towards the end of its thread's stack, ends with
//! an error instead of running on until its thread's stack overflows or its process ends.

use core::cell::Cell;

/// A check: `Some(reason)` stops the evaluation with an error whose message is `reason`.
/// It should keep answering `Some` once it has (a `try` may catch one error; the next term fails
/// again, so the evaluation unwinds).
pub type Check = fn() -> Option<&'static str>;

std::thread_local! {
    static CHECK: Cell<Option<Check>> = const { Cell::new(None) };
}

/// Install `check` for filters run on this thread from now on (`None` removes it).
pub fn set(check: Option<Check>) {
    CHECK.with(|c| c.set(check));
}

/// The reason to stop, if the installed check gives one.
#[inline]
pub(crate) fn stop() -> Option<&'static str> {
    CHECK.with(Cell::get).and_then(|check| check())
}
