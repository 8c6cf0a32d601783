//! Who may use the Runtime API, over gRPC and HTTP alike: the API key, compared in
//! constant time, with refusals counted; and whether a listening address exposes the API
//! beyond this machine.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use subtle::ConstantTimeEq;

/// The header (gRPC metadata) that carries the key as `Bearer KEY`.
pub const AUTHORIZATION: &str = "authorization";

/// The header (gRPC metadata) that carries the key as it is.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Checks the API key of every Runtime call: `authorization: Bearer KEY` or
/// `x-api-key: KEY`, compared in constant time. Refusals are counted. Clones share the
/// count.
#[derive(Clone)]
pub struct Auth {
    key: Option<Arc<[u8]>>,
    /// Calls refused for a missing or wrong key.
    pub refused: Arc<AtomicU64>,
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It sent no key.
    Missing,
    /// It sent a key that is not this host's.
    Wrong,
}

impl Refusal {
    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => {
                "an API key is required: send `authorization: Bearer <key>` or `x-api-key: <key>`"
            }
            Refusal::Wrong => "wrong API key",
        }
    }
}

impl Auth {
    /// Checks keys when `key` is set; lets everything through otherwise.
    pub fn new(key: Option<String>) -> Auth {
        Auth {
            key: key.map(|k| Arc::from(k.into_bytes())),
            refused: Arc::default(),
        }
    }

    /// Whether a key is required.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Checks what a client sent in its `authorization` and `x-api-key` headers (the
    /// first one that holds a key counts).
    ///
    /// # Errors
    /// A key is required and was not sent, or is not this host's.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        api_key: Option<&str>,
    ) -> Result<(), Refusal> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let given = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .or(api_key);
        let refusal = match given {
            Some(g) if bool::from(g.as_bytes().ct_eq(key)) => return Ok(()),
            Some(_) => Refusal::Wrong,
            None => Refusal::Missing,
        };
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(refusal)
    }
}

/// Whether binding `addr` exposes the API beyond this machine.
pub fn is_exposed(addr: &SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_header_carries_the_key_and_refusals_are_counted() {
        let auth = Auth::new(Some("k".into()));
        assert_eq!(auth.verify(Some("Bearer k"), None), Ok(()));
        assert_eq!(auth.verify(None, Some("k")), Ok(()));
        assert_eq!(auth.verify(Some("Basic x"), Some("k")), Ok(()));
        assert_eq!(auth.verify(Some("Bearer x"), None), Err(Refusal::Wrong));
        assert_eq!(auth.verify(None, None), Err(Refusal::Missing));
        assert_eq!(auth.refused.load(Ordering::Relaxed), 2);
        assert_eq!(Auth::new(None).verify(None, None), Ok(()));
    }
}
