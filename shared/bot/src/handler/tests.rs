//! The bot as a customer meets it: the handler over the embedded adapters, the demo FAQ
//! and the demo orders, one message at a time.

use super::*;
use crate::faq::{SourceFormat, parse_source};
use crate::flows::FlowConfig;
use crate::index::FaqIndex;
use crate::library::{CURRENT_KEY, index_key};
use kefu::adapters::demo_orders::{DEMO_CUSTOMER_ID, DemoOrderSource};
use kefu::adapters::embedded::{EmbeddedStore, OUTBOUND};
use kefu::domain::{Channel, ConversationId, ConversationState, Escalation};
use std::sync::OnceLock;
use std::time::Duration;

/// The demo FAQ's bundle, built once for all tests (training takes seconds).
fn demo_bundle() -> Vec<u8> {
    static BUNDLE: OnceLock<Vec<u8>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/faq/faq.jsonl");
            let source = std::fs::read(path).expect("demo FAQ");
            let entries = parse_source(SourceFormat::JsonLines, &source).expect("demo FAQ parses");
            let index = FaqIndex::build(&entries).expect("demo FAQ builds");
            index.to_bundle().expect("bundle")
        })
        .clone()
}

/// One customer chatting with the demo shop.
struct Shop {
    _dir: tempfile::TempDir,
    storage: EmbeddedStore,
    outbound: Arc<dyn MessageQueue>,
    bot: Bot,
    customer: Customer,
    id: ConversationId,
    turns: u32,
}

impl Shop {
    async fn open() -> Self {
        Self::with_config(BotConfig::default()).await
    }

    async fn with_config(config: BotConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = EmbeddedStore::open(dir.path()).expect("store");
        let blobs: Arc<dyn BlobStore> = Arc::new(storage.blobs());
        blobs
            .put(&index_key("demo"), demo_bundle())
            .await
            .expect("put");
        blobs.put(CURRENT_KEY, b"demo".to_vec()).await.expect("put");
        let faq = Arc::new(FaqLibrary::default());
        faq.load(blobs.as_ref()).await.expect("loads");
        let outbound: Arc<dyn MessageQueue> = Arc::new(storage.queue(OUTBOUND));
        let store = Arc::new(storage.conversations());
        let bot = Bot::new(store.clone(), outbound.clone(), faq, blobs, config)
            .with_work_queue(store)
            .with_flows(Flows::new(
                Arc::new(DemoOrderSource::new()),
                FlowConfig::default(),
            ));
        let customer = Customer {
            address: "web-session-7".into(),
            name: None,
            verified_id: Some(DEMO_CUSTOMER_ID.into()),
        };
        let id = ConversationKey::new(Channel::Web, customer.address.clone()).conversation_id();
        Self {
            _dir: dir,
            storage,
            outbound,
            bot,
            customer,
            id,
            turns: 0,
        }
    }

    /// The customer writes `text`; the bot's reply, if it sent one.
    async fn say(&mut self, text: &str) -> Option<OutboundMessage> {
        self.turns += 1;
        let inbound = InboundMessage {
            schema: SCHEMA_VERSION,
            message_id: MessageId::for_inbound(&self.id, &format!("m{}", self.turns)),
            conversation_id: self.id.clone(),
            channel: Channel::Web,
            customer: self.customer.clone(),
            text: text.into(),
            received_at: now_millis(),
        };
        self.bot.handle(&inbound.to_json()).await.expect("handled");
        let sent = self
            .outbound
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .expect("receive");
        assert!(sent.len() <= 1, "one reply at most to {text:?}");
        let delivery = sent.into_iter().next()?;
        self.outbound
            .delete(&delivery.receipt)
            .await
            .expect("delete");
        Some(OutboundMessage::from_json(&delivery.body).expect("outbound JSON"))
    }

    /// A turn that must get a reply: its text.
    async fn reply(&mut self, text: &str) -> String {
        match self.say(text).await {
            Some(reply) => reply.text,
            None => panic!("no reply to {text:?}"),
        }
    }

    async fn conversation(&self) -> Conversation {
        self.storage
            .conversations()
            .get(&self.id)
            .await
            .expect("read")
            .expect("exists")
    }

