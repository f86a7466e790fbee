//! The kinds of durable deadline: a command that falls due at a time. The `deadlines`
//! projection schedules them from events; the deadline runner issues the command once
//! when it is due (see `migrations/0003_deadlines.sql`).

/// `ExpireTrial` on the tenant stream at `trial_ends_at`, scheduled by `TenantRegistered`
/// (DOMAIN.md: a 7-day trial; when it ends without a paid plan the tenant is restricted).
pub const EXPIRE_TRIAL: &str = "tenant.expire_trial";
/// Restart a connection's WhatsApp session: a new QR attempt, or a reconnect (payload-free;
/// the connection's stream says which). Aggregate id: the connection.
pub const RESTART_SESSION: &str = "channel.restart_session";
/// End a subscription cancelled at period end when the period is over (unless Stripe
/// ended it first), scheduled by `SubscriptionRecorded` with `cancel_at_period_end`.
/// Aggregate id: the tenant (the subscription stream).
pub const END_SUBSCRIPTION: &str = "subscription.end_at_period_end";
/// Void a loyalty account's transfers whose expiry passed (`ExpirePoints`), scheduled at a
/// transfer's `expires_at` by `PurchaseAccrued` and `PointsGranted`. Aggregate id: the
/// loyalty account. Running it twice, or after a redemption voided the points, changes
/// nothing.
pub const EXPIRE_POINTS: &str = "loyalty.expire_points";
/// Tell a delivery's customer, through their conversation, the status the delivery has
/// reached (an outbound `TYPE3` message), scheduled at once by `DeliveryStatusChanged`.
/// Aggregate id: the delivery. It announces the delivery's status when it runs, once per
/// status: a status already superseded when it runs is not announced late.
pub const NOTIFY_DELIVERY_STATUS: &str = "delivery.notify_customer";
/// Run a business's erasure process (`x8_commands::erasure::run`): scheduled at the end of
/// the grace period by `TenantErasureRequested` (aggregate id: the tenant) and at each
/// retry of a failed cleanup by `StepAttemptFailed` (aggregate id: the erasure). The
/// process resumes where its stream says it is, so running it again, or after a crash,
/// runs no step twice.
pub const RUN_ERASURE: &str = "erasure.run";
