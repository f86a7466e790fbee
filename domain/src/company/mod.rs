//! Companies of a business (DOMAIN.md "Companies"): type `Product`, `Service` or `Hybrid`,
//! status `ACTIVE`/`INACTIVE`/`SUSPENDED`, and a human code `COMP001`, `COMP002`, … unique
//! within the tenant.
//!
//! The code is allocated by the **tenant** aggregate (`AllocateCompanyCode` →
//! `CompanyCodeAllocated`, a counter on the tenant stream), so the tenant stream's
//! expected version makes codes unique also under concurrent creation; the company stream
//! is then created with it. A creation cut off between the two steps leaves a gap in the
//! numbering (like a database sequence), never a duplicate.

use crate::{Sealed, TenantId};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a company sells, which decides its flows (delivery calendar after payment for
/// products, appointment after prepayment for services).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CompanyType {
    /// Sells products.
    #[default]
    Product,
    /// Sells services.
    Service,
    /// Both.
    Hybrid,
}

/// A company's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompanyStatus {
    /// In operation.
    #[default]
    Active,
    /// Paused by the business.
    Inactive,
    /// Suspended by the platform.
    Suspended,
}

impl CompanyStatus {
    /// The upper-case name used on the wire and in read models.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Suspended => "SUSPENDED",
        }
    }
}

/// The human code of the `number`-th company of a tenant: `COMP001` … `COMP999`, then
/// `COMP1000` and on (never truncated).
pub fn company_code(number: u32) -> String {
    format!("COMP{number:03}")
}

/// What can be asked of a company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CompanyCommand {
    /// Create the company with the code its tenant allocated.
    CreateCompany {
        /// The owning business.
        tenant_id: TenantId,
        /// The allocated code, e.g. `COMP001`.
        code: String,
        /// Its position in the tenant (1 for `COMP001`).
        position: u32,
        /// Display name, sealed with the tenant's data key (purpose `company:<id>:name`);
        /// the caller validated it with [`parse_name`] before sealing.
        name: Sealed,
        /// Product, Service or Hybrid.
        company_type: CompanyType,
    },
    /// Rename. The caller validated the name with [`parse_name`] and sends no command
    /// when it equals the current one (sealed values cannot be compared here).
    RenameCompany {
        /// The new name, sealed like the first.
        name: Sealed,
    },
    /// Change the status.
    ChangeCompanyStatus {
        /// The new status.
        status: CompanyStatus,
    },
    /// Close the company for good (its business is being erased, DOMAIN.md "Hard
    /// delete"). Closing a closed company changes nothing.
    CloseCompany {
        /// When (UTC).
        at: chrono::DateTime<chrono::Utc>,
    },
}

/// What happened to a company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CompanyEvent {
    /// The company was created (status ACTIVE). Version 2.0 seals `name` (see
    /// [`crate::upcasters`]).
    CompanyCreated {
        /// The owning business.
        tenant_id: TenantId,
        /// Its code.
        code: String,
        /// Its position in the tenant.
        position: u32,
        /// Name, sealed (purpose `company:<id>:name`).
        name: Sealed,
        /// Type.
        company_type: CompanyType,
    },
    /// Renamed. Version 2.0 seals `name`.
    CompanyRenamed {
        /// The new name, sealed (purpose `company:<id>:name`).
        name: Sealed,
    },
    /// Status changed.
    CompanyStatusChanged {
        /// The status before.
        from: CompanyStatus,
        /// The status now.
        to: CompanyStatus,
    },
    /// The company was closed for good.
    CompanyClosed {
        /// When (UTC).
        at: chrono::DateTime<chrono::Utc>,
    },
}

impl DomainEvent for CompanyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CompanyCreated { .. } => "CompanyCreated",
            Self::CompanyRenamed { .. } => "CompanyRenamed",
            Self::CompanyStatusChanged { .. } => "CompanyStatusChanged",
            Self::CompanyClosed { .. } => "CompanyClosed",
        }
        .into()
    }
    fn event_version(&self) -> String {
        match self {
            Self::CompanyCreated { .. } | Self::CompanyRenamed { .. } => "2.0",
            Self::CompanyStatusChanged { .. } | Self::CompanyClosed { .. } => "1.0",
        }
        .into()
    }
}

/// A refused company command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompanyError {
    /// The stream holds a company already.
    #[error("company {0} already exists")]
    AlreadyExists(Uuid),
    /// The command needs an existing company.
    #[error("company does not exist")]
    NotFound,
    /// The name is empty or longer than 200 characters.
    #[error("a company name must have 1 to 200 characters")]
    InvalidName,
    /// The company was closed (its business was erased).
    #[error("the company is closed")]
    Closed,
}

/// A company.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Company {
    created: bool,
    tenant_id: TenantId,
    name: Sealed,
    status: CompanyStatus,
    #[serde(default)]
    closed: bool,
}

impl Company {
    /// Whether the company exists.
    pub fn exists(&self) -> bool {
        self.created
    }
    /// The owning business.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    /// The current name, sealed.
    pub fn name(&self) -> &Sealed {
        &self.name
    }

