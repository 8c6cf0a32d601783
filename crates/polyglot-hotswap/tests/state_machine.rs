//! Property tests of the deployer as a state machine: random sequences of every
//! operation, with hooks that fail at random, never panic, never put two versions at
//! 100%, never leave nothing active once something was, and keep the version states
//! consistent with the routing table.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use polyglot_hotswap::{
    Amount, Outcome, RollbackTo, Rolling, ShadowOutcome, SmokePhase, Strategy, VersionState,
};
use proptest::prelude::*;
use proptest::strategy::Strategy as Generator;
use support::*;

const VERSIONS: [&str; 5] = ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0"];

#[derive(Debug, Clone)]
enum Strat {
    Immediate,
    BlueGreen,
    Canary { manual: bool },
    AbTest,
    Scheduled { in_secs: u8 },
    Shadow,
    Rolling,
}

#[derive(Debug, Clone)]
enum Op {
    Stage(usize),
    Deploy(usize, Strat),
    /// Stage (if it can be) and deploy at once, so that sequences reach rollouts often.
    StageDeploy(usize, Strat),
    Advance,
    Pause,
    Resume,
    Abort,
    Rollback(Option<usize>),
    SetSplit(u8),
    Tick,
    Wait(u16),
    Calls {
        version: usize,
        ok: u8,
        err: u8,
    },
    Serve(u8),
    MakeReady(usize),
    BreakWarm(usize),
    FailSmoke(usize, bool),
}

fn strat() -> impl Generator<Value = Strat> {
    prop_oneof![
        Just(Strat::Immediate),
        Just(Strat::BlueGreen),
        any::<bool>().prop_map(|manual| Strat::Canary { manual }),
        Just(Strat::AbTest),
        (0u8..60).prop_map(|in_secs| Strat::Scheduled { in_secs }),
        Just(Strat::Shadow),
        Just(Strat::Rolling),
    ]
}

fn op() -> impl Generator<Value = Op> {
    let v = 0..VERSIONS.len();
    prop_oneof![
        2 => v.clone().prop_map(Op::Stage),
        1 => (v.clone(), strat()).prop_map(|(i, s)| Op::Deploy(i, s)),
        4 => (v.clone(), strat()).prop_map(|(i, s)| Op::StageDeploy(i, s)),
        2 => Just(Op::Advance),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
        1 => Just(Op::Abort),
        1 => proptest::option::of(v.clone()).prop_map(Op::Rollback),
        1 => (0u8..=100).prop_map(Op::SetSplit),
        3 => Just(Op::Tick),
        3 => (1u16..30).prop_map(Op::Wait),
        1 => (30u16..700).prop_map(Op::Wait),
        4 => (v.clone(), 0u8..40, 0u8..10).prop_map(|(version, ok, err)| Op::Calls { version, ok, err }),
        3 => (1u8..200).prop_map(Op::Serve),
        1 => v.clone().prop_map(Op::MakeReady),
        1 => v.clone().prop_map(Op::BreakWarm),
        1 => (v, any::<bool>()).prop_map(|(i, b)| Op::FailSmoke(i, b)),
    ]
}

fn strategy_of(s: &Strat, f: &Fixture) -> Strategy {
    match s {
        Strat::Immediate => Strategy::immediate(),
        Strat::BlueGreen => Strategy::blue_green(30 * SEC),
        Strat::Canary { manual } => {
            let Strategy::Canary(c) = Strategy::canary(&[5, 25, 50, 100], 20 * SEC) else {
                unreachable!()
            };
            Strategy::Canary(if *manual { c.manual() } else { c })
        }
        Strat::AbTest => Strategy::ab_test(30, 300 * SEC),
        Strat::Scheduled { in_secs } => Strategy::scheduled(
            polyglot_hotswap::Clock::wall(&f.clock) + Duration::from_secs(*in_secs as u64),
            Strategy::canary(&[50, 100], 10 * SEC),
        ),
        Strat::Shadow => Strategy::shadow(20 * SEC),
        Strat::Rolling => Strategy::Rolling(
            Rolling::new(3)
                .with_max_surge(Amount::Count(1))
                .with_progress_deadline(120 * SEC),
        ),
    }
}

