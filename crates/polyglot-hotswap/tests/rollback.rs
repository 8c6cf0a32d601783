//! Rollbacks go to the last version known healthy, checked warm first; a broken one is
//! skipped or refused; a fix can be deployed over an unhealthy version.

mod support;

use polyglot_hotswap::{DeployError, EventKind, HealthMark, RollbackTo, Strategy, VersionState};
use support::*;

/// 1.0.0 healthy, then 1.1.0 active and turned unhealthy (1.0.0 superseded, retained).
async fn healthy_then_unhealthy() -> Fixture {
    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::immediate()).await.unwrap();
    f.calls("1.1.0", 10, 10);
    f.d.tick().await;
    assert!(matches!(
        f.d.version("1.1.0").unwrap().health,
        HealthMark::Unhealthy { .. }
    ));
    f
}

#[tokio::test]
async fn a_failed_deployment_rolls_back_to_the_last_version_known_healthy() {
    let mut f = healthy_then_unhealthy().await;
    f.stage("1.2.0").await;
    f.d.deploy("1.2.0", Strategy::canary(&[10, 100], 30 * SEC))
        .await
        .unwrap();
    f.calls("1.2.0", 0, 10);
    f.d.tick().await;
    // Not 1.1.0, active when the deployment started but unhealthy: 1.0.0.
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    assert_eq!(f.state("1.2.0"), VersionState::RolledBack);
    assert_eq!(f.state("1.1.0"), VersionState::Superseded);
    assert_eq!(f.state("1.0.0"), VersionState::Active);
    // It was warm-checked before it took the traffic.
    assert_eq!(f.hooks.warmed.lock().unwrap().last().unwrap(), "1.0.0");
    assert!(f.events().iter().any(
        |(v, k)| v == "1.2.0" && matches!(k, EventKind::RolledBack { to, .. } if to == "1.0.0")
    ));
}

