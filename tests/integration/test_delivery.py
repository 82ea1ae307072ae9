"""Delivery: the container image, the docker-compose CI example and the helm
charts (docker/, deps/entrypoint.sh, helm/).

The image is built and the compose example run for real, under podman, by
tests/containers/run.sh (once per tests/run-all.sh, not here). No Kubernetes
runs here, so the charts are never installed. What this file proves without
a container engine is:
- the Dockerfile builds with deps/install.sh --build and the meson commands
  of tests/run-all.sh, the --build set holds every package meson.build
  reads, and the runtime stage installs the packages that hold every
  library the binary links and cleans apt's caches in the same layer;
- deps/install.sh's package sets and options; the container test skips with
  a reason where podman is missing;
- the entrypoint, run outside a container (H1MOCK_BIN and its directories
  from the environment), maps the image's arguments and variables to
  h1mock's options, picks /config or /app/provision, execs h1mock and
  answers the HEALTHCHECK;
- docker-compose.yml is valid for Debian's docker-compose, and the steps of
  its stand-in system under test (docker/sut.sh) pass against h1mock started
  the way the compose file starts it;
- the charts parse, every value a template reads exists, every helper is
  defined, and ct-h1mock's test script passes against local h1mocks serving
  the chart's provisions. With a `helm` binary (on PATH, or $HELM), the
  charts are also linted and rendered, and the rendered Deployment's
  environment is run locally, ConfigMap update included.

README: "Docker and docker-compose", "Kubernetes with helm".
"""

import base64
import fnmatch
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import (BIN, NS_V4, ROOT, Server, body_of, http, in_netns, netns_problem, ns_run,
                      wait_until, watcher_quiet)

DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "docker-compose.yml"
SUT = ROOT / "docker" / "sut.sh"
ENTRYPOINT = ROOT / "deps" / "entrypoint.sh"
INSTALL = ROOT / "deps" / "install.sh"
RUN_ALL = ROOT / "tests" / "run-all.sh"
CONTAINER_TEST = ROOT / "tests" / "containers" / "run.sh"
FUZZ_RUN = ROOT / "tests" / "fuzz" / "run.sh"
SUT_DOCKERFILE = ROOT / "docker" / "sut.Dockerfile"
CHART = ROOT / "helm" / "h1mock"
CT_CHART = ROOT / "helm" / "ct-h1mock"
CT_TEST = CT_CHART / "files" / "ct-test.sh"
SCRIPTS = [ENTRYPOINT, SUT, CT_TEST, INSTALL, CONTAINER_TEST, RUN_ALL, FUZZ_RUN]
# Variables the entrypoint or the scripts read; none may leak in from the
# environment the tests run in.
SCRIPT_VARS = {"TRAFFIC_PORT", "ADMIN_PORT", "VERBOSE", "IPV6", "MOCK_URL", "MOCK_ADMIN_URL",
               "PROVISIONS", "PROVISION", "ADMIN_TOKEN", "WAIT_SECONDS", "CT_FILES"}
START_TIMEOUT = 15.0


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("H1MOCK_") and k not in SCRIPT_VARS}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def free_ports(n=1):
    """Ports that were free a moment ago (for the tests that must know the
    ports before h1mock starts: the HEALTHCHECK's). Held together while
    chosen, so the n ports differ."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def configmap_volume(base, files, version="v1"):
    """A directory laid out as the kubelet mounts a ConfigMap: timestamped
    folder, ..data link to it, one link per key into ..data."""
    base.mkdir(parents=True, exist_ok=True)
    ts = base / ("..2026_01_01_" + version)
    ts.mkdir()
    for name, text in files.items():
        (ts / name).write_text(text)
    os.symlink(ts.name, base / "..data")
    for name in files:
        os.symlink("..data/" + name, base / name)
    return base


def configmap_update(base, version, files):
    """The kubelet's atomic update: new folder, ..data swapped by rename."""
    old = os.readlink(base / "..data")
    ts = base / ("..2026_01_01_" + version)
    ts.mkdir()
    for name, text in files.items():
        (ts / name).write_text(text)
    os.symlink(ts.name, base / "..data_tmp")
    os.rename(base / "..data_tmp", base / "..data")
    for name in files:
        if not os.path.islink(base / name):
            os.symlink("..data/" + name, base / name)
    shutil.rmtree(base / old)


def text_provision(text):
    return ('function registerRules() app.get("/who", function() return %s end) end\n'
            % json.dumps(text))



# --------------------------------------------------------------------------
# the entrypoint, run outside a container
# --------------------------------------------------------------------------

class Entrypoint:
    """Runs deps/entrypoint.sh with its directories in a temp folder."""

    def __init__(self, tmp_path, bin_path=BIN):
        self.tmp = tmp_path
        self.bin = str(bin_path)
        self.provisions = tmp_path / "app-provision"
        self.config = tmp_path / "config"
        self.run_dir = tmp_path / "run"
        self.run_dir.mkdir(exist_ok=True)
        self.servers = []

    def env(self, **extra):
        base = {"H1MOCK_BIN": self.bin, "H1MOCK_PROVISIONS": self.provisions,
                "H1MOCK_CONFIG_DIR": self.config, "H1MOCK_RUN_DIR": self.run_dir}
        base.update(extra)
        return clean_env(**base)

    def run(self, *args, timeout=20, **env):
        return subprocess.run([str(ENTRYPOINT), *args], env=self.env(**env),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def start(self, *args, wrap=(), **env):
        """Starts h1mock through the entrypoint on loopback; ports 0 unless given.
        `wrap` goes in front of the command (in_netns: a namespace of its own)."""
        env.setdefault("H1MOCK_ADDRESS", "127.0.0.1")
        env.setdefault("TRAFFIC_PORT", 0)
        env.setdefault("ADMIN_PORT", 0)
        proc = subprocess.Popen([*wrap, str(ENTRYPOINT), *args], env=self.env(**env),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        srv = Server(proc, self.provisions)
        self.servers.append(srv)
        m = srv.wait_log(r"traffic on (\S+):(\d+)", START_TIMEOUT)
        srv.port = int(m.group(2))
        m = srv.wait_log(r"admin on (\S+):(\d+)", START_TIMEOUT)
        srv.admin_port = int(m.group(2))
        return srv

    def stop_all(self):
        for srv in self.servers:
            srv.stop()


@pytest.fixture
def entrypoint(tmp_path):
    ep = Entrypoint(tmp_path)
    yield ep
    ep.stop_all()


@pytest.fixture
def stub(tmp_path):
    """An Entrypoint whose "h1mock" prints its arguments, one per line, and
    leaves a mark that it ran."""
    fake = tmp_path / "fake-h1mock"
    mark = tmp_path / "fake-ran"
    fake.write_text('#!/bin/sh\n: > "%s"\nfor a in "$@"; do printf "%%s\\n" "$a"; done\n' % mark)
    fake.chmod(0o755)
    ep = Entrypoint(tmp_path, fake)
    ep.mark = mark
    return ep


def argv_of(res):
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_entrypoint_is_executable_posix_sh():
    assert os.access(ENTRYPOINT, os.X_OK)
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_as_posix_sh(script):
    res = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_shellcheck_clean(script):
    res = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_entrypoint_positional_arguments_of_the_flask_image(stub):
    argv = argv_of(stub.run("9000", "9074", "verbose", "true"))
    assert argv == ["--provisions", str(stub.provisions), "--port", "9000",
                    "--admin-port", "9074", "--verbose=1", "--address", "::"]


def test_entrypoint_empty_positional_arguments_mean_not_given(stub):
    argv = argv_of(stub.run("", "", "", ""))
    assert argv == ["--provisions", str(stub.provisions)]


def test_entrypoint_short_variables(stub):
    argv = argv_of(stub.run(TRAFFIC_PORT=9001, ADMIN_PORT=9075, VERBOSE="off", IPV6="no"))
    assert argv == ["--provisions", str(stub.provisions), "--port", "9001",
                    "--admin-port", "9075", "--verbose=0"]
    argv = argv_of(stub.run(VERBOSE="Yes", IPV6="ON"))
    assert argv[2:] == ["--verbose=1", "--address", "::"]


def test_entrypoint_h1mock_variables_beat_short_ones(stub):
    # h1mock reads its own variables: the entrypoint adds nothing for them
    argv = argv_of(stub.run(H1MOCK_PORT=7000, TRAFFIC_PORT=9001, H1MOCK_ADMIN_PORT=7074,
                            ADMIN_PORT=9075, H1MOCK_VERBOSE=1, VERBOSE=0,
                            H1MOCK_ADDRESS="127.0.0.1", IPV6=1))
    assert argv == ["--provisions", str(stub.provisions)]


def test_entrypoint_arguments_beat_variables(stub):
    argv = argv_of(stub.run("9002", "9076", "0", "1", H1MOCK_PORT=7000, TRAFFIC_PORT=9001,
                            H1MOCK_ADMIN_PORT=7074, VERBOSE=1, H1MOCK_ADDRESS="127.0.0.1"))
    assert argv == ["--provisions", str(stub.provisions), "--port", "9002",
                    "--admin-port", "9076", "--verbose=0", "--address", "::"]


def test_entrypoint_passes_options_through_last(stub):
    argv = argv_of(stub.run("9000", "--max-body", "2M", "--port=1234"))
    assert argv == ["--provisions", str(stub.provisions), "--port", "9000",
                    "--max-body", "2M", "--port=1234"]


@pytest.mark.parametrize("args,env,message", [
    (["http"], {}, "argument 1 (traffic port): 'http' is not a port"),
    (["8000", "70000"], {}, "argument 2 (admin port): '70000' is not a port"),
    (["8000", "8074", "loud"], {}, "argument 3 (verbose): 'loud' is not a switch"),
    (["8000", "8074", "", "v6"], {}, "argument 4 (ipv6): 'v6' is not a switch"),
    ([], {"TRAFFIC_PORT": "abc"}, "TRAFFIC_PORT: 'abc' is not a port"),
    ([], {"TRAFFIC_PORT": "-1"}, "TRAFFIC_PORT: '-1' is not a port"),
    ([], {"ADMIN_PORT": "123456"}, "ADMIN_PORT: '123456' is not a port"),
    ([], {"VERBOSE": "maybe"}, "VERBOSE: 'maybe' is not a switch"),
    ([], {"IPV6": "2"}, "IPV6: '2' is not a switch"),
])
def test_entrypoint_refuses_bad_values_and_starts_nothing(stub, args, env, message):
    res = stub.run(*args, **env)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "h1mock-entrypoint: " + message in res.stderr
    assert not stub.mark.exists()
    assert res.stdout == ""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["--check", "a.lua", "b.lua"]])
