//! What every SMS sender checks before it sends: that the message is an SMS, that its
//! recipient is a phone number that has not opted out, and the text as SMS shows it.

use super::keywords::OptOuts;
use super::phone::PhoneNumber;
use crate::domain::{Channel, OutboundMessage};
use crate::ports::SendError;

/// The recipient (E.164) and plain text of `message`, or why `sender` (named in errors)
/// must not send it: another channel, a recipient that is not a number, an opt-out
/// (all permanent), or the opt-out register unreadable (transient).
pub async fn outgoing(
    message: &OutboundMessage,
    sender: &str,
    default_country: &str,
    opt_outs: &OptOuts,
) -> Result<(PhoneNumber, String), SendError> {
    if message.channel != Channel::Sms {
        return Err(SendError::Permanent(format!(
            "the {sender} sender cannot deliver {} messages",
            message.channel
        )));
    }
    let to = PhoneNumber::parse(&message.recipient, default_country)
        .map_err(|e| SendError::Permanent(format!("recipient: {e}")))?;
    if opt_outs
        .is_opted_out(&to)
        .await
        .map_err(SendError::backend)?
    {
        return Err(SendError::Permanent("the customer opted out (STOP)".into()));
    }
    let text = crate::render::for_channel(Channel::Sms, &message.text, &message.quick_replies);
    Ok((to, text))
}
