//! Context-level operations: a switch round trip, init + run + return on a
//! reused stack (also with `Context::init_with_sigmask`), and `Context::init`
//! alone; ours beside corosensei and Boost
//! fcontext (the `context` 3.0 crate, renamed `boost_context` here).
//!
//! Every implementation passes one word in and gets one word back, so no one
//! is timed for less work than the others.

use std::hint::black_box;

use boost_context::Transfer;
use boost_context::stack::ProtectedFixedSizeStack;
use context::{Context, ContextHandle, Val};
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, ScopedCoroutine};
use nix::sys::signal::SigSet;

use super::Op;

/// Bytes of every stack used here (the operations touch only its top page).
pub const STACK_BYTES: usize = 64 * 1024;
const STACK_WORDS: usize = STACK_BYTES / 8;

/// A stack for `Context::init`: a `[u64]` whose top is 16-byte aligned.
#[repr(C, align(16))]
pub struct Stack(pub [u64; STACK_WORDS]);

impl Stack {
    /// A zeroed stack on the heap.
    pub fn boxed() -> Box<Stack> {
        Box::new(Stack([0; STACK_WORDS]))
    }
}

// ---- switch round trip ----------------------------------------------------

/// The child of [`OursSwitch`]: forever switches straight back to its parent.
extern "C" fn ours_bounce(me: *mut Context, parent: *const Context) -> ! {
    loop {
        // SAFETY: both contexts live in `OursSwitch`, heap-pinned by their
        // handles, for as long as anything switches into this child; the
        // parent is suspended inside `swap`, so it is a valid target.
        unsafe { Context::swap(&mut *me, &*parent) };
    }
}

/// Ours: `Context::swap` into a child that swaps straight back.
pub struct OursSwitch {
    parent: ContextHandle,
    child: ContextHandle,
    _stack: Box<Stack>,
}

impl OursSwitch {
    pub fn new() -> OursSwitch {
        let mut stack = Stack::boxed();
        let mut parent = ContextHandle::new();
        let mut child = ContextHandle::new();
        let me: *mut Context = &mut *child;
        let back: *const Context = &*parent;
        let args = [Val::CPtr(me.cast_const().cast()), Val::CPtr(back.cast())];
        Context::init(&mut stack.0, &mut parent, &mut child, ours_bounce as *const () as usize, &args)
            .expect("a 64 KiB stack holds the start-up frame");
        OursSwitch { parent, child, _stack: stack }
    }
}

impl Op for OursSwitch {
    #[inline]
    fn run(&mut self) {
        // SAFETY: the child was prepared by `init` on a stack we own and
        // only ever switches back to `parent`; both are heap-pinned.
        unsafe { Context::swap(&mut self.parent, &self.child) };
    }
}

/// corosensei: resume a coroutine that suspends with its input, forever.
pub struct CorosenseiSwitch {
    co: Coroutine<u64, u64, (), DefaultStack>,
}

impl CorosenseiSwitch {
    pub fn new() -> CorosenseiSwitch {
        let co = Coroutine::with_stack(DefaultStack::new(STACK_BYTES).expect("mmap a stack"), |y, mut input| {
            loop {
                input = y.suspend(input);
            }
        });
        CorosenseiSwitch { co }
    }
}

impl Op for CorosenseiSwitch {
    #[inline]
    fn run(&mut self) {
        black_box(self.co.resume(black_box(0)));
    }
}

impl Drop for CorosenseiSwitch {
    fn drop(&mut self) {
        // SAFETY: the coroutine's frames hold only integers: nothing needs
        // dropping, so abandoning them is sound.
        unsafe { self.co.force_reset() };
    }
}

/// The child of [`BoostSwitch`]: hands back whatever it is given, forever.
extern "C" fn boost_echo(mut t: Transfer) -> ! {
    loop {
        // SAFETY: `t.context` is the suspended parent, which is alive.
        t = unsafe { t.context.resume(t.data) };
    }
}

/// Boost fcontext: `resume` a context that resumes straight back.
pub struct BoostSwitch {
    ctx: Option<boost_context::Context>,
    _stack: ProtectedFixedSizeStack,
}

