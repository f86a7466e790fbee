//! A business's loyalty program (one aggregate per tenant, stream id = tenant id): its
//! settings and its promotions. Accounts read the settings when a command runs; changing
//! them never rewrites past accruals.

use super::rules::LoyaltySettings;
use crate::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest points expiry: ten years.
pub const MAX_EXPIRY_DAYS: u32 = 3650;

/// A promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// Its id.
    pub promotion_id: Uuid,
    /// Shown to customers, 1 to 200 characters.
    pub title: String,
    /// From (UTC).
    pub valid_from: DateTime<Utc>,
    /// Until (UTC), after `valid_from`.
    pub valid_until: DateTime<Utc>,
    /// Uses per customer, if limited (≥ 1).
    pub per_customer_limit: Option<u32>,
}

/// What can be asked of a loyalty program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProgramCommand {
    /// Replace the settings.
    ConfigureProgram {
        /// The business.
        tenant_id: TenantId,
        /// The new settings.
        settings: LoyaltySettings,
    },
    /// Create a promotion.
    CreatePromotion {
        /// The business.
        tenant_id: TenantId,
        /// The promotion.
        promotion: Promotion,
    },
    /// Remove a promotion; removing a removed one changes nothing.
    RemovePromotion {
        /// The promotion.
        promotion_id: Uuid,
    },
}

impl ProgramCommand {
    /// The command's name, recorded in event metadata and the idempotency record.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ConfigureProgram { .. } => "ConfigureLoyaltyProgram",
            Self::CreatePromotion { .. } => "CreatePromotion",
            Self::RemovePromotion { .. } => "RemovePromotion",
        }
    }
}

/// What happened to a loyalty program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProgramEvent {
    /// The settings changed.
    LoyaltyProgramConfigured {
        /// The business.
        tenant_id: TenantId,
        /// The settings now.
        settings: LoyaltySettings,
    },
    /// A promotion was created.
    PromotionCreated {
        /// The business.
        tenant_id: TenantId,
        /// The promotion.
        promotion: Promotion,
    },
    /// A promotion was removed.
    PromotionRemoved {
        /// The promotion.
        promotion_id: Uuid,
    },
}