def test_entrypoint_help_version_check_go_straight_to_h1mock(stub, args):
    stub.config.mkdir()
    (stub.config / "initial.lua").write_text("x")
    res = stub.run(*args, TRAFFIC_PORT=9000)
    assert argv_of(res) == args
    assert not stub.provisions.exists()  # no copying, no folders made


def test_entrypoint_missing_binary(tmp_path):
    ep = Entrypoint(tmp_path, tmp_path / "nowhere" / "h1mock")
    res = ep.run()
    assert res.returncode == 127
    assert "h1mock binary '%s' is missing or not executable (set H1MOCK_BIN)" % ep.bin in res.stderr


def test_entrypoint_serves_a_configmap_directly_when_it_is_the_only_source(stub):
    configmap_volume(stub.config, {"initial.lua": "a", "other.lua": "b"})
    stub.provisions.mkdir()
    res = stub.run()
    assert argv_of(res) == ["--provisions", str(stub.config)]
    assert "serving the provisions of %s directly" % stub.config in res.stderr
    assert list(stub.provisions.iterdir()) == []


def test_entrypoint_copies_a_configmap_beside_other_provisions(stub):
    configmap_volume(stub.config, {"initial.lua": "from config", "extra.lua": "extra"})
    stub.provisions.mkdir()
    (stub.provisions / "initial.lua").write_text("from image")
    (stub.provisions / "mine.lua").write_text("mine")
    res = stub.run()
    assert argv_of(res) == ["--provisions", str(stub.provisions)]
    assert "copied the provisions of %s into %s" % (stub.config, stub.provisions) in res.stderr
    names = sorted(p.name for p in stub.provisions.iterdir())
    assert names == ["extra.lua", "initial.lua", "mine.lua"]  # no ..data
    assert (stub.provisions / "initial.lua").read_text() == "from config"
    assert not (stub.provisions / "initial.lua").is_symlink()


def test_entrypoint_ignores_an_empty_configmap(stub):
    configmap_volume(stub.config, {})  # only ..data and its folder
    res = stub.run()
    assert argv_of(res) == ["--provisions", str(stub.provisions)]
    assert stub.provisions.is_dir()  # made, so that h1mock starts on the built-in default
    assert "serving" not in res.stderr and "copied" not in res.stderr


def test_entrypoint_explicit_provisions_option_is_left_alone(stub):
    configmap_volume(stub.config, {"initial.lua": "a"})
    res = stub.run("--provisions", "/somewhere")
    assert argv_of(res) == ["--provisions", "/somewhere"]
    assert not stub.provisions.exists()
    assert res.stderr == ""


def test_entrypoint_copy_failure_is_reported_and_starts_nothing(stub):
    configmap_volume(stub.config, {"initial.lua": "a"})
    stub.provisions.mkdir()
    (stub.provisions / "mine.lua").write_text("mine")
    (stub.provisions / "initial.lua").mkdir()  # a file cannot replace it
    res = stub.run()
    assert res.returncode == 2
    assert "cannot copy %s/initial.lua into %s" % (stub.config, stub.provisions) in res.stderr
    assert not stub.mark.exists()


@pytest.mark.parametrize("args,env,url", [
    ([], {}, "http://127.0.0.1:8074/healthz"),
    (["8000", "9999"], {}, "http://127.0.0.1:9999/healthz"),
    ([], {"ADMIN_PORT": "9100"}, "http://127.0.0.1:9100/healthz"),
    ([], {"H1MOCK_ADMIN_PORT": "9101", "ADMIN_PORT": "9100"}, "http://127.0.0.1:9101/healthz"),
    (["--admin-port", "9102"], {}, "http://127.0.0.1:9102/healthz"),
    (["--admin-port=9103"], {}, "http://127.0.0.1:9103/healthz"),
    ([], {"IPV6": "1"}, "http://127.0.0.1:8074/healthz"),
    ([], {"H1MOCK_ADDRESS": "10.1.2.3"}, "http://10.1.2.3:8074/healthz"),
    (["--address", "::1"], {}, "http://[::1]:8074/healthz"),
])
def test_entrypoint_notes_the_admin_url_for_the_healthcheck(stub, args, env, url):
    argv_of(stub.run(*args, **env))
    assert (stub.run_dir / "h1mock-admin.url").read_text() == url + "\n"


def test_entrypoint_notes_no_admin_url_for_an_ephemeral_port(stub):
    (stub.run_dir / "h1mock-admin.url").write_text("http://127.0.0.1:1/healthz\n")
    argv_of(stub.run(ADMIN_PORT=0))
    assert not (stub.run_dir / "h1mock-admin.url").exists()


def test_entrypoint_execs_h1mock_which_serves_and_stops_on_sigterm(entrypoint):
    srv = entrypoint.start()
    # exec: the process started is h1mock itself, so signals reach it
    assert os.readlink("/proc/%d/exe" % srv.proc.pid) == os.path.realpath(BIN)
    assert http("GET", srv.admin_url + "/healthz").status_code == 200
    r = http("GET", srv.url + "/anything")
    assert r.status_code == 404  # the built-in default: no provisions anywhere
    assert entrypoint.provisions.is_dir()
    assert srv.stop(signal.SIGTERM) == 0
    assert "stopped" in srv.log


