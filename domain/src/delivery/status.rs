//! Delivery statuses: AfterShip's tracking vocabulary, and the transitions allowed
//! between them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A delivery's status (AfterShip's `tag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeliveryStatus {
    /// Created, nothing known yet.
    #[default]
    Pending,
    /// The carrier has the details, not the parcel.
    InfoReceived,
    /// On its way.
    InTransit,
    /// With the courier for the last mile.
    OutForDelivery,
    /// The courier tried and failed (nobody home…); another attempt follows.
    AttemptFail,
    /// Delivered (final).
    Delivered,
    /// Waiting at a pickup point.
    AvailableForPickup,
    /// Held, damaged, returned, refused…: needs attention.
    Exception,
    /// No news for too long (final).
    Expired,
}

/// Every status, in AfterShip's order.
pub const ALL: [DeliveryStatus; 9] = [
    DeliveryStatus::Pending,
    DeliveryStatus::InfoReceived,
    DeliveryStatus::InTransit,
    DeliveryStatus::OutForDelivery,
    DeliveryStatus::AttemptFail,
    DeliveryStatus::Delivered,
    DeliveryStatus::AvailableForPickup,
    DeliveryStatus::Exception,
    DeliveryStatus::Expired,
];

impl DeliveryStatus {
    /// AfterShip's spelling: `Pending`, `InfoReceived`, `InTransit`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::InfoReceived => "InfoReceived",
            Self::InTransit => "InTransit",
            Self::OutForDelivery => "OutForDelivery",
            Self::AttemptFail => "AttemptFail",
            Self::Delivered => "Delivered",
            Self::AvailableForPickup => "AvailableForPickup",
            Self::Exception => "Exception",
            Self::Expired => "Expired",
        }
    }

    /// What the customer is told when the delivery reaches it (a `TYPE3` message).
    pub fn customer_message(self) -> &'static str {
        match self {
            Self::Pending => "We have your order.",
            Self::InfoReceived => "Your order is being prepared for shipping.",
            Self::InTransit => "Your order is on its way.",
            Self::OutForDelivery => "Your order is out for delivery.",
            Self::AttemptFail => "We could not deliver your order; we will try again.",
            Self::Delivered => "Your order was delivered.",
            Self::AvailableForPickup => "Your order is ready for pickup.",
            Self::Exception => "There is a problem with your delivery; we will contact you.",
            Self::Expired => "Tracking of your order has ended.",
        }
    }

    /// Whether nothing can follow it.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Expired)
    }

    /// Whether a delivery in `self` may move to `next`. Staying in a status is allowed
    /// (a new sub-status or message); a final status is left never.
    pub fn can_become(self, next: Self) -> bool {
        use DeliveryStatus as S;
        if self.is_final() {
            return false;
        }
        if self == next {
            return true;
        }
        match self {
            S::Pending => matches!(
                next,
                S::InfoReceived | S::InTransit | S::Exception | S::Expired
            ),
            S::InfoReceived => {
                matches!(
                    next,
                    S::InTransit | S::OutForDelivery | S::Exception | S::Expired
                )
            }
            S::InTransit => matches!(
                next,
                S::OutForDelivery
                    | S::AttemptFail
                    | S::Delivered
                    | S::AvailableForPickup
                    | S::Exception
            ),
            S::OutForDelivery => matches!(
                next,
                S::Delivered | S::AttemptFail | S::AvailableForPickup | S::InTransit | S::Exception
            ),
            S::AttemptFail => matches!(
                next,
                S::OutForDelivery
                    | S::InTransit
                    | S::AvailableForPickup
                    | S::Exception
                    | S::Expired
            ),
            S::AvailableForPickup => matches!(next, S::Delivered | S::Exception | S::Expired),
            S::Exception => matches!(
                next,
                S::InTransit
                    | S::OutForDelivery
                    | S::AvailableForPickup
                    | S::Delivered
                    | S::Expired
            ),
            S::Delivered | S::Expired => false,
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not one of AfterShip's statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown delivery status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for DeliveryStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_statuses_are_never_left_and_the_happy_path_is_allowed() {
        use DeliveryStatus as S;
        let path = [
            S::Pending,
            S::InfoReceived,
            S::InTransit,
            S::OutForDelivery,
            S::Delivered,
        ];
        assert!(path.windows(2).all(|w| w[0].can_become(w[1])));
        for status in ALL {
            assert!(!S::Delivered.can_become(status));
            assert!(!S::Expired.can_become(status));
        }
        assert!(!S::Pending.can_become(S::Delivered));
        assert!(!S::AvailableForPickup.can_become(S::OutForDelivery));
        assert!(S::AttemptFail.can_become(S::OutForDelivery));
    }

    #[test]
    fn statuses_parse_in_aftership_spelling_only() {
        for status in ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
        }
        assert!("in_transit".parse::<DeliveryStatus>().is_err());
    }
}
