//! C children and harnesses that check the context crates against the C
//! compiler. (Being built; see the workspace README.)
