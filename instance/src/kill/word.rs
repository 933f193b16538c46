//! The kill word as a value: its fields, its bit layout, and every
//! transition as a pure function.
//!
//! [`KillState`](super::KillState) keeps the word in one `AtomicU64` and
//! applies a transition with one compare-and-swap (retried when another
//! party changed the word meanwhile); everything that touches the system
//! (thread ids, `tgkill`, the futex) stays there. Here are only values:
//! no atomics, no thread-locals, no system calls, no `unsafe`, so every
//! decision can be tested (and model-checked) on its own.
//!
//! # Layout
//!
//! ```text
//!  63            32 31          16 15    11  10    9     8   7      4 3     0
//! +----------------+--------------+--------+----+----+----+--------+-------+
//! |     run id     | region depth |   0    |SENT|KILL|TERM| reason | phase |
//! +----------------+--------------+--------+----+----+----+--------+-------+
//! ```
//!
//! * phase ([`Phase`]): 0 not started, 1 running, 2 yielded, 3 ended,
//!   4 dropped, 5 stopped (the guest came back, the host is settling the
//!   run);
//! * reason (only when ended, else 0; [`Ended`]): 0 returned, 1 faulted,
//!   2 panicked, 3 terminated;
//! * TERM ([`Terminable`]): the guest is in terminable code (raw entries
//!   always; closures inside [`terminable`](crate::terminable));
//! * KILL ([`Kill`]): a termination was requested for this run id;
//! * SENT ([`Signal`]): `terminate` decided to send the kill signal for
//!   this run;
//! * region depth: host regions the guest is inside, at most
//!   [`MAX_DEPTH`] (deeper entries are counted outside the word).
//!
//! An ended word carries nothing but its id and reason.
//!
//! # Transitions
//!
//! Each operation's rows are tried in order; the first that matches
//! applies. "Kept" means every field not named stays as it was;
//! `NotStarted(id)` and the like mean a word with only that id and phase
//! (every other field clear). The id a [`KillSwitch`](super::KillSwitch)
//! made now targets is [`Word::target`]: the word's id, or the next one
//! when the run has ended.
//!
//! | operation (caller) | word before | word after | answer |
//! |---|---|---|---|
//! | `start(t)` (host) | `NotStarted`, KILL | `Ended(id, Terminated)` | `Killed` |
//! | | `Ended(id, _)` | `Running(id + 1)`, TERM = t | `Go` |
//! | | any other | `Running(id)`, TERM = t | `Go` |
//! | `resume(Continue)` (host) | KILL | unchanged | `Killed` |
//! | | any other | phase `Running`, kept | `Go` |
//! | `resume(Unwind)` (host) | any | phase `Running`, TERM clear, kept | `Go` |
//! | `suspend` (guest) | KILL | unchanged | `EndRun` |
//! | | any other | phase `Yielded`, kept | `Continue` |
//! | `stop` (host, guest) | `Running` | phase `Stopped`, TERM clear, kept | |
//! | | any other | unchanged | |
//! | `finish(n)` (host) | KILL | `Ended(id, Terminated)` | `Terminated` |
//! | | any other | `Ended(id, n)` | `n` |
//! | `reset` (host) | any | `NotStarted(id + 1)` | |
//! | `dropped` (host) | any | `Dropped(id)` | |
//! | `enter_region` (guest) | depth = `MAX_DEPTH` | unchanged | `Full` |
//! | | any other | depth + 1, kept | `Counted` |
//! | `leave_region` (guest) | depth 0 | unchanged | `Continue` |
//! | | depth 1, `Running`, KILL, TERM | depth 0, kept | `EndRun` |
//! | | any other | depth − 1, kept | `Continue` |
//! | `set_terminable(t)` (guest) | any | TERM = t, kept | (TERM before, `EndRun` if KILL and depth 0, else `Continue`) |
//! | `terminate(target)` (any thread) | `Dropped` | unchanged | `Dropped` |
//! | | `Ended(id, _)`, target = id + 1 | `NotStarted(target)`, KILL | `AtStart` |
//! | | id ≠ target | unchanged | `Superseded` |
//! | | `Ended(id, how)` | unchanged | `Finished(how)` |
//! | | KILL | unchanged | `AlreadyRequested` |
//! | | `NotStarted` | KILL, kept | `AtStart` |
//! | | `Yielded` | KILL, kept | `OnResume` |
//! | | `Stopped` | KILL, kept | `Pending` |
//! | | `Running`, no TERM | KILL, kept | `Pending` |
//! | | `Running`, TERM, depth > 0 | KILL, kept | `AfterHostRegion` |
//! | | `Running`, TERM, depth 0 | KILL, SENT, kept | `Signalled` |
//!
//! Ids wrap around (`id + 1` is `wrapping_add`). The queries:
//! [`Word::accepts`] (the handler may end the run with the kill signal:
//! `Running`, KILL, TERM, depth 0), [`Word::is_yielded`],
//! [`Word::in_region`] (depth > 0), [`Word::signal`] and [`Word::id`].
//!
//! Why these rows make [`Termination::takes_effect`] true exactly for the
//! calls whose run ends terminated: a run ends only by `finish` (which
//! picks `Terminated` whenever KILL is set) or at `start` (only when KILL
//! is set), KILL is set only by a `terminate` that answers one of the five
//! effective answers, and once set it stays until the run ends, so every
//! later call answers `AlreadyRequested`. The exception is a run that
//! never ends: `reset` or `dropped` discards a yielded or not-yet-started
//! run together with its KILL (the unit tests and the model test in this
//! file pin that down too).

#![forbid(unsafe_code)]

use super::{Ended, Termination};

/// The deepest region nesting the word counts.
pub(super) const MAX_DEPTH: u16 = u16::MAX;

const PHASE_MASK: u64 = 0xf;
const NOT_STARTED: u64 = 0;
const RUNNING: u64 = 1;
const YIELDED: u64 = 2;
const ENDED: u64 = 3;
const DROPPED: u64 = 4;
const STOPPED: u64 = 5;
const REASON_SHIFT: u32 = 4;
const REASON_MASK: u64 = 0xf << REASON_SHIFT;
const TERMINABLE: u64 = 1 << 8;
const KILL: u64 = 1 << 9;
const SENT: u64 = 1 << 10;
const DEPTH_SHIFT: u32 = 16;
const DEPTH_MASK: u64 = 0xffff << DEPTH_SHIFT;
const ID_SHIFT: u32 = 32;

/// Where the run the word describes is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The run has not started (a fresh or reset instance, or a next run
    /// terminated before it started).
    NotStarted,
    /// The guest runs (or the host is switching into it).
    Running,
    /// The guest is suspended in a yield.
    Yielded,
    /// The guest came back (returned, faulted or was ended); the host has
    /// not settled the run yet.
    Stopped,
    /// The run is over, this way.
    Ended(Ended),
    /// The instance was dropped.
    Dropped,
}

/// Whether the guest is in terminable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Terminable {
    /// Not terminable: a kill waits for the guest to come back, yield, or
    /// enter terminable code.
    No,
    /// Terminable: outside host regions, the kill signal may stop it.
    Yes,
}

/// Whether a termination was requested for the word's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kill {
    NotRequested,
    Requested,
}

/// Whether `terminate` decided to send the kill signal for the word's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Signal {
    NotSent,
    Sent,
}

/// How the host continues a yielded guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resume {
    /// With a value: refused if a kill is pending.
    Continue,
    /// To unwind it (its destructors run; they are not terminable code).
    Unwind,
}

