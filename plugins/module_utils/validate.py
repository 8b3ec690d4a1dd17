# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE)
"""Validator for a PRODUCT.yaml of a CNCF Kubernetes AI Conformance submission, with the verdict of upstream's.

The gatekeeper of a submission is ``scripts/validate.go`` of cncf/k8s-ai-conformance (run by its GitHub
workflow as ``go run -tags validate scripts/validate.go vX.Y/<product>/PRODUCT.yaml``).  This module applies
the same rules, written in our own code, and reports the same messages; our stricter opinions are warnings.
The rules, by the validate.go function (or Go library behaviour) they come from:

* ``validateProduct``: the checklist version is the ``vX.Y/`` directory above the product folder
  (``Could not determine version from path``); the checklist ("schema") comes from catalog.py.
* ``loadYaml`` = ``yaml.Unmarshal`` of gopkg.in/yaml.v3 v3.0.1 into ``ConformanceDoc``: reproduced by
  ``load_product`` below - only the first YAML document is read; duplicate mapping keys and values that do not
  fit the typed fields (``Requirement`` strings, ``Evidence []string``, ``Spec map[string][]Requirement``,
  ``Metadata map[string]interface{}``) reject the whole file at load, wherever they are, also under unknown
  categories or ids; any scalar decodes into a string field as its text (``notes: 42`` is ``"42"``,
  ``description: yes`` is ``"yes"``), null leaves it empty and null list items are dropped (``evidence: [null]``
  is ``[]``); metadata values keep their YAML 1.2 types (``1.0`` is a number, ``2024-01-01`` a timestamp: not
  strings).
* ``validateProduct`` metadata: required fields (``metadataFields``; camelCase or snake_case via
  ``toSnakeCase``) present, strings, not empty, not ``[placeholder]``; ``k8sConformanceUrl`` matches
  ``k8sConformanceURLPattern``.  No rule on the logo's file type.
* ``validateProduct`` spec: every category and id of the checklist; a SHOULD with empty status and no evidence
  is skipped; ``validStatuses``; a MUST must be ``Implemented``; ``N/A`` needs notes (the ``na_rule`` option
  below chooses between today's rule and the pending one).
* ``resolveEvidencePath``: local evidence (bare path or ``file://``, optional ``#fragment``) is joined with the
  product folder, also when it starts with ``/``; a leading ``vX.Y/<product>/`` of the product's own folder is
  stripped, another product's folder or a path that escapes the folder is an error; the file must exist.
* ``classifyArtifact``/``parseArtifact``/``parseJUnit``/``parseGoTestJSON``/``parseE2ELog``/
  ``checkArtifactEvidence``: evidence files named ``junit.xml``, ``results.json`` (``go test -json``) or
  ``e2e.log`` are parsed; a failing test in one is an error; the ``#Test...`` fragment, else the test mapped to
  the id (``autoTestedRequirements``: secure_accelerator_access, gang_scheduling, cluster_autoscaling) must be
  found and not fail, and not be skipped when the requirement is Implemented.
* ``supportsHybridVerification``: from v1.37 an Implemented mapped requirement without such an artifact gets a
  warning.
* Network rules - ``validateURL`` (metadata URLs, ``k8sConformanceUrl``, evidence URLs reachable: HEAD, then
  GET, status < 400) and ``fetchCNCFMembers`` (``vendorName`` listed among the CNCF members of the landscape):
  reported in ``not_checked`` / ``info`` as not checked offline; checked with ``online=True``.

N/A on a MUST (``na_rule``): ``upstream`` (default) is validate.go on main today - a MUST must be Implemented,
N/A notes must not be empty (whitespace counts as notes).  ``pending`` is the open change cncf/k8s-ai-conformance
PR #146 (``checkRequirementStatus``, ``conditionalMustRequirements``): cluster_autoscaling may be N/A with notes
(a warning for the reviewer), notes that are only whitespace are missing.  Every result says which rule applied.

CLI (one line per problem; exit 1 when a file is invalid)::

    python -m ansible_collections.k8s_ai.conformance.plugins.module_utils.validate PATH [PATH...]
        [--version 1.35] [--na-rule upstream|pending] [--online] [--strict]
"""

from __future__ import absolute_import, division, print_function

import base64
import json
import math
import os
import re
import sys

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

try:
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import catalog
except ImportError:  # pragma: no cover - direct use from a checkout
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import catalog  # type: ignore[no-redef]

# ------------------------------------------------------------------------------ facts of validate.go
# validStatuses, in the order of its map literal (Go prints the map's keys in random order).
VALID_STATUSES = ("Implemented", "Not Implemented", "Partially Implemented", "N/A")
# k8sConformanceURLPattern (Go's `$` is the end of the text: Python's \Z).
K8S_CONFORMANCE_URL_RE = re.compile(r"^https://github\.com/cncf/k8s-conformance/tree/(master|main)/v[0-9]+\.[0-9]+/[^/]+/?\Z")
VERSION_DIR_RE = re.compile(r"^v([0-9]+\.[0-9]+)\Z")
# productDirPrefix of resolveEvidencePath.
PRODUCT_DIR_PREFIX_RE = re.compile(r"^v[0-9]+\.[0-9]+/[^/]+/")
# e2eResultLine of parseE2ELog (Go's \s and \S are ASCII).
E2E_RESULT_RE = re.compile(r"^[\t\n\f\r ]*--- (PASS|FAIL|SKIP): ([^\t\n\f\r ]+)")
# canonicalArtifacts of classifyArtifact.
CANONICAL_ARTIFACTS = {"junit.xml": "junit", "results.json": "gotestjson", "e2e.log": "e2elog"}
HYBRID_MIN_MINOR = 37  # hybridVerificationMinMinor
CONDITIONAL_MUST = ("cluster_autoscaling",)  # conditionalMustRequirements of the pending change (PR #146)
LOGO_SUFFIXES = (".svg", ".eps", ".ai")
LANDSCAPE_URL = "https://raw.githubusercontent.com/cncf/landscape/master/landscape.yml"
USER_AGENT = "CNCF-K8s-AI-Conformance-Validator/1.0 (+https://github.com/cncf/k8s-ai-conformance)"
MEMBER_SUFFIXES = (" (member)", " (supporter)")
SCANNER_MAX = 16 * 1024 * 1024  # bufio.Scanner buffer of the artifact parsers

UPSTREAM = "cncf/k8s-ai-conformance scripts/validate.go (main)"
NA_RULES = {
    "upstream": "N/A on a MUST is rejected (validate.go on main today: a MUST must be 'Implemented')",
    "pending": "N/A on a MUST is accepted for cluster_autoscaling with notes (pending upstream change, "
               "cncf/k8s-ai-conformance PR #146, checkRequirementStatus)",
}


