//! The XML of WeChat pushes and passive replies.
//!
//! A push is one flat `<xml>` element whose children are leaf fields holding text or
//! CDATA. Parsing is strict about the shape (one `<xml>` root, no DTD, no processing
//! instructions, no text outside fields, no repeated field, required fields present and
//! well typed) and lenient only where WeChat adds things over time: unknown fields are
//! ignored, and so are fields with nested elements (some event types carry them).

use crate::{Error, Result};
use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event as XmlEvent;
use std::collections::HashMap;
use std::str::FromStr;

/// Most fields a push may carry (real ones have about a dozen).
const MAX_FIELDS: usize = 64;

/// A parsed push document: its leaf fields by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    fields: HashMap<String, String>,
}

/// A customer message or event pushed by WeChat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// `ToUserName`: the account's original id (`gh_…`).
    pub account: String,
    /// `FromUserName`: the customer's OpenID.
    pub openid: String,
    /// `CreateTime`: Unix seconds.
    pub create_time: i64,
    /// What was pushed.
    pub kind: PushKind,
}

/// A message (with WeChat's `MsgId`) or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushKind {
    /// Something the customer sent.
    Message {
        /// `MsgId`: the same on every redelivery.
        msg_id: u64,
        /// The content by `MsgType`.
        content: Content,
    },
    /// Something the customer did (`MsgType` `event`).
    Event(Event),
}

/// The content of a customer message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// `text`: `Content`.
    Text(String),
    /// `image`: `PicUrl` (when given) and `MediaId`.
    Image {
        /// A URL of the picture on WeChat's servers.
        pic_url: Option<String>,
        /// The media id (valid for three days).
        media_id: String,
    },
    /// `voice`: `MediaId` and, when speech recognition is enabled, `Recognition`.
    Voice {
        /// The media id.
        media_id: String,
        /// WeChat's transcript.
        recognition: Option<String>,
    },
    /// `video` or `shortvideo`.
    Video {
        /// The media id.
        media_id: String,
    },
    /// `location`: the place's `Label`, when given.
    Location {
        /// A readable name of the place.
        label: Option<String>,
    },
    /// `link`: a shared article or page.
    Link {
        /// Its title.
        title: String,
        /// Its URL.
        url: String,
    },
}

/// An event (`MsgType` `event`), by `Event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `subscribe`; `EventKey` is `qrscene_…` when it came through a QR code.
    Subscribe {
        /// The QR scene, when any.
        scene: Option<String>,
    },
    /// `unsubscribe`.
    Unsubscribe,
    /// `SCAN`: a follower scanned a parametrised QR code.
    Scan {
        /// The scene (`EventKey`).
        scene: Option<String>,
    },
    /// `CLICK`: a menu button with a key.
    Click {
        /// The button's `EventKey`.
        key: String,
    },
    /// `VIEW`: a menu button that opened a URL.
    View {
        /// The URL (`EventKey`).
        url: String,
    },
    /// Any other event (template and mass-send reports, location reports, …).
    Other {
        /// The `Event` value.
        name: String,
    },
}

impl Document {
    /// Parses a push document (see the module docs); `Error::Invalid` says what is wrong.
    pub fn parse(xml: &str) -> Result<Self> {
        Parser::default().run(xml)
    }