/// The answer of `start` and `resume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    /// Switch into the guest.
    Go,
    /// A kill is pending: do not enter the guest. After `start` the run is
    /// ended as terminated; after `resume` the word is unchanged and the
    /// host discards the guest and finishes the run.
    Killed,
}

/// What the guest does after `suspend`, `leave_region` or
/// `set_terminable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Guest {
    /// Carry on.
    Continue,
    /// A kill is due here: end the run now.
    EndRun,
}

/// The answer of `enter_region`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nest {
    /// The word counts the region.
    Counted,
    /// The word is at [`MAX_DEPTH`] and unchanged: count it elsewhere.
    Full,
}

/// A transition's result: the new word (`None`: leave the word as it is)
/// and the answer to the caller.
pub(super) type Step<R> = (Option<Word>, R);

/// The decoded kill word of one instance (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Word {
    id: u32,
    phase: Phase,
    terminable: Terminable,
    kill: Kill,
    signal: Signal,
    depth: u16,
}

impl Word {
    /// A word with only `id` and `phase` (every flag clear, depth 0).
    const fn bare(id: u32, phase: Phase) -> Word {
        Word { id, phase, terminable: Terminable::No, kill: Kill::NotRequested, signal: Signal::NotSent, depth: 0 }
    }

    /// The word of a new instance: run 0, not started.
    pub(super) const fn new() -> Word {
        Word::bare(0, Phase::NotStarted)
    }

    pub(super) fn to_bits(self) -> u64 {
        let phase = match self.phase {
            Phase::NotStarted => NOT_STARTED,
            Phase::Running => RUNNING,
            Phase::Yielded => YIELDED,
            Phase::Stopped => STOPPED,
            Phase::Ended(how) => ENDED | ((how as u64) << REASON_SHIFT),
            Phase::Dropped => DROPPED,
        };
        let flag = |on: bool, bit: u64| if on { bit } else { 0 };
        (u64::from(self.id) << ID_SHIFT)
            | (u64::from(self.depth) << DEPTH_SHIFT)
            | flag(self.signal == Signal::Sent, SENT)
            | flag(self.kill == Kill::Requested, KILL)
            | flag(self.terminable == Terminable::Yes, TERMINABLE)
            | phase
    }

    /// Decodes what [`Word::to_bits`] encoded. The word holds nothing else:
    /// phase codes above 5 are never written (they would read as dropped,
    /// the state in which nothing happens), and neither are reason bits
    /// outside an ended phase (ignored).
    pub(super) fn from_bits(bits: u64) -> Word {
        let phase = match bits & PHASE_MASK {
            NOT_STARTED => Phase::NotStarted,
            RUNNING => Phase::Running,
            YIELDED => Phase::Yielded,
            STOPPED => Phase::Stopped,
            ENDED => Phase::Ended(match (bits & REASON_MASK) >> REASON_SHIFT {
                0 => Ended::Returned,
                1 => Ended::Faulted,
                2 => Ended::Panicked,
                _ => Ended::Terminated,
            }),
            _ => Phase::Dropped,
        };
        let flag = |bit: u64| bits & bit != 0;
        Word {
            id: (bits >> ID_SHIFT) as u32,
            phase,
            terminable: if flag(TERMINABLE) { Terminable::Yes } else { Terminable::No },
            kill: if flag(KILL) { Kill::Requested } else { Kill::NotRequested },
            signal: if flag(SENT) { Signal::Sent } else { Signal::NotSent },
            depth: ((bits & DEPTH_MASK) >> DEPTH_SHIFT) as u16,
        }
    }

    // ---- queries -----------------------------------------------------------

    /// The id of the run the word describes.
    pub(super) fn id(self) -> u32 {
        self.id
    }

    /// The id a kill switch made now is for: the current run, or the next
    /// one if the last has ended.
    pub(super) fn target(self) -> u32 {
        match self.phase {
            Phase::Ended(_) => self.id.wrapping_add(1),
            _ => self.id,
        }
    }

    pub(super) fn is_yielded(self) -> bool {
        self.phase == Phase::Yielded
    }

    pub(super) fn in_region(self) -> bool {
        self.depth != 0
    }

    pub(super) fn signal(self) -> Signal {
        self.signal
    }

    /// Whether the kill signal may end the run now: the guest runs
    /// terminable code outside host regions and a kill was requested.
    pub(super) fn accepts(self) -> bool {
        self.phase == Phase::Running
            && self.kill == Kill::Requested
            && self.terminable == Terminable::Yes
            && self.depth == 0
    }

    // ---- transitions -------------------------------------------------------

    /// Host, before switching to a new run.
    pub(super) fn start(self, terminable: Terminable) -> Step<Entry> {
        if self.phase == Phase::NotStarted && self.kill == Kill::Requested {
            return (Some(Word::bare(self.id, Phase::Ended(Ended::Terminated))), Entry::Killed);
        }
        let running = Word { terminable, ..Word::bare(self.target(), Phase::Running) };
        (Some(running), Entry::Go)
    }

    /// Host, before switching back into a yielded guest.
    pub(super) fn resume(self, how: Resume) -> Step<Entry> {
        match how {
            Resume::Continue if self.kill == Kill::Requested => (None, Entry::Killed),
            Resume::Continue => (Some(Word { phase: Phase::Running, ..self }), Entry::Go),
            Resume::Unwind => (Some(Word { phase: Phase::Running, terminable: Terminable::No, ..self }), Entry::Go),
        }
    }

    /// Guest, about to switch to the host in a yield.
    pub(super) fn suspend(self) -> Step<Guest> {
        if self.kill == Kill::Requested {
            return (None, Guest::EndRun);
        }
        (Some(Word { phase: Phase::Yielded, ..self }), Guest::Continue)
    }

    /// The guest came back (or is about to end the run from its own code):
    /// no kill signal is sent for the run from now on.
    pub(super) fn stop(self) -> Step<()> {
        if self.phase != Phase::Running {
            return (None, ());
        }
        (Some(Word { phase: Phase::Stopped, terminable: Terminable::No, ..self }), ())
    }

    /// Host, when a run is over: how it ended, `Terminated` if a kill was
    /// requested, `natural` otherwise.
    pub(super) fn finish(self, natural: Ended) -> Step<Ended> {
        let how = if self.kill == Kill::Requested { Ended::Terminated } else { natural };
        (Some(Word::bare(self.id, Phase::Ended(how))), how)
    }

    /// Host: discards the current run; the next run gets a new id.
    pub(super) fn reset(self) -> Step<()> {
        (Some(Word::bare(self.id.wrapping_add(1), Phase::NotStarted)), ())
    }

    /// Host: the instance is dropped.
    pub(super) fn dropped(self) -> Step<()> {
        (Some(Word::bare(self.id, Phase::Dropped)), ())
    }

    /// Guest: enters a host region.
    pub(super) fn enter_region(self) -> Step<Nest> {
        if self.depth == MAX_DEPTH {
            return (None, Nest::Full);
        }
        (Some(Word { depth: self.depth + 1, ..self }), Nest::Counted)
    }

    /// Guest: leaves a host region (an unpaired leave, at depth 0, leaves
    /// nothing).
    pub(super) fn leave_region(self) -> Step<Guest> {
        if self.depth == 0 {
            return (None, Guest::Continue);
        }
        let left = Word { depth: self.depth - 1, ..self };
        let end = left.depth == 0 && left.accepts();
        (Some(left), if end { Guest::EndRun } else { Guest::Continue })
    }

