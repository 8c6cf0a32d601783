//! Each strategy, driven step by step on a manual clock.

mod support;

use std::collections::HashMap;

use polyglot_hotswap::{
    Amount, BlueGreen, DeployError, EventKind, Rolling, RolloutPhase, ShadowOutcome, SmokePhase,
    Strategy, VersionState, DEFAULT_HOLD,
};
use support::*;

#[tokio::test]
async fn immediate_switches_at_once_and_releases_the_old_version_after_its_standby() {
    let mut f = fixture();
    f.stage("1.0.0").await;
    f.d.deploy("1.0.0", Strategy::immediate()).await.unwrap();
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    assert_eq!(f.d.active().unwrap().version, "1.0.0");
    let kinds: Vec<_> = f.events().into_iter().map(|(_, k)| k).collect();
    assert!(matches!(kinds[0], EventKind::Staged));
    assert!(matches!(kinds[1], EventKind::Started { from: None, .. }));
    assert!(matches!(kinds[2], EventKind::Promoted { .. }));
    assert!(matches!(kinds[3], EventKind::Succeeded));

    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::immediate()).await.unwrap();
    assert_eq!(f.active().as_deref(), Some("1.1.0"));
    assert_eq!(f.state("1.0.0"), VersionState::Superseded);
    assert!(
        f.d.version("1.0.0").unwrap().retained,
        "kept for an instant rollback"
    );
    f.wait(59 * SEC).await;
    assert!(f.hooks.released().is_empty());
    f.wait(SEC).await;
    assert_eq!(f.hooks.released(), vec!["1.0.0"]);
    assert!(!f.d.version("1.0.0").unwrap().retained);
    assert!(f
        .events()
        .iter()
        .any(|(v, k)| v == "1.0.0" && *k == EventKind::Released { drained: true }));
}

#[tokio::test]
async fn blue_green_switches_once_then_succeeds_after_a_healthy_grace() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::blue_green(30 * SEC))
        .await
        .unwrap();
    // One atomic switch: all traffic on the new version, the old one standing by.
    assert_eq!(f.serve(100), HashMap::from([("1.1.0".to_string(), 100)]));
    assert_eq!(f.state("1.1.0"), VersionState::Active);
    assert_eq!(f.state("1.0.0"), VersionState::Superseded);
    assert_eq!(f.d.status().rollout.unwrap().phase, RolloutPhase::Grace);
    f.wait(29 * SEC).await;
    assert!(f.d.status().rollout.is_some(), "still in its grace period");
    f.wait(SEC).await;
    assert!(f.d.status().rollout.is_none());
    assert!(f
        .events()
        .iter()
        .any(|(v, k)| v == "1.1.0" && *k == EventKind::Succeeded));
    // The grace period was the standby: the old version goes at the next tick.
    f.d.tick().await;
    assert_eq!(f.hooks.released(), vec!["1.0.0"]);
}

#[tokio::test]
async fn blue_green_rolls_back_at_once_when_the_new_version_fails_in_its_grace() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::blue_green(30 * SEC))
        .await
        .unwrap();
    f.calls("1.1.0", 10, 5);
    f.d.tick().await;
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    assert_eq!(f.state("1.1.0"), VersionState::RolledBack);
    assert_eq!(f.state("1.0.0"), VersionState::Active);
    let ev = f.events();
    assert!(ev
        .iter()
        .any(|(v, k)| v == "1.1.0" && matches!(k, EventKind::HealthFailed { .. })));
    let reason = ev
        .iter()
        .find_map(|(_, k)| match k {
            EventKind::RolledBack { to, reason } if to == "1.0.0" => Some(reason.clone()),
            _ => None,
        })
        .expect("rolled back");
    assert!(reason.contains("5 of 15 calls failed"), "{reason}");
    assert_eq!(f.serve(50), HashMap::from([("1.0.0".to_string(), 50)]));
}

#[tokio::test]
async fn blue_green_with_too_few_calls_holds_then_rolls_back_at_its_deadline() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    let bg = Strategy::BlueGreen(BlueGreen {
        grace: 30 * SEC,
        deadline: 90 * SEC,
    });
    f.d.deploy("1.1.0", bg).await.unwrap();
    f.calls("1.1.0", 3, 0);
    f.wait(30 * SEC).await;
    // Inconclusive: it neither passes nor fails; it holds.
    assert!(f.d.status().rollout.is_some());
    assert_eq!(f.active().as_deref(), Some("1.1.0"));
    let held: Vec<_> = f
        .events()
        .into_iter()
        .filter(|(_, k)| matches!(k, EventKind::Held { .. }))
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(format!("{held:?}").contains("inconclusive: 3 of the 10 calls needed"));
    f.wait(59 * SEC).await;
    assert_eq!(f.active().as_deref(), Some("1.1.0"));
    f.wait(SEC).await;
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    assert_eq!(f.state("1.1.0"), VersionState::RolledBack);
}

