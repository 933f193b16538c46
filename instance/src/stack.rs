//! Guard-page stacks and a pool that reuses them.
//!
//! A [`Stack`] is one private anonymous mapping: a `PROT_NONE` guard region
//! at the bottom and the usable, read-write part above it. The mapping is
//! made with `MAP_NORESERVE`, so pages are committed only when first touched,
//! and a large stack costs address space, not memory.
//!
//! ```text
//!   mapping_start                 base                               top
//!   |  guard (PROT_NONE)          |  usable (read/write, lazy)        |
//!   +-----------------------------+-----------------------------------+
//!   lower addresses                     the stack grows down from top <-
//! ```
//!
//! This module needs `unsafe` to call `mmap`, `mprotect`, `madvise`,
//! `mincore` and `munmap`, and to hand out the usable part as a
//! `&mut [u64]`; each call says why it holds.
#![allow(unsafe_code)]

use core::ffi::c_void;
use core::num::NonZeroUsize;
use core::ptr::NonNull;
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mmap_anonymous, mprotect, munmap};

/// What was wrong with a request for a stack, or which system call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// A usable size of zero bytes was asked for.
    #[error("the stack size is zero")]
    ZeroSize,
    /// A guard region of zero bytes was asked for; at least one page is needed.
    #[error("the guard size is zero; a stack needs at least one guard page")]
    ZeroGuard,
    /// The size, the guard, or their sum does not fit in `usize` once rounded
    /// up to whole pages.
    #[error("a stack of {size} bytes with a {guard}-byte guard does not fit the address space")]
    TooLarge {
        /// Requested usable bytes.
        size: usize,
        /// Requested guard bytes.
        guard: usize,
    },
    /// `mmap` refused the mapping.
    #[error("mmap of {len} bytes failed")]
    Map {
        /// Bytes asked for (guard included).
        len: usize,
        /// The error `mmap` returned.
        #[source]
        errno: Errno,
    },
    /// `mprotect` of the usable part failed.
    #[error("mprotect of the usable part failed")]
    Protect(#[source] Errno),
    /// `madvise(MADV_DONTNEED)` failed.
    #[error("madvise(MADV_DONTNEED) failed")]
    Advise(#[source] Errno),
    /// `mincore`, asked which pages of the usable part are resident, failed.
    #[error("mincore of the usable part failed")]
    Residency(#[source] Errno),
    /// A stack was handed to a pool whose size or guard differs from its own.
    #[error("a stack of {size} bytes with a {guard}-byte guard does not belong to a pool of {pool_size}/{pool_guard}")]
    WrongPool {
        /// Usable bytes of the stack.
        size: usize,
        /// Guard bytes of the stack.
        guard: usize,
        /// Usable bytes of the pool's stacks.
        pool_size: usize,
        /// Guard bytes of the pool's stacks.
        pool_guard: usize,
    },
}

/// The page size of this process (from `sysconf(_SC_PAGESIZE)`, 4096 if
/// that fails).
pub fn page_size() -> usize {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => n as usize,
        _ => 4096,
    }
}

/// Rounds `n` up to a multiple of the page size, or `None` on overflow.
fn round_up_to_page(n: usize) -> Option<usize> {
    let page = page_size();
    n.checked_add(page - 1).map(|m| m & !(page - 1))
}

/// Index of the last non-zero word of `words`, read 8 words at a time from
/// the end (a zero page is read whole; a page written to its top stops at
/// once).
fn last_non_zero(words: &[u64]) -> Option<usize> {
    let mut end = words.len();
    for chunk in words.rchunks(8) {
        if chunk.iter().fold(0, |acc, &w| acc | w) != 0 {
            let within = chunk.iter().rposition(|&w| w != 0)?;
            return Some(end - chunk.len() + within);
        }
        end -= chunk.len();
    }
    None
}

/// Pages whose residency one `mincore` call asks for: the size of the
/// buffer on the stack that receives the answer.
const RESIDENCY_CHUNK: usize = 512;

/// A stack's quick scrubs ([`Stack::quick_scrub`]) between two full ones,
/// which learn how deep the guests go: the cost of one `mincore`, spread
/// over this many scrubs.
pub const QUICK_SCRUBS_PER_FULL: u32 = 64;

/// At most this many pages at the top of a stack are zeroed by hand by a
/// quick scrub; pages below them are always given back. Bounds the reading
/// a quick scrub does whatever a guest touched.
pub const MAX_HOT_PAGES: usize = 64;

/// The default guard region, in bytes: 64 KiB of `PROT_NONE` address space
/// below every stack made by [`Stack::new`] (and [`Instance::new`](crate::Instance::new)),
/// rounded up to whole pages (16 pages of 4 KiB; one page on a kernel with
/// 64 KiB pages).
///
/// A guard costs address space only: it is never committed. It catches a
/// guest that runs off the bottom of its stack with frames smaller than the
/// guard (the common case for C code compiled without stack probes, whose
/// largest locals are rarely near 64 KiB); a frame larger than the guard can
/// step over it into whatever is mapped below, unless the code probes its
/// stack (`-fstack-clash-protection` in C, the default in Rust). See the
/// crate docs, "Stack sizing and guards".
pub const DEFAULT_GUARD_SIZE: usize = 64 * 1024;

/// A `mmap`'d stack with a `PROT_NONE` guard region below its usable part.
///
/// Sizes are rounded up to whole pages. Memory is committed lazily, page by
/// page, as the stack is touched; [`Stack::decommit`] gives touched pages
/// back, [`Stack::scrub`] zeroes them in place, [`Stack::quick_scrub`]
/// zeroes what guests left with at most one system call. Dropping the
/// stack unmaps it.
///
/// # Movement
///
/// Moving a `Stack` moves only its descriptor; the mapping stays where it
/// is, so contexts that point into it stay valid.
#[derive(Debug)]
pub struct Stack {
    start: NonNull<c_void>,
    guard: usize,
    size: usize,
    /// The usable part reads as zero: true when mapped, scrubbed or
    /// decommitted, false once [`Stack::as_words_mut`] has handed it out
    /// (every write to it, a guest's included, starts from that slice).
    known_zero: bool,
    /// Pages at the top of the usable part that [`Stack::quick_scrub`]
    /// zeroes by hand (everything below them it gives back); learnt by the
    /// last full scrub, 0 before any.
    hot_pages: usize,
    /// Quick scrubs since the last full one.
    quick_since_full: u32,
}

// SAFETY: a Stack exclusively owns its mapping, like a Box<[u8]> does; the
// raw pointer is only an address.
unsafe impl Send for Stack {}
// SAFETY: `&Stack` only reads the descriptor; writing to the memory needs
// `&mut Stack` (`as_words_mut`).
unsafe impl Sync for Stack {}

impl Stack {
    /// A stack with `size` usable bytes and a [`DEFAULT_GUARD_SIZE`] guard
    /// region, both rounded up to whole pages.
    ///
    /// # Errors
    ///
    /// [`StackError::ZeroSize`], [`StackError::TooLarge`], or the failing
    /// system call ([`StackError::Map`], [`StackError::Protect`]).
    pub fn new(size: usize) -> Result<Stack, StackError> {
        Stack::with_guard(size, DEFAULT_GUARD_SIZE)
    }

    /// A stack with `size` usable bytes and a `guard`-byte `PROT_NONE`
    /// region below them, both rounded up to whole pages.
    ///
    /// ```
    /// use instance::{Stack, StackError};
    /// let page = instance::page_size();
    /// let stack = Stack::with_guard(10_000, 1)?;
    /// assert_eq!(stack.size(), 10_000usize.div_ceil(page) * page);
    /// assert_eq!(stack.guard_size(), page);
    /// assert_eq!(Stack::with_guard(4096, 0).unwrap_err(), StackError::ZeroGuard);
    /// # Ok::<(), StackError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StackError::ZeroSize`], [`StackError::ZeroGuard`],
    /// [`StackError::TooLarge`], or the failing system call.
    pub fn with_guard(size: usize, guard: usize) -> Result<Stack, StackError> {
        if size == 0 {
            return Err(StackError::ZeroSize);
        }
        if guard == 0 {
            return Err(StackError::ZeroGuard);
        }
        let too_large = StackError::TooLarge { size, guard };
        let size_r = round_up_to_page(size).ok_or(too_large)?;
        let guard_r = round_up_to_page(guard).ok_or(too_large)?;
        let len = size_r.checked_add(guard_r).filter(|&l| l <= isize::MAX as usize).ok_or(too_large)?;
        let nz_len = NonZeroUsize::new(len).ok_or(too_large)?;

        // SAFETY: a fresh anonymous mapping at an address the kernel picks
        // cannot alias anything that exists.
        let start = unsafe {
            mmap_anonymous(None, nz_len, ProtFlags::PROT_NONE, MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE)
        }
        .map_err(|errno| StackError::Map { len, errno })?;
        let stack = Stack { start, guard: guard_r, size: size_r, known_zero: true, hot_pages: 0, quick_since_full: 0 };
        // SAFETY: the range lies inside the mapping just made, which nothing
        // else refers to yet. On failure `stack` is dropped and unmapped.
        unsafe {
            mprotect(stack.base_ptr(), size_r, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE)
                .map_err(StackError::Protect)?;
        }
        Ok(stack)
    }

    fn base_ptr(&self) -> NonNull<c_void> {
        // SAFETY: start + guard is inside (or one past the guard of) the
        // mapping, so it is non-null and in bounds.
        unsafe { self.start.byte_add(self.guard) }
    }

    /// Usable bytes (a whole number of pages).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes of the `PROT_NONE` guard region (a whole number of pages).
    pub fn guard_size(&self) -> usize {
        self.guard
    }

    /// Lowest address of the mapping: the bottom of the guard region.
    pub fn mapping_start(&self) -> usize {
        self.start.as_ptr() as usize
    }

    /// Bytes in the whole mapping, guard included.
    pub fn mapping_len(&self) -> usize {
        self.guard + self.size
    }

    /// Lowest usable address (one past the guard region).
    pub fn base(&self) -> usize {
        self.mapping_start() + self.guard
    }

    /// One past the highest usable address; page-aligned, so 16-aligned.
    pub fn top(&self) -> usize {
        self.base() + self.size
    }

    /// Whether `addr` lies in the mapping, guard included.
    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.mapping_start() && addr < self.top()
    }

    /// Whether `addr` lies in the guard region.
    pub fn in_guard(&self, addr: usize) -> bool {
        addr >= self.mapping_start() && addr < self.base()
    }

    /// The usable part as words, for [`context::Context::init`].
    pub fn as_words_mut(&mut self) -> &mut [u64] {
        self.known_zero = false;
        self.words()
    }

    fn words(&mut self) -> &mut [u64] {
        // SAFETY: the usable part is mapped read/write, page-aligned (so
        // u64-aligned), `size` bytes long, and exclusively owned by `self`,
        // which `&mut self` borrows for the slice's lifetime.
        unsafe { core::slice::from_raw_parts_mut(self.base_ptr().as_ptr().cast::<u64>(), self.size / 8) }
    }

    /// Zeroes what a guest left in the usable part, without committing the
    /// pages it never touched; returns the bytes written.
    ///
    /// `mincore(2)` tells which pages are resident; each of those is zeroed
    /// from its bottom up to its highest non-zero word (a page that already
    /// reads as zero is left alone, so a page only ever read, which the
    /// kernel backs with its shared zero page, is not committed by the
    /// scrub). The runs of pages that are not resident are given back with
    /// `madvise(MADV_DONTNEED)`: a page never touched costs nothing there,
    /// and a page the kernel swapped out (which `mincore` reports as not
    /// resident) is discarded rather than swapped back in with the last
    /// guest's data. Resident pages stay committed, so the next guest does
    /// not take a page fault for them.
    ///
    /// It costs one `mincore` per 512 pages (2 MiB of 4 KiB pages) and one
    /// `madvise` per run of absent pages (usually one, below the touched
    /// part), plus writing the touched pages. After a scrub, and until
    /// [`Stack::as_words_mut`] hands the usable part out again (which every
    /// run on it does), another scrub knows there is nothing to do and
    /// returns `Ok(0)` without a system call. (Writes that do not come
    /// through that slice, through an address computed from
    /// [`Stack::base`], say, are not seen.)
    ///
    /// ```
    /// let mut stack = instance::Stack::new(1024 * 1024)?;
    /// let page = instance::page_size();
    /// let words = stack.as_words_mut();
    /// let n = words.len();
    /// words[n - 1] = 0x5ec2e7; // the top page
    /// assert_eq!(stack.scrub()?, page);
    /// assert!(stack.as_words_mut().iter().all(|&w| w == 0));
    /// assert_eq!(stack.scrub()?, 0); // nothing written since
    /// # Ok::<(), instance::StackError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StackError::Residency`] if `mincore` fails, [`StackError::Advise`]
    /// if `madvise` does; the usable part may then be partly zeroed.
    pub fn scrub(&mut self) -> Result<usize, StackError> {
        if self.known_zero {
            return Ok(0);
        }
        // Under valgrind, memcheck holds the part of a stack below the
        // lowest stack pointer it saw leave as inaccessible: say it is
        // addressable again (undefined), and write whole resident pages
        // instead of reading them first (reading undefined words to decide
        // is what memcheck reports).
        let blind = context::valgrind::running_on_valgrind();
        if blind {
            context::valgrind::make_stack_writable(self.words());
        }
        let page = page_size();
        let pages = self.size / page;
        let mut resident = [0u8; RESIDENCY_CHUNK];
        let mut written = 0;
        // First page of the run of absent pages being collected.
        let mut absent_from = None;
        let mut highest_absent = None;
        let mut first = 0;
        while first < pages {
            let n = (pages - first).min(RESIDENCY_CHUNK);
            // SAFETY: the range is `n` pages of our own usable part
            // (page-aligned), and `resident` has room for one byte per page.
            let rc = unsafe {
                libc::mincore(self.base_ptr().byte_add(first * page).as_ptr(), n * page, resident.as_mut_ptr())
            };
            if rc != 0 {
                return Err(StackError::Residency(Errno::last()));
            }
            for (i, &flags) in resident[..n].iter().enumerate() {
                let p = first + i;
                if flags & 1 == 0 {
                    absent_from.get_or_insert(p);
                    highest_absent = Some(p);
                    continue;
                }
                if let Some(from) = absent_from.take() {
                    self.discard(from, p)?;
                }
                written += self.zero_page(p, blind);
            }
            first += n;
        }
        if let Some(from) = absent_from {
            self.discard(from, pages)?;
        }
        // What a quick scrub zeroes by hand from now on: the run of resident
        // pages down from the top (the frames the guests used), at least the
        // top page, at most MAX_HOT_PAGES.
        let top_run = highest_absent.map_or(pages, |a| pages - 1 - a);
        self.hot_pages = top_run.clamp(1, MAX_HOT_PAGES.min(pages));
        self.quick_since_full = 0;
        self.known_zero = true;
        Ok(written)
    }

    /// `madvise(MADV_DONTNEED)` of usable pages `from..to`.
    fn discard(&mut self, from: usize, to: usize) -> Result<(), StackError> {
        let page = page_size();
        // SAFETY: the range lies in our own usable part; `&mut self` means
        // no context runs on it, and dropping its contents is the point.
        unsafe { madvise(self.base_ptr().byte_add(from * page), (to - from) * page, MmapAdvise::MADV_DONTNEED) }
            .map_err(StackError::Advise)
    }

    /// Zeroes usable page `p` up to its highest non-zero word (all of it
    /// when `blind`, under valgrind); returns the bytes written.
    fn zero_page(&mut self, p: usize, blind: bool) -> usize {
        let page = page_size();
        let words = &mut self.words()[p * page / 8..(p + 1) * page / 8];
        if blind {
            words.fill(0);
            return page;
        }
        match last_non_zero(words) {
            Some(last) => {
                words[..=last].fill(0);
                (last + 1) * 8
            }
            None => 0,
        }
    }

    /// Zeroes what a guest left in the usable part with at most one system
    /// call: the top pages that the guests use (learnt, see below) are
    /// zeroed by hand, everything below them is given back with one
    /// `madvise(MADV_DONTNEED)`; returns the bytes written. This is the
    /// scrub of [`StackPool::put`], [`Instance::reset`](crate::Instance::reset)
    /// and [`Instance::into_stack`](crate::Instance::into_stack).
    ///
    /// Every byte of the usable part reads as zero afterwards, whatever the
    /// guest did, because no part is skipped on a guess: the hand-zeroed
    /// pages are read and cleared whether resident or not (a page the
    /// kernel swapped out is brought back and overwritten), and the rest
    /// is discarded whether or not anything touched it (a guest that wrote
    /// far below its stack pointer loses that data too; a swapped-out page
    /// there is dropped, not read back). How deep the guests went decides
    /// only the cost: a page below the hand-zeroed part that the next guest
    /// touches again is faulted in afresh.
    ///
    /// The hand-zeroed part is the run of resident pages down from the top
    /// that the last full scrub ([`Stack::scrub`], which asks `mincore`)
    /// found, at least one page and at most [`MAX_HOT_PAGES`]. The first
    /// quick scrub of a stack, and every [`QUICK_SCRUBS_PER_FULL`]th one
    /// after, is a full scrub, which learns it again. When the hand-zeroed
    /// part is the whole stack, a quick scrub makes no system call at all.
    /// Like [`Stack::scrub`], a quick scrub of a stack not handed out since
    /// the last scrub returns `Ok(0)` at once.
    ///
    /// ```
    /// let mut stack = instance::Stack::new(1024 * 1024)?;
    /// let words = stack.as_words_mut();
    /// let n = words.len();
    /// words[n - 1] = 0x5ec2e7; // the top page
    /// stack.quick_scrub()?; // the first one is full, and learns one hot page
    /// let words = stack.as_words_mut();
    /// words[n - 1] = 0x5ec2e7;
    /// words[0] = 0x5ec2e7; // far below: given back, not read
    /// assert_eq!(stack.quick_scrub()?, instance::page_size()); // the top page, by hand
    /// assert!(stack.as_words_mut().iter().all(|&w| w == 0));
    /// # Ok::<(), instance::StackError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StackError::Advise`] if `madvise` fails (or those of
    /// [`Stack::scrub`] when it is a full one); the usable part may then be
    /// partly zeroed.
    pub fn quick_scrub(&mut self) -> Result<usize, StackError> {
        if self.known_zero {
            return Ok(0);
        }
        if self.hot_pages == 0 || self.quick_since_full >= QUICK_SCRUBS_PER_FULL {
            return self.scrub();
        }
        // As in `scrub`: under valgrind, write the hand-zeroed pages whole
        // and unread.
        let blind = context::valgrind::running_on_valgrind();
        if blind {
            context::valgrind::make_stack_writable(self.words());
        }
        let pages = self.size / page_size();
        let cold = pages - self.hot_pages.min(pages);
        let mut written = 0;
        for p in cold..pages {
            written += self.zero_page(p, blind);
        }
        if cold > 0 {
            self.discard(0, cold)?;
        }
        self.quick_since_full += 1;
        self.known_zero = true;
        Ok(written)
    }

    /// [`Stack::quick_scrub`], and should it fail, [`Stack::decommit`], and
    /// should that fail too, zeroes every word (committing the whole usable
    /// part): afterwards the usable part reads as zero, whatever happened.
    pub(crate) fn scrub_or_decommit(&mut self) {
        if self.quick_scrub().is_ok() || self.decommit().is_ok() {
            return;
        }
        self.words().fill(0);
        self.known_zero = true;
    }

    /// Gives the touched pages of the usable part back to the OS
    /// (`madvise(MADV_DONTNEED)`); they read as zero when touched again.
    ///
    /// # Errors
    ///
    /// [`StackError::Advise`] if `madvise` fails.
    pub fn decommit(&mut self) -> Result<(), StackError> {
        // SAFETY: the range is the usable part of our own private anonymous
        // mapping; `&mut self` means no context is running on it, and
        // dropping its contents is what the caller asked for.
        unsafe { madvise(self.base_ptr(), self.size, MmapAdvise::MADV_DONTNEED) }.map_err(StackError::Advise)?;
        self.known_zero = true;
        Ok(())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `with_guard`, is owned only by
        // `self`, and is unmapped exactly once. munmap of a valid mapping
        // cannot fail; if it did, leaking it is the only safe option.
        let _ = unsafe { munmap(self.start, self.mapping_len()) };
    }
}

