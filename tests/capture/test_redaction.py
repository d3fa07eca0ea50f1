"""Redaction: planted personal data and secrets never reach a written byte; the rest is untouched."""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import read_log
from waza.capture.redact import Redactor
from waza.telemetry import RuntimeCollector, TelemetryAnalyzer

LETTERS = string.ascii_letters


def luhn_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char)
        if position % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def word(size: int, alphabet: str = LETTERS) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=size, max_size=size)


cards = st.builds(lambda body, sep: sep.join((body + luhn_digit(body))[i : i + 4] for i in range(0, 16, 4)),
                  word(15, string.digits), st.sampled_from(["", " ", "-"]))  # fmt: skip
emails = st.builds(lambda a, b, c: f"{a}@{b}.{c}", word(6), word(5), st.sampled_from(["com", "org", "io"]))
alnum = LETTERS + string.digits
secrets = st.one_of(
    emails,
    cards,
    st.builds(lambda k: "sk-" + k, word(32, alnum)),
    st.builds(lambda k: "ghp_" + k, word(36, alnum)),
    st.builds(lambda k: "AKIA" + k, word(16, string.ascii_uppercase + string.digits)),
    st.builds(lambda a, b, c: f"eyJ{a}.eyJ{b}.{c}", word(12, alnum), word(20, alnum), word(16, alnum)),
    st.builds(lambda k: "Bearer " + k, word(24, alnum)),
    st.builds(lambda k: "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + k, word(40, alnum)),
    st.integers(1, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    st.integers(1, 2**128 - 1).map(
        lambda n: str(ipaddress.IPv6Address(n))
    ),  # compressed, as Python writes it
    st.builds(
        lambda body: "-----BEGIN RSA PRIVATE KEY-----\n" + body + "\n-----END RSA PRIVATE KEY-----",
        word(64, alnum),
    ),  # fmt: skip
    st.builds(
        lambda user, pw, host: f"postgres://{user}:{pw}@{host}/db",
        word(6),
        word(12, alnum),
        st.sampled_from(["10.0.0.7", "db", "localhost:5432", "db.internal.example"]),
    ),  # fmt: skip
    st.builds(
        lambda a, b, c: f"{a} {b} {c}", word(3, "23456789"), word(3, string.digits), word(4, string.digits)
    ),
    st.builds(lambda a, b: f"020 {a} {b}", word(4, "2345678"), word(4, string.digits)),
    cards.map(
        lambda card: ".".join(card.replace(" ", "").replace("-", "")[i : i + 4] for i in range(0, 16, 4))
    ),
)
# Card numbers stored as integers, as a form field often is (never a time since the epoch).
int_cards = st.builds(
    lambda body: int(body + luhn_digit(body)), word(15, string.digits).map(lambda b: "4" + b[1:])
)
# Text that no rule can match: letters and spaces only; keys that are not sensitive names.
clean_text = st.text(LETTERS + " ", max_size=30)
clean_keys = st.text(LETTERS, min_size=1, max_size=8).filter(
    lambda k: Redactor()._key_rule(k) == (None, k) and k.lower() not in {"tokens"}
)
clean_data = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | clean_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(clean_keys, inner, max_size=3),
    max_leaves=10,
)
sensitive_keys = st.sampled_from(
    ["password", "API_KEY", "Authorization", "client-secret", "db_password", "Cookie", "accessToken",
     "clientSecret", "AWS_SECRET_ACCESS_KEY", "passphrase", "db_pass", "x-api-key"]
)  # fmt: skip


@st.composite
def dirty_data(draw) -> tuple[object, list[str]]:
    """Nested data with secrets planted in text and under sensitive keys, and what was planted."""
    planted: list[str] = []

    def plant_text() -> str:
        secret = draw(secrets)
        planted.append(secret)
        return f"{draw(clean_text)} {secret} {draw(clean_text)}"

    def plant_key() -> dict:
        value = "v" + draw(word(14))
        planted.append(value)
        return {draw(sensitive_keys): value}

    def plant_key_name() -> dict:
        address = draw(emails)
        planted.append(address)
        return {address: draw(clean_text)}

    def plant_number() -> int:
        card = draw(int_cards)
        planted.append(str(card))
        return card

    shape = draw(st.lists(st.sampled_from(["text", "key", "nest", "name", "number"]), min_size=1, max_size=6))
    data: dict[str, object] = {}
    for index, kind in enumerate(shape):
        if kind == "text":
            data[f"t{index}"] = plant_text()
        elif kind == "key":
            data[f"k{index}"] = plant_key()
        elif kind == "name":
            data[f"m{index}"] = plant_key_name()
        elif kind == "number":
            data[f"c{index}"] = {"card": [plant_number()]}
        else:
            data[f"n{index}"] = [{"deep": {"deeper": plant_text()}}, plant_key()]
    return data, planted


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dirty_data(), clean_data, clean_text, st.lists(secrets, min_size=3, max_size=3), emails, emails)
def test_no_planted_secret_is_written(dirty, clean, text, more, session_id, skill) -> None:
    """No planted secret survives into any written byte, not even as a key, session id or skill name;
    clean data reads back unchanged."""
    data, planted = dirty
    planted += [*more, session_id, skill]
    with tempfile.TemporaryDirectory() as folder:
        with RuntimeCollector(folder) as collector:
            metadata = {"note": data, "plain": clean, session_id: "contact"}
            sid = collector.start_session(f"{text} {more[0]}", metadata, session_id=session_id)
            collector.record_event(sid, "skill.invoked", skill_name=skill)
            collector.record_event(sid, "custom", {"dirty": data, "clean": clean})
            collector.end_session(sid, output=f"done {more[1]}", success=False, error=f"{more[2]} {text}")
        written = b"".join(
            gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
            for p in Path(folder).rglob("*")
            if p.is_file()
        )
        for secret in planted:
            assert secret.encode() not in written
        (custom,) = [e for e in read_log(Path(folder)) if e["event_type"] == "custom"]
        assert custom["data"]["clean"] == clean