    /// Guest: enters or leaves terminable code; answers the previous
    /// setting and whether a pending kill is due (outside host regions).
    pub(super) fn set_terminable(self, terminable: Terminable) -> Step<(Terminable, Guest)> {
        let due = self.kill == Kill::Requested && self.depth == 0;
        (Some(Word { terminable, ..self }), (self.terminable, if due { Guest::EndRun } else { Guest::Continue }))
    }

    /// Any thread: asks the run `target` to terminate. The caller sends the
    /// kill signal when the answer is [`Termination::Signalled`].
    pub(super) fn terminate(self, target: u32) -> Step<Termination> {
        if self.phase == Phase::Dropped {
            return (None, Termination::Dropped);
        }
        if let Phase::Ended(how) = self.phase {
            // A run that ended is followed by the next one (same word, id
            // one higher once it starts).
            if self.id.wrapping_add(1) == target {
                let next = Word { kill: Kill::Requested, ..Word::bare(target, Phase::NotStarted) };
                return (Some(next), Termination::AtStart);
            }
            if self.id == target {
                return (None, Termination::Finished(how));
            }
        }
        if self.id != target {
            return (None, Termination::Superseded);
        }
        if self.kill == Kill::Requested {
            return (None, Termination::AlreadyRequested);
        }
        let answer = match self.phase {
            Phase::NotStarted => Termination::AtStart,
            Phase::Yielded => Termination::OnResume,
            Phase::Running if self.terminable == Terminable::Yes && self.depth != 0 => Termination::AfterHostRegion,
            Phase::Running if self.terminable == Terminable::Yes => Termination::Signalled,
            // Stopped, or running code that is not terminable (ended and
            // dropped were answered above).
            _ => Termination::Pending,
        };
        let signal = if answer == Termination::Signalled { Signal::Sent } else { self.signal };
        (Some(Word { kill: Kill::Requested, signal, ..self }), answer)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    use super::*;

    // ---- the rows of the table ---------------------------------------------

    fn w(id: u32, phase: Phase) -> Word {
        Word::bare(id, phase)
    }

    /// Builders for the rows' words.
    impl Word {
        fn killed(self) -> Word {
            Word { kill: Kill::Requested, ..self }
        }
        fn term(self) -> Word {
            Word { terminable: Terminable::Yes, ..self }
        }
        fn sent(self) -> Word {
            Word { signal: Signal::Sent, ..self }
        }
        fn at_depth(self, depth: u16) -> Word {
            Word { depth, ..self }
        }
    }

    const UNCHANGED: Option<Word> = None;
    const LAST: u32 = u32::MAX;
    use Phase::{NotStarted, Running, Stopped, Yielded};
    const DROPPED_PHASE: Phase = Phase::Dropped;

    /// One test per row: `name: word before => operation(inputs) => word
    /// after (UNCHANGED: not written), answer;`.
    macro_rules! rows {
        ($($name:ident: $before:expr => $op:ident($($arg:expr),*) => $after:expr, $answer:expr;)*) => {
            $(
                #[test]
                fn $name() {
                    let before: Word = $before;
                    let (after, answer) = before.$op($($arg),*);
                    assert_eq!(after, $after, "word after {}", stringify!($op));
                    assert_eq!(answer, $answer, "answer of {}", stringify!($op));
                    assert_eq!(Word::from_bits(before.to_bits()), before, "bits of the word before");
                    if let Some(after) = after {
                        assert_eq!(Word::from_bits(after.to_bits()), after, "bits of the word after");
                    }
                }
            )*
        };
    }

    rows! {
        start_of_a_run_killed_before_it_started_ends_it_terminated:
            w(7, NotStarted).killed() => start(Terminable::Yes)
            => Some(w(7, Phase::Ended(Ended::Terminated))), Entry::Killed;
        start_after_an_ended_run_runs_the_next_id:
            w(7, Phase::Ended(Ended::Returned)) => start(Terminable::Yes) => Some(w(8, Running).term()), Entry::Go;
        start_after_the_last_id_wraps_to_zero:
            w(LAST, Phase::Ended(Ended::Faulted)) => start(Terminable::No) => Some(w(0, Running)), Entry::Go;
        start_of_a_fresh_run_keeps_its_id:
            w(7, NotStarted) => start(Terminable::No) => Some(w(7, Running)), Entry::Go;
        start_from_any_other_word_clears_all_but_the_id:
            w(7, Stopped).killed().sent().at_depth(2) => start(Terminable::Yes) => Some(w(7, Running).term()), Entry::Go;

        resume_with_a_pending_kill_is_refused_and_writes_nothing:
            w(7, Yielded).term().killed() => resume(Resume::Continue) => UNCHANGED, Entry::Killed;
        resume_runs_the_guest_again_keeping_the_rest:
            w(7, Yielded).term().at_depth(3) => resume(Resume::Continue) => Some(w(7, Running).term().at_depth(3)), Entry::Go;
        resume_to_unwind_goes_ahead_despite_a_kill_and_is_not_terminable:
            w(7, Yielded).term().killed() => resume(Resume::Unwind) => Some(w(7, Running).killed()), Entry::Go;

        suspend_with_a_pending_kill_ends_the_run_instead:
            w(7, Running).term().killed() => suspend() => UNCHANGED, Guest::EndRun;
        suspend_yields_keeping_the_rest:
            w(7, Running).term() => suspend() => Some(w(7, Yielded).term()), Guest::Continue;

        stop_of_a_running_guest_stops_it_and_clears_terminable:
            w(7, Running).term().killed().sent().at_depth(1) => stop() => Some(w(7, Stopped).killed().sent().at_depth(1)), ();
        stop_of_a_yielded_guest_writes_nothing:
            w(7, Yielded).term() => stop() => UNCHANGED, ();
        stop_of_a_stopped_run_writes_nothing:
            w(7, Stopped).killed() => stop() => UNCHANGED, ();

        finish_with_a_kill_ends_terminated_whatever_the_guest_did:
            w(7, Stopped).killed().sent() => finish(Ended::Returned) => Some(w(7, Phase::Ended(Ended::Terminated))), Ended::Terminated;
        finish_without_a_kill_ends_the_natural_way:
            w(7, Stopped).at_depth(1) => finish(Ended::Faulted) => Some(w(7, Phase::Ended(Ended::Faulted))), Ended::Faulted;
        finish_of_a_yielded_run_without_a_kill_keeps_its_reason:
            w(7, Yielded).term() => finish(Ended::Panicked) => Some(w(7, Phase::Ended(Ended::Panicked))), Ended::Panicked;

        reset_discards_the_run_and_its_kill:
            w(7, NotStarted).killed() => reset() => Some(w(8, NotStarted)), ();
        reset_of_a_yielded_run_discards_it:
            w(7, Yielded).killed().term() => reset() => Some(w(8, NotStarted)), ();
        reset_after_the_last_id_wraps_to_zero:
            w(LAST, Phase::Ended(Ended::Returned)) => reset() => Some(w(0, NotStarted)), ();

        dropped_forgets_everything_but_the_id:
            w(7, Yielded).killed().term() => dropped() => Some(w(7, DROPPED_PHASE)), ();

        enter_region_at_the_deepest_depth_is_counted_elsewhere:
            w(7, Running).at_depth(MAX_DEPTH) => enter_region() => UNCHANGED, Nest::Full;
        enter_region_counts_one_more_keeping_the_rest:
            w(7, Running).term().killed().at_depth(2) => enter_region() => Some(w(7, Running).term().killed().at_depth(3)), Nest::Counted;

        leave_region_at_depth_zero_leaves_nothing:
            w(7, Running).term().killed() => leave_region() => UNCHANGED, Guest::Continue;
        leave_of_the_last_region_ends_a_killed_terminable_run:
            w(7, Running).term().killed().at_depth(1) => leave_region() => Some(w(7, Running).term().killed()), Guest::EndRun;
        leave_of_an_inner_region_goes_on:
            w(7, Running).term().killed().at_depth(2) => leave_region() => Some(w(7, Running).term().killed().at_depth(1)), Guest::Continue;
        leave_of_the_last_region_goes_on_in_code_that_is_not_terminable:
            w(7, Running).killed().at_depth(1) => leave_region() => Some(w(7, Running).killed()), Guest::Continue;
        leave_of_the_last_region_goes_on_without_a_kill:
            w(7, Running).term().at_depth(1) => leave_region() => Some(w(7, Running).term()), Guest::Continue;

        set_terminable_with_a_pending_kill_outside_regions_ends_the_run:
            w(7, Running).killed() => set_terminable(Terminable::Yes) => Some(w(7, Running).killed().term()), (Terminable::No, Guest::EndRun);
        set_terminable_off_with_a_pending_kill_says_so_too:
            w(7, Running).killed().term() => set_terminable(Terminable::No) => Some(w(7, Running).killed()), (Terminable::Yes, Guest::EndRun);
        set_terminable_inside_a_region_goes_on:
            w(7, Running).killed().at_depth(1) => set_terminable(Terminable::Yes) => Some(w(7, Running).killed().term().at_depth(1)), (Terminable::No, Guest::Continue);
        set_terminable_without_a_kill_goes_on:
            w(7, Running).term() => set_terminable(Terminable::No) => Some(w(7, Running)), (Terminable::Yes, Guest::Continue);

        terminate_after_drop_has_no_effect:
            w(7, DROPPED_PHASE) => terminate(7) => UNCHANGED, Termination::Dropped;
        terminate_of_the_run_after_an_ended_one_kills_it_before_it_starts:
            w(7, Phase::Ended(Ended::Returned)) => terminate(8) => Some(w(8, NotStarted).killed()), Termination::AtStart;
        terminate_of_the_run_after_the_last_id_wraps_to_zero:
            w(LAST, Phase::Ended(Ended::Faulted)) => terminate(0) => Some(w(0, NotStarted).killed()), Termination::AtStart;
        terminate_of_an_earlier_run_is_superseded:
            w(8, Running).term() => terminate(7) => UNCHANGED, Termination::Superseded;
        terminate_of_a_run_older_than_the_ended_one_is_superseded:
            w(8, Phase::Ended(Ended::Returned)) => terminate(7) => UNCHANGED, Termination::Superseded;
        terminate_of_an_ended_run_says_how_it_ended:
            w(7, Phase::Ended(Ended::Faulted)) => terminate(7) => UNCHANGED, Termination::Finished(Ended::Faulted);
        terminate_twice_is_already_requested:
            w(7, Yielded).killed() => terminate(7) => UNCHANGED, Termination::AlreadyRequested;
        terminate_before_the_start_kills_at_start:
            w(7, NotStarted) => terminate(7) => Some(w(7, NotStarted).killed()), Termination::AtStart;
        terminate_of_a_yielded_guest_kills_on_resume:
            w(7, Yielded).term() => terminate(7) => Some(w(7, Yielded).term().killed()), Termination::OnResume;
        terminate_of_a_stopped_run_is_pending:
            w(7, Stopped) => terminate(7) => Some(w(7, Stopped).killed()), Termination::Pending;
        terminate_of_code_that_is_not_terminable_is_pending:
            w(7, Running).at_depth(1) => terminate(7) => Some(w(7, Running).killed().at_depth(1)), Termination::Pending;
        terminate_inside_a_host_region_waits_for_its_end:
            w(7, Running).term().at_depth(2) => terminate(7) => Some(w(7, Running).term().killed().at_depth(2)), Termination::AfterHostRegion;
        terminate_of_running_terminable_code_sends_the_signal:
            w(7, Running).term() => terminate(7) => Some(w(7, Running).term().killed().sent()), Termination::Signalled;
    }

    #[test]
    fn bits_are_laid_out_as_the_diagram_says() {
        let all = Word {
            id: 0x1234_5678,
            phase: Running,
            terminable: Terminable::Yes,
            kill: Kill::Requested,
            signal: Signal::Sent,
            depth: 0xabcd,
        };
        assert_eq!(all.to_bits(), 0x1234_5678_abcd_0701);
        assert_eq!(w(3, Phase::Ended(Ended::Panicked)).to_bits(), 0x3_0000_0023);
        assert_eq!(w(3, Phase::Ended(Ended::Terminated)).to_bits(), 0x3_0000_0033);
        let phases = [
            (NotStarted, 0),
            (Running, 1),
            (Yielded, 2),
            (Phase::Ended(Ended::Returned), 3),
            (DROPPED_PHASE, 4),
            (Stopped, 5),
        ];
        for (phase, code) in phases {
            assert_eq!(w(0, phase).to_bits(), code, "{phase:?}");
        }
        assert_eq!(Word::new().to_bits(), 0);
    }

    #[test]
    fn target_is_the_next_run_once_the_run_has_ended() {
        assert_eq!(w(7, Running).target(), 7);
        assert_eq!(w(7, NotStarted).target(), 7);
        assert_eq!(w(7, DROPPED_PHASE).target(), 7);
        assert_eq!(w(7, Phase::Ended(Ended::Returned)).target(), 8);
        assert_eq!(w(LAST, Phase::Ended(Ended::Returned)).target(), 0);
    }

    #[test]
    fn the_signal_is_accepted_only_by_running_killed_terminable_code_outside_regions() {
        let yes = w(7, Running).term().killed();
        assert!(yes.accepts());
        assert!(!yes.at_depth(1).accepts());
        assert!(!w(7, Running).killed().accepts());
        assert!(!w(7, Running).term().accepts());
        for phase in [NotStarted, Yielded, Stopped, DROPPED_PHASE] {
            assert!(!Word { phase, ..yes }.accepts(), "{phase:?}");
        }
    }

    /// The asymmetry the model test allows for (see `Fate::Discarded`): a
    /// reset after an ended run keeps the next run a switch is for, unless
    /// that switch has already terminated it; then the reset discards it
    /// with its kill, and the run after it starts unkilled.
    #[test]
    fn reset_discards_a_next_run_killed_before_it_started() {
        let ended = w(7, Phase::Ended(Ended::Returned));
        let target = ended.target();
        let kept = ended.reset().0.unwrap();
        assert_eq!(kept.target(), target);
        let (killed, answer) = ended.terminate(target);
        assert!(answer.takes_effect());
        let discarded = killed.unwrap().reset().0.unwrap();
        assert_eq!(discarded.target(), target + 1);
        assert_eq!(discarded.start(Terminable::Yes).1, Entry::Go);
        assert_eq!(discarded.terminate(target).1, Termination::Superseded);
    }

    fn arb_word() -> impl Strategy<Value = Word> {
        let ended =
            prop_oneof![Just(Ended::Returned), Just(Ended::Faulted), Just(Ended::Panicked), Just(Ended::Terminated)];
        let phase = prop_oneof![
            Just(NotStarted),
            Just(Running),
            Just(Yielded),
            Just(Stopped),
            Just(DROPPED_PHASE),
            ended.prop_map(Phase::Ended),
        ];
        (any::<u32>(), phase, any::<bool>(), any::<bool>(), any::<bool>(), any::<u16>()).prop_map(
            |(id, phase, t, k, s, depth)| Word {
                id,
                phase,
                terminable: if t { Terminable::Yes } else { Terminable::No },
                kill: if k { Kill::Requested } else { Kill::NotRequested },
                signal: if s { Signal::Sent } else { Signal::NotSent },
                depth,
            },
        )
    }

    // ---- the model test ----------------------------------------------------

    /// The protocol written again, plainly, as the reference the word is
    /// checked against: fields and `if`s, no bits and no code shared with
    /// [`Word`].
    #[derive(Debug, Clone)]
    struct Reference {
        /// The run the word is about.
        run: u32,
        stage: Stage,
        terminable: bool,
        killed: bool,
        signalled: bool,
        regions: u32,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Stage {
        Fresh,
        Live,
        Suspended,
        Back,
        Over(Ended),
        Gone,
    }

    impl Reference {
        fn new(run: u32) -> Reference {
            Reference { run, stage: Stage::Fresh, terminable: false, killed: false, signalled: false, regions: 0 }
        }

        fn forget_flags(&mut self) {
            self.terminable = false;
            self.killed = false;
            self.signalled = false;
            self.regions = 0;
        }

        /// The run a switch made now is for.
        fn next_run(&self) -> u32 {
            match self.stage {
                Stage::Over(_) => self.run.wrapping_add(1),
                _ => self.run,
            }
        }

        fn accepts(&self) -> bool {
            self.stage == Stage::Live && self.killed && self.terminable && self.regions == 0
        }

        /// Whether the host may switch into the guest.
        fn start(&mut self, terminable: bool) -> bool {
            if self.stage == Stage::Fresh && self.killed {
                self.forget_flags();
                self.stage = Stage::Over(Ended::Terminated);
                return false;
            }
            self.run = self.next_run();
            self.forget_flags();
            self.stage = Stage::Live;
            self.terminable = terminable;
            true
        }

        fn resume(&mut self, unwind: bool) -> bool {
            if !unwind && self.killed {
                return false;
            }
            self.stage = Stage::Live;
            if unwind {
                self.terminable = false;
            }
            true
        }

        /// Whether the guest may yield (else it ends the run).
        fn suspend(&mut self) -> bool {
            if self.killed {
                return false;
            }
            self.stage = Stage::Suspended;
            true
        }

        fn stop(&mut self) {
            if self.stage == Stage::Live {
                self.stage = Stage::Back;
                self.terminable = false;
            }
        }

        fn finish(&mut self, natural: Ended) -> Ended {
            let how = if self.killed { Ended::Terminated } else { natural };
            self.forget_flags();
            self.stage = Stage::Over(how);
            how
        }

        fn reset(&mut self) {
            self.run = self.run.wrapping_add(1);
            self.forget_flags();
            self.stage = Stage::Fresh;
        }

        fn drop_instance(&mut self) {
            self.forget_flags();
            self.stage = Stage::Gone;
        }

        /// Whether the word counts the region (it counts up to 65535).
        fn enter_region(&mut self) -> bool {
            if self.regions == 65_535 {
                return false;
            }
            self.regions += 1;
            true
        }

        /// Whether the run must end now.
        fn leave_region(&mut self) -> bool {
            if self.regions == 0 {
                return false;
            }
            self.regions -= 1;
            self.regions == 0 && self.accepts()
        }

        /// (terminable before, whether the run must end now)
        fn set_terminable(&mut self, on: bool) -> (bool, bool) {
            let was = self.terminable;
            self.terminable = on;
            (was, self.killed && self.regions == 0)
        }

        fn terminate(&mut self, target: u32) -> Termination {
            if self.stage == Stage::Gone {
                return Termination::Dropped;
            }
            if let Stage::Over(how) = self.stage {
                if target == self.run.wrapping_add(1) {
                    // The next run, killed before it exists.
                    self.run = target;
                    self.forget_flags();
                    self.stage = Stage::Fresh;
                    self.killed = true;
                    return Termination::AtStart;
                }
                return if target == self.run { Termination::Finished(how) } else { Termination::Superseded };
            }
            if target != self.run {
                return Termination::Superseded;
            }
            if self.killed {
                return Termination::AlreadyRequested;
            }
            self.killed = true;
            match self.stage {
                Stage::Fresh => Termination::AtStart,
                Stage::Suspended => Termination::OnResume,
                Stage::Live if self.terminable && self.regions > 0 => Termination::AfterHostRegion,
                Stage::Live if self.terminable => {
                    self.signalled = true;
                    Termination::Signalled
                }
                _ => Termination::Pending,
            }
        }
    }

    /// The word under test, the reference beside it when the test compares
    /// the two, and the answers seen (for the coverage test).
    struct Sut {
        word: Word,
        reference: Option<Reference>,
        seen: BTreeSet<String>,
    }

    impl Sut {
        fn take<R>(&mut self, (new, answer): Step<R>) -> R {
            if let Some(new) = new {
                self.word = new;
            }
            answer
        }

        /// Checks the queries after operation `what` answered `answer`.
        fn checked(&mut self, what: &str, answer: impl core::fmt::Debug) {
            let w = self.word;
            assert_eq!(Word::from_bits(w.to_bits()), w, "bits round trip after {what}");
            if let Some(r) = &self.reference {
                assert_eq!(w.id(), r.run, "id after {what}: {w:?} / {r:?}");
                assert_eq!(w.target(), r.next_run(), "target after {what}: {w:?} / {r:?}");
                assert_eq!(w.accepts(), r.accepts(), "accepts after {what}: {w:?} / {r:?}");
                assert_eq!(w.is_yielded(), r.stage == Stage::Suspended, "is_yielded after {what}: {w:?} / {r:?}");
                assert_eq!(w.in_region(), r.regions > 0, "in_region after {what}: {w:?} / {r:?}");
                assert_eq!(w.signal() == Signal::Sent, r.signalled, "signal after {what}: {w:?} / {r:?}");
            }
            self.seen.insert(format!("{what} {answer:?}"));
        }

        fn start(&mut self, t: Terminable) -> Entry {
            let e = self.take(self.word.start(t));
            if let Some(r) = &mut self.reference {
                assert_eq!(e == Entry::Go, r.start(t == Terminable::Yes), "start({t:?}): {e:?}");
            }
            self.checked("start", e);
            e
        }

        fn resume(&mut self, how: Resume) -> Entry {
            let e = self.take(self.word.resume(how));
            if let Some(r) = &mut self.reference {
                assert_eq!(e == Entry::Go, r.resume(how == Resume::Unwind), "resume({how:?}): {e:?}");
            }
            self.checked("resume", e);
            e
        }

        fn suspend(&mut self) -> Guest {
            let g = self.take(self.word.suspend());
            if let Some(r) = &mut self.reference {
                assert_eq!(g == Guest::Continue, r.suspend(), "suspend: {g:?}");
            }
            self.checked("suspend", g);
            g
        }

        fn stop(&mut self) {
            self.take(self.word.stop());
            if let Some(r) = &mut self.reference {
                r.stop();
            }
            self.checked("stop", ());
        }

        fn finish(&mut self, natural: Ended) -> Ended {
            let how = self.take(self.word.finish(natural));
            if let Some(r) = &mut self.reference {
                assert_eq!(how, r.finish(natural), "finish({natural:?})");
            }
            self.checked("finish", how);
            how
        }

        fn reset(&mut self) {
            self.take(self.word.reset());
            if let Some(r) = &mut self.reference {
                r.reset();
            }
            self.checked("reset", ());
        }

        fn dropped(&mut self) {
            self.take(self.word.dropped());
            if let Some(r) = &mut self.reference {
                r.drop_instance();
            }
            self.checked("dropped", ());
        }

        fn enter_region(&mut self) -> Nest {
            let n = self.take(self.word.enter_region());
            if let Some(r) = &mut self.reference {
                assert_eq!(n == Nest::Counted, r.enter_region(), "enter_region: {n:?}");
            }
            self.checked("enter_region", n);
            n
        }

        fn leave_region(&mut self) -> Guest {
            let g = self.take(self.word.leave_region());
            if let Some(r) = &mut self.reference {
                assert_eq!(g == Guest::EndRun, r.leave_region(), "leave_region: {g:?}");
            }
            self.checked("leave_region", g);
            g
        }

        fn set_terminable(&mut self, t: Terminable) -> (Terminable, Guest) {
            let (was, g) = self.take(self.word.set_terminable(t));
            if let Some(r) = &mut self.reference {
                let expected = r.set_terminable(t == Terminable::Yes);
                assert_eq!(
                    (was == Terminable::Yes, g == Guest::EndRun),
                    expected,
                    "set_terminable({t:?}): {was:?}, {g:?}"
                );
            }
            self.checked("set_terminable", g);
            (was, g)
        }

        fn terminate(&mut self, target: u32) -> Termination {
            let a = self.take(self.word.terminate(target));
            if let Some(r) = &mut self.reference {
                assert_eq!(a, r.terminate(target), "terminate({target})");
            }
            // Finished(_) counts as one answer for the coverage test.
            let label = match a {
                Termination::Finished(_) => "Finished".to_string(),
                a => format!("{a:?}"),
            };
            self.checked("terminate", label);
            a
        }
    }

    /// What the guest's frames hold, innermost last.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Frame {
        /// A host region.
        Region,
        /// A `terminable` block, with the setting it restores.
        Terminable(Terminable),
    }

    /// What the host does once the unwinding of a suspended closure is over
    /// (`Instance::discard_suspended` and its callers).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum After {
        /// The resume was refused (a kill was pending): finish terminated.
        Finish,
        Reset,
        Drop,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Purpose {
        /// An ordinary run (start or resume).
        Run,
        /// The unwinding of a suspended closure.
        Discard(After),
    }

    /// Where the host is: which operations are legal next.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Host {
        /// No guest is live; `may_run`: the instance is ready or returned
        /// (else it faulted, panicked or was terminated: reset first).
        Ready {
            may_run: bool,
        },
        /// Guest code runs (or the host is switching into it).
        Guest {
            purpose: Purpose,
            frames: Vec<Frame>,
        },
        /// The guest came back; `stopped`: the host has marked the run
        /// stopped and settled the signal.
        Back {
            purpose: Purpose,
            natural: Ended,
            stopped: bool,
        },
        /// The guest is suspended; `discarding`: in the middle of an
        /// unwinding that the host retries or gives up.
        Yielded {
            discarding: Option<After>,
        },
        Dropped,
    }