#[tokio::test]
async fn a_broken_rollback_target_is_refused_and_the_traffic_returns_where_it_was() {
    let mut f = healthy_then_unhealthy().await;
    f.hooks.break_version("1.0.0");
    f.stage("1.2.0").await;
    f.d.deploy("1.2.0", Strategy::canary(&[10, 100], 30 * SEC))
        .await
        .unwrap();
    f.calls("1.2.0", 0, 10);
    f.d.tick().await;
    // 1.0.0 failed its warm check: refused, and now known unhealthy.
    let ev = f.events();
    assert!(ev.iter().any(|(v, k)| v == "1.0.0"
        && matches!(k, EventKind::RollbackRefused { reason } if reason.contains("does not answer $health"))));
    assert!(matches!(
        f.d.version("1.0.0").unwrap().health,
        HealthMark::Unhealthy { .. }
    ));
    // No healthy target: the deployment is aborted, the traffic back on 1.1.0.
    assert_eq!(f.active().as_deref(), Some("1.1.0"));
    let VersionState::Failed { reason } = f.state("1.2.0") else {
        panic!("{:?}", f.state("1.2.0"))
    };
    assert!(
        reason.contains("no version known healthy could take the traffic (refused: 1.0.0: the warm check of 1.0.0 failed: 1.0.0 does not answer $health)"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_manual_rollback_without_a_target_changes_nothing_and_says_what_to_do() {
    let f = fixture();
    f.stage("1.0.0").await;
    f.d.deploy("1.0.0", Strategy::immediate()).await.unwrap();
    // 1.0.0 was never judged: not known healthy.
    f.stage("1.1.0").await;
    f.d.deploy("1.1.0", Strategy::canary(&[50, 100], 30 * SEC))
        .await
        .unwrap();
    let e =
        f.d.rollback(RollbackTo::Previous, "looks wrong")
            .await
            .unwrap_err();
    assert!(matches!(e, DeployError::NoRollbackTarget { .. }));
    assert_eq!(
        e.to_string(),
        "cannot roll back 1.1.0: no version known healthy could take the traffic; \
         abort() returns the traffic to 1.0.0, the version active before this deployment"
    );
    assert_eq!(f.state("1.1.0"), VersionState::RollingOut { percent: 50 });
    f.d.abort("looks wrong").await.unwrap();
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    assert_eq!(
        f.state("1.1.0"),
        VersionState::Failed {
            reason: "aborted: looks wrong".into()
        }
    );
}

#[tokio::test]
async fn rolling_back_the_active_version_goes_to_the_previous_healthy_one() {
    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.activate_healthy("1.1.0").await;
    let to =
        f.d.rollback(RollbackTo::Previous, "bad data")
            .await
            .unwrap();
    assert_eq!(to, "1.0.0");
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    assert_eq!(f.state("1.1.0"), VersionState::RolledBack);
    // And back again: 1.1.0 was rolled back, so it is no candidate.
    let e =
        f.d.rollback(RollbackTo::Previous, "again")
            .await
            .unwrap_err();
    assert!(matches!(e, DeployError::NoRollbackTarget { .. }), "{e}");
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
}

#[tokio::test]
async fn a_released_version_is_revived_and_warmed_before_it_takes_traffic_back() {
    let f = fixture();
    f.activate_healthy("1.0.0").await;
    f.activate_healthy("1.1.0").await;
    f.wait(60 * SEC).await;
    assert_eq!(f.hooks.released(), vec!["1.0.0"]);

    // Released and not revivable: refused, nothing changes.
    let e = f.d.rollback(RollbackTo::Previous, "bad").await.unwrap_err();
    assert!(
        e.to_string()
            .contains("1.0.0: it was released and was not revived: its module folder is gone"),
        "{e}"
    );
    assert_eq!(f.state("1.1.0"), VersionState::Active);

    f.hooks.allow_revival("1.0.0");
    f.d.rollback(RollbackTo::Previous, "bad").await.unwrap();
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
    assert_eq!(
        f.d.active().unwrap().generation,
        1,
        "the revived value serves"
    );
    assert_eq!(f.hooks.revived.lock().unwrap().clone(), vec!["1.0.0"]);
    assert_eq!(f.hooks.warmed.lock().unwrap().last().unwrap(), "1.0.0");
}

#[tokio::test]
async fn a_named_target_known_unhealthy_is_refused() {
    let f = healthy_then_unhealthy().await;
    f.activate_healthy("1.2.0").await;
    let e =
        f.d.rollback(RollbackTo::Version("1.1.0".into()), "try 1.1")
            .await
            .unwrap_err();
    assert!(matches!(e, DeployError::RollbackRefused { .. }));
    assert!(
        e.to_string().starts_with(
            "cannot roll back to 1.1.0: it was judged unhealthy: unhealthy: 10 of 20 calls failed"
        ),
        "{e}"
    );
    let e =
        f.d.rollback(RollbackTo::Version("9.9.9".into()), "x")
            .await
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot roll back version 9.9.9: no such version is known"
    );
    // 1.0.0 by name works (still retained).
    let to =
        f.d.rollback(RollbackTo::Version("1.0.0".into()), "go back two")
            .await
            .unwrap();
    assert_eq!(to, "1.0.0");
}

#[tokio::test]
async fn a_fix_deploys_while_the_active_version_is_unhealthy() {
    let mut f = fixture();
    f.stage("1.0.0").await;
    f.d.deploy("1.0.0", Strategy::immediate()).await.unwrap();
    f.calls("1.0.0", 0, 30);
    f.d.tick().await;
    assert!(f
        .events()
        .iter()
        .any(|(v, k)| v == "1.0.0" && matches!(k, EventKind::HealthFailed { .. })));

    f.stage("1.0.1").await;
    f.d.deploy("1.0.1", Strategy::canary(&[50, 100], 10 * SEC))
        .await
        .unwrap();
    for _ in 0..2 {
        f.serve(100);
        // The broken active version keeps failing; only the fix is judged for the stage.
        f.calls("1.0.0", 0, 10);
        f.wait(10 * SEC).await;
    }
    assert_eq!(f.active().as_deref(), Some("1.0.1"));
    assert_eq!(f.state("1.0.0"), VersionState::Superseded);
}

#[tokio::test]
async fn health_failed_is_sent_once_per_unhealthy_streak() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.calls("1.0.0", 0, 20);
    for _ in 0..3 {
        f.d.tick().await;
    }
    let failed = f
        .events()
        .into_iter()
        .filter(|(_, k)| matches!(k, EventKind::HealthFailed { .. }))
        .count();
    assert_eq!(failed, 1);
    // No deployment in progress: reported, not rolled back.
    assert_eq!(f.active().as_deref(), Some("1.0.0"));
}

#[tokio::test]
async fn a_previous_version_failing_its_warm_check_is_skipped_for_an_older_healthy_one() {
    let mut f = fixture();
    f.activate_healthy("1.0.0").await;
    f.activate_healthy("1.1.0").await;
    f.activate_healthy("1.2.0").await;
    f.hooks.break_version("1.1.0");
    let to = f.d.rollback(RollbackTo::Previous, "bad").await.unwrap();
    assert_eq!(to, "1.0.0");
    let ev = f.events();
    let refused: Vec<_> = ev
        .iter()
        .filter(|(_, k)| matches!(k, EventKind::RollbackRefused { .. }))
        .map(|(v, _)| v.as_str())
        .collect();
    assert_eq!(refused, vec!["1.1.0"]);
    let warmed = f.hooks.warmed.lock().unwrap().clone();
    assert!(
        warmed.ends_with(&["1.1.0".into(), "1.0.0".into()]),
        "{warmed:?}"
    );
    assert_eq!(f.state("1.2.0"), VersionState::RolledBack);
    assert_eq!(f.state("1.1.0"), VersionState::Superseded);
}
