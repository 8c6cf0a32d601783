//! [`Error`]: a C++ exception turned into a Rust error that names the function and the
//! argument at fault.

/// What went wrong in a call to the C++ routines.
///
/// The C++ side throws `std::invalid_argument` with a message that begins with the name
/// of the argument at fault (`num_taps must be at least 1, got 0`); the message is kept
/// as the [`source`](std::error::Error::source) of this error, and the name is read into
/// [`Error::InvalidArgument::param`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument the C++ routine refused.
    #[error("{function}: invalid `{param}`")]
    InvalidArgument {
        /// The function called (`fir`, `lowpass_taps`, `resample`).
        function: &'static str,
        /// The argument at fault, as named in that function's signature.
        param: &'static str,
        /// The C++ exception, whose message says what is wrong and what was given.
        #[source]
        source: cxx::Exception,
    },
    /// The C++ routine failed in a way no argument explains (a `std::bad_alloc`).
    #[error("{function} failed")]
    Failed {
        /// The function called.
        function: &'static str,
        /// The C++ exception.
        #[source]
        source: cxx::Exception,
    },
}

impl Error {
    /// Classifies the exception `function` threw: [`Error::InvalidArgument`] when its
    /// message begins with one of the function's `params`, [`Error::Failed`] otherwise.
    pub(crate) fn from_cxx(
        function: &'static str,
        params: &'static [&'static str],
        source: cxx::Exception,
    ) -> Error {
        let first_word = source.what().split(' ').next().unwrap_or_default();
        match params.iter().find(|p| **p == first_word) {
            Some(param) => Error::InvalidArgument {
                function,
                param,
                source,
            },
            None => Error::Failed { function, source },
        }
    }

    /// The C++ exception's message, which says what is wrong and what was given.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidArgument { source, .. } | Error::Failed { source, .. } => source.what(),
        }
    }
}