    /// Decides a command. Pure.
    ///
    /// # Errors
    /// A [`CompanyError`] naming the broken rule.
    pub fn decide(&self, command: CompanyCommand) -> Result<Vec<CompanyEvent>, CompanyError> {
        match command {
            CompanyCommand::CreateCompany {
                tenant_id,
                code,
                position,
                name,
                company_type,
            } => {
                if self.created {
                    return Err(CompanyError::AlreadyExists(self.tenant_id.0));
                }
                Ok(vec![CompanyEvent::CompanyCreated {
                    tenant_id,
                    code,
                    position,
                    name,
                    company_type,
                }])
            }
            _ if !self.created => Err(CompanyError::NotFound),
            CompanyCommand::CloseCompany { at } => Ok(if self.closed {
                vec![]
            } else {
                vec![CompanyEvent::CompanyClosed { at }]
            }),
            _ if self.closed => Err(CompanyError::Closed),
            CompanyCommand::RenameCompany { name } => {
                Ok(vec![CompanyEvent::CompanyRenamed { name }])
            }
            CompanyCommand::ChangeCompanyStatus { status } => Ok(if status == self.status {
                vec![]
            } else {
                vec![CompanyEvent::CompanyStatusChanged {
                    from: self.status,
                    to: status,
                }]
            }),
        }
    }
}

/// A company name: trimmed, 1 to 200 characters.
///
/// # Errors
/// [`CompanyError::InvalidName`].
pub fn parse_name(raw: &str) -> Result<String, CompanyError> {
    crate::text::trimmed(raw, 1, 200).ok_or(CompanyError::InvalidName)
}

impl Aggregate for Company {
    const TYPE: &'static str = "company";
    type Command = CompanyCommand;
    type Event = CompanyEvent;
    type Error = CompanyError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            CompanyEvent::CompanyCreated {
                tenant_id, name, ..
            } => {
                *self = Self {
                    created: true,
                    tenant_id,
                    name,
                    status: CompanyStatus::Active,
                    closed: false,
                };
            }
            CompanyEvent::CompanyRenamed { name } => self.name = name,
            CompanyEvent::CompanyStatusChanged { to, .. } => self.status = to,
            CompanyEvent::CompanyClosed { .. } => self.closed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn created() -> CompanyEvent {
        CompanyEvent::CompanyCreated {
            tenant_id: TenantId(Uuid::from_u128(1)),
            code: "COMP001".into(),
            position: 1,
            name: sealed("Bakery"),
            company_type: CompanyType::Product,
        }
    }

    fn sealed(name: &str) -> Sealed {
        Sealed(format!("x8v1.{name}"))
    }

    #[test]
    fn codes_are_zero_padded_to_three_digits_and_grow_past_999() {
        assert_eq!(company_code(1), "COMP001");
        assert_eq!(company_code(42), "COMP042");
        assert_eq!(company_code(1000), "COMP1000");
    }

    #[test]
    fn a_company_is_created_active_with_its_sealed_name() {
        TestFramework::<Company>::with(())
            .given_no_previous_events()
            .when(CompanyCommand::CreateCompany {
                tenant_id: TenantId(Uuid::from_u128(1)),
                code: "COMP001".into(),
                position: 1,
                name: sealed("Bakery"),
                company_type: CompanyType::Product,
            })
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn a_name_is_trimmed_and_a_blank_or_overlong_one_refused_before_sealing() {
        assert_eq!(parse_name("  Bakery ").unwrap(), "Bakery");
        assert_eq!(parse_name(" "), Err(CompanyError::InvalidName));
        assert_eq!(parse_name(&"x".repeat(201)), Err(CompanyError::InvalidName));
    }

    #[test]
    fn a_rename_records_the_new_sealed_name() {
        TestFramework::<Company>::with(())
            .given(vec![created()])
            .when(CompanyCommand::RenameCompany {
                name: sealed("Bakery 2"),
            })
            .then_expect_events(vec![CompanyEvent::CompanyRenamed {
                name: sealed("Bakery 2"),
            }]);
    }

    #[test]
    fn a_missing_company_cannot_be_renamed() {
        TestFramework::<Company>::with(())
            .given_no_previous_events()
            .when(CompanyCommand::RenameCompany { name: sealed("X") })
            .then_expect_error(CompanyError::NotFound);
    }

    #[test]
    fn a_status_change_records_from_and_to() {
        TestFramework::<Company>::with(())
            .given(vec![created()])
            .when(CompanyCommand::ChangeCompanyStatus {
                status: CompanyStatus::Suspended,
            })
            .then_expect_events(vec![CompanyEvent::CompanyStatusChanged {
                from: CompanyStatus::Active,
                to: CompanyStatus::Suspended,
            }]);
    }

    #[test]
    fn the_same_status_again_changes_nothing() {
        TestFramework::<Company>::with(())
            .given(vec![created()])
            .when(CompanyCommand::ChangeCompanyStatus {
                status: CompanyStatus::Active,
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_closed_company_closes_once_and_takes_no_more_changes() {
        let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let closed = CompanyEvent::CompanyClosed { at };
        TestFramework::<Company>::with(())
            .given(vec![created()])
            .when(CompanyCommand::CloseCompany { at })
            .then_expect_events(vec![closed.clone()]);
        TestFramework::<Company>::with(())
            .given(vec![created(), closed.clone()])
            .when(CompanyCommand::CloseCompany { at })
            .then_expect_events(vec![]);
        TestFramework::<Company>::with(())
            .given(vec![created(), closed])
            .when(CompanyCommand::RenameCompany { name: sealed("X") })
            .then_expect_error(CompanyError::Closed);
    }
}
