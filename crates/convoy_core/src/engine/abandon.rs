//! A call given up on — its timeout passed, or its HTTP client went away — stops its statement in
//! Postgres at once, with a cancel request, instead of holding its connection until the
//! statement ends by itself; and that connection is closed rather than handed back to the pool.
//!
//! A cancel request names a backend, not a statement: sent to a connection that had gone back to
//! the pool, it would stop another call's statement. So the call's [`CancelSlot`] holds the
//! connection's token only while the call holds the connection, and the call gives the
//! connection back (or closes it) under the same lock that a cancel is sent under.

use deadpool_postgres::Object;
use tokio_postgres::CancelToken;

use super::call::Call;
use super::Engine;

/// What a call needs to stop its statement, and whether it was stopped.
#[derive(Default)]
pub struct CancelSlot {
    /// The token of the connection the call holds, if it holds one.
    token: Option<CancelToken>,
    /// Given up on: its connection must not serve anybody else.
    pub(super) abandoned: bool,
}

impl Engine {
    /// Notes that `call` holds `connection`, so that it can be stopped.
    pub(super) async fn holds(&self, call: &Call, connection: &Object) {
        call.cancel.lock().await.token = Some(connection.cancel_token());
    }

    /// Gives `connection` back to the pool — or closes it, when the call was given up on while
    /// it ran.
    pub(super) async fn release(&self, call: &Call, connection: Object) {
        let mut slot = call.cancel.lock().await;
        slot.token = None;
        if slot.abandoned {
            drop(Object::take(connection));
        }
    }

    /// Closes `connection`, whose state is unknown, instead of giving it back.
    pub(super) async fn close(&self, call: &Call, connection: Object) {
        call.cancel.lock().await.token = None;
        drop(Object::take(connection));
    }

    /// Whether `call` was given up on.
    pub(super) async fn abandoned(&self, call: &Call) -> bool {
        call.cancel.lock().await.abandoned
    }

    /// Gives up on `call`: cancels the statement it is running, if any, and marks it so that its
    /// connection is closed when the statement has stopped.
    pub async fn abandon(&self, call: &Call) {
        let mut slot = call.cancel.lock().await;
        slot.abandoned = true;
        if let Some(token) = &slot.token {
            if let Err(error) = self.database.cancel(token).await {
                tracing::warn!(%error, "could not cancel an abandoned call's statement");
            }
        }
    }
}