/// A pool of same-sized [`Stack`]s: [`StackPool::take`] hands back a
/// previously returned stack (the same mapping) before making a new one.
///
/// [`StackPool::put`] scrubs a stack before keeping it ([`Stack::quick_scrub`]),
/// so an idle stack holds nothing of the guest that last ran on it and the
/// next taker cannot read it; [`StackPool::scrub_on_put`] turns that off for
/// pools whose guests trust each other. Returned stacks keep the touched
/// pages at their top (zeroed) until [`StackPool::trim`] gives them back to the OS; at
/// most `max_idle` stacks are kept, further ones are unmapped. Thread-safe.
///
/// ```
/// use instance::StackPool;
/// let pool = StackPool::new(64 * 1024, 4096, 8)?;
/// let mut stack = pool.take()?;
/// let top = stack.top();
/// stack.as_words_mut()[100] = 0x5ec2e7; // a tenant's data
/// pool.put(stack)?;
/// let mut again = pool.take()?;
/// assert_eq!(again.top(), top); // the same mapping again,
/// assert_eq!(again.as_words_mut()[100], 0); // scrubbed
/// # Ok::<(), instance::StackError>(())
/// ```
#[derive(Debug)]
pub struct StackPool {
    size: usize,
    guard: usize,
    max_idle: usize,
    scrub: bool,
    idle: Mutex<Vec<Stack>>,
}

