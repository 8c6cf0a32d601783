//! [`Strategy`]: how a deployment moves traffic to a new version. Plain serde data, checked
//! by [`Strategy::validate`] before a deployment starts.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::clock::unix_ms;

/// How long a phase may wait for a passing verdict beyond its planned duration before it
/// ends in a rollback. Ten minutes lets a service at one call every ten seconds collect
/// the default 20 calls twice over, and is still short enough that a rollout stuck on
/// "not enough data" is noticed and undone within one sitting.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(600);

/// Kubernetes' default `maxSurge` for a rolling update: 25% more instances than wanted.
pub const DEFAULT_MAX_SURGE: Amount = Amount::Percent(25);

/// Kubernetes' default `maxUnavailable`: 25% of the wanted instances may be down.
pub const DEFAULT_MAX_UNAVAILABLE: Amount = Amount::Percent(25);

/// Kubernetes' default `progressDeadlineSeconds`: a rolling update that makes no progress
/// for ten minutes has failed.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);

/// How a deployment moves traffic from the active version to a new one.
///
/// When nothing is active yet, every strategy activates the new version as
/// [`Immediate`](Strategy::Immediate) does (after its checks): there is no traffic to move
/// and nothing to compare with. A [`Rolling`] update still scales the version to its
/// replicas first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    /// Checks, then switches all traffic at once; done.
    Immediate,
    /// Checks, then switches all traffic at once; the old version stays ready for an
    /// instant rollback during a grace period, after which the new one must be judged
    /// healthy.
    BlueGreen(BlueGreen),
    /// Replaces instances in batches, Kubernetes style; traffic follows ready instances.
    Rolling(Rolling),
    /// Moves traffic in stages of percent, each analysed before the next.
    Canary(Canary),
    /// Splits traffic between the active version (A) and the new one (B), sticky per key,
    /// until someone decides.
    AbTest(AbTest),
    /// Waits for a wall-clock time, then runs another strategy.
    Scheduled(Scheduled),
    /// The new version gets a copy of the calls; callers only see the active one's answers.
    Shadow(Shadow),
}

impl Strategy {
    /// [`Strategy::Immediate`].
    pub fn immediate() -> Strategy {
        Strategy::Immediate
    }

    /// Blue-green with this grace period; the verdict deadline is the grace plus
    /// [`DEFAULT_HOLD`].
    pub fn blue_green(grace: Duration) -> Strategy {
        Strategy::BlueGreen(BlueGreen {
            grace,
            deadline: grace + DEFAULT_HOLD,
        })
    }

    /// A rolling update to `replicas` instances with Kubernetes' defaults.
    pub fn rolling(replicas: usize) -> Strategy {
        Strategy::Rolling(Rolling::new(replicas))
    }

    /// A canary through these percents, each stage lasting `stage`, advancing on its own;
    /// each stage's deadline is `stage` plus [`DEFAULT_HOLD`].
    pub fn canary(percents: &[u8], stage: Duration) -> Strategy {
        Strategy::Canary(Canary {
            stages: percents
                .iter()
                .map(|&percent| CanaryStage {
                    percent,
                    duration: stage,
                })
                .collect(),
            advance: Advance::Auto,
            stage_deadline: stage + DEFAULT_HOLD,
        })
    }

    /// An A/B test giving B `percent_b` percent of the keys, ended by `deadline`.
    pub fn ab_test(percent_b: u8, deadline: Duration) -> Strategy {
        Strategy::AbTest(AbTest {
            percent_b,
            deadline,
        })
    }

    /// `then`, started at the wall-clock time `at`.
    pub fn scheduled(at: SystemTime, then: Strategy) -> Strategy {
        Strategy::Scheduled(Scheduled {
            at_ms: unix_ms(at),
            then: Box::new(then),
        })
    }

    /// Shadowing for `duration`, then an automatic switch if the analysis passed; the
    /// deadline is `duration` plus [`DEFAULT_HOLD`].
    pub fn shadow(duration: Duration) -> Strategy {
        Strategy::Shadow(Shadow {
            duration,
            advance: Advance::Auto,
            deadline: duration + DEFAULT_HOLD,
        })
    }