async fn apply(f: &Fixture, op: &Op) {
    // Every operation either succeeds or returns a typed error; neither is wrong here.
    match op {
        Op::Stage(i) => {
            let _ =
                f.d.stage(VERSIONS[*i], pool(VERSIONS[*i]), Default::default())
                    .await;
        }
        Op::Deploy(i, s) => {
            let _ = f.d.deploy(VERSIONS[*i], strategy_of(s, f)).await;
        }
        Op::StageDeploy(i, s) => {
            let _ =
                f.d.stage(VERSIONS[*i], pool(VERSIONS[*i]), Default::default())
                    .await;
            let _ = f.d.deploy(VERSIONS[*i], strategy_of(s, f)).await;
        }
        Op::Advance => {
            let _ = f.d.advance().await;
        }
        Op::Pause => {
            let _ = f.d.pause().await;
        }
        Op::Resume => {
            let _ = f.d.resume().await;
        }
        Op::Abort => {
            let _ = f.d.abort("property test").await;
        }
        Op::Rollback(to) => {
            let to = match to {
                Some(i) => RollbackTo::Version(VERSIONS[*i].into()),
                None => RollbackTo::Previous,
            };
            let _ = f.d.rollback(to, "property test").await;
        }
        Op::SetSplit(p) => {
            let _ = f.d.set_split(*p).await;
        }
        Op::Tick => f.d.tick().await,
        Op::Wait(s) => f.wait(Duration::from_secs(*s as u64)).await,
        Op::Calls { version, ok, err } => f.calls(VERSIONS[*version], *ok as usize, *err as usize),
        Op::Serve(n) => {
            for i in 0..*n {
                if let Some(r) = f.d.route(format!("key-{i}")) {
                    f.d.record(r.version.as_str(), Outcome::Ok, Duration::from_millis(5));
                    if let Some(s) = r.shadow {
                        f.d.record_shadow(s.version.as_str(), ShadowOutcome::Match, SEC / 100);
                    }
                }
            }
        }
        Op::MakeReady(i) => f.fleet.make_ready(VERSIONS[*i]),
        Op::BreakWarm(i) => f.hooks.break_version(VERSIONS[*i]),
        Op::FailSmoke(i, after) => f.smoke.fail(
            VERSIONS[*i],
            if *after {
                SmokePhase::AfterPromotion
            } else {
                SmokePhase::BeforeTraffic
            },
        ),
    }
}

/// What must hold after every operation. Returns a description of what broke.
fn check(f: &Fixture, ever_active: &mut bool) -> Result<(), String> {
    let active = f.d.active_version();
    let status = f.d.status();
    let history = f.d.history();
    if *ever_active && active.is_none() {
        return Err("nothing is active any more".into());
    }
    *ever_active |= active.is_some();
    if status.active != active {
        return Err(format!(
            "status says {:?}, the table {:?}",
            status.active, active
        ));
    }
    let actives: Vec<_> = history
        .iter()
        .filter(|v| v.state == VersionState::Active)
        .map(|v| v.version.clone())
        .collect();
    if actives.len() != active.is_some() as usize || actives.first() != active.as_ref() {
        return Err(format!(
            "active in history: {actives:?}, routed: {active:?}"
        ));
    }
    let rolling_out = history
        .iter()
        .filter(|v| {
            matches!(
                v.state,
                VersionState::RollingOut { .. } | VersionState::RollingBack
            )
        })
        .count();
    if rolling_out > 1 {
        return Err(format!("{rolling_out} versions rolling at once"));
    }
    if let Some(r) = &status.rollout {
        let state = f.state(r.version.as_str());
        if !matches!(
            state,
            VersionState::Staged | VersionState::RollingOut { .. } | VersionState::Active
        ) {
            return Err(format!("the rollout's version is {state}"));
        }
    } else if rolling_out > 0 {
        return Err("a version rolls out with no rollout".into());
    }
    let shares: Vec<_> = f.d.traffic().into_iter().filter(|s| !s.shadow).collect();
    let full = shares.iter().filter(|s| s.percent >= 100.0).count();
    if full > 1 {
        return Err(format!("two versions at 100%: {shares:?}"));
    }
    let total: f64 = shares.iter().map(|s| s.percent).sum();
    if active.is_some() && (total - 100.0).abs() > 1e-6 {
        return Err(format!("shares add up to {total}: {shares:?}"));
    }
    if full == 1 && shares.len() > 1 {
        return Err(format!("one version at 100% and others too: {shares:?}"));
    }
    for i in 0..20 {
        match (f.d.route(format!("probe-{i}")), &active) {
            (Some(r), Some(_)) => {
                if !shares.iter().any(|s| s.version == r.version) {
                    return Err(format!("routed to {} outside {shares:?}", r.version));
                }
            }
            (None, None) => {}
            (r, a) => {
                return Err(format!(
                    "route {:?} while active {a:?}",
                    r.map(|r| r.version)
                ))
            }
        }
    }
    let ids: HashSet<_> = history.iter().map(|v| v.version.clone()).collect();
    if ids.len() != history.len() {
        return Err("a version appears twice in the history".into());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_operations_keeps_the_invariants(
        ops in proptest::collection::vec(op(), 1..80),
        auto_ready in any::<bool>(),
    ) {
        let rt = rt();
        let f = fixture();
        *f.fleet.auto_ready.lock().unwrap() = auto_ready;
        for v in VERSIONS {
            f.fleet.set(v, 3, 3);
        }
        let mut ever_active = false;
        for (n, op) in ops.iter().enumerate() {
            rt.block_on(apply(&f, op));
            if let Err(broken) = check(&f, &mut ever_active) {
                prop_assert!(false, "after op {n} {op:?}: {broken}");
            }
        }
    }
}
