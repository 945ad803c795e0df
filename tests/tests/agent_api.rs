//! The agent API over the embedded adapters, driven through the router with
//! `tower::ServiceExt::oneshot`: login, queues, one owner per conversation, and that bad
//! input or the wrong agent changes nothing.

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kefu::adapters::embedded::{
    EmbeddedStore, OUTBOUND, SqliteConversationStore, SqliteMessageQueue,
};
use kefu::agent::{
    AgentAuthMode, AgentIdentity, AgentState, LoginGate, LoginLimits, claim, disable_agent,
    ensure_agent, router,
};
use kefu::auth::{Claims, TokenSigner, hash_password};
use kefu::domain::{
    Author, Channel, Conversation, ConversationId, ConversationKey, ConversationState, Customer,
    Escalation, MessageId, NewMessage, OutboundMessage, now_millis,
};
use kefu::ports::{AgentAccount, AgentDirectory, ConversationStore, MessageQueue};
use kefu::{Error, http::MAX_TEXT_CHARS};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tempfile::TempDir;
use tower::ServiceExt;

const TOKEN_SECRET: &str = "agent-api-test-token-secret";
const MAX_BODY: usize = 1024;

struct App {
    _dir: TempDir,
    embedded: EmbeddedStore,
    login: LoginGate,
    router: Router,
    tokens: TokenSigner,
}

struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    fn error_code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }

    fn error_message(&self) -> &str {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or("<no error message>")
    }
}

impl App {
    async fn new(auth: AgentAuthMode) -> Self {
        Self::with_limits(auth, LoginLimits::default()).await
    }

    async fn with_limits(auth: AgentAuthMode, limits: LoginLimits) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let embedded = EmbeddedStore::open(dir.path()).expect("embedded store");
        let tokens = TokenSigner::new(TOKEN_SECRET).expect("signer");
        let queues = vec!["general".to_owned(), "billing".to_owned()];
        ensure_agent(
            &embedded.agents(),
            "alice",
            "alice-password",
            "Alice",
            &queues,
        )
        .await
        .expect("alice");
        for (username, queues) in [
            ("bob", &["general"][..]),
            ("gina", &["general"]),
            ("gabe", &["general"]),
            ("bill", &["billing"]),
        ] {
            add_account(&embedded, username, queues).await;
        }
        let conversations = Arc::new(embedded.conversations());
        let state = AgentState {
            store: conversations.clone(),
            work: conversations,
            agents: Arc::new(embedded.agents()),
            outbound: Arc::new(embedded.queue(OUTBOUND)),
            tokens: tokens.clone(),
            auth,
            queues,
            login: LoginGate::new(limits),
            max_body_bytes: MAX_BODY,
        };
        let login = state.login.clone();
        Self {
            _dir: dir,
            login,
            router: router(state),
            embedded,
            tokens,
        }
    }

    fn store(&self) -> SqliteConversationStore {
        self.embedded.conversations()
    }

    fn outbound(&self) -> SqliteMessageQueue {
        self.embedded.queue(OUTBOUND)
    }

    /// An agent token without a login round trip (logins are tested on their own).
    fn token(&self, agent: &str) -> String {
        self.tokens.issue(&Claims::agent(agent, now_millis()))
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        Reply { status, body }
    }

    async fn post(&self, uri: &str, token: Option<&str>, body: &str) -> Reply {
        self.send(request(Method::POST, uri, token, body)).await
    }

    async fn get(&self, uri: &str, token: Option<&str>) -> Reply {
        self.send(request(Method::GET, uri, token, "")).await
    }

    /// A conversation escalated to `queue` with one customer message.
    async fn waiting(&self, address: &str, queue: &str, priority: u8) -> ConversationId {
        let store = self.store();
        let key = ConversationKey::new(Channel::Sms, address);
        let customer = Customer {
            address: address.to_owned(),
            name: Some(format!("Customer {address}")),
            verified_id: None,
        };
        let mut conversation = store
            .create(&Conversation::new(&key, customer, now_millis()))
            .await
            .unwrap();
        store
            .append(
                &conversation.id,
                NewMessage {
                    message_id: MessageId::for_inbound(&conversation.id, "sms-1"),
                    author: Author::Customer,
                    agent_id: None,
                    text: "我要退货".into(),
                    created_at: now_millis(),
                    sentiment: None,
                    quick_replies: Vec::new(),
                },
            )
            .await
            .unwrap();
        conversation
            .escalate(
                Escalation {
                    queue: queue.to_owned(),
                    priority,
                    reason: "customer_request".into(),
                },
                now_millis(),
            )
            .unwrap();
        store.save(&mut conversation).await.unwrap();
        conversation.id
    }

    async fn conversation(&self, id: &ConversationId) -> Conversation {
        self.store().get(id).await.unwrap().expect("conversation")
    }

    async fn message_count(&self, id: &ConversationId) -> usize {
        self.store().messages(id, 0, 100).await.unwrap().len()
    }

    async fn queued(&self) -> u64 {
        self.outbound().depth().await.unwrap().total()
    }
}

