//! Couriers of a business (DOMAIN.md "Deliveries"): a name, a phone and the zones they
//! serve. The name and phone are [`Sealed`]; the first name is sealed on its own, since the
//! public tracking page shows it.

use crate::{Sealed, TenantId};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most zones per courier.
pub const MAX_ZONES: usize = 50;

/// What can be asked of a courier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CourierCommand {
    /// Register a courier.
    RegisterCourier {
        /// The business.
        tenant_id: TenantId,
        /// The company it delivers for.
        company_id: Uuid,
        /// Full name, sealed.
        name: Sealed,
        /// First name, sealed (shown on tracking pages).
        first_name: Sealed,
        /// Phone, sealed.
        phone: Sealed,
        /// Zones served (e.g. districts, postcodes), 1 to 100 characters each.
        zones: Vec<String>,
    },
}

/// What happened to a courier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CourierEvent {
    /// Registered.
    CourierRegistered {
        /// The business.
        tenant_id: TenantId,
        /// The company.
        company_id: Uuid,
        /// Full name, sealed.
        name: Sealed,
        /// First name, sealed.
        first_name: Sealed,
        /// Phone, sealed.
        phone: Sealed,
        /// Zones.
        zones: Vec<String>,
    },
}

impl DomainEvent for CourierEvent {
    fn event_type(&self) -> String {
        "CourierRegistered".to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Why a courier command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CourierError {
    /// Registered already.
    #[error("the courier exists")]
    AlreadyExists,
    /// A zone empty or over 100 characters, or too many zones.
    #[error("zones: at most {MAX_ZONES}, each 1 to 100 characters")]
    InvalidZones,
}

/// A courier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Courier {
    tenant_id: Option<TenantId>,
    company_id: Option<Uuid>,
    first_name: Sealed,
}

impl Courier {
    /// Its business, if registered.
    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant_id
    }
    /// Its company.
    pub fn company_id(&self) -> Option<Uuid> {
        self.company_id
    }
    /// Its first name, sealed.
    pub fn first_name(&self) -> &Sealed {
        &self.first_name
    }

    /// Pure decision.
    ///
    /// # Errors
    /// [`CourierError`].
    pub fn decide(&self, command: CourierCommand) -> Result<Vec<CourierEvent>, CourierError> {
        let CourierCommand::RegisterCourier {
            tenant_id,
            company_id,
            name,
            first_name,
            phone,
            zones,
        } = command;
        if self.tenant_id.is_some() {
            return Err(CourierError::AlreadyExists);
        }
        let zones = zones
            .iter()
            .map(|zone| crate::text::trimmed(zone, 1, 100))
            .collect::<Option<Vec<_>>>()
            .filter(|zones| zones.len() <= MAX_ZONES)
            .ok_or(CourierError::InvalidZones)?;
        Ok(vec![CourierEvent::CourierRegistered {
            tenant_id,
            company_id,
            name,
            first_name,
            phone,
            zones,
        }])
    }
}

impl Aggregate for Courier {
    const TYPE: &'static str = "courier";
    type Command = CourierCommand;
    type Event = CourierEvent;
    type Error = CourierError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        let CourierEvent::CourierRegistered {
            tenant_id,
            company_id,
            first_name,
            ..
        } = event;
        self.tenant_id = Some(tenant_id);
        self.company_id = Some(company_id);
        self.first_name = first_name;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(zones: Vec<&str>) -> CourierCommand {
        CourierCommand::RegisterCourier {
            tenant_id: TenantId(Uuid::from_u128(1)),
            company_id: Uuid::from_u128(2),
            name: Sealed::legacy("Ana Petrović"),
            first_name: Sealed::legacy("Ana"),
            phone: Sealed::legacy("+381641234567"),
            zones: zones.into_iter().map(str::to_string).collect(),
        }
    }

    #[test]
    fn a_courier_registers_once_with_trimmed_zones() {
        let mut courier = Courier::default();
        let events = courier
            .decide(register(vec![" Vračar ", "Dorćol"]))
            .expect("registered");
        assert!(
            matches!(&events[..], [CourierEvent::CourierRegistered { zones, .. }] if zones == &["Vračar", "Dorćol"])
        );
        events.into_iter().for_each(|e| courier.apply(e));
        assert_eq!(
            courier.decide(register(vec![])),
            Err(CourierError::AlreadyExists)
        );
        assert_eq!(
            Courier::default().decide(register(vec![" "])),
            Err(CourierError::InvalidZones)
        );
    }
}
