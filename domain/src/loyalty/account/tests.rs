//! Given/when/then over the loyalty account's pure `decide`.

use super::*;
use chrono::TimeZone;

fn at(days: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).single().expect("time") + Duration::days(days)
}

fn account_id() -> Uuid {
    Uuid::from_u128(1)
}

fn settings() -> LoyaltySettings {
    LoyaltySettings {
        welcome_bonus_points: 100,
        referrer_reward_points: 50,
        referred_reward_points: 25,
        ..LoyaltySettings::default()
    }
}

fn open(referred_by: Option<Uuid>, settings: LoyaltySettings) -> LoyaltyCommand {
    LoyaltyCommand::OpenAccount {
        account_id: account_id(),
        tenant_id: TenantId(Uuid::from_u128(9)),
        customer_ref: Sealed("x8v1.customer".into()),
        referral_code: "ABCD1234".into(),
        referred_by,
        settings,
        at: at(0),
    }
}

/// Runs `commands` from an empty account, failing on any refusal.
fn given(commands: Vec<LoyaltyCommand>) -> LoyaltyAccount {
    let mut account = LoyaltyAccount::default();
    for command in commands {
        let events = account.decide(command).expect("given command accepted");
        events.into_iter().for_each(|e| account.apply(e));
    }
    account
}

fn when(
    account: &mut LoyaltyAccount,
    command: LoyaltyCommand,
) -> Result<Vec<LoyaltyEvent>, LoyaltyError> {
    let events = account.decide(command)?;
    events.iter().cloned().for_each(|e| account.apply(e));
    Ok(events)
}

fn purchase(
    reference: &str,
    amount_minor: i64,
    settings: LoyaltySettings,
    day: i64,
) -> LoyaltyCommand {
    LoyaltyCommand::AccruePurchase {
        reference: reference.into(),
        amount: Money::positive(amount_minor, "usd").expect("money"),
        settings,
        at: at(day),
    }
}

fn redeem(reference: &str, points: i64, day: i64) -> LoyaltyCommand {
    LoyaltyCommand::Redeem {
        reference: reference.into(),
        points,
        at: at(day),
    }
}

#[test]
fn opening_grants_the_welcome_bonus_once() {
    let mut account = given(vec![open(None, settings())]);
    assert_eq!(account.balance(), 100);
    assert_eq!(
        when(&mut account, open(None, settings())),
        Err(LoyaltyError::AlreadyOpen)
    );
    assert_eq!(account.balance(), 100);
}

#[test]
fn a_referred_customer_gets_its_reward_and_cannot_refer_itself() {
    let referrer = Uuid::from_u128(2);
    let account = given(vec![open(Some(referrer), settings())]);
    assert_eq!(account.balance(), 125);
    assert_eq!(
        LoyaltyAccount::default().decide(open(Some(account_id()), settings())),
        Err(LoyaltyError::SelfReferral)
    );
}

#[test]
fn the_referrer_is_rewarded_once_per_referred_account() {
    let mut account = given(vec![open(None, settings())]);
    let reward = |referred| LoyaltyCommand::RewardReferral {
        referred_account: referred,
        points: 50,
        expiry_days: None,
        at: at(1),
    };
    assert_eq!(
        when(&mut account, reward(Uuid::from_u128(3))).map(|e| e.len()),
        Ok(1)
    );
    assert_eq!(when(&mut account, reward(Uuid::from_u128(3))), Ok(vec![]));
    assert_eq!(
        when(&mut account, reward(account_id())),
        Err(LoyaltyError::SelfReferral)
    );
    assert_eq!(account.balance(), 150);
}

#[test]
fn a_purchase_accrues_its_cashback_once() {
    let mut account = given(vec![open(None, LoyaltySettings::default())]);
    when(
        &mut account,
        purchase("p-1", 10_000, LoyaltySettings::default(), 1),
    )
    .expect("accrued");
    assert_eq!(account.balance(), 5, "5 % of 100.00 = 5 points");
    assert_eq!(
        when(
            &mut account,
            purchase("p-1", 10_000, LoyaltySettings::default(), 1)
        ),
        Ok(vec![])
    );
    when(
        &mut account,
        purchase("p-2", 1_999, LoyaltySettings::default(), 1),
    )
    .expect("recorded");
    assert_eq!(
        account.balance(),
        5,
        "99.95 cents of cashback round down to 0"
    );
}

