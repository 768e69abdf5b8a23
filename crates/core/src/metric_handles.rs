//! Metric handles kept by their label values.
//!
//! `metrics::counter!("name", "label" => value.to_owned(), ...)` builds a key (an allocation per
//! label), hashes it and looks it up in the recorder's registry on every call: a few thousand
//! instructions for a six-label counter, on every tool call. A [`HandleCache`] looks the label
//! values up in a small map of its own (no allocation once the set is known) and hands back the
//! handle the recorder gave the first time.
//!
//! The cache remembers which recorder made its handles and starts over when another one is in
//! place (the process-wide recorder is usually installed after the first handles were asked for by
//! a library, and would otherwise never see them). Recorders set with
//! `metrics::with_local_recorder` are told apart by address only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::RwLock;

use metrics::{Counter, Gauge, Histogram, Label, Recorder};

/// Most label sets one cache keeps; beyond it each call registers anew (memory stays bounded
/// whatever the labels' cardinality).
const MAX_ENTRIES: usize = 4096;

type Hasher = foldhash::fast::FixedState;

/// Handles of one metric by label values. See the [module documentation](self).
pub struct HandleCache<H> {
    name: &'static str,
    labels: &'static [&'static str],
    register: fn(&'static str, Vec<Label>) -> H,
    state: RwLock<State<H>>,
}

struct State<H> {
    /// The address of the recorder the handles came from.
    recorder: usize,
    handles: HashMap<Box<[u8]>, H, Hasher>,
}