    /// How a run (an id) ended up.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fate {
        Ended(Ended),
        /// Reset or dropped while yielded or before it started: it never
        /// ends, and its kill (if any) is dropped with it.
        Discarded,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Action {
        // The host.
        Start,
        Stop,
        Finish,
        Resume,
        Reset,
        Drop,
        UnwindAgain,
        GiveUp,
        // The guest.
        EnterRegion,
        LeaveRegion,
        UnpairedLeave,
        EnterTerminable,
        LeaveTerminable,
        Yield,
        Return,
        TerminateOwnRun,
        // The kill signal arriving on the run's thread.
        Deliver,
        // Another thread.
        MakeSwitch,
        Terminate,
    }

    /// Drives the word (and maybe the reference) through a legal sequence
    /// of the protocol's operations and records every `terminate` call and
    /// every run's fate. Whatever the reference, it checks as it goes that
    /// a kill signal is sent only while a guest runs and that the word says
    /// SENT while one is on its way (the host's wait depends on it), and
    /// the promises of the effective answers (see `Driver::promise`).
    struct Driver {
        sut: Sut,
        host: Host,
        /// The run the host is in, while one is live.
        run: u32,
        /// The targets of the switches made so far.
        switches: Vec<u32>,
        /// A kill signal was sent and has not been delivered yet.
        in_flight: bool,
        calls: Vec<(u32, Termination)>,
        fates: BTreeMap<u32, Fate>,
        /// The runs some `terminate` call answered with an effective answer.
        effective: BTreeSet<u32>,
        /// Whether the live guest's code is terminable, as the driver
        /// knows it from what it started and set (not from the word).
        term: Terminable,
        /// The wind-down started its last run.
        last_run: bool,
    }