    /// Which strategy this is.
    pub fn kind(&self) -> StrategyKind {
        match self {
            Strategy::Immediate => StrategyKind::Immediate,
            Strategy::BlueGreen(_) => StrategyKind::BlueGreen,
            Strategy::Rolling(_) => StrategyKind::Rolling,
            Strategy::Canary(_) => StrategyKind::Canary,
            Strategy::AbTest(_) => StrategyKind::AbTest,
            Strategy::Scheduled(_) => StrategyKind::Scheduled,
            Strategy::Shadow(_) => StrategyKind::Shadow,
        }
    }

    /// Checks the strategy can run.
    ///
    /// # Errors
    /// [`StrategyError`] naming the field and what is wrong with it.
    pub fn validate(&self) -> Result<(), StrategyError> {
        match self {
            Strategy::Immediate => Ok(()),
            Strategy::BlueGreen(b) => {
                if b.deadline < b.grace {
                    return Err(StrategyError::new(
                        "blueGreen.deadline",
                        format!(
                            "{:?} is shorter than the grace period of {:?}",
                            b.deadline, b.grace
                        ),
                    ));
                }
                Ok(())
            }
            Strategy::Rolling(r) => r.validate(),
            Strategy::Canary(c) => c.validate(),
            Strategy::AbTest(a) => {
                if !(1..=99).contains(&a.percent_b) {
                    return Err(StrategyError::new(
                        "abTest.percentB",
                        format!("{} is not between 1 and 99", a.percent_b),
                    ));
                }
                Ok(())
            }
            Strategy::Scheduled(s) => {
                if let Strategy::Scheduled(_) = *s.then {
                    return Err(StrategyError::new(
                        "scheduled.then",
                        "a schedule cannot run another schedule",
                    ));
                }
                s.then.validate()
            }
            Strategy::Shadow(s) => {
                if s.deadline < s.duration {
                    return Err(StrategyError::new(
                        "shadow.deadline",
                        format!(
                            "{:?} is shorter than the duration of {:?}",
                            s.deadline, s.duration
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Which strategy, without its settings: for events and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StrategyKind {
    /// [`Strategy::Immediate`].
    Immediate,
    /// [`Strategy::BlueGreen`].
    BlueGreen,
    /// [`Strategy::Rolling`].
    Rolling,
    /// [`Strategy::Canary`].
    Canary,
    /// [`Strategy::AbTest`].
    AbTest,
    /// [`Strategy::Scheduled`].
    Scheduled,
    /// [`Strategy::Shadow`].
    Shadow,
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StrategyKind::Immediate => "immediate",
            StrategyKind::BlueGreen => "blue-green",
            StrategyKind::Rolling => "rolling",
            StrategyKind::Canary => "canary",
            StrategyKind::AbTest => "a/b test",
            StrategyKind::Scheduled => "scheduled",
            StrategyKind::Shadow => "shadow",
        })
    }
}

/// Who moves a staged strategy on once its analysis has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Advance {
    /// [`Deployer::tick`](crate::Deployer::tick) does.
    Auto,
    /// Someone calls [`Deployer::advance`](crate::Deployer::advance); the stage waits for
    /// it until its deadline.
    Manual,
}

/// Settings of [`Strategy::BlueGreen`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlueGreen {
    /// How long after the switch the old version stays ready for an instant rollback,
    /// and the new one is watched, before the new one is judged.
    #[serde(rename = "graceMs", with = "ms")]
    pub grace: Duration,
    /// By when, after the switch, the new version must be judged healthy; an
    /// inconclusive verdict holds until then, then rolls back.
    #[serde(rename = "deadlineMs", with = "ms")]
    pub deadline: Duration,
}

/// An absolute count or a percent of the replicas, as Kubernetes' `intOrString`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Amount {
    /// This many instances.
    Count(usize),
    /// This percent of the replicas (surge rounds up, unavailable rounds down).
    Percent(u8),
}

/// Settings of [`Strategy::Rolling`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rolling {
    /// How many instances of the new version are wanted (and of the old one at the start).
    pub replicas: usize,
    /// How many instances above `replicas` may exist during the update.
    pub max_surge: Amount,
    /// How many of the `replicas` may be unready during the update.
    pub max_unavailable: Amount,
    /// How long the update may go without progress (an instance becoming ready, a batch
    /// starting) before it is rolled back.
    #[serde(rename = "progressDeadlineMs", with = "ms")]
    pub progress_deadline: Duration,
}

impl Rolling {
    /// `replicas` with Kubernetes' defaults for the rest.
    pub fn new(replicas: usize) -> Rolling {
        Rolling {
            replicas,
            max_surge: DEFAULT_MAX_SURGE,
            max_unavailable: DEFAULT_MAX_UNAVAILABLE,
            progress_deadline: DEFAULT_PROGRESS_DEADLINE,
        }
    }