impl BoostSwitch {
    pub fn new() -> BoostSwitch {
        let stack = ProtectedFixedSizeStack::new(STACK_BYTES).expect("mmap a stack");
        // SAFETY: the stack is kept in the struct for as long as the context.
        let ctx = unsafe { boost_context::Context::new(&stack, boost_echo) };
        // SAFETY: first resume starts `boost_echo`, which resumes us back.
        let t = unsafe { ctx.resume(0) };
        BoostSwitch { ctx: Some(t.context), _stack: stack }
    }
}

impl Op for BoostSwitch {
    #[inline]
    fn run(&mut self) {
        let ctx = self.ctx.take().expect("the child is always handed back");
        // SAFETY: `ctx` is the suspended child, on a stack we keep alive.
        let t = unsafe { ctx.resume(black_box(0)) };
        black_box(t.data);
        self.ctx = Some(t.context);
    }
}

// ---- init + run + return on a reused stack -----------------------------------

extern "C" fn ours_identity(x: u64) -> u64 {
    x
}

/// Ours: `Context::init` with one argument, swap in, the entry returns to us.
pub struct OursInitRun {
    parent: ContextHandle,
    child: ContextHandle,
    stack: Box<Stack>,
}

impl OursInitRun {
    pub fn new() -> OursInitRun {
        OursInitRun { parent: ContextHandle::new(), child: ContextHandle::new(), stack: Stack::boxed() }
    }
}

impl Op for OursInitRun {
    #[inline]
    fn run(&mut self) {
        Context::init(
            &mut self.stack.0,
            &mut self.parent,
            &mut self.child,
            ours_identity as *const () as usize,
            &[Val::U64(black_box(7))],
        )
        .expect("a 64 KiB stack holds the start-up frame");
        // SAFETY: the child was just prepared on our stack; its entry returns
        // to `parent`, which is heap-pinned.
        unsafe { Context::swap(&mut self.parent, &self.child) };
        black_box(self.child.get_retval_gp(0));
    }
}

/// Ours without the system call: `Context::init_with_sigmask` with the
/// thread's mask read once in `new`, then as [`OursInitRun`].
pub struct OursInitRunGivenMask {
    parent: ContextHandle,
    child: ContextHandle,
    stack: Box<Stack>,
    mask: SigSet,
}

impl OursInitRunGivenMask {
    pub fn new() -> OursInitRunGivenMask {
        OursInitRunGivenMask {
            parent: ContextHandle::new(),
            child: ContextHandle::new(),
            stack: Stack::boxed(),
            mask: SigSet::thread_get_mask().expect("read the signal mask"),
        }
    }
}

impl Op for OursInitRunGivenMask {
    #[inline]
    fn run(&mut self) {
        Context::init_with_sigmask(
            &mut self.stack.0,
            &mut self.parent,
            &mut self.child,
            ours_identity as *const () as usize,
            &[Val::U64(black_box(7))],
            &self.mask,
        )
        .expect("a 64 KiB stack holds the start-up frame");
        // SAFETY: the child was just prepared on our stack; its entry returns
        // to `parent`, which is heap-pinned.
        unsafe { Context::swap(&mut self.parent, &self.child) };
        black_box(self.child.get_retval_gp(0));
    }
}

/// corosensei: a scoped coroutine on a reused stack that returns its input.
pub struct CorosenseiInitRun {
    stack: DefaultStack,
}

impl CorosenseiInitRun {
    pub fn new() -> CorosenseiInitRun {
        CorosenseiInitRun { stack: DefaultStack::new(STACK_BYTES).expect("mmap a stack") }
    }
}

impl Op for CorosenseiInitRun {
    #[inline]
    fn run(&mut self) {
        let co = ScopedCoroutine::<u64, (), u64, _>::with_stack(&mut self.stack, |_y, input| input);
        black_box(co.scope(|mut c| c.resume(black_box(7))));
    }
}

