//! The reply side of a request to an inference worker thread.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

/// A pending result from a worker thread: `.await` it on a runtime, or `wait()` from plain threads.
/// Dropping it tells the worker the result is no longer wanted.
#[derive(Debug)]
pub struct Job<T, E> {
    rx: oneshot::Receiver<Result<T, E>>,
    /// Produced when the worker went away without answering.
    lost: fn() -> E,
}

impl<T, E> Job<T, E> {
    pub(crate) fn new(rx: oneshot::Receiver<Result<T, E>>, lost: fn() -> E) -> Self {
        Self { rx, lost }
    }

    /// An already-failed job (the request was refused before reaching a worker).
    pub(crate) fn failed(err: E, lost: fn() -> E) -> Self {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(err));
        Self { rx, lost }
    }

    /// Block the current thread until the result arrives. Not for async contexts.
    pub fn wait(self) -> Result<T, E> {
        self.rx
            .blocking_recv()
            .unwrap_or_else(|_| Err((self.lost)()))
    }
}

impl<T, E> Future for Job<T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let lost = self.lost;
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(lost())))
    }
}
