//! Both crates' errors fit `?` into `Box<dyn Error + Send + Sync>` and
//! print each cause once in an error chain.

use std::error::Error as StdError;

use instance::{Error, Instance, StackError};
use nix::errno::Errno;
use nix::sys::signal::Signal;

fn send_sync_static<T: Send + Sync + 'static>() {}

#[test]
fn errors_are_send_sync_and_static() {
    send_sync_static::<instance::Error>();
    send_sync_static::<instance::Panic>();
    send_sync_static::<instance::StackError>();
    send_sync_static::<instance::YieldError>();
    send_sync_static::<context::Error>();
}

/// What a downstream crate writes: `?` from our errors into a boxed
/// `dyn Error + Send + Sync`.
fn downstream() -> Result<u32, Box<dyn StdError + Send + Sync + 'static>> {
    let mut inst = Instance::new(64 * 1024)?;
    let v = inst.run_closure(|| 5u32)?;
    inst.run_closure(|| -> u32 { panic!("boxed across ?") })?;
    Ok(v)
}

#[test]
fn question_mark_boxes_a_panic_into_send_sync_error() {
    let err = downstream().unwrap_err();
    let err = err.downcast::<Error>().expect("our error type survives the box");
    let panic = err.into_panic().expect("a panic");
    assert_eq!(panic.message(), Some("boxed across ?"));
    assert_eq!(panic.into_payload().downcast_ref::<&str>(), Some(&"boxed across ?"));
}

#[test]
fn panic_payload_is_reachable_by_reference_and_mutably() {
    #[derive(Debug, PartialEq)]
    struct Payload(u32);
    let mut inst = Instance::new(64 * 1024).unwrap();
    let err = inst.run_closure(|| -> u32 { std::panic::panic_any(Payload(3)) }).unwrap_err();
    let mut panic = err.into_panic().unwrap();
    assert_eq!(panic.message(), None);
    assert_eq!(panic.payload().downcast_ref::<Payload>(), Some(&Payload(3)));
    panic.payload_mut().downcast_mut::<Payload>().unwrap().0 = 4;
    assert_eq!(panic.into_payload().downcast_ref::<Payload>(), Some(&Payload(4)));
}

/// Every error that has a source: its own message must not repeat the
/// source's (error-chain printers would show it twice).
#[test]
fn no_message_repeats_its_source() {
    let errors: Vec<Box<dyn StdError + Send + Sync>> = vec![
        Box::new(Error::SignalHandler { signal: Signal::SIGSEGV, errno: Errno::EINVAL }),
        Box::new(Error::KillHandler { signum: 40, errno: Errno::EINVAL }),
        Box::new(Error::AltStack(Errno::ENOMEM)),
        Box::new(Error::SignalMask(Errno::EFAULT)),
        Box::new(Error::WatchdogThread(std::io::Error::other("no threads left"))),
        Box::new(Error::Stack(StackError::Map { len: 4096, errno: Errno::ENOMEM })),
        Box::new(Error::Stack(StackError::Protect(Errno::EACCES))),
        Box::new(Error::Stack(StackError::Advise(Errno::EINVAL))),
        Box::new(Error::Context(context::Error::SignalMask(Errno::EFAULT))),
        Box::new(context::Error::SignalMask(Errno::EFAULT)),
    ];
    for err in errors {
        let mut chain = vec![err.to_string()];
        let mut cur: &dyn StdError = &*err;
        while let Some(src) = cur.source() {
            chain.push(src.to_string());
            cur = src;
        }
        assert!(chain.len() >= 2, "{err:?} has no source");
        for pair in chain.windows(2) {
            assert!(!pair[0].contains(&pair[1]), "message {:?} repeats its source {:?}", pair[0], pair[1]);
        }
    }
}
