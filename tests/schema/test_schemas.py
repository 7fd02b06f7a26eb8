#!/usr/bin/python3
"""Checks proto/schemas and proto/openapi.yaml against each other and against
the documents of the contract (examples/*.json, named SCHEMA[.VARIANT].json).

Run: /usr/bin/python3 tests/schema/test_schemas.py  (ctest: schema.unit)
"""

import copy
import json
import re
import subprocess
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # ctest runs this in the source tree: leave no __pycache__

import jsonschema  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402

import validate as v  # noqa: E402

try:
    import yaml  # Debian: python3-yaml
except ImportError:  # the $ref check falls back to a regex
    yaml = None

PROTO = HERE.parent.parent / "proto"
OPENAPI = PROTO / "openapi.yaml"
EXAMPLES = HERE / "examples"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# Documents on the socket; common.schema.json only holds shared $defs.
DOCUMENT_SCHEMAS = [
    "token", "status", "health", "error", "invalidate-request", "revoke-response", "refresh-response",
    "reload-response", "session-create-request", "session-created", "session-ended",
    "credentials", "oauth-token-request", "oauth-token", "oauth-error",
    "verify-request", "verify-result", "clients",
]

# (method, path) of every endpoint in the contract, and who may call it.
ENDPOINTS = {
    ("get", "/v1/tokens/{name}"): "allow",
    ("post", "/v1/tokens/{name}/invalidate"): "allow",
    ("post", "/v1/tokens/{name}/revoke"): "admin",
    ("post", "/v1/tokens/{name}/refresh"): "admin",
    ("get", "/v1/status"): "any",
    ("get", "/v1/health"): "any",
    ("get", "/metrics"): "any",
    ("post", "/v1/reload"): "admin",
    ("post", "/v1/verify"): "verify_allow",
    ("post", "/v1/customers/{name}/sessions"): "allow",
    ("get", "/v1/customers/{name}/sessions/{session}"): "session-owner",
    ("delete", "/v1/customers/{name}/sessions/{session}"): "session-owner",
    ("get", "/v1/credentials"): "allow",
    ("post", "/oauth/token"): "allow",
    ("get", "/v1/clients"): "admin",
}

# Response codes the contract names per endpoint; the spec may list more.
CONTRACT_CODES = {
    ("get", "/v1/tokens/{name}"): {"200", "403", "404", "503"},
    ("post", "/v1/tokens/{name}/invalidate"): {"200"},
    ("post", "/v1/tokens/{name}/revoke"): {"200"},
    ("post", "/v1/tokens/{name}/refresh"): {"200", "403", "404", "503"},
    ("get", "/v1/status"): {"200"},
    ("get", "/v1/health"): {"200", "503"},
    ("get", "/metrics"): {"200"},
    ("post", "/v1/reload"): {"200", "400"},
    ("post", "/v1/verify"): {"200", "400"},
    ("post", "/v1/customers/{name}/sessions"): {"201", "401", "429"},
    ("get", "/v1/customers/{name}/sessions/{session}"): {"200", "404", "410"},
    ("delete", "/v1/customers/{name}/sessions/{session}"): {"200"},
    ("get", "/v1/credentials"): {"200"},
    ("post", "/oauth/token"): {"200", "400", "401", "403", "503"},
    ("get", "/v1/clients"): {"200", "403"},
}


def example(name):
    with (EXAMPLES / name).open(encoding="utf-8") as f:
        return json.load(f)