/// The child of [`BoostInitRun`]: hands its input back and is never resumed
/// again (fcontext entries cannot return; the stack is simply reused).
extern "C" fn boost_return(t: Transfer) -> ! {
    // SAFETY: `t.context` is the suspended parent, which is alive.
    unsafe { t.context.resume(t.data) };
    // Nobody resumes a finished child.
    std::process::abort()
}

/// Boost fcontext: `Context::new` on a reused stack, resume, get data back.
pub struct BoostInitRun {
    stack: ProtectedFixedSizeStack,
}

impl BoostInitRun {
    pub fn new() -> BoostInitRun {
        BoostInitRun { stack: ProtectedFixedSizeStack::new(STACK_BYTES).expect("mmap a stack") }
    }
}

impl Op for BoostInitRun {
    #[inline]
    fn run(&mut self) {
        // SAFETY: the stack outlives the context; the previous child on it
        // is abandoned and never resumed.
        let ctx = unsafe { boost_context::Context::new(&self.stack, boost_return) };
        // SAFETY: starts `boost_return`, which resumes us straight back.
        let t = unsafe { ctx.resume(black_box(7)) };
        black_box(t.data);
    }
}

// ---- Context::init alone -----------------------------------------------------

extern "C" fn never_called() {}

/// 24 arguments, integer and floating interleaved: 6 go in rdi..r9, 8 in
/// xmm0-7, and the other 10 spill onto the stack.
fn mixed_args() -> Vec<Val> {
    (0..24u32)
        .map(|i| match i % 4 {
            0 => Val::U64(u64::from(i)),
            1 => Val::F64(f64::from(i)),
            2 => Val::I32(-(i as i32)),
            _ => Val::F32(i as f32),
        })
        .collect()
}

/// Ours: `Context::init` with the given arguments (never run).
pub struct OursInit {
    parent: ContextHandle,
    child: ContextHandle,
    stack: Box<Stack>,
    args: Vec<Val>,
}

impl OursInit {
    fn with_args(args: Vec<Val>) -> OursInit {
        OursInit { parent: ContextHandle::new(), child: ContextHandle::new(), stack: Stack::boxed(), args }
    }
}

impl Op for OursInit {
    #[inline]
    fn run(&mut self) {
        let r = Context::init(
            &mut self.stack.0,
            &mut self.parent,
            &mut self.child,
            never_called as *const () as usize,
            black_box(&self.args),
        );
        black_box(r).expect("a 64 KiB stack holds 24 arguments");
    }
}

/// `Context::init` with 24 mixed arguments.
pub struct OursInit24(OursInit);

impl OursInit24 {
    pub fn new() -> OursInit24 {
        OursInit24(OursInit::with_args(mixed_args()))
    }
}

impl Op for OursInit24 {
    #[inline]
    fn run(&mut self) {
        self.0.run();
    }
}

/// `Context::init` with no arguments: the fixed part of the cost.
pub struct OursInit0(OursInit);

impl OursInit0 {
    pub fn new() -> OursInit0 {
        OursInit0(OursInit::with_args(Vec::new()))
    }
}

impl Op for OursInit0 {
    #[inline]
    fn run(&mut self) {
        self.0.run();
    }
}

/// Reading the thread's signal mask, which `Context::init` must record: the
/// one system call inside `init`.
pub struct SigmaskRead;

impl SigmaskRead {
    pub fn new() -> SigmaskRead {
        SigmaskRead
    }
}

impl Op for SigmaskRead {
    #[inline]
    fn run(&mut self) {
        black_box(SigSet::thread_get_mask().expect("read the signal mask"));
    }
}

// ---- 1,000 green tasks round-robin -------------------------------------------

/// Tasks in the round-robin groups.
pub const GREEN_TASKS: usize = 1000;
/// Stack bytes of each green task (they touch only their top page).
const GREEN_STACK_WORDS: usize = 16 * 1024 / 8;

/// A little float work between two yields: the inexact status flag goes
/// up in every task, as in real programs.
#[inline(always)]
fn float_step(acc: &mut f64) {
    *acc = black_box(*acc) * 1.000_000_1 + 0.5;
}