    const MAX_FRAMES: usize = 4;

    impl Driver {
        fn new(first_id: u32, with_reference: bool) -> Driver {
            Driver {
                sut: Sut {
                    word: Word::bare(first_id, Phase::NotStarted),
                    reference: with_reference.then(|| Reference::new(first_id)),
                    seen: BTreeSet::new(),
                },
                host: Host::Ready { may_run: true },
                run: first_id,
                switches: Vec::new(),
                in_flight: false,
                calls: Vec::new(),
                fates: BTreeMap::new(),
                effective: BTreeSet::new(),
                term: Terminable::No,
                last_run: false,
            }
        }

        fn legal(&self) -> Vec<Action> {
            use Action::*;
            let mut legal = vec![MakeSwitch, Terminate, Terminate];
            if self.in_flight {
                legal.push(Deliver);
            }
            match &self.host {
                Host::Ready { may_run } => {
                    if *may_run {
                        legal.extend([Start, Start]);
                    }
                    legal.extend([Reset, Drop]);
                }
                Host::Guest { frames, .. } => {
                    if frames.len() < MAX_FRAMES {
                        legal.extend([EnterRegion, EnterTerminable, TerminateOwnRun]);
                    }
                    match frames.last() {
                        Some(Frame::Region) => legal.push(LeaveRegion),
                        Some(Frame::Terminable(_)) => legal.push(LeaveTerminable),
                        None => {}
                    }
                    if !frames.contains(&Frame::Region) {
                        legal.extend([Yield, UnpairedLeave]);
                    }
                    legal.push(Return);
                }
                Host::Back { stopped: false, .. } => legal.push(Stop),
                Host::Back { stopped: true, .. } => legal.push(Finish),
                Host::Yielded { discarding: None } => legal.extend([Resume, Resume, Reset, Drop]),
                Host::Yielded { discarding: Some(_) } => legal.extend([UnwindAgain, GiveUp]),
                Host::Dropped => {}
            }
            legal
        }