def test_entrypoint_configmap_update_applies_without_restart(entrypoint):
    configmap_volume(entrypoint.config, {"initial.lua": text_provision("cm v1")})
    entrypoint.provisions.mkdir()
    srv = entrypoint.start()
    assert "serving the provisions of %s directly" % entrypoint.config in srv.log
    assert http("GET", srv.url + "/who").text == "cm v1"
    pid = srv.proc.pid
    watcher_quiet(srv)
    configmap_update(entrypoint.config, "v2", {"initial.lua": text_provision("cm v2")})
    wait_until(lambda: body_of(srv, "/who") == "cm v2", 10, 0.1, "the ConfigMap's v2 served")
    assert srv.proc.poll() is None and srv.proc.pid == pid
    assert list(entrypoint.provisions.iterdir()) == []


def test_entrypoint_copied_configmap_is_served(entrypoint):
    configmap_volume(entrypoint.config, {"initial.lua": text_provision("copied")})
    entrypoint.provisions.mkdir()
    (entrypoint.provisions / "mine.lua").write_text(text_provision("mine"))
    srv = entrypoint.start()
    assert http("GET", srv.url + "/who").text == "copied"
    assert (entrypoint.provisions / "initial.lua").read_text() == text_provision("copied")


def test_healthcheck_follows_the_server(entrypoint):
    port, = free_ports(1)
    srv = entrypoint.start("0", str(port))
    assert srv.admin_port == port
    note = entrypoint.run_dir / "h1mock-admin.url"
    assert note.read_text() == "http://127.0.0.1:%d/healthz\n" % port
    assert entrypoint.run("healthcheck").returncode == 0
    # without the note, the variables say where to look
    note.unlink()
    assert entrypoint.run("healthcheck", ADMIN_PORT=port).returncode == 0
    assert entrypoint.run("healthcheck", H1MOCK_ADMIN_PORT=port, ADMIN_PORT=1).returncode == 0
    assert entrypoint.run("healthcheck", ADMIN_PORT=srv.port).returncode != 0  # traffic: 404
    note.write_text("http://127.0.0.1:%d/healthz\n" % port)
    assert srv.stop() == 0
    res = entrypoint.run("healthcheck")
    assert res.returncode != 0
    assert "curl" in res.stderr


# --------------------------------------------------------------------------
# the Dockerfile
# --------------------------------------------------------------------------

def dockerfile_stages():
    """[(image, stage name, [(INSTRUCTION, arguments), ...]), ...]."""
    logical, cur = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1].strip() + " "
            continue
        logical.append(cur + s)
        cur = ""
    assert cur == "", "a continuation line ends the Dockerfile"
    stages = []
    for line in logical:
        instr, _, args = line.partition(" ")
        if instr.upper() == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.I)
            stages.append((m.group(1), m.group(2), []))
        else:
            assert stages, "instruction before FROM: " + line
            stages[-1][2].append((instr.upper(), args.strip()))
    return stages


def instructions(stage, name):
    return [args for instr, args in stage[2] if instr == name]


def install_list(*options):
    """The packages deps/install.sh would install with these options."""
    res = subprocess.run([str(INSTALL), "--list", *options], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def runtime_packages():
    return install_list("--runtime")


def package_of(path):
    """The Debian package that owns path (or the file a link of it names)."""
    for candidate in (path, os.path.realpath(path), "/usr" + str(path)):
        res = subprocess.run(["dpkg", "-S", str(candidate)], capture_output=True, text=True)
        if res.returncode == 0:
            return res.stdout.split(":")[0]
    return None


needs_dpkg = pytest.mark.skipif(not (shutil.which("dpkg") and shutil.which("pkg-config")),
                                reason="dpkg or pkg-config missing")


def test_dockerfile_has_two_bookworm_slim_stages():
    stages = dockerfile_stages()
    assert [(image, name) for image, name, _ in stages] == [
        ("debian:bookworm-slim", "build"), ("debian:bookworm-slim", "runtime")]


def test_build_stage_runs_install_sh_and_the_ci_meson_commands():
    runall = RUN_ALL.read_text()
    # what CI proves: the plain build dir, set up without options, compiled
    builds = re.search(r'^builds="([^"]+)"', runall, re.M).group(1).split()
    plain = builds[0]
    assert re.search(r'^\s*setup "\$b" \|\| exit', runall, re.M)
    assert 'meson setup "$dir" "$@"' in runall
    assert 'meson compile -C "$b"' in runall
    # and warnings are errors in every build because meson.build says so
    assert re.search(r"'werror=true'", (ROOT / "meson.build").read_text())

    build = dockerfile_stages()[0]
    runs = instructions(build, "RUN")
    steps = [step.strip() for run in runs for step in run.split("&&")]
    assert "deps/install.sh --build" in steps
    setup = [s for s in steps if s.startswith("meson setup ")]
    assert len(setup) == 1
    words = setup[0].split()
    assert words[:3] == ["meson", "setup", plain]
    assert set(words[3:]) <= {"-Dbuildtype=release"}, "options that CI does not use: " + setup[0]
    assert "meson compile -C %s" % plain in steps
    assert "meson test -C %s --suite unit --print-errorlogs" % plain in steps
    order = [steps.index("deps/install.sh --build"), steps.index(setup[0]),
             steps.index("meson compile -C %s" % plain)]
    assert order == sorted(order)
    # the sources arrive after the dependency layer, before the build
    copies = instructions(build, "COPY")
    assert copies == ["deps/install.sh deps/install.sh", ". ."]
    assert not re.search(r"werror\s*=\s*false|warning_level", DOCKERFILE.read_text())


def test_runtime_stage_is_small_non_root_and_healthchecked():
    runtime = dockerfile_stages()[1]
    copies = instructions(runtime, "COPY")
    assert "deps/install.sh /tmp/install.sh" in copies
    assert "--from=build /src/build/h1mock /usr/local/bin/h1mock" in copies
    assert "deps/entrypoint.sh /usr/local/bin/h1mock-entrypoint.sh" in copies
    assert len(copies) == 3
    runs = " && ".join(instructions(runtime, "RUN"))
    assert "/tmp/install.sh --runtime" in runs
    assert "meson" not in runs
    # apt's caches leave in the layer that filled them: a later RUN could
    # only hide them (on a base without Docker's apt clean-up, 98 MB)
    install = [r for r in instructions(runtime, "RUN") if "/tmp/install.sh --runtime" in r]
    assert len(install) == 1
    steps = [step.strip() for step in install[0].split("&&")]
    assert steps[0] == "/tmp/install.sh --runtime"
    assert "apt-get clean" in steps
    assert "rm -rf /tmp/install.sh /var/lib/apt/lists/*" in steps
    user = instructions(runtime, "USER")
    assert len(user) == 1
    uid = user[0].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric: runAsNonRoot can verify it
    assert "--uid %s" % uid in runs
    assert instructions(runtime, "EXPOSE") == ["8000 8074"]
    health = instructions(runtime, "HEALTHCHECK")
    assert len(health) == 1
    assert health[0].endswith('CMD ["/usr/local/bin/h1mock-entrypoint.sh", "healthcheck"]')
    assert instructions(runtime, "ENTRYPOINT") == ['["/usr/local/bin/h1mock-entrypoint.sh"]']
    assert instructions(runtime, "WORKDIR") == ["/app"]
    assert "mkdir -p /app/provision" in runs and "chown h1mock:h1mock /app/provision" in runs


def test_runtime_packages_hold_every_library_the_binary_links():
    if not (shutil.which("readelf") and shutil.which("ldd") and shutil.which("dpkg")):
        pytest.skip("readelf, ldd or dpkg missing")
    packages = set(runtime_packages())
    assert "curl" in packages  # the HEALTHCHECK
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        subprocess.run(["readelf", "-d", BIN], capture_output=True,
                                       text=True, check=True).stdout)
    # a sanitizer build links its runtimes; the image's release build does not
    needed = [n for n in needed if not re.match(r"lib(asan|ubsan|lsan|tsan)\.", n)]
    assert any(n.startswith("liblua5.4") for n in needed), needed
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
        ["ldd", BIN], capture_output=True, text=True, check=True).stdout, re.M))
    for lib in needed:
        path = paths.get(lib) or next((l for l in paths.values() if l.endswith("/" + lib)), None)
        if path is None and lib.startswith("ld-linux"):
            path = "/lib64/" + lib
        assert path, "ldd does not resolve " + lib
        owner = package_of(path)
        assert owner, "no package owns " + path
        assert owner in packages | {"libc6"}, \
            "%s comes from %s, which deps/install.sh --runtime does not install" % (lib, owner)


