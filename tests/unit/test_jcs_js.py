"""console/static/console/jcs.js (the certificate page's RFC 8785 canonical form, in the browser) writes
the same bytes as Python's `rfc8785.dumps`, which the exchange hashes and signs with: run under node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import rfc8785

JCS = Path(__file__).resolve().parents[2] / "console" / "static" / "console" / "jcs.js"
NODE = shutil.which("node")

INPUTS: list[Any] = [
    None, True, False, 0, -0.0, 1, -1, 2**53 - 1, -(2**53 - 1), 1.5, -1.5, 0.1, 1e21, 1e20, 1e-7, 1e-6,
    123456789.125, 5e-324, 1.7976931348623157e308, 333333333.33333329, 32.5, 1320,
    "", "广州市实时交通流量数据", "emoji 😀 and 🇨🇳", "quote \" backslash \\ slash /",
    "controls \u0000 \u0001 \b \t \n \f \r \u001f \u007f", "line sep \u2028 para sep \u2029", "é café Ω",
    [], {}, [1, [2, [3, []]], {"a": []}],
    {"b": 1, "a": 2, "A": 3, "10": 4, "2": 5, "é": 6, "\ue000": 7, "😀": 8, "": 9},
    {"nested": {"z": [None, True, 1e21, "中文"], "y": {"x": -0.0}}, "数": -12.75},
    {"number": "DFX-2026-000001", "product_id": "prd_1", "product_version": 1, "vendor_org_id": "org_1",
     "issued_at": "2026-12-03T10:00:00Z", "expires_at": "2027-12-03T10:00:00Z", "digest": "ab" * 32,
     "key_id": "dfx-2026-0a1b2c3d"},
    {"sample": {"columns": ["road_id", "flow", "speed_kmh"], "rows": [["GZ-001", 1320, 32.5], ["GZ-002", None, 41.0]]},
     "price": {"model": "one_time", "amount": 1250000, "currency": "CNY", "period": None}},
]

# Node reads every input as JSON (a float's repr parses to the same double) and prints each canonical
# form on a line of its own: JCS never writes a raw newline (it is escaped inside strings).
RUNNER = """
const jcs = require(process.argv[1]);
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((value) => jcs.canonicalize(value));
  process.stdout.write(out.join("\\n"));
  if (typeof globalThis.JCS.canonicalBytes !== "function") { process.exit(3); }
});
"""


def run_node(values: list[Any]) -> list[bytes]:
    assert NODE is not None
    done = subprocess.run([NODE, "-e", RUNNER, str(JCS)], input=json.dumps(values).encode(),
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.split(b"\n")


@pytest.mark.skipif(NODE is None, reason="node is not installed: jcs.js runs in browsers, checked here under node")
def test_jcs_js_writes_the_same_bytes_as_python_rfc8785() -> None:
    got = run_node(INPUTS)
    assert len(got) == len(INPUTS)
    for value, js in zip(INPUTS, got, strict=True):
        assert js == rfc8785.dumps(value), (value, js)


@pytest.mark.skipif(NODE is None, reason="node is not installed: jcs.js runs in browsers, checked here under node")
def test_jcs_js_refuses_what_json_cannot_carry() -> None:
    script = ("const j = require(process.argv[1]); let n = 0;"
              "for (const v of [NaN, Infinity, -Infinity, '\\ud800', 'x\\udc00', undefined, () => 1]) {"
              " try { j.canonicalize(v); } catch (e) { n++; } }"
              "process.stdout.write(String(n));")
    done = subprocess.run([NODE, "-e", script, str(JCS)], capture_output=True, timeout=60, check=False)  # type: ignore[list-item]
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"7"