        fn purpose(&self) -> Purpose {
            match &self.host {
                Host::Guest { purpose, .. } | Host::Back { purpose, .. } => *purpose,
                host => panic!("no segment in {host:?}"),
            }
        }

        fn frames(&mut self) -> &mut Vec<Frame> {
            match &mut self.host {
                Host::Guest { frames, .. } => frames,
                host => panic!("no guest in {host:?}"),
            }
        }

        /// Whether an effective kill is due for the live run.
        fn killed(&self) -> bool {
            self.effective.contains(&self.run)
        }

        fn in_region(&self) -> bool {
            matches!(&self.host, Host::Guest { frames, .. } if frames.contains(&Frame::Region))
        }

        /// The promise of the effective answers: the kill lands at the first
        /// chance the answer names (start, resume, yield, entering
        /// terminable code, leaving the last host region, the signal), and
        /// nothing lands there without one.
        fn promise(&self, what: &str, lands: bool, due: bool) {
            assert_eq!(
                lands,
                due,
                "{what}: a kill {} here, but {} for run {} (calls {:?})",
                if lands { "lands" } else { "does not land" },
                if due { "one is due" } else { "none is due" },
                self.run,
                self.calls
            );
        }

        /// The guest comes back to the host (returned, faulted, redirected
        /// by the kill signal).
        fn come_back(&mut self, natural: Ended) {
            self.host = Host::Back { purpose: self.purpose(), natural, stopped: false };
        }

