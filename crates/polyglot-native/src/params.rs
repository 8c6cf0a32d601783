//! Reading a handler's params: the worker SDK's [`Params`] (named, positional or single,
//! binary as bytes or a string's UTF-8, errors naming the param).

pub(crate) use polyglot_worker::Params;
