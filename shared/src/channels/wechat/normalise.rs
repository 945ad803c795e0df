//! What a push becomes: a customer message for the bot, a passive reply, or nothing.
//!
//! | Push | Becomes |
//! |---|---|
//! | text | the text (trimmed; cut at [`MAX_TEXT_CHARS`] characters, since a customer cannot fix a platform error) |
//! | image | `[图片] <PicUrl>` (the URL lets an agent open the picture), or `[图片]` |
//! | voice | WeChat's transcript (`Recognition`) when there is one, else `[语音]` |
//! | video, shortvideo | `[视频]` |
//! | location | `[位置] <Label>` or `[位置]` |
//! | link | `[链接] <Title> <Url>` |
//! | `subscribe` | the configured welcome as a passive reply; nothing queued (the customer has asked nothing yet, and the welcome already answers) |
//! | `SCAN` | queued as the greeting [`SCAN_GREETING`], so the bot greets the customer as it greets anyone |
//! | `CLICK` | queued as the menu map's text for the key; an unknown key is ignored |
//! | `unsubscribe`, `VIEW`, other events | nothing |
//!
//! Queued messages carry WeChat's `MsgId` as platform id, events
//! `FromUserName + CreateTime`, so WeChat's retries map to one message.

use super::xml::{Content, Event, Push, PushKind};
use crate::channels::Incoming;
use crate::domain::Channel;
use crate::http::MAX_TEXT_CHARS;
use std::collections::HashMap;

/// The customer message a `SCAN` event stands for.
pub const SCAN_GREETING: &str = "你好";

/// What the ingress does with one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Queue a customer message, then answer `success`.
    Enqueue(Incoming),
    /// Answer with this passive text reply; nothing is queued.
    Reply(String),
    /// Answer `success`; `why` is logged.
    Ignore {
        /// For the log.
        why: &'static str,
    },
}

/// Decides what `push` becomes, given the account's welcome and menu.
pub(super) fn action(push: Push, welcome: Option<&str>, menu: &HashMap<String, String>) -> Action {
    let Push {
        openid,
        create_time,
        kind,
        ..
    } = push;
    let incoming = |platform_id: String, text: String| {
        Action::Enqueue(Incoming {
            channel: Channel::Wechat,
            address: openid.clone(),
            name: None,
            platform_id,
            text,
            received_at: create_time.saturating_mul(1000),
        })
    };
    match kind {
        PushKind::Message { msg_id, content } => match describe(content) {
            Some(text) => incoming(msg_id.to_string(), text),
            None => Action::Ignore {
                why: "empty message",
            },
        },
        PushKind::Event(event) => {
            let event_id = format!("event:{openid}:{create_time}");
            match event {
                Event::Subscribe { .. } => match welcome.filter(|w| !w.trim().is_empty()) {
                    Some(welcome) => Action::Reply(welcome.to_owned()),
                    None => Action::Ignore {
                        why: "subscribe without a configured welcome",
                    },
                },
                Event::Scan { .. } => incoming(event_id, SCAN_GREETING.to_owned()),
                Event::Click { key } => match menu.get(&key) {
                    Some(text) => incoming(event_id, text.clone()),
                    None => Action::Ignore {
                        why: "menu key not in KEFU_WECHAT_MENU",
                    },
                },
                Event::Unsubscribe => Action::Ignore { why: "unsubscribe" },
                Event::View { .. } => Action::Ignore { why: "menu link" },
                Event::Other { .. } => Action::Ignore {
                    why: "event not handled",
                },
            }
        }
    }
}

