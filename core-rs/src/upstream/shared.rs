//! A worker's one HTTP/2 connection to a target, shared by its requests. While it is being
//! made, other requests wait for it instead of each opening their own, and share its
//! failure (they then try another target, as after their own failed connect).

use std::future::Future;
use std::sync::{Arc, Mutex};

use hyper::client::conn::http2::SendRequest;
use tokio::sync::Notify;

use super::pool::{ConnectError, Sender};
use crate::body::RequestBody;

type H2 = SendRequest<RequestBody>;

#[derive(Default)]
pub struct SharedSlot(Mutex<State>);

#[derive(Default)]
enum State {
    #[default]
    Empty,
    Connecting(Arc<Notify>),
    Open(H2),
    /// The last attempt failed; waiters of that attempt take its error, newcomers retry.
    Failed(ConnectError, Arc<Notify>),
}

impl SharedSlot {
    /// The open connection, or the one `connect` makes (made once however many ask).
    /// `Ok((sender, reused))`.
    pub async fn get<F, Fut>(&self, connect: F) -> Result<(H2, bool), ConnectError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Sender, ConnectError>>,
    {
        let mut waited_on: Option<Arc<Notify>> = None;
        loop {
            let step = {
                let mut state = self.0.lock().unwrap();
                match &*state {
                    State::Open(s) if !s.is_closed() => return Ok((s.clone(), true)),
                    State::Failed(e, attempt)
                        if waited_on.as_ref().is_some_and(|w| Arc::ptr_eq(w, attempt)) =>
                    {
                        return Err(*e)
                    }
                    // Registered while the lock is held: no wake-up can be missed.
                    State::Connecting(done) => {
                        Step::Wait(done.clone(), done.clone().notified_owned())
                    }
                    _ => {
                        let done = Arc::new(Notify::new());
                        *state = State::Connecting(done.clone());
                        Step::Connect(done)
                    }
                }
            };
            match step {
                Step::Wait(done, notified) => {
                    notified.await;
                    waited_on = Some(done);
                }
                Step::Connect(done) => {
                    let attempt = Attempt {
                        slot: self,
                        done,
                        finished: false,
                    };
                    return attempt.run(connect).await;
                }
            }
        }
    }

    /// A fresh connection (the shared one failed to take a request): it becomes the shared one.
    pub fn replace(&self, sender: &H2) {
        *self.0.lock().unwrap() = State::Open(sender.clone());
    }
}

enum Step {
    Wait(Arc<Notify>, tokio::sync::futures::OwnedNotified),
    Connect(Arc<Notify>),
}

/// The request making the connection; if it is dropped midway (its client left), the
/// waiters are woken to try for themselves.
struct Attempt<'a> {
    slot: &'a SharedSlot,
    done: Arc<Notify>,
    finished: bool,
}

impl Attempt<'_> {
    async fn run<F, Fut>(mut self, connect: F) -> Result<(H2, bool), ConnectError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Sender, ConnectError>>,
    {
        let result = connect().await;
        let mut state = self.slot.0.lock().unwrap();
        self.finished = true;
        let out = match result {
            Ok(Sender::H2(s)) => {
                *state = State::Open(s.clone());
                Ok((s, false))
            }
            Ok(Sender::H1(_)) => {
                *state = State::Failed(ConnectError::Failed, self.done.clone());
                Err(ConnectError::Failed)
            }
            Err(e) => {
                *state = State::Failed(e, self.done.clone());
                Err(e)
            }
        };
        drop(state);
        self.done.notify_waiters();
        out
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut state = self.slot.0.lock().unwrap();
        if matches!(&*state, State::Connecting(d) if Arc::ptr_eq(d, &self.done)) {
            *state = State::Empty;
        }
        drop(state);
        self.done.notify_waiters();
    }
}
