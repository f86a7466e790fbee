//! Money: integer minor units (cents for USD) plus an ISO-4217 currency. Never floats.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an amount or currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not three ASCII letters.
    #[error("currency {0:?} is not an ISO-4217 code (three letters)")]
    InvalidCurrency(String),
    /// Zero or negative where a positive amount is needed.
    #[error("amount must be a positive number of minor units, got {0}")]
    NotPositive(i64),
}

/// An ISO-4217 currency code, upper case (`"USD"`). Stripe's lower-case codes parse too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    /// Parses three ASCII letters, any case.
    ///
    /// # Errors
    /// [`MoneyError::InvalidCurrency`].
    pub fn parse(raw: &str) -> Result<Self, MoneyError> {
        let code = raw.trim();
        if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(MoneyError::InvalidCurrency(raw.to_string()));
        }
        Ok(Self(code.to_ascii_uppercase()))
    }
    /// The upper-case code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The lower-case code Stripe's API takes.
    pub fn to_stripe(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount: integer minor units of `currency` (e.g. 1999 USD = $19.99).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (cents).
    pub amount_minor: i64,
    /// ISO-4217 code.
    pub currency: Currency,
}

impl Money {
    /// A positive amount.
    ///
    /// # Errors
    /// [`MoneyError`] for a non-positive amount or a bad currency.
    pub fn positive(amount_minor: i64, currency: &str) -> Result<Self, MoneyError> {
        if amount_minor <= 0 {
            return Err(MoneyError::NotPositive(amount_minor));
        }
        Ok(Self {
            amount_minor,
            currency: Currency::parse(currency)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_three_letters_stored_upper_case() {
        assert_eq!(
            Currency::parse("usd").map(|c| c.to_string()),
            Ok("USD".into())
        );
        assert_eq!(
            Currency::parse("EUR").map(|c| c.to_stripe()),
            Ok("eur".into())
        );
        for bad in ["", "us", "usdd", "u$d", "12a"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn amounts_must_be_positive_minor_units() {
        assert!(Money::positive(1, "usd").is_ok());
        assert_eq!(Money::positive(0, "usd"), Err(MoneyError::NotPositive(0)));
        assert_eq!(Money::positive(-5, "usd"), Err(MoneyError::NotPositive(-5)));
    }
}
