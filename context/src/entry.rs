//! [`EntryPoint`]: the address of the function a context starts in, typed.

use core::fmt;

/// The function a new context starts in: an `extern "C"` function's address.
///
/// Every API that starts a function on a fresh stack ([`Context::init`],
/// [`ContextHandle::create_and_init`], and `instance`'s `run`/`start`) takes
/// `impl Into<EntryPoint>`, so it accepts either
///
/// - a typed function pointer, `extern "C" fn(A, B, ..) -> R` or the same
///   `unsafe extern "C" fn`, with up to 12 parameters of any types: the
///   conversion cannot produce a null or a non-function address, and the
///   `extern "C"` in the type is checked by the compiler. A function *item*
///   (`add`) is not yet a pointer: write `add as extern "C" fn(_, _) -> _`
///   (the compiler fills in the `_`), or [`EntryPoint::from_fn`];
/// - a bare address, `usize` (what the API took before `EntryPoint`
///   existed, and what a JIT or a `dlsym` hands you). Zero is refused at
///   init with [`Error::NullEntryPoint`](crate::Error::NullEntryPoint).
///
/// What the conversion does not take, and how to pass it anyway, with
/// [`EntryPoint::from_addr`]`(f as *const () as usize)`: variadic functions,
/// functions of more than 12 parameters (any number of arguments works, see
/// [`Context::init`]), other ABIs than `"C"` and `"C-unwind"` (`"sysv64"` is
/// the same convention on x86_64 Linux), and a function pointer held in a
/// variable whose type has a reference parameter with a higher-ranked
/// lifetime (`extern "C" fn(&u64)`; cast the item with `_` instead, which
/// picks one lifetime).
///
/// Neither way checks that the arguments you pass match the function's
/// parameters: that stays the duty of whoever switches to the context
/// (see [`Context::swap`]'s `# Safety`). What the type checks is that the
/// address is an `extern "C"` function, so no `f as usize` cast (which
/// rustc's `function_casts_as_integer` lint flags) is needed.
///
/// ```
/// use context::{ContextHandle, Context, EntryPoint, Val};
///
/// extern "C" fn add(a: u64, b: f64) -> f64 {
///     a as f64 + b
/// }
///
/// // The same entry, three spellings.
/// let typed = EntryPoint::from(add as extern "C" fn(_, _) -> _);
/// assert_eq!(typed, EntryPoint::from_fn(add as extern "C" fn(u64, f64) -> f64));
/// assert_eq!(typed, EntryPoint::from_addr(add as *const () as usize));
///
/// #[repr(align(16))]
/// struct Stack([u64; 1024]);
/// let mut stack = Box::new(Stack([0; 1024]));
/// let mut parent = ContextHandle::new();
/// let child = ContextHandle::create_and_init(&mut stack.0, &mut parent, typed, &[Val::U64(2), Val::F64(0.5)])?;
/// // SAFETY: `add` takes (u64, f64), as passed; both contexts are heap-pinned
/// // and the stack outlives the run.
/// unsafe { Context::swap(&mut parent, &child) };
/// assert_eq!(child.get_untyped_retval().as_f64(), 2.5);
/// # Ok::<(), context::Error>(())
/// ```
///
/// [`Context::init`]: crate::Context::init
/// [`Context::swap`]: crate::Context::swap
/// [`ContextHandle::create_and_init`]: crate::ContextHandle::create_and_init
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryPoint(usize);

impl EntryPoint {
    /// The entry at a typed `extern "C"` function pointer (see
    /// [`ExternFn`] for the types accepted).
    pub fn from_fn<F: ExternFn>(f: F) -> EntryPoint {
        EntryPoint(f.addr())
    }

    /// The entry at a bare address. Nothing is checked here; zero is
    /// refused when a context is prepared with it
    /// ([`Error::NullEntryPoint`](crate::Error::NullEntryPoint)).
    pub const fn from_addr(addr: usize) -> EntryPoint {
        EntryPoint(addr)
    }

    /// The address, as the register block and the start routine see it.
    pub const fn addr(self) -> usize {
        self.0
    }
}

impl fmt::Debug for EntryPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryPoint({:#x})", self.0)
    }
}

impl From<usize> for EntryPoint {
    fn from(addr: usize) -> EntryPoint {
        EntryPoint(addr)
    }
}

impl From<EntryPoint> for usize {
    fn from(entry: EntryPoint) -> usize {
        entry.0
    }
}

