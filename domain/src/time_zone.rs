//! A business's time zone: an IANA name (`Europe/Belgrade`), checked against the tz
//! database bundled by `chrono-tz`. Daily metrics split days by it (DOMAIN.md "Dashboards
//! and metrics"); events themselves stay in UTC.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An IANA time zone name, valid by construction (`UTC` unless the business chose one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimeZone(String);

/// The name is not an IANA time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IANA time zone name (e.g. Europe/Belgrade, UTC)")]
pub struct InvalidTimeZone(pub String);

impl TimeZone {
    /// `UTC`, every business's zone until it sets one.
    pub fn utc() -> Self {
        Self("UTC".to_string())
    }

    /// The canonical IANA name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        Self::utc()
    }
}

impl FromStr for TimeZone {
    type Err = InvalidTimeZone;

    /// Parses an IANA name, case-insensitively (`europe/kyiv` → `Europe/Kyiv`).
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        chrono_tz::Tz::from_str_insensitive(raw)
            .map(|tz| Self(tz.name().to_string()))
            .map_err(|_| InvalidTimeZone(raw.to_string()))
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_parse_to_their_canonical_spelling() {
        assert_eq!(
            "europe/belgrade".parse::<TimeZone>().map(|z| z.to_string()),
            Ok("Europe/Belgrade".to_string())
        );
        assert_eq!("UTC".parse::<TimeZone>(), Ok(TimeZone::utc()));
    }

    #[test]
    fn offsets_and_unknown_names_are_refused() {
        for raw in ["+02:00", "Mars/Olympus", "", "CEST "] {
            assert!(raw.parse::<TimeZone>().is_err(), "{raw}");
        }
    }
}
