//! Hang-up and transfer through the phone provider's REST API, for the agent's `end_call`
//! and `escalate_to_human` on phone calls (the channel calls the hook once the reply has
//! been heard): Twilio's call update (`Twiml=<Response><Dial>...` or `Status=completed`,
//! basic auth with the account SID and auth token) or Telnyx's call-control actions
//! (`actions/transfer`, `actions/hangup`, bearer API key). The API bases are configurable so
//! tests can use a stand-in.

use std::sync::Arc;

use switchboard_channels::telephony::{CallControlHook, Dialect, StreamStart};
use switchboard_pipeline::tools::builtin::CallControl;

use crate::telephony::{TelephonyConfig, xml_escape};

/// One REST request to the provider, before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    pub url: String,
    pub auth: Auth,
    pub content_type: &'static str,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Basic { user: String, password: String },
    Bearer(String),
}

/// Path segments from outside input (the provider's call id) are percent-encoded.
fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The request carrying out `control` for `call_id`, or why it cannot be made.
pub fn provider_request(
    config: &TelephonyConfig,
    dialect: Dialect,
    call_id: &str,
    control: &CallControl,
) -> Result<ProviderRequest, String> {
    match dialect {
        Dialect::Twilio => {
            let (Some(sid), Some(token)) = (&config.twilio_account_sid, &config.twilio_auth_token)
            else {
                return Err("set SWITCHBOARD_TWILIO_ACCOUNT_SID and SWITCHBOARD_TWILIO_AUTH_TOKEN for call control".into());
            };
            let mut form = form_urlencoded::Serializer::new(String::new());
            match control {
                CallControl::Hangup => form.append_pair("Status", "completed"),
                CallControl::Transfer { to } => form.append_pair(
                    "Twiml",
                    &format!("<Response><Dial>{}</Dial></Response>", xml_escape(to)),
                ),
            };
            Ok(ProviderRequest {
                url: format!(
                    "{}/2010-04-01/Accounts/{}/Calls/{}.json",
                    config.twilio_api_url.trim_end_matches('/'),
                    segment(sid),
                    segment(call_id)
                ),
                auth: Auth::Basic {
                    user: sid.clone(),
                    password: token.clone(),
                },
                content_type: "application/x-www-form-urlencoded",
                body: form.finish(),
            })
        }
        Dialect::Telnyx => {
            let Some(key) = &config.telnyx_api_key else {
                return Err("set SWITCHBOARD_TELNYX_API_KEY for call control".into());
            };
            let (action, body) = match control {
                CallControl::Hangup => ("hangup", serde_json::json!({})),
                CallControl::Transfer { to } => ("transfer", serde_json::json!({"to": to})),
            };
            Ok(ProviderRequest {
                url: format!(
                    "{}/v2/calls/{}/actions/{action}",
                    config.telnyx_api_url.trim_end_matches('/'),
                    segment(call_id)
                ),
                auth: Auth::Bearer(key.clone()),
                content_type: "application/json",
                body: body.to_string(),
            })
        }
    }
}

/// The hook the phone channel calls.
pub fn hook(config: TelephonyConfig, dialect: Dialect) -> CallControlHook {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    Arc::new(move |start: StreamStart, control: CallControl| {
        let request = provider_request(&config, dialect, &start.call_id, &control);
        let client = client.clone();
        Box::pin(async move {
            let r = request?;
            let rb = client
                .post(&r.url)
                .header("content-type", r.content_type)
                .body(r.body);
            let rb = match r.auth {
                Auth::Basic { user, password } => rb.basic_auth(user, Some(password)),
                Auth::Bearer(key) => rb.bearer_auth(key),
            };
            let answer = rb.send().await.map_err(|e| e.to_string())?;
            if answer.status().is_success() {
                Ok(())
            } else {
                Err(format!("provider answered {}", answer.status()))
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TelephonyConfig {
        TelephonyConfig {
            twilio_auth_token: Some("tok".into()),
            twilio_account_sid: Some("AC1".into()),
            twilio_api_url: "https://api.twilio.test/".into(),
            telnyx_api_key: Some("KEY".into()),
            telnyx_api_url: "https://api.telnyx.test".into(),
            ..TelephonyConfig::default()
        }
    }

    #[test]
    fn telnyx_transfer_and_hangup() {
        let transfer = CallControl::Transfer {
            to: "+15550100".into(),
        };
        let r = provider_request(&config(), Dialect::Telnyx, "v3:abc", &transfer).expect("request");
        assert_eq!(
            r.url,
            "https://api.telnyx.test/v2/calls/v3%3Aabc/actions/transfer"
        );
        assert_eq!(r.auth, Auth::Bearer("KEY".into()));
        assert_eq!(r.body, r#"{"to":"+15550100"}"#);
        let r = provider_request(&config(), Dialect::Telnyx, "c1", &CallControl::Hangup)
            .expect("request");
        assert!(r.url.ends_with("/v2/calls/c1/actions/hangup"));
        let mut off = config();
        off.telnyx_api_key = None;
        assert!(provider_request(&off, Dialect::Telnyx, "c1", &CallControl::Hangup).is_err());
    }

    #[test]
    fn twilio_ids_cannot_escape_the_path() {
        let r = provider_request(
            &config(),
            Dialect::Twilio,
            "CA1/../../Accounts",
            &CallControl::Hangup,
        )
        .expect("request");
        assert_eq!(
            r.url,
            "https://api.twilio.test/2010-04-01/Accounts/AC1/Calls/CA1%2F..%2F..%2FAccounts.json"
        );
        assert_eq!(r.body, "Status=completed");
        let transfer = CallControl::Transfer {
            to: "+1555<0100>".into(),
        };
        let r = provider_request(&config(), Dialect::Twilio, "CA1", &transfer).expect("request");
        assert!(
            r.body.contains("%26lt%3B"),
            "the number is XML-escaped in the TwiML: {}",
            r.body
        );
    }
}
