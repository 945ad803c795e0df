//! In Cognito mode a verified JWT is not enough: the agent API asks Cognito (moto) on every
//! request whether the token's account still stands, so a disabled, deleted or signed-out
//! agent is refused at once rather than when the token expires.

mod support;

use agent_api::{Gateway, request_context};
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{
    AuthFlowType, ExplicitAuthFlowsType, MessageActionType,
};
use axum::Router;
use axum::routing::get;
use http::StatusCode;
use kefu::adapters::aws::{Aws, CognitoAccounts};
use kefu::agent::AgentAuthMode;
use kefu::ports::AccountCheck;
use std::sync::Arc;
use support::moto;
use tower::ServiceExt;

const PASSWORD: &str = "Correct-horse-42";

/// A fresh user pool with one confirmed agent signed in.
struct Pool {
    client: Client,
    pool_id: String,
    username: String,
    access_token: String,
}

impl Pool {
    async fn with_signed_in_agent() -> Self {
        let client = Client::new(&moto::aws_config().await);
        let pool = client
            .create_user_pool()
            .pool_name(moto::unique_name())
            .send()
            .await
            .expect("create user pool");
        let pool_id = pool
            .user_pool()
            .and_then(|p| p.id())
            .expect("pool id")
            .to_owned();
        let app = client
            .create_user_pool_client()
            .user_pool_id(&pool_id)
            .client_name("console")
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
            .send()
            .await
            .expect("create app client");
        let client_id = app
            .user_pool_client()
            .and_then(|c| c.client_id())
            .expect("client id")
            .to_owned();
        let username = "alice@example.com".to_owned();
        client
            .admin_create_user()
            .user_pool_id(&pool_id)
            .username(&username)
            .message_action(MessageActionType::Suppress)
            .send()
            .await
            .expect("create user");
        client
            .admin_set_user_password()
            .user_pool_id(&pool_id)
            .username(&username)
            .password(PASSWORD)
            .permanent(true)
            .send()
            .await
            .expect("set password");
        let auth = client
            .admin_initiate_auth()
            .user_pool_id(&pool_id)
            .client_id(&client_id)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", &username)
            .auth_parameters("PASSWORD", PASSWORD)
            .send()
            .await
            .expect("sign in");
        let access_token = auth
            .authentication_result()
            .and_then(|r| r.access_token())
            .expect("access token")
            .to_owned();
        Self {
            client,
            pool_id,
            username,
            access_token,
        }
    }

    async fn accounts() -> CognitoAccounts {
        Aws::from_config(&moto::aws_config().await).cognito_accounts()
    }

    async fn disable(&self) {
        self.client
            .admin_disable_user()
            .user_pool_id(&self.pool_id)
            .username(&self.username)
            .send()
            .await
            .expect("disable");
    }

    async fn enable(&self) {
        self.client
            .admin_enable_user()
            .user_pool_id(&self.pool_id)
            .username(&self.username)
            .send()
            .await
            .expect("enable");
    }
}

#[tokio::test]
async fn given_a_signed_in_agent_when_disabled_enabled_signed_out_or_deleted_then_the_check_follows_at_once()
 {
    let pool = Pool::with_signed_in_agent().await;
    let accounts = Pool::accounts().await;
    let token = pool.access_token.as_str();
    assert!(accounts.still_active(token).await.expect("asked"));
    pool.disable().await;
    assert!(!accounts.still_active(token).await.expect("asked"));
    pool.enable().await;
    assert!(accounts.still_active(token).await.expect("asked"));
    pool.client
        .admin_user_global_sign_out()
        .user_pool_id(&pool.pool_id)
        .username(&pool.username)
        .send()
        .await
        .expect("sign out");
    assert!(!accounts.still_active(token).await.expect("asked"));

    let other = Pool::with_signed_in_agent().await;
    other
        .client
        .admin_delete_user()
        .user_pool_id(&other.pool_id)
        .username(&other.username)
        .send()
        .await
        .expect("delete");
    assert!(
        !accounts
            .still_active(&other.access_token)
            .await
            .expect("asked")
    );
    assert!(!accounts.still_active("not-a-token").await.expect("asked"));
}

/// The status of the recorded API Gateway event of `GET /v1/agent/queues` (JWT claims of
/// an agent) sent with `token`, through the agent-api middleware in Cognito mode.
async fn status_with(token: &str, accounts: Arc<dyn AccountCheck>) -> StatusCode {
    let gateway = Gateway {
        auth: AgentAuthMode::Cognito,
        accounts: Some(accounts),
    };
    let app = Router::new()
        .route("/v1/agent/queues", get(|| async { "queues" }))
        .layer(axum::middleware::from_fn_with_state(
            gateway,
            request_context,
        ));
    let event = include_str!("../../infra/events/apigw-agent-queues.json");
    let mut request = lambda_http::request::from_str(event)
        .expect("an API Gateway event")
        .map(|body| axum::body::Body::from(body.to_vec()));
    request.headers_mut().insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header value"),
    );
    app.oneshot(request).await.expect("infallible").status()
}

#[tokio::test]
async fn given_cognito_mode_when_the_agent_is_disabled_then_the_next_request_is_refused() {
    let pool = Pool::with_signed_in_agent().await;
    let accounts: Arc<dyn AccountCheck> = Arc::new(Pool::accounts().await);
    assert_eq!(
        status_with(&pool.access_token, accounts.clone()).await,
        StatusCode::OK
    );
    pool.disable().await;
    assert_eq!(
        status_with(&pool.access_token, accounts.clone()).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn given_cognito_unreachable_when_an_agent_calls_then_503_and_no_access() {
    use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, Credentials, Region};
    let unreachable = aws_sdk_cognitoidentityprovider::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .build();
    let accounts: Arc<dyn AccountCheck> =
        Arc::new(CognitoAccounts::new(Client::from_conf(unreachable)));
    assert_eq!(
        status_with("any-token", accounts).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}
