//! The rolling update's arithmetic: given what is wanted and what is ready, how many
//! instances of the new and the old version to ask for next. Pure, so its guarantees are
//! tested on their own; the deployer calls [`Instances`](crate::Instances) with the
//! result.

/// The instance counts to ask for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Instances of the new version.
    pub new: usize,
    /// Instances of the old version.
    pub old: usize,
}

/// What a rolling update looks like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Instances wanted at the end.
    pub replicas: usize,
    /// Instances allowed above `replicas`.
    pub surge: usize,
    /// Of `replicas`, how many may be unready.
    pub unavailable: usize,
    /// Instances of the new version asked for so far.
    pub desired_new: usize,
    /// Instances of the old version asked for so far.
    pub desired_old: usize,
    /// Of those, ready.
    pub ready_new: usize,
    /// Of those, ready.
    pub ready_old: usize,
}

/// The next step, as Kubernetes' deployment controller takes it: first scale the old
/// version down as far as availability allows (its unready instances first: they serve
/// nobody), then scale the new one up as far as the surge allows.
///
/// Guarantees, when the counts given are the truth:
/// - asked-for instances never exceed `replicas + surge`;
/// - ready instances never drop below `replicas - unavailable` because of a scale-down;
/// - once every instance asked for is ready, each step makes progress, until the new
///   version has `replicas` and the old none.
pub(crate) fn plan(c: Counts) -> Plan {
    let min_available = c.replicas.saturating_sub(c.unavailable);
    let ready_new = c.ready_new.min(c.desired_new);
    let ready_old = c.ready_old.min(c.desired_old);
    // Instances that may go: all that exist minus the minimum, not counting new ones that
    // are not ready yet (they might never be).
    let may_remove = (c.desired_old + ready_new).saturating_sub(min_available);
    let unready_old = c.desired_old - ready_old;
    let cleanup = unready_old.min(may_remove);
    let healthy_down = (may_remove - cleanup)
        .min((ready_old + ready_new).saturating_sub(min_available))
        .min(ready_old);
    let old = c.desired_old - cleanup - healthy_down;
    let room = (c.replicas + c.surge).saturating_sub(old + c.desired_new);
    let new = (c.desired_new + room).min(c.replicas).max(c.desired_new);
    Plan { new, old }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn step(c: Counts) -> Counts {
        let p = plan(c);
        Counts {
            desired_new: p.new,
            desired_old: p.old,
            ..c
        }
    }

    #[test]
    fn three_replicas_one_surge_none_unavailable() {
        let mut c = Counts {
            replicas: 3,
            surge: 1,
            unavailable: 0,
            desired_new: 0,
            desired_old: 3,
            ready_new: 0,
            ready_old: 3,
        };
        let mut seen = vec![];
        for _ in 0..10 {
            c = step(c);
            // Everything asked for becomes ready before the next step.
            c.ready_new = c.desired_new;
            c.ready_old = c.desired_old;
            seen.push((c.desired_old, c.desired_new));
            if c.desired_old == 0 && c.desired_new == 3 {
                break;
            }
        }
        assert_eq!(seen, vec![(3, 1), (2, 2), (1, 3), (0, 3)]);
    }

    #[test]
    fn new_instances_that_never_get_ready_stall_the_update() {
        let mut c = Counts {
            replicas: 4,
            surge: 1,
            unavailable: 1,
            desired_new: 0,
            desired_old: 4,
            ready_new: 0,
            ready_old: 4,
        };
        for _ in 0..10 {
            c = step(c);
            c.ready_old = c.desired_old;
        }
        // It surged and used its unavailability budget, then stopped: 3 old still serve.
        assert_eq!((c.desired_old, c.desired_new), (3, 2));
    }

    proptest! {
        #[test]
        fn a_rolling_update_keeps_its_bounds_and_finishes(
            replicas in 1usize..20,
            surge in 0usize..6,
            unavailable in 0usize..6,
            lag in 0usize..3,
        ) {
            prop_assume!(surge + unavailable > 0);
            let unavailable = unavailable.min(replicas);
            let mut c = Counts {
                replicas, surge, unavailable,
                desired_new: 0, desired_old: replicas, ready_new: 0, ready_old: replicas,
            };
            let min_available = replicas - unavailable;
            let mut pending: Vec<usize> = vec![];
            for _ in 0..(replicas * 4 + 10) * (lag + 1) {
                let p = plan(c);
                prop_assert!(p.new + p.old <= replicas + surge, "{c:?} -> {p:?}");
                prop_assert!(p.new >= c.desired_new && p.old <= c.desired_old);
                let ready_old_after = c.ready_old.min(p.old);
                if c.ready_old + c.ready_new >= min_available {
                    prop_assert!(ready_old_after + c.ready_new >= min_available, "{c:?} -> {p:?}");
                }
                c.desired_new = p.new;
                c.desired_old = p.old;
                c.ready_old = ready_old_after;
                // New instances get ready `lag` steps after they are asked for.
                pending.push(p.new);
                if pending.len() > lag {
                    c.ready_new = pending.remove(0);
                }
                if c.desired_old == 0 && c.ready_new == replicas {
                    break;
                }
            }
            prop_assert_eq!((c.desired_old, c.desired_new, c.ready_new), (0, replicas, replicas));
        }
    }
}
