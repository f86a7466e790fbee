//! Who asks for a command, and how it is identified.

use uuid::Uuid;
use x8_eventstore::Actor;

/// Namespace of command ids derived from client `Idempotency-Key`s.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x1d3a_77c2_5b9e_4c41_8f0e_6a2b_9c4d_0e11);
/// Namespace of command ids derived from providers' webhook delivery ids.
const WEBHOOK_NAMESPACE: Uuid = Uuid::from_u128(0x6c0f_1e6b_93a2_4f0d_b3c4_5a1e_7d2f_8b90);

/// The context of one command execution.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The command id. From a client key it is derived, so the same key always maps to the
    /// same id; otherwise a fresh UUID v7.
    pub command_id: Uuid,
    /// Whether the id came from the client (then an earlier execution may exist).
    pub client_supplied: bool,
    /// Who.
    pub actor: Actor,
    /// The request (or process) this command belongs to.
    pub correlation_id: Uuid,
    /// The message that caused it, if not the request.
    pub causation_id: Option<Uuid>,
    /// The tenant the command's stream belongs to, when the command itself does not say
    /// (e.g. renaming a company); recorded with every event.
    pub tenant_id: Option<Uuid>,
    /// What identifies the request for idempotency; `None` hashes the command itself.
    /// Set it when the command carries generated values (a salt, a new id) that differ
    /// between two deliveries of the same request.
    pub fingerprint: Option<String>,
}

impl CommandContext {
    /// A context for `actor` with a fresh command id.
    pub fn new(actor: Actor) -> Self {
        let command_id = Uuid::now_v7();
        Self {
            command_id,
            client_supplied: false,
            actor,
            correlation_id: command_id,
            causation_id: None,
            tenant_id: None,
            fingerprint: None,
        }
    }

    /// The context of a provider's webhook (`waha`, `stripe`, …): its delivery or event id
    /// becomes the command id, so a redelivery, also a concurrent one, replays the
    /// recorded outcome; the fingerprint is of the delivery only.
    pub fn for_webhook(provider: &str, delivery_id: &str) -> Self {
        let mut ctx = Self::new(Actor::Webhook(provider.to_string())).fingerprinted(&[
            "webhook",
            provider,
            delivery_id,
        ]);
        ctx.command_id = Uuid::new_v5(
            &WEBHOOK_NAMESPACE,
            format!("{provider}\n{delivery_id}").as_bytes(),
        );
        ctx.correlation_id = ctx.command_id;
        ctx.client_supplied = true;
        ctx
    }

    /// Uses the client's `Idempotency-Key`, scoped by `scope` (the caller's user id, or
    /// `anonymous`) so one client's key can never reach another's result.
    pub fn with_idempotency_key(mut self, scope: &str, key: &str) -> Self {
        self.command_id =
            Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, format!("{scope}\n{key}").as_bytes());
        self.client_supplied = true;
        self
    }

    /// Identifies the request by a hash of `parts` (SHA-256 over NUL-separated parts).
    pub fn fingerprinted(mut self, parts: &[&str]) -> Self {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        self.fingerprint = Some(hex::encode(hasher.finalize()));
        self
    }

    /// As [`Self::fingerprinted`] unless the caller already identified the request (a
    /// webhook delivery, a deadline): for commands that carry generated values (sealed
    /// fields' nonces, fresh tokens), whose own hash would differ on every retry.
    pub fn or_fingerprinted(self, parts: &[&str]) -> Self {
        if self.fingerprint.is_some() {
            self
        } else {
            self.fingerprinted(parts)
        }
    }

    /// Records `tenant_id` as the owner of the command's stream.
    pub fn for_tenant(mut self, tenant_id: Uuid) -> Self {
        self.tenant_id = Some(tenant_id);
        self
    }

    /// Sets the correlation id (e.g. the HTTP request id).
    pub fn correlated(mut self, correlation_id: Uuid) -> Self {
        self.correlation_id = correlation_id;
        self
    }

    /// The context of a follow-up command in the same request: a command id derived from
    /// this one and `step`, caused by this command.
    pub fn step(&self, step: &str) -> Self {
        Self {
            command_id: Uuid::new_v5(&self.command_id, step.as_bytes()),
            client_supplied: self.client_supplied,
            actor: self.actor.clone(),
            correlation_id: self.correlation_id,
            causation_id: Some(self.command_id),
            tenant_id: self.tenant_id,
            fingerprint: self.fingerprint.clone(),
        }
    }
}
