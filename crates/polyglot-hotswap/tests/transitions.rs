//! Illegal transitions are typed errors that name the version, its state and the
//! operation; pause and resume; preparing; events; history; snapshot and restore.

mod support;

use std::sync::Arc;

use polyglot_hotswap::{
    Canary, CanaryStage, Deadlines, DeployError, Deployer, EventKind, Operation, RollbackTo,
    RolloutPhase, Snapshot, Strategy, VersionMeta, VersionState,
};
use support::*;

#[tokio::test]
async fn refused_operations_say_which_version_what_state_and_what_operation() {
    let f = fixture();
    let e =
        f.d.deploy("1.0.0", Strategy::immediate())
            .await
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot deploy version 1.0.0: no such version is known"
    );

    let e = f.d.pause().await.unwrap_err();
    assert!(matches!(
        e,
        DeployError::NoDeployment {
            op: Operation::Pause
        }
    ));
    assert_eq!(e.to_string(), "cannot pause: no deployment is in progress");
    let e = f.d.rollback(RollbackTo::Previous, "x").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot roll back: no deployment is in progress"
    );

    let e =
        f.d.stage("1 0", pool("1 0"), VersionMeta::default())
            .await
            .unwrap_err();
    assert!(e.to_string().contains("contains whitespace"), "{e}");

    f.activate_healthy("1.0.0").await;
    let e =
        f.d.deploy("1.0.0", Strategy::immediate())
            .await
            .unwrap_err();
    assert!(matches!(
        &e,
        DeployError::IllegalTransition {
            state: VersionState::Active,
            op: Operation::Deploy,
            ..
        }
    ));
    assert_eq!(e.to_string(), "cannot deploy version 1.0.0: it is active");
    let e =
        f.d.stage("1.0.0", pool("1.0.0"), VersionMeta::default())
            .await
            .unwrap_err();
    assert_eq!(e.to_string(), "cannot stage version 1.0.0: it is active");

    f.stage("1.1.0").await;
    let e =
        f.d.deploy("1.1.0", Strategy::canary(&[50, 10], SEC))
            .await
            .unwrap_err();
    assert!(matches!(e, DeployError::InvalidStrategy { .. }));
    assert_eq!(
        polyglot_hotswap_chain(&e),
        "cannot deploy 1.1.0: invalid strategy: canary.stages[1].percent: 10 is not above the previous stage's 50"
    );
    assert_eq!(f.state("1.1.0"), VersionState::Staged, "nothing happened");

    f.d.deploy("1.1.0", Strategy::canary(&[10, 100], 30 * SEC))
        .await
        .unwrap();
    f.stage("1.2.0").await;
    let e =
        f.d.deploy("1.2.0", Strategy::immediate())
            .await
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot deploy 1.2.0: the deployment of 1.1.0 is in progress (advance it, wait for it, or abort it first)"
    );
    let e = f.d.set_split(30).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot set the split of the deployment of 1.1.0: only an A/B test has a split; this deployment is canary"
    );
    let e = f.d.resume().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot resume the deployment of 1.1.0: it is not paused"
    );
    let e =
        f.d.rollback(RollbackTo::Version("1.2.0".into()), "x")
            .await
            .unwrap_err();
    assert!(e.to_string().contains("cannot roll back to 1.2.0"), "{e}");

    f.d.abort("changed my mind").await.unwrap();
    let e = f.d.abort("again").await.unwrap_err();
    assert_eq!(e.to_string(), "cannot abort: no deployment is in progress");
    let e =
        f.d.deploy("1.1.0", Strategy::immediate())
            .await
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot deploy version 1.1.0: it is failed (aborted: changed my mind)"
    );
    // A failed version can be staged again, with a new value.
    f.stage("1.1.0").await;
    assert_eq!(f.state("1.1.0"), VersionState::Staged);
}

fn polyglot_hotswap_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s = format!("{s}: {c}");
        cur = c.source();
    }
    s
}

