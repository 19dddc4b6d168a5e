"""settleguard.toml (config_file.py, bootstrap.load_settings): sections mapped to every Settings field, precedence
flags > environment > file > defaults, and every problem named by key, file and line (or variable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from settleguard import config_file as cf
from settleguard.bootstrap import Container, load_settings
from settleguard.config import Settings

PLANTED = "Planted-Secret-Pw-4711"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SETTLEGUARD_* from the test runner's environment, and a working directory without a settleguard.toml."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("SETTLEGUARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_every_settings_field_has_a_file_key_that_maps_back_to_it() -> None:
    names = list(Settings.model_fields)
    assert {"worker_interval", "server_host", "server_port", "server_workers"} <= set(names)
    for name in names:
        key = cf.file_key(name)
        section, _, rest = key.rpartition(".")
        assert cf.field_for(section or None, rest, names) == name, key
        assert cf.field_for(None, name, names) == name  # flat at the top works for every field too
    assert cf.file_key("db") == "database.url"
    assert cf.file_key("smtp_password") == "smtp.password"
    assert cf.file_key("t1_cutoff_hour") == "settlement.t1_cutoff_hour"
    assert cf.file_key("server_port") == "server.port"
    assert cf.file_key("some_new_field") == "some_new_field"  # a field of no documented section stays flat


def test_file_values_are_the_settings_and_reach_the_container(tmp_path: Path) -> None:
    f = write(tmp_path / "sg.toml", """
        [database]
        url = "sqlite:///from-file.db"
        [settlement]
        timezone = "Europe/Berlin"
        t1_cutoff_hour = 21
        [smtp]
        host = "mail.example.com"
        port = 2525
        [worker]
        interval = 12.5
        [server]
        host = "0.0.0.0"
        port = 8443
        workers = 3
        [doctor]
        disk_warn_mb = 4096
        backup_keep = 3
        """.replace("\n        ", "\n"))
    with pytest.raises(cf.ConfigError) as exc:  # doctor.backup_keep is not a field: backup_keep is [backup] keep
        load_settings(f)
    assert any("doctor.backup_keep" in p and "line 18" in p and "backup.keep" in p for p in exc.value.problems)
    f.write_text(f.read_text(encoding="utf-8").replace("backup_keep = 3", "[backup]\nkeep = 3"), encoding="utf-8")
    loaded = load_settings(f)
    s = loaded.settings
    assert (s.db, s.timezone, s.t1_cutoff_hour, s.smtp_host, s.smtp_port) == (
        "sqlite:///from-file.db", "Europe/Berlin", 21, "mail.example.com", 2525)
    assert (s.worker_interval, s.server_host, s.server_port, s.server_workers) == (12.5, "0.0.0.0", 8443, 3)
    assert (s.doctor_disk_warn_mb, s.backup_keep) == (4096, 3)
    c = Container(s)
    assert (c.tz, c.cutoffs.t1_hour, c.cutoffs.timezone) == ("Europe/Berlin", 21, "Europe/Berlin")
    assert loaded.sources.origin("smtp_port") == cf.Origin("file", f"{f.resolve()}:9")
    assert loaded.sources.origin("d0_cutoff_hour") == cf.Origin("default")


def test_flat_keys_work_and_the_environment_beats_the_file_and_flags_beat_both(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write(tmp_path / "sg.toml", 'db = "sqlite:///file.db"\ntimezone = "Europe/Berlin"\nsmtp_port = 2525\n')
    assert load_settings(f).settings.smtp_port == 2525
    monkeypatch.setenv("SETTLEGUARD_SMTP_PORT", "587")
    monkeypatch.setenv("SETTLEGUARD_DB", "sqlite:///env.db")
    loaded = load_settings(f, flags={"db": "--db"}, db="sqlite:///flag.db")
    s = loaded.settings
    assert (s.smtp_port, s.db, s.timezone) == (587, "sqlite:///flag.db", "Europe/Berlin")
    assert loaded.sources.origin("smtp_port") == cf.Origin("env", "SETTLEGUARD_SMTP_PORT")
    assert loaded.sources.origin("db") == cf.Origin("flag", "--db")
    assert loaded.sources.origin("timezone").kind == "file"


def test_which_file_config_then_variable_then_working_directory_then_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().sources.file is None  # none: defaults
    assert load_settings().settings.smtp_port == 25
    write(tmp_path / "settleguard.toml", "[smtp]\nport = 1\n")
    assert load_settings().settings.smtp_port == 1  # ./settleguard.toml read when it is there
    assert load_settings().sources.file.how == "./settleguard.toml"  # type: ignore[union-attr]
    env_file = write(tmp_path / "env.toml", "[smtp]\nport = 2\n")
    monkeypatch.setenv("SETTLEGUARD_CONFIG", str(env_file))
    assert load_settings().settings.smtp_port == 2
    assert load_settings(write(tmp_path / "given.toml", "[smtp]\nport = 3\n")).settings.smtp_port == 3
    with pytest.raises(cf.ConfigError) as exc:
        load_settings(tmp_path / "missing.toml")
    assert "missing.toml" in exc.value.zh
    assert "does not exist" in exc.value.en
    assert "--config" in exc.value.en
    monkeypatch.setenv("SETTLEGUARD_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(cf.ConfigError) as exc:
        load_settings()
    assert "gone.toml" in exc.value.en
    assert "SETTLEGUARD_CONFIG" in exc.value.en


def test_unknown_keys_and_sections_are_named_with_file_and_line(tmp_path: Path) -> None:
    f = write(tmp_path / "sg.toml", "timezon = 'UTC'\n[smtp]\nhost = 'x'\nprot = 25\n\n[smpt]\nport = 1\n\n"
                                    "[server.tls]\ncert = 'x'\n")
    with pytest.raises(cf.ConfigError) as exc:
        load_settings(f)
    e = exc.value
    assert str(f.resolve()) in e.zh
    assert "nothing changed" in e.en
    text = "\n".join(e.problems)
    assert "smtp.prot" in text
    assert "line 4" in text
    assert "smtp.port" in text
    assert "smpt (" in text
    assert "line 6" in text
    assert "未知配置节" in text
    assert "timezon (" in text
    assert "line 1" in text
    assert "settlement.timezone" in text
    assert "server.tls" in text
    assert "line 9" in text
    assert len(e.problems) == 4  # every problem at once


def test_a_field_given_twice_is_an_error(tmp_path: Path) -> None:
    f = write(tmp_path / "sg.toml", "smtp_port = 1\n[smtp]\nport = 2\n")
    with pytest.raises(cf.ConfigError) as exc:
        load_settings(f)
    assert "smtp.port" in exc.value.problems[0]
    assert "smtp_port" in exc.value.problems[0]
    assert "line 3" in exc.value.problems[0]


@pytest.mark.parametrize(("text", "key", "line", "said"), [
    ("[smtp]\nhost = 'x'\nport = 70000\n", "smtp.port", 3, "less than or equal to 65535"),
    ("[settlement]\nt1_cutoff_hour = 'late'\n", "settlement.t1_cutoff_hour", 2, "valid integer"),
    ("[worker]\ninterval = -1\n", "worker.interval", 2, "greater than 0"),
    ("smtp_starttls = 'maybe'\n", "smtp_starttls", 1, "valid boolean"),
])
def test_a_bad_value_names_key_file_and_line(tmp_path: Path, text: str, key: str, line: int, said: str) -> None:
    f = write(tmp_path / "sg.toml", text)
    with pytest.raises(cf.ConfigError) as exc:
        load_settings(f)
    [problem] = exc.value.problems
    assert problem.startswith(f"{key} ({f.resolve()} 第 {line} 行 line {line})"), problem
    assert said in problem


def test_bad_toml_names_the_file_and_line(tmp_path: Path) -> None:
    f = write(tmp_path / "sg.toml", "[smtp]\nhost = 'x'\nport = = 2\n")
    with pytest.raises(cf.ConfigError) as exc:
        load_settings(f)
    assert str(f.resolve()) in exc.value.en
    assert "line 3" in exc.value.en
    assert "第 3 行" in exc.value.zh
    f.write_bytes(b"[smtp]\nhost = '\xff'\n")
    with pytest.raises(cf.ConfigError) as exc:
        load_settings(f)
    assert "UTF-8" in exc.value.en
    assert "line 2" in exc.value.en


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETTLEGUARD_SMTP_PORT", "abc")
    with pytest.raises(cf.ConfigError) as exc:
        load_settings()
    assert exc.value.problems[0].startswith("SETTLEGUARD_SMTP_PORT: ")
    monkeypatch.setenv("SETTLEGUARD_SMTP_PORT", "25")
    monkeypatch.setenv("SETTLEGUARD_SMTP_PASSWORD", PLANTED)
    monkeypatch.setenv("SETTLEGUARD_KEY_FILE", "/x")
    with pytest.raises(cf.ConfigError) as exc:  # a flag's bad value names the flag
        load_settings(flags={"server_port": "--port"}, server_port=0)
    assert exc.value.problems[0].startswith("--port: ")


def test_secrets_are_masked_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write(tmp_path / "sg.toml", f'[database]\nurl = "postgresql://sg:{PLANTED}@db.internal/sg"\n'
                                    f'[smtp]\npassword = "{PLANTED}"\n[key]\nvalue = "{PLANTED}"\n')
    loaded = load_settings(f)
    shown = {r.name: r for r in cf.rows(loaded.settings.model_dump(), loaded.sources)}
    assert shown["db"].value == "postgresql://sg:******@db.internal/sg"
    assert shown["smtp_password"].value == shown["key"].value == "******"
    assert PLANTED not in repr(list(shown.values()))
    assert cf.shown_value("key_command", f"vault-read --token {PLANTED}") == "vault-read ******"
    assert cf.shown_value("smtp_password", None) is None  # not set is shown as not set
    # a bad secret value is never echoed either
    f.write_text(f'smtp_password = ["{PLANTED}"]\n', encoding="utf-8")
    with pytest.raises(cf.ConfigError) as exc:
        load_settings(f)
    assert "smtp_password" in exc.value.problems[0]
    assert PLANTED not in str(exc.value.problems)


def test_the_files_errors_are_the_files_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETTLEGUARD_NOTIFY_BATCH", "0")  # bad, but not the file's: named after the file is fixed
    f = write(tmp_path / "sg.toml", "[smtp]\nport = 0\n")
    with pytest.raises(cf.ConfigError) as exc:
        load_settings(f)
    assert [p.split(" ")[0] for p in exc.value.problems] == ["smtp.port"]
    f.write_text("[smtp]\nport = 26\n", encoding="utf-8")
    with pytest.raises(cf.ConfigError) as exc:
        load_settings(f)
    assert [p.split(":")[0] for p in exc.value.problems] == ["SETTLEGUARD_NOTIFY_BATCH"]


def test_the_example_file_names_every_setting_and_every_key_in_it_is_valid(tmp_path: Path) -> None:
    """docs/settleguard.example.toml: each ``# key = value`` line (the first of a key in its section) made active
    loads without an error, and together they set every Settings field."""
    import re

    example = Path(__file__).parents[2] / "docs" / "settleguard.example.toml"
    out, seen, section = [], set(), ""
    for line in example.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        m = re.match(r"# ([a-z0-9_]+) = ", line)
        if m and (section, m.group(1)) not in seen:
            seen.add((section, m.group(1)))
            line = line[2:]
        out.append(line)
    active = write(tmp_path / "active.toml", "\n".join(out) + "\n")
    loaded = load_settings(active)
    assert loaded.sources.file is not None
    missing = sorted(cf.file_key(n) for n in Settings.model_fields if n not in loaded.sources.file.values)
    assert missing == [], f"add these to docs/settleguard.example.toml: {missing}"
