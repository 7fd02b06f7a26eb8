#!/usr/bin/python3
"""A peer that pipelines tens of thousands of requests on one connection, as user nobody,
must not make another connection's single request wait for its pipeline. Counts, not
times: how far the pipeline had got when the other request was answered.

End to end this is also bounded by the pipelining peer's own reading: when the daemon's
answers fill its socket, the daemon waits for it and serves others (every ~280 answers
here). The turns the daemon takes between connections whose requests keep arriving
(docs/architecture.md) are checked event by event in tests/drivers/test_connection_fairness.cpp.
"""
# ctest-timeout: 300

import json
import socket
import subprocess
import sys
import unittest

from cltoken_harness import DaemonTestCase

NOBODY = 65534
OTHER_USER_PYTHON = "/usr/bin/python3"  # any user can run it (a virtualenv under /root may not be)
PIPELINED = 50000

# As nobody: writes PIPELINED requests on one connection as fast as the socket takes them
# while reading the answers; prints the count of answers read after the first 100 and at
# each line on stdin, and the total once all are in and stdin is closed.
PIPELINE = r"""
import json, os, select, socket, sys
path, count = sys.argv[1], int(sys.argv[2])
request = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.setblocking(False)
out = memoryview(request * count)
sent = answers = 0
tail = b""
announced = False
def report():
    print(json.dumps({"answers": answers}), flush=True)
while answers < count:
    r, w, _ = select.select([s, 0], [s] if sent < len(out) else [], [], 60)
    if not r and not w:
        sys.exit("no progress for 60 s")
    if s in w:
        sent += s.send(out[sent:sent + 65536])
    if s in r:
        chunk = s.recv(1 << 20)
        if not chunk:
            sys.exit("the daemon closed the connection")
        data = tail + chunk
        answers += data.count(b"HTTP/1.1 200 ")
        tail = data[-12:]  # shorter than a status line: a cut one is counted once, whole
    if 0 in r:
        for _ in range(os.read(0, 64).count(b"\n")):
            report()
    if not announced and answers >= 100:
        announced = True
        report()
for _ in sys.stdin:  # the test's lines after the last answer
    report()
print(json.dumps({"done": answers}), flush=True)
"""


class PipelinedPeer(DaemonTestCase):
    def test_a_pipelining_peer_does_not_hold_up_another_connection(self):
        d = self.daemon(log_level="info")
        d.wait_ready()
        good = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        good.settimeout(60)
        good.connect(d.socket)
        p = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                              OTHER_USER_PYTHON, "-c", PIPELINE, d.socket, str(PIPELINED)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
        try:
            started = json.loads(p.stdout.readline())["answers"]  # the daemon is serving the pipeline
            good.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = good.recv(65536)
            p.stdin.write("\n")
            p.stdin.flush()
            at_answer = json.loads(p.stdout.readline())["answers"]
            p.stdin.close()
            done = json.loads(p.stdout.readline())["done"]
        finally:
            good.close()
            if not p.stdin.closed:
                p.stdin.close()
            try:
                p.wait(120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            err = p.stderr.read()
            p.stdout.close()
            p.stderr.close()
        sys.stderr.write(f"\npipeline: {started} answers when the other request was sent, {at_answer} when it "
                         f"was answered (counted after), {done} in all\n")
        self.assertEqual(p.returncode, 0, err)
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer)
        self.assertEqual(done, PIPELINED)
        # The pipeline went on while the other request waited, and the count is read only
        # after that answer came: generous for a loaded machine, far from the whole pipeline.
        self.assertLess(at_answer, PIPELINED // 2)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