def snake_case(name):
    """camelCase -> snake_case, as validate.go's toSnakeCase derives the alternative metadata keys."""
    out = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    out = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", out)
    return out.lower()


def is_placeholder(value):
    return isinstance(value, str) and value.startswith("[") and value.endswith("]")


def one_line(text):
    """Messages are one line each: newlines of quoted input are shown as \\n."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


def go_quote(text):
    """Go's %q (strconv.Quote) of a string, for messages that validate.go formats with it."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7f:
            out.append("\\x%02x" % code)
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x10000:
            out.append("\\u%04x" % code)
        else:
            out.append("\\U%08x" % code)
    out.append('"')
    return "".join(out)


# ----------------------------------------------------------------------- Go's path/filepath, for paths
def go_clean(path):
    """filepath.Clean (Unix)."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
        else:
            parts.append(seg)
    out = "/".join(parts)
    return ("/" + out) if rooted else (out or ".")


def go_dir(path):
    """filepath.Dir."""
    i = path.rfind("/")
    return go_clean(path[:i + 1])


def go_base(path):
    """filepath.Base."""
    if path == "":
        return "."
    path = path.rstrip("/")
    return path[path.rfind("/") + 1:] if path else "/"


def go_rel(basepath, targpath):
    """filepath.Rel; raises ValueError where Go returns an error."""
    base, targ = go_clean(basepath), go_clean(targpath)
    if targ == base:
        return "."
    if base == ".":
        base = ""
    if base.startswith("/") != targ.startswith("/"):
        raise ValueError("can't make %s relative to %s" % (targpath, basepath))
    bl, tl = len(base), len(targ)
    b0 = bi = t0 = ti = 0
    while True:
        while bi < bl and base[bi] != "/":
            bi += 1
        while ti < tl and targ[ti] != "/":
            ti += 1
        if targ[t0:ti] != base[b0:bi]:
            break
        if bi < bl:
            bi += 1
        if ti < tl:
            ti += 1
        b0, t0 = bi, ti
    if base[b0:bi] == "..":
        raise ValueError("can't make %s relative to %s" % (targpath, basepath))
    if b0 != bl:
        seps = base[b0:bl].count("/")
        return ".." + "/.." * seps + (("/" + targ[t0:]) if t0 != tl else "")
    return targ[t0:]


# ---------------------------------------------------------------- yaml.v3 (v3.0.1) typed decoding
class LoadError(Exception):
    """The file does not load as validate.go's loadYaml loads it; `messages` are one line each."""

    def __init__(self, messages):
        Exception.__init__(self, "; ".join(messages))
        self.messages = list(messages)


class _Fail(Exception):
    """yaml.v3 failf: aborts the decoding with one error (collected type errors are dropped)."""


class GoTimestamp:
    """A YAML timestamp that yaml.v3 resolves to time.Time (not a string)."""

    def __init__(self, text):
        self.text = text

    def __eq__(self, other):
        return isinstance(other, GoTimestamp) and other.text == self.text

    def __hash__(self):
        return hash(("timestamp", self.text))

    def __repr__(self):
        return "time.Time(%s)" % self.text


_UNTAGGED = "?untagged"  # what our loader's resolver gives a scalar that carries no explicit tag
_LONG_PREFIX = "tag:yaml.org,2002:"
_KNOWN_SHORT = ("!!null", "!!bool", "!!str", "!!int", "!!float", "!!timestamp", "!!seq", "!!map", "!!binary",
                "!!merge")
_RESOLVABLE = ("", "!!str", "!!bool", "!!int", "!!float", "!!null", "!!timestamp")
_RESOLVE_MAP = {}
for _values, _item in ((("true", "True", "TRUE"), ("!!bool", True)), (("false", "False", "FALSE"), ("!!bool", False)),
                       (("", "~", "null", "Null", "NULL"), ("!!null", None)),
                       ((".nan", ".NaN", ".NAN"), ("!!float", float("nan"))),
                       ((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), ("!!float", float("inf"))),
                       (("-.inf", "-.Inf", "-.INF"), ("!!float", float("-inf"))), (("<<",), ("!!merge", "<<"))):
    for _value in _values:
        _RESOLVE_MAP[_value] = _item
