//! Prints the layout of every struct shared with the assembly as Rust lays
//! it out (`size_of`, `align_of`, `offset_of!`), in the same line format as
//! `c/layout.c`, for `cargo xtask layout` to compare:
//!
//! ```text
//! struct <name> <size> <align>
//! field <struct> <field> <offset> <size>
//! ```
//!
//! Names are the C header's, so the two outputs line up. Which fields it
//! prints is the header's list: the build script turns every
//! `CONTEXT_SYS_OFF_*` and `CONTEXT_SYS_BOOT_*` define into one
//! `layout_field!` or `layout_element!` line of `print_layout`
//! (`build/layout_fields.rs` says which field each define names).

use std::mem::{align_of, offset_of, size_of, size_of_val};

use context_sys::{BootFrame, ContextRegs};

macro_rules! layout_struct {
    ($c_struct:literal, $ty:ty) => {
        println!("struct {} {} {}", $c_struct, size_of::<$ty>(), align_of::<$ty>());
    };
}

macro_rules! layout_field {
    ($c_struct:literal, $ty:ty, $field:ident) => {{
        let v = <$ty>::default();
        println!("field {} {} {} {}", $c_struct, stringify!($field), offset_of!($ty, $field), size_of_val(&v.$field));
    }};
}

/// An element of an array field: the C header names `xmm[3]`, Rust has one
/// array field.
macro_rules! layout_element {
    ($c_struct:literal, $ty:ty, $field:ident, $index:literal) => {{
        let v = <$ty>::default();
        let element = size_of_val(&v.$field[$index]);
        let offset = offset_of!($ty, $field) + $index * element;
        println!("field {} {}[{}] {offset} {element}", $c_struct, stringify!($field), $index);
    }};
}

include!(concat!(env!("OUT_DIR"), "/layout_fields.rs"));

fn main() {
    print_layout();
}
