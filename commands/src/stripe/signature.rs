//! The `Stripe-Signature` scheme (Stripe docs, "Check the webhook signatures"; the
//! reference is `WebhookSignature.verify_header` in stripe-python):
//!
//! - the header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, other schemes (`v0`) ignored;
//! - the signed payload is `"{t}." + raw body bytes`, HMAC-SHA256 under the endpoint
//!   secret (`whsec_…` as UTF-8 bytes);
//! - a delivery is accepted when any `v1` matches (constant-time) under any configured
//!   secret (several during a rotation), and `t` is not older than the tolerance.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Stripe's default tolerance: 300 seconds.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` or no signature in the header.
    #[error("unable to extract timestamp and signatures from the Stripe-Signature header")]
    Malformed,
    /// The header carries no `v1` signature.
    #[error("no signatures found with expected scheme v1")]
    NoV1,
    /// No `v1` matches the body under any configured secret.
    #[error("no signature matches the expected signature for the payload")]
    Mismatch,
    /// `t` is older than the tolerance.
    #[error("timestamp {timestamp} is outside the tolerance of {tolerance_secs} s")]
    TooOld {
        /// The header's `t`.
        timestamp: i64,
        /// The tolerance in seconds.
        tolerance_secs: i64,
    },
}

/// Verifies a `Stripe-Signature` header for `body` under any of `secrets`, at `now`.
/// `tolerance_secs = None` disables the age check (tests of old vectors only). Returns
/// the header's timestamp.
///
/// # Errors
/// [`SignatureError`]; the signature is checked before the age, as Stripe's libraries do.
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[SecretString],
    now: DateTime<Utc>,
    tolerance_secs: Option<i64>,
) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    let mut any_scheme = false;
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = value.parse::<i64>().ok(),
            "v1" => signatures.push(value),
            _ => {}
        }
        any_scheme |= key != "t";
    }
    let (Some(timestamp), true) = (timestamp, any_scheme) else {
        return Err(SignatureError::Malformed);
    };
    if signatures.is_empty() {
        return Err(SignatureError::NoV1);
    }
    let candidates: Vec<Vec<u8>> = signatures
        .iter()
        .filter_map(|s| hex::decode(s).ok())
        .collect();
    let matches = secrets.iter().any(|secret| {
        candidates
            .iter()
            .any(|candidate| mac(secret, timestamp, body).verify_slice(candidate).is_ok())
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    if let Some(tolerance_secs) = tolerance_secs {
        if timestamp < now.timestamp() - tolerance_secs {
            return Err(SignatureError::TooOld {
                timestamp,
                tolerance_secs,
            });
        }
    }
    Ok(timestamp)
}

/// The `Stripe-Signature` header Stripe would send for `body` at `timestamp` under
/// `secret` (for the simulator and tests).
pub fn sign(body: &[u8], secret: &SecretString, timestamp: i64) -> String {
    let signature = hex::encode(mac(secret, timestamp, body).finalize().into_bytes());
    format!("t={timestamp},v1={signature}")
}

fn mac(secret: &SecretString, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    //! Every vector of `shared/fixtures/stripe/signature-vectors.json` (copied to
    //! `tests/fixtures/stripe`).
    use super::*;
    use chrono::TimeZone;
    use serde_json::Value;

    fn vectors() -> Value {
        let raw = include_str!("../../../tests/fixtures/stripe/signature-vectors.json");
        serde_json::from_str(raw).expect("vectors parse")
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    fn at(t: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(t, 0).single().expect("valid time")
    }

    fn check(
        case: usize,
        secrets: &[&str],
        now: i64,
        tolerance: Option<i64>,
    ) -> Result<i64, SignatureError> {
        let v = vectors();
        let payload = v["payload"].as_str().expect("payload");
        let header = v["vectors"][case]["header"].as_str().expect("header");
        let secrets: Vec<_> = secrets.iter().map(|s| secret(s)).collect();
        verify(header, payload.as_bytes(), &secrets, at(now), tolerance)
    }

    const SECRET: &str = "whsec_test_secret";
    const ROLLED: &str = "whsec_test_secret_rolled_key";

    #[test]
    fn an_old_timestamp_passes_only_without_tolerance() {
        assert_eq!(check(0, &[SECRET], 1_700_000_000, None), Ok(12345));
        assert!(matches!(
            check(0, &[SECRET], 1_700_000_000, Some(300)),
            Err(SignatureError::TooOld { .. })
        ));
    }

    #[test]
    fn a_valid_signature_passes_within_the_tolerance_and_not_after() {
        assert!(check(1, &[SECRET], 1_700_000_000, Some(300)).is_ok());
        assert!(check(1, &[SECRET], 1_700_000_300, Some(300)).is_ok());
        assert!(check(1, &[SECRET], 1_700_000_301, Some(300)).is_err());
        assert!(check(1, &[SECRET], 1_800_000_000, None).is_ok());
    }

    #[test]
    fn a_rotated_secret_is_accepted_with_either_secret() {
        assert!(check(2, &[SECRET], 1_700_000_010, Some(300)).is_ok());
        assert!(check(2, &[ROLLED], 1_700_000_010, Some(300)).is_ok());
        assert!(check(2, &["whsec_other", ROLLED], 1_700_000_010, Some(300)).is_ok());
        assert_eq!(
            check(2, &["whsec_other"], 1_700_000_010, Some(300)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_bogus_v1_next_to_a_good_one_is_accepted() {
        assert!(check(3, &[SECRET], 1_700_000_000, Some(300)).is_ok());
    }

    #[test]
    fn only_v0_is_refused() {
        assert_eq!(
            check(4, &[SECRET], 1_700_000_000, None),
            Err(SignatureError::NoV1)
        );
    }

    #[test]
    fn a_malformed_header_is_refused() {
        assert_eq!(
            check(5, &[SECRET], 1_700_000_000, None),
            Err(SignatureError::Malformed)
        );
        let secrets = [secret(SECRET)];
        for header in ["", "t=abc,v1=00", "v1=00", "t=1700000000"] {
            assert_eq!(
                verify(header, b"{}", &secrets, at(0), None),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let v = vectors();
        let payload = format!("{} ", v["payload"].as_str().expect("payload"));
        let header = v["vectors"][6]["header"].as_str().expect("header");
        assert_eq!(
            verify(
                header,
                payload.as_bytes(),
                &[secret(SECRET)],
                at(1_700_000_000),
                Some(300)
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn sign_produces_what_verify_accepts() {
        let s = secret(SECRET);
        let header = sign(b"{\"id\":\"evt_1\"}", &s, 1_700_000_000);
        assert!(verify(
            &header,
            b"{\"id\":\"evt_1\"}",
            &[s],
            at(1_700_000_100),
            Some(300)
        )
        .is_ok());
        let v = vectors();
        assert_eq!(
            sign(
                v["payload"].as_str().expect("payload").as_bytes(),
                &secret(SECRET),
                1_700_000_000
            ),
            v["vectors"][1]["header"].as_str().expect("header")
        );
    }
}
