//! [`KillSwitch`]: the handle another thread (or the guest itself) uses to
//! terminate a run. Above the run core and the host regions: deciding and
//! sending happen inside a host region of the caller's own run, if it has
//! one.

use core::fmt;
use std::sync::Arc;

use crate::kill::{KillState, Termination};

/// Stops an instance's run from any thread; get one with
/// [`Instance::kill_switch`](crate::Instance::kill_switch).
///
/// A switch is for one run: the one in progress when it was made, or the
/// next one if none was. Once that run is over, [`terminate`] has no effect
/// (and says why), also on later runs of the same instance.
///
/// # Blocked signals
///
/// A thread that blocks the kill signal ([`kill_signal`](crate::kill_signal)), or every signal,
/// may run terminable instances: a run that can be terminated (a switch
/// exists, or a timeout is set) unblocks the kill signal (and the fault
/// signals) for its duration and blocks it again afterwards, so the
/// thread's mask comes back exactly (in [`ThreadSignalMode::Restore`]; in
/// [`ThreadSignalMode::Keep`] they stay unblocked, see there). The guest
/// itself must leave the kill signal unblocked: a guest that blocks it
/// cannot be stopped while it runs (its host still returns once the guest
/// does, with [`Error::Terminated`](crate::Error::Terminated) if the switch
/// said so).
///
/// [`ThreadSignalMode::Restore`]: crate::ThreadSignalMode::Restore
/// [`ThreadSignalMode::Keep`]: crate::ThreadSignalMode::Keep
///
/// [`terminate`]: KillSwitch::terminate
#[derive(Clone)]
pub struct KillSwitch {
    state: Arc<KillState>,
    id: u32,
}

impl KillSwitch {
    pub(crate) fn new(state: Arc<KillState>) -> KillSwitch {
        let id = state.target_id();
        KillSwitch { state, id }
    }

    /// Asks the run to terminate and says what that did (see
    /// [`Termination`]). Never blocks and never waits for the run: the run
    /// itself returns [`Error::Terminated`](crate::Error::Terminated).
    pub fn terminate(&self) -> Termination {
        // Called from a guest, the decision and the signal it implies are
        // host code: a kill of the caller's own run must not land between
        // the two (the target would wait for a signal never sent).
        crate::region::host_region(|| self.state.terminate(self.id))
    }
}

impl fmt::Debug for KillSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KillSwitch").field("run", &self.id).finish_non_exhaustive()
    }
}