impl StackPool {
    /// A pool of stacks with `size` usable and `guard` guard bytes (rounded
    /// up to pages), keeping at most `max_idle` idle stacks, scrubbed on
    /// [`StackPool::put`].
    ///
    /// # Errors
    ///
    /// The size errors of [`Stack::with_guard`].
    pub fn new(size: usize, guard: usize, max_idle: usize) -> Result<StackPool, StackError> {
        if size == 0 {
            return Err(StackError::ZeroSize);
        }
        if guard == 0 {
            return Err(StackError::ZeroGuard);
        }
        let too_large = StackError::TooLarge { size, guard };
        let size = round_up_to_page(size).ok_or(too_large)?;
        let guard = round_up_to_page(guard).ok_or(too_large)?;
        size.checked_add(guard).filter(|&l| l <= isize::MAX as usize).ok_or(too_large)?;
        Ok(StackPool { size, guard, max_idle, scrub: true, idle: Mutex::new(Vec::new()) })
    }

    /// Whether [`StackPool::put`] scrubs the stacks it keeps (by default it
    /// does). Off, a stack comes back from [`StackPool::take`] with whatever
    /// the previous guest left on it, and `put` costs no system call.
    ///
    /// ```
    /// let pool = instance::StackPool::new(64 * 1024, 4096, 8)?.scrub_on_put(false);
    /// assert!(!pool.scrubs_on_put());
    /// # Ok::<(), instance::StackError>(())
    /// ```
    #[must_use]
    pub fn scrub_on_put(mut self, scrub: bool) -> StackPool {
        self.scrub = scrub;
        self
    }