    fn waiting_for_order(conversation: &Conversation) -> bool {
        matches!(&conversation.bot_context, Some(BotContext::Flow { slot, .. }) if slot == "order_id")
    }
}

/// What the flows say when a message has no order number in it.
const NO_ORDER_NUMBER: [&str; 2] = ["没有识别到订单号", "couldn't find an order number"];

fn is_reask(reply: &str) -> bool {
    NO_ORDER_NUMBER.iter().any(|r| reply.contains(r))
}

#[tokio::test]
async fn given_a_flow_waiting_for_an_order_number_when_an_faq_question_arrives_then_it_is_answered_and_the_flow_keeps_waiting()
 {
    for (start, question, answer_part, number, status) in [
        (
            "查一下订单",
            "下单后还能改收货地址吗？",
            "修改地址",
            "123456",
            "订单 123456：已发货",
        ),
        (
            "track my parcel",
            "can I change my delivery address after ordering?",
            "Change address",
            "123456",
            "Order 123456: shipped.",
        ),
    ] {
        let mut shop = Shop::open().await;
        let ask = shop.reply(start).await;
        assert!(!is_reask(&ask), "{ask}");
        assert!(Shop::waiting_for_order(&shop.conversation().await));

        let answer = shop.reply(question).await;
        assert!(!is_reask(&answer), "{question:?} met the re-ask: {answer}");
        assert!(answer.contains(answer_part), "{question:?}: {answer}");
        let after = shop.conversation().await;
        assert!(Shop::waiting_for_order(&after), "{:?}", after.bot_context);
        assert_eq!(after.bot_misses, 0);

        // The order number still finishes the flow.
        let done = shop.reply(number).await;
        assert!(done.contains(status), "{done}");
    }
}

#[tokio::test]
async fn given_a_flow_waiting_for_an_order_number_when_small_talk_or_a_request_for_a_person_arrives_then_each_is_answered_as_itself()
 {
    // Small talk, in both languages.
    for (start, talk, fits) in [
        ("查一下订单", "谢谢", "不客气"),
        ("where is my order", "thx", "welcome"),
    ] {
        let mut shop = Shop::open().await;
        shop.reply(start).await;
        let reply = shop.reply(talk).await;
        assert!(reply.contains(fits), "{talk:?}: {reply}");
        assert!(Shop::waiting_for_order(&shop.conversation().await));
    }
    // A request for a person, in both languages.
    for (start, request, notice) in [
        ("查一下订单", "转人工", "转接人工客服"),
        (
            "track my parcel",
            "can I talk to a real person",
            "human agent",
        ),
    ] {
        let mut shop = Shop::open().await;
        shop.reply(start).await;
        let reply = shop.reply(request).await;
        assert!(reply.contains(notice), "{request:?}: {reply}");
        let stored = shop.conversation().await;
        assert_eq!(stored.state, ConversationState::Waiting);
        assert_eq!(
            stored.escalation.map(|e| e.reason),
            Some("customer_request".to_owned())
        );
    }
}

#[tokio::test]
async fn given_a_flow_waiting_for_an_order_number_when_another_flows_intent_arrives_then_that_flow_starts()
 {
    for (start, other, expected) in [
        ("查一下订单", "我要取消订单123457", "确认取消订单 123457"),
        (
            "where is my order",
            "cancel my order 123457",
            "Cancel order 123457?",
        ),
    ] {
        let mut shop = Shop::open().await;
        shop.reply(start).await;
        let reply = shop.reply(other).await;
        assert!(reply.contains(expected), "{other:?}: {reply}");
    }
}

#[tokio::test]
async fn given_a_flow_waiting_for_an_order_number_when_the_customer_says_they_lack_it_then_it_still_asks_again()
 {
    for (start, lacking) in [
        ("查一下订单", "我不记得订单号了"),
        ("track my parcel", "I forgot the number"),
    ] {
        let mut shop = Shop::open().await;
        shop.reply(start).await;
        let reply = shop.reply(lacking).await;
        assert!(is_reask(&reply), "{lacking:?}: {reply}");
    }
}