def walk(node, path=""):
    """Yield (json-pointer, mapping) for every mapping in a JSON/YAML tree."""
    if isinstance(node, dict):
        yield path, node
        for key, child in node.items():
            yield from walk(child, f"{path}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from walk(child, f"{path}/{i}")


def pointer(document, ptr):
    """Resolve a JSON pointer ("/a/b", "" for the root); KeyError if absent."""
    node = document
    if ptr in ("", "/"):
        return node
    for raw in ptr.lstrip("/").split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        else:
            node = node[token]
    return node


class SchemaFiles(unittest.TestCase):
    def test_every_document_schema_exists(self):
        self.assertEqual(sorted(DOCUMENT_SCHEMAS + ["common"]), v.schema_names())

    def test_each_schema_is_valid_draft_2020_12(self):
        for name in v.schema_names():
            with self.subTest(schema=name):
                schema = v.load_schema(name)
                self.assertEqual(schema.get("$schema"), DRAFT_2020_12)
                Draft202012Validator.check_schema(schema)
        v.check_schemas()

    def test_every_property_is_described(self):
        for name in v.schema_names():
            for where, node in walk(v.load_schema(name)):
                if where.endswith("/properties") or re.search(r"/(if|then|else)(/|$)", where):
                    continue  # a map of names, or a condition that narrows described properties
                for prop, sub in node.get("properties", {}).items():
                    with self.subTest(schema=name, property=f"{where}/properties/{prop}"):
                        self.assertTrue(sub.get("description"), "no description")

    def test_fixed_shapes_are_closed(self):
        # Every object whose properties the contract fixes refuses unknown fields.
        # Plain additionalProperties, not unevaluatedProperties through $ref, so
        # OpenAPI linters and code generators read the shapes as they are meant.
        for name in v.schema_names():
            for where, node in walk(v.load_schema(name)):
                if "properties" not in node or where.endswith("/properties"):
                    continue
                if re.search(r"/(if|then|else)(/|$)", where):
                    continue  # conditions narrow properties declared beside them
                if where.startswith("/$defs/customerCounts"):
                    continue  # open to further counters, each an integer >= 0
                with self.subTest(schema=name, at=where or "/"):
                    self.assertIs(node.get("additionalProperties"), False)

    def test_embedded_examples_validate(self):
        for name in v.schema_names():
            for i, doc in enumerate(v.load_schema(name).get("examples", [])):
                with self.subTest(schema=name, example=i):
                    v.validate(doc, name)


class ContractExamples(unittest.TestCase):
    def test_examples_validate(self):
        files = sorted(EXAMPLES.glob("*.json"))
        self.assertTrue(files)
        for path in files:
            with self.subTest(example=path.name):
                v.validate(example(path.name), path.name.split(".")[0])

    def test_every_document_has_an_example(self):
        have = {p.name.split(".")[0] for p in EXAMPLES.glob("*.json")}
        self.assertEqual(set(DOCUMENT_SCHEMAS) - have, set())

    def test_every_request_form_has_an_example(self):
        alternatives = [a["$ref"] for a in v.load_schema("session-create-request")["oneOf"]]
        self.assertEqual(len(alternatives), 4)
        forms = set()
        for path in EXAMPLES.glob("session-create-request.*.json"):
            doc = example(path.name)
            matched = [a for a in alternatives if not v.errors(doc, "session-create-request" + a)]
            self.assertEqual(len(matched), 1, path.name)
            forms.update(matched)
        self.assertEqual(forms, set(alternatives))

    def test_contract_token_document_verbatim(self):
        v.validate(json.loads(
            '{"credential":"backoffice","kind":"integration","access_token":"eyJ...","token_type":"bearer",'
            '"scope":"market:all","expires_at":"2026-11-25T21:03:04Z","expires_in":5423}'), "token")
        v.validate({"live": True, "ready": True}, "health")
        v.validate({"revoked": True}, "revoke-response")
        v.validate({"reloaded": True}, "reload-response")
        v.validate({"ended": True}, "session-ended")


def mutate(doc, path, value=None, delete=False):
    """A deep copy of DOC with the value at PATH (a list of keys) replaced or deleted."""
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


class Rejected(unittest.TestCase):
    def assertRejected(self, doc, schema, why):
        with self.subTest(schema=schema, why=why):
            with self.assertRaises(v.DocumentInvalid) as caught:
                v.validate(doc, schema)
            self.assertIn(f"{schema}.schema.json", str(caught.exception))

    def test_token(self):
        good = example("token.backoffice.json")
        for field in good:
            self.assertRejected(mutate(good, [field], delete=True), "token", f"missing {field}")
        cases = {
            "wrong kind": (["kind"], "webapp"),
            "token_type not lowercase": (["token_type"], "Bearer"),
            "empty access_token": (["access_token"], ""),
            "negative expires_in": (["expires_in"], -1),
            "fractional expires_in": (["expires_in"], 1.5),
            "expires_in as string": (["expires_in"], "5423"),
            "expires_at not UTC": (["expires_at"], "2026-11-25T22:03:04+01:00"),
            "expires_at not a date": (["expires_at"], "2026-02-30T00:00:00Z"),
            "expires_at epoch": (["expires_at"], 1795640584),
            "scope a number": (["scope"], 5),
            "name with a space": (["credential"], "back office"),
            "name with a slash": (["credential"], "../status"),
            "name ..": (["credential"], ".."),
            "name .": (["credential"], "."),
            "name too long": (["credential"], "a" * 65),
            "name not ASCII": (["credential"], "böse"),
            "extra refresh_token": (["refresh_token"], "r"),
            "extra field": (["created_at"], 1732560000),
        }
        for why, (path, value) in cases.items():
            self.assertRejected(mutate(good, path, value), "token", why)
        self.assertRejected([good], "token", "not an object")

    def test_status(self):
        good = example("status.json")
        entry = ["credentials", 0]
        cases = {
            "unknown state": (entry + ["state"], "bogus"),
            "token in status": (entry + ["access_token"], "eyJ..."),
            "secret in status": (entry + ["client_secret"], "s"),
            "client_id in status": (entry + ["client_id"], "abc"),
            "token at top level": (["token"], "eyJ..."),
            "negative counter": (entry + ["served"], -1),
            "counter as float": (entry + ["upstream_requests"], 2.0 + 0.5),
            "last_error not a string": (entry + ["last_error"], {"code": "x"}),
            "expires_in fractional": (entry + ["expires_in"], 5.5),
            "next_refresh_in negative": (entry + ["next_refresh_in"], -1),
            "started_at not RFC 3339": (["started_at"], "2026-11-25 18:00:00"),
            "uptime as string": (["uptime_s"], "10984"),
            "extra upstream field": (["upstream", "client_secret"], "s"),
            "zero budget": (["upstream", "budget_per_minute"], 0),
            "auth_url not a URL": (["upstream", "auth_url"], "auth.commercelayer.io"),
            "customers with a session id": (["customers"], {"sessions": 1, "ids": ["abc"]}),
            "customers without sessions": (["customers"], {"active": 1}),
            "credentials not a list": (["credentials"], {"backoffice": {}}),
        }
        for why, (path, value) in cases.items():
            self.assertRejected(mutate(good, path, value), "status", why)
        for field in ("version", "started_at", "uptime_s", "upstream", "credentials"):
            self.assertRejected(mutate(good, [field], delete=True), "status", f"missing {field}")
        for field in list(good["credentials"][0]):
            # Nullable fields are still required: null says "none", absence says nothing.
            self.assertRejected(mutate(good, entry + [field], delete=True), "status", f"missing {field}")
        # A peer that is not admin gets states only: the details are absent all together.
        states_only = good
        details = ("next_refresh_in", "last_refresh_at", "last_error", "served", "upstream_requests", "upstream_failures")
        for field in details:
            states_only = mutate(states_only, entry + [field], delete=True)
        v.validate(states_only, "status")

    def test_status_nullable_fields(self):
        good = example("status.json")
        for field in ("expires_at", "expires_in", "next_refresh_in", "last_refresh_at", "last_error"):
            v.validate(mutate(good, ["credentials", 0, field], None), "status")
        v.validate(mutate(good, ["upstream", "rate_limited_until"], None), "status")
        # An expired token's expires_in counts back from expiry; the token document's never does.
        v.validate(mutate(mutate(good, ["credentials", 0, "state"], "expired"), ["credentials", 0, "expires_in"], -40),
                   "status")
        v.validate(mutate(example("token.backoffice.json"), ["credential"], "eu.shop_2-b"), "token")
        for field in ("name", "kind", "state", "served"):
            self.assertRejected(mutate(good, ["credentials", 0, field], None), "status", f"null {field}")

    def test_health(self):
        self.assertRejected({"live": True}, "health", "missing ready")
        self.assertRejected({"ready": True}, "health", "missing live")
        self.assertRejected({"live": "yes", "ready": True}, "health", "live not a bool")
        self.assertRejected({"live": True, "ready": False, "credentials_not_ready": ["a", "a"]},
                            "health", "duplicate names")
        self.assertRejected({"live": True, "ready": False, "credentials": []}, "health", "extra field")
        v.validate({"live": True, "ready": True, "credentials_not_ready": []}, "health")

    def test_error(self):
        good = example("error.forbidden.json")
        self.assertRejected(mutate(good, ["error", "code"], "teapot"), "error", "unknown code")
        self.assertRejected(mutate(good, ["error", "code"], "FORBIDDEN"), "error", "code case")
        self.assertRejected(mutate(good, ["error", "message"], delete=True), "error", "missing message")
        self.assertRejected(mutate(good, ["error", "message"], ""), "error", "empty message")
        self.assertRejected(mutate(good, ["error", "detail"], "x"), "error", "extra field in error")
        self.assertRejected(mutate(good, ["status"], 403), "error", "extra top-level field")
        self.assertRejected({"errors": [good["error"]]}, "error", "upstream's errors array")
        for code in ("bad_request", "forbidden", "unknown_credential", "upstream_unavailable",
                     "upstream_rejected", "too_large", "timeout", "not_found", "invalid_credentials",
                     "session_expired", "rate_limited", "method_not_allowed"):
            v.validate(mutate(good, ["error", "code"], code), "error")

    def test_small_documents(self):
        self.assertRejected({}, "invalidate-request", "missing access_token")
        self.assertRejected({"access_token": ""}, "invalidate-request", "empty token")
        self.assertRejected({"access_token": "a", "credential": "b"}, "invalidate-request", "extra field")
        self.assertRejected({"revoked": False}, "revoke-response", "revoked false")
        self.assertRejected({"revoked": True, "token": "a"}, "revoke-response", "extra field")
        v.validate({"refreshed": True, "expires_in": 7199}, "refresh-response")
        v.validate({"refreshed": False, "expires_in": 5412, "message": "nothing fetched"}, "refresh-response")
        self.assertRejected({"refreshed": False, "expires_in": 5412}, "refresh-response", "kept without why")
        self.assertRejected({"refreshed": True, "expires_in": 1, "message": "x"}, "refresh-response", "message when refreshed")
        self.assertRejected({"refreshed": True, "expires_in": 1, "access_token": "a"}, "refresh-response", "the token")
        self.assertRejected({"refreshed": True}, "refresh-response", "missing expires_in")
        self.assertRejected({"reloaded": False}, "reload-response", "reloaded false")
        self.assertRejected({}, "reload-response", "empty")
        self.assertRejected({"ended": False}, "session-ended", "ended false")
        self.assertRejected({"ended": True, "session": "abc"}, "session-ended", "extra field")

    def test_session_create_request(self):
        bad = {
            "empty": {},
            "username only": {"username": "a"},
            "password only": {"password": "a"},
            "two forms": {"username": "a", "password": "b", "refresh_token": "c"},
            "refresh and assertion": {"refresh_token": "c", "assertion": "d"},
            "access token and assertion": {"access_token": "a", "assertion": "d"},
            "grant_type given": {"grant_type": "password", "username": "a", "password": "b"},
            "empty password": {"username": "a", "password": ""},
            "number as token": {"refresh_token": 5},
            "array": [{"assertion": "d"}],
        }
        for why, doc in bad.items():
            self.assertRejected(doc, "session-create-request", why)

    def test_session_created(self):
        good = example("session-created.json")
        token_fields = set(v.load_schema("token")["properties"])
        self.assertEqual(set(v.load_schema("session-created")["properties"]), token_fields | {"session", "owner_id"})
        for field in good:
            self.assertRejected(mutate(good, [field], delete=True), "session-created", f"missing {field}")
        cases = {
            "integration kind": (["kind"], "integration"),
            "refresh token returned": (["refresh_token"], "r"),
            "owner_type extra": (["owner_type"], "Customer"),
            "session with a slash": (["session"], "abc/defghijklmnopqrst"),
            "session too short": (["session"], "abc"),
            "empty owner_id": (["owner_id"], ""),
            "bad token_type": (["token_type"], "mac"),
        }
        for why, (path, value) in cases.items():
            self.assertRejected(mutate(good, path, value), "session-created", why)

    def test_message_is_readable(self):
        doc = mutate(example("status.json"), ["credentials", 1, "state"], "bogus")
        with self.assertRaises(v.DocumentInvalid) as caught:
            v.validate(doc, "status")
        self.assertIn("$.credentials[1].state", str(caught.exception))
        self.assertIn("'bogus' is not one of", str(caught.exception))
        self.assertIsInstance(caught.exception, ValueError)


def openapi_document():
    with OPENAPI.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def openapi_refs():
    """Every $ref value in openapi.yaml, parsed or (without PyYAML) by regex."""
    if yaml is not None:
        return [node["$ref"] for _, node in walk(openapi_document()) if "$ref" in node]
    text = OPENAPI.read_text(encoding="utf-8")
    return [m.group(2) for m in re.finditer(r"""\$ref:\s*(["']?)([^"'\s]+)\1""", text)]


class OpenAPI(unittest.TestCase):
    def test_refs_resolve(self):
        refs = openapi_refs()
        self.assertTrue(refs)
        doc = openapi_document() if yaml is not None else None
        referenced = set()
        for ref in refs:
            with self.subTest(ref=ref):
                target, _, frag = ref.partition("#")
                if not target:
                    if doc is not None:
                        pointer(doc, frag)
                    continue
                self.assertTrue(target.startswith("schemas/") and target.endswith(".schema.json"),
                                "external $ref must be a relative path to proto/schemas/*.schema.json")
                path = PROTO / target
                self.assertTrue(path.is_file(), f"{path} does not exist")
                with path.open(encoding="utf-8") as f:
                    pointer(json.load(f), frag)
                referenced.add(path.name[: -len(v.SUFFIX)])
        self.assertEqual(set(DOCUMENT_SCHEMAS) - referenced, set(), "schemas openapi.yaml never uses")

    def test_schema_files_refs_resolve(self):
        for name in v.schema_names():
            for _, node in walk(v.load_schema(name)):
                ref = node.get("$ref")
                if not isinstance(ref, str):
                    continue
                with self.subTest(schema=name, ref=ref):
                    target, _, frag = ref.partition("#")
                    path = PROTO / "schemas" / (target or f"{name}{v.SUFFIX}")
                    self.assertTrue(path.is_file(), f"{path} does not exist")
                    with path.open(encoding="utf-8") as f:
                        pointer(json.load(f), frag)


@unittest.skipIf(yaml is None, "python3-yaml is not installed")
class OpenAPIStructure(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = openapi_document()

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#"):
            node = pointer(self.doc, node["$ref"][1:])
        return node

    def operations(self):
        for path, item in self.doc["paths"].items():
            for method, op in item.items():
                if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                    yield method, path, op

    def test_version_and_transport(self):
        self.assertRegex(self.doc["openapi"], r"^3\.1\.\d+$")
        server = self.doc["servers"][0]
        self.assertIn("Unix socket", server["description"])
        self.assertIn("SO_PEERCRED", self.doc["info"]["description"])

    def test_endpoints_match_contract(self):
        have = {(m, p): op.get("x-cl-tokend-access") for m, p, op in self.operations()}
        self.assertEqual(have, ENDPOINTS)

    def test_contract_response_codes(self):
        for method, path, op in self.operations():
            with self.subTest(endpoint=f"{method.upper()} {path}"):
                self.assertLessEqual(CONTRACT_CODES[(method, path)], set(op["responses"]))
                for code, response in op["responses"].items():
                    self.assertTrue(self.deref(response).get("description"), f"{code} undescribed")

    def test_retry_after_on_503_and_429(self):
        for method, path, op in self.operations():
            for code in ("503", "429"):
                if code not in op["responses"] or path == "/v1/health":
                    continue
                with self.subTest(endpoint=f"{method.upper()} {path}", code=code):
                    response = self.deref(op["responses"][code])
                    header = self.deref(response["headers"]["Retry-After"])
                    self.assertTrue(header["required"])
                    self.assertEqual(header["schema"]["type"], "integer")

    def test_min_ttl(self):
        for method, path in (("get", "/v1/tokens/{name}"), ("get", "/v1/customers/{name}/sessions/{session}")):
            params = [self.deref(p) for p in self.doc["paths"][path][method].get("parameters", [])]
            (min_ttl,) = [p for p in params if p["name"] == "min_ttl"]
            self.assertEqual(min_ttl["in"], "query")
            self.assertEqual(min_ttl["schema"], {"type": "integer", "minimum": 0, "maximum": 86400})

    def test_metrics_media_type(self):
        content = self.doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        self.assertEqual(list(content), ["text/plain; version=0.0.4"])

    def test_examples_match_schemas(self):
        """Every example in openapi.yaml validates against the schema beside it."""
        checked = 0
        for where, node in walk(self.doc):
            schema = node.get("schema")
            if not (isinstance(schema, dict) and str(schema.get("$ref", "")).startswith("schemas/")):
                continue
            target, _, frag = schema["$ref"].partition("#")
            name = target[len("schemas/"):-len(v.SUFFIX)]
            samples = [node["example"]] if "example" in node else []
            samples += [e["value"] for e in node.get("examples", {}).values()]
            for sample in samples:
                with self.subTest(at=where):
                    v.validate(sample, name + (f"#{frag}" if frag else ""))
                    checked += 1
        self.assertGreater(checked, 15)


class ConfigExample(unittest.TestCase):
    """config/cl-tokend.toml, the operators' annotated example, stays valid TOML with
    every section and key of the contract, and names the schemas accept."""

    KEYS = {
        "server": {"socket", "socket_mode", "socket_group", "admin", "max_connections", "idle_timeout_ms"},
        "upstream": {"auth_url", "ca_file", "connect_timeout_ms", "request_timeout_ms", "max_requests_per_minute"},
        "refresh": {"at", "jitter", "min_ttl", "backoff_initial_ms", "backoff_max_ms"},
        "log": {"level", "format", "access", "access_per_minute"},
        "customers": {"max_sessions", "idle_timeout_s"},
        "store": {"backend", "path", "key_file", "url"},
    }
    SECRET_SOURCES = ("client_secret_file", "client_secret_env", "client_secret_credential", "client_secret")

    @classmethod
    def setUpClass(cls):
        import tomllib

        cls.path = HERE.parent.parent / "config" / "cl-tokend.toml"
        cls.text = cls.path.read_text(encoding="utf-8")
        cls.config = tomllib.loads(cls.text)

    def test_contract_keys_present(self):
        for section, keys in self.KEYS.items():
            with self.subTest(section=section):
                self.assertLessEqual(keys, set(self.config[section]))

    def test_every_secret_source_documented(self):
        for key in self.SECRET_SOURCES:
            self.assertIn(key, self.text)

    def test_credentials(self):
        creds = self.config["credentials"]
        self.assertEqual(creds["backoffice"]["kind"], "integration")
        self.assertIn("client_secret_file", creds["backoffice"])
        self.assertEqual(creds["storefront-eu"]["kind"], "sales_channel")
        principal = re.compile(r"^(\*|uid:[0-9]+|gid:[0-9]+|user:[^:\s]+|group:[^:\s]+"
                               r"|unit:[A-Za-z0-9:_.\\@*?-]+\.(service|scope|socket|mount|swap)"
                               r"|slice:[A-Za-z0-9:_.\\@*?-]+\.slice)$")
        for name, c in creds.items():
            with self.subTest(credential=name):
                v.validate(mutate(example("token.backoffice.json"), ["credential"], name), "token")
                self.assertLessEqual(sum(k in c for k in self.SECRET_SOURCES), 1)
                self.assertTrue(all(principal.match(p) for p in c["allow"]))
        self.assertTrue(all(principal.match(p) for p in self.config["server"]["admin"]))


class CommandLine(unittest.TestCase):
    def run_cli(self, *args, stdin=None):
        return subprocess.run([sys.executable, str(HERE / "validate.py"), *args], input=stdin,
                              capture_output=True, text=True, timeout=60)

    def test_valid_file(self):
        r = self.run_cli("token", str(EXAMPLES / "token.backoffice.json"))
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_stdin_and_long_name(self):
        r = self.run_cli("health.schema.json", "-", stdin='{"live":true,"ready":false}')
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_invalid(self):
        r = self.run_cli("status", "-", stdin='{"version":"1"}')
        self.assertEqual(r.returncode, 1)
        self.assertIn("'started_at' is a required property", r.stderr)

    def test_usage(self):
        self.assertEqual(self.run_cli().returncode, 2)
        self.assertEqual(self.run_cli("nope", "-", stdin="{}").returncode, 2)
        self.assertEqual(self.run_cli("token", "-", stdin="{not json").returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=1)
