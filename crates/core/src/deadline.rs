//! The deadline of the tool call running on the current task, for code below a tool that waits
//! without a [`ToolContext`](crate::ToolContext) at hand (a provider client's own pacing), and the
//! one rule every wait follows: a wait is worth taking only when it leaves the call at least as long
//! again to finish.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Run `future` as a call with `deadline` (the executor does this around every tool call).
pub async fn scope<F: Future>(deadline: Instant, future: F) -> F::Output {
    DEADLINE.scope(deadline, future).await
}

/// The deadline of the call running on this task; `None` outside a tool call (a provider client
/// used on its own).
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// Whether waiting `wait` at `now` is worth it before `deadline`: only when at least as much time
/// is left for the call after the wait. A slot that arrives just before the deadline would start an
/// upstream call with no time to finish, and the caller would get a `timeout` (for a create, with
/// an unknown effect) instead of a `rate_limited` it can act on.
pub fn fits(wait: Duration, now: Instant, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(now);
    wait.checked_mul(2).is_some_and(|twice| twice <= left)
}

/// The longest the call running on this task may wait from now on ([`fits`]: half of the time it has
/// left); `None` outside a tool call.
pub fn wait_budget() -> Option<Duration> {
    current().map(|deadline| deadline.saturating_duration_since(Instant::now()) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_deadline_is_known_inside_the_scope_only() {
        assert_eq!((current(), wait_budget()), (None, None), "no deadline outside a call");
        let before = Instant::now();
        let deadline = before + Duration::from_secs(10);
        let (inside, budget) = scope(deadline, async { (current(), wait_budget()) }).await;
        assert_eq!(inside, Some(deadline));
        let budget = budget.expect("a budget inside a call");
        assert!(budget <= Duration::from_secs(5) && budget > Duration::from_millis(4900), "{budget:?}");
        assert!(fits(budget, before, deadline), "the budget is a wait that fits");
        assert!(!fits(budget * 3, before, deadline));
        assert_eq!(current(), None);
    }

    #[test]
    fn a_wait_fits_when_the_call_keeps_as_long_again() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(2);
        assert!(fits(Duration::from_secs(1), now, deadline));
        assert!(!fits(Duration::from_millis(1001), now, deadline));
        assert!(!fits(Duration::from_millis(1), deadline, deadline), "no time left");
        assert!(!fits(Duration::MAX, now, deadline), "no overflow");
    }
}