/// An account with a password nobody uses (tests take tokens without logging in).
async fn add_account(embedded: &EmbeddedStore, username: &str, queues: &[&str]) {
    static HASH: OnceLock<String> = OnceLock::new();
    let password_hash = HASH
        .get_or_init(|| hash_password("unused-password").expect("hash"))
        .clone();
    let created = embedded
        .agents()
        .create_agent(&AgentAccount {
            username: username.to_owned(),
            display_name: username.to_owned(),
            password_hash,
            queues: queues.iter().map(|q| (*q).to_owned()).collect(),
            disabled: false,
            created_at: now_millis(),
        })
        .await
        .expect("account");
    assert!(created, "{username} is new");
}

fn request(method: Method, uri: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

fn path(id: &ConversationId, action: &str) -> String {
    format!("/v1/agent/conversations/{id}{action}")
}

fn text(text: &str) -> String {
    json!({ "text": text }).to_string()
}

// ---- login -----------------------------------------------------------------------------------

#[tokio::test]
async fn given_the_right_password_when_logging_in_then_an_agent_token() {
    let app = App::new(AgentAuthMode::Local).await;
    let reply = app
        .post(
            "/v1/agent/login",
            None,
            r#"{"username":"alice","password":"alice-password"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["display_name"], "Alice");
    let token = reply.body["token"].as_str().unwrap();
    let claims = app.tokens.verify(token, now_millis()).unwrap();
    assert_eq!(claims.sub, "alice");

    let queues = app.get("/v1/agent/queues", Some(token)).await;
    assert_eq!(
        queues.status,
        StatusCode::OK,
        "the token works: {}",
        queues.body
    );
}

#[tokio::test]
async fn given_a_wrong_password_or_user_when_logging_in_then_the_same_401() {
    let app = App::new(AgentAuthMode::Local).await;
    let mut messages = Vec::new();
    for body in [
        r#"{"username":"alice","password":"wrong"}"#,
        r#"{"username":"mallory","password":"alice-password"}"#,
        r#"{"username":"a l i c e","password":"alice-password"}"#,
    ] {
        let reply = app.post("/v1/agent/login", None, body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(reply.body.get("token").is_none());
        messages.push(reply.error_message().to_owned());
    }
    assert!(
        messages.iter().all(|m| m == "wrong username or password"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn given_malformed_login_bodies_then_400_or_415() {
    let app = App::new(AgentAuthMode::Local).await;
    for body in [
        "{",
        r#"{"username":"alice"}"#,
        r#"{"username":"alice","password":"x","role":"admin"}"#,
        r#"{"username":"","password":""}"#,
    ] {
        let reply = app.post("/v1/agent/login", None, body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
    }
    let reply = app
        .send(
            Request::post("/v1/agent/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("username=alice&password=alice-password"))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn given_cognito_mode_when_logging_in_then_404_pointing_to_cognito() {
    let app = App::new(AgentAuthMode::Cognito).await;
    let reply = app
        .post(
            "/v1/agent/login",
            None,
            r#"{"username":"alice","password":"alice-password"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_message(), "login is handled by Cognito");
}

#[tokio::test]
async fn given_an_existing_account_when_ensuring_it_again_then_left_alone() {
    let app = App::new(AgentAuthMode::Local).await;
    let agents = app.embedded.agents();
    let before = agents.agent("alice").await.unwrap().unwrap();
    let created = ensure_agent(&agents, "alice", "new-password", "Alice 2", &[])
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(agents.agent("alice").await.unwrap().unwrap(), before);
    assert!(matches!(
        ensure_agent(&agents, "bad name", "pw", "Bad", &[]).await,
        Err(Error::Invalid(_))
    ));
}

// ---- authentication on every route --------------------------------------------------------

#[tokio::test]
async fn given_missing_forged_expired_or_visitor_tokens_then_401_on_every_agent_route() {
    let app = App::new(AgentAuthMode::Local).await;
    let id = app.waiting("+8613800000001", "general", 5).await;
    let visitor = app
        .tokens
        .issue(&Claims::visitor("v:1", id.clone(), now_millis()));
    let forged = TokenSigner::new("not-the-real-secret-value")
        .unwrap()
        .issue(&Claims::agent("alice", now_millis()));
    let expired = app
        .tokens
        .issue(&Claims::agent("alice", now_millis() - 13 * 3600 * 1000));
    let routes = [
        (Method::GET, "/v1/agent/queues".to_owned(), String::new()),
        (Method::GET, path(&id, ""), String::new()),
        (Method::POST, path(&id, "/claim"), String::new()),
        (Method::POST, path(&id, "/messages"), text("hi")),
        (Method::POST, path(&id, "/resolve"), String::new()),
    ];
    for (method, uri, body) in &routes {
        for token in [
            None,
            Some(visitor.as_str()),
            Some(forged.as_str()),
            Some(expired.as_str()),
        ] {
            let reply = app.send(request(method.clone(), uri, token, body)).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} {token:?}"
            );
            assert_eq!(reply.error_code(), "unauthorized");
        }
    }
    let conversation = app.conversation(&id).await;
    assert_eq!(conversation.state, ConversationState::Waiting);
    assert_eq!(conversation.assignee, None);
    assert_eq!(app.message_count(&id).await, 1);
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn given_cognito_mode_then_only_the_identity_from_the_authorizer_counts() {
    let app = App::new(AgentAuthMode::Cognito).await;
    let id = app.waiting("+8613800000002", "general", 5).await;

    let bearer_only = app
        .post(&path(&id, "/claim"), Some(&app.token("alice")), "")
        .await;
    assert_eq!(bearer_only.status, StatusCode::UNAUTHORIZED);

    let mut other_queue = request(Method::POST, &path(&id, "/claim"), None, "");
    other_queue
        .extensions_mut()
        .insert(AgentIdentity::agent("carol", &["billing"]));
    assert_eq!(app.send(other_queue).await.status, StatusCode::NOT_FOUND);

    let mut with_identity = request(Method::POST, &path(&id, "/claim"), None, "");
    with_identity
        .extensions_mut()
        .insert(AgentIdentity::agent("carol", &["general"]));
    let reply = app.send(with_identity).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        app.conversation(&id).await.assignee.as_deref(),
        Some("carol")
    );
}

/// GIVEN Cognito mode and a user of the pool outside the `role:agent` group WHEN it calls
/// any agent route THEN 403 and nothing changes; its `queue:` groups alone give nothing.
#[tokio::test]
async fn given_cognito_mode_and_a_user_without_the_agent_role_then_403_everywhere() {
    let app = App::new(AgentAuthMode::Cognito).await;
    let id = app.waiting("+8613800000003", "general", 5).await;
    let claims = std::collections::HashMap::from([
        ("cognito:username".to_owned(), "mallory".to_owned()),
        ("cognito:groups".to_owned(), "[queue:general]".to_owned()),
    ]);
    let identity = AgentIdentity::from_jwt_claims(&claims).expect("named");
    for (method, uri, body) in [
        (Method::GET, "/v1/agent/queues".to_owned(), String::new()),
        (Method::GET, path(&id, ""), String::new()),
        (Method::POST, path(&id, "/claim"), String::new()),
        (Method::POST, path(&id, "/messages"), text("hi")),
        (Method::POST, path(&id, "/resolve"), String::new()),
    ] {
        let mut request = request(method.clone(), &uri, None, &body);
        request.extensions_mut().insert(identity.clone());
        let reply = app.send(request).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert_eq!(reply.error_code(), "forbidden");
    }
    assert_eq!(
        app.conversation(&id).await.state,
        ConversationState::Waiting
    );
    assert_eq!(app.queued().await, 0);
}

// ---- queues --------------------------------------------------------------------------------

#[tokio::test]
async fn given_waiting_conversations_when_listing_queues_then_each_queue_by_priority() {
    let app = App::new(AgentAuthMode::Local).await;
    let low = app.waiting("+8613800000010", "general", 1).await;
    let high = app.waiting("+8613800000011", "general", 9).await;
    let billing = app.waiting("+8613800000012", "billing", 5).await;
    let reply = app.get("/v1/agent/queues", Some(&app.token("alice"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let queues = reply.body["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 2);
    assert_eq!(queues[0]["name"], "general");
    let general: Vec<&str> = queues[0]["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["conversation_id"].as_str().unwrap())
        .collect();
    assert_eq!(general, [high.as_str(), low.as_str()]);
    let first = &queues[0]["waiting"][0];
    assert_eq!(first["channel"], "sms");
    assert_eq!(first["priority"], 9);
    assert_eq!(first["reason"], "customer_request");
    assert_eq!(first["customer_name"], "Customer +8613800000011");
    assert!(chrono::DateTime::parse_from_rfc3339(first["waiting_since"].as_str().unwrap()).is_ok());
    assert_eq!(queues[1]["waiting"][0]["conversation_id"], billing.as_str());
}

// ---- claim -----------------------------------------------------------------------------------

#[tokio::test]
async fn given_a_waiting_conversation_when_two_agents_claim_then_the_first_wins_and_the_second_gets_409()
 {
    let app = App::new(AgentAuthMode::Local).await;
    let id = app.waiting("+8613800000020", "general", 5).await;
    let alice = app
        .post(&path(&id, "/claim"), Some(&app.token("alice")), "")
        .await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.body);
    assert_eq!(alice.body["conversation"]["state"], "assigned");
    assert_eq!(alice.body["conversation"]["assignee"], "alice");

    let bob = app
        .post(&path(&id, "/claim"), Some(&app.token("bob")), "")
        .await;
    assert_eq!(bob.status, StatusCode::CONFLICT);
    assert_eq!(bob.error_code(), "conflict");
    assert_eq!(
        app.conversation(&id).await.assignee.as_deref(),
        Some("alice")
    );

    let again = app
        .post(&path(&id, "/claim"), Some(&app.token("alice")), "")
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "claiming one's own conversation is a no-op"
    );

    let queues = app.get("/v1/agent/queues", Some(&app.token("bob"))).await;
    assert_eq!(queues.body["queues"][0]["waiting"], json!([]));
}

#[tokio::test]
async fn given_concurrent_claims_then_exactly_one_agent_owns_the_conversation() {
    let app = App::new(AgentAuthMode::Local).await;
    let id = app.waiting("+8613800000021", "general", 5).await;
    let store: Arc<dyn ConversationStore> = Arc::new(app.store());
    let agents = ["a1", "a2", "a3", "a4"];
    let tasks: Vec<_> = agents
        .into_iter()
        .map(|agent| {
            let (store, id) = (store.clone(), id.clone());
            let me = AgentIdentity::agent(agent, &["general"]);
            tokio::spawn(async move { claim(store.as_ref(), &id, &me).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (agent, task) in agents.iter().zip(tasks) {
        match task.await.unwrap() {
            Ok(conversation) => winners.push((*agent, conversation.assignee)),
            Err(Error::Conflict(_)) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (winner, assignee) = &winners[0];
    assert_eq!(assignee.as_deref(), Some(*winner));
    assert_eq!(
        app.conversation(&id).await.assignee.as_deref(),
        Some(*winner)
    );
}

#[tokio::test]
async fn given_bad_ids_unknown_bot_only_or_resolved_conversations_when_claiming_then_4xx_and_unchanged()
 {
    let app = App::new(AgentAuthMode::Local).await;
    let token = app.token("alice");
    for bad in [
        "nope",
        "c123",
        "C0000000000000000000000000000000",
        "..%2F..%2Fetc",
    ] {
        let reply = app
            .post(
                &format!("/v1/agent/conversations/{bad}/claim"),
                Some(&token),
                "",
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), "bad_request");
    }
    let ghost = ConversationKey::new(Channel::Web, "v:ghost").conversation_id();
    let reply = app.post(&path(&ghost, "/claim"), Some(&token), "").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(app.store().get(&ghost).await.unwrap(), None);

    let key = ConversationKey::new(Channel::Web, "v:bot");
    let with_bot = app
        .store()
        .create(&Conversation::new(&key, Customer::default(), now_millis()))
        .await
        .unwrap();
    let reply = app
        .post(&path(&with_bot.id, "/claim"), Some(&token), "")
        .await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "never handed to a person: {}",
        reply.body
    );
    assert_eq!(app.conversation(&with_bot.id).await, with_bot);

    let resolved = app.waiting("+8613800000022", "general", 5).await;
    app.post(&path(&resolved, "/claim"), Some(&token), "").await;
    app.post(&path(&resolved, "/resolve"), Some(&token), "")
        .await;
    let before = app.conversation(&resolved).await;
    let reply = app
        .post(&path(&resolved, "/claim"), Some(&app.token("bob")), "")
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert!(
        reply.error_message().contains("state resolved"),
        "{}",
        reply.body
    );
    assert_eq!(app.conversation(&resolved).await, before);
}

// ---- reading a conversation ---------------------------------------------------------------

#[tokio::test]
async fn given_a_conversation_when_shown_then_state_and_messages() {
    let app = App::new(AgentAuthMode::Local).await;
    let id = app.waiting("+8613800000030", "general", 5).await;
    let token = app.token("alice");
    app.post(&path(&id, "/claim"), Some(&token), "").await;
    app.post(&path(&id, "/messages"), Some(&token), &text("马上为您处理"))
        .await;

    let reply = app.get(&path(&id, ""), Some(&app.token("bob"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let conversation = &reply.body["conversation"];
    assert_eq!(conversation["id"], id.as_str());
    assert_eq!(conversation["state"], "assigned");
    assert_eq!(conversation["assignee"], "alice");
    assert_eq!(conversation["escalation"]["queue"], "general");
    assert_eq!(conversation["customer_name"], "Customer +8613800000030");
    let messages = reply.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["author"], "customer");
    assert!(messages[0].get("agent_id").is_none());
    assert_eq!(messages[1]["author"], "agent");
    assert_eq!(messages[1]["agent_id"], "alice");
    assert_eq!(messages[1]["text"], "马上为您处理");
    assert_eq!(messages[1]["delivery"], "pending");

    let later = app
        .get(&format!("{}?after=1", path(&id, "")), Some(&token))
        .await;
    assert_eq!(later.body["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn given_bad_ids_or_query_params_when_showing_then_400_and_unknown_404() {
    let app = App::new(AgentAuthMode::Local).await;
    let id = app.waiting("+8613800000031", "general", 5).await;
    let token = app.token("alice");
    for query in ["after=x", "after=-1", "limit=5"] {
        let reply = app
            .get(&format!("{}?{query}", path(&id, "")), Some(&token))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
    }
    let reply = app.get("/v1/agent/conversations/zzz", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let ghost = ConversationKey::new(Channel::Web, "v:ghost").conversation_id();
    let reply = app.get(&path(&ghost, ""), Some(&token)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

// ---- replying ------------------------------------------------------------------------------

#[tokio::test]
async fn given_the_owner_when_replying_then_stored_and_queued_for_the_customer_channel() {
    let app = App::new(AgentAuthMode::Local).await;
    let id = app.waiting("+8613800000040", "general", 5).await;
    let token = app.token("alice");
    app.post(&path(&id, "/claim"), Some(&token), "").await;
    let reply = app
        .post(
            &path(&id, "/messages"),
            Some(&token),
            &text(" 已为您办理退货 "),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["seq"], 2);

    assert_eq!(app.message_count(&id).await, 2);
    let deliveries = app
        .outbound()
        .receive(10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    let envelope = OutboundMessage::from_json(&deliveries[0].body).unwrap();
    assert_eq!(
        envelope.message_id.as_str(),
        reply.body["message_id"].as_str().unwrap()
    );
    assert_eq!(envelope.conversation_id, id);
    assert_eq!(envelope.channel, Channel::Sms);
    assert_eq!(envelope.recipient, "+8613800000040");
    assert_eq!(envelope.author, Author::Agent);
    assert_eq!(envelope.agent_id.as_deref(), Some("alice"));
    assert_eq!(envelope.text, "已为您办理退货");
}

#[tokio::test]
async fn given_a_non_owner_or_an_unclaimed_conversation_when_replying_then_409_and_nothing_sent() {
    let app = App::new(AgentAuthMode::Local).await;
    let id = app.waiting("+8613800000041", "general", 5).await;
    let unclaimed = app
        .post(
            &path(&id, "/messages"),
            Some(&app.token("alice")),
            &text("hi"),
        )
        .await;
    assert_eq!(unclaimed.status, StatusCode::CONFLICT);

    app.post(&path(&id, "/claim"), Some(&app.token("alice")), "")
        .await;
    let bob = app
        .post(
            &path(&id, "/messages"),
            Some(&app.token("bob")),
            &text("hi"),
        )
        .await;
    assert_eq!(bob.status, StatusCode::CONFLICT);
    assert_eq!(
        bob.error_message(),
        "conversation is assigned to another agent"
    );
    assert_eq!(app.message_count(&id).await, 1);
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn given_bad_reply_bodies_then_4xx_and_nothing_stored_or_queued() {
    let app = App::new(AgentAuthMode::Local).await;
    let id = app.waiting("+8613800000042", "general", 5).await;
    let token = app.token("alice");
    app.post(&path(&id, "/claim"), Some(&token), "").await;
    let cases = [
        ("{".to_owned(), StatusCode::BAD_REQUEST),
        ("{}".to_owned(), StatusCode::BAD_REQUEST),
        (text("   "), StatusCode::BAD_REQUEST),
        (
            r#"{"text":"hi","author":"bot"}"#.to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"text":42}"#.to_owned(), StatusCode::BAD_REQUEST),
        (text(&"x".repeat(MAX_BODY)), StatusCode::PAYLOAD_TOO_LARGE),
    ];
    for (body, status) in cases {
        let reply = app.post(&path(&id, "/messages"), Some(&token), &body).await;
        assert_eq!(reply.status, status, "{body:.60}: {}", reply.body);
        assert!(!reply.error_message().is_empty());
    }
    let ghost = ConversationKey::new(Channel::Web, "v:ghost").conversation_id();
    let reply = app
        .post(&path(&ghost, "/messages"), Some(&token), &text("hi"))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = app
        .post(
            "/v1/agent/conversations/bad-id/messages",
            Some(&token),
            &text("hi"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    assert_eq!(app.message_count(&id).await, 1);
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn given_text_over_the_character_limit_when_replying_then_400() {
    let app = App::new(AgentAuthMode::Local).await;
    let id = app.waiting("+8613800000043", "general", 5).await;
    let token = app.token("alice");
    app.post(&path(&id, "/claim"), Some(&token), "").await;
    // Fits the body limit in bytes only when the limit is raised; checked directly here.
    assert!(kefu::http::message_text(&"x".repeat(MAX_TEXT_CHARS + 1)).is_err());
    let reply = app
        .post(
            &path(&id, "/messages"),
            Some(&token),
            &text(&"x".repeat(MAX_BODY - 20)),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "just under the body limit is fine"
    );
}

// ---- resolving -----------------------------------------------------------------------------

#[tokio::test]
async fn given_a_non_owner_when_resolving_then_409_and_the_owner_can_resolve() {
    let app = App::new(AgentAuthMode::Local).await;
    let id = app.waiting("+8613800000050", "general", 5).await;
    app.post(&path(&id, "/claim"), Some(&app.token("alice")), "")
        .await;

    let bob = app
        .post(&path(&id, "/resolve"), Some(&app.token("bob")), "")
        .await;
    assert_eq!(bob.status, StatusCode::CONFLICT);
    let conversation = app.conversation(&id).await;
    assert_eq!(conversation.state, ConversationState::Assigned);
    assert_eq!(conversation.assignee.as_deref(), Some("alice"));

    let alice = app
        .post(&path(&id, "/resolve"), Some(&app.token("alice")), "")
        .await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.body);
    assert_eq!(alice.body["conversation"]["state"], "resolved");
    assert_eq!(
        app.conversation(&id).await.state,
        ConversationState::Resolved
    );

    let twice = app
        .post(&path(&id, "/resolve"), Some(&app.token("alice")), "")
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn given_unknown_routes_or_methods_then_json_404_and_405() {
    let app = App::new(AgentAuthMode::Local).await;
    let reply = app
        .get("/v1/agent/nothing", Some(&app.token("alice")))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
    let reply = app.get("/v1/agent/login", None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error_code(), "method_not_allowed");
}

// ---- who may do what: every route × every kind of caller ---------------------------------

/// The callers of the authorization matrix, each with the conversation it acts on.
#[derive(Debug, Clone, Copy)]
enum Caller {
    /// gina owns the conversation (escalated to `general`, claimed by her).
    Owner,
    /// gabe works `general`; the conversation waits there.
    SameQueueWaiting,
    /// gabe works `general`; gina owns the conversation.
    SameQueueOwnedByAnother,
    /// bill works only `billing`; the conversation waits in `general`.
    OtherQueue,
    /// bill owns a conversation of `general` (e.g. he has left that queue since).
    OwnerOutsideTheQueue,
    /// gina, on a conversation the bot handled alone (never handed to a person).
    BotOnly,
    /// The conversation's own visitor token.
    VisitorToken,
    /// No `Authorization` header.
    NoToken,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    ListQueues,
    Show,
    Claim,
    SendReply,
    Resolve,
}

impl App {
    /// The conversation `caller` acts on, set up fresh, and the caller's token.
    async fn cell(&self, caller: Caller, n: usize) -> (ConversationId, Option<String>) {
        let address = format!("+86139{n:08}");
        let id = match caller {
            Caller::BotOnly => {
                let key = ConversationKey::new(Channel::Sms, &address);
                let customer = Customer {
                    address: address.clone(),
                    name: Some("Bot-only customer".into()),
                    verified_id: None,
                };
                let store = self.store();
                let conversation = store
                    .create(&Conversation::new(&key, customer, now_millis()))
                    .await
                    .unwrap();
                store
                    .append(
                        &conversation.id,
                        NewMessage {
                            message_id: MessageId::for_inbound(&conversation.id, "sms-1"),
                            author: Author::Customer,
                            agent_id: None,
                            text: "my address is 1 Main St".into(),
                            created_at: now_millis(),
                            sentiment: None,
                            quick_replies: Vec::new(),
                        },
                    )
                    .await
                    .unwrap();
                conversation.id
            }
            _ => self.waiting(&address, "general", 5).await,
        };
        let owner = match caller {
            Caller::Owner | Caller::SameQueueOwnedByAnother => Some("gina"),
            Caller::OwnerOutsideTheQueue => Some("bill"),
            _ => None,
        };
        if let Some(owner) = owner {
            let mut conversation = self.conversation(&id).await;
            conversation.claim(owner, now_millis()).unwrap();
            self.store().save(&mut conversation).await.unwrap();
        }
        let token = match caller {
            Caller::Owner | Caller::BotOnly => Some(self.token("gina")),
            Caller::SameQueueWaiting | Caller::SameQueueOwnedByAnother => Some(self.token("gabe")),
            Caller::OtherQueue | Caller::OwnerOutsideTheQueue => Some(self.token("bill")),
            Caller::VisitorToken => Some(self.tokens.issue(&Claims::visitor(
                "v:1",
                id.clone(),
                now_millis(),
            ))),
            Caller::NoToken => None,
        };
        (id, token)
    }
}

/// GIVEN each kind of caller and a conversation set up for it WHEN it calls each agent
/// route THEN the status is the table's (agents act only in conversations of their own
/// queues that were handed to a person, or that they own), the queue list shows only the
/// caller's queues, and a refused call changes nothing. Every failing cell is named.
#[tokio::test]
async fn given_every_route_and_every_kind_of_caller_then_only_allowed_cells_succeed() {
    use Caller::*;
    use Route::*;
    const OK: u16 = 200;
    const CREATED: u16 = 201;
    const UNAUTHORIZED: u16 = 401;
    const NOT_FOUND: u16 = 404;
    const CONFLICT: u16 = 409;
    // (route, caller, status, for `Queues`: whether the conversation is listed)
    let table: &[(Route, Caller, u16, bool)] = &[
        (ListQueues, Owner, OK, false),
        (ListQueues, SameQueueWaiting, OK, true),
        (ListQueues, SameQueueOwnedByAnother, OK, false),
        (ListQueues, OtherQueue, OK, false),
        (ListQueues, OwnerOutsideTheQueue, OK, false),
        (ListQueues, BotOnly, OK, false),
        (ListQueues, VisitorToken, UNAUTHORIZED, false),
        (ListQueues, NoToken, UNAUTHORIZED, false),
        (Show, Owner, OK, false),
        (Show, SameQueueWaiting, OK, false),
        (Show, SameQueueOwnedByAnother, OK, false),
        (Show, OtherQueue, NOT_FOUND, false),
        (Show, OwnerOutsideTheQueue, OK, false),
        (Show, BotOnly, NOT_FOUND, false),
        (Show, VisitorToken, UNAUTHORIZED, false),
        (Show, NoToken, UNAUTHORIZED, false),
        (Claim, Owner, OK, false),
        (Claim, SameQueueWaiting, OK, false),
        (Claim, SameQueueOwnedByAnother, CONFLICT, false),
        (Claim, OtherQueue, NOT_FOUND, false),
        (Claim, OwnerOutsideTheQueue, OK, false),
        (Claim, BotOnly, NOT_FOUND, false),
        (Claim, VisitorToken, UNAUTHORIZED, false),
        (Claim, NoToken, UNAUTHORIZED, false),
        (SendReply, Owner, CREATED, false),
        (SendReply, SameQueueWaiting, CONFLICT, false),
        (SendReply, SameQueueOwnedByAnother, CONFLICT, false),
        (SendReply, OtherQueue, NOT_FOUND, false),
        (SendReply, OwnerOutsideTheQueue, CREATED, false),
        (SendReply, BotOnly, NOT_FOUND, false),
        (SendReply, VisitorToken, UNAUTHORIZED, false),
        (SendReply, NoToken, UNAUTHORIZED, false),
        (Resolve, Owner, OK, false),
        (Resolve, SameQueueWaiting, CONFLICT, false),
        (Resolve, SameQueueOwnedByAnother, CONFLICT, false),
        (Resolve, OtherQueue, NOT_FOUND, false),
        (Resolve, OwnerOutsideTheQueue, OK, false),
        (Resolve, BotOnly, NOT_FOUND, false),
        (Resolve, VisitorToken, UNAUTHORIZED, false),
        (Resolve, NoToken, UNAUTHORIZED, false),
    ];
    let app = App::new(AgentAuthMode::Local).await;
    let mut failures = Vec::new();
    for (n, &(route, caller, status, listed)) in table.iter().enumerate() {
        let cell = format!("{route:?} × {caller:?}");
        let (id, token) = app.cell(caller, n).await;
        let before = app.conversation(&id).await;
        let (messages, queued) = (app.message_count(&id).await, app.queued().await);
        let (method, uri, body) = match route {
            ListQueues => (Method::GET, "/v1/agent/queues".to_owned(), String::new()),
            Show => (Method::GET, path(&id, ""), String::new()),
            Claim => (Method::POST, path(&id, "/claim"), String::new()),
            SendReply => (Method::POST, path(&id, "/messages"), text("hello")),
            Resolve => (Method::POST, path(&id, "/resolve"), String::new()),
        };
        let reply = app
            .send(request(method, &uri, token.as_deref(), &body))
            .await;
        if reply.status.as_u16() != status {
            failures.push(format!(
                "{cell}: expected {status}, got {} {}",
                reply.status, reply.body
            ));
            continue;
        }
        if let ListQueues = route {
            let shown = reply.body.to_string().contains(id.as_str());
            if shown != listed {
                failures.push(format!(
                    "{cell}: conversation listed = {shown}, expected {listed}"
                ));
            }
        }
        if status >= 400 {
            let unchanged = app.conversation(&id).await == before
                && app.message_count(&id).await == messages
                && app.queued().await == queued;
            if !unchanged {
                failures.push(format!(
                    "{cell}: refused with {status} but something changed"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cells failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}

/// GIVEN agents of different queues WHEN they list the queues THEN each sees only the
/// configured queues it works, in the configured order.
#[tokio::test]
async fn given_agents_of_different_queues_when_listing_then_each_sees_only_its_own() {
    let app = App::new(AgentAuthMode::Local).await;
    let general = app.waiting("+8613800000060", "general", 5).await;
    let billing = app.waiting("+8613800000061", "billing", 5).await;
    let names = |reply: &Reply| -> Vec<String> {
        reply.body["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let bill = app.get("/v1/agent/queues", Some(&app.token("bill"))).await;
    assert_eq!(bill.status, StatusCode::OK, "{}", bill.body);
    assert_eq!(names(&bill), ["billing"]);
    assert!(!bill.body.to_string().contains(general.as_str()));
    assert!(bill.body.to_string().contains(billing.as_str()));
    let alice = app.get("/v1/agent/queues", Some(&app.token("alice"))).await;
    assert_eq!(names(&alice), ["general", "billing"]);
}

/// GIVEN an agent with a working token WHEN the account is disabled, or deleted THEN the
/// same token gets 401 at once, and a disabled account cannot log in.
#[tokio::test]
async fn given_a_disabled_or_deleted_account_then_its_token_stops_working_at_once() {
    let app = App::new(AgentAuthMode::Local).await;
    let agents = app.embedded.agents();
    let login = r#"{"username":"alice","password":"alice-password"}"#;
    let token = app.post("/v1/agent/login", None, login).await.body["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let gabe = app.token("gabe");
    for token in [&token, &gabe] {
        let reply = app.get("/v1/agent/queues", Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    assert!(disable_agent(&agents, "alice").await.unwrap());
    let reply = app.get("/v1/agent/queues", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    let relogin = app.post("/v1/agent/login", None, login).await;
    assert_eq!(relogin.status, StatusCode::FORBIDDEN, "{}", relogin.body);
    assert!(relogin.body.get("token").is_none());

    assert!(agents.delete_agent("gabe").await.unwrap());
    let reply = app.get("/v1/agent/queues", Some(&gabe)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
}

/// GIVEN a token of an agent whose account does not exist WHEN it calls any route THEN 401.
#[tokio::test]
async fn given_a_token_of_an_unknown_account_then_401_on_every_route() {
    let app = App::new(AgentAuthMode::Local).await;
    let id = app.waiting("+8613800000070", "general", 5).await;
    let token = app.token("ghost");
    for (method, uri) in [
        (Method::GET, "/v1/agent/queues".to_owned()),
        (Method::GET, path(&id, "")),
        (Method::POST, path(&id, "/claim")),
    ] {
        let reply = app
            .send(request(method.clone(), &uri, Some(&token), ""))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    assert_eq!(app.conversation(&id).await.assignee, None);
}

// ---- password guessing -------------------------------------------------------------------

/// GIVEN an account WHEN fifty wrong passwords are sent for it THEN only the first few are
/// checked (401) and the rest get 429 with a `Retry-After`; the right password is refused
/// while the account is backed off.
#[tokio::test]
async fn given_fifty_wrong_passwords_then_the_account_is_backed_off_with_429() {
    let limits = LoginLimits {
        first_backoff: Duration::from_secs(60),
        ..LoginLimits::default()
    };
    let app = App::with_limits(AgentAuthMode::Local, limits).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..50 {
        let response = app
            .router
            .clone()
            .oneshot(request(
                Method::POST,
                "/v1/agent/login",
                None,
                r#"{"username":"alice","password":"guess"}"#,
            ))
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
        }
        statuses.push(response.status().as_u16());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked, 5, "wrong passwords checked: {statuses:?}");
    assert_eq!(checked + throttled, 50, "{statuses:?}");
    assert!(
        retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "Retry-After: {retry_after:?}"
    );
    let right = app
        .post(
            "/v1/agent/login",
            None,
            r#"{"username":"alice","password":"alice-password"}"#,
        )
        .await;
    assert_eq!(
        right.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        right.body
    );
}

fn login_from(address: &str, username: &str, password: &str) -> Request<Body> {
    let mut request = request(
        Method::POST,
        "/v1/agent/login",
        None,
        &json!({ "username": username, "password": password }).to_string(),
    );
    let address: std::net::SocketAddr = address.parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(address));
    request
}

/// GIVEN short backoffs WHEN an account is backed off and the backoff ends THEN the right
/// password works again and clears the account's counter.
#[tokio::test]
async fn given_a_backed_off_account_when_the_backoff_ends_then_the_right_password_works() {
    let limits = LoginLimits {
        account_free_failures: 2,
        first_backoff: Duration::from_millis(300),
        ..LoginLimits::default()
    };
    let app = App::with_limits(AgentAuthMode::Local, limits).await;
    for _ in 0..2 {
        let reply = app
            .send(login_from("192.0.2.1:5000", "alice", "guess"))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let right = || login_from("192.0.2.1:5000", "alice", "alice-password");
    assert_eq!(
        app.send(right()).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = app.send(right()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Cleared: the next failure is a free one again, not a longer backoff.
    let reply = app
        .send(login_from("192.0.2.1:5000", "alice", "guess"))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.send(right()).await.status, StatusCode::OK);
}

/// GIVEN one address trying many usernames WHEN it passes the per-address free failures
/// THEN it gets 429 for any username, while another address is still checked.
#[tokio::test]
async fn given_one_address_guessing_many_accounts_then_that_address_is_backed_off() {
    let limits = LoginLimits {
        address_free_failures: 4,
        first_backoff: Duration::from_secs(60),
        ..LoginLimits::default()
    };
    let app = App::with_limits(AgentAuthMode::Local, limits).await;
    for n in 0..4 {
        let reply = app
            .send(login_from(
                "198.51.100.7:4000",
                &format!("user{n}"),
                "guess",
            ))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let reply = app
        .send(login_from("198.51.100.7:4001", "alice", "alice-password"))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    assert_eq!(reply.error_code(), "too_many_requests");
    let elsewhere = app
        .send(login_from("203.0.113.9:4000", "alice", "alice-password"))
        .await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.body);
}

/// GIVEN every password-check slot busy WHEN a login arrives THEN it waits the configured
/// time and gets 429 with `Retry-After: 1`; once a slot frees, logins go through.
#[tokio::test]
async fn given_all_password_checks_busy_when_logging_in_then_429_after_a_short_wait() {
    let limits = LoginLimits {
        max_concurrent_checks: 2,
        check_wait: Duration::from_millis(200),
        ..LoginLimits::default()
    };
    let app = App::with_limits(AgentAuthMode::Local, limits).await;
    let held = app
        .login
        .check_slots()
        .clone()
        .acquire_many_owned(2)
        .await
        .unwrap();
    let body = r#"{"username":"alice","password":"alice-password"}"#;
    let response = app
        .router
        .clone()
        .oneshot(request(Method::POST, "/v1/agent/login", None, body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    drop(held);
    let reply = app.post("/v1/agent/login", None, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}
