//! Reading a handler's params: the worker SDK's [`Params`] (named or positional, errors
//! naming the param).
//!
//! Only the params' types are checked here; their values (a rate of 0, a cutoff above
//! the Nyquist frequency) are checked once, by the C++ routine, whose message the caller
//! receives.

pub(crate) use polyglot_worker::{invalid_param as invalid, Params};
