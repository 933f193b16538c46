//! Guard-page stacks, fault recovery, yield/resume and termination for
//! contexts from the `context` crate. (Being built; see the workspace README.)

#![deny(unsafe_code)]
#![warn(missing_docs)]
