//! Streams fed by tasks: the reader side of a query runs on its own task (or several), so
//! parsing overlaps with DataFusion's work and a slow consumer holds back the producer.

use std::future::Future;
use std::task::Poll;

use futures::{FutureExt, Stream};

use crate::error::{Code, Result, SelectError};

/// A stream fed by a task: `f` gets a sender and produces items until it returns. The
/// channel holds two items, so a slow consumer stops the producer (bounded memory).
pub(crate) fn async_stream<T, F, Fut>(f: F) -> impl Stream<Item = Result<T>> + Send
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    async_stream_ahead(2, f)
}

/// [`async_stream`] whose producer may run `ahead` items in front of the consumer.
///
/// If the producer panics, the stream ends with an `InternalError` instead of ending
/// early as if the input were shorter: a bug must never look like a complete answer.
pub(crate) fn async_stream_ahead<T, F, Fut>(ahead: usize, f: F) -> impl Stream<Item = Result<T>> + Send
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(ahead.max(1));
    let mut task = AbortOnDrop(Some(tokio::spawn(f(tx))));
    futures::stream::poll_fn(move |cx| match rx.poll_recv(cx) {
        Poll::Ready(None) => {
            // The producer is done (its sender dropped): did it end or fail?
            let Some(handle) = task.0.as_mut() else {
                return Poll::Ready(None);
            };
            match handle.poll_unpin(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(result) => {
                    task.0 = None;
                    match result {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => {
                            tracing::error!(error = %e, "a Select reader task failed");
                            Poll::Ready(Some(Err(SelectError::new(
                                Code::InternalError,
                                "the query's reader failed; the result would be incomplete",
                            ))))
                        }
                    }
                }
            }
        }
        other => other,
    })
}

struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_panicking_producer_ends_the_stream_with_an_error() {
        let items: Vec<Result<u32>> = async_stream(|tx| async move {
            tx.send(Ok(1)).await.unwrap();
            panic!("reader bug");
        })
        .collect()
        .await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap(), &1);
        assert_eq!(items[1].as_ref().unwrap_err().code, Code::InternalError);
        let clean: Vec<Result<u32>> = async_stream(|tx| async move {
            tx.send(Ok(7)).await.unwrap();
        })
        .collect()
        .await;
        assert_eq!(clean.len(), 1);
    }
}
