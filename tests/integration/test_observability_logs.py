#!/usr/bin/python3
"""The daemon's log lines: text is readable and time-stamped, JSON lines parse with ts, level,
msg (and credential where known), journal priority prefixes appear only when stderr is the
journal stream, every refresh gets one line with its outcome, latency and expiry, and no
secret or whole token is ever written, even at debug."""
# ctest-timeout: 180

import json
import os
import re
import unittest

from cltoken_harness import DaemonTestCase, fake_harness, wait_for

IT = fake_harness.INTEGRATION_CLIENT_ID
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = {"trace", "debug", "info", "warning", "error", "critical"}
TEXT_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (trace|debug|info|warning|error|critical) +(\S.*)$")
REFRESH_OK = re.compile(r"^credential (\S+): refresh ok in \d+ ms, expires in \d+ s, next refresh in \d+ s$")
REFRESH_FAILED = re.compile(r"^credential (\S+): refresh failed in \d+ ms \((server_error|network_error|rejected)\): .+; retry in \d+ s$")
PRIORITY = {"debug": "<7>", "info": "<6>", "warning": "<4>", "error": "<3>", "critical": "<2>"}


class Logs(DaemonTestCase):
    def exercise(self, d) -> list[str]:
        """Tokens served, one refresh failed with a 500 and repaired; returns the tokens seen."""
        d.wait_ready()
        tokens = [d.get("/v1/tokens/backoffice").json()["access_token"]]
        tokens.append(d.get("/v1/tokens/storefront-eu").json()["access_token"])
        self.reject(tokens[0])
        self.fake.control(mode="500", count=1)
        d.post("/v1/tokens/backoffice/invalidate", {"access_token": tokens[0]})
        wait_for(lambda: self.token_requests(IT) >= 3 and d.get("/v1/health").status == 200, 15,
                 "the refresh after the 500")
        tokens.append(d.get("/v1/tokens/backoffice").json()["access_token"])
        self.assertNotEqual(tokens[0], tokens[-1])
        return tokens

    def stopped_log(self, d) -> list[str]:
        self.assertEqual(d.stop(), 0)
        lines = d.read_log().splitlines()
        self.assertTrue(lines)
        return lines

    def assert_nothing_secret(self, text: str, tokens: list[str]) -> None:
        self.assertNotIn(fake_harness.INTEGRATION_CLIENT_SECRET, text)
        for t in tokens:
            self.assertNotIn(t, text)
            # No more than a fingerprint: the first 4 and last 4 characters.
            for i in range(0, len(t) - 12, 7):
                self.assertNotIn(t[i:i + 12], text, "a piece of a token is in the log")

    def test_text_lines_are_readable_and_say_each_refresh(self):
        d = self.daemon(log_level="debug")
        tokens = self.exercise(d)
        lines = self.stopped_log(d)
        messages = []
        for line in lines:
            m = TEXT_LINE.match(line)
            self.assertIsNotNone(m, f"not a text log line: {line!r}")
            messages.append((m.group(2), m.group(3)))
        # Messages start in one column: levels are padded to the longest name.
        self.assertEqual({len(line) - len(msg) for line, (_, msg) in zip(lines, messages)}, {34})
        ok = [(lvl, msg) for lvl, msg in messages if REFRESH_OK.match(msg)]
        failed = [(lvl, msg) for lvl, msg in messages if REFRESH_FAILED.match(msg)]
        # One line per upstream request: two first fetches, the 500, the repair.
        self.assertEqual(sorted(REFRESH_OK.match(m).group(1) for _, m in ok),
                         ["backoffice", "backoffice", "storefront-eu"])
        self.assertEqual(len(failed), 1, failed)
        self.assertEqual(failed[0][0], "warning")
        self.assertIn("(server_error): auth server error (500)", failed[0][1])
        self.assertTrue(all(lvl == "info" for lvl, _ in ok))
        # debug shows which token without showing it: a fingerprint.
        self.assertTrue(any(re.search(r"new token \S{4}\S*\S{4}", msg) for lvl, msg in messages if lvl == "debug"))
        self.assert_nothing_secret("\n".join(lines), tokens)

    def test_json_lines_parse_with_ts_level_msg_and_credential(self):
        d = self.daemon(log_level="debug", extra='[log]\nformat = "json"\n')
        tokens = self.exercise(d)
        lines = self.stopped_log(d)
        records = []
        for line in lines:
            rec = json.loads(line)  # every line is one JSON object
            self.assertIsInstance(rec, dict)
            self.assertRegex(rec["ts"], TS)
            self.assertIn(rec["level"], LEVELS)
            self.assertIsInstance(rec["msg"], str)
            self.assertLessEqual(set(rec), {"ts", "level", "credential", "msg"})
            records.append(rec)
        refreshes = [r for r in records if REFRESH_OK.match(r["msg"]) or REFRESH_FAILED.match(r["msg"])]
        self.assertEqual(len(refreshes), 4)
        for r in refreshes:
            self.assertEqual(r["credential"], r["msg"].split()[1].rstrip(":"))
        self.assertTrue(any(r["level"] == "warning" and r.get("credential") == "backoffice" for r in refreshes))
        self.assertTrue(any("credential" not in r for r in records))  # "listening on ..." is about no credential
        self.assert_nothing_secret("\n".join(lines), tokens)

    def journal_daemon(self, journal_stream_of_log: bool, **kw):
        """A daemon whose JOURNAL_STREAM names its own log file (as systemd names the journal
        stream it connects to stderr), or a file it is not writing to."""
        d = self.daemon(start=False, **kw)
        open(d.log_path, "ab").close()
        st = os.stat(d.log_path if journal_stream_of_log else d.config_path)
        d.env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        d.start()
        return d

    def test_journal_prefixes_when_stderr_is_the_journal(self):
        d = self.journal_daemon(True, log_level="debug")
        self.exercise(d)
        lines = self.stopped_log(d)
        seen = set()
        for line in lines:
            m = re.match(r"^<([0-7])>(.*)$", line)
            self.assertIsNotNone(m, f"no priority prefix: {line!r}")
            # The journal stamps lines itself: no time stamp of our own.
            self.assertNotRegex(m.group(2), r"^\d{4}-\d\d-\d\dT")
            seen.add(m.group(1))
            if REFRESH_FAILED.match(m.group(2)):
                self.assertEqual(m.group(1), "4", line)  # journalctl -p warning shows it
            if REFRESH_OK.match(m.group(2)):
                self.assertEqual(m.group(1), "6", line)  # and not this
        self.assertLessEqual({"4", "6", "7"}, seen)

    def test_journal_prefixes_with_json(self):
        d = self.journal_daemon(True, log_level="info", extra='[log]\nformat = "json"\n')
        self.exercise(d)
        for line in self.stopped_log(d):
            m = re.match(r"^<([0-7])>(\{.*\})$", line)
            self.assertIsNotNone(m, line)
            rec = json.loads(m.group(2))
            self.assertEqual(PRIORITY[rec["level"]], f"<{m.group(1)}>")

    def test_no_prefix_when_journal_stream_names_another_file(self):
        # JOURNAL_STREAM inherited from a parent while stderr goes to a file: plain text.
        d = self.journal_daemon(False, log_level="info")
        d.wait_ready()
        for line in self.stopped_log(d):
            self.assertRegex(line, TEXT_LINE)


if __name__ == "__main__":
    unittest.main()
