//! The speech engines' wait line. Requests wait here for a worker (a whisper state, a Piper
//! session); a free worker takes the most urgent one (oldest first among equals), so a
//! caller who has stopped talking is not kept waiting behind a speculative transcription or
//! an uploaded file, and a reply's next sentence not behind a long `/v1/audio/speech`.
//! Urgency is read when a worker becomes free: an early transcription the turn has since
//! confirmed goes ahead of one still speculative.
//!
//! The line is bounded. When it is full, a request more urgent than the least urgent one
//! waiting takes that one's place (that one is refused with `Overloaded`); otherwise the
//! new request is refused. A live call is never refused to make room for an upload.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// How urgently a transcription is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum Priority {
    /// Nobody on a live call waits: uploaded files, voice notes, `/v1/audio/speech`.
    Batch = 0,
    /// A live call may need it: the turn so far, transcribed at a pause.
    Speculative = 1,
    /// A live caller has finished speaking and waits for the answer.
    #[default]
    Live = 2,
}

impl Priority {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Batch,
            1 => Self::Speculative,
            _ => Self::Live,
        }
    }
}

/// A request's priority, shared between whoever asked and the queue, so it can be raised
/// while the request waits ([`Urgency::raise`]). Live by default.
#[derive(Debug, Clone)]
pub struct Urgency(Arc<AtomicU8>);

impl Default for Urgency {
    fn default() -> Self {
        Self::new(Priority::default())
    }
}

impl Urgency {
    pub fn new(priority: Priority) -> Self {
        Self(Arc::new(AtomicU8::new(priority as u8)))
    }

    pub fn get(&self) -> Priority {
        Priority::from_u8(self.0.load(Ordering::Relaxed))
    }

    /// Raise the priority (never lowers it).
    pub fn raise(&self, to: Priority) {
        self.0.fetch_max(to as u8, Ordering::Relaxed);
    }
}

/// What waits in a [`Queue`].
pub(crate) trait Waiting {
    fn urgency(&self) -> Priority;
    /// Whoever asked has gone: the request is dropped instead of run.
    fn abandoned(&self) -> bool;
    /// Tell whoever asked that the request gave its place to a more urgent one, in a line
    /// of `capacity`.
    fn refuse(self, capacity: usize);
}

/// Why a request was not queued; the request comes back with it.
#[derive(Debug)]
pub(crate) enum Refused<T> {
    Full(T),
    Closed(T),
}

/// A bounded, urgency-ordered wait line shared by worker threads.
pub(crate) struct Queue<T> {
    inner: Mutex<Inner<T>>,
    ready: Condvar,
    capacity: usize,
}

struct Inner<T> {
    /// In arrival order.
    waiting: Vec<T>,
    closed: bool,
}