    /// With this `max_surge`.
    pub fn with_max_surge(mut self, surge: Amount) -> Rolling {
        self.max_surge = surge;
        self
    }

    /// With this `max_unavailable`.
    pub fn with_max_unavailable(mut self, unavailable: Amount) -> Rolling {
        self.max_unavailable = unavailable;
        self
    }

    /// With this progress deadline.
    pub fn with_progress_deadline(mut self, deadline: Duration) -> Rolling {
        self.progress_deadline = deadline;
        self
    }

    /// `(max_surge, max_unavailable)` as counts, as Kubernetes resolves them: surge rounds
    /// up, unavailable rounds down, and if both come to zero, one may be unavailable.
    pub fn resolve(&self) -> (usize, usize) {
        let of = |a: Amount, up: bool| match a {
            Amount::Count(n) => n,
            Amount::Percent(p) => {
                let x = self.replicas * p as usize;
                if up {
                    x.div_ceil(100)
                } else {
                    x / 100
                }
            }
        };
        let surge = of(self.max_surge, true);
        let unavailable = of(self.max_unavailable, false);
        if surge == 0 && unavailable == 0 {
            (0, 1)
        } else {
            (surge, unavailable.min(self.replicas))
        }
    }

    fn validate(&self) -> Result<(), StrategyError> {
        if self.replicas == 0 {
            return Err(StrategyError::new("rolling.replicas", "must be at least 1"));
        }
        for (field, a) in [
            ("rolling.maxSurge", self.max_surge),
            ("rolling.maxUnavailable", self.max_unavailable),
        ] {
            if let Amount::Percent(p) = a {
                if p > 100 {
                    return Err(StrategyError::new(field, format!("{p}% is over 100%")));
                }
            }
        }
        let zero = |a| matches!(a, Amount::Count(0) | Amount::Percent(0));
        if zero(self.max_surge) && zero(self.max_unavailable) {
            return Err(StrategyError::new(
                "rolling.maxUnavailable",
                "may not be 0 when maxSurge is 0: nothing could ever be replaced",
            ));
        }
        Ok(())
    }
}

/// One stage of a [`Canary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryStage {
    /// The new version's share of traffic, 1 to 100.
    pub percent: u8,
    /// How long the stage runs before its analysis may pass.
    #[serde(rename = "durationMs", with = "ms")]
    pub duration: Duration,
}

/// Settings of [`Strategy::Canary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Canary {
    /// The stages, their percents increasing. After the last one passes, the new version
    /// is promoted (takes all traffic and becomes active).
    pub stages: Vec<CanaryStage>,
    /// Who moves to the next stage once the analysis passed.
    pub advance: Advance,
    /// How long, from its start, a stage may go without advancing before the deployment
    /// rolls back. At least every stage's duration.
    #[serde(rename = "stageDeadlineMs", with = "ms")]
    pub stage_deadline: Duration,
}

impl Canary {
    /// Advancing by hand.
    pub fn manual(mut self) -> Canary {
        self.advance = Advance::Manual;
        self
    }

    fn validate(&self) -> Result<(), StrategyError> {
        if self.stages.is_empty() {
            return Err(StrategyError::new("canary.stages", "there are none"));
        }
        let mut previous = 0;
        for (i, s) in self.stages.iter().enumerate() {
            let field = || format!("canary.stages[{i}].percent");
            if !(1..=100).contains(&s.percent) {
                return Err(StrategyError::new(
                    field(),
                    format!("{} is not between 1 and 100", s.percent),
                ));
            }
            if s.percent <= previous {
                return Err(StrategyError::new(
                    field(),
                    format!("{} is not above the previous stage's {previous}", s.percent),
                ));
            }
            if s.duration > self.stage_deadline {
                return Err(StrategyError::new(
                    "canary.stageDeadline",
                    format!(
                        "{:?} is shorter than stage {i}'s duration of {:?}",
                        self.stage_deadline, s.duration
                    ),
                ));
            }
            previous = s.percent;
        }
        Ok(())
    }
}