#[tokio::test]
async fn given_the_demo_shop_when_a_customer_greets_asks_if_anyone_is_there_and_thanks_then_fitting_replies_and_no_handoff()
 {
    for (hello, there, thanks, bye) in [
        ("你好", "在吗", "谢谢", "再见"),
        ("hi", "are you there?", "thx", "bye"),
    ] {
        let mut shop = Shop::open().await;
        for text in [hello, there, thanks, bye, "好的", "嗯", "ok"] {
            let reply = shop.reply(text).await;
            assert!(
                !reply.contains("没有理解") && !reply.contains("didn't quite get"),
                "{text:?}: {reply}"
            );
            assert!(!reply.contains("人工客服，请稍候") && !reply.contains("hold on"));
        }
        let stored = shop.conversation().await;
        assert_eq!(
            stored.state,
            ConversationState::Bot,
            "handed off for small talk"
        );
        assert_eq!(stored.bot_misses, 0);
        let logged = crate::unanswered::list(&shop.storage.blobs(), None)
            .await
            .expect("list");
        assert!(
            logged.is_empty(),
            "small talk logged as unanswered: {logged:?}"
        );
    }
    let mut shop = Shop::open().await;
    assert!(shop.reply("你好").await.contains("您好"));
    assert!(shop.reply("在吗").await.contains("在的"));
    assert!(shop.reply("谢谢").await.contains("不客气"));
    let mut shop = Shop::open().await;
    assert!(shop.reply("hi").await.starts_with("Hi!"));
    assert!(shop.reply("are you there?").await.contains("I'm here"));
    assert!(shop.reply("thx").await.contains("welcome"));
}

#[tokio::test]
async fn given_a_greeting_inside_a_question_when_asked_then_the_question_is_answered() {
    let mut shop = Shop::open().await;
    let reply = shop.reply("你好，运费怎么算").await;
    assert!(!reply.contains("您好！请问有什么可以帮您"), "{reply}");
    assert!(reply.contains("运费") || reply.contains("包邮"), "{reply}");
}

#[tokio::test]
async fn given_a_paraphrase_with_words_around_it_when_asked_then_its_entry_answers() {
    let mut shop = Shop::open().await;
    let reply = shop.reply("这个商品什么时候发货").await;
    assert!(reply.contains("48小时内发货"), "{reply}");
}

#[tokio::test]
async fn given_an_unhelpful_answer_when_the_customer_says_so_then_an_apology_and_a_person_are_offered()
 {
    for (feedback, apology, offer) in [
        ("没用", "抱歉", "人工"),
        ("不对", "抱歉", "人工"),
        ("that didn't help", "Sorry", "agent"),
    ] {
        let mut shop = Shop::open().await;
        let reply = shop.say(feedback).await.expect("a reply");
        assert!(reply.text.contains(apology), "{feedback:?}: {}", reply.text);
        assert_eq!(reply.quick_replies, vec![offer.to_owned()], "{feedback:?}");
        let stored = shop.conversation().await;
        assert_eq!(stored.bot_misses, 0, "{feedback:?} counted as unanswered");
        // The offer taken: a person.
        shop.reply(offer).await;
        assert_eq!(shop.conversation().await.state, ConversationState::Waiting);
    }
}

#[tokio::test]
async fn given_small_talk_that_the_shop_faq_answers_when_asked_then_the_faq_wins() {
    let mut shop = Shop::open().await;
    // Entries are the shop's: a greeting of its own overrides the built-in one.
    let entry = |id: &str, question: &str, similar: &[&str], answer: &str| FaqEntry {
        id: id.into(),
        question: question.into(),
        similar: similar.iter().map(|s| s.to_string()).collect(),
        answer: answer.into(),
        quick_replies: Vec::new(),
        category: None,
        tags: Vec::new(),
        locale: None,
    };
    let entries = vec![
        entry(
            "hello",
            "hello",
            &["hi", "hey", "hi there", "hello there"],
            "Welcome to the shop of the month!",
        ),
        entry(
            "hello-zh",
            "你好",
            &["您好", "你好呀", "你们好", "哈喽"],
            "欢迎光临本月最佳小店！",
        ),
    ];
    let mut sample = parse_source(
        SourceFormat::JsonLines,
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/faq/faq.jsonl"
        ))
        .expect("demo FAQ"),
    )
    .expect("parses");
    sample.extend(entries);
    let bundle = FaqIndex::build(&sample)
        .expect("builds")
        .to_bundle()
        .expect("bundle");
    let blobs = shop.storage.blobs();
    blobs.put(&index_key("shop"), bundle).await.expect("put");
    blobs.put(CURRENT_KEY, b"shop".to_vec()).await.expect("put");
    shop.bot.faq.load(&blobs).await.expect("loads");
    assert_eq!(
        shop.reply("hello").await,
        "Welcome to the shop of the month!"
    );
    assert_eq!(shop.reply("你好").await, "欢迎光临本月最佳小店！");
}

