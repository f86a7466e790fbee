//! Given/when/then tests of every tenant rule.

use super::*;
use crate::{Plan, Sealed, TenantId, UserId};
use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type TenantTest = TestFramework<Tenant>;

fn tenant_id() -> TenantId {
    TenantId(Uuid::from_u128(1))
}
fn owner() -> UserId {
    UserId(Uuid::from_u128(2))
}
fn manager(n: u128) -> UserId {
    UserId(Uuid::from_u128(100 + n))
}
fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
}
fn register() -> TenantCommand {
    TenantCommand::RegisterTenant {
        tenant_id: tenant_id(),
        name: Sealed("x8v1.sealed-name".into()),
        owner_user_id: owner(),
        owner_email: Sealed("x8v1.sealed-owner".into()),
        registered_at: at(),
    }
}
fn registered() -> TenantEvent {
    TenantEvent::TenantRegistered {
        tenant_id: tenant_id(),
        name: Sealed("x8v1.sealed-name".into()),
        owner_user_id: owner(),
        owner_email: Sealed("x8v1.sealed-owner".into()),
        plan: Plan::Free,
        subscription_status: SubscriptionStatus::Trialing,
        channel_limit: 1,
        registered_at: at(),
        trial_ends_at: at() + Duration::days(7),
    }
}

#[test]
fn registering_starts_a_seven_day_trial_with_one_channel() {
    TenantTest::with(())
        .given_no_previous_events()
        .when(register())
        .then_expect_events(vec![registered()]);
}

#[test]
fn registering_twice_is_refused() {
    TenantTest::with(())
        .given(vec![registered()])
        .when(register())
        .then_expect_error(TenantError::AlreadyRegistered {
            tenant: tenant_id(),
        });
}

#[test]
fn a_name_is_trimmed_and_a_blank_or_overlong_one_refused_before_sealing() {
    assert_eq!(parse_name(" Acme Bakery ").unwrap(), "Acme Bakery");
    assert_eq!(parse_name("   "), Err(TenantError::InvalidName));
    assert_eq!(parse_name(&"x".repeat(201)), Err(TenantError::InvalidName));
}

#[test]
fn commands_on_an_unregistered_business_are_refused() {
    TenantTest::with(())
        .given_no_previous_events()
        .when(TenantCommand::AssignManager {
            manager_id: manager(1),
        })
        .then_expect_error(TenantError::NotRegistered);
}

#[test]
fn a_manager_is_assigned_to_a_business_without_one() {
    TenantTest::with(())
        .given(vec![registered()])
        .when(TenantCommand::AssignManager {
            manager_id: manager(1),
        })
        .then_expect_events(vec![TenantEvent::ManagerAssigned {
            manager_id: manager(1),
        }]);
}

#[test]
fn assigning_a_second_manager_is_refused_naming_the_current_one() {
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::ManagerAssigned {
                manager_id: manager(1),
            },
        ])
        .when(TenantCommand::AssignManager {
            manager_id: manager(2),
        })
        .then_expect_error(TenantError::ManagerAlreadyAssigned {
            tenant: tenant_id(),
            manager: manager(1),
        });
}

#[test]
fn assigning_the_current_manager_again_changes_nothing() {
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::ManagerAssigned {
                manager_id: manager(1),
            },
        ])
        .when(TenantCommand::AssignManager {
            manager_id: manager(1),
        })
        .then_expect_events(vec![]);
}

#[test]
fn reassignment_is_one_event_from_a_to_b() {
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::ManagerAssigned {
                manager_id: manager(1),
            },
        ])
        .when(TenantCommand::ReassignManager {
            from: manager(1),
            to: manager(2),
        })
        .then_expect_events(vec![TenantEvent::ManagerReassigned {
            from: manager(1),
            to: manager(2),
        }]);
}

#[test]
fn reassignment_from_a_manager_that_is_not_current_is_refused() {
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::ManagerAssigned {
                manager_id: manager(1),
            },
        ])
        .when(TenantCommand::ReassignManager {
            from: manager(3),
            to: manager(2),
        })
        .then_expect_error(TenantError::ManagerMismatch {
            tenant: tenant_id(),
            expected: manager(3),
            current: Some(manager(1)),
        });
}