impl<F: ExternFn> From<F> for EntryPoint {
    fn from(f: F) -> EntryPoint {
        EntryPoint::from_fn(f)
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The `extern "C"` function pointer types an [`EntryPoint`] can be made
/// from: `extern "C" fn(A1, .., An) -> R`, `extern "C-unwind" fn(..) -> R`
/// and their `unsafe` forms, for n from 0 to 12, whatever the types (an
/// unwind that would leave a `"C-unwind"` entry aborts the process, see
/// [`Context::init`](crate::Context::init)). Sealed: the set is
/// exactly this, so an `EntryPoint` made from an `ExternFn` is always a C
/// function's address.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an `extern \"C\" fn` pointer an `EntryPoint` can be made from",
    note = "a function item is not a pointer yet: write `f as extern \"C\" fn(_, _) -> _` (one `_` per parameter)",
    note = "variadic functions, more than 12 parameters, or other ABIs: `EntryPoint::from_addr(f as *const () as usize)`"
)]
pub trait ExternFn: Copy + sealed::Sealed {
    /// The function's address.
    fn addr(self) -> usize;
}

macro_rules! extern_fn_impls {
    ($($arg:ident),*) => {
        impl<R, $($arg),*> sealed::Sealed for extern "C" fn($($arg),*) -> R {}
        impl<R, $($arg),*> ExternFn for extern "C" fn($($arg),*) -> R {
            fn addr(self) -> usize {
                self as *const () as usize
            }
        }
        impl<R, $($arg),*> sealed::Sealed for unsafe extern "C" fn($($arg),*) -> R {}
        impl<R, $($arg),*> ExternFn for unsafe extern "C" fn($($arg),*) -> R {
            fn addr(self) -> usize {
                self as *const () as usize
            }
        }
        impl<R, $($arg),*> sealed::Sealed for extern "C-unwind" fn($($arg),*) -> R {}
        impl<R, $($arg),*> ExternFn for extern "C-unwind" fn($($arg),*) -> R {
            fn addr(self) -> usize {
                self as *const () as usize
            }
        }
        impl<R, $($arg),*> sealed::Sealed for unsafe extern "C-unwind" fn($($arg),*) -> R {}
        impl<R, $($arg),*> ExternFn for unsafe extern "C-unwind" fn($($arg),*) -> R {
            fn addr(self) -> usize {
                self as *const () as usize
            }
        }
    };
}

extern_fn_impls!();
extern_fn_impls!(A1);
extern_fn_impls!(A1, A2);
extern_fn_impls!(A1, A2, A3);
extern_fn_impls!(A1, A2, A3, A4);
extern_fn_impls!(A1, A2, A3, A4, A5);
extern_fn_impls!(A1, A2, A3, A4, A5, A6);
extern_fn_impls!(A1, A2, A3, A4, A5, A6, A7);
extern_fn_impls!(A1, A2, A3, A4, A5, A6, A7, A8);
extern_fn_impls!(A1, A2, A3, A4, A5, A6, A7, A8, A9);
extern_fn_impls!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
extern_fn_impls!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);
extern_fn_impls!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12);

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn nothing() {}
    extern "C-unwind" fn may_unwind(a: u32) -> u32 {
        a
    }
    extern "C" fn three(a: u8, b: f32, c: *const u8) -> u64 {
        u64::from(a) + b as u64 + c as u64
    }
    // Declaring an `unsafe fn` is `unsafe_code`; this one has no duties (it
    // only provides a pointer of the `unsafe extern "C" fn` type) and is
    // never called.
    #[allow(unsafe_code)]
    unsafe extern "C" fn unsafe_one(p: u64) -> u64 {
        p
    }

    #[test]
    fn typed_pointers_give_the_functions_address() {
        assert_eq!(EntryPoint::from(nothing as extern "C" fn()).addr(), nothing as *const () as usize);
        assert_eq!(EntryPoint::from(three as extern "C" fn(_, _, _) -> _).addr(), three as *const () as usize);
        let e: EntryPoint = (unsafe_one as unsafe extern "C" fn(_) -> _).into();
        assert_eq!(e.addr(), unsafe_one as *const () as usize);
        assert_ne!(e, EntryPoint::from(nothing as extern "C" fn()));
        let u = EntryPoint::from(may_unwind as extern "C-unwind" fn(_) -> _);
        assert_eq!(u.addr(), may_unwind as *const () as usize);
    }

    #[test]
    fn addresses_round_trip_and_print_in_hex() {
        let e = EntryPoint::from(0x1234usize);
        assert_eq!(usize::from(e), 0x1234);
        assert_eq!(EntryPoint::from_addr(0x1234), e);
        assert_eq!(format!("{e:?}"), "EntryPoint(0x1234)");
    }
}
