"""Standard Webhooks signatures (`outbound.signing`)."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from connector.outbound import signing


def test_the_specifications_example() -> None:
    # The example of the Standard Webhooks reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
            == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")


def test_new_secret_is_24_random_bytes() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert signing.new_secret() != secret
    with pytest.raises(ValueError):
        signing.key("whsec_not base64!")


def test_headers_sign_with_every_secret_and_verify() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = '{"recipient":{"id":"u"},"message":{"text":"héllo"}}'.encode()
    headers = signing.headers([new, old], "msg_abc", body, timestamp=1_700_000_000)
    assert headers["webhook-id"] == "msg_abc"
    assert headers["webhook-timestamp"] == "1700000000"
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (new, old):
        assert signing.verify(secret, headers, body, now=1_700_000_010)
    assert not signing.verify(signing.new_secret(), headers, body, now=1_700_000_010)
    assert not signing.verify(new, headers, body + b" ", now=1_700_000_010)
    assert not signing.verify(new, headers, body, now=1_700_000_000 + 301)  # too old
    assert not signing.verify(new, {**headers, "webhook-id": "msg_other"}, body,
                              now=1_700_000_010)


def test_in_use_during_grace() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    later = now + dt.timedelta(hours=1)
    assert signing.in_use("a", "b", later, now) == ("a", "b")
    assert signing.in_use("a", "b", now, now) == ("a",)
    assert signing.in_use("a", None, None, now) == ("a",)
    assert signing.in_use("", None, None, now) == ()