#[tokio::test]
async fn a_paused_deployment_neither_advances_nor_times_out_but_still_rolls_back_when_unhealthy() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::canary(&[10, 100], 30 * SEC))
        .await
        .unwrap();
    f.wait(10 * SEC).await;
    f.d.pause().await.unwrap();
    assert!(f
        .d
        .pause()
        .await
        .unwrap_err()
        .to_string()
        .contains("already paused"));
    assert!(f
        .d
        .advance()
        .await
        .unwrap_err()
        .to_string()
        .contains("resume it first"));
    f.calls("1.1.0", 30, 0);
    f.wait(3600 * SEC).await; // far past the stage and its deadline
    let s = f.d.status().rollout.unwrap();
    assert!(s.paused);
    assert_eq!(
        s.phase,
        RolloutPhase::Canary {
            stage: 0,
            stages: 2
        }
    );
    assert_eq!(s.phase_elapsed, 10 * SEC);

    f.d.resume().await.unwrap();
    f.calls("1.1.0", 30, 0);
    f.wait(19 * SEC).await;
    assert_eq!(f.d.status().rollout.unwrap().phase_elapsed, 29 * SEC);
    assert_eq!(f.state("1.1.0"), VersionState::RollingOut { percent: 10 });
    f.wait(SEC).await;
    assert_eq!(f.state("1.1.0"), VersionState::RollingOut { percent: 100 });

    f.d.pause().await.unwrap();
    f.calls("1.1.0", 0, 30);
    f.d.tick().await;
    assert_eq!(f.state("1.1.0"), VersionState::RolledBack);
    let kinds: Vec<_> = f.events().into_iter().map(|(_, k)| k).collect();
    assert!(kinds.contains(&EventKind::Paused));
    assert!(kinds.contains(&EventKind::Resumed));
}

#[tokio::test]
async fn prepare_stages_what_starts_and_fails_what_does_not_in_time() {
    let f = fixture_with(|b| {
        b.deadlines(Deadlines {
            start: 5 * SEC,
            ..Deadlines::default()
        })
    });
    f.d.prepare("1.0.0", VersionMeta::new("ci", "build 7"), async {
        Ok::<_, std::io::Error>(pool("1.0.0"))
    })
    .await
    .unwrap();
    assert_eq!(f.state("1.0.0"), VersionState::Staged);
    assert_eq!(f.d.version("1.0.0").unwrap().meta.why, "build 7");

    let e =
        f.d.prepare("1.1.0", VersionMeta::default(), async {
            Err::<Arc<Pool>, _>(std::io::Error::other("exit status 3: ModuleNotFoundError"))
        })
        .await
        .unwrap_err();
    assert!(matches!(e, DeployError::StartFailed { .. }));
    assert_eq!(
        f.state("1.1.0"),
        VersionState::Failed {
            reason: "starting 1.1.0 failed: exit status 3: ModuleNotFoundError".into()
        }
    );

    // A start that hangs fails at its deadline, and other operations do not wait for it.
    let hanging = f.d.prepare(
        "1.2.0",
        VersionMeta::default(),
        std::future::pending::<Result<Arc<Pool>, std::io::Error>>(),
    );
    let other = async {
        tokio::task::yield_now().await;
        assert_eq!(f.state("1.2.0"), VersionState::Preparing);
        f.d.deploy("1.0.0", Strategy::immediate()).await.unwrap();
        f.clock.advance(5 * SEC);
    };
    let (e, ()) = tokio::join!(hanging, other);
    let e = e.unwrap_err();
    assert_eq!(
        polyglot_hotswap_chain(&e),
        "starting 1.2.0 failed: it did not finish within 5s"
    );
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
}

#[tokio::test]
async fn a_hanging_smoke_check_fails_at_its_deadline() {
    use polyglot_hotswap::{SmokeFailure, SmokeFn};
    let f = fixture_with(|b| {
        b.smoke_check(SmokeFn::new("slow", |_, _, _| async {
            std::future::pending::<Result<(), SmokeFailure>>().await
        }))
        .deadlines(Deadlines {
            checks: 10 * SEC,
            ..Deadlines::default()
        })
    });
    f.stage("1.0.0").await;
    let deploy = f.d.deploy("1.0.0", Strategy::immediate());
    let tick = async {
        tokio::task::yield_now().await;
        f.clock.advance(10 * SEC);
    };
    let (r, ()) = tokio::join!(deploy, tick);
    let e = r.unwrap_err();
    assert_eq!(
        polyglot_hotswap_chain(&e),
        "smoke check \"slow\" of 1.0.0 failed before traffic: it did not finish within 10s"
    );
    assert_eq!(f.active(), None);
}