#[test]
fn a_redemption_never_overdraws_and_is_idempotent() {
    let mut account = given(vec![open(None, settings())]);
    assert_eq!(
        when(&mut account, redeem("r-1", 101, 1)),
        Err(LoyaltyError::InsufficientPoints {
            balance: 100,
            requested: 101
        })
    );
    assert_eq!(
        when(&mut account, redeem("r-1", 0, 1)),
        Err(LoyaltyError::InvalidPoints)
    );
    when(&mut account, redeem("r-1", 60, 1)).expect("spent");
    assert_eq!(
        when(&mut account, redeem("r-1", 60, 1)),
        Ok(vec![]),
        "same reference"
    );
    assert_eq!(account.balance(), 40);
    when(&mut account, redeem("r-2", 40, 1)).expect("spent");
    assert_eq!(account.balance(), 0);
}

#[test]
fn a_refund_after_spending_reverses_what_is_left_and_records_the_shortfall() {
    let mut account = given(vec![
        open(None, LoyaltySettings::default()),
        purchase("p-1", 100_000, LoyaltySettings::default(), 1),
    ]);
    assert_eq!(account.balance(), 50);
    when(&mut account, redeem("r-1", 30, 2)).expect("spent");
    let events = when(
        &mut account,
        LoyaltyCommand::ReversePurchase {
            purchase_reference: "p-1".into(),
            at: at(3),
        },
    )
    .expect("reversed");
    assert_eq!(
        events,
        vec![LoyaltyEvent::PurchaseReversed {
            purchase_reference: "p-1".into(),
            points_reversed: 20,
            shortfall: 30,
            at: at(3),
        }]
    );
    assert_eq!(account.balance(), 0, "never negative");
    let again = LoyaltyCommand::ReversePurchase {
        purchase_reference: "p-1".into(),
        at: at(4),
    };
    assert_eq!(when(&mut account, again), Ok(vec![]));
    let unknown = LoyaltyCommand::ReversePurchase {
        purchase_reference: "p-9".into(),
        at: at(4),
    };
    assert_eq!(
        when(&mut account, unknown),
        Err(LoyaltyError::UnknownPurchase("p-9".into()))
    );
}

#[test]
fn spending_takes_the_earliest_expiring_points_first() {
    let expiring = LoyaltySettings {
        expiry_days: Some(30),
        ..LoyaltySettings::default()
    };
    let mut account = given(vec![
        open(None, LoyaltySettings::default()),
        purchase("forever", 20_000, LoyaltySettings::default(), 0),
        purchase("soon", 20_000, expiring, 0),
    ]);
    when(&mut account, redeem("r-1", 10, 1)).expect("spent");
    // The expiring transfer was spent, so nothing is left to expire.
    let expired = when(&mut account, LoyaltyCommand::ExpirePoints { at: at(31) }).expect("swept");
    assert_eq!(expired, vec![]);
    assert_eq!(account.balance(), 10);
}

#[test]
fn expiry_voids_a_transfer_once_and_expired_points_cannot_be_spent() {
    let expiring = LoyaltySettings {
        expiry_days: Some(30),
        ..LoyaltySettings::default()
    };
    let mut account = given(vec![
        open(None, LoyaltySettings::default()),
        purchase("p-1", 20_000, expiring, 0),
    ]);
    assert_eq!(
        when(&mut account, redeem("r-1", 10, 30)),
        Err(LoyaltyError::InsufficientPoints {
            balance: 0,
            requested: 10
        })
    );
    assert_eq!(
        when(&mut account, LoyaltyCommand::ExpirePoints { at: at(29) }),
        Ok(vec![])
    );
    let events = when(&mut account, LoyaltyCommand::ExpirePoints { at: at(30) }).expect("swept");
    assert_eq!(events.len(), 1);
    assert_eq!(
        when(&mut account, LoyaltyCommand::ExpirePoints { at: at(31) }),
        Ok(vec![]),
        "twice"
    );
    assert_eq!(account.balance(), 0);
}