impl<T: Waiting> Queue<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                waiting: Vec::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue `item`, refusing ([`Waiting::refuse`]) a less urgent request to make room when
    /// the line is full.
    pub fn push(&self, item: T) -> Result<(), Refused<T>> {
        let mut inner = self.lock();
        if inner.closed {
            return Err(Refused::Closed(item));
        }
        inner.waiting.retain(|w| !w.abandoned());
        let mut evicted = None;
        if inner.waiting.len() >= self.capacity {
            // The least urgent, newest among equals.
            let least = inner
                .waiting
                .iter()
                .enumerate()
                .min_by_key(|(i, w)| (w.urgency(), std::cmp::Reverse(*i)))
                .map(|(i, w)| (i, w.urgency()));
            match least {
                Some((i, urgency)) if urgency < item.urgency() => {
                    evicted = Some(inner.waiting.remove(i));
                }
                _ => return Err(Refused::Full(item)),
            }
        }
        inner.waiting.push(item);
        drop(inner);
        self.ready.notify_one();
        if let Some(evicted) = evicted {
            evicted.refuse(self.capacity);
        }
        Ok(())
    }

    /// The most urgent request (oldest first among equals), waiting for one; `None` once
    /// the queue is closed and empty.
    pub fn pop(&self) -> Option<T> {
        let mut inner = self.lock();
        loop {
            if let Some(item) = Self::take_most_urgent(&mut inner, None) {
                return Some(item);
            }
            if inner.closed {
                return None;
            }
            inner = self.ready.wait(inner).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The most urgent request more urgent than `floor`, if one waits now: what a worker in the
    /// middle of a long `floor` job serves before going on with it.
    pub fn try_pop_above(&self, floor: Priority) -> Option<T> {
        Self::take_most_urgent(&mut self.lock(), Some(floor))
    }

    fn take_most_urgent(inner: &mut Inner<T>, above: Option<Priority>) -> Option<T> {
        inner.waiting.retain(|w| !w.abandoned());
        let (i, urgency) = inner
            .waiting
            .iter()
            .enumerate()
            .max_by_key(|(i, w)| (w.urgency(), std::cmp::Reverse(*i)))
            .map(|(i, w)| (i, w.urgency()))?;
        above
            .is_none_or(|floor| urgency > floor)
            .then(|| inner.waiting.remove(i))
    }

    /// How many requests may wait.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// No more requests; the workers finish what waits, then stop.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    struct Item {
        id: usize,
        urgency: Urgency,
        gone: Arc<AtomicBool>,
        refused: Arc<AtomicBool>,
    }

    impl Waiting for Item {
        fn urgency(&self) -> Priority {
            self.urgency.get()
        }
        fn abandoned(&self) -> bool {
            self.gone.load(Ordering::Relaxed)
        }
        fn refuse(self, _capacity: usize) {
            self.refused.store(true, Ordering::Relaxed);
        }
    }

    fn item(id: usize, p: Priority) -> Item {
        Item {
            id,
            urgency: Urgency::new(p),
            gone: Arc::default(),
            refused: Arc::default(),
        }
    }

    fn ids(q: &Queue<Item>) -> Vec<usize> {
        q.close();
        std::iter::from_fn(|| q.pop()).map(|i| i.id).collect()
    }

    #[test]
    fn requests_are_live_unless_told_otherwise() {
        assert_eq!(Urgency::default().get(), Priority::Live);
        for p in [Priority::Batch, Priority::Speculative, Priority::Live] {
            assert_eq!(Priority::from_u8(p as u8), p);
        }
    }

    #[test]
    fn the_most_urgent_goes_first_and_a_raised_request_moves_up() {
        let q = Queue::new(8);
        let early = item(1, Priority::Speculative);
        for i in [
            item(0, Priority::Batch),
            early.clone(),
            item(2, Priority::Live),
            item(3, Priority::Speculative),
            item(4, Priority::Live),
        ] {
            q.push(i).unwrap();
        }
        let gone = item(5, Priority::Live);
        q.push(gone.clone()).unwrap();
        gone.gone.store(true, Ordering::Relaxed);
        early.urgency.raise(Priority::Live);
        early.urgency.raise(Priority::Batch); // never lowers
        assert_eq!(ids(&q), [1, 2, 4, 3, 0]);
    }

    #[test]
    fn a_worker_between_pieces_takes_only_what_is_more_urgent() {
        let q = Queue::new(8);
        q.push(item(0, Priority::Batch)).unwrap();
        assert!(q.try_pop_above(Priority::Batch).is_none(), "an equal stays");
        let early = item(1, Priority::Speculative);
        q.push(early.clone()).unwrap();
        q.push(item(2, Priority::Live)).unwrap();
        assert_eq!(q.try_pop_above(Priority::Batch).map(|i| i.id), Some(2));
        early.gone.store(true, Ordering::Relaxed);
        assert!(q.try_pop_above(Priority::Batch).is_none(), "abandoned");
        assert_eq!(ids(&q), [0]);
    }

    #[test]
    fn a_full_queue_makes_room_only_for_a_more_urgent_request() {
        let q = Queue::new(2);
        let (first, second) = (item(0, Priority::Batch), item(1, Priority::Batch));
        q.push(first.clone()).unwrap();
        q.push(second.clone()).unwrap();
        assert!(matches!(
            q.push(item(2, Priority::Batch)),
            Err(Refused::Full(_))
        ));
        q.push(item(3, Priority::Live)).unwrap();
        assert!(
            second.refused.load(Ordering::Relaxed) && !first.refused.load(Ordering::Relaxed),
            "the newest of the least urgent makes room"
        );
        q.push(item(4, Priority::Speculative)).unwrap();
        assert!(first.refused.load(Ordering::Relaxed));
        assert!(matches!(
            q.push(item(5, Priority::Speculative)),
            Err(Refused::Full(_))
        ));
        assert_eq!(ids(&q), [3, 4]);
        assert!(matches!(
            q.push(item(6, Priority::Live)),
            Err(Refused::Closed(_))
        ));
    }

    #[test]
    fn workers_wait_for_requests_and_stop_when_closed() {
        let q: Arc<Queue<Item>> = Arc::new(Queue::new(4));
        let worker = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                std::iter::from_fn(|| q.pop())
                    .map(|i| i.id)
                    .collect::<Vec<_>>()
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        q.push(item(7, Priority::Live)).unwrap();
        q.close();
        assert_eq!(worker.join().unwrap(), [7]);
    }

    proptest! {
        /// Whatever arrives, the line never holds more than its capacity, never refuses a
        /// request while something less urgent waits, and hands requests out by urgency,
        /// oldest first among equals.
        #[test]
        fn the_line_is_bounded_and_ordered(capacity in 1usize..6,
                                           arrivals in proptest::collection::vec(0u8..3, 0..40)) {
            let q = Queue::new(capacity);
            let mut held: Vec<(Priority, usize)> = Vec::new();
            let mut all = Vec::new();
            for (id, p) in arrivals.into_iter().enumerate() {
                let p = Priority::from_u8(p);
                let new = item(id, p);
                all.push(new.clone());
                match q.push(new) {
                    Ok(()) => {
                        let refused: Vec<usize> = held
                            .iter()
                            .filter(|h| all[h.1].refused.load(Ordering::Relaxed))
                            .map(|h| h.1)
                            .collect();
                        prop_assert!(refused.len() <= 1);
                        if let Some(&e) = refused.first() {
                            let least = held.iter().map(|h| h.0).min().unwrap();
                            prop_assert!(all[e].urgency.get() == least && least < p);
                            held.retain(|h| h.1 != e);
                        }
                        held.push((p, id));
                    }
                    Err(Refused::Full(_)) => {
                        prop_assert_eq!(held.len(), capacity);
                        prop_assert!(held.iter().all(|h| h.0 >= p));
                    }
                    Err(Refused::Closed(_)) => prop_assert!(false, "not closed"),
                }
                prop_assert!(held.len() <= capacity);
            }
            held.sort_by_key(|&(p, id)| (std::cmp::Reverse(p), id));
            let expected: Vec<usize> = held.iter().map(|h| h.1).collect();
            prop_assert_eq!(ids(&q), expected);
        }
    }
}
