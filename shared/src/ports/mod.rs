//! Ports: every narrow capability kefu needs from the outside world, in one place, so the
//! adapters depend on this module and never on the code that uses them. The storage ports
//! have an AWS adapter and an embedded adapter (see [`crate::adapters`]) that pass the
//! same contract tests in `tests/tests/contract/`; the channel ports ([`ChannelSender`],
//! [`MailTransport`], [`MailSink`]) have one adapter per provider.

use crate::Result;
use crate::domain::{
    Conversation, ConversationId, DeliveryState, Message, MessageId, Millis, NewMessage,
    OutboundMessage,
};
use async_trait::async_trait;
use std::net::SocketAddr;
use std::time::Duration;

/// A message taken from a [`MessageQueue`]; invisible to others until deleted, released,
/// deferred or its visibility timeout passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Handle for [`MessageQueue::delete`]; changes with every receive.
    pub receipt: String,
    /// The queue's own id for the message, the same on every redelivery.
    pub message_id: String,
    /// The FIFO group (the conversation id).
    pub group: String,
    /// The body as sent.
    pub body: String,
    /// How many times it has been received, this time included. Receives given back with
    /// [`MessageQueue::defer`] are not counted where the queue can tell (the embedded
    /// queue); SQS's `ApproximateReceiveCount` counts them.
    pub receive_count: u32,
}

/// A FIFO queue with one ordered group per conversation, a deduplication window and
/// at-least-once delivery (SQS FIFO semantics). `inbound` and `outbound` are two of these.
///
/// A received message ends in one of three ways: [`delete`](MessageQueue::delete) (handled),
/// [`release`](MessageQueue::release) (attempted and failed: one attempt spent; the queue
/// moves it to its dead-letter queue after its last allowed attempt) or
/// [`defer`](MessageQueue::defer) (not attempted: held behind an earlier failure of its
/// group, or its channel paused; no attempt spent).
#[async_trait]
pub trait MessageQueue: Send + Sync {
    /// Enqueues `body` in `group`. A second send with the same `dedup_id` within the
    /// deduplication window (5 minutes) is accepted and dropped.
    async fn send(&self, group: &str, dedup_id: &str, body: &str) -> Result<()>;

    /// Receives up to `max` messages, waiting up to `wait` for the first. Messages of one
    /// group come in order, and never while an earlier message of the group is in flight.
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>>;

    /// Acknowledges a message: it is gone for good.
    async fn delete(&self, receipt: &str) -> Result<()>;

    /// Ends a failed attempt: the message comes again after `delay` (zero: at once), or
    /// moves to the dead-letter queue when that was its last allowed attempt. Its group
    /// waits meanwhile.
    async fn release(&self, delivery: &Delivery, delay: Duration) -> Result<()>;

    /// Gives back a message that was received but not attempted: it comes again after
    /// `delay` and this receive spends none of its attempts. Its group waits meanwhile.
    async fn defer(&self, delivery: &Delivery, delay: Duration) -> Result<()>;
}

/// How long a conversation that never got a message lives: past `created_at` plus this it
/// lapses (reads as absent, a new `create` replaces it, and the store deletes it in time),
/// so opening sessions that are never used fills no table. Its first message keeps it.
pub const EMPTY_CONVERSATION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Conversations and their messages.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Stores `conversation` unless one with its id exists; returns the stored one. A
    /// conversation without messages lapses after [`EMPTY_CONVERSATION_TTL`].
    async fn create(&self, conversation: &Conversation) -> Result<Conversation>;

    /// The conversation, if it exists.
    async fn get(&self, id: &ConversationId) -> Result<Option<Conversation>>;

    /// Writes the conversation's state if the stored version equals `conversation.version`,
    /// then bumps `conversation.version`. `Error::Conflict` when someone else wrote first.
    /// Does not touch `last_seq` (owned by [`ConversationStore::append`]).
    async fn save(&self, conversation: &mut Conversation) -> Result<()>;

    /// Appends a message, assigning the next seq. Idempotent by `message_id`: appending an
    /// id again returns the stored message and `false`. `Error::NotFound` without conversation.
    async fn append(&self, id: &ConversationId, message: NewMessage) -> Result<(Message, bool)>;

    /// Messages with `seq > after`, in order, at most `limit`.
    async fn messages(&self, id: &ConversationId, after: u64, limit: usize)
    -> Result<Vec<Message>>;

    /// A message by id.
    async fn find_message(
        &self,
        id: &ConversationId,
        message_id: &MessageId,
    ) -> Result<Option<Message>>;

    /// Records the delivery state of a stored message.
    async fn set_delivery(
        &self,
        id: &ConversationId,
        message_id: &MessageId,
        state: DeliveryState,
    ) -> Result<()>;
}