#[tokio::test]
async fn canary_advances_through_its_stages_on_healthy_analyses() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::canary(&[5, 25, 50, 100], 30 * SEC))
        .await
        .unwrap();
    for (stage, percent) in [5usize, 25, 50, 100].into_iter().enumerate() {
        assert_eq!(
            f.state("1.1.0"),
            VersionState::RollingOut {
                percent: percent as u8
            }
        );
        assert_eq!(
            f.d.status().rollout.unwrap().phase,
            RolloutPhase::Canary { stage, stages: 4 }
        );
        let got = f.serve(2000);
        let share = *got.get("1.1.0").unwrap_or(&0) as f64 / 20.0;
        assert!(
            (share - percent as f64).abs() <= 3.0,
            "stage {stage}: {share}% instead of {percent}%"
        );
        f.wait(29 * SEC).await;
        assert_eq!(
            f.d.status().rollout.unwrap().phase,
            RolloutPhase::Canary { stage, stages: 4 }
        );
        f.wait(SEC).await;
    }
    assert_eq!(f.active().as_deref(), Some("1.1.0"));
    assert_eq!(f.state("1.1.0"), VersionState::Active);
    let kinds: Vec<_> = f
        .events()
        .into_iter()
        .filter(|(v, _)| v == "1.1.0")
        .map(|(_, k)| k)
        .collect();
    let stages: Vec<_> = kinds
        .iter()
        .filter_map(|k| match k {
            EventKind::StageAdvanced { stage, percent } => Some((*stage, *percent)),
            _ => None,
        })
        .collect();
    assert_eq!(stages, vec![(0, 5), (1, 25), (2, 50), (3, 100)]);
    assert!(kinds.contains(&EventKind::Succeeded));
    assert!(f.d.version("1.1.0").unwrap().health.is_healthy());
}

#[tokio::test]
async fn a_manual_canary_waits_for_advance_which_needs_a_passed_analysis() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    let Strategy::Canary(c) = Strategy::canary(&[20, 100], 30 * SEC) else {
        unreachable!()
    };
    f.d.deploy("1.1.0", Strategy::Canary(c.manual()))
        .await
        .unwrap();

    let e = f.d.advance().await.unwrap_err();
    assert!(matches!(e, DeployError::NotReady { .. }));
    assert!(
        e.to_string()
            .contains("stage 0 (20%) has run 0ns of its 30s"),
        "{e}"
    );

    f.wait(30 * SEC).await;
    let e = f.d.advance().await.unwrap_err();
    assert!(
        e.to_string()
            .contains("has not passed: inconclusive: 0 of the 10 calls needed"),
        "{e}"
    );

    f.calls("1.1.0", 20, 0);
    f.wait(SEC).await;
    // Passed, but manual: the tick only says it waits.
    assert!(matches!(
        f.d.status().rollout.unwrap().phase,
        RolloutPhase::Canary { stage: 0, .. }
    ));
    assert!(f.events().iter().any(
        |(_, k)| matches!(k, EventKind::Held { reason } if reason.contains("waiting for advance()"))
    ));
    f.d.advance().await.unwrap();
    assert_eq!(f.state("1.1.0"), VersionState::RollingOut { percent: 100 });
    f.wait(30 * SEC).await;
    f.calls("1.1.0", 20, 0);
    f.d.advance().await.unwrap();
    assert_eq!(f.active().as_deref(), Some("1.1.0"));
}

#[tokio::test]
async fn a_failing_canary_is_rolled_back_automatically() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::canary(&[10, 50, 100], 60 * SEC))
        .await
        .unwrap();
    f.calls("1.1.0", 8, 4);
    f.wait(5 * SEC).await;
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    assert_eq!(f.state("1.1.0"), VersionState::RolledBack);
    assert!(f.d.status().rollout.is_none());
    assert_eq!(f.serve(100), HashMap::from([("1.0.0".to_string(), 100)]));
    let ev = f.events();
    assert!(ev.iter().any(|(v, k)| v == "1.1.0"
        && matches!(k, EventKind::RolledBack { reason, .. } if reason.starts_with("canary stage 0 (10%): unhealthy"))));
    // And released, with a drain.
    assert_eq!(f.hooks.released(), vec!["1.1.0"]);
}

