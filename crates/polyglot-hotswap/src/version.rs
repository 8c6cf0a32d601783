//! What a deployer knows of one version: its [`VersionId`], [`VersionState`], who staged
//! it and why ([`VersionMeta`]), its [`HealthMark`], and [`VersionInfo`], the history
//! entry.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DeployError;
use crate::health::HealthSummary;
use crate::strategy::Strategy;

/// The longest version id accepted. Ids are labels such as `1.3.0` or a git hash; a
/// longer one is almost certainly a mistake (a path, a whole message).
pub const MAX_VERSION_ID_LEN: usize = 128;

/// The id of a version, such as `"1.3.0"`: non-empty, at most [`MAX_VERSION_ID_LEN`]
/// bytes, no whitespace or control characters. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId(Arc<str>);

impl VersionId {
    /// Checks and wraps an id.
    ///
    /// # Errors
    /// [`DeployError::InvalidVersionId`] naming what is wrong with it.
    pub fn new(id: impl Into<String>) -> Result<VersionId, DeployError> {
        let id = id.into();
        let problem = if id.is_empty() {
            Some("it is empty")
        } else if id.len() > MAX_VERSION_ID_LEN {
            Some("it is longer than 128 bytes")
        } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("it contains whitespace or a control character")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(DeployError::InvalidVersionId { id, problem }),
            None => Ok(VersionId(id.into())),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for VersionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for VersionId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for VersionId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for VersionId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl Serialize for VersionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for VersionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<VersionId, D::Error> {
        let s = String::deserialize(d)?;
        VersionId::new(s).map_err(serde::de::Error::custom)
    }
}

/// Who staged a version and why; kept in its history entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionMeta {
    /// Who (a user, a CI job).
    pub by: String,
    /// Why (a ticket, a change summary).
    pub why: String,
}

impl VersionMeta {
    /// Metadata naming who and why.
    pub fn new(by: impl Into<String>, why: impl Into<String>) -> VersionMeta {
        VersionMeta {
            by: by.into(),
            why: why.into(),
        }
    }
}

/// Where a version is in its life.
///
/// ```text
/// preparing -> staged -> rolling-out(pct) -> active -> superseded
///      |          |             |               |
///      v          v             v               v
///   failed     failed   rolling-back / failed  rolling-back -> rolled-back
/// ```
/// A superseded, rolled-back or failed version can be staged again (with a new value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum VersionState {
    /// Its value is being started ([`Deployer::prepare`](crate::Deployer::prepare)).
    Preparing,
    /// Ready to be deployed; takes no traffic.
    Staged,
    /// Being deployed; `percent` is its share of the traffic (0 while it is checked, while
    /// it shadows, or before its first instance is ready).
    RollingOut {
        /// Its share of traffic, rounded down.
        percent: u8,
    },
    /// It serves the traffic (all of it, or all that a rollout in progress leaves it).
    Active,
    /// Traffic is being moved off it, onto a rollback target being checked.
    RollingBack,
    /// It was rolled back: it takes no traffic.
    RolledBack,
    /// It was active and a newer version took its place; it may still be retained for an
    /// instant rollback.
    Superseded,
    /// It failed: its start, a check, its analysis or a deadline; or it was aborted.
    Failed {
        /// Why.
        reason: String,
    },
}

impl VersionState {
    /// True for the states a version can be staged again from.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            VersionState::RolledBack | VersionState::Superseded | VersionState::Failed { .. }
        )
    }
}

impl fmt::Display for VersionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionState::Preparing => f.write_str("preparing"),
            VersionState::Staged => f.write_str("staged"),
            VersionState::RollingOut { percent } => write!(f, "rolling out ({percent}%)"),
            VersionState::Active => f.write_str("active"),
            VersionState::RollingBack => f.write_str("rolling back"),
            VersionState::RolledBack => f.write_str("rolled back"),
            VersionState::Superseded => f.write_str("superseded"),
            VersionState::Failed { reason } => write!(f, "failed ({reason})"),
        }
    }
}

/// What is known of a version's health: the last verdict that was not inconclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "health")]
pub enum HealthMark {
    /// Never judged on enough calls.
    #[default]
    Unknown,
    /// Judged healthy.
    Healthy {
        /// When, in milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// Judged unhealthy, or refused as a rollback target.
    Unhealthy {
        /// When, in milliseconds since the Unix epoch.
        at_ms: u64,
        /// Why.
        reason: String,
    },
}

impl HealthMark {
    /// True when the last verdict was healthy.
    pub fn is_healthy(&self) -> bool {
        matches!(self, HealthMark::Healthy { .. })
    }
}

/// One version's history entry: who, when, why, how, and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// The version.
    pub version: VersionId,
    /// Where it is now.
    #[serde(flatten)]
    pub state: VersionState,
    /// Who staged it and why.
    pub meta: VersionMeta,
    /// The strategy of its last deployment.
    pub strategy: Option<Strategy>,
    /// When it was staged (or began preparing), ms since the Unix epoch.
    pub staged_at_ms: u64,
    /// When its last deployment started.
    pub started_at_ms: Option<u64>,
    /// When it last became active.
    pub activated_at_ms: Option<u64>,
    /// When it last stopped taking traffic (superseded, rolled back, failed).
    pub ended_at_ms: Option<u64>,
    /// What is known of its health.
    pub health: HealthMark,
    /// Its metrics when it last changed state, or now for a live version.
    pub summary: Option<HealthSummary>,
    /// True while the deployer still holds its value (it can take traffic back at once).
    pub retained: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_are_checked() {
        assert!(VersionId::new("1.3.0").is_ok());
        for bad in ["", "1.3 .0", "a\nb", &"x".repeat(129)] {
            let e = VersionId::new(bad).unwrap_err();
            assert!(e.to_string().contains("invalid version id"), "{e}");
        }
    }

    #[test]
    fn a_version_id_deserializes_only_when_valid() {
        let ok: VersionId = serde_json::from_str("\"1.0.0\"").unwrap();
        assert_eq!(ok, "1.0.0");
        assert!(serde_json::from_str::<VersionId>("\"\"").is_err());
    }

    #[test]
    fn states_read_as_words() {
        assert_eq!(
            VersionState::RollingOut { percent: 25 }.to_string(),
            "rolling out (25%)"
        );
        let json = serde_json::to_string(&VersionState::RollingOut { percent: 5 }).unwrap();
        assert_eq!(json, r#"{"state":"rolling-out","percent":5}"#);
    }
}