/// Settings of [`Strategy::AbTest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AbTest {
    /// B's (the new version's) share of the keys, 1 to 99.
    #[serde(rename = "percentB")]
    pub percent_b: u8,
    /// How long the test may run without a decision
    /// ([`advance`](crate::Deployer::advance) promotes B, a rollback keeps A); at the
    /// deadline it ends with A kept.
    #[serde(rename = "deadlineMs", with = "ms")]
    pub deadline: Duration,
}

/// Settings of [`Strategy::Scheduled`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scheduled {
    /// When to start, in milliseconds since the Unix epoch (by the deployer's clock).
    pub at_ms: u64,
    /// What to run then.
    pub then: Box<Strategy>,
}

/// Settings of [`Strategy::Shadow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Shadow {
    /// How long the new version shadows before its analysis may pass.
    #[serde(rename = "durationMs", with = "ms")]
    pub duration: Duration,
    /// Who switches traffic to it once the analysis passed.
    pub advance: Advance,
    /// How long shadowing may go on without a switch before the deployment rolls back.
    #[serde(rename = "deadlineMs", with = "ms")]
    pub deadline: Duration,
}

/// A strategy that cannot run, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct StrategyError {
    /// The field, such as `canary.stages[2].percent`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl StrategyError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> StrategyError {
        StrategyError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Serde for a [`Duration`] as whole milliseconds.
pub(crate) mod ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_stages_must_increase() {
        let e = Strategy::canary(&[5, 50, 25], Duration::from_secs(1))
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "canary.stages[2].percent");
        assert!(
            e.problem.contains("not above the previous stage's 50"),
            "{e}"
        );
        assert!(Strategy::canary(&[5, 25, 50, 100], Duration::from_secs(1))
            .validate()
            .is_ok());
        assert!(Strategy::canary(&[], Duration::from_secs(1))
            .validate()
            .is_err());
    }

    #[test]
    fn rolling_resolves_like_kubernetes() {
        // 25% of 10: surge rounds up to 3, unavailable down to 2.
        assert_eq!(Rolling::new(10).resolve(), (3, 2));
        // 25% of 1: surge 1, unavailable 0.
        assert_eq!(Rolling::new(1).resolve(), (1, 0));
        // Both resolving to zero: one may be unavailable.
        let r = Rolling::new(3)
            .with_max_surge(Amount::Percent(10))
            .with_max_unavailable(Amount::Percent(10));
        assert_eq!(r.resolve(), (1, 0));
        let r = Rolling::new(3)
            .with_max_surge(Amount::Count(0))
            .with_max_unavailable(Amount::Percent(10));
        assert_eq!(r.resolve(), (0, 1));
        let zero = Strategy::Rolling(
            Rolling::new(3)
                .with_max_surge(Amount::Count(0))
                .with_max_unavailable(Amount::Count(0)),
        );
        assert!(zero
            .validate()
            .unwrap_err()
            .problem
            .contains("may not be 0"));
    }

    #[test]
    fn a_schedule_cannot_nest() {
        let s = Strategy::scheduled(
            SystemTime::UNIX_EPOCH,
            Strategy::scheduled(SystemTime::UNIX_EPOCH, Strategy::Immediate),
        );
        assert_eq!(s.validate().unwrap_err().field, "scheduled.then");
    }

    #[test]
    fn strategies_round_trip_through_json() {
        let s = Strategy::scheduled(
            SystemTime::UNIX_EPOCH + Duration::from_secs(60),
            Strategy::canary(&[5, 100], Duration::from_secs(30)),
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"durationMs\":30000"), "{json}");
        assert_eq!(serde_json::from_str::<Strategy>(&json).unwrap(), s);
        let imm: Strategy = serde_json::from_str("\"immediate\"").unwrap();
        assert_eq!(imm, Strategy::Immediate);
    }
}