/// Arguments of one green task of [`OursGreenTasks`].
#[repr(C)]
struct GreenTask {
    me: ContextHandle,
    acc: f64,
}

/// The body of every green task of [`OursGreenTasks`]: float work, then
/// back to the scheduler, forever.
extern "C" fn ours_green_task(task: *mut GreenTask, scheduler: *const Context) -> ! {
    loop {
        // SAFETY: the task lives in a Box of `OursGreenTasks` for as long as
        // anything switches into it, and only its own context runs it.
        let t = unsafe { &mut *task };
        float_step(&mut t.acc);
        // SAFETY: the scheduler is suspended in `swap` (it resumed us) and
        // heap-pinned in `OursGreenTasks`.
        unsafe { Context::swap(&mut t.me, &*scheduler) };
    }
}

/// Ours: a scheduler that resumes 1,000 `context` tasks in turn; one
/// operation is one round (1,000 round trips).
pub struct OursGreenTasks {
    scheduler: ContextHandle,
    // Boxed: each task's address is handed to its context before it is
    // pushed, so it must not move with the Vec.
    #[allow(clippy::vec_box)]
    tasks: Vec<Box<GreenTask>>,
    _stacks: Vec<Box<[u64]>>,
}

impl OursGreenTasks {
    pub fn new() -> OursGreenTasks {
        let mut scheduler = ContextHandle::new();
        let mut tasks = Vec::with_capacity(GREEN_TASKS);
        let mut stacks = Vec::with_capacity(GREEN_TASKS);
        for _ in 0..GREEN_TASKS {
            // One word more than needed, so the slice can start 16-aligned
            // (a boxed [u64] is only 8-aligned).
            let mut stack = vec![0u64; GREEN_STACK_WORDS + 1].into_boxed_slice();
            let skip = usize::from(!(stack.as_ptr() as usize).is_multiple_of(16));
            let mut task = Box::new(GreenTask { me: ContextHandle::new(), acc: 0.0 });
            let t: *mut GreenTask = &mut *task;
            let back: *const Context = &*scheduler;
            let words = &mut stack[skip..skip + GREEN_STACK_WORDS];
            let mut child = ContextHandle::new();
            Context::init(
                words,
                &mut scheduler,
                &mut child,
                ours_green_task as *const () as usize,
                &[Val::CPtr(t.cast_const().cast()), Val::CPtr(back.cast())],
            )
            .expect("a 16 KiB stack holds the start-up frame");
            task.me = child;
            tasks.push(task);
            stacks.push(stack);
        }
        OursGreenTasks { scheduler, tasks, _stacks: stacks }
    }
}

impl Op for OursGreenTasks {
    #[inline]
    fn run(&mut self) {
        for task in &mut self.tasks {
            // SAFETY: each task was prepared by `init` on a stack we own and
            // only switches back to the scheduler; all are heap-pinned.
            unsafe { Context::swap(&mut self.scheduler, &task.me) };
        }
    }
}

/// corosensei: 1,000 coroutines resumed in turn, each doing the same float
/// work between yields.
pub struct CorosenseiGreenTasks {
    tasks: Vec<Coroutine<(), (), (), DefaultStack>>,
}

impl CorosenseiGreenTasks {
    pub fn new() -> CorosenseiGreenTasks {
        let tasks = (0..GREEN_TASKS)
            .map(|_| {
                Coroutine::with_stack(DefaultStack::new(16 * 1024).expect("mmap a stack"), |y, ()| {
                    let mut acc = 0.0;
                    loop {
                        float_step(&mut acc);
                        y.suspend(());
                    }
                })
            })
            .collect();
        CorosenseiGreenTasks { tasks }
    }
}

impl Op for CorosenseiGreenTasks {
    #[inline]
    fn run(&mut self) {
        for co in &mut self.tasks {
            black_box(co.resume(()));
        }
    }
}

impl Drop for CorosenseiGreenTasks {
    fn drop(&mut self) {
        for co in &mut self.tasks {
            // SAFETY: the coroutines' frames hold only a float: nothing to
            // drop, so abandoning them is sound.
            unsafe { co.force_reset() };
        }
    }
}