#[test]
fn unassigning_removes_the_manager() {
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::ManagerAssigned {
                manager_id: manager(1),
            },
        ])
        .when(TenantCommand::UnassignManager)
        .then_expect_events(vec![TenantEvent::ManagerUnassigned {
            manager_id: manager(1),
        }]);
}

#[test]
fn unassigning_without_a_manager_is_refused() {
    TenantTest::with(())
        .given(vec![registered()])
        .when(TenantCommand::UnassignManager)
        .then_expect_error(TenantError::NoManagerAssigned {
            tenant: tenant_id(),
        });
}

#[test]
fn after_unassignment_a_new_manager_can_be_assigned() {
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::ManagerAssigned {
                manager_id: manager(1),
            },
            TenantEvent::ManagerUnassigned {
                manager_id: manager(1),
            },
        ])
        .when(TenantCommand::AssignManager {
            manager_id: manager(2),
        })
        .then_expect_events(vec![TenantEvent::ManagerAssigned {
            manager_id: manager(2),
        }]);
}

#[test]
fn suspending_twice_is_refused() {
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::TenantSuspended {
                reason: "fraud".into(),
            },
        ])
        .when(TenantCommand::SuspendTenant {
            reason: "again".into(),
        })
        .then_expect_error(TenantError::AlreadySuspended {
            tenant: tenant_id(),
        });
}

#[test]
fn a_business_is_suspended() {
    TenantTest::with(())
        .given(vec![registered()])
        .when(TenantCommand::SuspendTenant {
            reason: "fraud".into(),
        })
        .then_expect_events(vec![TenantEvent::TenantSuspended {
            reason: "fraud".into(),
        }]);
}

#[test]
fn an_ended_trial_expires_at_its_end() {
    TenantTest::with(())
        .given(vec![registered()])
        .when(TenantCommand::ExpireTrial {
            at: at() + Duration::days(7) + Duration::seconds(3),
        })
        .then_expect_events(vec![TenantEvent::TrialExpired {
            expired_at: at() + Duration::days(7),
        }]);
}

#[test]
fn a_trial_does_not_expire_before_its_end() {
    TenantTest::with(())
        .given(vec![registered()])
        .when(TenantCommand::ExpireTrial {
            at: at() + Duration::days(6),
        })
        .then_expect_error(TenantError::TrialNotOver {
            tenant: tenant_id(),
            ends_at: at() + Duration::days(7),
        });
}

#[test]
fn an_expired_trial_expires_once() {
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::TrialExpired {
                expired_at: at() + Duration::days(7),
            },
        ])
        .when(TenantCommand::ExpireTrial {
            at: at() + Duration::days(8),
        })
        .then_expect_events(vec![]);
}

#[test]
fn company_codes_are_allocated_in_order() {
    let company = uuid::Uuid::from_u128(77);
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::CompanyCodeAllocated {
                company_id: uuid::Uuid::from_u128(76),
                position: 1,
                code: "COMP001".into(),
            },
        ])
        .when(TenantCommand::AllocateCompanyCode {
            company_id: company,
        })
        .then_expect_events(vec![TenantEvent::CompanyCodeAllocated {
            company_id: company,
            position: 2,
            code: "COMP002".into(),
        }]);
}

// --- Plans and channel slots (DOMAIN.md "Tenant lifecycle and plans") ---

fn channel(n: u128) -> Uuid {
    Uuid::from_u128(1000 + n)
}
fn reserved(n: u128, used: u32) -> TenantEvent {
    TenantEvent::ChannelSlotReserved {
        channel_id: channel(n),
        channels_used: used,
    }
}
fn on_plan(plan: Plan, limit: Option<u32>, used: u32) -> TenantEvent {
    TenantEvent::PlanChanged {
        plan,
        channel_limit: limit,
        subscription_status: SubscriptionStatus::Active,
        origin: PlanChangeOrigin::Admin,
        channels_used: used,
        over_limit: false,
        observed_at: None,
    }
}
fn double_with_two_channels() -> Vec<TenantEvent> {
    vec![
        registered(),
        on_plan(Plan::Double, Some(2), 0),
        reserved(1, 1),
        reserved(2, 2),
    ]
}