thread_local! {
    /// The lookup key of the current call, reused between calls.
    static KEY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl HandleCache<Counter> {
    /// A cache of the counter `name` with these label names.
    pub const fn counter(name: &'static str, labels: &'static [&'static str]) -> Self {
        Self::new(name, labels, |name, labels| metrics::counter!(name, labels))
    }
}

impl HandleCache<Histogram> {
    /// A cache of the histogram `name` with these label names.
    pub const fn histogram(name: &'static str, labels: &'static [&'static str]) -> Self {
        Self::new(name, labels, |name, labels| metrics::histogram!(name, labels))
    }
}

impl HandleCache<Gauge> {
    /// A cache of the gauge `name` with these label names.
    pub const fn gauge(name: &'static str, labels: &'static [&'static str]) -> Self {
        Self::new(name, labels, |name, labels| metrics::gauge!(name, labels))
    }
}

impl<H: Clone> HandleCache<H> {
    const fn new(
        name: &'static str,
        labels: &'static [&'static str],
        register: fn(&'static str, Vec<Label>) -> H,
    ) -> Self {
        Self {
            name,
            labels,
            register,
            state: RwLock::new(State {
                recorder: 0,
                handles: HashMap::with_hasher(Hasher::with_seed(0x5eed)),
            }),
        }
    }

    /// The handle for these label values, in the order of the label names given at construction
    /// (missing values are empty labels, extra ones are ignored).
    pub fn get(&self, values: &[&str]) -> H {
        let recorder =
            metrics::with_recorder(|r| std::ptr::from_ref::<dyn Recorder>(r).cast::<()>() as usize);
        KEY.with_borrow_mut(|key| {
            key.clear();
            for value in values.iter().take(self.labels.len()) {
                // Length-prefixed, so no two lists of values make the same key.
                key.extend_from_slice(&(value.len() as u64).to_le_bytes());
                key.extend_from_slice(value.as_bytes());
            }
            {
                let state = self.state.read().unwrap_or_else(|e| e.into_inner());
                if state.recorder == recorder
                    && let Some(handle) = state.handles.get(key.as_slice())
                {
                    return handle.clone();
                }
            }
            let labels = self
                .labels
                .iter()
                .enumerate()
                .map(|(i, name)| Label::new(*name, values.get(i).copied().unwrap_or_default().to_owned()))
                .collect();
            let handle = (self.register)(self.name, labels);
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            if state.recorder != recorder {
                state.handles.clear();
                state.recorder = recorder;
            }
            if state.handles.len() < MAX_ENTRIES {
                state.handles.insert(key.as_slice().into(), handle.clone());
            }
            handle
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use metrics::{Key, KeyName, Metadata, SharedString, Unit};
    use metrics_util::registry::{AtomicStorage, Registry};

    use super::*;

    /// A recorder keeping counters and gauges in a registry, and counting registrations.
    struct Counting {
        registry: Registry<Key, AtomicStorage>,
        registrations: std::sync::atomic::AtomicUsize,
    }

    impl Counting {
        fn new() -> Arc<Self> {
            Arc::new(Self { registry: Registry::atomic(), registrations: Default::default() })
        }
        fn registrations(&self) -> usize {
            self.registrations.load(std::sync::atomic::Ordering::SeqCst)
        }
        fn counter_value(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> u64 {
            let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, *v)).collect();
            let key = Key::from_parts(name, labels);
            self.registry
                .get_counter(&key)
                .map(|c| c.load(std::sync::atomic::Ordering::SeqCst))
                .unwrap_or_default()
        }
    }

    impl Recorder for Counting {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.registrations.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.registry.get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            self.registrations.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.registry.get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn handles_are_registered_once_per_label_set_and_count_under_their_labels() {
        static CALLS: HandleCache<Counter> = HandleCache::counter("calls_total", &["tool", "outcome"]);
        let recorder = Counting::new();
        metrics::with_local_recorder(recorder.as_ref(), || {
            for _ in 0..3 {
                CALLS.get(&["a", "ok"]).increment(1);
            }
            CALLS.get(&["a", "fail"]).increment(2);
            // The same bytes split differently are another label set.
            CALLS.get(&["ab", ""]).increment(5);
            CALLS.get(&["a", "bok"]).increment(7);
        });
        assert_eq!(recorder.counter_value("calls_total", &[("tool", "a"), ("outcome", "ok")]), 3);
        assert_eq!(recorder.counter_value("calls_total", &[("tool", "a"), ("outcome", "fail")]), 2);
        assert_eq!(recorder.counter_value("calls_total", &[("tool", "ab"), ("outcome", "")]), 5);
        assert_eq!(recorder.counter_value("calls_total", &[("tool", "a"), ("outcome", "bok")]), 7);
        assert_eq!(recorder.registrations(), 4, "one registration per label set");
    }

    #[test]
    fn another_recorder_gets_its_own_handles() {
        static LEFT: HandleCache<Gauge> = HandleCache::gauge("budget_left", &["resource"]);
        let first = Counting::new();
        let second = Counting::new();
        metrics::with_local_recorder(first.as_ref(), || LEFT.get(&["core"]).set(10.0));
        metrics::with_local_recorder(second.as_ref(), || LEFT.get(&["core"]).set(20.0));
        assert_eq!(first.registrations(), 1);
        assert_eq!(second.registrations(), 1, "the second recorder registered its own handle");
        let key = Key::from_parts("budget_left", vec![Label::new("resource", "core")]);
        let read = |r: &Counting| {
            r.registry.get_gauge(&key).map(|g| f64::from_bits(g.load(std::sync::atomic::Ordering::SeqCst)))
        };
        assert_eq!(read(&first), Some(10.0));
        assert_eq!(read(&second), Some(20.0));
    }

    #[test]
    fn the_cache_stops_growing_at_its_bound() {
        static WIDE: HandleCache<Counter> = HandleCache::counter("wide_total", &["id"]);
        let recorder = Counting::new();
        metrics::with_local_recorder(recorder.as_ref(), || {
            for i in 0..MAX_ENTRIES + 10 {
                WIDE.get(&[&i.to_string()]).increment(1);
            }
            // Past the bound, still counted under the right labels.
            WIDE.get(&[&(MAX_ENTRIES + 5).to_string()]).increment(1);
        });
        assert_eq!(WIDE.state.read().expect("lock").handles.len(), MAX_ENTRIES);
        let last = (MAX_ENTRIES + 5).to_string();
        let labels = vec![Label::new("id", last)];
        let key = Key::from_parts("wide_total", labels);
        assert_eq!(
            recorder.registry.get_counter(&key).map(|c| c.load(std::sync::atomic::Ordering::SeqCst)),
            Some(2)
        );
    }
}