#[tokio::test]
async fn given_a_handoff_when_the_customer_writes_again_then_a_person_is_coming_with_the_place_in_queue_said_once()
 {
    for (request, again, told) in [
        ("转人工", "在吗", "排在第 1 位"),
        ("agent please", "hello?", "next in the queue"),
    ] {
        let mut shop = Shop::open().await;
        shop.reply(request).await;
        assert_eq!(shop.conversation().await.state, ConversationState::Waiting);

        let next = shop.reply(again).await;
        assert!(next.contains(told), "{again:?}: {next}");
        for more in ["?", "还在吗", "hello"] {
            assert!(
                shop.say(more).await.is_none(),
                "{more:?} repeated the notice"
            );
        }
    }
}

#[tokio::test]
async fn given_others_waiting_ahead_when_the_customer_writes_after_the_handoff_then_their_place_is_told()
 {
    let mut shop = Shop::open().await;
    let store = shop.storage.conversations();
    for n in 0..2 {
        let key = ConversationKey::new(Channel::Sms, format!("+86138000000{n:02}"));
        let mut other = store
            .create(&Conversation::new(
                &key,
                Customer::default(),
                now_millis() - 10_000 + n,
            ))
            .await
            .expect("create");
        other
            .escalate(
                Escalation {
                    queue: "general".into(),
                    priority: 5,
                    reason: "customer_request".into(),
                },
                now_millis() - 10_000 + n,
            )
            .expect("escalate");
        store.save(&mut other).await.expect("save");
    }
    shop.reply("I want to speak to a human").await;
    let next = shop.reply("are you there?").await;
    assert!(next.contains("number 3 in the queue"), "{next}");
}

#[tokio::test]
async fn given_service_hours_when_handed_off_outside_them_then_the_hours_and_what_to_do_are_said_once()
 {
    // A window that is never now: one minute, a day of the week away from today.
    let now = now_millis();
    let local = now.div_euclid(60_000);
    let tomorrow = ((local.div_euclid(24 * 60) + 3 + 1).rem_euclid(7)) as usize;
    let day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][tomorrow];
    let hours = ServiceHours::parse(&format!("{day} 00:00-00:01 UTC")).expect("parses");
    assert!(!hours.is_open(now));
    for (request, closed, again) in [
        ("我要人工客服", "不在服务时间", "在吗"),
        ("agent", "no one is available right now", "hello?"),
    ] {
        let mut shop = Shop::with_config(BotConfig {
            service_hours: hours.clone(),
            ..BotConfig::default()
        })
        .await;
        let notice = shop.reply(request).await;
        assert!(notice.contains(closed), "{notice}");
        assert!(notice.contains("00:00-00:01"), "the hours: {notice}");
        assert!(notice.contains("留言") || notice.contains("Leave your message"));
        assert_eq!(shop.conversation().await.state, ConversationState::Waiting);
        assert!(shop.say(again).await.is_none(), "said twice");
    }
}

#[tokio::test]
async fn given_a_claimed_conversation_when_the_customer_writes_then_the_bot_stays_quiet() {
    let mut shop = Shop::open().await;
    shop.reply("转人工").await;
    let store = shop.storage.conversations();
    let mut conversation = shop.conversation().await;
    conversation.claim("alice", now_millis()).expect("claim");
    store.save(&mut conversation).await.expect("save");
    assert!(shop.say("你好，在吗").await.is_none());
}