/// The agents' work queues: conversations waiting for a human, per skill-group queue.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Conversations waiting in `queue`, highest priority first, then oldest first.
    async fn waiting(&self, queue: &str, limit: usize) -> Result<Vec<Conversation>>;
}

/// Remembers what was done, so retries do it once.
#[async_trait]
pub trait IdempotencyGuard: Send + Sync {
    /// Stores `value` under `key` unless the key exists (and has not expired). Returns
    /// `None` when this call stored it, or the value stored first.
    async fn put_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<Option<String>>;

    /// The value under `key`, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<String>>;
}

/// Opaque blobs by key: FAQ sources, FAQ index versions, raw email.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Writes (or overwrites) `key`.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()>;
    /// Reads `key`, `None` if absent.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Keys starting with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
}

/// An agent's local account (the embedded default; in AWS, Cognito can replace it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAccount {
    /// Login name, also the agent id.
    pub username: String,
    /// Name shown to colleagues.
    pub display_name: String,
    /// argon2 PHC string.
    pub password_hash: String,
    /// Skill-group queues the agent works.
    pub queues: Vec<String>,
    /// A disabled account cannot log in, and its tokens stop working.
    pub disabled: bool,
    /// Created.
    pub created_at: Millis,
}

/// Failed logins counted under one key (an account or a client address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures since the counter was last cleared or forgotten.
    pub count: u32,
    /// When the latest one happened.
    pub last_at: Millis,
}

/// Local agent accounts, and the failed-login counters that back off password guessing
/// (kept here, not in memory, so that every instance sees the same counts).
#[async_trait]
pub trait AgentDirectory: Send + Sync {
    /// The account, if it exists.
    async fn agent(&self, username: &str) -> Result<Option<AgentAccount>>;
    /// Creates the account unless it exists; returns whether it was created.
    async fn create_agent(&self, account: &AgentAccount) -> Result<bool>;
    /// Replaces an existing account (display name, hash, queues, disabled); returns
    /// whether it existed. `created_at` is kept.
    async fn update_agent(&self, account: &AgentAccount) -> Result<bool>;
    /// Deletes the account; returns whether it existed.
    async fn delete_agent(&self, username: &str) -> Result<bool>;
    /// Counts one failed login under `key` at `now` and returns the new count; a counter
    /// whose last failure is `forget_after` old or older starts again at 1. Atomic: of
    /// concurrent calls, each sees a different count.
    async fn note_login_failure(
        &self,
        key: &str,
        now: Millis,
        forget_after: Duration,
    ) -> Result<LoginFailures>;
    /// The failures counted under `key`, unless forgotten by `now` (see
    /// [`AgentDirectory::note_login_failure`]).
    async fn login_failures(
        &self,
        key: &str,
        now: Millis,
        forget_after: Duration,
    ) -> Result<Option<LoginFailures>>;
    /// Forgets the failures under `key` (after a successful login).
    async fn clear_login_failures(&self, key: &str) -> Result<()>;
}

/// Asks the identity provider whether an access token it issued still stands: a JWT
/// verified by its signature alone outlives the account it names.
#[async_trait]
pub trait AccountCheck: Send + Sync {
    /// `false` when the account is disabled or deleted or the token was signed out or
    /// revoked; an error when the provider could not be asked.
    async fn still_active(&self, access_token: &str) -> Result<bool>;
}

/// A lease held on a key; give it back with [`Leases::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What is leased (e.g. `poll:<conversation>`).
    pub key: String,
    /// Which of the key's slots it holds.
    pub slot: u32,
    /// This holder's unique id: a release never frees a slot someone else took since.
    pub holder: String,
}