#[tokio::test]
async fn an_inconclusive_canary_holds_then_rolls_back_at_its_deadline() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::canary(&[10, 100], 30 * SEC))
        .await
        .unwrap();
    f.calls("1.1.0", 4, 0);
    f.wait(30 * SEC).await;
    f.wait(30 * SEC).await;
    // Held, once, never promoted.
    assert_eq!(f.state("1.1.0"), VersionState::RollingOut { percent: 10 });
    let held = f
        .events()
        .into_iter()
        .filter(|(_, k)| matches!(k, EventKind::Held { .. }))
        .count();
    assert_eq!(held, 1);
    f.clock.advance(DEFAULT_HOLD - 31 * SEC);
    f.d.tick().await;
    assert_eq!(f.state("1.1.0"), VersionState::RollingOut { percent: 10 });
    f.wait(SEC).await;
    assert_eq!(f.state("1.1.0"), VersionState::RolledBack);
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    let reason = f
        .events()
        .into_iter()
        .find_map(|(_, k)| match k {
            EventKind::RolledBack { reason, .. } => Some(reason),
            _ => None,
        })
        .unwrap();
    assert!(
        reason.contains("did not advance within its deadline of 630s"),
        "{reason}"
    );
    assert!(
        reason.contains("inconclusive: 0 of the 10 calls needed"),
        "{reason}"
    );
}

#[tokio::test]
async fn without_automatic_rollback_an_unhealthy_canary_holds_until_its_deadline() {
    let mut f = fixture_with(|b| b.auto_rollback(false));
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::canary(&[10, 100], 30 * SEC))
        .await
        .unwrap();
    f.calls("1.1.0", 5, 5);
    f.wait(30 * SEC).await;
    assert_eq!(f.state("1.1.0"), VersionState::RollingOut { percent: 10 });
    assert!(f
        .events()
        .iter()
        .any(|(_, k)| matches!(k, EventKind::HealthFailed { .. })));
    f.clock.advance(DEFAULT_HOLD);
    f.d.tick().await;
    assert_eq!(f.state("1.1.0"), VersionState::RolledBack);
}

#[tokio::test]
async fn ab_routing_is_sticky_and_a_new_split_moves_the_fewest_keys() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::ab_test(20, 3600 * SEC))
        .await
        .unwrap();
    let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    let assign = |f: &Fixture| -> Vec<String> {
        keys.iter()
            .map(|k| f.d.route(k).unwrap().version.to_string())
            .collect()
    };
    let at20 = assign(&f);
    assert_eq!(at20, assign(&f), "the same key gets the same version");
    let b = at20.iter().filter(|v| *v == "1.1.0").count();
    assert!((1800..2200).contains(&b), "{b}");

    f.d.set_split(50).await.unwrap();
    let at50 = assign(&f);
    let mut moved = 0;
    for (before, after) in at20.iter().zip(&at50) {
        assert!(
            !(before == "1.1.0" && after == "1.0.0"),
            "a B key went back to A when B grew"
        );
        moved += (before != after) as usize;
    }
    // 30% of the keys had to move; no more did.
    assert!((2800..3200).contains(&moved), "{moved}");

    f.d.set_split(10).await.unwrap();
    let at10 = assign(&f);
    for (before, after) in at50.iter().zip(&at10) {
        assert!(
            !(before == "1.0.0" && after == "1.1.0"),
            "an A key went to B when B shrank"
        );
    }
    for (before, after) in at20.iter().zip(&at10) {
        if after == "1.1.0" {
            assert_eq!(before, "1.1.0", "B at 10% is a subset of B at 20%");
        }
    }
    assert!(f.events().iter().any(|(_, k)| *k
        == EventKind::StageAdvanced {
            stage: 0,
            percent: 10
        }));
}