    /// A field's text, `None` when absent or blank.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn required(&self, name: &str) -> Result<&str> {
        self.field(name)
            .ok_or_else(|| invalid(format!("the push has no {name}")))
    }

    fn number<T: FromStr>(&self, name: &str) -> Result<T> {
        self.required(name)?
            .trim()
            .parse()
            .map_err(|_| invalid(format!("{name} must be a number")))
    }

    /// The `Encrypt` field of a safe- or compatible-mode push.
    pub fn encrypt(&self) -> Result<&str> {
        self.required("Encrypt")
    }

    /// Whether the document carries a message in clear (plaintext or compatible mode).
    pub fn has_plain_message(&self) -> bool {
        self.field("MsgType").is_some()
    }

    /// The push the document describes.
    pub fn push(&self) -> Result<Push> {
        let kind = match self.required("MsgType")? {
            "event" => PushKind::Event(self.event()?),
            msg_type => PushKind::Message {
                msg_id: self.number("MsgId")?,
                content: self.content(msg_type)?,
            },
        };
        Ok(Push {
            account: self.required("ToUserName")?.to_owned(),
            openid: self.required("FromUserName")?.to_owned(),
            create_time: self.number("CreateTime")?,
            kind,
        })
    }

    fn content(&self, msg_type: &str) -> Result<Content> {
        let owned = |name: &str| self.field(name).map(str::to_owned);
        Ok(match msg_type {
            "text" => Content::Text(self.required("Content")?.to_owned()),
            "image" => Content::Image {
                pic_url: owned("PicUrl"),
                media_id: self.required("MediaId")?.to_owned(),
            },
            "voice" => Content::Voice {
                media_id: self.required("MediaId")?.to_owned(),
                recognition: owned("Recognition"),
            },
            "video" | "shortvideo" => Content::Video {
                media_id: self.required("MediaId")?.to_owned(),
            },
            "location" => Content::Location {
                label: owned("Label"),
            },
            "link" => Content::Link {
                title: self.field("Title").unwrap_or_default().to_owned(),
                url: self.required("Url")?.to_owned(),
            },
            other => {
                return Err(invalid(format!(
                    "unsupported MsgType `{}`",
                    other.chars().take(32).collect::<String>()
                )));
            }
        })
    }

    fn event(&self) -> Result<Event> {
        let key = self.field("EventKey").map(str::to_owned);
        let name = self.required("Event")?;
        Ok(match name.to_ascii_lowercase().as_str() {
            "subscribe" => Event::Subscribe { scene: key },
            "unsubscribe" => Event::Unsubscribe,
            "scan" => Event::Scan { scene: key },
            "click" => Event::Click {
                key: key.ok_or_else(|| invalid("a CLICK event has no EventKey"))?,
            },
            "view" => Event::View {
                url: key.unwrap_or_default(),
            },
            _ => Event::Other {
                name: name.chars().take(64).collect(),
            },
        })
    }
}

/// State of one pass over a document.
#[derive(Default)]
struct Parser {
    fields: HashMap<String, String>,
    depth: usize,
    root_seen: bool,
    /// The field being read: its name, text, and whether it has nested elements.
    current: Option<(String, String, bool)>,
}

impl Parser {
    fn run(mut self, xml: &str) -> Result<Document> {
        let mut reader = Reader::from_str(xml);
        loop {
            let event = reader
                .read_event()
                .map_err(|e| invalid(format!("malformed XML: {e}")))?;
            match event {
                XmlEvent::Decl(_) if !self.root_seen => {}
                XmlEvent::Comment(_) => {}
                XmlEvent::Start(tag) => self.open(tag.name().into_inner())?,
                XmlEvent::Empty(tag) => {
                    self.open(tag.name().into_inner())?;
                    self.close()?;
                }
                XmlEvent::End(_) => self.close()?,
                XmlEvent::Text(text) => self.text(&text.xml10_content())?,
                XmlEvent::CData(cdata) => self.text_verbatim(&cdata.into_inner())?,
                XmlEvent::GeneralRef(reference) => {
                    let resolved = match reference
                        .resolve_char_ref()
                        .map_err(|e| invalid(format!("malformed XML: {e}")))?
                    {
                        Some(c) => c.to_string(),
                        None => resolve_predefined_entity(&reference)
                            .ok_or_else(|| invalid("unknown XML entity"))?
                            .to_owned(),
                    };
                    self.text_verbatim(&resolved)?;
                }
                XmlEvent::Eof => break,
                XmlEvent::Decl(_) | XmlEvent::DocType(_) | XmlEvent::PI(_) => {
                    return Err(invalid(
                        "declarations, DTDs and processing instructions are not accepted",
                    ));
                }
            }
        }
        if self.depth != 0 {
            return Err(invalid("malformed XML: an element is not closed"));
        }
        if !self.root_seen {
            return Err(invalid("the document must be one complete <xml> element"));
        }
        Ok(Document {
            fields: self.fields,
        })
    }

    fn open(&mut self, name: &str) -> Result<()> {
        match self.depth {
            0 if !self.root_seen && name == "xml" => self.root_seen = true,
            0 => return Err(invalid("the document must be one <xml> element")),
            1 => self.current = Some((name.to_owned(), String::new(), false)),
            _ => {
                if let Some(current) = self.current.as_mut() {
                    current.2 = true;
                }
            }
        }
        self.depth += 1;
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        // quick-xml has already checked that the end tag matches its start tag.
        self.depth = self.depth.saturating_sub(1);
        if self.depth != 1 {
            return Ok(());
        }
        let Some((name, value, nested)) = self.current.take() else {
            return Ok(());
        };
        if nested {
            return Ok(());
        }
        if self.fields.len() >= MAX_FIELDS {
            return Err(invalid("the push has too many fields"));
        }
        if self.fields.insert(name, value).is_some() {
            return Err(invalid("a field occurs twice"));
        }
        Ok(())
    }