_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_GO_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+\.?[0-9]*)([eE][-+]?[0-9]+)?\Z")
_TS_DATE = re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})\Z")
_TS_TZ = re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})[Tt]([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(\.[0-9]+)?"
                    r"(Z|[+-]([0-9]{2}):([0-9]{2}))\Z")
_TS_SPACE = re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2}) ([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(\.[0-9]+)?\Z")
_HINT = {}
for _ch in "+-":
    _HINT[_ch] = "S"
for _ch in "0123456789":
    _HINT[_ch] = "D"
for _ch in "yYnNtTfFoO~":
    _HINT[_ch] = "M"
_HINT["."] = "."

# Go types of ConformanceDoc / Requirement, by our short names.
_GO_TYPE = {"string": "string", "strings": "[]string", "iface": "interface {}", "req": "main.Requirement",
            "reqs": "[]main.Requirement", "smap": "map[string]interface {}", "gmap": "map[interface {}]interface {}",
            "spec": "map[string][]main.Requirement", "doc": "main.ConformanceDoc"}
_STRUCT_FIELDS = {
    "doc": {"metadata": "smap", "spec": "spec"},
    "req": {"id": "string", "description": "string", "level": "string", "status": "string",
            "evidence": "strings", "notes": "string"},
}
_MAP_TYPES = {"smap": ("string", "iface"), "gmap": ("iface", "iface"), "spec": ("string", "reqs")}
_NILABLE = ("iface", "strings", "reqs", "smap", "gmap", "spec")  # Go kinds Interface, Map, Slice (decoder.null)


def _short_tag(tag):
    if tag.startswith(_LONG_PREFIX):
        return "!!" + tag[len(_LONG_PREFIX):]
    return tag


def _go_parse_digits(body):
    """Digits of strconv.Parse(U)Int with base 0 (0x, 0o, 0b, a leading 0 = octal); None on a syntax error."""
    base, digits = 10, body
    if body[:2] in ("0x", "0X"):
        base, digits = 16, body[2:]
    elif body[:2] in ("0o", "0O"):
        base, digits = 8, body[2:]
    elif body[:2] in ("0b", "0B"):
        base, digits = 2, body[2:]
    elif body[:1] == "0" and len(body) > 1:
        base, digits = 8, body[1:]
    allowed = "0123456789abcdefABCDEF"[:base if base <= 10 else 22]
    if not digits or not all(c in allowed for c in digits):
        return None
    return int(digits, base)


def _go_parse_int(text):
    """strconv.ParseInt(text, 0, 64); None where Go returns an error (syntax, range)."""
    sign, body = 1, text
    if body[:1] in ("+", "-"):
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    value = _go_parse_digits(body)
    if value is None:
        return None
    value *= sign
    return value if -2 ** 63 <= value < 2 ** 63 else None


def _go_parse_uint(text):
    """strconv.ParseUint(text, 0, 64) (no sign)."""
    value = _go_parse_digits(text)
    return value if value is not None and value < 2 ** 64 else None


def _go_parse_float(text):
    """strconv.ParseFloat for decimal text; None on a syntax error or overflow (Go returns an error)."""
    if not _GO_FLOAT.match(text):
        return None
    value = float(text)
    return None if math.isinf(value) else value


def _days_in(year, month):
    """Days of a month of the proleptic Gregorian calendar (Go's time package; year 0 is a leap year)."""
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _go_timestamp(text):
    """parseTimestamp of yaml.v3: the four layouts it tries with time.Parse, with Go's range checks."""
    if not re.match(r"^[0-9]{4}-", text):
        return False
    for regex in (_TS_TZ, _TS_SPACE, _TS_DATE):
        match = regex.match(text)
        if not match:
            continue
        year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
        if not 1 <= month <= 12 or not 1 <= day <= _days_in(year, month):
            continue
        if regex is not _TS_DATE:
            hour, minute, second = int(match.group(4)), int(match.group(5)), int(match.group(6))
            if hour >= 24 or minute >= 60 or second >= 60:
                continue
            if regex is _TS_TZ and match.group(8) != "Z" and (int(match.group(9)) > 24 or int(match.group(10)) > 60):
                continue
        return True
    return False


def go_resolve(tag, text):
    """resolve() of yaml.v3: (short tag, value) of a scalar; raises _Fail as failf does."""
    tag = _short_tag(tag)
    if tag not in _RESOLVABLE:
        return tag, text
    rtag, out = _resolve_plain(tag, text)
    if tag in ("", rtag, "!!str", "!!binary"):
        return rtag, out
    if tag == "!!float" and rtag == "!!int":
        return "!!float", float(out)
    raise _Fail("cannot decode %s `%s` as a %s" % (rtag, text, tag))


def _resolve_plain(tag, text):
    hint = _HINT.get(text[:1], "") if text else "N"
    if hint and tag not in ("!!str", "!!binary"):
        if text in _RESOLVE_MAP:
            return _RESOLVE_MAP[text]
        if hint == ".":
            value = _go_parse_float(text)
            if value is not None:
                return "!!float", value
        elif hint in "DS":
            if tag in ("", "!!timestamp") and _go_timestamp(text):
                return "!!timestamp", GoTimestamp(text)
            plain = text.replace("_", "")
            value = _go_parse_int(plain)
            if value is not None:
                return "!!int", value
            value = _go_parse_uint(plain)
            if value is not None:
                return "!!int", value
            if _YAML_STYLE_FLOAT.match(plain):
                value = _go_parse_float(plain)
                if value is not None:
                    return "!!float", value
    return "!!str", text


if HAS_YAML:
    _LOADER_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class _Loader(_LOADER_BASE):  # pylint: disable=too-many-ancestors
        """Composes nodes only (libyaml, the parser yaml.v3 is a port of); scalars without an explicit tag are
        left unresolved (yaml.v3 resolves them)."""

        def resolve(self, kind, value, implicit):
            if kind is yaml.ScalarNode:
                return _UNTAGGED
            return super().resolve(kind, value, implicit)

    class _PyLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
        """The pure-Python composer, used when libyaml's refuses a file: an anchor defined twice is accepted (the
        later definition wins, as in yaml.v3), and errors name what they are about."""

        def resolve(self, kind, value, implicit):
            if kind is yaml.ScalarNode:
                return _UNTAGGED
            return super().resolve(kind, value, implicit)

        def compose_node(self, parent, index):
            if not self.check_event(yaml.AliasEvent):
                anchor = self.peek_event().anchor
                if anchor is not None:
                    self.anchors.pop(anchor, None)
            return super().compose_node(parent, index)


def _compose(data, loader):
    """(first node or None, stream) of yaml.compose_all."""
    stream = yaml.compose_all(data, Loader=loader)
    return next(stream, None), stream


def _yaml_error(exc):
    """yaml.v3-style one-line message of a PyYAML error ("yaml: line N: problem")."""
    if isinstance(exc, UnicodeDecodeError):
        return "yaml: the file is not valid UTF-8 (%s)" % exc
    if isinstance(exc, RecursionError):
        return "yaml: exceeded max depth (the document is nested too deeply)"
    if isinstance(exc, yaml.MarkedYAMLError):
        text = exc.problem or exc.context or str(exc)
        match = re.match(r"found undefined alias '?([^']*)'?", text)
        if match:
            text = "unknown anchor '%s' referenced" % match.group(1)
        mark = exc.problem_mark or exc.context_mark
        where = ("line %d: " % (mark.line + 1)) if mark is not None else ""
        return "yaml: %s%s" % (where, one_line(text))
    if isinstance(exc, yaml.reader.ReaderError):
        what = ("#x%04x" % exc.character) if isinstance(exc.character, int) else repr(exc.character)
        return "yaml: unacceptable character %s at position %d: %s (the file must be UTF-8 YAML text)" % (
            what, exc.position, exc.reason)
    return "yaml: %s" % one_line(exc)


class _Decoder:
    """yaml.v3's decoder (decode.go of v3.0.1) for the types validate.go unmarshals into."""

    def __init__(self):
        self.terrors = []
        self.merged = None
        self.stack = {}
        self.expanding = set()
        self.visited = set()
        self.alias_depth = 0
        self.decode_count = 0
        self.alias_count = 0

    # node facts ---------------------------------------------------------------------------------
    @staticmethod
    def is_scalar(node):
        return isinstance(node, yaml.ScalarNode)

    @staticmethod
    def quoted(node):
        return node.style not in (None, "")

    def tag(self, node):
        """Node.Tag as yaml.v3's parser sets it."""
        if self.is_scalar(node):
            if node.tag != _UNTAGGED:
                return _short_tag(node.tag)
            if self.quoted(node):
                return "!!str"
            if node.value == "<<":
                return "!!merge"
            return go_resolve("", node.value)[0]
        default = "!!seq" if isinstance(node, yaml.SequenceNode) else "!!map"
        return _short_tag(node.tag) if node.tag else default

    def short_tag(self, node):
        tag = self.tag(node)
        return "!!str" if self.is_scalar(node) and tag == "!!str" else tag

    def is_merge(self, node):
        return self.is_scalar(node) and node.value == "<<" and self.tag(node) == "!!merge"

    @staticmethod
    def line(node):
        return node.start_mark.line + 1

    @staticmethod
    def key_value(node):
        return node.value if isinstance(node, yaml.ScalarNode) else ""

    def terror(self, node, typ):
        tag = self.tag(node)
        value = self.key_value(node)
        if tag not in ("!!seq", "!!map"):
            raw = value.encode("utf-8", "surrogateescape")
            value = " `%s...`" % raw[:7].decode("utf-8", "replace") if len(raw) > 10 else " `%s`" % value
        else:
            value = ""
        self.terrors.append("line %d: cannot unmarshal %s%s into %s" % (self.line(node), tag, value, _GO_TYPE[typ]))

    # decoding -------------------------------------------------------------------------------------
    def unmarshal(self, node, typ, out=None, edge=None):
        """Returns (good, value); `out` is the existing value of a struct or map target.

        `edge` (parent node, index) names the reference to `node`: a reference back to a node that is being
        decoded is an alias to an ancestor, and yaml.v3 fails only when that same alias is expanded again.
        """
        self.decode_count += 1
        if self.alias_depth > 0:
            self.alias_count += 1
        if self.alias_count > 100 and self.decode_count > 1000 and \
                float(self.alias_count) / self.decode_count > _allowed_alias_ratio(self.decode_count):
            raise _Fail("document contains excessive aliasing")
        key = id(node)
        back = self.stack.get(key, 0) > 0
        if back:
            if edge in self.expanding:
                raise _Fail("anchor value contains itself")
            self.expanding.add(edge)
        alias = key in self.visited and not self.is_scalar(node)
        self.visited.add(key)
        if alias:
            self.alias_depth += 1
        self.stack[key] = self.stack.get(key, 0) + 1
        try:
            if self.is_scalar(node):
                return self.scalar(node, typ, out)
            if isinstance(node, yaml.SequenceNode):
                return self.sequence(node, typ)
            return self.mapping(node, typ, out)
        finally:
            self.stack[key] -= 1
            if back:
                self.expanding.discard(edge)
            if alias:
                self.alias_depth -= 1

    def scalar_value(self, node):
        if self.short_tag(node) == "!!str":
            return "!!str", node.value
        tag, value = go_resolve(self.tag(node), node.value)
        if tag == "!!binary":
            try:
                data = base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
            except (ValueError, TypeError):
                raise _Fail("!!binary value contains invalid base64 data") from None
            value = data.decode("utf-8", "replace")
        return tag, value

    def scalar(self, node, typ, out):
        tag, value = self.scalar_value(node)
        if value is None:
            return (True, None) if typ in _NILABLE else (False, out)
        if typ == "string":
            return True, value if tag == "!!binary" else node.value
        if typ == "iface":
            return True, value
        self.terror(node, typ)
        return False, out

    def sequence(self, node, typ):
        elem = {"strings": "string", "reqs": "req", "iface": "iface"}.get(typ)
        if elem is None:
            self.terror(node, typ)
            return False, None
        out = []
        for index, child in enumerate(node.value):
            good, value = self.unmarshal(child, elem, edge=(id(node), index))
            if good:
                out.append(value)
        return True, out

    def mapping(self, node, typ, out):
        pairs = node.value
        dups = []
        for i, (ki, _vi) in enumerate(pairs):
            for kj, _vj in pairs[i + 1:]:
                if type(ki) is type(kj) and self.key_value(ki) == self.key_value(kj):
                    dups.append("line %d: mapping key %s already defined at line %d"
                                % (self.line(kj), go_quote(self.key_value(kj)), self.line(ki)))
        if dups:
            self.terrors.extend(dups)
            return False, out
        if typ in _STRUCT_FIELDS:
            return self.mapping_struct(node, typ, out)
        if typ == "iface":
            string_map = all(self.short_tag(k) in ("!!str", "!!merge") for k, _v in pairs)
            return self.mapping_map(node, "smap" if string_map else "gmap", None)
        if typ in _MAP_TYPES:
            return self.mapping_map(node, typ, out)
        self.terror(node, typ)
        return False, out

    def mapping_map(self, node, typ, out):
        key_typ, elem = _MAP_TYPES[typ]
        obj = {} if out is None else out
        new = out is None
        merged, self.merged = self.merged, None
        merge_node = None
        for index, (knode, vnode) in enumerate(node.value):
            if self.is_merge(knode):
                merge_node = vnode
                continue
            good, key = self.unmarshal(knode, key_typ, edge=(id(node), index, 0))
            if not good:
                continue
            if isinstance(key, (dict, list)):
                raise _Fail("invalid map key: %r" % (key,))
            if merged is not None:
                if key in merged:
                    continue
                merged.add(key)
            good, value = self.unmarshal(vnode, elem, edge=(id(node), index, 1))
            if good or (self.short_tag(vnode) == "!!null" and (new or key not in obj)):
                obj[key] = value
        self.merged = merged
        if merge_node is not None:
            self.merge(node, merge_node, typ, obj)
        return True, obj

    def mapping_struct(self, node, typ, out):
        fields = _STRUCT_FIELDS[typ]
        obj = {} if out is None else out
        merged, self.merged = self.merged, None
        merge_node = None
        for index, (knode, vnode) in enumerate(node.value):
            if self.is_merge(knode):
                merge_node = vnode
                continue
            good, name = self.unmarshal(knode, "string", edge=(id(node), index, 0))
            if not good:
                continue
            if merged is not None:
                if name in merged:
                    continue
                merged.add(name)
            if name in fields:  # unknown keys are not decoded at all (their content is never looked at)
                good, value = self.unmarshal(vnode, fields[name], obj.get(name), edge=(id(node), index, 1))
                if good:
                    obj[name] = value
        self.merged = merged
        if merge_node is not None:
            self.merge(node, merge_node, typ, obj)
        return True, obj

    def merge(self, parent, merge_node, typ, out):
        saved = self.merged
        if self.merged is None:
            self.merged = set()
            for knode, _vnode in parent.value:
                good, key = self.unmarshal(knode, "iface")
                if good and not isinstance(key, (dict, list)):
                    self.merged.add(key)
        items = merge_node.value if isinstance(merge_node, yaml.SequenceNode) else [merge_node]
        for index, item in enumerate(items):
            if not isinstance(item, yaml.MappingNode):
                raise _Fail("map merge requires map or sequence of maps as the value")
            self.unmarshal(item, typ, out, edge=(id(merge_node), "merge", index))
        self.merged = saved


def _allowed_alias_ratio(count):
    if count <= 400000:
        return 0.99
    if count >= 4000000:
        return 0.10
    return 0.99 - 0.89 * (float(count - 400000) / 3600000)


def load_product(data):
    """yaml.Unmarshal(data, &ConformanceDoc) of yaml.v3, as validate.go's loadYaml does.

    Returns (doc, notes): doc = {"metadata": None | dict, "spec": None | {category: None | [requirement]}},
    a requirement a dict of the fields present (strings; evidence a list of strings or None); notes are
    warnings about what yaml.v3 ignores (a second document).  Raises LoadError with one-line messages.
    """
    notes = []
    if not HAS_YAML:  # pragma: no cover
        raise LoadError(["PyYAML is required to read PRODUCT.yaml"])
    try:
        node, stream = _compose(data, _Loader)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        try:
            node, stream = _compose(data, _PyLoader)
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
            raise LoadError([_yaml_error(exc)]) from None
    try:
        if next(stream, None) is not None:
            notes.append("the file holds more than one YAML document; yaml.v3 (validate.go) reads only the first")
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        notes.append("the file holds more than one YAML document (the second does not parse); yaml.v3 "
                     "(validate.go) reads only the first")
    decoder = _Decoder()
    doc = {"metadata": None, "spec": None}
    if node is not None:
        try:
            _good, value = decoder.unmarshal(node, "doc", {})
        except _Fail as exc:
            raise LoadError(["yaml: %s" % one_line(exc)]) from None
        except RecursionError:
            raise LoadError(["yaml: exceeded max depth (the document is nested too deeply)"]) from None
        if isinstance(value, dict):
            doc.update(value)
    if decoder.terrors:
        raise LoadError(["yaml: unmarshal errors: %s" % one_line(e) for e in decoder.terrors])
    return doc, notes


# ------------------------------------------------------------------------------------- artifacts
class ArtifactError(Exception):
    """A test artifact that does not parse (parseJUnit / parseGoTestJSON / parseE2ELog errors)."""


class ArtifactReport:
    """artifactReport: outcome per test name, and the failures in the order recorded."""

    def __init__(self):
        self.tests = {}
        self.failures = []

    def record(self, name, outcome):
        if self.tests.get(name) == "fail":
            return
        self.tests[name] = outcome
        if outcome == "fail":
            self.failures.append(name)

    def outcome_for(self, name):
        """outcomeFor: exact name, else its subtests (any fail -> fail, all skip -> skip)."""
        if name in self.tests:
            return self.tests[name]
        subs = [o for n, o in self.tests.items() if n.startswith(name + "/")]
        if not subs:
            return "unknown"
        if "fail" in subs:
            return "fail"
        if all(o == "skip" for o in subs):
            return "skip"
        return "pass"


def classify_artifact(path):
    return CANONICAL_ARTIFACTS.get(go_base(path).lower())


def _lines(data, what):
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for line in lines:
        if len(line) > SCANNER_MAX:
            raise ArtifactError("reading %s: bufio.Scanner: token too long" % what)
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def parse_junit(data):
    """parseJUnit: testsuites/testsuite nesting, testcases with failure/error/skipped children."""
    from xml.parsers import expat

    head = data[:200]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ArtifactError("parsing JUnit XML: XML syntax error on line 1: invalid UTF-8")
    match = re.match(br"^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']", head)
    if match and match.group(1).decode("ascii", "replace").lower() != "utf-8":
        raise ArtifactError("parsing JUnit XML: xml: encoding %s declared but Decoder.CharsetReader is nil"
                            % go_quote(match.group(1).decode("ascii", "replace")))
    report = ArtifactReport()
    # stack of element roles: "suite" (junitNode), "case" (junitTestcase), None (skipped subtree)
    state = {"stack": [], "root_done": False, "case": None, "started": False}

    def local(name):
        return name.rsplit(":", 1)[-1]

    def start(name, attrs):
        stack = state["stack"]
        state["started"] = True
        name = local(name)
        if not stack:
            role = None if state["root_done"] else "suite"
        else:
            parent = stack[-1]
            if parent == "suite" and name == "testsuite":
                role = "suite"
            elif parent == "suite" and name == "testcase":
                role = "case"
                state["case"] = {"name": next((v for k, v in attrs.items() if local(k) == "name"), ""),
                                 "fail": False, "skip": False}
            elif parent == "case" and name in ("failure", "error"):
                state["case"]["fail"] = True
                role = None
            elif parent == "case" and name == "skipped":
                state["case"]["skip"] = True
                role = None
            else:
                role = None
        stack.append(role)

    def end(_name):
        role = state["stack"].pop()
        if role == "case":
            case = state["case"]
            report.record(case["name"], "fail" if case["fail"] else "skip" if case["skip"] else "pass")
        if not state["stack"]:
            state["root_done"] = True

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        if not state["started"] and exc.code == expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]:
            raise ArtifactError("parsing JUnit XML: EOF") from None
        if not state["root_done"]:
            raise ArtifactError("parsing JUnit XML: XML syntax error on line %d: %s"
                                % (exc.lineno, expat.ErrorString(exc.code))) from None
    if not state["root_done"] and not state["stack"]:
        raise ArtifactError("parsing JUnit XML: EOF")
    if not report.tests:
        raise ArtifactError("parsing JUnit XML: no <testcase> elements found")
    return report


def _no_constant(name):
    raise ValueError("invalid character '%s' looking for beginning of value" % name[:1])


def parse_go_test_json(data):
    """parseGoTestJSON: one go test -json event per line; pass/fail/skip of tests, package failures."""
    report = ArtifactReport()
    package_failures = []
    for number, raw in enumerate(_lines(data, "go test JSON"), 1):
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            continue
        try:
            event = json.loads(line, parse_constant=_no_constant)
        except ValueError as exc:
            raise ArtifactError("parsing go test JSON at line %d: %s" % (number, one_line(exc))) from None
        if event is None:
            continue
        if not isinstance(event, dict):
            kind = {list: "array", str: "string", bool: "bool"}.get(type(event), "number")
            raise ArtifactError("parsing go test JSON at line %d: json: cannot unmarshal %s into Go value of type "
                                "main.goTestEvent" % (number, kind))
        fields = {"action": "", "package": "", "test": ""}
        for key, value in event.items():
            field = key.lower()
            if field not in fields or value is None:
                continue
            if not isinstance(value, str):
                kind = {list: "array", dict: "object", bool: "bool"}.get(type(value), "number")
                raise ArtifactError("parsing go test JSON at line %d: json: cannot unmarshal %s into Go struct field "
                                    "goTestEvent.%s of type string" % (number, kind, field.capitalize()))
            fields[field] = value
        outcome = {"pass": "pass", "fail": "fail", "skip": "skip"}.get(fields["action"])
        if outcome is None:
            continue
        if fields["test"] == "":
            if outcome == "fail":
                package_failures.append(fields["package"])
            continue
        report.record(fields["test"], outcome)
    if not report.failures:
        report.failures.extend("package " + p for p in package_failures)
    if not report.tests and not report.failures:
        raise ArtifactError("parsing go test JSON: no test events found")
    return report


def parse_e2e_log(data):
    """parseE2ELog: `go test -v` result lines (--- PASS/FAIL/SKIP: Name)."""
    report = ArtifactReport()
    for raw in _lines(data, "e2e log"):
        match = E2E_RESULT_RE.match(raw.decode("utf-8", "replace"))
        if match:
            report.record(match.group(2), {"PASS": "pass", "FAIL": "fail", "SKIP": "skip"}[match.group(1)])
    if not report.tests:
        raise ArtifactError("parsing e2e log: no '--- PASS/FAIL/SKIP:' result lines found")
    return report


def parse_artifact(path, kind):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (OSError, ValueError) as exc:
        raise ArtifactError("open %s: %s" % (path, getattr(exc, "strerror", None) or exc)) from None
    return {"junit": parse_junit, "gotestjson": parse_go_test_json, "e2elog": parse_e2e_log}[kind](data)


def resolve_evidence_path(product_dir, link, own_dir=None):
    """resolveEvidencePath: (path on disk, fragment) of a local evidence link; ValueError with validate.go's text.

    `own_dir` (default `product_dir`) names the product's own vX.Y/<product>/ prefix.
    """
    raw = link.strip()
    if raw.startswith("file://"):
        raw = raw[len("file://"):]
    fragment = ""
    if "#" in raw:
        raw, fragment = raw.split("#", 1)
    raw = raw.strip()
    if raw.startswith("/"):
        raw = raw[1:]
    if raw == "":
        raise ValueError("empty file path")
    clean_dir = go_clean(product_dir)
    own = go_clean(own_dir) if own_dir else clean_dir
    own_prefix = go_clean(go_base(go_dir(own)) + "/" + go_base(own)) + "/"
    if raw.startswith(own_prefix):
        raw = raw[len(own_prefix):]
    elif PRODUCT_DIR_PREFIX_RE.match(raw):
        raise ValueError("path %s references a different product directory; evidence must live in %s"
                         % (go_quote(link), product_dir))
    full = go_clean(clean_dir + "/" + raw)
    try:
        rel = go_rel(clean_dir, full)
    except ValueError:
        rel = ".."
    if rel in (".", "..") or rel.startswith("../"):
        raise ValueError("path %s escapes the product directory %s" % (go_quote(link), product_dir))
    return full, fragment


# --------------------------------------------------------------------------------------- network
def check_url(url, timeout=30):
    """validateURL: HEAD, then GET; None when reachable (status < 400), else the reason."""
    from urllib.error import HTTPError
    try:
        from ansible.module_utils.urls import open_url
    except ImportError:  # pragma: no cover
        return "ansible.module_utils.urls unavailable"
    headers = {"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
               "Accept-Language": "en-US,en;q=0.5"}
    for method in ("HEAD", "GET"):
        try:
            with open_url(url, headers=headers, method=method, timeout=timeout, use_netrc=False) as resp:
                status = resp.status
        except HTTPError as exc:
            status = exc.code
        except Exception as exc:  # pylint: disable=broad-except  # any failure to connect is the answer
            if method == "GET":
                return one_line(exc)
            continue
        if status < 400:
            return None
        if method == "GET":
            return "status code %d" % status
    return "unreachable"  # pragma: no cover


def fetch_cncf_members(timeout=60):
    """fetchCNCFMembers: names of the CNCF members in the landscape; raises ValueError with the reason."""
    try:
        from ansible.module_utils.urls import open_url
    except ImportError:  # pragma: no cover
        raise ValueError("failed to fetch CNCF landscape: ansible.module_utils.urls unavailable") from None
    try:
        with open_url(LANDSCAPE_URL, headers={"User-Agent": USER_AGENT}, timeout=timeout, use_netrc=False) as resp:
            if resp.status != 200:
                raise ValueError("failed to fetch CNCF landscape: HTTP %d" % resp.status)
            body = resp.read()
    except ValueError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        raise ValueError("failed to fetch CNCF landscape: %s" % one_line(exc)) from None
    try:
        data = yaml.load(body, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # nosec B506 - safe loader
    except yaml.YAMLError as exc:
        raise ValueError("failed to parse CNCF landscape YAML: %s" % one_line(exc)) from None
    for category in (data or {}).get("landscape") or []:
        if isinstance(category, dict) and category.get("name") == "CNCF Members":
            members = set()
            for sub in category.get("subcategories") or []:
                for item in (sub or {}).get("items") or []:
                    name = str((item or {}).get("name") or "")
                    for suffix in MEMBER_SUFFIXES:
                        if name.endswith(suffix):
                            name = name[:-len(suffix)]
                    name = name.strip()
                    if name:
                        members.add(name)
            return members
    raise ValueError("could not find 'CNCF Members' category in landscape data")


# ------------------------------------------------------------------------------------ validation
class Findings:
    def __init__(self, path, version, na_rule, online):
        self.path = path
        self.version = version
        self.na_rule = na_rule
        self.online = online
        self.errors = []
        self.warnings = []
        self.info = []
        self.not_checked = []

    def as_dict(self):
        return {
            "path": self.path,
            "version": self.version,
            "valid": not self.errors,
            "errors": [one_line(e) for e in self.errors],
            "warnings": [one_line(w) for w in self.warnings],
            "info": [one_line(i) for i in self.info],
            "not_checked": [one_line(n) for n in self.not_checked],
            "na_rule": self.na_rule,
            "online": self.online,
            "rule": "%s; %s%s" % (UPSTREAM, NA_RULES[self.na_rule],
                                  "; network rules checked" if self.online else "; network rules not checked offline"),
        }


def version_from_path(path):
    """The checklist version of a submission: the vX.Y directory that holds the product folder."""
    product_dir = os.path.dirname(os.path.abspath(path))
    match = VERSION_DIR_RE.match(os.path.basename(os.path.dirname(product_dir)))
    return match.group(1) if match else None


def _metadata_rules(metadata, findings, version, online_checks):
    """validateProduct: metadata fields, then CNCF membership."""
    if metadata is None:
        findings.errors.append("Missing 'metadata' section")
        return
    for field, required in catalog.METADATA_FIELDS:
        snake = snake_case(field)
        if field in metadata:
            present, value = True, metadata[field]
        elif snake in metadata:
            present, value = True, metadata[snake]
        else:
            present, value = False, None
        if not present or value is None:
            if required:
                findings.errors.append("Missing metadata field: %s (or %s)" % (field, snake))
            continue
        if not isinstance(value, str):
            findings.errors.append("Metadata field %s is not a string" % field)
            continue
        if value == "":
            if required:
                findings.errors.append("Metadata field %s is empty" % field)
        elif is_placeholder(value):
            findings.errors.append("Metadata field %s has placeholder value: %s" % (field, value))
        elif field == "k8sConformanceUrl":
            if not K8S_CONFORMANCE_URL_RE.match(value):
                findings.errors.append("Invalid k8sConformanceUrl format: %s. Expected format: "
                                       "https://github.com/cncf/k8s-conformance/tree/master/v{version}/{product}"
                                       % value)
            else:
                online_checks.append(("k8sConformanceUrl is not accessible: %s" % value, value,
                                      "k8sConformanceUrl %s is accessible" % value))
        elif value.startswith("http"):
            online_checks.append(("Invalid URL in metadata %s: %s" % (field, value), value,
                                  "metadata %s %s is reachable" % (field, value)))
            if field == "productLogoUrl" and not value.lower().split("?")[0].endswith(LOGO_SUFFIXES):
                findings.warnings.append("productLogoUrl is not an SVG, EPS or AI file (the submission checklist "
                                         "asks for one; validate.go does not check it): %s" % value)
    kver = metadata.get("kubernetesVersion", metadata.get("kubernetes_version"))
    if isinstance(kver, str) and kver and not is_placeholder(kver):
        try:
            if catalog.parse_minor(kver, "metadata.kubernetesVersion") != version:
                findings.warnings.append("metadata.kubernetesVersion %s differs from the checklist version v%s of "
                                         "the path" % (kver, version))
        except catalog.CatalogError as exc:
            findings.warnings.append(str(exc))


def _vendor_name(metadata):
    if metadata is None:
        return ""
    if "vendorName" in metadata:
        value = metadata["vendorName"]
    elif "vendor_name" in metadata:
        value = metadata["vendor_name"]
    else:
        value = ""
    return value.strip() if isinstance(value, str) else ""


def _status_rules(rid, level, status, notes, findings):
    """Status checks of validateProduct (na_rule upstream) or checkRequirementStatus of PR #146 (pending)."""
    if status not in VALID_STATUSES:
        findings.errors.append("Invalid status '%s' for '%s'. Must be one of [%s]" % (status, rid,
                                                                                      " ".join(VALID_STATUSES)))
    pending = findings.na_rule == "pending"
    if level == catalog.MUST and status != "Implemented":
        if pending and status == "N/A" and rid in CONDITIONAL_MUST:
            findings.warnings.append("Requirement '%s' is MUST level and marked N/A; review the justification in "
                                     "notes" % rid)
        elif pending and rid in CONDITIONAL_MUST:
            findings.errors.append("Requirement '%s' is MUST level but status is '%s'. It must be 'Implemented', or "
                                   "'N/A' with a justification in notes." % (rid, status))
        else:
            findings.errors.append("Requirement '%s' is MUST level but status is '%s'. It must be 'Implemented'."
                                   % (rid, status))
            if status == "N/A" and rid in CONDITIONAL_MUST:
                findings.info.append("'%s' N/A: rejected under na_rule=upstream (validate.go today); the pending "
                                     "upstream rule (na_rule=pending, PR #146) accepts it with notes" % rid)
    if status == "N/A":
        if (notes.strip() if pending else notes) == "":
            findings.errors.append("Notes required for '%s' when status is N/A" % rid)
        elif not notes.strip():
            findings.warnings.append("the notes of N/A requirement '%s' are only whitespace (accepted by validate.go "
                                     "today; the pending upstream rule rejects them)" % rid)


def _artifact_rules(ref_path, fragment, kind, link, rid, status, reports, findings):
    """checkArtifactEvidence."""
    name = link.split("#", 1)[0]
    if ref_path not in reports:
        try:
            report = parse_artifact(ref_path, kind)
        except ArtifactError as exc:
            findings.errors.append("Invalid test artifact for '%s': %s (%s)" % (rid, name, exc))
            reports[ref_path] = None
            return
        reports[ref_path] = report
        if report.failures:
            findings.errors.append("Test artifact %s contains failing tests: %s"
                                   % (name, ", ".join(sorted(report.failures))))
    report = reports[ref_path]
    if report is None:
        return
    test = fragment or catalog.UPSTREAM_TESTS.get(rid, "")
    if not test:
        return
    outcome = report.outcome_for(test)
    if outcome == "unknown":
        findings.errors.append("Test '%s' referenced by '%s' was not found in %s" % (test, rid, name))
    elif outcome == "fail":
        findings.errors.append("Test '%s' referenced by '%s' failed in %s" % (test, rid, name))
    elif outcome == "skip" and status == "Implemented":
        findings.errors.append("Requirement '%s' is Implemented but test '%s' was skipped in %s" % (rid, test, name))


def _spec_rules(spec, findings, version, path, online_checks):
    """validateProduct: categories, requirements, statuses, evidence."""
    if spec is None:
        findings.errors.append("Missing 'spec' section")
        return
    product_dir = go_dir(path.replace(os.sep, "/"))
    own_dir = os.path.dirname(os.path.abspath(path)).replace(os.sep, "/")
    hybrid = int(version.split(".")[0]) > 1 or int(version.split(".")[1]) >= HYBRID_MIN_MINOR
    levels = {item["id"]: item["level"] for item in catalog.checklist(version)}
    sections = catalog.sections(version)
    known = {section for section, _ids in sections}
    for category in spec:
        if category not in known:
            findings.warnings.append("spec category '%s' is not in checklist v%s (validate.go ignores it)"
                                     % (category, version))
    reports = {}
    for section, ids in sections:
        if section not in spec:
            findings.errors.append("Missing spec category: %s" % section)
            continue
        by_id = {}
        for req in spec[section] or []:
            rid = req.get("id", "")
            if rid in by_id:
                findings.warnings.append("requirement '%s' appears more than once in '%s'; validate.go uses the last"
                                         % (rid, section))
            by_id[rid] = req
            if rid == "":
                findings.warnings.append("an entry of spec category '%s' has no id (validate.go ignores it)" % section)
            elif rid not in ids:
                findings.warnings.append("requirement '%s' in '%s' is not in checklist v%s (validate.go ignores it)"
                                         % (rid, section, version))
        for rid in ids:
            req = by_id.get(rid)
            if req is None:
                findings.errors.append("Missing requirement '%s' in category '%s'" % (rid, section))
                continue
            level = levels[rid]
            status = req.get("status", "")
            evidence = req.get("evidence") or []
            notes = req.get("notes", "")
            if level == catalog.SHOULD and status == "" and not evidence:
                findings.info.append("SHOULD requirement '%s' left unanswered (accepted)" % rid)
                continue
            _status_rules(rid, level, status, notes, findings)
            has_artifact = False
            for link in evidence:
                if link == "":
                    continue
                if link.startswith(("http://", "https://")):
                    online_checks.append(("Invalid evidence URL for '%s': %s" % (rid, link), link,
                                          "evidence URL of '%s' %s is reachable" % (rid, link)))
                    continue
                try:
                    full, fragment = resolve_evidence_path(product_dir, link, own_dir)
                except ValueError as exc:
                    findings.errors.append("Invalid evidence file for '%s': %s (%s)" % (rid, link, exc))
                    continue
                try:
                    os.stat(full)
                except FileNotFoundError:
                    findings.errors.append("Invalid evidence file for '%s': %s (not found at %s)" % (rid, link, full))
                    continue
                except (OSError, ValueError):
                    pass  # validate.go reports only "does not exist" (os.IsNotExist)
                kind = classify_artifact(full)
                if kind is None:
                    continue
                has_artifact = True
                _artifact_rules(full, fragment, kind, link, rid, status, reports, findings)
            test = catalog.UPSTREAM_TESTS.get(rid)
            if test and hybrid and status == "Implemented" and not has_artifact:
                findings.warnings.append("Requirement '%s' is covered by automated test '%s'; including test artifacts "
                                         "(e2e.log, junit.xml, or results.json) as evidence is recommended for v%s+ "
                                         "submissions" % (rid, test, version))


def _network_rules(findings, online_checks, vendor, members=None, url_checker=None):
    if not findings.online:
        for _message, _url, what in online_checks:
            findings.not_checked.append(what)
        if vendor:
            findings.not_checked.append("vendorName '%s' is a CNCF member in the CNCF Landscape" % vendor)
        findings.info.extend("not checked offline (online=true checks it): %s" % what for what in findings.not_checked)
        return
    checker = url_checker or check_url
    urls = sorted({url for _m, url, _w in online_checks})
    if urls:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=min(8, len(urls))) as pool:
            answers = dict(zip(urls, pool.map(checker, urls)))
        for message, url, _what in online_checks:
            if answers.get(url):
                findings.errors.append("%s (%s)" % (message, answers[url]))
    if vendor:
        if isinstance(members, Exception):
            findings.errors.append(str(members))
        elif vendor not in members:
            findings.errors.append("vendorName '%s' does not match any CNCF member in the CNCF Landscape. The "
                                   "vendorName must exactly match the organization name listed at "
                                   "https://landscape.cncf.io/members" % vendor)


def validate_file(path, version=None, na_rule="upstream", online=False, members=None, url_checker=None):
    """Validate a PRODUCT.yaml as validate.go does.  Never raises; returns a dict:

    path, version, valid, errors, warnings, info, not_checked, na_rule, online, rule (the rules applied).
    With `online`, URLs are checked and `members` (a set, or None to fetch the landscape) decides vendorName.
    """
    na_rule = na_rule or "upstream"
    findings = Findings(path, None, na_rule if na_rule in NA_RULES else "upstream", bool(online))
    if na_rule not in NA_RULES:
        findings.errors.append("na_rule=%r is not one of %s" % (na_rule, ", ".join(sorted(NA_RULES))))
        return findings.as_dict()
    try:
        _validate(findings, path, version, members, url_checker)
    except Exception as exc:  # pylint: disable=broad-except  # one line, never a traceback
        findings.errors.append("internal error validating %s: %s: %s" % (path, exc.__class__.__name__, exc))
    return findings.as_dict()


def _validate(findings, path, version, members, url_checker):
    path = str(path)
    path_version = version_from_path(path)
    if version:
        try:
            version = catalog.parse_minor(version, "version")
        except catalog.CatalogError as exc:
            findings.errors.append(str(exc))
            return
        if path_version is None:
            findings.warnings.append("the path %s is not <dir>/v<major.minor>/<product>/PRODUCT.yaml; validate.go "
                                     "needs that layout to find the checklist (version %s given explicitly)"
                                     % (path, version))
        elif path_version != version:
            findings.warnings.append("the path says v%s but version %s was given" % (path_version, version))
    elif path_version is None:
        findings.errors.append("Could not determine version from path %s (expected .../v<major.minor>/<product>/"
                               "PRODUCT.yaml)" % path)
        return
    else:
        version = path_version
    findings.version = version
    if version not in catalog.OFFICIAL:
        findings.errors.append("Schema not found for v%s: no checklist for version %s; supported checklist versions: %s"
                               % (version, version, ", ".join(catalog.supported_versions())))
        return
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        findings.errors.append("Error loading product: open %s: %s" % (path, (exc.strerror or str(exc)).lower()))
        return
    try:
        doc, notes = load_product(data)
    except LoadError as exc:
        findings.errors.extend("Error loading product: %s" % m for m in exc.messages)
        return
    findings.warnings.extend(notes)
    online_checks = []
    _metadata_rules(doc["metadata"], findings, version, online_checks)
    _spec_rules(doc["spec"], findings, version, path, online_checks)
    vendor = _vendor_name(doc["metadata"])
    if findings.online and vendor and members is None:
        try:
            members = fetch_cncf_members()
        except ValueError as exc:
            members = exc
    _network_rules(findings, online_checks, vendor, members, url_checker)


def result_lines(result, strict=False):
    """One line per problem (and a first line with the verdict), for people and for logs."""
    valid = result["valid"] and not (strict and result["warnings"])
    head = "%s: %s (checklist v%s; rules of validate.go, na_rule=%s, %s)" % (
        result["path"], "valid" if valid else "INVALID", result.get("version") or "?", result.get("na_rule"),
        "online" if result.get("online") else "network rules not checked offline")
    lines = [head]
    lines += ["%s: error: %s" % (result["path"], e) for e in result["errors"]]
    lines += ["%s: warning: %s" % (result["path"], w) for w in result["warnings"]]
    lines += ["%s: info: %s" % (result["path"], i) for i in result["info"]]
    return lines


def format_result(result, strict=False):
    return "\n".join(result_lines(result, strict))


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Validate PRODUCT.yaml files with the rules (and the verdict) of "
                                                 "cncf/k8s-ai-conformance scripts/validate.go.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="PRODUCT.yaml file(s)")
    parser.add_argument("--version", help="checklist version (default: the vX.Y directory above the product folder)")
    parser.add_argument("--na-rule", default="upstream", choices=sorted(NA_RULES),
                        help="N/A on a MUST: upstream = validate.go today (rejected); pending = PR #146 "
                             "(cluster_autoscaling may be N/A with notes)")
    parser.add_argument("--online", action="store_true",
                        help="also check the network rules (URLs reachable, vendorName a CNCF member)")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    args = parser.parse_args(argv)
    failed = False
    members = None
    if args.online:  # fetchCNCFMembers once for all files, as validate.go's main does
        try:
            members = fetch_cncf_members()
        except ValueError as exc:
            members = exc
    for path in args.paths:
        result = validate_file(path, args.version, args.na_rule, args.online, members)
        for line in result_lines(result, args.strict):
            print(line)  # pylint: disable=ansible-bad-function  # command line, not a module
        if result["errors"] or (args.strict and result["warnings"]):
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
