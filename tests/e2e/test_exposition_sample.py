# SPDX-License-Identifier: GPL-2.0
"""The exposition writer on its own (tests/helpers/render_sample.c: every kind of family and
hostile label values) through real Prometheus parsers: promtool and prometheus_client."""
import os
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT


def test_sample_passes_promtool_and_prometheus_client():
    text = subprocess.run([os.path.join(ROOT, "build", "tests", "render_sample")], check=True,
                          capture_output=True, text=True).stdout
    assert "# TYPE" in text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    fams = list(text_string_to_metric_families(text))
    assert len(fams) >= 3
    values = [v for f in fams for s in f.samples for v in s.labels.values()]
    assert any('"' in v for v in values) and any("\n" in v for v in values)
    assert all(len(v.encode()) <= 1024 for v in values)