#[test]
fn nps_is_zero_to_ten_and_the_latest_counts() {
    let mut account = given(vec![open(None, settings())]);
    when(
        &mut account,
        LoyaltyCommand::RateNps {
            score: 3,
            at: at(1),
        },
    )
    .expect("rated");
    when(
        &mut account,
        LoyaltyCommand::RateNps {
            score: 9,
            at: at(2),
        },
    )
    .expect("rated");
    assert_eq!(account.nps(), Some(9));
    assert_eq!(
        when(
            &mut account,
            LoyaltyCommand::RateNps {
                score: 11,
                at: at(3)
            }
        ),
        Err(LoyaltyError::InvalidScore)
    );
}

#[test]
fn commands_on_an_unopened_account_are_refused() {
    assert_eq!(
        LoyaltyAccount::default().decide(redeem("r", 1, 0)),
        Err(LoyaltyError::NotFound)
    );
}

#[test]
fn a_reference_reused_for_another_amount_is_refused_and_changes_nothing() {
    let mut account = given(vec![
        open(None, settings()),
        purchase("p-1", 10_000, settings(), 1),
        redeem("r-1", 10, 1),
    ]);
    assert_eq!(
        when(&mut account, purchase("p-1", 20_000, settings(), 1)),
        Err(LoyaltyError::ReferenceReused("p-1".into()))
    );
    assert_eq!(
        when(&mut account, redeem("r-1", 11, 1)),
        Err(LoyaltyError::ReferenceReused("r-1".into()))
    );
    assert_eq!(account.balance(), 100 + 5 - 10);
    assert_eq!(account.accrued("p-1"), Some(5));
    assert_eq!(account.accrued("p-2"), None);
}

#[test]
fn a_purchase_named_like_a_grant_never_touches_the_grant() {
    let mut account = given(vec![
        open(None, settings()),
        purchase("welcome", 100_000, settings(), 1),
    ]);
    let events = when(
        &mut account,
        LoyaltyCommand::ReversePurchase {
            purchase_reference: "welcome".into(),
            at: at(2),
        },
    )
    .expect("refunded");
    assert!(matches!(
        events.as_slice(),
        [LoyaltyEvent::PurchaseReversed {
            points_reversed: 50,
            shortfall: 0,
            ..
        }]
    ));
    assert_eq!(account.balance(), 100, "the welcome bonus stays");
}

#[test]
fn closing_voids_every_point_left_and_refuses_what_follows() {
    // given an account with its welcome bonus and a purchase
    let mut account = given(vec![
        open(None, settings()),
        purchase("p1", 10_000, settings(), 1),
    ]);
    let balance = account.balance();
    assert!(balance > 0);

    // when it is closed
    let closed = when(&mut account, LoyaltyCommand::CloseAccount { at: at(2) });

    // then its balance is voided once, and nothing more is accepted
    assert_eq!(
        closed,
        Ok(vec![LoyaltyEvent::LoyaltyAccountClosed {
            points_voided: balance,
            at: at(2),
        }])
    );
    assert_eq!(account.balance(), 0);
    assert_eq!(
        when(&mut account, LoyaltyCommand::CloseAccount { at: at(3) }),
        Ok(vec![])
    );
    assert_eq!(
        when(&mut account, redeem("r1", 1, 3)),
        Err(LoyaltyError::Closed)
    );
}

#[test]
fn a_customer_reference_is_checked_before_it_is_sealed() {
    assert_eq!(
        parse_customer_ref(" +381601234567 "),
        Ok("+381601234567".into())
    );
    assert_eq!(
        parse_customer_ref(" "),
        Err(LoyaltyError::InvalidReference("customer_ref"))
    );
    assert_eq!(
        parse_customer_ref(&"9".repeat(MAX_REFERENCE + 1)),
        Err(LoyaltyError::InvalidReference("customer_ref"))
    );
}
