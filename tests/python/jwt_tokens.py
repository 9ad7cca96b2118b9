"""JWT bearer tokens as an identity provider issues them (PyJWT): RS256 with the key whose
public half the gateway fetches from a JWKS URL, and HS256 with a shared secret. The tenant
comes from the `org` claim, scopes from `scope`; the official `openai` SDK uses a token as
its API key.

Usage: jwt_tokens.py BASE_URL PRIVATE_KEY_PKCS8_DER HS256_SECRET

Prints "ok: ..." and exits 0 when every check passes.
"""

import sys
import time

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_der_private_key
from openai import OpenAI

from common import error_code

ISS, AUD = "https://idp.example", "switchboard"


def main(base_url: str, key_path: str, secret: str) -> None:
    private_key = load_der_private_key(open(key_path, "rb").read(), password=None)

    def rs256(org, scope="chat admin", exp_in=600, **extra):
        claims = {"iss": ISS, "aud": AUD, "sub": "user-1", "org": org, "scope": scope,
                  "exp": int(time.time()) + exp_in, **extra}
        return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": "test-1"})

    def hs256(org, scope="chat admin"):
        claims = {"iss": ISS, "aud": AUD, "org": org, "scope": scope,
                  "exp": int(time.time()) + 600}
        return jwt.encode(claims, secret, algorithm="HS256")

    def http(token):
        return httpx.Client(base_url=base_url, timeout=60,
                            headers={"Authorization": f"Bearer {token}"})

    # RS256 through the SDK: a chat in tenant acme's session.
    acme = rs256("acme")
    sdk = OpenAI(base_url=base_url, api_key=acme)
    r = sdk.chat.completions.create(model="scripted", metadata={"session_id": "jwt-1"},
                                    messages=[{"role": "user", "content": "Hello via JWT"}])
    assert r.choices[0].message.content, r
    deadline = time.time() + 20
    while http(acme).get("/sessions/jwt-1").status_code != 200:
        assert time.time() < deadline, "the JWT tenant's session was not stored"
        time.sleep(0.1)
    # HS256 for the same tenant sees it; another tenant's token does not.
    assert http(hs256("acme")).get("/sessions/jwt-1").status_code == 200
    assert error_code(http(hs256("globex")).get("/sessions/jwt-1")) == "session_not_found"
    # Scopes come from the token: chat only cannot administer.
    assert error_code(http(rs256("acme", scope="openid chat")).get("/sessions")) == \
        "insufficient_scope"
    # Refused: expired, wrong audience, wrong issuer, unsigned, signed with another secret,
    # an RS256 token whose key id the JWKS does not have.
    refused = {
        "expired": rs256("acme", exp_in=-120),
        "audience": rs256("acme", aud="someone-else"),
        "issuer": rs256("acme", iss="https://evil.example"),
        "alg none": jwt.encode({"org": "acme", "exp": int(time.time()) + 600, "iss": ISS,
                                "aud": AUD}, None, algorithm="none"),
        "secret": jwt.encode({"org": "acme", "exp": int(time.time()) + 600, "iss": ISS,
                              "aud": AUD}, "guessed", algorithm="HS256"),
        "kid": jwt.encode({"org": "acme", "exp": int(time.time()) + 600, "iss": ISS,
                           "aud": AUD}, private_key, algorithm="RS256",
                          headers={"kid": "rotated-away"}),
    }
    for what, token in refused.items():
        r = http(token).get("/models")
        assert r.status_code == 401, (what, r.status_code, r.text)
        assert error_code(r) == "invalid_api_key", (what, r.text)
    assert httpx.get(f"{base_url}/models").status_code == 401, "anonymous must be refused"
    print("ok: RS256 (JWKS URL) and HS256 tokens resolve to their tenant and scopes")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
