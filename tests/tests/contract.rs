//! Contract tests: one set of test bodies per port, run against every adapter.
//!
//! - `contract/{queue,store,idempotency,leases,blob,agents}.rs` hold the bodies: `pub async fn`s
//!   taking `Arc<dyn Port>` and returning `anyhow::Result<()>`. They use unique names (random
//!   ids) for everything they create, so several bodies can share one backend.
//! - [`Backend`] is what a backend supplies: fresh port handles.
//! - `contract_suite!(<backend expression>)` expands to one `#[tokio::test]` per body, each
//!   evaluating the expression (it may use `.await` and `?`) to get its own backend value.
//! - `contract/embedded.rs` runs the suite on the SQLite adapters (a fresh directory per test).
//!
//! # Adding a backend
//!
//! 1. Create `contract/<name>.rs` with a type implementing [`Backend`] (`use crate::Backend;`).
//!    Its `queue` and `queue_with_dead_letters` must return queues no other test uses; the
//!    other handles may share state between tests.
//! 2. At the top level of that file, write `contract_suite!(<expression>);` — the macro is in
//!    scope in every module declared below it here.
//! 3. Declare the module at the bottom of this file:
//!    `#[path = "contract/<name>.rs"] mod <name>;`.
//!
//! Run one backend with `cargo test -p kefu-tests --test contract <name>::`.

use async_trait::async_trait;
use kefu::ports::{
    AgentDirectory, BlobStore, ConversationStore, IdempotencyGuard, Leases, MessageQueue, WorkQueue,
};
use std::sync::Arc;

/// A storage backend under test: hands out port handles.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A new, empty FIFO queue that no other test uses.
    async fn queue(&self) -> anyhow::Result<Arc<dyn MessageQueue>>;

    /// A new, empty FIFO queue that moves a message to the returned dead-letter queue after
    /// `max_attempts` failed attempts (releases; deferred receives do not count).
    async fn queue_with_dead_letters(
        &self,
        max_attempts: u32,
    ) -> anyhow::Result<(Arc<dyn MessageQueue>, Arc<dyn MessageQueue>)>;

    /// The conversation store.
    async fn conversation_store(&self) -> anyhow::Result<Arc<dyn ConversationStore>>;

    /// The work queues over the same conversations as [`Backend::conversation_store`].
    async fn work_queue(&self) -> anyhow::Result<Arc<dyn WorkQueue>>;

    /// The idempotency guard.
    async fn idempotency_guard(&self) -> anyhow::Result<Arc<dyn IdempotencyGuard>>;

    /// The blob store.
    async fn blob_store(&self) -> anyhow::Result<Arc<dyn BlobStore>>;

    /// The agent directory.
    async fn agent_directory(&self) -> anyhow::Result<Arc<dyn AgentDirectory>>;

    /// The leases.
    async fn leases(&self) -> anyhow::Result<Arc<dyn Leases>>;
}