        /// `end_run_from_guest`: the guest marks the run stopped and goes
        /// back; the host finishes it as returned (a kill makes that
        /// terminated).
        fn end_from_guest(&mut self) {
            self.sut.stop();
            self.come_back(Ended::Returned);
        }

        fn end(&mut self, id: u32, how: Ended) {
            if let Some(Fate::Ended(before)) = self.fates.insert(id, Fate::Ended(how)) {
                panic!("run {id} ended twice: {before:?}, then {how:?}");
            }
        }

        /// Reset or drop: the run the word is about is discarded unless it
        /// ends later (a reset after an ended run keeps the next run).
        fn discard(&mut self) {
            self.fates.entry(self.sut.word.target()).or_insert(Fate::Discarded);
        }

        fn after_discard(&mut self, after: After) {
            match after {
                After::Finish => {
                    let how = self.sut.finish(Ended::Terminated);
                    self.end(self.run, how);
                    self.host = Host::Ready { may_run: false };
                }
                After::Reset => {
                    self.discard();
                    self.sut.reset();
                    self.host = Host::Ready { may_run: true };
                }
                After::Drop => {
                    self.discard();
                    self.sut.dropped();
                    self.host = Host::Dropped;
                }
            }
        }

        /// A suspended guest is discarded: a closure may be unwound first
        /// (a run of its own), a raw entry is not.
        fn discard_suspended(&mut self, after: After, unwind: bool) {
            if unwind && self.sut.resume(Resume::Unwind) == Entry::Go {
                // Destructors are not terminable code.
                self.term = Terminable::No;
                self.host = Host::Guest { purpose: Purpose::Discard(after), frames: Vec::new() };
            } else {
                self.after_discard(after);
            }
        }

        fn deliver(&mut self) {
            self.in_flight = false;
            // The host's wait for it depends on the word saying so.
            assert_eq!(self.sut.word.signal(), Signal::Sent, "a kill signal is on its way, the word must say SENT");
            // In the guest's code, the handler ends the run if the word
            // accepts; in the host's code (switching, settling) it never
            // does.
            let in_guest = matches!(self.host, Host::Guest { .. });
            let accepts = self.sut.word.accepts();
            self.sut.checked("deliver", accepts);
            if in_guest {
                let due = self.killed() && !self.in_region() && self.term == Terminable::Yes;
                self.promise("the kill signal in the guest's code", accepts, due);
            }
            if in_guest && accepts {
                self.come_back(Ended::Returned);
            }
        }

        fn terminate(&mut self, target: u32) {
            let answer = self.sut.terminate(target);
            self.calls.push((target, answer));
            if answer.takes_effect() {
                self.effective.insert(target);
            }
            if answer == Termination::Signalled {
                assert!(
                    matches!(self.host, Host::Guest { .. } | Host::Back { stopped: false, .. }),
                    "signalled while no guest runs: {:?}",
                    self.host
                );
                assert!(!self.in_flight, "a second kill signal for one run");
                self.in_flight = true;
            }
        }

        fn act(&mut self, action: Action, p: u8) {
            use Action::*;
            let honour = p & 2 == 0;
            match action {
                MakeSwitch => {
                    // As `KillSwitch::new` does.
                    let target = self.sut.word.target();
                    self.switches.push(target);
                }
                Terminate => {
                    if self.switches.is_empty() {
                        self.act(MakeSwitch, p);
                    }
                    let target = self.switches[usize::from(p) % self.switches.len()];
                    self.terminate(target);
                }
                Deliver => self.deliver(),
                Start => {
                    let t = if p & 1 == 0 { Terminable::Yes } else { Terminable::No };
                    let id = self.sut.word.target();
                    let entry = self.sut.start(t);
                    self.run = id;
                    self.promise("start", entry == Entry::Killed, self.effective.contains(&id));
                    match entry {
                        Entry::Go => {
                            self.term = t;
                            self.host = Host::Guest { purpose: Purpose::Run, frames: Vec::new() };
                        }
                        Entry::Killed => {
                            self.end(id, Ended::Terminated);
                            self.host = Host::Ready { may_run: false };
                        }
                    }
                }
                Stop => {
                    // `Instance::enter` after the switch back: stop, settle
                    // the signal, then ask the word whether it yielded.
                    let Host::Back { purpose, natural, .. } = self.host.clone() else { unreachable!() };
                    self.sut.stop();
                    if self.in_flight {
                        self.deliver();
                    }
                    self.host = if self.sut.word.is_yielded() {
                        Host::Yielded {
                            discarding: match purpose {
                                Purpose::Run => None,
                                Purpose::Discard(after) => Some(after),
                            },
                        }
                    } else {
                        Host::Back { purpose, natural, stopped: true }
                    };
                }
                Finish => {
                    let Host::Back { purpose, natural, .. } = self.host.clone() else { unreachable!() };
                    match purpose {
                        Purpose::Run => {
                            let how = self.sut.finish(natural);
                            self.end(self.run, how);
                            self.host = Host::Ready { may_run: how == Ended::Returned };
                        }
                        Purpose::Discard(after) => self.after_discard(after),
                    }
                }
                Resume => {
                    let entry = self.sut.resume(super::Resume::Continue);
                    self.promise("resume", entry == Entry::Killed, self.killed());
                    match entry {
                        Entry::Go => self.host = Host::Guest { purpose: Purpose::Run, frames: Vec::new() },
                        Entry::Killed => self.discard_suspended(After::Finish, p & 1 == 1),
                    }
                }
                Reset | Drop => {
                    let after = if action == Reset { After::Reset } else { After::Drop };
                    if let Host::Yielded { .. } = self.host {
                        self.discard_suspended(after, p & 1 == 1);
                    } else {
                        self.after_discard(after);
                    }
                }
                UnwindAgain | GiveUp => {
                    let Host::Yielded { discarding: Some(after) } = self.host else { unreachable!() };
                    self.discard_suspended(after, action == UnwindAgain);
                }
                EnterRegion => {
                    self.sut.enter_region();
                    self.frames().push(Frame::Region);
                }
                LeaveRegion => {
                    self.frames().pop();
                    let then = self.sut.leave_region();
                    let due = self.killed() && !self.in_region() && self.term == Terminable::Yes;
                    self.promise("leaving a host region", then == Guest::EndRun, due);
                    // Not honoured: `Region`'s drop while unwinding.
                    if then == Guest::EndRun && honour {
                        self.end_from_guest();
                    }
                }
                UnpairedLeave => {
                    let then = self.sut.leave_region();
                    self.promise("an unpaired region leave", then == Guest::EndRun, false);
                    if then == Guest::EndRun {
                        self.end_from_guest();
                    }
                }
                EnterTerminable => {
                    let (was, then) = self.sut.set_terminable(Terminable::Yes);
                    assert_eq!(was, self.term, "set_terminable's previous setting");
                    self.term = Terminable::Yes;
                    self.promise("entering terminable code", then == Guest::EndRun, self.killed() && !self.in_region());
                    if then == Guest::EndRun {
                        self.end_from_guest();
                    } else {
                        self.frames().push(Frame::Terminable(was));
                    }
                }
                LeaveTerminable => {
                    let Some(Frame::Terminable(was)) = self.frames().pop() else { unreachable!() };
                    // Not honoured: the restoring guard's drop while unwinding.
                    let (before, then) = self.sut.set_terminable(was);
                    assert_eq!(before, self.term, "set_terminable's previous setting");
                    self.term = was;
                    self.promise("leaving terminable code", then == Guest::EndRun, self.killed() && !self.in_region());
                    if then == Guest::EndRun && was == Terminable::No && honour {
                        self.end_from_guest();
                    }
                }
                Yield => {
                    let then = self.sut.suspend();
                    self.promise("yielding", then == Guest::EndRun, self.killed());
                    match then {
                        Guest::Continue => self.come_back(Ended::Returned),
                        // A u64 yield ends the run; a Rust yield unwinds the
                        // closure, which goes on (to return).
                        Guest::EndRun if p & 1 == 0 => self.end_from_guest(),
                        Guest::EndRun => {}
                    }
                }
                Return => {
                    let natural = [Ended::Returned, Ended::Faulted, Ended::Panicked][usize::from(p) % 3];
                    self.come_back(natural);
                }
                TerminateOwnRun => {
                    // `KillSwitch::terminate` called by the guest: inside a
                    // host region.
                    if self.switches.is_empty() {
                        self.act(MakeSwitch, p);
                    }
                    self.sut.enter_region();
                    let target = self.switches[usize::from(p) % self.switches.len()];
                    self.terminate(target);
                    let then = self.sut.leave_region();
                    let due = self.killed() && !self.in_region() && self.term == Terminable::Yes;
                    self.promise("leaving the region around terminate", then == Guest::EndRun, due);
                    if then == Guest::EndRun {
                        self.end_from_guest();
                    }
                }
            }
        }