def test_pseudonyms_are_stable_per_key() -> None:
    """The same user id maps to the same pseudonym for one key, and to another for another key."""
    first, again = Redactor(mode="pseudonymise", key="k1"), Redactor(mode="pseudonymise", key="k1")
    other = Redactor(mode="pseudonymise", key="k2")
    record = {"user_id": "user-42", "note": "mail bob@example.com"}
    assert first(record) == again(record)
    assert first(record)["user_id"] != other(record)["user_id"]
    assert first(record)["user_id"].startswith("<USER:") and "user-42" not in str(first(record))
    assert first(record)["note"].startswith("mail <EMAIL:")


def test_pseudonymise_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pseudonyms without a configured key would not be stable, so it is refused."""
    monkeypatch.delenv("WAZA_REDACT_KEY", raising=False)
    with pytest.raises(ValueError):
        Redactor(mode="pseudonymise")


def test_custom_patterns_and_callbacks() -> None:
    """User patterns and callables run on every string."""
    redactor = Redactor(patterns={"TICKET": r"\bTCK-\d+\b"}, callbacks=[lambda s: s.replace("acme", "<ORG>")])
    assert redactor({"m": "acme ticket TCK-1234"}) == {"m": "<ORG> ticket <TICKET>"}


def test_hostile_payloads_are_bounded() -> None:
    """Very deep nesting, cycles and huge strings come back bounded instead of hanging."""
    deep: dict = {}
    node = deep
    for _ in range(10_000):
        node["x"] = {}
        node = node["x"]
    cyclic: dict = {}
    cyclic["self"] = cyclic
    redactor = Redactor(max_depth=8, max_string=1000)
    out = redactor({"deep": deep, "cyclic": cyclic, "big": "a" * 1_000_000})
    depth, node = 0, out["deep"]
    while isinstance(node, dict):
        node, depth = node["x"], depth + 1
    assert node == "<TRUNCATED depth>" and depth < 8
    assert out["cyclic"]["self"] == "<CYCLE>"
    assert len(out["big"]) < 1100 and out["big"].endswith("chars>")


def test_capture_content_false_keeps_only_lengths_and_hashes(tmp_path: Path) -> None:
    """Without content capture, prompts, outputs and tool arguments are replaced by length and hash."""
    with RuntimeCollector(tmp_path, capture_content=False) as collector:
        sid = collector.start_session("secret plan")
        collector.record_event(sid, "tool.called", {"tool": "az", "args": ["deploy", "x"]})
        collector.end_session(sid, "the answer")
    started, called, ended = read_log(tmp_path)
    assert started["data"]["prompt"] == "" and started["data"]["prompt_chars"] == len("secret plan")
    assert started["data"]["prompt_sha256"] == hashlib.sha256(b"secret plan").hexdigest()
    assert called["data"]["tool"] == "az" and called["data"]["args"] is None
    assert ended["data"]["output"] == "" and ended["data"]["output_chars"] == len("the answer")
    assert b"secret plan" not in b"".join(gzip.decompress(p.read_bytes()) for p in tmp_path.rglob("*.gz"))


PIECES = st.one_of(
    st.text("0123456789", min_size=1, max_size=4),
    st.sampled_from(["-", ".", " ", "(", ")", "+", ":", "@", "=", "a", "eyJ", "sk-", "gh", "AKIA", "x"]),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(PIECES, max_size=12).map("".join))
def test_every_gate_lets_its_pattern_s_matches_through(text: str) -> None:
    """A gate only saves work: whenever a rule's pattern would match, its gate passes,
    and the one-call test of all gates passes exactly when one of them does."""
    import re

    from waza.capture.redact import BUILT_IN_PATTERNS, _any_gate

    digits = sum(char in "0123456789" for char in text)
    for kind, gate, pattern, _ in BUILT_IN_PATTERNS:
        if re.search(pattern, text):
            assert gate(text, text.lower(), digits), (kind, text)
    passing = any(gate(text, text.lower(), digits) for _, gate, _, _ in BUILT_IN_PATTERNS)
    assert _any_gate(text, text.lower(), digits) == passing, text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call (555) 123-4567", "call <PHONE>"),
        ("call 555.123.4567", "call <PHONE>"),
        ("call 555-123-4567", "call <PHONE>"),
        ("order e10000123-45", "order e10000123-45"),
    ],
)
def test_phone_numbers_in_each_format_are_redacted(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from fe80::1 via 2001:db8::8a2e:370:7334", "from <IP> via <IP>"),
        ("loopback ::1 and 2001:0db8:0000:0000:0000:ff00:0042:8329", "loopback <IP> and <IP>"),
        (
            "at 10:30:45, std::vector, a :: b, 00:1A:2B:3C:4D:5E",
            "at 10:30:45, std::vector, a :: b, 00:1A:2B:3C:4D:5E",
        ),
    ],
)
def test_ipv6_addresses_compressed_or_not_are_redacted(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    ("data", "leak"),
    [
        ({"accessToken": "tok-123456789"}, "tok-123456789"),
        ({"clientSecret": "s3cr3t-value"}, "s3cr3t-value"),
        ({"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI"}, "wJalrXUtnFEMI"),
        ({"passphrase": "correct horse"}, "correct horse"),
        ({"db_pass": "hunter22"}, "hunter22"),
        ({"ana@example.com": 1}, "ana@example.com"),
        ({"key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----"}, "MIIEvQIBADANBg"),
        ({"url": "https://admin:pa55word@10.1.2.3/x"}, "pa55word"),
        ({"url": "redis://cache:pa55word@cache/0"}, "pa55word"),
        ({"note": "call 555 123 4567"}, "555 123 4567"),
        ({"note": "call 020 7946 0958"}, "020 7946 0958"),
        ({"card": "4111.1111.1111.1111"}, "4111.1111.1111.1111"),
        ({"card": 4111111111111111}, "4111111111111111"),
    ],
)
def test_each_reported_leak_is_closed(data: dict, leak: str) -> None:
    """The shapes that got through the default settings before are redacted now."""
    assert leak not in repr(Redactor()(data))


def test_names_that_are_not_secrets_stay() -> None:
    """Token counts, pass rates, times in microseconds and plain numbers are left as they are."""
    data = {"input_tokens": 12, "max_tokens": 100, "pass_rate": 0.9, "at_us": 1795772200437513, "n": 4111}
    assert Redactor()(data) == data


def test_identifiers_with_personal_data_group_under_one_pseudonym(tmp_path: Path) -> None:
    """An e-mail used as a skill name becomes one stable pseudonym, so per-skill counts still add up."""
    with RuntimeCollector(tmp_path / "t") as collector:
        for n in range(3):
            with collector.session(f"p{n}", skill_name="team@example.com"):
                pass
    report = TelemetryAnalyzer().analyze_file(tmp_path / "t")
    ((skill, figures),) = report["skill_breakdown"].items()
    assert skill.startswith("<ID:") and figures["invocations"] == 3
    assert "example.com" not in json.dumps(read_log(tmp_path / "t"))


def test_minted_trace_and_span_ids_are_kept_though_their_digits_pass_a_card_check() -> None:
    """A digit run inside a random hex id can pass the Luhn check; the id is no card, and changing
    it would split a trace's session from its spans."""
    import random

    redactor = Redactor()
    rng = random.Random(7)
    ids = ["5a5a5a5a5a5a5a5a0000000000989681", "c761c9998510cf4853989439177cbebb"]
    ids += [f"{rng.getrandbits(128):032x}" for _ in range(5000)] + [
        f"{rng.getrandbits(64):016x}" for _ in range(5000)
    ]
    minted = [i for i in ids if any(c in "abcdef" for c in i)]
    assert all(redactor.identifier(i) == i for i in minted)
    data = {"span_id": minted[1][:16], "parent_span_id": minted[0][:16], "trace": minted[0]}
    assert redactor(data) == data
    # A card number is still one: alone, in text, or as an id without a hex letter.
    assert redactor.text("paid with 4111111111111111") == "paid with <CARD>"
    assert redactor.identifier("4111111111111111") != "4111111111111111"
