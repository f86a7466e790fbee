//! Outbound message pricing by the 24-hour session window (DOMAIN.md "Conversations and
//! messages"; Infobip's Serbia rates for Viber and WhatsApp).
//!
//! A message sent less than 24 hours after the customer's last inbound message is a
//! **session** message; any other (no inbound yet, or 24 hours or more later) is
//! **proactive**. Rich media costs 20 % more. Prices are integer **micro-euros**
//! (1 € = 1,000,000), so no rounding ever happens on the rates below.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The session window opened by a customer's inbound message.
pub const SESSION_WINDOW: Duration = Duration::hours(24);

/// Which price applies to an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricingWindow {
    /// Within 24 hours of the customer's last inbound message.
    Session,
    /// Outside any session window.
    Proactive,
}

impl PricingWindow {
    /// `session` or `proactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Proactive => "proactive",
        }
    }
}

/// The rates (configuration: `X8_MESSAGE_RATES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRates {
    /// A session message, micro-euros (default 4,500 = €0.0045).
    pub session_micro_eur: i64,
    /// A proactive message, micro-euros (default 9,000 = €0.0090).
    pub proactive_micro_eur: i64,
    /// Rich media surcharge in basis points (default 2,000 = +20 %).
    pub rich_media_surcharge_bps: i64,
}

impl std::str::FromStr for MessageRates {
    type Err = String;

    /// `session=4500,proactive=9000,rich_media_bps=2000` (micro-euros, basis points); a
    /// key left out keeps its default.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut rates = Self::default();
        for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, number) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not key=value"))?;
            let number: i64 = number
                .trim()
                .parse()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| format!("`{pair}`: not a non-negative integer"))?;
            match key.trim() {
                "session" => rates.session_micro_eur = number,
                "proactive" => rates.proactive_micro_eur = number,
                "rich_media_bps" => rates.rich_media_surcharge_bps = number,
                other => return Err(format!("unknown rate `{other}`")),
            }
        }
        Ok(rates)
    }
}

impl Default for MessageRates {
    fn default() -> Self {
        Self {
            session_micro_eur: 4_500,
            proactive_micro_eur: 9_000,
            rich_media_surcharge_bps: 2_000,
        }
    }
}

impl MessageRates {
    /// The window and price of a message sent at `sent_at` after the customer's last
    /// inbound message at `last_inbound_at`. The surcharge rounds half up to a whole
    /// micro-euro.
    pub fn price(
        &self,
        last_inbound_at: Option<DateTime<Utc>>,
        sent_at: DateTime<Utc>,
        rich_media: bool,
    ) -> (PricingWindow, i64) {
        let window = match last_inbound_at {
            Some(inbound) if sent_at >= inbound && sent_at - inbound < SESSION_WINDOW => {
                PricingWindow::Session
            }
            _ => PricingWindow::Proactive,
        };
        let base = match window {
            PricingWindow::Session => self.session_micro_eur,
            PricingWindow::Proactive => self.proactive_micro_eur,
        };
        let price = if rich_media {
            base + (base * self.rich_media_surcharge_bps + 5_000) / 10_000
        } else {
            base
        };
        (window, price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.timestamp_opt(1_760_000_000, 0).single().expect("time")
    }

    #[test]
    fn the_session_window_is_24_hours_from_the_last_inbound_message() {
        let rates = MessageRates::default();
        let just_inside = t0() + SESSION_WINDOW - Duration::seconds(1);
        assert_eq!(
            rates.price(Some(t0()), just_inside, false),
            (PricingWindow::Session, 4_500)
        );
        assert_eq!(
            rates.price(Some(t0()), t0() + SESSION_WINDOW, false),
            (PricingWindow::Proactive, 9_000),
            "at exactly 24 h the window is closed"
        );
        assert_eq!(
            rates.price(None, t0(), false),
            (PricingWindow::Proactive, 9_000)
        );
        assert_eq!(
            rates
                .price(Some(t0()), t0() - Duration::seconds(1), false)
                .0,
            PricingWindow::Proactive,
            "before the inbound message there was no window"
        );
    }

    #[test]
    fn rates_parse_from_configuration() {
        let rates: MessageRates = "session=5000, rich_media_bps=1000".parse().expect("rates");
        assert_eq!(
            (
                rates.session_micro_eur,
                rates.proactive_micro_eur,
                rates.rich_media_surcharge_bps
            ),
            (5_000, 9_000, 1_000)
        );
        assert!("session=-1".parse::<MessageRates>().is_err());
        assert!("sessions=1".parse::<MessageRates>().is_err());
    }

    #[test]
    fn rich_media_costs_20_percent_more() {
        let rates = MessageRates::default();
        assert_eq!(rates.price(Some(t0()), t0(), true).1, 5_400);
        assert_eq!(rates.price(None, t0(), true).1, 10_800);
    }
}