    /// Character data: inside a field it is the value; elsewhere only layout whitespace.
    fn text(&mut self, text: &str) -> Result<()> {
        if self.depth == 2 {
            return self.text_verbatim(text);
        }
        if self.depth < 2 && !text.trim().is_empty() {
            return Err(invalid("text outside a field"));
        }
        Ok(())
    }

    fn text_verbatim(&mut self, text: &str) -> Result<()> {
        match (&mut self.current, self.depth) {
            (Some((_, value, _)), 2) => value.push_str(text),
            (_, depth) if depth > 2 => {}
            _ => return Err(invalid("text outside a field")),
        }
        Ok(())
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::Invalid(reason.into())
}

/// `<![CDATA[value]]>`, splitting any `]]>` inside the value across two sections.
fn cdata(value: &str) -> String {
    format!("<![CDATA[{}]]>", value.replace("]]>", "]]]]><![CDATA[>"))
}

/// A passive text reply to `openid` from the account `account`.
pub fn text_reply(openid: &str, account: &str, create_time: i64, content: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName>\
         <CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content>{}</Content></xml>",
        cdata(openid),
        cdata(account),
        cdata(content)
    )
}

/// The safe-mode envelope of a passive reply.
pub fn encrypted_reply(encrypt: &str, msg_signature: &str, timestamp: &str, nonce: &str) -> String {
    format!(
        "<xml><Encrypt>{}</Encrypt><MsgSignature>{}</MsgSignature>\
         <TimeStamp>{}</TimeStamp><Nonce>{}</Nonce></xml>",
        cdata(encrypt),
        cdata(msg_signature),
        timestamp,
        cdata(nonce)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(xml: &str) -> Result<Push> {
        Document::parse(xml)?.push()
    }

    const TEXT: &str = "<xml><ToUserName><![CDATA[gh_shop]]></ToUserName>\n  \
        <FromUserName><![CDATA[oUser1]]></FromUserName>\n  <CreateTime>1348831860</CreateTime>\n  \
        <MsgType><![CDATA[text]]></MsgType>\n  <Content><![CDATA[运费怎么算]]></Content>\n  \
        <MsgId>1234567890123456</MsgId>\n</xml>";

    #[test]
    fn given_a_text_push_when_parsed_then_every_field_is_typed() {
        assert_eq!(
            push(TEXT).unwrap(),
            Push {
                account: "gh_shop".into(),
                openid: "oUser1".into(),
                create_time: 1348831860,
                kind: PushKind::Message {
                    msg_id: 1234567890123456,
                    content: Content::Text("运费怎么算".into()),
                },
            }
        );
    }

    #[test]
    fn given_escaped_text_when_parsed_then_entities_are_resolved_and_spaces_kept() {
        let xml = TEXT.replace("<![CDATA[运费怎么算]]>", "a &amp; b &#x4F60;&lt;");
        let Push { kind, .. } = push(&xml).unwrap();
        assert_eq!(
            kind,
            PushKind::Message {
                msg_id: 1234567890123456,
                content: Content::Text("a & b 你<".into())
            }
        );
    }

    #[test]
    fn given_a_voice_push_when_parsed_then_recognition_is_optional() {
        let voice = "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName>\
            <CreateTime>1</CreateTime><MsgType>voice</MsgType><MediaId>m1</MediaId>\
            <Format>amr</Format><MsgId>7</MsgId></xml>";
        let with = voice.replace("</MsgId>", "</MsgId><Recognition>查订单</Recognition>");
        let content = |xml: &str| match push(xml).unwrap().kind {
            PushKind::Message { content, .. } => content,
            other => panic!("not a message: {other:?}"),
        };
        assert_eq!(
            content(voice),
            Content::Voice {
                media_id: "m1".into(),
                recognition: None
            }
        );
        assert_eq!(
            content(&with),
            Content::Voice {
                media_id: "m1".into(),
                recognition: Some("查订单".into())
            }
        );
    }

    #[test]
    fn given_events_when_parsed_then_each_kind_is_recognised() {
        let event = |name: &str, key: &str| {
            let xml = format!(
                "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName>\
                 <CreateTime>9</CreateTime><MsgType>event</MsgType><Event>{name}</Event>{key}</xml>"
            );
            match push(&xml).unwrap().kind {
                PushKind::Event(event) => event,
                other => panic!("not an event: {other:?}"),
            }
        };
        assert_eq!(event("subscribe", ""), Event::Subscribe { scene: None });
        assert_eq!(
            event("subscribe", "<EventKey>qrscene_7</EventKey>"),
            Event::Subscribe {
                scene: Some("qrscene_7".into())
            }
        );
        assert_eq!(event("unsubscribe", ""), Event::Unsubscribe);
        assert_eq!(
            event("SCAN", "<EventKey>7</EventKey><Ticket>t</Ticket>"),
            Event::Scan {
                scene: Some("7".into())
            }
        );
        assert_eq!(
            event("CLICK", "<EventKey>FAQ_SHIPPING</EventKey>"),
            Event::Click {
                key: "FAQ_SHIPPING".into()
            }
        );
        assert_eq!(
            event("VIEW", "<EventKey>https://shop.example.com</EventKey>"),
            Event::View {
                url: "https://shop.example.com".into()
            }
        );
        assert_eq!(
            event("TEMPLATESENDJOBFINISH", "<Status>success</Status>"),
            Event::Other {
                name: "TEMPLATESENDJOBFINISH".into()
            }
        );
    }

    #[test]
    fn given_a_nested_field_when_parsed_then_it_is_skipped_and_the_rest_kept() {
        let xml = "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName>\
            <CreateTime>9</CreateTime><MsgType>event</MsgType><Event>scancode_push</Event>\
            <ScanCodeInfo><ScanType>qrcode</ScanType></ScanCodeInfo></xml>";
        let document = Document::parse(xml).unwrap();
        assert_eq!(document.field("ScanCodeInfo"), None);
        assert_eq!(document.field("Event"), Some("scancode_push"));
    }

    #[test]
    fn given_malformed_documents_when_parsed_then_each_is_refused_with_a_reason() {
        let cases = [
            ("", "complete"),
            ("<xml><MsgType>text</MsgType>", "malformed"),
            ("<root><MsgType>text</MsgType></root>", "one <xml>"),
            ("<xml></xml><xml></xml>", "one <xml>"),
            ("<xml>loose<A>1</A></xml>", "outside a field"),
            ("<xml><A>1</A><A>2</A></xml>", "twice"),
            ("<xml><A>1</B></xml>", "malformed"),
            (
                "<!DOCTYPE xml [<!ENTITY e \"x\">]><xml><A>&e;</A></xml>",
                "DTD",
            ),
            ("<xml><A>&e;</A></xml>", "entity"),
        ];
        for (xml, reason) in cases {
            let error = Document::parse(xml).unwrap_err();
            assert!(
                matches!(&error, Error::Invalid(m) if m.contains(reason)),
                "{xml}: {error}"
            );
        }
    }

    #[test]
    fn given_missing_or_mistyped_fields_when_interpreted_then_the_field_is_named() {
        let cases = [
            (TEXT.replace("<MsgId>1234567890123456</MsgId>", ""), "MsgId"),
            (TEXT.replace("1348831860", "yesterday"), "CreateTime"),
            (TEXT.replace("<![CDATA[oUser1]]>", ""), "FromUserName"),
            (
                TEXT.replace("<![CDATA[text]]>", "hologram"),
                "unsupported MsgType `hologram`",
            ),
        ];
        for (xml, reason) in cases {
            let error = push(&xml).unwrap_err();
            assert!(error.to_string().contains(reason), "{error}");
        }
    }

    #[test]
    fn given_too_many_fields_when_parsed_then_refused() {
        let fields: String = (0..=MAX_FIELDS)
            .map(|i| format!("<F{i}>x</F{i}>"))
            .collect();
        assert!(Document::parse(&format!("<xml>{fields}</xml>")).is_err());
    }

    #[test]
    fn given_a_reply_when_built_then_it_parses_back_even_with_cdata_terminators_inside() {
        let xml = text_reply("oUser1", "gh_shop", 42, "a ]]> b");
        let document = Document::parse(&xml).unwrap();
        assert_eq!(document.field("ToUserName"), Some("oUser1"));
        assert_eq!(document.field("FromUserName"), Some("gh_shop"));
        assert_eq!(document.field("CreateTime"), Some("42"));
        assert_eq!(document.field("MsgType"), Some("text"));
        assert_eq!(document.field("Content"), Some("a ]]> b"));

        let envelope = encrypted_reply("ZW5j", "sig", "1411525903", "461056294");
        let document = Document::parse(&envelope).unwrap();
        assert_eq!(document.encrypt().unwrap(), "ZW5j");
        assert_eq!(document.field("MsgSignature"), Some("sig"));
        assert_eq!(document.field("TimeStamp"), Some("1411525903"));
        assert_eq!(document.field("Nonce"), Some("461056294"));
    }
}