#[test]
fn a_trial_reserves_its_one_channel() {
    TenantTest::with(())
        .given(vec![registered()])
        .when(TenantCommand::ReserveChannelSlot {
            channel_id: channel(1),
        })
        .then_expect_events(vec![reserved(1, 1)]);
}

#[test]
fn a_second_channel_in_the_trial_is_over_the_limit() {
    TenantTest::with(())
        .given(vec![registered(), reserved(1, 1)])
        .when(TenantCommand::ReserveChannelSlot {
            channel_id: channel(2),
        })
        .then_expect_error(TenantError::OverChannelLimit {
            tenant: tenant_id(),
            limit: 1,
            used: 1,
            remove: vec![channel(1)],
        });
}

#[test]
fn reserving_a_held_slot_again_changes_nothing() {
    TenantTest::with(())
        .given(vec![registered(), reserved(1, 1)])
        .when(TenantCommand::ReserveChannelSlot {
            channel_id: channel(1),
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_expired_trial_restricts_new_channels() {
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::TrialExpired {
                expired_at: at() + Duration::days(7),
            },
        ])
        .when(TenantCommand::ReserveChannelSlot {
            channel_id: channel(1),
        })
        .then_expect_error(TenantError::ChannelsRestricted {
            tenant: tenant_id(),
            status: SubscriptionStatus::Expired,
        });
}

#[test]
fn a_suspended_business_connects_nothing() {
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::TenantSuspended {
                reason: "fraud".into(),
            },
        ])
        .when(TenantCommand::ReserveChannelSlot {
            channel_id: channel(1),
        })
        .then_expect_error(TenantError::Suspended {
            tenant: tenant_id(),
        });
}

#[test]
fn releasing_a_slot_makes_room() {
    TenantTest::with(())
        .given(double_with_two_channels())
        .when(TenantCommand::ReleaseChannelSlot {
            channel_id: channel(1),
        })
        .then_expect_events(vec![TenantEvent::ChannelSlotReleased {
            channel_id: channel(1),
            channels_used: 1,
            over_limit: false,
        }]);
}

