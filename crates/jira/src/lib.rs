//! Work in progress: see issue 4.