#[tokio::test]
async fn an_ab_test_ends_by_promoting_b_or_at_its_deadline_keeping_a() {
    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::ab_test(50, 600 * SEC))
        .await
        .unwrap();
    assert!(f.d.advance().await.is_err(), "B has no verdict yet");
    f.serve(100);
    f.d.advance().await.unwrap();
    assert_eq!(f.active().as_deref(), Some("1.1.0"));

    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::ab_test(50, 600 * SEC))
        .await
        .unwrap();
    f.wait(600 * SEC).await;
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    let VersionState::Failed { reason } = f.state("1.1.0") else {
        panic!("{:?}", f.state("1.1.0"))
    };
    assert!(
        reason.contains("without a decision, so A was kept"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_scheduled_deployment_refuses_to_start_early_and_starts_on_time() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    let at = polyglot_hotswap::Clock::wall(&f.clock) + 60 * SEC;
    f.d.deploy("1.1.0", Strategy::scheduled(at, Strategy::immediate()))
        .await
        .unwrap();
    assert!(f
        .events()
        .iter()
        .any(|(_, k)| matches!(k, EventKind::Scheduled { .. })));
    assert_eq!(f.state("1.1.0"), VersionState::Staged);
    assert!(matches!(
        f.d.status().rollout.unwrap().phase,
        RolloutPhase::Scheduled { .. }
    ));
    f.clock.advance(20 * SEC);
    let e = f.d.advance().await.unwrap_err();
    assert!(matches!(e, DeployError::TooEarly { .. }));
    assert!(
        e.to_string()
            .contains("40s from now; activating early is not allowed"),
        "{e}"
    );
    f.wait(39 * SEC).await;
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    f.wait(SEC).await;
    assert_eq!(f.active().as_deref(), Some("1.1.0"));
    let h = f.d.version("1.1.0").unwrap();
    assert!(matches!(h.strategy, Some(Strategy::Scheduled(_))));
}

#[tokio::test]
async fn a_schedule_already_due_starts_at_once() {
    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    let at = polyglot_hotswap::Clock::wall(&f.clock) - 60 * SEC;
    f.d.deploy("1.1.0", Strategy::scheduled(at, Strategy::immediate()))
        .await
        .unwrap();
    assert_eq!(f.active().as_deref(), Some("1.1.0"));
}

#[tokio::test]
async fn a_shadow_gets_copies_and_is_promoted_when_its_answers_match() {
    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::shadow(30 * SEC))
        .await
        .unwrap();
    for i in 0..50 {
        let r = f.d.route(format!("k{i}")).unwrap();
        assert_eq!(r.version, "1.0.0", "callers only see the primary");
        let shadow = r.shadow.expect("a copy goes to the shadow");
        assert_eq!(shadow.version, "1.1.0");
        assert_eq!(shadow.target.version, "1.1.0");
        f.d.record(r.version.as_str(), polyglot_hotswap::Outcome::Ok, SEC / 100);
        f.d.record_shadow(shadow.version.as_str(), ShadowOutcome::Match, SEC / 90);
    }
    let traffic = f.d.traffic();
    assert!(traffic.iter().any(|t| t.version == "1.1.0" && t.shadow));
    let h = f.d.health("1.1.0").unwrap();
    assert_eq!((h.calls, h.compared, h.mismatches), (50, 50, 0));
    f.wait(30 * SEC).await;
    assert_eq!(f.active().as_deref(), Some("1.1.0"));
    assert!(f.d.route("k0").unwrap().shadow.is_none());
}

#[tokio::test]
async fn a_shadow_whose_answers_differ_is_rolled_back() {
    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::shadow(30 * SEC))
        .await
        .unwrap();
    for i in 0..20 {
        let outcome = if i % 4 == 0 {
            ShadowOutcome::Mismatch
        } else {
            ShadowOutcome::Match
        };
        f.d.record_shadow("1.1.0", outcome, SEC / 100);
    }
    f.d.tick().await;
    assert_eq!(f.state("1.1.0"), VersionState::RolledBack);
    assert!(f.d.route("k").unwrap().shadow.is_none());
}

