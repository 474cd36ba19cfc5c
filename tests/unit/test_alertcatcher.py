"""The alert catcher (images/alertcatcher) on real sockets: SMTP with and without a login,
webhooks, what it refuses, and its page."""

from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage

import pytest
import requests

from apod_alertcatcher.catcher import MAX_BODY, AlertCatcher

pytestmark = pytest.mark.unit


def post(url: str, body: bytes) -> int:
    headers = {"Content-Type": "application/json"}
    return requests.post(url, data=body, headers=headers, timeout=10).status_code


def mail(catcher: AlertCatcher, subject: str, login: tuple[str, str] | None = None) -> None:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, "a@example.org", "b@example.org"
    message.set_content("plain <b>body</b>")
    message.add_alternative("<table><tr><th>Task</th><td>extract</td></tr></table>", "html")
    with smtplib.SMTP(catcher.host, catcher.smtp_port, timeout=10) as client:
        if login:
            client.login(*login)
        client.send_message(message)


def test_mail_with_a_login_and_webhooks_are_caught_and_shown():
    with AlertCatcher(credentials=("user", "pw:@/ x")) as catcher:
        mail(catcher, "[apod] <first>", ("user", "pw:@/ x"))
        with pytest.raises(smtplib.SMTPAuthenticationError):
            mail(catcher, "refused", ("user", "wrong"))
        assert post(f"{catcher.url}/hooks/t0ken", json.dumps({"text": "one\ntwo"}).encode()) == 200
        (caught_mail,) = catcher.caught("mail")
        assert caught_mail.subject == "[apod] <first>"
        assert caught_mail.login == "user"
        assert caught_mail.recipients == ("b@example.org",)
        assert caught_mail.text.strip() == "plain <b>body</b>"
        (hook,) = catcher.caught("webhook")
        assert (hook.subject, hook.text, hook.payload) == ("one", "one\ntwo", {"text": "one\ntwo"})
        page = requests.get(catcher.url, timeout=10).text
        assert "[apod] &lt;first&gt;" in page
        assert "<first>" not in page
        listed = requests.get(f"{catcher.url}/messages", timeout=10).json()
        assert [m["channel"] for m in listed] == ["mail", "webhook"]
        assert "pw:@/ x" not in json.dumps(listed) + page
        assert requests.delete(f"{catcher.url}/messages", timeout=10).status_code == 204
        assert catcher.caught() == []


def test_an_html_only_mail_reads_as_lines():
    with AlertCatcher() as catcher:
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = "s", "a@x.org", "b@x.org"
        message.set_content(
            "<p>head</p><table><tr><th>Task</th><td>extract</td></tr></table>", "html"
        )
        with smtplib.SMTP(catcher.host, catcher.smtp_port, timeout=10) as client:
            client.send_message(message)
        assert catcher.caught("mail")[0].text == "head\nTask: extract"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b'["text"]', 400),
        (b'{"text": 3}', 400),
        (b"x" * (MAX_BODY + 1), 413),
    ],
)
def test_what_is_no_webhook_is_refused_and_the_server_goes_on(body, status):
    with AlertCatcher() as catcher:
        assert post(f"{catcher.url}/webhook", body) == status
        assert catcher.caught() == []
        assert post(f"{catcher.url}/webhook", b'{"text": "after"}') == 200
        assert [c.text for c in catcher.caught()] == ["after"]
