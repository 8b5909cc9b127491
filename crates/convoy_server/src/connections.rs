//! Open HTTP connections, bounded: a cap on how many (also per client address) that keeps room
//! for `/health`. A flood of silent connections once exhausted the process's file descriptors,
//! and `/health` stopped answering. (How long one may stay silent is hyper's header timeout, see
//! `server::HEADER_READ_TIMEOUT`.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Connections beyond the cap that may still be served, for `/health` alone: a load balancer's
/// probe gets its answer while a flood holds every ordinary slot.
pub const HEALTH_RESERVE: usize = 16;

/// What a new connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Serve,
    /// Over a cap: every request but `GET /health` is answered `503`, and the connection closes.
    HealthOnly,
    /// Over the cap and the reserve: closed unread.
    Refuse,
}

/// Counts open connections, in all and by client address.
pub struct Gate {
    max: usize,
    per_address: usize,
    open: AtomicUsize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place at the gate, given back when it closes.
pub struct Ticket {
    gate: Arc<Gate>,
    address: IpAddr,
}

impl Gate {
    pub fn new(max: usize, per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            per_address: per_address.max(1),
            open: AtomicUsize::new(0),
            by_address: Mutex::new(HashMap::new()),
        })
    }

    /// Admits a connection from `address`, or says why not.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> (Admission, Option<Ticket>) {
        let open = self.open.load(Ordering::SeqCst);
        if open >= self.max + HEALTH_RESERVE {
            return (Admission::Refuse, None);
        }
        let mut by_address = self.by_address.lock().expect("gate lock poisoned");
        let from_address = by_address.entry(address).or_insert(0);
        let admission = if open < self.max && *from_address < self.per_address {
            Admission::Serve
        } else {
            Admission::HealthOnly
        };
        *from_address += 1;
        self.open.fetch_add(1, Ordering::SeqCst);
        let ticket = Ticket {
            gate: self.clone(),
            address,
        };
        (admission, Some(ticket))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.open.fetch_sub(1, Ordering::SeqCst);
        let mut by_address = self.gate.by_address.lock().expect("gate lock poisoned");
        if let Some(count) = by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                by_address.remove(&self.address);
            }
        }
    }
}