#[test]
fn releasing_a_free_slot_changes_nothing() {
    TenantTest::with(())
        .given(double_with_two_channels())
        .when(TenantCommand::ReleaseChannelSlot {
            channel_id: channel(9),
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_admin_upgrade_raises_the_limit_at_once() {
    let mut events = double_with_two_channels();
    events.push(on_plan(Plan::Growth, Some(4), 2));
    TenantTest::with(())
        .given(events)
        .when(TenantCommand::ReserveChannelSlot {
            channel_id: channel(3),
        })
        .then_expect_events(vec![reserved(3, 3)]);
}

#[test]
fn an_admin_sets_any_plan_and_activates_it() {
    TenantTest::with(())
        .given(vec![registered()])
        .when(TenantCommand::SetPlan {
            plan: Plan::Enterprise,
            channel_limit: None,
        })
        .then_expect_events(vec![on_plan(Plan::Enterprise, None, 0)]);
}

#[test]
fn special_needs_a_channel_limit_from_the_admin() {
    TenantTest::with(())
        .given(vec![registered()])
        .when(TenantCommand::SetPlan {
            plan: Plan::Special,
            channel_limit: None,
        })
        .then_expect_error(TenantError::ChannelLimitRequired {
            plan: Plan::Special,
        });
}

#[test]
fn a_business_downgrade_is_refused_while_over_the_new_limit_naming_the_excess() {
    TenantTest::with(())
        .given(double_with_two_channels())
        .when(TenantCommand::RequestDowngrade { plan: Plan::Single })
        .then_expect_error(TenantError::OverChannelLimit {
            tenant: tenant_id(),
            limit: 1,
            used: 2,
            remove: vec![channel(2)],
        });
}

#[test]
fn a_business_downgrade_that_fits_is_recorded() {
    let mut events = double_with_two_channels();
    events.push(TenantEvent::ChannelSlotReleased {
        channel_id: channel(2),
        channels_used: 1,
        over_limit: false,
    });
    TenantTest::with(())
        .given(events)
        .when(TenantCommand::RequestDowngrade { plan: Plan::Single })
        .then_expect_events(vec![TenantEvent::PlanChanged {
            plan: Plan::Single,
            channel_limit: Some(1),
            subscription_status: SubscriptionStatus::Active,
            origin: PlanChangeOrigin::Business,
            channels_used: 1,
            over_limit: false,
            observed_at: None,
        }]);
}

#[test]
fn a_business_cannot_upgrade_itself() {
    TenantTest::with(())
        .given(vec![registered()])
        .when(TenantCommand::RequestDowngrade { plan: Plan::Double })
        .then_expect_error(TenantError::UpgradeRequiresCheckout {
            from: Plan::Free,
            to: Plan::Double,
        });
}

#[test]
fn a_business_cannot_pick_a_custom_plan() {
    TenantTest::with(())
        .given(double_with_two_channels())
        .when(TenantCommand::RequestDowngrade {
            plan: Plan::Special,
        })
        .then_expect_error(TenantError::CustomPlan {
            plan: Plan::Special,
        });
}

#[test]
fn a_provider_downgrade_is_recorded_over_the_limit_and_blocks_new_channels() {
    let downgrade = TenantEvent::PlanChanged {
        plan: Plan::Single,
        channel_limit: Some(1),
        subscription_status: SubscriptionStatus::Active,
        origin: PlanChangeOrigin::Provider,
        channels_used: 2,
        over_limit: true,
        observed_at: None,
    };
    TenantTest::with(())
        .given(double_with_two_channels())
        .when(TenantCommand::RecordPlanChange {
            plan: Some(Plan::Single),
            channel_limit: None,
            subscription_status: SubscriptionStatus::Active,
            observed_at: None,
        })
        .then_expect_events(vec![downgrade.clone()]);
    let mut events = double_with_two_channels();
    events.push(downgrade);
    TenantTest::with(())
        .given(events)
        .when(TenantCommand::ReserveChannelSlot {
            channel_id: channel(3),
        })
        .then_expect_error(TenantError::OverChannelLimit {
            tenant: tenant_id(),
            limit: 1,
            used: 2,
            remove: vec![channel(2), channel(1)],
        });
}

#[test]
fn removing_the_excess_clears_the_over_limit_flag() {
    let mut events = double_with_two_channels();
    events.push(TenantEvent::PlanChanged {
        plan: Plan::Single,
        channel_limit: Some(1),
        subscription_status: SubscriptionStatus::Active,
        origin: PlanChangeOrigin::Provider,
        channels_used: 2,
        over_limit: true,
        observed_at: None,
    });
    TenantTest::with(())
        .given(events)
        .when(TenantCommand::ReleaseChannelSlot {
            channel_id: channel(1),
        })
        .then_expect_events(vec![TenantEvent::ChannelSlotReleased {
            channel_id: channel(1),
            channels_used: 1,
            over_limit: false,
        }]);
}

#[test]
fn an_older_provider_fact_changes_nothing() {
    use chrono::TimeZone;
    let at = |s: i64| chrono::Utc.timestamp_opt(1_700_000_000 + s, 0).single();
    let mut events = double_with_two_channels();
    events.push(TenantEvent::PlanChanged {
        plan: Plan::Growth,
        channel_limit: Some(4),
        subscription_status: SubscriptionStatus::Active,
        origin: PlanChangeOrigin::Provider,
        channels_used: 2,
        over_limit: false,
        observed_at: at(10),
    });
    TenantTest::with(())
        .given(events)
        .when(TenantCommand::RecordPlanChange {
            plan: Some(Plan::Single),
            channel_limit: None,
            subscription_status: SubscriptionStatus::PastDue,
            observed_at: at(5),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_provider_fact_without_a_plan_keeps_the_plan_and_changes_the_status() {
    TenantTest::with(())
        .given(double_with_two_channels())
        .when(TenantCommand::RecordPlanChange {
            plan: None,
            channel_limit: None,
            subscription_status: SubscriptionStatus::PastDue,
            observed_at: None,
        })
        .then_expect_events(vec![TenantEvent::PlanChanged {
            plan: Plan::Double,
            channel_limit: Some(2),
            subscription_status: SubscriptionStatus::PastDue,
            origin: PlanChangeOrigin::Provider,
            channels_used: 2,
            over_limit: false,
            observed_at: None,
        }]);
}

#[test]
fn a_business_sets_its_time_zone_once() {
    let zone: crate::time_zone::TimeZone = "Europe/Kyiv".parse().expect("zone");
    TenantTest::with(())
        .given(vec![registered()])
        .when(TenantCommand::SetTimeZone {
            time_zone: zone.clone(),
        })
        .then_expect_events(vec![TenantEvent::TimeZoneChanged {
            time_zone: zone.clone(),
        }]);
    TenantTest::with(())
        .given(vec![
            registered(),
            TenantEvent::TimeZoneChanged {
                time_zone: zone.clone(),
            },
        ])
        .when(TenantCommand::SetTimeZone { time_zone: zone })
        .then_expect_events(vec![]);
}

#[test]
fn a_business_starts_in_utc() {
    TenantTest::with(())
        .given(vec![registered()])
        .when(TenantCommand::SetTimeZone {
            time_zone: crate::time_zone::TimeZone::utc(),
        })
        .then_expect_events(vec![]);
}

mod erasure {
    //! The business's hard delete: asked once, cancellable until it begins, then final.
    use super::*;

    fn erasure_id() -> Uuid {
        Uuid::from_u128(900)
    }
    fn request(grace_hours: i64) -> TenantCommand {
        TenantCommand::RequestErasure {
            erasure_id: erasure_id(),
            requested_by: owner(),
            requested_at: at(),
            not_before: at() + Duration::hours(grace_hours),
        }
    }
    fn requested(grace_hours: i64) -> TenantEvent {
        TenantEvent::TenantErasureRequested {
            erasure_id: erasure_id(),
            requested_by: owner(),
            requested_at: at(),
            not_before: at() + Duration::hours(grace_hours),
        }
    }
    fn started() -> TenantEvent {
        TenantEvent::TenantErasureStarted {
            erasure_id: erasure_id(),
            at: at() + Duration::hours(24),
        }
    }
    fn begin(hours: i64) -> TenantCommand {
        TenantCommand::BeginErasure {
            erasure_id: erasure_id(),
            at: at() + Duration::hours(hours),
        }
    }
    fn erased() -> TenantEvent {
        TenantEvent::TenantErased {
            erasure_id: erasure_id(),
            at: at() + Duration::hours(25),
        }
    }
    fn erase() -> TenantCommand {
        TenantCommand::EraseTenant {
            erasure_id: erasure_id(),
            at: at() + Duration::hours(25),
        }
    }

    #[test]
    fn an_erasure_is_requested_with_its_grace_period() {
        TenantTest::with(())
            .given(vec![registered()])
            .when(request(24))
            .then_expect_events(vec![requested(24)]);
    }

    #[test]
    fn asking_again_while_one_is_pending_changes_nothing() {
        TenantTest::with(())
            .given(vec![registered(), requested(24)])
            .when(TenantCommand::RequestErasure {
                erasure_id: Uuid::from_u128(901),
                requested_by: owner(),
                requested_at: at(),
                not_before: at(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn during_the_grace_period_the_business_still_works_and_may_cancel() {
        TenantTest::with(())
            .given(vec![registered(), requested(24)])
            .when(TenantCommand::SetTimeZone {
                time_zone: "Europe/Belgrade".parse().unwrap(),
            })
            .then_expect_events(vec![TenantEvent::TimeZoneChanged {
                time_zone: "Europe/Belgrade".parse().unwrap(),
            }]);
        TenantTest::with(())
            .given(vec![registered(), requested(24)])
            .when(TenantCommand::CancelErasure {
                cancelled_by: owner(),
                at: at() + Duration::hours(1),
            })
            .then_expect_events(vec![TenantEvent::TenantErasureCancelled {
                erasure_id: erasure_id(),
                cancelled_by: owner(),
                at: at() + Duration::hours(1),
            }]);
    }

    #[test]
    fn a_cancelled_erasure_does_not_begin() {
        let cancelled = TenantEvent::TenantErasureCancelled {
            erasure_id: erasure_id(),
            cancelled_by: owner(),
            at: at(),
        };
        TenantTest::with(())
            .given(vec![registered(), requested(24), cancelled])
            .when(begin(24))
            .then_expect_error(TenantError::NoErasurePending {
                tenant: tenant_id(),
            });
    }

    #[test]
    fn it_does_not_begin_before_the_grace_period_ends() {
        TenantTest::with(())
            .given(vec![registered(), requested(24)])
            .when(begin(23))
            .then_expect_error(TenantError::ErasureGracePeriod {
                tenant: tenant_id(),
                not_before: at() + Duration::hours(24),
            });
    }

    #[test]
    fn once_begun_it_cannot_be_cancelled_and_the_business_takes_no_commands() {
        TenantTest::with(())
            .given(vec![registered(), requested(24)])
            .when(begin(24))
            .then_expect_events(vec![started()]);
        TenantTest::with(())
            .given(vec![registered(), requested(24), started()])
            .when(TenantCommand::CancelErasure {
                cancelled_by: owner(),
                at: at() + Duration::hours(24),
            })
            .then_expect_error(TenantError::ErasureStarted {
                tenant: tenant_id(),
            });
        TenantTest::with(())
            .given(vec![registered(), requested(24), started()])
            .when(TenantCommand::AssignManager {
                manager_id: manager(1),
            })
            .then_expect_error(TenantError::Erased {
                tenant: tenant_id(),
            });
        TenantTest::with(())
            .given(vec![registered(), requested(24), started()])
            .when(begin(30))
            .then_expect_events(vec![]);
    }

    #[test]
    fn the_erasures_channel_removals_still_give_their_slots_back() {
        let channel = Uuid::from_u128(50);
        TenantTest::with(())
            .given(vec![
                registered(),
                TenantEvent::ChannelSlotReserved {
                    channel_id: channel,
                    channels_used: 1,
                },
                requested(24),
                started(),
            ])
            .when(TenantCommand::ReleaseChannelSlot {
                channel_id: channel,
            })
            .then_expect_events(vec![TenantEvent::ChannelSlotReleased {
                channel_id: channel,
                channels_used: 0,
                over_limit: false,
            }]);
    }

    #[test]
    fn erasing_needs_the_begun_erasure_and_runs_once() {
        TenantTest::with(())
            .given(vec![registered(), requested(24)])
            .when(erase())
            .then_expect_error(TenantError::ErasureMismatch {
                tenant: tenant_id(),
                erasure: erasure_id(),
            });
        TenantTest::with(())
            .given(vec![registered(), requested(24), started()])
            .when(erase())
            .then_expect_events(vec![erased()]);
        TenantTest::with(())
            .given(vec![registered(), requested(24), started(), erased()])
            .when(erase())
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_erased_business_refuses_everything_even_a_new_erasure() {
        TenantTest::with(())
            .given(vec![registered(), requested(0), started(), erased()])
            .when(request(0))
            .then_expect_error(TenantError::Erased {
                tenant: tenant_id(),
            });
        TenantTest::with(())
            .given(vec![registered(), requested(0), started(), erased()])
            .when(TenantCommand::UnassignManager)
            .then_expect_error(TenantError::Erased {
                tenant: tenant_id(),
            });
    }
}