impl DomainEvent for ProgramEvent {
    fn event_type(&self) -> String {
        match self {
            Self::LoyaltyProgramConfigured { .. } => "LoyaltyProgramConfigured",
            Self::PromotionCreated { .. } => "PromotionCreated",
            Self::PromotionRemoved { .. } => "PromotionRemoved",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Why a program command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    /// A setting out of range.
    #[error("invalid loyalty setting: {0}")]
    InvalidSettings(&'static str),
    /// A promotion that makes no sense.
    #[error("invalid promotion: {0}")]
    InvalidPromotion(&'static str),
    /// The promotion id is taken.
    #[error("promotion {0} exists")]
    PromotionExists(Uuid),
    /// No such promotion.
    #[error("no such promotion")]
    PromotionNotFound,
}

/// A business's loyalty program.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoyaltyProgram {
    settings: LoyaltySettings,
    promotions: Vec<Uuid>,
    removed: Vec<Uuid>,
}

impl LoyaltyProgram {
    /// The settings (the defaults until configured).
    pub fn settings(&self) -> LoyaltySettings {
        self.settings
    }

    /// Pure decision.
    ///
    /// # Errors
    /// [`ProgramError`].
    pub fn decide(&self, command: ProgramCommand) -> Result<Vec<ProgramEvent>, ProgramError> {
        use ProgramEvent as E;
        Ok(match command {
            ProgramCommand::ConfigureProgram {
                tenant_id,
                settings,
            } => {
                validate(&settings)?;
                if settings == self.settings {
                    return Ok(vec![]);
                }
                vec![E::LoyaltyProgramConfigured {
                    tenant_id,
                    settings,
                }]
            }
            ProgramCommand::CreatePromotion {
                tenant_id,
                mut promotion,
            } => {
                if self.promotions.contains(&promotion.promotion_id) {
                    return Err(ProgramError::PromotionExists(promotion.promotion_id));
                }
                promotion.title = crate::text::trimmed(&promotion.title, 1, 200).ok_or(
                    ProgramError::InvalidPromotion("title must be 1 to 200 characters"),
                )?;
                if promotion.valid_until <= promotion.valid_from {
                    return Err(ProgramError::InvalidPromotion(
                        "valid_until must be after valid_from",
                    ));
                }
                if promotion.per_customer_limit == Some(0) {
                    return Err(ProgramError::InvalidPromotion(
                        "per_customer_limit must be at least 1",
                    ));
                }
                vec![E::PromotionCreated {
                    tenant_id,
                    promotion,
                }]
            }
            ProgramCommand::RemovePromotion { promotion_id } => {
                if !self.promotions.contains(&promotion_id) {
                    return Err(ProgramError::PromotionNotFound);
                }
                if self.removed.contains(&promotion_id) {
                    return Ok(vec![]);
                }
                vec![E::PromotionRemoved { promotion_id }]
            }
        })
    }
}

fn validate(settings: &LoyaltySettings) -> Result<(), ProgramError> {
    if settings.cashback_bps > 10_000 {
        return Err(ProgramError::InvalidSettings(
            "cashback_bps must be 0 to 10000",
        ));
    }
    if settings.welcome_bonus_points < 0
        || settings.referrer_reward_points < 0
        || settings.referred_reward_points < 0
    {
        return Err(ProgramError::InvalidSettings("points must not be negative"));
    }
    if settings
        .expiry_days
        .is_some_and(|days| days == 0 || days > MAX_EXPIRY_DAYS)
    {
        return Err(ProgramError::InvalidSettings(
            "expiry_days must be 1 to 3650",
        ));
    }
    Ok(())
}

impl Aggregate for LoyaltyProgram {
    const TYPE: &'static str = "loyalty_program";
    type Command = ProgramCommand;
    type Event = ProgramEvent;
    type Error = ProgramError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            ProgramEvent::LoyaltyProgramConfigured { settings, .. } => self.settings = settings,
            ProgramEvent::PromotionCreated { promotion, .. } => {
                self.promotions.push(promotion.promotion_id);
            }
            ProgramEvent::PromotionRemoved { promotion_id } => self.removed.push(promotion_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn tenant() -> TenantId {
        TenantId(Uuid::from_u128(1))
    }

    fn configure(settings: LoyaltySettings) -> ProgramCommand {
        ProgramCommand::ConfigureProgram {
            tenant_id: tenant(),
            settings,
        }
    }

    #[test]
    fn settings_default_to_five_percent_and_are_validated() {
        let program = LoyaltyProgram::default();
        assert_eq!(program.settings().cashback_bps, 500);
        assert_eq!(
            program.decide(configure(LoyaltySettings::default())),
            Ok(vec![])
        );
        for bad in [
            LoyaltySettings {
                cashback_bps: 10_001,
                ..LoyaltySettings::default()
            },
            LoyaltySettings {
                welcome_bonus_points: -1,
                ..LoyaltySettings::default()
            },
            LoyaltySettings {
                expiry_days: Some(0),
                ..LoyaltySettings::default()
            },
        ] {
            assert!(matches!(
                program.decide(configure(bad)),
                Err(ProgramError::InvalidSettings(_))
            ));
        }
    }

    #[test]
    fn promotions_need_a_period_and_are_removed_once() {
        let from = Utc.timestamp_opt(1_700_000_000, 0).single().expect("time");
        let promotion = |until| Promotion {
            promotion_id: Uuid::from_u128(5),
            title: " Double points ".into(),
            valid_from: from,
            valid_until: until,
            per_customer_limit: Some(1),
        };
        let create = |p| ProgramCommand::CreatePromotion {
            tenant_id: tenant(),
            promotion: p,
        };
        let mut program = LoyaltyProgram::default();
        assert!(program.decide(create(promotion(from))).is_err());
        let events = program
            .decide(create(promotion(from + Duration::days(7))))
            .expect("created");
        events.into_iter().for_each(|e| program.apply(e));
        let remove = ProgramCommand::RemovePromotion {
            promotion_id: Uuid::from_u128(5),
        };
        let events = program.decide(remove.clone()).expect("removed");
        events.into_iter().for_each(|e| program.apply(e));
        assert_eq!(program.decide(remove), Ok(vec![]));
        assert_eq!(
            program.decide(ProgramCommand::RemovePromotion {
                promotion_id: Uuid::from_u128(6)
            }),
            Err(ProgramError::PromotionNotFound)
        );
    }
}