#[tokio::test]
async fn rolling_replaces_instances_in_batches_within_surge_and_availability() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.fleet.set("1.0.0", 3, 3);
    f.stage("1.1.0").await;
    let rolling = Rolling::new(3)
        .with_max_surge(Amount::Count(1))
        .with_max_unavailable(Amount::Count(0));
    f.d.deploy("1.1.0", Strategy::Rolling(rolling))
        .await
        .unwrap();
    // First batch: one new instance (the surge); none ready, so no traffic yet.
    assert_eq!(f.fleet.get("1.1.0"), (1, 0));
    assert_eq!(f.fleet.get("1.0.0"), (3, 3));
    assert_eq!(f.state("1.1.0"), VersionState::RollingOut { percent: 0 });

    let mut shares = vec![];
    for _ in 0..6 {
        f.fleet.make_ready("1.1.0");
        f.serve(300);
        f.wait(SEC).await;
        let (new, old) = (f.fleet.get("1.1.0"), f.fleet.get("1.0.0"));
        assert!(new.0 + old.0 <= 4, "over the surge: {new:?} {old:?}");
        assert!(new.1 + old.1 >= 3, "below availability: {new:?} {old:?}");
        if let Some(r) = f.d.status().rollout {
            shares.push(r.percent);
        }
    }
    // Traffic followed the ready instances: 1 of 3, 2 of 3, then all (and promoted in
    // the same step: the version was healthy).
    assert_eq!(shares, vec![33, 66]);
    assert_eq!(f.active().as_deref(), Some("1.1.0"));
    assert_eq!(f.fleet.get("1.0.0"), (0, 0));
    assert_eq!(f.fleet.get("1.1.0"), (3, 3));
    let batches = f
        .events()
        .into_iter()
        .filter(|(v, k)| v == "1.1.0" && matches!(k, EventKind::StageAdvanced { .. }))
        .count();
    assert_eq!(batches, 3);
}

#[tokio::test]
async fn a_rolling_update_that_makes_no_progress_is_rolled_back_and_scaled_back() {
    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.fleet.set("1.0.0", 4, 4);
    f.stage("1.1.0").await;
    let rolling = Rolling::new(4).with_progress_deadline(120 * SEC);
    f.d.deploy("1.1.0", Strategy::Rolling(rolling))
        .await
        .unwrap();
    assert_eq!(
        f.fleet.get("1.1.0").0,
        2,
        "25% surge and 25% unavailable of 4"
    );
    f.wait(119 * SEC).await;
    assert_eq!(f.state("1.1.0"), VersionState::RollingOut { percent: 0 });
    f.wait(SEC).await;
    assert_eq!(f.state("1.1.0"), VersionState::RolledBack);
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    assert_eq!(
        f.fleet.get("1.0.0").0,
        4,
        "the old version is scaled back up"
    );
    assert_eq!(f.fleet.get("1.1.0").0, 0, "the new version is scaled away");
}

#[tokio::test]
async fn a_rolling_update_needs_instances() {
    let f = fixture_with(|b| b);
    let d: polyglot_hotswap::Deployer<Pool> = polyglot_hotswap::Deployer::builder()
        .clock(f.clock.clone())
        .build();
    d.stage("1", pool("1"), Default::default()).await.unwrap();
    let e = d.deploy("1", Strategy::rolling(2)).await.unwrap_err();
    assert!(matches!(e, DeployError::NoInstances { .. }), "{e}");
}

#[tokio::test]
async fn a_smoke_check_failing_before_traffic_fails_the_deployment_with_the_mismatch() {
    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.smoke.fail("1.1.0", SmokePhase::BeforeTraffic);
    let e =
        f.d.deploy("1.1.0", Strategy::canary(&[10, 100], 30 * SEC))
            .await
            .unwrap_err();
    assert!(matches!(e, DeployError::SmokeFailed { .. }), "{e}");
    let VersionState::Failed { reason } = f.state("1.1.0") else {
        panic!()
    };
    assert_eq!(
        reason,
        "smoke check \"echo\" of 1.1.0 failed before traffic: echo(\"hi\"): expected \"hi\", got \"HI\""
    );
    assert_eq!(f.serve(200), HashMap::from([("1.0.0".to_string(), 200)]));
}

#[tokio::test]
async fn a_smoke_check_failing_after_promotion_rolls_back() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.smoke.fail("1.1.0", SmokePhase::AfterPromotion);
    let e =
        f.d.deploy("1.1.0", Strategy::blue_green(30 * SEC))
            .await
            .unwrap_err();
    assert!(
        matches!(
            &e,
            DeployError::SmokeFailed {
                phase: SmokePhase::AfterPromotion,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    assert_eq!(f.state("1.1.0"), VersionState::RolledBack);
    assert!(f.events().iter().any(|(_, k)| matches!(k,
        EventKind::RolledBack { reason, .. } if reason.contains("expected \"hi\", got \"HI\""))));
    // Both checks ran, in order.
    let runs = f.smoke.runs.lock().unwrap().clone();
    assert!(runs.ends_with(&[
        ("1.1.0".into(), SmokePhase::BeforeTraffic),
        ("1.1.0".into(), SmokePhase::AfterPromotion)
    ]));
}
