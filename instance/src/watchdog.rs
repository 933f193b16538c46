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

use crate::error::Error;
use crate::switch::KillSwitch;

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

/// The process's watchdog, started on first use.
///
/// # Errors
///
/// The OS error if the watchdog thread cannot be spawned (a later call
/// tries again).
fn watchdog() -> std::io::Result<&'static Watchdog> {
    if let Some(dog) = WATCHDOG.get() {
        return Ok(dog);
    }
    // One starter at a time, so that the process never has two watchdogs.
    static STARTING: Mutex<()> = Mutex::new(());
    let _starting = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dog) = WATCHDOG.get() {
        return Ok(dog);
    }
    // Leaked on purpose: the thread serves it for the life of the process
    // (and if the spawn fails, these few bytes are all that is lost).
    let dog: &'static Watchdog =
        Box::leak(Box::new(Watchdog { table: Mutex::new(Table::default()), wake: Condvar::new() }));
    std::thread::Builder::new().name("instance-watchdog".into()).spawn(move || dog.serve())?;
    THREADS.fetch_add(1, Ordering::SeqCst);
    Ok(WATCHDOG.get_or_init(|| dog))
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
///
/// # Errors
///
/// [`Error::WatchdogThread`] if the watchdog thread cannot be started.
pub(crate) fn arm(deadline: Instant, switch: KillSwitch) -> Result<u64, Error> {
    let dog = watchdog().map_err(Error::WatchdogThread)?;
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
    Ok(ticket)
}

/// Cancels a registration (no effect if it already fired).
pub(crate) fn disarm(ticket: u64) {
    // A ticket exists only if `arm` found (or started) the watchdog.
    let Some(dog) = WATCHDOG.get() else { return };
    let mut table = dog.table.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((deadline, _)) = table.armed.remove(&ticket) {
        table.order.remove(&(deadline, ticket));
    }
}
