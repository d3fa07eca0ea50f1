"""Redaction: personal data and secrets are replaced before a record leaves the process."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Values under these keys (any depth, case-insensitive, '-' read as '_') are secrets.
SENSITIVE_KEYS = frozenset(
    {
        "password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "access_key",
        "access_token", "refresh_token", "id_token", "auth", "authorization", "cookie",
        "set_cookie", "session_token", "private_key", "client_secret", "credentials",
        "credential", "x_api_key", "connection_string", "sas_token", "account_key",
    }
)  # fmt: skip
SENSITIVE_SUFFIXES = (
    "_password", "_secret", "_token", "_api_key", "_apikey", "_private_key", "_access_key",
    "_secret_key", "_account_key", "_pass", "_passphrase", "_credential", "_credentials",
)  # fmt: skip
# A key whose last word is one of these names a secret (``db_pass``, ``clientSecret``),
# while ``pass_rate`` or ``input_tokens`` do not.
SENSITIVE_WORDS = frozenset({"password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "cookie"})
# Keys whose values name a session or a skill: text in them that holds personal
# data becomes a stable pseudonym, so that grouping by them still works.
IDENTIFIER_KEYS = frozenset({"session_id", "skill_name", "skill"})


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> bool:
    return _card_number(re.sub(r"[ .-]", "", match.group()))


def _card_number(digits: str) -> bool:
    """A payment card number: 13 to 19 digits that pass the Luhn check."""
    return 13 <= len(digits) <= 19 and _luhn_valid(digits)


def _ipv6(match: re.Match[str]) -> bool:
    """An address, compressed ("fe80::1") or not; not "::" alone, which names no host."""
    try:
        ipaddress.IPv6Address(match.group())
    except ValueError:
        return False
    return match.group() != "::"


# A cheap test on (text, lowered text, number of digits) that must pass before a
# rule's regex runs: most strings are short names that no rule can match.
Gate = Callable[[str, str, int], bool]

# (kind, gate, pattern, check): the check confirms a candidate the pattern alone cannot.
BUILT_IN_PATTERNS: list[tuple[str, Gate, str, Callable[[re.Match[str]], bool] | None]] = [
    ("JWT", lambda t, low, d: "eyJ" in t, r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*", None),
    ("BEARER_TOKEN", lambda t, low, d: "bearer" in low, r"(?i:\bbearer\s+[A-Za-z0-9._~+/=-]{8,})", None),
    ("OPENAI_KEY", lambda t, low, d: "sk-" in t, r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}", None),
    ("GITHUB_TOKEN", lambda t, low, d: "gh" in t or "github_pat_" in t, r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})", None),
    ("AWS_KEY", lambda t, low, d: "AKIA" in t or "ASIA" in t, r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", None),
    ("AZURE_SECRET", lambda t, low, d: "=" in t, r"(?i:\b(?:AccountKey|SharedAccessKey|SharedAccessSignature|sig)=[^;\s&\"']{8,})", None),
    ("PRIVATE_KEY", lambda t, low, d: "-----BEGIN" in t, r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", None),
    ("URL_CREDENTIALS", lambda t, low, d: "@" in t and "://" in t, r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)", None),
    ("EMAIL", lambda t, low, d: "@" in t, r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b", None),
    ("CARD", lambda t, low, d: d >= 13, r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", _card),
    ("CARD", lambda t, low, d: d >= 13 and "." in t, r"(?<![\d.])\d{4}\.\d{4}\.\d{4}\.\d{1,7}(?![\d.])", _card),
    ("IP", lambda t, low, d: d >= 4 and "." in t, r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.])", None),
    ("IP", lambda t, low, d: t.count(":") >= 2, r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])", _ipv6),
    ("PHONE", lambda t, low, d: d >= 5 and "+" in t, r"(?<![\w+])\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,3}(?!\w)", None),
    ("PHONE", lambda t, low, d: d >= 10 and ("(" in t or t.count("-") + t.count(".") >= 2), r"(?<![\w])\(\d{3}\)\s?\d{3}[ .-]\d{4}(?!\w)|(?<![\w.-])\d{3}[.-]\d{3}[.-]\d{4}(?![\w.-])", None),
    ("PHONE", lambda t, low, d: d >= 10 and t.count(" ") >= 2, r"(?<![\w.:-])(?:\d{3} \d{3} \d{4}|0\d{2,4} \d{3,4} \d{4})(?![\w.:-])", None),
]  # fmt: skip


def _any_gate(t: str, low: str, d: int) -> bool:
    """Whether some gate above passes, in one call: most strings pass none (a test holds it to the gates)."""
    return (
        "eyJ" in t or "bearer" in low or "sk-" in t or "gh" in t or "github_pat_" in t or "AKIA" in t
        or "ASIA" in t or "=" in t or "@" in t or t.count(":") >= 2
        or "-----BEGIN" in t
        or (d >= 4 and ("." in t or d >= 13 or (d >= 5 and "+" in t) or (d >= 10 and ("(" in t or t.count("-") >= 2 or t.count(" ") >= 2))))
    )  # fmt: skip


def _digits(text: str) -> int:
    raw = text.encode("utf-8", "surrogatepass")
    return len(raw) - len(raw.translate(None, b"0123456789"))


_SEQUENCES = (list, tuple, set, frozenset)
_PLAIN = frozenset({int, float, bool, type(None)})
_CACHE_LIMIT = 4096  # short strings repeat (tool and model names): remember their result

MODES = ("replace", "pseudonymise")
# What ``mode="replace"`` and the bounds leave in a text: once there, two different
# originals may read the same (a pseudonym, ``<EMAIL:3f9a1c0b2e4d>``, stays distinct).
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*[ >]")
MAX_DEPTH = 32
MAX_STRING = 64 * 1024
# Trace, span and session ids as producers mint them (hex holding a letter, or a UUID): random,
# never personal data, though a run of their digits can pass a card number's checks.
_MINTED_ID = re.compile(
    r"(?=[0-9]*[a-f])(?:[0-9a-f]{16}|[0-9a-f]{32})|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    re.IGNORECASE,
)
MAX_ITEMS = 10_000


def has_placeholder(text: str) -> bool:
    """Whether a text holds a replace-mode placeholder, so that it no longer tells its original apart."""
    return PLACEHOLDER.search(text) is not None


class Redactor:
    """Replaces personal data and secrets in nested data, never changing the caller's objects.

    ``mode="replace"`` writes a typed placeholder (``<EMAIL>``); ``mode="pseudonymise"``
    writes a keyed HMAC of the value (``<EMAIL:3f9a1c0b2e4d>``), stable for one key, so
    the same address always maps to the same pseudonym; in that mode values under
    ``pseudonymise_keys`` (``user_id`` by default) are pseudonymised too, so that
    per-user counts keep working. ``patterns`` adds ``{kind: regex}``, ``callbacks``
    adds functions ``str -> str`` run on every string. Depth, string length and
    container size are bounded so hostile input cannot hang the host.
    """

    def __init__(
        self,
        *,
        mode: str = "replace",
        key: bytes | str | None = None,
        patterns: Mapping[str, str] | None = None,
        callbacks: Iterable[Callable[[str], str]] = (),
        sensitive_keys: Iterable[str] = (),
        pseudonymise_keys: Iterable[str] = ("user_id",),
        max_depth: int = MAX_DEPTH,
        max_string: int = MAX_STRING,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if max_depth < 1 or max_string < 16:
            raise ValueError("max_depth must be at least 1 and max_string at least 16")
        key = key if key is not None else os.environ.get("WAZA_REDACT_KEY")
        if mode == "pseudonymise" and not key:
            raise ValueError("pseudonymise needs a key (key=... or WAZA_REDACT_KEY) to stay stable")
        self._key = key.encode() if isinstance(key, str) else (key or b"")
        self.mode = mode
        self.max_depth = max_depth
        self.max_string = max_string
        self._keys = SENSITIVE_KEYS | {_normal(k) for k in sensitive_keys}
        self._pseudonymised = {_normal(k) for k in pseudonymise_keys}
        self._callbacks = tuple(callbacks)
        always: Gate = lambda text, lowered, digits: True  # noqa: E731
        custom = [(kind, always, regex, None) for kind, regex in (patterns or {}).items()]
        self._rules = [
            (kind, gate, re.compile(regex), check)
            for kind, gate, regex, check in [*BUILT_IN_PATTERNS, *custom]
        ]
        self._cache: dict[str, str] = {}
        self._keys_seen: dict[str, str | None] = {}
        self._custom = bool(custom)
        self.redactions = 0  # how many values were replaced, across all calls

    def __call__(self, value: Any) -> Any:
        return self._walk(value, 0, set())

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        """An event record with its data redacted and its session id and skill name kept as identifiers."""
        data = record.get("data")
        # The common case, a dict, walked straight (it is the only object seen so far).
        redacted = {
            **record,
            "data": self._walk_mapping(data, 0, {id(data)})
            if type(data) is dict and self.max_depth > 0
            else self(data),
        }
        for field in ("session_id", "skill_name"):
            value = record.get(field)
            if isinstance(value, str) and value not in self._cache:  # remembered: a text left as it is
                redacted[field] = self.identifier(value)
        return redacted

    def text(self, value: str) -> str:
        """Redact one string."""
        if len(value) > self.max_string:
            value = value[: self.max_string] + f"...<TRUNCATED {len(value) - self.max_string} chars>"
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        original = value
        for callback in self._callbacks:
            value = callback(value)
        lowered = value.lower()
        digits = _digits(value)
        if (self._custom or _any_gate(value, lowered, digits)) and not _MINTED_ID.fullmatch(value):
            for kind, gate, pattern, check in self._rules:
                if gate(value, lowered, digits):
                    value = pattern.sub(lambda m, k=kind, c=check: self._replace(m, k, c), value)
        if len(original) <= 64 and value == original:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[original] = value
        return value

    def pseudonym(self, value: Any, kind: str = "ID") -> str:
        digest = hmac.new(self._key, str(value).encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"<{kind}:{digest.hexdigest()[:12]}>"

    def _replace(self, match: re.Match[str], kind: str, check: Callable | None) -> str:
        if check is not None and not check(match):
            return match.group()
        self.redactions += 1
        return self.pseudonym(match.group(), kind) if self.mode == "pseudonymise" else f"<{kind}>"

    def _walk(self, value: Any, depth: int, seen: set[int]) -> Any:
        kind = type(value)
        if kind is str:
            return self.text(value)
        if kind in _PLAIN:
            return self._number(value) if kind is int else value
        if depth >= self.max_depth:
            return "<TRUNCATED depth>"
        if id(value) in seen:
            return "<CYCLE>"
        if kind is dict or (kind not in _SEQUENCES and isinstance(value, Mapping)):
            seen.add(id(value))
            result = self._walk_mapping(value, depth, seen)
        elif kind in _SEQUENCES or isinstance(value, _SEQUENCES):
            seen.add(id(value))
            result = [self._walk(item, depth + 1, seen) for item in list(value)[:MAX_ITEMS]]
            if len(value) > MAX_ITEMS:
                result.append(f"<TRUNCATED {len(value) - MAX_ITEMS} items>")
        elif isinstance(value, str):
            return self.text(str(value))
        elif isinstance(value, bool | int | float):
            return value
        else:
            return self.text(repr(value))
        seen.discard(id(value))
        return result

    def _number(self, value: int) -> int | str:
        """A card number stored as an integer is a card number all the same.

        Times since the epoch in milliseconds, microseconds or nanoseconds have card
        lengths too, and begin with 1 for centuries; no card network's numbers do.
        """
        if value < 2 * 10**12 or not _card_number(digits := str(value)) or digits[0] == "1":
            return value
        self.redactions += 1
        return self.pseudonym(value, "CARD") if self.mode == "pseudonymise" else "<CARD>"

    def identifier(self, value: str) -> str:
        """A session id or skill name: unchanged, or, when it holds personal data, one stable pseudonym.

        The pseudonym is keyed (``key`` or ``WAZA_REDACT_KEY``), so each id keeps its
        own and sessions still group; without a key it is stable but guessable.
        """
        if self.text(value) == value:
            return value
        self.redactions += 1
        return self.pseudonym(value, "ID")

    def _walk_mapping(self, value: Mapping[Any, Any], depth: int, seen: set[int]) -> dict[str, Any]:
        result = {}
        # Keys and short texts repeat: their remembered results are looked up here, without a call.
        rules, texts, longest = self._keys_seen, self._cache, self.max_string
        for index, (key, item) in enumerate(value.items()):
            if index >= MAX_ITEMS:
                result["<TRUNCATED>"] = f"{len(value) - MAX_ITEMS} more items"
                break
            rule = rules.get(key) if type(key) is str else None
            treatment, name = rule if rule is not None else self._key_rule(key)
            if name in result:  # two keys redacted alike (two e-mail addresses) both stay
                name = f"{name}#{index}"
            if treatment is None:  # the common case first: a plain string or number
                kind = type(item)
                if kind is str:
                    known = texts.get(item) if len(item) <= longest else None
                    result[name] = known if known is not None else self.text(item)
                elif kind in _PLAIN:
                    result[name] = self._number(item) if kind is int else item
                else:
                    result[name] = self._walk(item, depth + 1, seen)
            elif treatment == "secret":
                self.redactions += 1
                result[name] = "<REDACTED>"
            elif treatment == "identifier":
                result[name] = (
                    self.identifier(item) if type(item) is str else self._walk(item, depth + 1, seen)
                )
            elif item is not None:
                result[name] = self.pseudonym(item, treatment)
            else:
                result[name] = None
        return result

    def _key_rule(self, key: Any) -> tuple[str | None, str]:
        """How a key's value is treated ("secret", "identifier", a pseudonym kind, or None), and
        the key as written (itself redacted when it holds personal data); remembered, as keys repeat."""
        try:
            return self._keys_seen[key]
        except (KeyError, TypeError):
            pass
        text = key if type(key) is str else str(key)
        name = _normal(text)
        if (
            name in self._keys
            or name.endswith(SENSITIVE_SUFFIXES)
            or name.rsplit("_", 1)[-1] in SENSITIVE_WORDS
        ):
            treatment: str | None = "secret"
        elif self.mode == "pseudonymise" and name in self._pseudonymised:
            treatment = "USER" if name == "user_id" else "ID"
        elif name in IDENTIFIER_KEYS:
            treatment = "identifier"
        else:
            treatment = None
        found = (treatment, self.text(text))
        if isinstance(key, str) and len(self._keys_seen) < _CACHE_LIMIT:
            self._keys_seen[key] = found
        return found


def _normal(key: str) -> str:
    """A key as words joined by ``_``: ``clientSecret``, ``client-secret`` and ``CLIENT_SECRET`` alike."""
    words = _CAMEL.sub("_", key.strip())
    return re.sub(r"[-.\s]+", "_", words).lower()


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