/// The text a message stands for; `None` when there is nothing to say.
fn describe(content: Content) -> Option<String> {
    let text = match content {
        Content::Text(text) => text,
        Content::Image { pic_url, .. } => match pic_url.filter(|u| is_http_url(u)) {
            Some(url) => format!("[图片] {url}"),
            None => "[图片]".to_owned(),
        },
        Content::Voice { recognition, .. } => recognition
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "[语音]".to_owned()),
        Content::Video { .. } => "[视频]".to_owned(),
        Content::Location { label } => match label {
            Some(label) => format!("[位置] {label}"),
            None => "[位置]".to_owned(),
        },
        Content::Link { title, url } => format!("[链接] {title} {url}"),
    };
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(text.chars().take(MAX_TEXT_CHARS).collect())
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(kind: PushKind) -> Push {
        Push {
            account: "gh_shop".into(),
            openid: "oUser1".into(),
            create_time: 1_700_000_000,
            kind,
        }
    }

    fn message(content: Content) -> Push {
        push(PushKind::Message {
            msg_id: 42,
            content,
        })
    }

    fn menu() -> HashMap<String, String> {
        HashMap::from([("SHIP".to_owned(), "运费怎么算".to_owned())])
    }

    fn queued(action: Action) -> Incoming {
        match action {
            Action::Enqueue(incoming) => incoming,
            other => panic!("nothing queued: {other:?}"),
        }
    }

    #[test]
    fn given_a_text_when_normalised_then_it_is_queued_under_its_msg_id() {
        let incoming = queued(action(
            message(Content::Text("  运费怎么算 ".into())),
            None,
            &menu(),
        ));
        assert_eq!(
            incoming,
            Incoming {
                channel: Channel::Wechat,
                address: "oUser1".into(),
                name: None,
                platform_id: "42".into(),
                text: "运费怎么算".into(),
                received_at: 1_700_000_000_000,
            }
        );
    }

    #[test]
    fn given_media_when_normalised_then_each_gets_its_description() {
        let text = |content| queued(action(message(content), None, &menu())).text;
        assert_eq!(
            text(Content::Image {
                pic_url: Some("http://mmbiz.qpic.cn/x".into()),
                media_id: "m".into()
            }),
            "[图片] http://mmbiz.qpic.cn/x"
        );
        assert_eq!(
            text(Content::Image {
                pic_url: Some("javascript:alert(1)".into()),
                media_id: "m".into()
            }),
            "[图片]"
        );
        assert_eq!(
            text(Content::Voice {
                media_id: "m".into(),
                recognition: Some("查一下订单".into())
            }),
            "查一下订单"
        );
        assert_eq!(
            text(Content::Voice {
                media_id: "m".into(),
                recognition: None
            }),
            "[语音]"
        );
        assert_eq!(
            text(Content::Video {
                media_id: "m".into()
            }),
            "[视频]"
        );
        assert_eq!(
            text(Content::Location {
                label: Some("上海市".into())
            }),
            "[位置] 上海市"
        );
    }

    #[test]
    fn given_a_very_long_text_when_normalised_then_it_is_cut_to_the_limit() {
        let long = "长".repeat(MAX_TEXT_CHARS + 10);
        let incoming = queued(action(message(Content::Text(long)), None, &menu()));
        assert_eq!(incoming.text.chars().count(), MAX_TEXT_CHARS);
    }

    #[test]
    fn given_subscribe_when_normalised_then_the_welcome_is_a_passive_reply() {
        let subscribe = || push(PushKind::Event(Event::Subscribe { scene: None }));
        assert_eq!(
            action(subscribe(), Some("欢迎！"), &menu()),
            Action::Reply("欢迎！".into())
        );
        assert!(matches!(
            action(subscribe(), None, &menu()),
            Action::Ignore { .. }
        ));
    }

    #[test]
    fn given_menu_clicks_when_normalised_then_known_keys_become_questions() {
        let click = |key: &str| {
            push(PushKind::Event(Event::Click {
                key: key.to_owned(),
            }))
        };
        let incoming = queued(action(click("SHIP"), None, &menu()));
        assert_eq!(incoming.text, "运费怎么算");
        assert_eq!(incoming.platform_id, "event:oUser1:1700000000");
        assert!(matches!(
            action(click("UNKNOWN"), None, &menu()),
            Action::Ignore { .. }
        ));
    }

    #[test]
    fn given_scan_and_silent_events_when_normalised_then_only_scan_is_queued() {
        let scan = push(PushKind::Event(Event::Scan {
            scene: Some("7".into()),
        }));
        assert_eq!(queued(action(scan, None, &menu())).text, SCAN_GREETING);
        for event in [
            Event::Unsubscribe,
            Event::View {
                url: "https://x".into(),
            },
            Event::Other {
                name: "LOCATION".into(),
            },
        ] {
            assert!(matches!(
                action(push(PushKind::Event(event)), Some("欢迎"), &menu()),
                Action::Ignore { .. }
            ));
        }
    }
}