/// Expands to one multi-threaded `#[tokio::test]` per contract body, each on a backend made
/// by evaluating `$backend` (an expression of a type implementing [`Backend`]).
macro_rules! contract_suite {
    ($backend:expr) => {
        contract_suite!(@tests $backend;
            queue_fifo_order_within_group(b) =>
                $crate::queue::fifo_order_within_group(b.queue().await?),
            queue_group_blocked_while_in_flight(b) =>
                $crate::queue::group_blocked_while_in_flight(b.queue().await?),
            queue_dedup_window_drops_duplicates(b) =>
                $crate::queue::dedup_window_drops_duplicates(b.queue().await?),
            queue_visibility_timeout_redelivers(b) =>
                $crate::queue::visibility_timeout_redelivers(b.queue().await?),
            queue_release_redelivers_now(b) =>
                $crate::queue::release_redelivers_now(b.queue().await?),
            queue_delete_removes_for_good(b) =>
                $crate::queue::delete_removes_for_good(b.queue().await?),
            queue_receive_waits_for_a_late_message(b) =>
                $crate::queue::receive_waits_for_a_late_message(b.queue().await?),
            queue_poison_message_moves_to_dead_letters(b) => {
                let (queue, dead_letters) = b.queue_with_dead_letters(2).await?;
                $crate::queue::poison_message_moves_to_dead_letters(queue, dead_letters, 2)
            },
            queue_deferred_receives_spend_no_attempts(b) => {
                let (queue, dead_letters) = b.queue_with_dead_letters(2).await?;
                $crate::queue::deferred_receives_spend_no_attempts(queue, dead_letters, 2)
            },
            queue_delayed_give_back_hides_the_message(b) =>
                $crate::queue::delayed_give_back_hides_the_message(b.queue().await?),

            store_create_then_get_round_trips(b) =>
                $crate::store::create_then_get_round_trips(b.conversation_store().await?),
            store_create_keeps_the_first(b) =>
                $crate::store::create_keeps_the_first(b.conversation_store().await?),
            store_append_assigns_gapless_seq_and_is_idempotent(b) =>
                $crate::store::append_assigns_gapless_seq_and_is_idempotent(
                    b.conversation_store().await?,
                ),
            store_append_without_conversation_is_not_found(b) =>
                $crate::store::append_without_conversation_is_not_found(
                    b.conversation_store().await?,
                ),
            store_concurrent_appends_get_unique_seqs(b) =>
                $crate::store::concurrent_appends_get_unique_seqs(b.conversation_store().await?),
            store_save_is_conditional_on_version(b) =>
                $crate::store::save_is_conditional_on_version(b.conversation_store().await?),
            store_save_does_not_touch_last_seq(b) =>
                $crate::store::save_does_not_touch_last_seq(b.conversation_store().await?),
            store_save_round_trips_and_clears_bot_context(b) =>
                $crate::store::save_round_trips_and_clears_bot_context(
                    b.conversation_store().await?,
                ),
            store_append_round_trips_quick_replies(b) =>
                $crate::store::append_round_trips_quick_replies(b.conversation_store().await?),
            store_append_round_trips_sentiment(b) =>
                $crate::store::append_round_trips_sentiment(b.conversation_store().await?),
            store_fifty_concurrent_claims_one_wins(b) =>
                $crate::store::fifty_concurrent_claims_one_wins(b.conversation_store().await?),
            store_waiting_orders_by_priority_then_age(b) =>
                $crate::store::waiting_orders_by_priority_then_age(
                    b.conversation_store().await?,
                    b.work_queue().await?,
                ),
            store_find_message_and_record_delivery(b) =>
                $crate::store::find_message_and_record_delivery(b.conversation_store().await?),
            store_empty_conversation_lapses(b) =>
                $crate::store::empty_conversation_lapses(b.conversation_store().await?),
            store_first_message_keeps_a_conversation(b) =>
                $crate::store::first_message_keeps_a_conversation(b.conversation_store().await?),

            leases_slots_cap_holders_until_released(b) =>
                $crate::leases::slots_cap_holders_until_released(b.leases().await?),
            leases_concurrent_acquires_never_exceed_slots(b) =>
                $crate::leases::concurrent_acquires_never_exceed_slots(b.leases().await?),
            leases_lapsed_lease_frees_its_slot_and_a_stale_release_frees_nothing(b) =>
                $crate::leases::lapsed_lease_frees_its_slot_and_a_stale_release_frees_nothing(
                    b.leases().await?,
                ),

            idempotency_put_if_absent_first_writer_wins(b) =>
                $crate::idempotency::put_if_absent_first_writer_wins(
                    b.idempotency_guard().await?,
                ),
            idempotency_concurrent_puts_one_wins(b) =>
                $crate::idempotency::concurrent_puts_one_wins(b.idempotency_guard().await?),
            idempotency_expired_entries_count_as_absent(b) =>
                $crate::idempotency::expired_entries_count_as_absent(
                    b.idempotency_guard().await?,
                ),

            blob_put_get_round_trip(b) =>
                $crate::blob::put_get_round_trip(b.blob_store().await?),
            blob_missing_key_is_none(b) =>
                $crate::blob::missing_key_is_none(b.blob_store().await?),
            blob_list_by_prefix_is_sorted(b) =>
                $crate::blob::list_by_prefix_is_sorted(b.blob_store().await?),

            agents_create_agent_once(b) =>
                $crate::agents::create_agent_once(b.agent_directory().await?),
            agents_update_disable_and_delete_agent(b) =>
                $crate::agents::update_disable_and_delete_agent(b.agent_directory().await?),
            agents_login_failures_count_forget_and_clear(b) =>
                $crate::agents::login_failures_count_forget_and_clear(
                    b.agent_directory().await?,
                ),
        );
    };
    (@tests $backend:expr; $($name:ident($b:ident) => $body:expr),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() -> anyhow::Result<()> {
                #[allow(unused_imports)]
                use $crate::Backend as _;
                let $b = $backend;
                $body.await
            }
        )+
    };
}

// The crate root lives in `tests/`, its modules in `tests/contract/`.
#[path = "contract/agents.rs"]
mod agents;
#[path = "contract/blob.rs"]
mod blob;
#[path = "contract/idempotency.rs"]
mod idempotency;
#[path = "contract/leases.rs"]
mod leases;
#[path = "contract/queue.rs"]
mod queue;
#[path = "contract/store.rs"]
mod store;
#[path = "contract/support.rs"]
mod support;

// Backends (see "Adding a backend" above).
#[path = "contract/aws.rs"]
mod aws;
#[path = "contract/embedded.rs"]
mod embedded;
