//! Request signatures computed by an independent implementation (Python's `hmac`), so the
//! gateway's own signing code is never checked against itself.

use std::process::Command;

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1 of the URL and the sorted form params.
pub fn twilio(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let script = r#"
import base64, hashlib, hmac, json, sys
token, url, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
data = url + "".join(k + v for k, v in sorted(params))
print(base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode())
"#;
    let params = serde_json::to_string(params).expect("params");
    python(script, &[token, url, &params])
}

/// Switchboard's webhook signature: `v1=` + hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn switchboard(secret: &str, timestamp: i64, body: &str) -> String {
    let script = "import hmac,hashlib,sys; print('v1=' + hmac.new(sys.argv[1].encode(), (sys.argv[2] + '.' + sys.argv[3]).encode(), hashlib.sha256).hexdigest())";
    python(script, &[secret, &timestamp.to_string(), body])
}