    /// Whether [`StackPool::put`] scrubs the stacks it keeps.
    pub fn scrubs_on_put(&self) -> bool {
        self.scrub
    }

    /// Usable bytes of this pool's stacks.
    pub fn stack_size(&self) -> usize {
        self.size
    }

    /// Guard bytes of this pool's stacks.
    pub fn guard_size(&self) -> usize {
        self.guard
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Stack>> {
        // A panic while holding the lock cannot leave the Vec inconsistent
        // (push/pop/drain only), so a poisoned lock is still usable.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle stack if there is one (most recently returned first), else a
    /// new one.
    ///
    /// # Errors
    ///
    /// Those of [`Stack::with_guard`] when a new stack is made.
    pub fn take(&self) -> Result<Stack, StackError> {
        match self.idle().pop() {
            Some(stack) => Ok(stack),
            None => Stack::with_guard(self.size, self.guard),
        }
    }

    /// Returns `stack` to the pool (or unmaps it if `max_idle` stacks are
    /// already idle), scrubbed unless [`StackPool::scrub_on_put`] turned
    /// that off.
    ///
    /// The scrub is [`Stack::quick_scrub`]'s (nothing to do for a stack already
    /// scrubbed, say by [`Instance::into_stack`](crate::Instance::into_stack)).
    /// Should it fail, the stack's memory is given back with
    /// `madvise(MADV_DONTNEED)` instead, which zeroes it as well (and should
    /// that fail too, every word is written with zero).
    ///
    /// # Errors
    ///
    /// [`StackError::WrongPool`] if the stack's size or guard differs from
    /// the pool's; the stack is dropped.
    pub fn put(&self, mut stack: Stack) -> Result<(), StackError> {
        if stack.size != self.size || stack.guard != self.guard {
            return Err(StackError::WrongPool {
                size: stack.size,
                guard: stack.guard,
                pool_size: self.size,
                pool_guard: self.guard,
            });
        }
        // Scrub outside the lock, and not at all a stack that will be
        // unmapped because the pool is full.
        if self.scrub && !stack.known_zero && self.idle_count() < self.max_idle {
            stack.scrub_or_decommit();
        }
        let mut idle = self.idle();
        // Room may have appeared since the count: a stack that was not
        // scrubbed for want of it is unmapped all the same.
        if idle.len() < self.max_idle && (stack.known_zero || !self.scrub) {
            idle.push(stack);
        }
        Ok(())
    }

    /// Number of idle stacks.
    pub fn idle_count(&self) -> usize {
        self.idle().len()
    }

    /// Gives the touched memory of every idle stack back to the OS, keeping
    /// the mappings for reuse.
    ///
    /// # Errors
    ///
    /// [`StackError::Advise`] from the first stack that fails.
    pub fn trim(&self) -> Result<(), StackError> {
        self.idle().iter_mut().try_for_each(Stack::decommit)
    }

    /// Unmaps idle stacks until at most `keep` remain.
    pub fn shrink_to(&self, keep: usize) {
        let drained: Vec<Stack> = {
            let mut idle = self.idle();
            let n = idle.len().saturating_sub(keep);
            idle.drain(..n).collect()
        };
        drop(drained);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_pages() {
        let page = page_size();
        let s = Stack::with_guard(1, 1).unwrap();
        assert_eq!((s.size(), s.guard_size()), (page, page));
        assert_eq!(s.top() % 16, 0);
        assert_eq!(s.mapping_len(), 2 * page);
    }

    #[test]
    fn bad_sizes_are_typed_errors() {
        assert_eq!(Stack::new(0).unwrap_err(), StackError::ZeroSize);
        assert_eq!(Stack::with_guard(4096, 0).unwrap_err(), StackError::ZeroGuard);
        assert_eq!(
            Stack::new(usize::MAX).unwrap_err(),
            StackError::TooLarge { size: usize::MAX, guard: DEFAULT_GUARD_SIZE }
        );
        assert_eq!(
            Stack::with_guard(usize::MAX / 2, usize::MAX / 2).unwrap_err(),
            StackError::TooLarge { size: usize::MAX / 2, guard: usize::MAX / 2 }
        );
        assert_eq!(StackPool::new(0, 4096, 1).unwrap_err(), StackError::ZeroSize);
        assert_eq!(StackPool::new(4096, 0, 1).unwrap_err(), StackError::ZeroGuard);
    }
}