def test_build_stage_cleans_apt_in_the_install_layer():
    runs = instructions(dockerfile_stages()[0], "RUN")
    install = [r for r in runs if "deps/install.sh" in r]
    assert len(install) == 1
    steps = [step.strip() for step in install[0].split("&&")]
    assert steps == ["deps/install.sh --build", "apt-get clean", "rm -rf /var/lib/apt/lists/*"]


def test_install_sets_build_is_in_the_default_and_lacks_the_test_toolchain():
    build, default = set(install_list("--build")), set(install_list())
    runtime = set(install_list("--runtime"))
    assert build < default
    assert "chromium" in default  # the CORS test's browser
    assert {"build-essential", "meson", "ninja-build", "pkg-config", "python3"} <= build
    for tool in ("python3-pytest", "clang", "clang-format", "docker-compose", "shellcheck",
                 "curl", "podman", "chromium"):
        assert tool not in build, tool
    assert {"liblua5.4-0", "libuv1", "curl"} == runtime
    assert not runtime & {"meson", "build-essential", "python3"}
    # options add to the default set, and combine
    assert set(install_list("--containers")) == default | {
        "podman", "runc", "netavark", "aardvark-dns", "iptables", "mmdebstrap"}
    assert {"wrk", "nginx"} <= set(install_list("--bench", "--containers"))
    assert set(install_list("--build", "--runtime")) == build | runtime


@needs_dpkg
def test_build_set_holds_what_meson_build_reads():
    """Every dependency() of meson.build, the llhttp sources' folder and the
    python of the embed scripts come from a package of the --build set: a
    library added to the build lands in the Docker build stage too."""
    build = set(install_list("--build"))
    meson = (ROOT / "meson.build").read_text()
    names = re.findall(r"dependency\('([^']+)'", meson)
    assert {"lua5.4", "libuv"} <= set(names)
    for name in names:
        res = subprocess.run(["pkg-config", "--path", name], capture_output=True, text=True)
        assert res.returncode == 0, "pkg-config does not know %s: %s" % (name, res.stderr)
        owner = package_of(res.stdout.strip())
        assert owner in build, "%s comes from %s, not in deps/install.sh --build" % (name, owner)
    options = (ROOT / "meson_options.txt").read_text()
    for option in ("llhttp_dir", "llhttp_include"):
        folder = re.search(r"option\('%s'.*?value : '([^']+)'" % option, options, re.S).group(1)
        assert package_of(folder) in build, folder
    for tool in ("meson", "ninja"):
        assert package_of(shutil.which(tool)) in build, tool
    # the compiler (gcc through build-essential) and the embed scripts' python3
    assert {"build-essential", "python3"} <= build


def test_install_sh_refuses_an_unknown_option_and_installs_nothing():
    res = subprocess.run([str(INSTALL), "--list", "--nope"], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stdout == ""
    assert "install.sh: unknown option '--nope' (try --help)" in res.stderr
    res = subprocess.run([str(INSTALL), "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    for option in ("--build", "--runtime", "--bench", "--containers", "--list"):
        assert "deps/install.sh %s" % option in res.stdout, option
    assert "set -eu" not in res.stdout


def test_dockerignore_keeps_build_dirs_and_git_out_but_not_the_sources():
    patterns = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
                if l.strip() and not l.startswith("#")]

    def ignored(path):
        return any(fnmatch.fnmatch(path, p.rstrip("/")) or fnmatch.fnmatch(path.split("/")[0], p)
                   for p in patterns)

    for path in ["build", "build-asan", "build-dlv", ".git"]:
        assert ignored(path), path
    needed = ["deps/install.sh", "deps/entrypoint.sh", "meson.build", "meson_options.txt",
              "src/main.c", "lua/h1mock.lua", "tests/meson.build", "tests/unit",
              "tests/fuzz/regression", "provisions/foo-bar.lua"]
    for path in needed:
        assert (ROOT / path).exists(), path
        assert not ignored(path), path
    for stage in dockerfile_stages():
        for args in instructions(stage, "COPY"):
            if not args.startswith("--from"):
                src = args.split()[0]
                assert (ROOT / src).exists(), src
                assert src == "." or not ignored(src), src


# --------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------

needs_compose = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                   reason="docker-compose (Debian package) is not installed")


def compose_config(path=COMPOSE, **env):
    return subprocess.run(["docker-compose", "-f", str(path), "config"],
                          env=clean_env(**env), capture_output=True, text=True, timeout=60)


@needs_compose
def test_compose_file_is_valid():
    res = compose_config()
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    mock, sut = cfg["services"]["h1mock"], cfg["services"]["sut"]
    assert Path(mock["build"]["context"]) == ROOT
    assert (ROOT / mock["build"]["dockerfile"]) == DOCKERFILE
    assert "%s:/app/provision:ro" % (ROOT / "provisions") in mock["volumes"]
    assert mock["healthcheck"]["test"] == ["CMD", "/usr/local/bin/h1mock-entrypoint.sh",
                                           "healthcheck"]
    assert sorted((p["published"], p["target"]) for p in mock["ports"]) == [(8000, 8000),
                                                                            (8074, 8074)]
    assert sut["depends_on"] == {"h1mock": {"condition": "service_healthy"}}
    # built here from Debian's curl: the example pulls nothing from a registry
    assert Path(sut["build"]["context"]) == COMPOSE.parent
    assert COMPOSE.parent / sut["build"]["dockerfile"] == SUT_DOCKERFILE
    for name, service in cfg["services"].items():
        assert "build" in service and service["image"].endswith(":local"), name
    assert sut["entrypoint"] == ["/bin/sh", "/sut/sut.sh"]
    assert "%s:/sut/sut.sh:ro" % SUT in sut["volumes"]
    assert "%s:%s:ro" % (ROOT / "provisions", sut["environment"]["PROVISIONS"]) in sut["volumes"]
    assert sut["environment"]["MOCK_URL"] == "http://h1mock:%s" % mock["environment"]["TRAFFIC_PORT"]
    assert sut["environment"]["MOCK_ADMIN_URL"] == "http://h1mock:%s" % mock["environment"]["ADMIN_PORT"]
    assert (ROOT / "provisions" / (sut["environment"]["PROVISION"] + ".lua")).is_file()


@needs_compose
def test_compose_host_ports_follow_variables():
    res = compose_config(MOCK_TRAFFIC_PORT=18000, MOCK_ADMIN_PORT=18074)
    assert res.returncode == 0, res.stderr
    ports = yaml.safe_load(res.stdout)["services"]["h1mock"]["ports"]
    assert sorted((p["published"], p["target"]) for p in ports) == [(18000, 8000), (18074, 8074)]


@needs_compose
def test_compose_config_refuses_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("condition: service_healthy",
                                                  "condition: service_happy"))
    res = compose_config(broken)
    assert res.returncode != 0
    assert "service_happy" in res.stderr


def test_sut_image_is_curl_on_the_images_base():
    lines = [l.strip() for l in SUT_DOCKERFILE.read_text().splitlines()
             if l.strip() and not l.lstrip().startswith("#")]
    base = dockerfile_stages()[1][0]
    assert lines[0] == "FROM " + base
    assert sum(l.startswith("FROM ") for l in lines) == 1
    text = " ".join(lines)
    assert re.search(r"apt-get install -y -q --no-install-recommends curl\b", text)
    assert "apt-get clean" in text and "rm -rf /var/lib/apt/lists/*" in text
    user = [l.split()[1] for l in lines if l.startswith("USER ")]
    assert user and user[0].split(":")[0] != "0"


