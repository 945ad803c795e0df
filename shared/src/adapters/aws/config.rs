//! Building the shared SDK configuration and the clients that need more than defaults.

use aws_config::{BehaviorVersion, SdkConfig};

/// Environment variable that forces path-style S3 addressing (`1` or `true`).
///
/// S3 emulators such as moto answer on one host name and cannot resolve virtual-hosted
/// bucket names (`<bucket>.localhost`), so they need `http://host/<bucket>/<key>`. Path
/// style is also chosen automatically whenever an endpoint URL override is configured
/// (for example `AWS_ENDPOINT_URL`), so setting this is rarely necessary.
pub const FORCE_PATH_STYLE_ENV: &str = "KEFU_S3_FORCE_PATH_STYLE";

/// The SDK configuration from the environment: region, credentials and endpoint overrides
/// (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, …) as the SDK reads them.
/// Build it once per process and share it between clients.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// An S3 client for `config`, with path-style addressing when an endpoint override is set
/// or [`FORCE_PATH_STYLE_ENV`] asks for it.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let path_style = config.endpoint_url().is_some() || path_style_from_env();
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

fn path_style_from_env() -> bool {
    std::env::var(FORCE_PATH_STYLE_ENV)
        .map(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes"))
        .unwrap_or(false)
}
