"""What can be checked of the deployment files without Docker.

The compose file parses; every service runs the project's real entry points with options the
programs accept; every variable the app services receive is one that pos/settings.py reads;
the required production variables are required (never given a default); the settings start
with exactly what compose provides; the Dockerfile's command, user and ports agree.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SETTINGS = ROOT / "pos" / "settings.py"

APP_SERVICES = ("web", "worker", "beat")
# Variables without which settings refuse to start in production, or that switch the
# embedded mode off (an app service must never run embedded).
REQUIRED_PRODUCTION = (
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
)
SECRETS = ("DJANGO_SECRET_KEY", "PAYMENTS_SANDBOX_SECRET", "MIDTRANS_SERVER_KEY", "JWT_SIGNING_KEY")


# --- helpers ---------------------------------------------------------------------------------
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def settings_env_names() -> set[str]:
    """Names pos/settings.py reads from the environment (env_* helpers and os.environ)."""
    source = SETTINGS.read_text()
    readers = r"(?:env_str|env_bool|env_int|env_list|os\.environ\.get|os\.getenv)"
    pattern = readers + r"""\(\s*["']([A-Z0-9_]+)["']"""
    names = set(re.findall(pattern, source))
    names |= set(re.findall(r"""os\.environ\[\s*["']([A-Z0-9_]+)["']\s*\]""", source))
    return names


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: ${X}, ${X:-default}, ${X-default}, ${X:?err}, $$."""

    def substitute(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise KeyError(f"{name} is required: {arg}")
            return current
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        return current or ""

    return _VAR.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command_lines(command) -> list[list[str]]:
    """The program invocations of a compose ``command`` (list form or ``sh -c "a && b"``)."""
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if argv[:2] == ["sh", "-c"] or argv[:2] == ["/bin/sh", "-c"]:
        script = argv[2]
        lines = []
        for part in re.split(r"&&|;", script):
            words = shlex.split(part)
            if words and words[0] == "exec":
                words = words[1:]
            if words:
                lines.append(words)
        return lines
    return [argv]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text()
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        logical.append(current)
        current = ""
    pairs = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def check_invocation(argv: list[str]) -> str:
    """Assert one invocation runs a real entry point with accepted options; return its kind."""
    program = argv[0]
    if program == "uvicorn" or argv[:3] == ["python", "-m", "uvicorn"]:
        args = argv[1:] if program == "uvicorn" else argv[3:]
        from uvicorn.importer import import_from_string
        from uvicorn.main import main as uvicorn_command

        ctx = uvicorn_command.make_context("uvicorn", list(args))
        app = import_from_string(ctx.params["app"])
        assert callable(app), f"{ctx.params['app']} is not an ASGI callable"
        return "uvicorn"
    if program == "celery":
        from celery.app.utils import find_app
        from celery.bin.base import CLIContext
        from celery.bin.celery import celery as celery_cli

        names = [i for i, word in enumerate(argv) if word in celery_cli.commands]
        assert names, f"no celery command in {argv}"
        name, rest = argv[names[0]], argv[names[0] + 1 :]
        head = celery_cli.make_context("celery", argv[1:])
        app = find_app(head.params["app"])
        head.obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
        sub = celery_cli.get_command(head, name)
        assert sub is not None, f"celery has no command {name!r}"
        sub.make_context(name, rest, parent=head)
        return f"celery {name}"
    if program == "python" and argv[1:2] == ["manage.py"]:
        from django.core.management import get_commands, load_command_class

        name, *rest = argv[2:]
        commands = get_commands()
        assert name in commands, f"manage.py has no command {name!r}"
        parser = load_command_class(commands[name], name).create_parser("manage.py", name)
        parser.parse_args(rest)
        return f"manage.py {name}"
    raise AssertionError(f"unexpected program in a deployment command: {argv}")


# --- compose ---------------------------------------------------------------------------------
def test_compose_has_the_five_services_with_the_expected_images():
    services = compose()["services"]
    assert set(services) == {"db", "redis", "web", "worker", "beat"}
    assert services["db"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name in APP_SERVICES:
        assert services[name]["build"] == ".", name


def test_compose_commands_run_the_real_entry_points():
    services = compose()["services"]
    kinds = {name: [check_invocation(argv) for argv in command_lines(services[name]["command"])]
             for name in APP_SERVICES}
    assert kinds["web"] == ["manage.py migrate", "uvicorn"]
    assert kinds["worker"] == ["celery worker"]
    assert kinds["beat"] == ["celery beat"]


def test_web_runs_several_uvicorn_workers_on_the_published_port():
    web = compose()["services"]["web"]
    argv = command_lines(web["command"])[-1]
    assert int(argv[argv.index("--workers") + 1]) >= 2
    port = argv[argv.index("--port") + 1]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    published = [str(p).rsplit(":", 1)[-1] for p in web["ports"]]
    assert published == [port]
    assert f"localhost:{port}/readyz" in " ".join(web["healthcheck"]["test"])


def test_celery_beat_schedules_only_tasks_that_exist():
    from celery.app.utils import find_app
    from django.conf import settings

    app = find_app("pos")
    app.loader.import_default_modules()
    missing = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
               if entry["task"] not in app.tasks]
    assert missing == []


def test_health_checks_use_the_health_endpoints_and_real_tools():
    services = compose()["services"]
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert "redis-cli" in " ".join(services["redis"]["healthcheck"]["test"])
    worker_check = " ".join(services["worker"]["healthcheck"]["test"]).replace("CMD-SHELL ", "")
    check_invocation(shlex.split(worker_check.replace("$$HOSTNAME", "x")))
    # beat serves no port: the image's HTTP health check must not apply to it.
    assert services["beat"]["healthcheck"] == {"disable": True}
    from django.urls import resolve

    assert resolve("/healthz").url_name == "healthz"
    assert resolve("/readyz").url_name == "readyz"


def test_every_compose_variable_of_the_app_is_read_by_settings():
    known = settings_env_names()
    assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY"} <= known  # the grep works
    for name in APP_SERVICES:
        unknown = set(service_env(compose()["services"][name])) - known
        assert unknown == set(), f"{name} sets variables settings never read: {unknown}"


def test_required_production_variables_are_present_and_secrets_have_no_default():
    for name in APP_SERVICES:
        env = service_env(compose()["services"][name])
        assert set(REQUIRED_PRODUCTION) <= set(env), name
        for secret in SECRETS:
            if secret in env:
                value = env[secret]
                required = re.fullmatch(r"\$\{" + secret + r"(:\?[^}]*)?\}", value)
                optional_empty = value == "${" + secret + ":-}"
                assert required or optional_empty, (
                    f"{secret} must come from the environment, never a default: {value!r}"
                )
        assert ":?" in env["DJANGO_SECRET_KEY"]
        with pytest.raises(KeyError):
            interpolate(env["DJANGO_SECRET_KEY"], {})


def _compose_environment(service: str, overrides: dict[str, str] | None = None) -> dict:
    provided = {
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "pos.example.com",
        "POSTGRES_PASSWORD": "pw",
        "PAYMENTS_SANDBOX_SECRET": "sandbox-secret",
        **(overrides or {}),
    }
    env = service_env(compose()["services"][service])
    return {key: interpolate(value, provided) for key, value in env.items()}


def test_settings_start_in_production_mode_with_what_compose_provides():
    env = _compose_environment("web")
    probe = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'debug': s.DEBUG, 'engine': s.DATABASES['default']['ENGINE'], "
        "'host': s.DATABASES['default']['HOST'], "
        "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'broker': s.CELERY_BROKER_URL, "
        "'hosts': s.ALLOWED_HOSTS, 'eager': s.CELERY_TASK_ALWAYS_EAGER}))"
    )
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "pos.settings",
             "POS_VAR_DIR": str(ROOT / "var")},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["debug"] is False
    assert seen["engine"] == "django.db.backends.postgresql"
    assert seen["host"] == "db"
    assert seen["layer"] == "pos.streams.channel_layer.RedisChannelLayer"
    assert seen["broker"] == "redis://redis:6379/0"
    assert seen["eager"] is False
    assert seen["hosts"] == ["pos.example.com", "localhost"]


def test_settings_refuse_to_start_without_the_secret_key_compose_requires():
    env = _compose_environment("web")
    env["DJANGO_SECRET_KEY"] = ""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env={**clean, **env, "DJANGO_SETTINGS_MODULE": "pos.settings"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_compose_database_url_matches_the_db_service():
    services = compose()["services"]
    url = _compose_environment("web")["DATABASE_URL"]
    db_env = {k: interpolate(v, {"POSTGRES_PASSWORD": "pw"})
              for k, v in service_env(services["db"]).items()}
    assert url == f"postgres://{db_env['POSTGRES_USER']}:pw@db:5432/{db_env['POSTGRES_DB']}"
    assert _compose_environment("web")["REDIS_URL"].startswith("redis://redis:6379/")


# --- Dockerfile ------------------------------------------------------------------------------
def test_dockerfile_base_user_and_build_steps():
    instructions = dockerfile_instructions()
    keywords = [k for k, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [arg for k, arg in instructions if k == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert keywords.index("USER") < keywords.index("CMD")
    runs = " ".join(arg for k, arg in instructions if k == "RUN")
    assert "pip install ." in runs
    assert "manage.py collectstatic --noinput" in runs
    # Nothing secret is baked into the image's environment.
    env_text = " ".join(arg for k, arg in instructions if k in ("ENV", "ARG"))
    for secret in SECRETS:
        assert secret not in env_text


def test_dockerfile_cmd_runs_uvicorn_on_the_exposed_port_with_several_workers():
    instructions = dict(dockerfile_instructions())
    assert "ENTRYPOINT" not in instructions
    argv = json.loads(instructions["CMD"])
    assert check_invocation(argv) == "uvicorn"
    assert argv[argv.index("--port") + 1] == instructions["EXPOSE"]
    assert int(argv[argv.index("--workers") + 1]) >= 2
    health = json.loads(instructions["HEALTHCHECK"].split("CMD", 1)[1])
    assert f"localhost:{instructions['EXPOSE']}/healthz" in " ".join(health)
    web = compose()["services"]["web"]
    assert [str(p).rsplit(":", 1)[-1] for p in web["ports"]] == [instructions["EXPOSE"]]


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "var", ".env"} <= ignored
    # What the build needs must stay in the context.
    for needed in ("pyproject.toml", "manage.py", "asgi.py", "pos"):
        assert needed not in ignored


def test_deploy_doc_lists_every_variable_settings_read():
    doc = (ROOT / "docs" / "deploy.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", doc, flags=re.MULTILINE))
    assert documented == settings_env_names()