# --------------------------------------------------------------------------
# the container test (tests/containers/run.sh)
# --------------------------------------------------------------------------

def test_run_all_runs_the_container_test_once_and_not_when_quick():
    runall = RUN_ALL.read_text()
    assert runall.count("tests/containers/run.sh >") == 1
    loop_end = runall.index("\ndone\n", runall.index("for b in $builds"))
    assert runall.index("tests/containers/run.sh >") > loop_end, "inside the builds loop"
    quick = re.search(r'if \[ "\$\{1:-\}" = "--quick" \]; then\n(.*?)\nfi', runall, re.S)
    assert quick and 'containers=""' in quick.group(1)
    # CI reads the last line: exactly "N passed, N failed".
    assert runall.rstrip().splitlines()[-2:] == ['echo "$passed passed, $failed failed"',
                                                 "exit $status"]
    assert re.search(r'^echo "\$skipped skipped"$', runall, re.M)


def test_container_test_skips_with_its_reason_without_podman(tmp_path):
    """Where podman is missing, the test says so, counts one skip and
    changes nothing (no temp folder, no lock taken)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "pwd"):  # what the script needs before its checks
        if shutil.which(tool):
            os.symlink(shutil.which(tool), bin_dir / tool)
    before = set(os.listdir(tmp_path))
    res = subprocess.run(["/bin/sh", str(CONTAINER_TEST)], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL,
                         env=dict(clean_env(), PATH=str(bin_dir), TMPDIR=str(tmp_path)))
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines == [
        "containers: skipped: podman is not installed (deps/install.sh --containers installs"
        " what this test needs)",
        "0 passed, 0 failed, 1 skipped"]
    assert set(os.listdir(tmp_path)) == before


CHECK_SKIPS = ROOT / "tests" / "check-skips.sh"
MESON_UNITS = ROOT / "tests" / "meson-units.py"


def test_run_all_fails_on_a_skip_that_is_not_declared(tmp_path):
    """A declared skip passes quietly; any other skip is named and fails,
    and the run-all script feeds it every suite's skips."""
    declared = "test_delivery.py: no helm binary (PATH or $HELM)"
    assert declared in (ROOT / "tests" / "expected-skips.txt").read_text().splitlines()
    ok = subprocess.run([str(CHECK_SKIPS)], input=declared + "\n", capture_output=True,
                        text=True, timeout=30)
    assert (ok.returncode, ok.stdout) == (0, "")
    lost = "test_rest.py: server did not start"
    bad = subprocess.run([str(CHECK_SKIPS)], input="%s\n%s\n" % (declared, lost),
                         capture_output=True, text=True, timeout=30)
    assert (bad.returncode, bad.stdout) == (1, "unexpected skip: %s\n" % lost)
    # a comment of the list is not a skip it allows
    comment = tmp_path / "expected"
    comment.write_text("# test_x.py: why\n\n")
    res = subprocess.run([str(CHECK_SKIPS), str(comment)], input="# test_x.py: why\n",
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    runall = RUN_ALL.read_text()
    assert "tests/check-skips.sh <\"$skiplog\"" in runall
    assert runall.count('>>"$skiplog"') == 4  # meson, pytest, fuzz, containers
    assert "pytest -q -rs" in runall  # pytest prints each skip's reason


def test_run_all_runs_the_unit_tests_through_meson_and_counts_a_crash(tmp_path):
    """The unit programs run under `meson test`; a program that dies
    before its result line counts as a failure, not as nothing."""
    runall = RUN_ALL.read_text()
    assert 'meson test -C "$b" --suite unit --no-rebuild' in runall
    assert '"$b"/tests/test_*' not in runall
    logs = tmp_path / "meson-logs"
    logs.mkdir()
    entries = [
        {"name": "h1mock:unit / router", "result": "OK", "returncode": 0,
         "stdout": "ok 1 - a\nok 2 - b\n2 passed, 0 failed\n"},
        {"name": "h1mock:unit / store", "result": "FAIL", "returncode": -6,
         "stdout": "ok 1 - a\nnot ok 2 - b\n"},
        {"name": "h1mock:unit / json", "result": "SKIP", "returncode": 77, "stdout": ""},
    ]
    (logs / "testlog.json").write_text("".join(json.dumps(e) + "\n" for e in entries))
    res = subprocess.run([str(MESON_UNITS), str(tmp_path)], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 1
    assert res.stdout.splitlines() == [
        "router: 2 passed, 0 failed",
        "not ok 2 - b",
        "not ok store: FAIL (exit -6)",
        "store: 0 passed, 1 failed",
        "skipped unit json",
        "2 passed, 1 failed, 1 skipped"]


def test_containers_conf_holds_what_podman_needs_here():
    conf = (ROOT / "tests" / "containers" / "containers.conf").read_text()
    sections, current = {}, None
    for line in conf.splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    assert sections["containers"]["default_ulimits"] == "[]"
    assert sections["engine"]["cgroup_manager"] == '"cgroupfs"'
    text = CONTAINER_TEST.read_text()
    assert 'CONTAINERS_CONF="$ROOT/tests/containers/containers.conf"' in text
    assert "--runtime runc" in text  # crun refuses this machine's hybrid cgroups
    # private storage and networks under the temp folder: nothing under /etc
    for flag in ("--root", "--runroot", "--tmpdir", "--network-config-dir"):
        assert re.search(r'%s "\$tmp/' % flag, text), flag
    assert not re.search(r"(>|tee|cp|mv|rm -rf)\s+\S*/etc/", text)


def compose_services():
    return yaml.safe_load(COMPOSE.read_text())["services"]


def run_sut(env, timeout=90):
    return subprocess.run(["sh", str(SUT)], env=clean_env(**env), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def test_compose_steps_pass_against_h1mock_started_as_compose_does(entrypoint, tmp_path):
    """The h1mock service's environment and its healthcheck, then the sut
    service's script and environment, with the addresses made local."""
    services = compose_services()
    mock, sut = services["h1mock"], services["sut"]
    env = dict(mock["environment"])
    # mounted read-only in compose; a copy here, so posts cannot touch the repo
    shutil.copytree(ROOT / "provisions", entrypoint.provisions, symlinks=True)
    traffic, admin = free_ports(2)
    env.update(TRAFFIC_PORT=traffic, ADMIN_PORT=admin)
    srv = entrypoint.start(**env)
    assert (srv.port, srv.admin_port) == (traffic, admin)
    check = mock["healthcheck"]["test"]
    assert check[0] == "CMD" and check[1].endswith("h1mock-entrypoint.sh")
    res = subprocess.run([str(ENTRYPOINT), *check[2:]], env=entrypoint.env(),
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stderr

    sut_env = dict(sut["environment"])
    sut_env.update(MOCK_URL=srv.url, MOCK_ADMIN_URL=srv.admin_url,
                   PROVISIONS=ROOT / "provisions", WAIT_SECONDS=10)
    res = run_sut(sut_env)
    assert res.returncode == 0, res.stdout + res.stderr + srv.log
    assert res.stdout.splitlines()[-1] == "sut: ok"
    # the provision it posted is the one serving now
    r = http("GET", srv.url + "/app/v1/foo/bar")
    assert r.status_code == 200 and r.json()["resultData"] == "answering a get"


def test_image_compose_and_charts_open_the_admin_api_explicitly():
    """Without a token, h1mock's admin API answers loopback peers only; the
    image, the compose file and the charts are used from other containers,
    so each states that it opens it."""
    runtime = dockerfile_stages()[1]
    assert "H1MOCK_ADMIN_OPEN=1" in instructions(runtime, "ENV")
    assert compose_services()["h1mock"]["environment"]["H1MOCK_ADMIN_OPEN"] == "1"
    assert load_yaml(CHART / "values.yaml")["service"]["adminOpen"] is True
    assert load_yaml(CT_CHART / "values.yaml")["erp"]["service"]["adminOpen"] is True
    text = (CHART / "templates" / "deployment.yaml").read_text()
    assert re.search(r'- name: H1MOCK_ADMIN_OPEN\s*\n\s*value: {{ ternary "1" "0" '
                     r'.Values.service.adminOpen \| quote }}', text)
    assert "service.adminOpen" in (CHART / "templates" / "NOTES.txt").read_text()


@pytest.mark.skipif(netns_problem() is not None, reason=str(netns_problem()))
def test_compose_settings_let_the_sut_provision_the_mock_from_another_host(tmp_path):
    """h1mock started as compose starts it, in a network namespace where the
    sut's calls come from another address (as from another container): the
    steps pass, and fail with 403 without the compose file's choice."""
    services = compose_services()
    mock, sut = services["h1mock"], services["sut"]
    for opened in (True, False):
        base = tmp_path / ("opened" if opened else "closed")
        base.mkdir()
        ep = Entrypoint(base)
        shutil.copytree(ROOT / "provisions", ep.provisions, symlinks=True)
        env = {k: v for k, v in mock["environment"].items()
               if opened or k != "H1MOCK_ADMIN_OPEN"}
        try:
            # the compose ports, free in a namespace of its own; all addresses
            srv = ep.start(wrap=in_netns([]), H1MOCK_ADDRESS="0.0.0.0", **env)
            assert (srv.port, srv.admin_port) == (int(env["TRAFFIC_PORT"]),
                                                  int(env["ADMIN_PORT"]))
            check = mock["healthcheck"]["test"]
            res = ns_run(srv.proc.pid, [str(ENTRYPOINT), *check[2:]], env=ep.env())
            assert res.returncode == 0, res.stderr
            sut_env = dict(sut["environment"])
            sut_env.update(MOCK_URL="http://%s:%d" % (NS_V4, srv.port),
                           MOCK_ADMIN_URL="http://%s:%d" % (NS_V4, srv.admin_port),
                           PROVISIONS=ROOT / "provisions", WAIT_SECONDS=10)
            res = ns_run(srv.proc.pid, ["sh", str(SUT)], env=clean_env(**sut_env), timeout=90)
            if opened:
                assert res.returncode == 0, res.stdout + res.stderr + srv.log
                assert res.stdout.splitlines()[-1] == "sut: ok"
            else:
                assert res.returncode == 1, res.stdout
                assert "sut: FAILED: provision foo-bar: status 403, expected 201" in res.stderr
        finally:
            ep.stop_all()


def test_sut_uses_the_admin_token(h1mock):
    srv = h1mock(None, "--admin-token", "s3cret")
    env = dict(MOCK_URL=srv.url, MOCK_ADMIN_URL=srv.admin_url, PROVISIONS=ROOT / "provisions",
               WAIT_SECONDS=10)
    res = run_sut(dict(env, ADMIN_TOKEN="s3cret"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1] == "sut: ok"
    res = run_sut(dict(env, ADMIN_TOKEN="wrong"))
    assert res.returncode == 1
    assert "sut: FAILED: provision foo-bar: status 401, expected 201" in res.stderr


def test_sut_fails_when_the_mock_never_gets_healthy():
    with socket.socket() as s:  # a port nobody listens on while it is held
        s.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % s.getsockname()[1]
        res = run_sut(dict(MOCK_URL=url, MOCK_ADMIN_URL=url, WAIT_SECONDS=2), timeout=30)
    assert res.returncode == 1
    assert "sut: FAILED: %s/healthz not healthy after 2 s" % url in res.stderr


def test_sut_fails_on_a_provision_the_mock_refuses(h1mock, tmp_path):
    srv = h1mock(None)
    (tmp_path / "foo-bar.lua").write_text("function registerRules(\n")
    res = run_sut(dict(MOCK_URL=srv.url, MOCK_ADMIN_URL=srv.admin_url, PROVISIONS=tmp_path,
                       WAIT_SECONDS=10))
    assert res.returncode == 1
    assert "sut: FAILED: provision foo-bar: status 400, expected 201" in res.stderr
    assert "sut: ok" not in res.stdout


def test_sut_fails_when_the_journal_disagrees(h1mock):
    srv = h1mock(None, "--journal-size", "0")  # the journal records nothing
    res = run_sut(dict(MOCK_URL=srv.url, MOCK_ADMIN_URL=srv.admin_url,
                       PROVISIONS=ROOT / "provisions", WAIT_SECONDS=10))
    assert res.returncode == 1, res.stdout
    assert "sut: GET /app/v1/foo/bar: 200" in res.stdout
    assert "sut: FAILED: journal count ?method=GET&path=/app/v1/foo/bar is '0', expected 1" \
        in res.stderr


# --------------------------------------------------------------------------
# helm charts, without helm
# --------------------------------------------------------------------------

def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def templates(chart):
    return sorted(p for p in (chart / "templates").rglob("*") if p.is_file())


def values_path_exists(values, path):
    node = values
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def test_charts_parse_and_ct_depends_on_h1mock_by_alias():
    chart = load_yaml(CHART / "Chart.yaml")
    ct = load_yaml(CT_CHART / "Chart.yaml")
    for c, d in [(chart, CHART), (ct, CT_CHART)]:
        assert c["apiVersion"] == "v2"
        assert c["name"] == d.name
        assert re.fullmatch(r"\d+\.\d+\.\d+", c["version"])
        assert isinstance(load_yaml(d / "values.yaml"), dict)
    assert chart["type"] == "application"
    ct_values = load_yaml(CT_CHART / "values.yaml")
    aliases = [dep["alias"] for dep in ct["dependencies"]]
    assert len(aliases) == len(set(aliases)) >= 2  # one chart, several aliases
    names = set()
    for dep in ct["dependencies"]:
        assert dep["name"] == "h1mock"
        assert dep["repository"] == "file://../h1mock"
        assert dep["version"] == chart["version"]
        names.add(ct_values[dep["alias"]]["service"]["name"])
    assert len(names) == len(aliases)  # each alias needs its own service.name


def test_values_keep_the_flask_charts_names_and_add_the_new_ones():
    v = load_yaml(CHART / "values.yaml")
    assert v["replicaCount"] == 1
    assert set(v["image"]) >= {"repository", "tag", "pullPolicy"}
    s = v["service"]
    assert s["name"] == "h1mock" and s["type"] == "ClusterIP"
    assert (s["traffic_port"], s["admin_port"]) == (8000, 8074)
    assert s["verbosity"]["enabled"] is False and s["ipv6"]["enabled"] is False
    assert "provisionsDir" in s
    for key in ["resources", "nodeSelector", "tolerations", "affinity", "podAnnotations",
                "podSecurityContext", "securityContext", "imagePullSecrets"]:
        assert key in v, key
    assert set(s["adminToken"]) == {"existingSecret", "existingSecretKey", "value"}
    assert v["metrics"]["enabled"] is False
    assert v["journal"]["size"] == 10000


def test_security_defaults_match_the_image():
    v = load_yaml(CHART / "values.yaml")
    uid = int(instructions(dockerfile_stages()[1], "USER")[0].split(":")[0])
    assert v["podSecurityContext"]["runAsNonRoot"] is True
    assert v["podSecurityContext"]["runAsUser"] == uid
    assert v["securityContext"]["readOnlyRootFilesystem"] is True
    assert v["securityContext"]["allowPrivilegeEscalation"] is False
    assert v["securityContext"]["capabilities"]["drop"] == ["ALL"]


VALUES_REF = re.compile(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def defines(text):
    """{name: body} of the named templates in text (a body runs to the next define)."""
    parts = re.split(r'{{-?\s*define\s+"([^"]+)"\s*-?}}', text)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_value_a_template_reads_exists():
    h1 = load_yaml(CHART / "values.yaml")
    ct = load_yaml(CT_CHART / "values.yaml")
    aliases = {dep["alias"] for dep in load_yaml(CT_CHART / "Chart.yaml")["dependencies"]}
    seen = 0
    for chart, values in [(CHART, h1), (CT_CHART, ct)]:
        for t in templates(chart):
            for m in VALUES_REF.finditer(t.read_text()):
                path = m.group(1).split(".")[1:]
                seen += 1
                if chart == CT_CHART and path[0] in aliases:
                    assert values_path_exists(h1, path[1:]), "%s: .Values.%s" % (t, m.group(1))
                else:
                    assert values_path_exists(values, path), "%s: .Values%s" % (t, m.group(1))
    assert seen > 30
    # helpers that take the chart's values read them as .service.x; so does
    # the ct test pod through an alias's values ($v)
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    bodies = defines(helpers)
    assert set(bodies) >= {"h1mock.nameOf", "h1mock.configmap", "h1mock.adminTokenSecretNameOf"}
    refs = []
    for name, body in bodies.items():
        if name.endswith("Of"):
            refs += re.findall(r"(?<![\w$)])\.(service(?:\.\w+)+)", body)
    refs += re.findall(r"\$service((?:\.\w+)+)", bodies["h1mock.configmap"])
    refs = [r if r.startswith("service") else "service" + r for r in refs]
    for tpl in templates(CT_CHART):
        refs += re.findall(r"\$v\.(service(?:\.\w+)+)", tpl.read_text())
    assert len(refs) > 8
    for r in refs:
        assert values_path_exists(h1, r.split(".")), r


def test_every_included_template_is_defined_and_blocks_balance():
    defined = set()
    texts = {}
    for chart in (CHART, CT_CHART):
        for t in templates(chart):
            texts[t] = t.read_text()
            defined |= set(re.findall(r'{{-?\s*define\s+"([^"]+)"', texts[t]))
    assert "h1mock.configmap" in defined
    for t, text in texts.items():
        for name in re.findall(r'(?:include|template)\s+"([^"]+)"', text):
            assert name in defined, "%s uses undefined %s" % (t, name)
        assert text.count("{{") == text.count("}}"), t
        depth = 0
        for m in re.finditer(r"{{-?\s*(if|range|with|define|block|else|end)\b", text):
            depth += {"end": -1, "else": 0}.get(m.group(1), 1)
            assert depth >= 0, "%s: 'end' without a block at %d" % (t, m.start())
        assert depth == 0, "%s: %d unclosed blocks" % (t, depth)


def test_deployment_probes_mounts_and_writable_state_dir():
    text = (CHART / "templates" / "deployment.yaml").read_text()
    for probe in ("readinessProbe", "livenessProbe"):
        m = re.search(probe + r":\s*\n\s*httpGet:\s*\n\s*path: (\S+)\s*\n\s*port: (\S+)", text)
        assert m and m.groups() == ("/healthz", "http-admin"), probe
    assert re.search(r"- name: http-admin\s*\n\s*containerPort: {{ int .Values.service.admin_port }}",
                     text)
    # the ConfigMap at the entrypoint's /config, optional, named as the helper names it
    assert re.search(r"- name: provisions\s*\n\s*mountPath: /config\s*\n\s*readOnly: true", text)
    assert re.search(r'configMap:\s*\n\s*name: {{ include "h1mock.provisionsConfigMapNameOf" '
                     r'.Values }}\s*\n\s*optional: true', text)
    assert re.search(r"- name: H1MOCK_CONFIG_DIR\s*\n\s*value: /config", text)
    # posted provisions need a writable folder under the read-only root
    state = re.search(r"- name: H1MOCK_STATE_DIR\s*\n\s*value: (\S+)", text).group(1)
    assert re.search(r"- name: tmp\s*\n\s*mountPath: /tmp", text) and state.startswith("/tmp/")
    assert re.search(r"- name: tmp\s*\n\s*emptyDir:", text)
    # a ConfigMap change must not roll the pods: no checksum annotation
    assert "sha256sum" not in text
    assert "prometheus.io/scrape" in text and "H1MOCK_JOURNAL_SIZE" in text
    assert "H1MOCK_ADMIN_TOKEN" in text and "secretKeyRef" in text


def test_ct_renders_one_provisions_configmap_per_alias():
    aliases = [dep["alias"] for dep in load_yaml(CT_CHART / "Chart.yaml")["dependencies"]]
    values = load_yaml(CT_CHART / "values.yaml")
    text = (CT_CHART / "templates" / "provisions.yaml").read_text()
    for alias in aliases:
        assert '{{- include "h1mock.configmap" ( list $ $.Values.%s ) }}' % alias in text
        folder = CT_CHART / values[alias]["service"]["provisionsDir"]
        assert (folder / "initial.lua").is_file(), folder
        res = subprocess.run([BIN, "--check", *sorted(map(str, folder.glob("*")))],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(t["alias"] for t in values["test"]["targets"]) == sorted(aliases)


def test_ct_test_files_are_the_repositorys():
    files = CT_CHART / "files"
    assert (files / "sut.sh").resolve() == SUT.resolve()
    assert (files / "foo-bar.lua").resolve() == (ROOT / "provisions" / "foo-bar.lua").resolve()


def ct_target(alias):
    values = load_yaml(CT_CHART / "values.yaml")
    return next(t for t in values["test"]["targets"] if t["alias"] == alias), values[alias]


def run_ct_test(alias, srv, token=None, text=None):
    target, _ = ct_target(alias)
    env = dict(WAIT_SECONDS=10)
    if token is not None:
        env["ADMIN_TOKEN"] = token
    return subprocess.run(["sh", str(CT_TEST), alias, srv.url, srv.admin_url, target["path"],
                           text if text is not None else target["text"]],
                          env=clean_env(**env), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=90)


def ct_provisions(alias):
    _, values = ct_target(alias)
    folder = CT_CHART / values["service"]["provisionsDir"]
    return {p.name: p.read_text() for p in folder.iterdir()}


def test_ct_test_script_passes_against_the_charts_provisions(h1mock):
    files = ct_provisions("erp")
    srv = h1mock(files.pop("initial.lua"), files=files)
    res = run_ct_test("erp", srv)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert "ct erp: the ConfigMap's initial provision answers GET /erp/v1/orders/7" in lines
    assert lines[-1] == "ct erp: ok"


def test_ct_test_script_with_the_token_of_payments(h1mock):
    _, values = ct_target("payments")
    token = values["service"]["adminToken"]["value"]
    files = ct_provisions("payments")
    srv = h1mock(files.pop("initial.lua"), "--admin-token", token, files=files)
    res = run_ct_test("payments", srv, token=token)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ct payments: the admin API wants the token" in res.stdout
    assert res.stdout.splitlines()[-1] == "ct payments: ok"
    # without the token (a fresh mock: the run above left foo-bar active)
    files = ct_provisions("payments")
    srv = h1mock(files.pop("initial.lua"), "--admin-token", token, files=files)
    res = run_ct_test("payments", srv)
    assert res.returncode == 1
    assert "status 401" in res.stderr and "ct payments: FAILED: the CI steps (sut.sh) failed" \
        in res.stderr


def test_ct_test_script_fails_when_the_initial_provision_is_not_served(h1mock):
    srv = h1mock(None)  # built-in default: the ConfigMap's initial is missing
    res = run_ct_test("erp", srv)
    assert res.returncode == 1
    assert "ct erp: FAILED: GET /erp/v1/orders/7: status 404, expected 200" in res.stderr
    files = ct_provisions("erp")
    srv = h1mock(files["initial.lua"])
    res = run_ct_test("erp", srv, text='"status":"lost"')
    assert res.returncode == 1
    assert "the answer lacks '\"status\":\"lost\"'" in res.stderr


# --------------------------------------------------------------------------
# helm charts, with helm when there is one
# --------------------------------------------------------------------------

HELM = os.environ.get("HELM") or shutil.which("helm")
needs_helm = pytest.mark.skipif(not HELM, reason="no helm binary (PATH or $HELM)")


def helm(*args, cwd=None, check=True):
    res = subprocess.run([HELM, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                         env=clean_env())
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


@pytest.fixture(scope="module")
def helm_charts(tmp_path_factory):
    """helm/ copied with its links resolved (sut.sh, foo-bar.lua), and
    ct-h1mock's dependency fetched from ../h1mock, so the repository
    gets no charts/ folder."""
    if not HELM:
        pytest.skip("no helm binary (PATH or $HELM)")
    base = tmp_path_factory.mktemp("helm") / "helm"
    shutil.copytree(ROOT / "helm", base, symlinks=False)
    helm("dependency", "update", str(base / "ct-h1mock"))
    return base


def render(chart_dir, *args):
    out = helm("template", "rel", str(chart_dir), *args).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@needs_helm
def test_helm_lint_both_charts(helm_charts):
    for chart in ("h1mock", "ct-h1mock"):
        res = helm("lint", "--strict", str(helm_charts / chart))
        assert "0 chart(s) failed" in res.stdout


@needs_helm
def test_helm_renders_ct_with_two_aliases(helm_charts):
    docs = render(helm_charts / "ct-h1mock")
    values = load_yaml(CT_CHART / "values.yaml")
    deployments = {n for k, n in docs if k == "Deployment"}
    assert deployments == {"erp", "payments"}
    selectors = set()
    for name in deployments:
        dep = docs[("Deployment", name)]
        pod = dep["spec"]["template"]
        labels = dep["spec"]["selector"]["matchLabels"]
        assert labels.items() <= pod["metadata"]["labels"].items()
        selectors.add(tuple(sorted(labels.items())))
        assert docs[("Service", name)]["spec"]["selector"] == labels
        c = pod["spec"]["containers"][0]
        for probe in ("readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http-admin"}
        assert {p["name"]: p["containerPort"] for p in c["ports"]} == {
            "http-traffic": 8000, "http-admin": 8074}
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        vols = {v["name"]: v for v in pod["spec"]["volumes"]}
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        cm = vols["provisions"]["configMap"]
        assert mounts["provisions"]["mountPath"] == "/config" and mounts["provisions"]["readOnly"]
        initial = (CT_CHART / values[name]["service"]["provisionsDir"] / "initial.lua").read_text()
        assert docs[("ConfigMap", cm["name"])]["data"]["initial.lua"] == initial
        assert "emptyDir" in vols["tmp"] and mounts["tmp"]["mountPath"] == "/tmp"
        env = env_of(c)
        assert env["H1MOCK_STATE_DIR"].startswith("/tmp/")
        assert env["H1MOCK_CONFIG_DIR"] == "/config"
        assert "checksum/config" not in (pod["metadata"].get("annotations") or {})
    assert len(selectors) == 2  # the aliases do not select each other's pods
    erp = docs[("Deployment", "erp")]["spec"]["template"]
    assert erp["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert erp["metadata"]["annotations"]["prometheus.io/port"] == "8074"
    assert env_of(erp["spec"]["containers"][0])["H1MOCK_VERBOSE"] == "1"
    pay = docs[("Deployment", "payments")]["spec"]["template"]
    assert "annotations" not in pay["metadata"]
    ref = env_of(pay["spec"]["containers"][0])["H1MOCK_ADMIN_TOKEN"]["secretKeyRef"]
    secret = docs[("Secret", ref["name"])]
    token = values["payments"]["service"]["adminToken"]["value"]
    assert base64.b64decode(secret["data"][ref["key"]]).decode() == token
    assert env_of(pay["spec"]["containers"][0])["H1MOCK_JOURNAL_SIZE"] == "1000"
    # the test pod provisions both from another pod
    assert env_of(erp["spec"]["containers"][0])["H1MOCK_ADMIN_OPEN"] == "1"
    assert env_of(pay["spec"]["containers"][0])["H1MOCK_ADMIN_OPEN"] == "1"

    test = docs[("Pod", "rel-ct-h1mock-test")]
    assert test["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = test["spec"]["containers"][0]["args"][0]
    assert 'sh /ct/ct-test.sh "erp" "http://erp:8000" "http://erp:8074"' in script
    assert 'ADMIN_TOKEN="${CT_TOKEN_1:-}" sh /ct/ct-test.sh "payments"' in script
    assert env_of(test["spec"]["containers"][0])["CT_TOKEN_1"]["secretKeyRef"] == ref
    files = docs[("ConfigMap", "rel-ct-h1mock-test")]["data"]
    assert files["sut.sh"] == SUT.read_text()
    assert files["ct-test.sh"] == CT_TEST.read_text()


@needs_helm
def test_helm_values_reach_the_container(helm_charts):
    docs = render(helm_charts / "h1mock", "--set", "service.ipv6.enabled=true",
                  "--set", "service.verbosity.enabled=true", "--set", "journal.size=1000000",
                  "--set", "service.adminToken.existingSecret=mine",
                  "--set", "service.traffic_port=9000", "--set", "service.name=My_Mock",
                  "--set", "podAnnotations.team=qa", "--set", "service.adminOpen=false")
    dep = docs[("Deployment", "my-mock")]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    env = env_of(c)
    assert env["H1MOCK_ADMIN_OPEN"] == "0"
    assert env["H1MOCK_ADDRESS"] == "::"
    assert env["H1MOCK_VERBOSE"] == "1"
    assert env["H1MOCK_JOURNAL_SIZE"] == "1000000"
    assert env["H1MOCK_PORT"] == "9000"
    assert env["H1MOCK_ADMIN_TOKEN"] == {"secretKeyRef": {"name": "mine", "key": "token"}}
    assert dep["spec"]["template"]["metadata"]["annotations"] == {"team": "qa"}
    assert not any(k == "Secret" for k, _ in docs)
    svc = docs[("Service", "my-mock")]
    assert svc["spec"]["ipFamilyPolicy"] == "PreferDualStack"
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {
        "http-traffic": 9000, "http-admin": 8074}


@needs_helm
def test_helm_configmap_helper_refuses_a_missing_folder(helm_charts):
    res = helm("template", "rel", str(helm_charts / "ct-h1mock"), "--set",
               "erp.service.provisionsDir=nowhere", check=False)
    assert res.returncode != 0
    assert "h1mock.configmap: no files in 'nowhere' of chart 'ct-h1mock'" in res.stderr


@needs_helm
def test_helm_rendered_erp_pod_runs_locally_and_follows_its_configmap(helm_charts, entrypoint):
    """The rendered erp container's environment and ConfigMap, run through
    the entrypoint with the paths made local; then the ct test pod's command
    for erp; then a ConfigMap update, served without a restart."""
    docs = render(helm_charts / "ct-h1mock")
    pod = docs[("Deployment", "erp")]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {k: v for k, v in env_of(c).items() if isinstance(v, str)}
    cm_name = next(v["configMap"]["name"] for v in pod["volumes"] if v["name"] == "provisions")
    data = docs[("ConfigMap", cm_name)]["data"]
    configmap_volume(entrypoint.config, data)
    entrypoint.provisions.mkdir()  # the image's empty /app/provision
    env.update(H1MOCK_CONFIG_DIR=entrypoint.config, H1MOCK_STATE_DIR=entrypoint.tmp / "state",
               H1MOCK_PORT=0, H1MOCK_ADMIN_PORT=0, H1MOCK_ADDRESS="127.0.0.1")
    srv = entrypoint.start(**env)
    assert "serving the provisions of %s directly" % entrypoint.config in srv.log
    res = run_ct_test("erp", srv)
    assert res.returncode == 0, res.stdout + res.stderr + srv.log
    # the test left foo-bar active; the ConfigMap's initial comes back on request
    r = http("GET", srv.admin_url + "/app/v1/provision/initial")
    assert r.status_code == 200, r.text
    pid = srv.proc.pid
    watcher_quiet(srv)
    changed = data["initial.lua"].replace('status = "shipped"', 'status = "returned"')
    assert changed != data["initial.lua"]
    configmap_update(entrypoint.config, "v2", dict(data, **{"initial.lua": changed}))
    wait_until(lambda: body_of(srv, "/erp/v1/orders/7") == '{"id":7,"status":"returned"}\n',
               10, 0.1, "the updated ConfigMap served")
    assert srv.proc.poll() is None and srv.proc.pid == pid
