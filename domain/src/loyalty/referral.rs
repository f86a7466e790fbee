//! Referral codes: which loyalty account a business's referral code belongs to.
//!
//! One stream per business and code (`{tenant_id}:{CODE}`, see [`stream_id`]), so the
//! lookup is a consistent read of one stream and two accounts can never claim one code
//! (the second claim is refused by the stream, also when both race). Codes are derived
//! from the account id ([`candidate`]), so claiming again for the same account is a no-op.

use crate::TenantId;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Characters of a referral code.
pub const CODE_LEN: usize = 8;

/// Crockford's base-32 alphabet: no I, L, O, U, so a code read aloud or retyped survives.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The `attempt`-th candidate code of `account_id`: [`CODE_LEN`] characters of Crockford
/// base 32 from the name-based UUID (v5) of the attempt under the account id (about 10^12
/// codes, so a second attempt is needed only on a rare collision within one business).
pub fn candidate(account_id: Uuid, attempt: u32) -> String {
    Uuid::new_v5(&account_id, &attempt.to_be_bytes())
        .as_bytes()
        .iter()
        .take(CODE_LEN)
        .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
        .collect()
}

/// A code as typed by a customer, normalised: trimmed, upper case, `None` if it cannot be
/// a code (wrong length or characters).
pub fn normalise(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    (code.len() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// The stream of `code` within `tenant_id`'s program.
pub fn stream_id(tenant_id: TenantId, code: &str) -> String {
    format!("{tenant_id}:{code}")
}

/// What can be asked of a referral code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReferralCodeCommand {
    /// Give the code to an account (a no-op if it has it already).
    ClaimReferralCode {
        /// The business.
        tenant_id: TenantId,
        /// The code.
        code: String,
        /// The account.
        account_id: Uuid,
    },
}

/// What happened to a referral code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReferralCodeEvent {
    /// The code now names the account, for good.
    ReferralCodeClaimed {
        /// The business.
        tenant_id: TenantId,
        /// The code.
        code: String,
        /// The account.
        account_id: Uuid,
    },
}

impl DomainEvent for ReferralCodeEvent {
    fn event_type(&self) -> String {
        "ReferralCodeClaimed".to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Why a claim was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferralCodeError {
    /// Another account has the code.
    #[error("the referral code belongs to another account")]
    Taken,
}

/// A referral code of one business.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralCode {
    account_id: Option<Uuid>,
}

impl ReferralCode {
    /// The account the code belongs to.
    pub fn account_id(&self) -> Option<Uuid> {
        self.account_id
    }

    /// Pure decision.
    ///
    /// # Errors
    /// [`ReferralCodeError::Taken`].
    pub fn decide(
        &self,
        command: ReferralCodeCommand,
    ) -> Result<Vec<ReferralCodeEvent>, ReferralCodeError> {
        let ReferralCodeCommand::ClaimReferralCode {
            tenant_id,
            code,
            account_id,
        } = command;
        match self.account_id {
            Some(owner) if owner == account_id => Ok(vec![]),
            Some(_) => Err(ReferralCodeError::Taken),
            None => Ok(vec![ReferralCodeEvent::ReferralCodeClaimed {
                tenant_id,
                code,
                account_id,
            }]),
        }
    }
}

impl Aggregate for ReferralCode {
    const TYPE: &'static str = "referral_code";
    type Command = ReferralCodeCommand;
    type Event = ReferralCodeEvent;
    type Error = ReferralCodeError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        let ReferralCodeEvent::ReferralCodeClaimed { account_id, .. } = event;
        self.account_id = Some(account_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(account: u128) -> ReferralCodeCommand {
        ReferralCodeCommand::ClaimReferralCode {
            tenant_id: TenantId(Uuid::from_u128(1)),
            code: "K7W3QX9M".into(),
            account_id: Uuid::from_u128(account),
        }
    }

    #[test]
    fn given_a_free_code_when_claimed_then_it_names_the_account() {
        let events = ReferralCode::default().decide(claim(7)).unwrap();
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn given_a_claimed_code_when_the_owner_claims_again_then_nothing_happens_and_others_are_refused(
    ) {
        let mut code = ReferralCode::default();
        for event in code.decide(claim(7)).unwrap() {
            code.apply(event);
        }
        assert_eq!(code.decide(claim(7)), Ok(vec![]));
        assert_eq!(code.decide(claim(8)), Err(ReferralCodeError::Taken));
    }

    #[test]
    fn candidates_are_deterministic_distinct_per_attempt_and_normalise_to_themselves() {
        let account = Uuid::from_u128(42);
        let first = candidate(account, 0);
        assert_eq!(first, candidate(account, 0));
        assert_ne!(first, candidate(account, 1));
        assert_eq!(first.len(), CODE_LEN);
        assert_eq!(
            normalise(&format!(" {} ", first.to_lowercase())),
            Some(first)
        );
        assert_eq!(normalise("SHORT"), None);
        assert_eq!(normalise("ILOU1234"), None, "not in the alphabet");
    }
}
