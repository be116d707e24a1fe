//! Asking shards from the control thread: a [`Query`] through the mesh,
//! the answer through a oneshot, every wait bounded. A shard that does not
//! answer in time (stuck, or shut down) or already has
//! [`limits::ADMIN_QUERIES_PER_SHARD_MAX`] questions waiting is reported
//! by id; the API answers with what the others said.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;

use crate::limits;
use crate::shard::ShardId;
use crate::shard::mesh::Mesh;
use crate::shard::messages::Query;
use crate::shard::messages::ShardMessage;

/// The control thread's handle on the shards.
#[derive(Debug)]
pub(crate) struct ShardClient {
    mesh: Mesh,
    /// One per shard: permits for queries in its inbox.
    permits: Vec<Arc<Semaphore>>,
    timeout: Duration,
}

/// Why a shard gave no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoAnswer {
    /// Too many questions already wait in its inbox.
    Busy,
    /// Silent past the timeout, or gone (shutting down).
    Silent,
}

/// What every shard said, and which did not answer.
#[derive(Debug)]
pub(crate) struct Answers<T> {
    pub answered: Vec<(ShardId, T)>,
    pub unanswered: Vec<ShardId>,
}

impl ShardClient {
    pub(crate) fn new(mesh: Mesh, timeout: Duration) -> ShardClient {
        let permits = (0..mesh.shards())
            .map(|_| Arc::new(Semaphore::new(limits::ADMIN_QUERIES_PER_SHARD_MAX)))
            .collect();
        ShardClient {
            mesh,
            permits,
            timeout,
        }
    }

    pub(crate) fn shards(&self) -> usize {
        self.permits.len()
    }

    /// Asks one shard; `make` builds the query around the reply sender.
    pub(crate) async fn ask<T>(
        &self,
        shard: ShardId,
        make: impl FnOnce(oneshot::Sender<T>) -> Query,
    ) -> Result<T, NoAnswer> {
        self.ask_before(self.deadline(), shard, make).await
    }

    /// When an exchange starting now must be over.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// [`ShardClient::ask`] with a deadline shared by several questions
    /// asked in turn, so stuck shards do not add up their timeouts.
    pub(crate) async fn ask_before<T>(
        &self,
        deadline: Instant,
        shard: ShardId,
        make: impl FnOnce(oneshot::Sender<T>) -> Query,
    ) -> Result<T, NoAnswer> {
        let receiver = self.send(shard, make)?;
        wait(receiver, deadline).await
    }

    /// Asks every shard at once and waits for all answers until one
    /// shared deadline.
    pub(crate) async fn ask_all<T>(
        &self,
        make: impl Fn(oneshot::Sender<T>) -> Query,
    ) -> Answers<T> {
        let deadline = self.deadline();
        let sent: Vec<_> = (0..self.shards())
            .map(|i| (ShardId(i), self.send(ShardId(i), &make)))
            .collect();
        let mut answers = Answers {
            answered: Vec::with_capacity(sent.len()),
            unanswered: Vec::new(),
        };
        for (shard, receiver) in sent {
            let answer = match receiver {
                Ok(receiver) => wait(receiver, deadline).await,
                Err(no) => Err(no),
            };
            match answer {
                Ok(value) => answers.answered.push((shard, value)),
                Err(_) => answers.unanswered.push(shard),
            }
        }
        answers
    }

    fn send<T>(
        &self,
        shard: ShardId,
        make: impl FnOnce(oneshot::Sender<T>) -> Query,
    ) -> Result<oneshot::Receiver<T>, NoAnswer> {
        let semaphore = self.permits.get(shard.0).ok_or(NoAnswer::Silent)?;
        let permit = semaphore
            .clone()
            .try_acquire_owned()
            .map_err(|_| NoAnswer::Busy)?;
        let (reply, receiver) = oneshot::channel();
        let query = make(reply);
        self.mesh.send(shard, ShardMessage::Query { query, permit });
        Ok(receiver)
    }
}

async fn wait<T>(receiver: oneshot::Receiver<T>, deadline: Instant) -> Result<T, NoAnswer> {
    match tokio::time::timeout_at(deadline, receiver).await {
        Ok(Ok(value)) => Ok(value),
        // Timed out, or the shard dropped the question (it stopped).
        Ok(Err(_)) | Err(_) => Err(NoAnswer::Silent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers `Streams` with an empty list on shard 0 only, like a server
    /// whose shard 1 is stuck.
    async fn answer_on_shard_zero(mut inbox: crate::shard::mesh::InboxReceiver) {
        while let Some(message) = inbox.recv().await {
            if let ShardMessage::Query {
                query: Query::Streams(reply),
                ..
            } = message
            {
                let _ = reply.send(Vec::new());
            }
        }
    }

    #[tokio::test]
    async fn a_silent_shard_is_named_and_does_not_hang_the_answer() {
        let (mesh, mut inboxes) = Mesh::new(2);
        let stuck = inboxes.pop().expect("shard 1");
        let healthy = inboxes.pop().expect("shard 0");
        let task = tokio::spawn(answer_on_shard_zero(healthy));
        let client = ShardClient::new(mesh, Duration::from_millis(100));
        let started = std::time::Instant::now();
        let answers = client.ask_all(Query::Streams).await;
        assert_eq!(answers.answered.len(), 1);
        assert_eq!(answers.answered[0].0, ShardId(0));
        assert_eq!(answers.unanswered, vec![ShardId(1)]);
        assert!(started.elapsed() < Duration::from_secs(2), "bounded wait");
        let one = client.ask(ShardId(1), Query::Streams).await;
        assert_eq!(one.unwrap_err(), NoAnswer::Silent);
        drop(stuck);
        task.abort();
    }

    #[tokio::test]
    async fn questions_waiting_for_a_stuck_shard_are_bounded() {
        let (mesh, inboxes) = Mesh::new(1);
        let client = ShardClient::new(mesh, Duration::from_millis(1));
        for _ in 0..limits::ADMIN_QUERIES_PER_SHARD_MAX {
            let answer = client.ask(ShardId(0), Query::Streams).await;
            assert_eq!(answer.unwrap_err(), NoAnswer::Silent);
        }
        let answer = client.ask(ShardId(0), Query::Streams).await;
        assert_eq!(
            answer.unwrap_err(),
            NoAnswer::Busy,
            "the inbox holds its limit"
        );
        // The shard takes one out (and drops it with its permit): room again.
        let mut inbox = inboxes.into_iter().next().expect("shard 0");
        drop(inbox.recv().await);
        let answer = client.ask(ShardId(0), Query::Streams).await;
        assert_eq!(answer.unwrap_err(), NoAnswer::Silent);
        assert_eq!(
            client.ask(ShardId(5), Query::Streams).await.unwrap_err(),
            NoAnswer::Silent,
            "no such shard"
        );
    }
}
