//! Timeouts: one watchdog thread for the whole process.
//!
//! A run (or resume) with a timeout registers its deadline and a
//! [`KillSwitch`] for that run here, and cancels the registration when the
//! guest switches back. The thread, started on first use, sleeps on a
//! condition variable until the earliest deadline (never spinning), and
//! fires the switches whose deadline has passed. However many instances and
//! threads use timeouts, there is this one thread.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

use crate::kill::KillSwitch;

#[derive(Default)]
struct Table {
    next_ticket: u64,
    /// (deadline, ticket) in firing order.
    order: BTreeMap<(Instant, u64), ()>,
    /// ticket -> (deadline, switch).
    armed: HashMap<u64, (Instant, KillSwitch)>,
}

struct Watchdog {
    table: Mutex<Table>,
    wake: Condvar,
}

static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// How many watchdog threads this process has started (0 before the first
/// timeout, 1 after).
pub fn watchdog_threads() -> usize {
    THREADS.load(Ordering::SeqCst)
}

fn watchdog() -> &'static Watchdog {
    WATCHDOG.get_or_init(|| {
        let dog: &'static Watchdog =
            Box::leak(Box::new(Watchdog { table: Mutex::new(Table::default()), wake: Condvar::new() }));
        std::thread::Builder::new()
            .name("instance-watchdog".into())
            .spawn(move || dog.serve())
            .expect("spawning the watchdog thread");
        THREADS.fetch_add(1, Ordering::SeqCst);
        dog
    })
}

impl Watchdog {
    fn serve(&self) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some((&(deadline, ticket), _)) = table.order.first_key_value() {
                if deadline > now {
                    break;
                }
                table.order.remove(&(deadline, ticket));
                if let Some((_, switch)) = table.armed.remove(&ticket) {
                    due.push(switch);
                }
            }
            if !due.is_empty() {
                drop(table);
                for switch in due {
                    let _ = switch.terminate();
                }
                table = self.table.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            table = match table.order.first_key_value() {
                Some((&(deadline, _), _)) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    self.wake.wait_timeout(table, wait).unwrap_or_else(|e| e.into_inner()).0
                }
                None => self.wake.wait(table).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

/// Registers `switch` to be fired at `deadline`; returns the ticket to
/// cancel it with.
pub(crate) fn arm(deadline: Instant, switch: KillSwitch) -> u64 {
    let dog = watchdog();
    let mut table = dog.table.lock().unwrap_or_else(|e| e.into_inner());
    let ticket = table.next_ticket;
    table.next_ticket += 1;
    let first = table.order.first_key_value().is_none_or(|(&(d, _), _)| deadline < d);
    table.order.insert((deadline, ticket), ());
    table.armed.insert(ticket, (deadline, switch));
    drop(table);
    if first {
        dog.wake.notify_one();
    }
    ticket
}

/// Cancels a registration (no effect if it already fired).
pub(crate) fn disarm(ticket: u64) {
    let dog = watchdog();
    let mut table = dog.table.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((deadline, _)) = table.armed.remove(&ticket) {
        table.order.remove(&(deadline, ticket));
    }
}