        /// Brings every live run to its end, and starts (and ends) one run
        /// more, so that a kill of the next run is carried out too.
        fn wind_down(&mut self) {
            use Action::*;
            for _ in 0..100 {
                let action = match &self.host {
                    Host::Dropped => return,
                    Host::Ready { .. } if self.last_run => return,
                    Host::Ready { may_run: false } => Reset,
                    Host::Ready { may_run: true } => {
                        self.last_run = true;
                        Start
                    }
                    Host::Guest { frames, .. } => match frames.last() {
                        Some(Frame::Region) => LeaveRegion,
                        Some(Frame::Terminable(_)) => LeaveTerminable,
                        None => Return,
                    },
                    Host::Back { stopped: false, .. } => Stop,
                    Host::Back { stopped: true, .. } => Finish,
                    Host::Yielded { discarding: None } => Resume,
                    Host::Yielded { discarding: Some(_) } => GiveUp,
                };
                self.act(action, 0);
            }
            panic!("the wind-down did not end: {:?}", self.host);
        }

        /// `takes_effect` is true exactly for the one call whose run ends
        /// terminated, and it is the first call for that run; no other
        /// run ends terminated. A run discarded by reset or drop never ends;
        /// it may have had one effective call.
        fn check_terminations(&self) {
            for (i, &(target, answer)) in self.calls.iter().enumerate() {
                let fate = self.fates.get(&target).copied();
                if answer.takes_effect() {
                    assert!(
                        matches!(fate, Some(Fate::Ended(Ended::Terminated) | Fate::Discarded)),
                        "call {i}: terminate({target}) answered {answer:?}, but the run's fate is {fate:?}; calls {:?}",
                        self.calls
                    );
                    let first = self.calls.iter().position(|&(t, _)| t == target);
                    assert_eq!(
                        first,
                        Some(i),
                        "call {i}: {answer:?} for run {target} is not its first call: {:?}",
                        self.calls
                    );
                }
            }
            for (&id, &fate) in &self.fates {
                let effective = self.calls.iter().filter(|&&(t, a)| t == id && a.takes_effect()).count();
                match fate {
                    Fate::Ended(Ended::Terminated) => assert_eq!(
                        effective, 1,
                        "run {id} ended terminated after {effective} effective calls: {:?}",
                        self.calls
                    ),
                    Fate::Ended(how) => assert_eq!(
                        effective, 0,
                        "run {id} ended {how:?} after {effective} effective calls: {:?}",
                        self.calls
                    ),
                    Fate::Discarded => assert!(effective <= 1, "run {id} discarded after {effective} effective calls"),
                }
            }
        }
    }

    /// Plays `ops` (each: which legal action, and its parameter) from a word
    /// whose first run is `first_id`, then winds down.
    fn drive(first_id: u32, ops: &[(u8, u8)], with_reference: bool) -> Driver {
        let mut driver = Driver::new(first_id, with_reference);
        for &(pick, p) in ops {
            let legal = driver.legal();
            driver.act(legal[usize::from(pick) % legal.len()], p);
        }
        driver.wind_down();
        driver
    }

    fn scenario() -> impl Strategy<Value = (u32, Vec<(u8, u8)>)> {
        let first_id = prop_oneof![Just(0u32), Just(u32::MAX - 1), any::<u32>()];
        (first_id, proptest::collection::vec(any::<(u8, u8)>(), 0..160))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(768))]

        #[test]
        fn bits_round_trip(word in arb_word()) {
            prop_assert_eq!(Word::from_bits(word.to_bits()), word);
        }

        /// Every answer and every query of the word, after every step,
        /// is the reference's.
        #[test]
        fn word_answers_as_the_reference_model_does((first_id, ops) in scenario()) {
            drive(first_id, &ops, true);
        }

        /// Without the reference: `takes_effect` agrees with how the runs
        /// end, and each effective kill lands where its answer says.
        #[test]
        fn terminate_takes_effect_exactly_when_its_run_ends_terminated((first_id, ops) in scenario()) {
            drive(first_id, &ops, false).check_terminations();
        }
    }

    /// The driver reaches every answer (so the model tests exercise every
    /// row), and a kill lost to a discard.
    #[test]
    fn the_model_reaches_every_answer() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut seen = BTreeSet::new();
        let mut lost = 0;
        for _ in 0..400 {
            let (first_id, ops) = scenario().new_tree(&mut runner).unwrap().current();
            let driver = drive(first_id, &ops, true);
            lost += driver
                .calls
                .iter()
                .filter(|&&(t, a)| a.takes_effect() && driver.fates.get(&t) == Some(&Fate::Discarded))
                .count();
            seen.extend(driver.sut.seen);
        }
        let wanted = [
            "start Go",
            "start Killed",
            "resume Go",
            "resume Killed",
            "suspend Continue",
            "suspend EndRun",
            "leave_region Continue",
            "leave_region EndRun",
            "set_terminable Continue",
            "set_terminable EndRun",
            "enter_region Counted",
            "deliver true",
            "deliver false",
            "finish Returned",
            "finish Faulted",
            "finish Panicked",
            "finish Terminated",
            "terminate \"Signalled\"",
            "terminate \"AtStart\"",
            "terminate \"OnResume\"",
            "terminate \"AfterHostRegion\"",
            "terminate \"Pending\"",
            "terminate \"AlreadyRequested\"",
            "terminate \"Finished\"",
            "terminate \"Superseded\"",
            "terminate \"Dropped\"",
        ];
        for want in wanted {
            assert!(seen.contains(want), "never saw {want}; saw {seen:?}");
        }
        assert!(lost > 0, "no kill was ever lost to a discard");
    }
}
