//! Freeing on the second core. Dropping the last reference to an old object version walks
//! and frees its whole tree; the store drops one for nearly every write (the revision that
//! falls off the end of its history), and that walk was a twentieth of a 10,000-pod run's
//! driver time. Freeing has no effect anything can observe, so it is handed to a thread of
//! its own, in batches, instead.
//!
//! One reaper thread per process, started on first use and never joined: what it has not
//! freed when the process exits, the exit frees. Where no thread can be started, garbage is
//! freed where it is let go, as without the reaper.

use std::sync::mpsc::{self, Sender};
use std::sync::OnceLock;

/// A batch of garbage of any type.
type Batch = Box<dyn Send>;

/// Items per hand-over: enough that the channel's cost per item is nothing, few enough that
/// garbage does not pile up.
const BATCH: usize = 256;

fn reaper() -> Option<&'static Sender<Batch>> {
    static REAPER: OnceLock<Option<Sender<Batch>>> = OnceLock::new();
    REAPER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Batch>();
            std::thread::Builder::new()
                .name("netsim-reaper".into())
                .spawn(move || rx.into_iter().for_each(drop))
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

/// Values let go of, freed on the reaper thread.
pub struct Garbage<T: Send + 'static> {
    items: Vec<T>,
}

impl<T: Send + 'static> Default for Garbage<T> {
    fn default() -> Self {
        Garbage { items: Vec::new() }
    }
}

impl<T: Send + 'static> Garbage<T> {
    /// Lets go of `item`: it is freed later, on the reaper thread.
    pub fn push(&mut self, item: T) {
        self.items.push(item);
        if self.items.len() >= BATCH {
            self.hand_over();
        }
    }

    fn hand_over(&mut self) {
        let batch = std::mem::replace(&mut self.items, Vec::with_capacity(BATCH));
        if let Some(tx) = reaper() {
            // A reaper that has gone hands the batch back in the error: it is freed here.
            let _ = tx.send(Box::new(batch));
        }
    }
}

impl<T: Send + 'static> Drop for Garbage<T> {
    fn drop(&mut self) {
        if !self.items.is_empty() {
            self.hand_over();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts its drops, and on which thread they happen.
    struct Tracked(Arc<AtomicUsize>, Arc<AtomicUsize>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
            if std::thread::current().name() == Some("netsim-reaper") {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn everything_let_go_is_freed_on_the_reaper_thread() {
        let (dropped, on_reaper) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let n = BATCH * 2 + 7;
        {
            let mut g = Garbage::default();
            for _ in 0..n {
                g.push(Tracked(Arc::clone(&dropped), Arc::clone(&on_reaper)));
            }
        }
        // The reaper works at its own pace: wait (bounded) for it to catch up.
        for _ in 0..10_000 {
            if dropped.load(Ordering::SeqCst) == n {
                break;
            }
            std::thread::yield_now();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(dropped.load(Ordering::SeqCst), n, "nothing is lost");
        assert_eq!(
            on_reaper.load(Ordering::SeqCst),
            n,
            "all of it on the reaper"
        );
    }
}
