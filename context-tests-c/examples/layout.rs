//! Prints the layout of every struct shared with the assembly as Rust lays
//! it out (`size_of`, `align_of`, `offset_of!`), in the same line format as
//! `c/layout.c`, for `cargo xtask layout` to compare:
//!
//! ```text
//! struct <name> <size> <align>
//! field <struct> <field> <offset> <size>
//! ```
//!
//! Names are the C header's, so the two outputs line up.

use std::mem::{align_of, offset_of, size_of, size_of_val};

use context_sys::{BootFrame, ContextRegs};

macro_rules! field {
    ($c_struct:literal, $ty:ty, $field:ident) => {{
        let v = <$ty>::default();
        println!("field {} {} {} {}", $c_struct, stringify!($field), offset_of!($ty, $field), size_of_val(&v.$field));
    }};
}

fn main() {
    let regs = "context_sys_regs";
    println!("struct {regs} {} {}", size_of::<ContextRegs>(), align_of::<ContextRegs>());
    field!("context_sys_regs", ContextRegs, rsp);
    field!("context_sys_regs", ContextRegs, rbx);
    field!("context_sys_regs", ContextRegs, rbp);
    field!("context_sys_regs", ContextRegs, r12);
    field!("context_sys_regs", ContextRegs, r13);
    field!("context_sys_regs", ContextRegs, r14);
    field!("context_sys_regs", ContextRegs, r15);
    field!("context_sys_regs", ContextRegs, mxcsr);
    field!("context_sys_regs", ContextRegs, fpucw);
    field!("context_sys_regs", ContextRegs, pad);
    field!("context_sys_regs", ContextRegs, ret_rax);
    field!("context_sys_regs", ContextRegs, ret_rdx);
    field!("context_sys_regs", ContextRegs, ret_xmm0);

    let boot = "context_sys_boot_frame";
    println!("struct {boot} {} {}", size_of::<BootFrame>(), align_of::<BootFrame>());
    // The C header names array elements (`xmm[3]`); Rust has one array field.
    let word = size_of::<u64>();
    for i in 0..8 {
        println!("field {boot} xmm[{i}] {} {word}", offset_of!(BootFrame, xmm) + i * word);
    }
    for i in 0..6 {
        println!("field {boot} gp[{i}] {} {word}", offset_of!(BootFrame, gp) + i * word);
    }
    field!("context_sys_boot_frame", BootFrame, entry);
    field!("context_sys_boot_frame", BootFrame, pad);
}