/// Counted leases shared by every process: at most `slots` holders of one key at a time.
/// A lease lapses by itself after its `ttl`, so a holder that dies without releasing (a
/// timed-out Lambda, a dropped connection) blocks nobody for long.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes a free (or lapsed) slot of `key` for `ttl`; `None` when all `slots` are held.
    async fn acquire(&self, key: &str, slots: u32, ttl: Duration) -> Result<Option<Lease>>;

    /// Frees the lease's slot, unless it lapsed and another holder took it meanwhile.
    async fn release(&self, lease: &Lease) -> Result<()>;
}

/// Puts a customer message on the inbound queue: group = conversation, dedup = message id.
pub async fn send_inbound(
    queue: &dyn MessageQueue,
    message: &crate::domain::InboundMessage,
) -> Result<()> {
    queue
        .send(
            message.conversation_id.as_str(),
            message.message_id.as_str(),
            &message.to_json(),
        )
        .await
}

/// Puts a reply on the outbound queue: group = conversation, dedup = message id.
pub async fn send_outbound(
    queue: &dyn MessageQueue,
    message: &crate::domain::OutboundMessage,
) -> Result<()> {
    queue
        .send(
            message.conversation_id.as_str(),
            message.message_id.as_str(),
            &message.to_json(),
        )
        .await
}

/// The shop's order system, as the bot's task flows need it: look an order up, cancel it,
/// open a return or exchange. Implementations never check ownership; the flows do.
///
/// Changes carry a `request_id` (the customer message that asked for them): a repeated
/// request with the same id must have the effect, and get the answer, of the first.
#[async_trait]
pub trait OrderSource: Send + Sync {
    /// The order, `None` when the shop knows no such id.
    async fn order(
        &self,
        order_id: &str,
    ) -> std::result::Result<Option<crate::domain::Order>, crate::domain::OrderError>;

    /// Cancels the order if it has not shipped yet.
    async fn cancel(
        &self,
        order_id: &str,
        request_id: &str,
    ) -> std::result::Result<crate::domain::CancelOutcome, crate::domain::OrderError>;

    /// Opens a return or exchange request with the customer's reason.
    async fn request_return(
        &self,
        order_id: &str,
        kind: crate::domain::ReturnKind,
        reason: &str,
        request_id: &str,
    ) -> std::result::Result<crate::domain::ReturnTicket, crate::domain::OrderError>;
}

/// Why a channel did not take a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying (timeouts, 5xx, throttling): the message is redelivered.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never work (closed window, invalid recipient): recorded on the message.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl SendError {
    /// A failure of our own backend (the idempotency table, the store) while sending:
    /// worth retrying.
    pub fn backend(e: crate::Error) -> Self {
        Self::Transient(crate::cause_chain(&e))
    }
}

/// Delivers messages on one channel.
#[async_trait]
pub trait ChannelSender: Send + Sync {
    /// Sends `message` to its recipient.
    async fn send(&self, message: &OutboundMessage) -> std::result::Result<(), SendError>;
}

/// Hands a complete mail to a mail service.
#[async_trait]
pub trait MailTransport: Send + Sync {
    /// Sends `raw` (a complete RFC 5322 mail) from `from` to `to`; returns the service's id.
    async fn send(
        &self,
        from: &str,
        to: &str,
        raw: Vec<u8>,
    ) -> std::result::Result<String, SendError>;
}

/// One mail as the server accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// Unique per accepted mail; also quoted to the client in the `250` answer.
    pub id: String,
    /// The envelope sender (`MAIL FROM`); empty for bounces (`<>`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`), in the order given.
    pub recipients: Vec<String>,
    /// The message as sent, dot-unstuffed, without the terminating `.` line.
    pub raw: Vec<u8>,
    /// The client that sent it.
    pub peer: SocketAddr,
}

/// Where accepted mail goes.
#[async_trait]
pub trait MailSink: Send + Sync {
    /// Whether mail for `recipient` (as given in `RCPT TO`) is taken here; others are
    /// refused at `RCPT` with `550 5.1.1`. Every recipient by default.
    fn accepts(&self, _recipient: &str) -> bool {
        true
    }

    /// Stores and processes one mail; an error makes the server answer 451 (try again).
    async fn accept(&self, mail: ReceivedMail) -> Result<()>;
}