#[tokio::test]
async fn an_operation_dropped_midway_leaves_nothing_stuck_after_the_next_tick() {
    use std::time::Duration;
    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.activate_healthy("1.1.0").await;
    let give_up = Duration::from_millis(20);

    // A deployment whose warm check hangs, given up by its caller.
    f.stage("1.2.0").await;
    f.hooks.hang("1.2.0");
    let canary = Strategy::canary(&[10, 100], 30 * SEC);
    let r = tokio::time::timeout(give_up, f.d.deploy("1.2.0", canary)).await;
    assert!(r.is_err(), "it hangs");
    assert_eq!(f.d.status().rollout.unwrap().phase, RolloutPhase::Checking);
    f.d.tick().await;
    assert!(f.d.status().rollout.is_none());
    let VersionState::Failed { reason } = f.state("1.2.0") else {
        panic!("{:?}", f.state("1.2.0"))
    };
    assert!(reason.starts_with("interrupted"), "{reason}");
    assert_eq!(f.active().as_deref(), Some("1.1.0"));

    // A rollback whose target's warm check hangs, given up.
    f.hooks.hang("1.0.0");
    let r = tokio::time::timeout(give_up, f.d.rollback(RollbackTo::Previous, "x")).await;
    assert!(r.is_err());
    assert_eq!(f.state("1.1.0"), VersionState::RollingBack);
    f.d.tick().await;
    assert_eq!(f.state("1.1.0"), VersionState::Active);
    assert_eq!(f.active().as_deref(), Some("1.1.0"));

    // A prepare given up.
    let start = std::future::pending::<Result<Arc<Pool>, std::io::Error>>();
    let r =
        tokio::time::timeout(give_up, f.d.prepare("2.0.0", VersionMeta::default(), start)).await;
    assert!(r.is_err());
    assert_eq!(
        f.state("2.0.0"),
        VersionState::Failed {
            reason: "its prepare() was cancelled before it finished starting".into()
        }
    );
}

#[tokio::test]
async fn every_transition_of_a_canary_is_an_event() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.events();
    f.stage("1.1.0").await;
    let canary = Strategy::Canary(Canary {
        stages: vec![
            CanaryStage {
                percent: 10,
                duration: 10 * SEC,
            },
            CanaryStage {
                percent: 100,
                duration: 10 * SEC,
            },
        ],
        advance: polyglot_hotswap::Advance::Auto,
        stage_deadline: 60 * SEC,
    });
    f.d.deploy("1.1.0", canary).await.unwrap();
    f.wait(10 * SEC).await; // inconclusive: held
    f.d.pause().await.unwrap();
    f.d.resume().await.unwrap();
    f.calls("1.1.0", 20, 0);
    f.wait(SEC).await; // passes: next stage
    f.calls("1.1.0", 20, 0);
    f.wait(10 * SEC).await; // passes: promoted, succeeded
    let kinds: Vec<String> = f
        .events()
        .into_iter()
        .map(|(v, k)| {
            let name = format!("{k:?}");
            format!("{v} {}", name.split([' ', '{']).next().unwrap())
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "1.1.0 Staged",
            "1.1.0 Started",
            "1.1.0 StageAdvanced",
            "1.1.0 Held",
            "1.1.0 Paused",
            "1.1.0 Resumed",
            "1.1.0 StageAdvanced",
            "1.1.0 Promoted",
            "1.1.0 Succeeded",
        ]
    );
}

#[tokio::test]
async fn the_history_is_bounded_and_keeps_who_why_when_and_how() {
    let f = fixture_with(|b| {
        b.history_limit(3)
            .retain_previous(std::time::Duration::ZERO)
    });
    for i in 0..6 {
        let v = format!("1.{i}.0");
        f.d.stage(
            &v,
            pool(&v),
            VersionMeta::new("ana", format!("release {i}")),
        )
        .await
        .unwrap();
        f.d.deploy(&v, Strategy::immediate()).await.unwrap();
        f.wait(SEC).await;
    }
    let h = f.d.history();
    assert_eq!(h.len(), 3);
    assert_eq!(
        h.iter().map(|v| v.version.to_string()).collect::<Vec<_>>(),
        vec!["1.3.0", "1.4.0", "1.5.0"]
    );
    let last = &h[2];
    assert_eq!(last.meta.by, "ana");
    assert_eq!(last.meta.why, "release 5");
    assert_eq!(last.strategy, Some(Strategy::Immediate));
    assert_eq!(last.state, VersionState::Active);
    assert_eq!(
        last.activated_at_ms,
        Some(polyglot_hotswap::MANUAL_CLOCK_WALL_ORIGIN_MS + 5_000)
    );
    assert_eq!(h[1].ended_at_ms, last.activated_at_ms);
    assert!(!h[1].retained);
}

