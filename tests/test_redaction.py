"""One redaction for error texts, mails and audit parameters (I6)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from include.redaction import redact, redact_mapping

ROOT = Path(__file__).resolve().parents[1]


def test_known_secrets_are_masked_wherever_they_appear():
    assert redact("echo hunter22 and tok-abcdef", ["hunter22", "tok-abcdef", None]) == "echo *** and ***"
    assert redact("a pw of 3", ["pw"]) == "a pw of 3"  # too short to mask without masking words


def test_credential_patterns_are_masked_without_being_known():
    text = "Authorization: Bearer eyJ.abc.def; password='p w' api_key=k1 https://u:s3cret@host/x"
    assert redact(text) == "Authorization: ***; password=*** api_key=*** https://u:***@host/x"
    assert redact("credential=abc, token: xyz") == "credential=***, token: ***"
    assert redact("wrong username or password") == "wrong username or password"


def test_secrets_registered_with_airflows_masker_are_masked_too():
    from airflow.sdk.log import mask_secret

    mask_secret("registered-elsewhere-42")
    assert redact("got registered-elsewhere-42 back") == "got *** back"


def test_without_airflow_loaded_nothing_is_imported():
    code = (
        "import sys; from include.redaction import redact; "
        "assert redact('password=x') == 'password=***'; "
        "assert not any(m.startswith('airflow') for m in sys.modules), 'airflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_mapping_values_named_like_secrets_are_masked_at_any_depth():
    params = {
        "db_password": "x",
        "nested": [{"API-Key": "k", "note": "fine"}],
        "token": "",
        "smtp_credentials": None,
        "servers": ["a"],
    }
    assert redact_mapping(params) == {
        "db_password": "***",
        "nested": [{"API-Key": "***", "note": "fine"}],
        "token": "",
        "smtp_credentials": None,
        "servers": ["a"],
    }