#[tokio::test]
async fn a_snapshot_restores_the_active_version_and_the_history() {
    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.activate_healthy("1.1.0").await;
    f.stage("1.2.0").await;
    f.d.deploy("1.2.0", Strategy::canary(&[10, 100], 30 * SEC))
        .await
        .unwrap();
    let snap = f.d.snapshot();
    assert_eq!(snap.deploying.as_ref().unwrap(), "1.2.0");
    let json = serde_json::to_string_pretty(&snap).unwrap();
    assert!(json.contains("\"state\": \"rolling-out\""), "{json}");
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
    assert_eq!(back.last_known_healthy().unwrap().version, "1.0.0");

    // A restarted host: a new deployer, the active version started again.
    let g = fixture();
    let mut asked = vec![];
    g.d.restore(back.clone(), |v| {
        asked.push(v.to_string());
        Some(pool(v.as_str()))
    })
    .await
    .unwrap();
    assert_eq!(asked, vec!["1.0.0", "1.1.0"], "the active and the retained");
    assert_eq!(g.active().as_deref(), Some("1.1.0"));
    assert_eq!(g.d.active().unwrap().version, "1.1.0");
    assert!(
        g.d.status().rollout.is_none(),
        "a deployment is not resumed"
    );
    assert_eq!(
        g.state("1.2.0"),
        VersionState::Failed {
            reason: "interrupted by a restart while rolling out (10%)".into()
        }
    );
    assert!(g.d.version("1.1.0").unwrap().health.is_healthy());
    // The rollback target survives the restart.
    let to =
        g.d.rollback(RollbackTo::Previous, "after restart")
            .await
            .unwrap();
    assert_eq!(to, "1.0.0");

    // Restoring twice, or without the active value, is refused.
    let e = g.d.restore(back.clone(), |_| None).await.unwrap_err();
    assert!(e.to_string().contains("already holds versions"), "{e}");
    let h = fixture();
    let e = h.d.restore(back, |_| None).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot restore deployment \"text\": no value was given for its active version 1.1.0"
    );
}

#[test]
fn the_read_path_works_without_a_runtime_and_before_anything_is_active() {
    let d: Deployer<Pool> = Deployer::builder().build();
    assert!(d.active().is_none());
    assert!(d.route("k").is_none());
    assert!(d.route_any().is_none());
    d.record("nothing", polyglot_hotswap::Outcome::Ok, SEC);
    assert!(d.traffic().is_empty());
    let rt = rt();
    rt.block_on(async {
        d.stage("1", pool("1"), VersionMeta::default())
            .await
            .unwrap();
        d.deploy("1", Strategy::immediate()).await.unwrap();
    });
    assert_eq!(d.active().unwrap().version, "1");
    assert_eq!(d.route_any().unwrap().version, "1");
}

#[test]
fn the_deployer_and_its_operations_can_cross_threads() {
    fn send<F: std::future::Future + Send>(_: F) {}
    fn shared<X: Send + Sync>(_: &X) {}
    let d: Deployer<Pool> = Deployer::builder().build();
    shared(&d);
    send(d.stage("1", pool("1"), VersionMeta::default()));
    send(d.prepare("2", VersionMeta::default(), async {
        Ok::<_, std::io::Error>(pool("2"))
    }));
    send(d.deploy("1", Strategy::immediate()));
    send(d.advance());
    send(d.pause());
    send(d.resume());
    send(d.abort("x"));
    send(d.rollback(RollbackTo::Previous, "x"));
    send(d.set_split(5));
    send(d.tick());
    send(d.drive(SEC));
    send(d.restore(d.snapshot(), |_| None));
}
